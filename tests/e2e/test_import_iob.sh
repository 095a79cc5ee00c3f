#!/bin/bash
# `megatune data import-iob` and `import-chemprot` end to end on the real files: the output is
# compared with an independent conversion written in Python here (blank line = sentence break,
# -DOCSTART- dropped, first field = word, last field = label; ChemProt ids in first-seen order).
set -u
BIN=${MEGATUNE_BIN:?}
DATA=${MEGATUNE_DATA:-}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -n "$DATA" ] && [ -f "$DATA/conll2003/eng.testa" ] || { echo "SKIP: no MEGATUNE_DATA"; exit 77; }
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
T=$(mktemp -d /tmp/mt_e2e_iob_XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0

"$BIN" data import-iob --data_file "$DATA/conll2003/eng.testa" --out_dir "$T" || { echo "import-iob failed"; exit 1; }
"$BIN" data import-iob --data_file="$DATA/ncbi-disease/devel.tsv" --out_dir="$T" || { echo "import-iob ncbi failed"; exit 1; }
"$BIN" data import-chemprot "$DATA/chemprot/dev.tsv" "$T/cp_dev.tsv" --label-map "$T/map.tsv" || { echo "import-chemprot failed"; exit 1; }

"$PY" - "$DATA" "$T" <<'PYEOF' || fail=1
import sys
data, out = sys.argv[1], sys.argv[2]

def conv(path):
    sents, cur = [], []
    for line in open(path, encoding="utf-8"):
        f = line.split()
        if not f:
            if cur: sents.append(cur); cur = []
            continue
        if f[0] == "-DOCSTART-": continue
        cur.append((f[0], f[-1]))
    if cur: sents.append(cur)
    return sents

ok = True
# NCBI was written last to text_dev.txt/labels_dev.txt
want = conv(f"{data}/ncbi-disease/devel.tsv")
t = open(f"{out}/text_dev.txt", encoding="utf-8").read().rstrip("\n").split("\n")
l = open(f"{out}/labels_dev.txt", encoding="utf-8").read().rstrip("\n").split("\n")
if len(want) != 923 or len(t) != 923 or len(l) != 923:
    print("NCBI sentence counts", len(want), len(t), len(l)); ok = False
for i, s in enumerate(want):
    if t[i] != " ".join(w for w, _ in s) or l[i] != " ".join(x for _, x in s):
        print("NCBI line", i + 1, "differs"); ok = False; break

# ChemProt: first-seen ids over dev, header kept
rows = [r.rstrip("\r\n").rsplit("\t", 1) for r in open(f"{data}/chemprot/dev.tsv", encoding="utf-8")][1:]
ids = {}
for _, lab in rows: ids.setdefault(lab, len(ids))
got = open(f"{out}/cp_dev.tsv", encoding="utf-8").read().rstrip("\n").split("\n")
if got[0] != "sentence\tlabel" or len(got) - 1 != len(rows) or len(rows) != 10361:
    print("ChemProt counts", len(got) - 1, len(rows)); ok = False
for i, (s, lab) in enumerate(rows):
    if got[i + 1] != f"{s}\t{ids[lab]}":
        print("ChemProt line", i + 2, "differs"); ok = False; break
m = open(f"{out}/map.tsv").read().split("\n")[:-1]
if m != [f"{k}\t{v}" for k, v in ids.items()]:
    print("label map differs", m); ok = False
sys.exit(0 if ok else 1)
PYEOF

# CoNLL testa (re-import, then check against the independent conversion)
"$BIN" data import-iob --data_file "$DATA/conll2003/eng.testa" --out_dir "$T" --split conll >/dev/null || fail=1
"$PY" - "$DATA/conll2003/eng.testa" "$T" <<'PYEOF' || fail=1
import sys
sents, cur = [], []
for line in open(sys.argv[1], encoding="utf-8"):
    f = line.split()
    if not f:
        if cur: sents.append(cur); cur = []
        continue
    if f[0] == "-DOCSTART-": continue
    cur.append((f[0], f[-1]))
if cur: sents.append(cur)
t = open(f"{sys.argv[2]}/text_conll.txt", encoding="utf-8").read()
l = open(f"{sys.argv[2]}/labels_conll.txt", encoding="utf-8").read()
wt = "".join(" ".join(w for w, _ in s) + "\n" for s in sents)
wl = "".join(" ".join(x for _, x in s) + "\n" for s in sents)
print("CoNLL testa:", len(sents), "sentences", sum(map(len, sents)), "words")
sys.exit(0 if (t == wt and l == wl and len(sents) == 3250) else 1)
PYEOF

# usage errors exit 2, data errors exit 1 with the file named
"$BIN" data import-iob >/dev/null 2>&1; [ $? -eq 2 ] || { echo "missing --data_file should exit 2"; fail=1; }
"$BIN" data frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || { echo "unknown tool should exit 2"; fail=1; }
printf 'EU B-ORG\nrejects\n' > "$T/bad.iob"
msg=$("$BIN" data import-iob --data_file "$T/bad.iob" --out_dir "$T" 2>&1); rc=$?
[ $rc -eq 1 ] && [[ "$msg" == *"bad.iob:2"* ]] || { echo "bad IOB: rc=$rc msg=$msg"; fail=1; }

[ $fail -eq 0 ] && echo PASSED || echo FAILED
exit $fail
