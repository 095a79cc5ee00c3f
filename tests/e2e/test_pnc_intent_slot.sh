#!/usr/bin/env bash
# Punctuation/capitalisation and joint intent/slot classification end to end, from NeMo's stock YAMLs
# (examples/*) with only data paths and the model changed:
#  1. `data import-pnc` on real text (detokenised CoNLL-2003 sentences, SQuAD v1.1 contexts) gives the
#     files an independent Python restatement of NeMo's prepare_data_for_punctuation_capitalization.py
#     rules gives, byte for byte; bad input is refused with no output left behind.
#  2. P&C: train, `test` on the .nemo reproduces the last validation's punct_/capit_ metrics, predict
#     restores capitals/punctuation and keeps every word of a line longer than max_seq_length,
#     a killed run resumed (resume_if_exists) writes the uninterrupted run's metrics.csv.
#  3. Intent/slot on a small data set made here by the format's rules (dict.*.csv, header line, slot
#     ids per word, 'O' not last): train, test == last validation, predict "intent<TAB>slots".
#  4. TP=2 under mpirun == one process for both tasks (dropout on: masks follow global positions).
set -u
. "$(dirname "$0")/mpi_env.sh" # mpi_env, mpi_can_start for the mpirun part
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; data=${MEGATUNE_DATA:-}; py=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -n "$data" ] && [ -f "$data/conll2003/eng.testa" ] && [ -f "$data/squad/dev-v1.1.json.zip" ] || { echo "SKIP: MEGATUNE_DATA absent"; exit 77; }
"$py" -c 1 2> /dev/null || { echo "SKIP: no python"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
steps=24; [ "${MEGATUNE_SANITIZED:-0}" = 1 ] && steps=12

# ---- 1. import-pnc vs the rules, on CoNLL-2003 and SQuAD text ----
mkdir -p "$work/raw"
"$py" - "$data" "$work/raw" << 'PY' || fail "raw text"
import json, sys, zipfile
data, out = sys.argv[1], sys.argv[2]
# CoNLL-2003 dev: sentences detokenised (a token of only , . ? ! ; : glued to the word before it)
sents, cur = [], []
for line in open(f"{data}/conll2003/eng.testa", encoding="utf-8"):
    f = line.split()
    if not f:
        if cur: sents.append(cur); cur = []
        continue
    if f[0] == "-DOCSTART-": continue
    cur.append(f[0])
text = []
for s in sents[:1500]:
    o = s[0]
    for w in s[1:]:
        o += w if (len(w) == 1 and w in ",.?!;:") else " " + w
    text.append(o)
open(f"{out}/train.txt", "w", encoding="utf-8").write("\n".join(text[:1200]) + "\n")
open(f"{out}/dev.txt", "w", encoding="utf-8").write("\n".join(text[1200:]) + "\n")
# SQuAD v1.1 dev contexts: long real paragraphs (quotes, dashes, non-ASCII letters, questions in text)
z = zipfile.ZipFile(f"{data}/squad/dev-v1.1.json.zip")
d = json.loads(z.read([n for n in z.namelist() if n.endswith(".json")][0]))
ctx = [p["context"].replace("\n", " ") for a in d["data"][:8] for p in a["paragraphs"][:5]]
open(f"{out}/squad.txt", "w", encoding="utf-8").write("\n".join(ctx) + "\n\n" + "? - ...\n")
PY
for f in train dev squad; do
  "$bin" data import-pnc "$work/raw/$f.txt" "$work/pnc" > "$work/imp_$f.log" 2>&1 || { cat "$work/imp_$f.log"; fail "import-pnc $f"; }
done
"$py" - "$work/raw" "$work/pnc" << 'PY' || fail "import-pnc differs from NeMo's rules"
import string, sys
raw, out = sys.argv[1], sys.argv[2]
strip = set(string.punctuation) - {"'"}
for name in ("train.txt", "dev.txt", "squad.txt"):
    text, labels = [], []
    for line in open(f"{raw}/{name}", encoding="utf-8"):
        t, l = [], []
        for word in line.split():
            p = word[-1] if word[-1] in ",.?" else "O"
            w = "".join(ch for ch in word if ch not in strip)
            if w:
                t.append(w.lower()); l.append(p + ("U" if w[0].isupper() else "O"))
        text.append(" ".join(t)); labels.append(" ".join(l))
    got_t = open(f"{out}/text_{name}", encoding="utf-8").read().split("\n")[:-1]
    got_l = open(f"{out}/labels_{name}", encoding="utf-8").read().split("\n")[:-1]
    assert got_t == text, (name, next((a, b) for a, b in zip(got_t, text) if a != b))
    assert got_l == labels, (name, next((a, b) for a, b in zip(got_l, labels) if a != b))
    print(f"  import-pnc {name}: {len(text)} lines, {sum(len(x.split()) for x in text)} words as the rules give")
PY
grep -q "?U\|?O" "$work/pnc/labels_squad.txt" || fail "no question mark label from SQuAD text"
# bad input: not UTF-8 -> one message naming the file and line, exit 1, no output files
printf 'good line.\nbad \xff byte\n' > "$work/raw/bad.txt"
"$bin" data import-pnc "$work/raw/bad.txt" "$work/badout" > "$work/bad.log" 2>&1; rc=$?
[ $rc = 1 ] || { cat "$work/bad.log"; fail "bad UTF-8: exit $rc"; }
grep -q "bad.txt:2" "$work/bad.log" || { cat "$work/bad.log"; fail "bad UTF-8 message lacks file:line"; }
[ ! -e "$work/badout" ] || fail "a failed import left $work/badout"

tiny=(model.language_model.pretrained_model_name=megatron-bert-uncased model.language_model.config.hidden_size=32
  model.language_model.config.num_layers=2 model.language_model.config.num_attention_heads=2
  model.language_model.config.max_position_embeddings=64 model.tokenizer.vocab_file="$data/bert-base-uncased/vocab.txt"
  trainer.progress_bar=lines trainer.log_every_n_steps=1 trainer.precision=32 exp_manager.version=v)
compare_last_val() { # metrics.csv test-output
  "$py" - "$1" "$2" << 'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h, last = rows[0], rows[-1]
got = dict(l.split(": ") for l in open(sys.argv[2]).read().splitlines() if l.startswith("test_"))
n = 0
for i, name in enumerate(h):
    if name.startswith("val_") and last[i] != "":
        assert got["test_" + name[4:]] == last[i], (name, got.get("test_" + name[4:]), last[i])
        n += 1
assert n == 7, (n, h)
print("  test == last validation:", {k: got[k] for k in sorted(got)})
PY
}

# ---- 2. punctuation/capitalisation ----
pnc=(examples/punctuation_capitalization_config.yaml "${tiny[@]}" model.dataset.data_dir="$work/pnc"
  model.dataset.max_seq_length=32 model.train_ds.batch_size=16 model.validation_ds.batch_size=32
  model.validation_ds.num_samples=96 trainer.max_steps=$steps trainer.val_check_interval=8 model.optim.lr=2e-3)
"$bin" train "${pnc[@]}" exp_manager.exp_dir="$work/p" > "$work/p.log" 2>&1 || { tail -20 "$work/p.log"; fail "P&C train"; }
d="$work/p/Punctuation_and_Capitalization/v"
head -1 "$d/metrics.csv" | grep -q "val_punct_f1,val_punct_precision,val_punct_recall,val_capit_f1" || fail "P&C metric names"
nemo="$d/checkpoints/Punctuation_and_Capitalization.nemo"
"$bin" test "$nemo" model.dataset.data_dir="$work/pnc" model.test_ds.num_samples=96 model.test_ds.batch_size=32 \
  > "$work/p.test" 2>&1 || { cat "$work/p.test"; fail "P&C test"; }
grep -q "Punctuation report" "$work/p.test" && grep -q "Capitalization report" "$work/p.test" || fail "P&C reports"
compare_last_val "$d/metrics.csv" "$work/p.test" || fail "P&C restored metrics"
# predict: one output line per input line, the same words (capitals and , . ? aside); a 150-word line
# (far over max_seq_length=32) keeps every word
long=$(head -c 100000 "$work/pnc/text_squad.txt" | tr '\n' ' ' | cut -d' ' -f1-150)
printf 'eu rejects german call to boycott british lamb\n\n%s\n' "$long" > "$work/p.in"
"$bin" predict "$nemo" "$work/p.in" > "$work/p.out" 2> "$work/p.err" || { cat "$work/p.err"; fail "P&C predict"; }
[ "$(wc -l < "$work/p.out")" = 3 ] || fail "P&C predict: $(wc -l < "$work/p.out") lines for 3"
"$py" - "$work/p.in" "$work/p.out" << 'PY' || fail "P&C predict output"
import sys
ins = open(sys.argv[1]).read().split("\n"); outs = open(sys.argv[2]).read().split("\n")
for a, b in zip(ins, outs):
    words = b.split()
    base = [w.rstrip(",.?").lower() for w in words]
    assert base == a.split(), (a[:80], b[:80])
    for w, o in zip(words, a.split()):
        core = w.rstrip(",.?")
        assert core == o or core == o.capitalize(), (w, o)
print("  predict: %d words restored" % sum(len(x.split()) for x in outs))
PY
# resume: SIGKILL mid-run then resume_if_exists == the uninterrupted run (metrics.csv byte for byte)
rk=(exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)
resume_check() { # tag name args...
  local tag=$1 name=$2; shift 2
  "$bin" train "$@" "${rk[@]}" exp_manager.exp_dir="$work/full_$tag" > "$work/full_$tag.log" 2>&1 || fail "$tag full run"
  local ok=0
  for attempt in 1 2 3; do
    rm -rf "$work/k_$tag"
    "$bin" train "$@" "${rk[@]}" exp_manager.exp_dir="$work/k_$tag" > "$work/k1_$tag.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 6000); do
      compgen -G "$work/k_$tag/$name/checkpoints/*-last.ckpt" > /dev/null && \
        [ "$(cat "$work/k_$tag/$name/metrics.csv" 2>/dev/null | wc -l)" -gt 10 ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.005
    done
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    "$bin" train "$@" "${rk[@]}" exp_manager.exp_dir="$work/k_$tag" > "$work/k2_$tag.log" 2>&1 || { tail "$work/k2_$tag.log"; fail "$tag resumed run"; }
    grep -q "resumed at step" "$work/k2_$tag.log" && { ok=1; break; }
  done
  [ $ok = 1 ] || fail "could not kill the $tag run mid-way"
  cmp "$work/full_$tag/$name/metrics.csv" "$work/k_$tag/$name/metrics.csv" || fail "$tag metrics.csv differs after SIGKILL + resume"
  echo "  $tag: killed, $(grep -o 'resumed at step [0-9]*' "$work/k2_$tag.log"), metrics.csv identical"
}
resume_check pnc Punctuation_and_Capitalization "${pnc[@]}"
echo "ok: punctuation_capitalization"

# ---- 3. intent/slot on a data set made by the format's rules ----
is="$work/is"; mkdir -p "$is"
printf 'weather\nflight\nmusic\n' > "$is/dict.intents.csv"
printf 'B-city\nI-city\nB-date\nB-artist\nI-artist\nO\n' > "$is/dict.slots.csv" # 'O' (id 5) is not first
"$py" - "$is" << 'PY' || fail "intent/slot data"
import random, sys
d = sys.argv[1]
cities = ["paris", "new york", "san francisco", "tokyo", "rio de janeiro", "berlin"]
dates = ["today", "tomorrow", "monday", "friday"]
artists = ["miles davis", "adele", "the beatles", "daft punk", "nina simone"]
def span(words, b, i): return [b] + [i] * (len(words.split()) - 1)
for split, n, seed in (("train", 240, 1), ("test", 48, 2)):
    r = random.Random(seed); rows = []
    for _ in range(n):
        it = r.randrange(3); c, t, a = r.choice(cities), r.choice(dates), r.choice(artists)
        if it == 0: w, s = f"what is the weather in {c} {t}", [5] * 5 + span(c, 0, 1) + [2]
        elif it == 1: w, s = f"book a flight to {c} on {t} please", [5] * 4 + span(c, 0, 1) + [5, 2, 5]
        else: w, s = f"play some songs by {a}", [5] * 4 + span(a, 3, 4)
        assert len(w.split()) == len(s)
        rows.append((w, it, s))
    with open(f"{d}/{split}.tsv", "w") as f:
        f.write("sentence\tlabel\n")
        for w, it, s in rows: f.write(f"{w}\t{it}\n")
    with open(f"{d}/{split}_slots.tsv", "w") as f:
        for w, it, s in rows: f.write(" ".join(map(str, s)) + "\n")
    # the same split in the ATIS release's layout (CNTK ids, BOS/EOS around every query) for import-atis
    import os
    a = f"{d}/atis"; os.makedirs(a, exist_ok=True)
    # one vocabulary for both splits: every word any template can produce
    allw = " ".join(cities + dates + artists) + " what is the weather in book a flight to on please play some songs by"
    vocab = ["BOS", "EOS"] + sorted(set(allw.split()))
    open(f"{a}/atis.dict.vocab.csv", "w").write("\n".join(vocab) + "\n")
    open(f"{a}/atis.dict.intent.csv", "w").write("weather\nflight\nmusic\n")
    open(f"{a}/atis.dict.slots.csv", "w").write("B-city\nI-city\nB-date\nB-artist\nI-artist\nO\n")
    with open(f"{a}/atis.{split}.query.csv", "w") as fq, open(f"{a}/atis.{split}.intent.csv", "w") as fi, \
         open(f"{a}/atis.{split}.slots.csv", "w") as fs:
        for w, it, sl in rows:
            fq.write(" ".join(str(vocab.index(x)) for x in ["BOS"] + w.split() + ["EOS"]) + "\n")
            fi.write(f"{it}\n")
            fs.write(" ".join(map(str, [5] + sl + [5])) + "\n")
PY
"$bin" data import-atis "$is/atis" "$work/atis_out" > "$work/atis.log" 2>&1 || { cat "$work/atis.log"; fail "import-atis"; }
for f in train.tsv train_slots.tsv test.tsv test_slots.tsv dict.intents.csv dict.slots.csv; do
  cmp "$is/$f" "$work/atis_out/$f" || fail "import-atis: $f differs from the data it was made from"
done
printf '7 99999 8\n' > "$is/atis/atis.test.query.csv"
"$bin" data import-atis "$is/atis" "$work/atis_bad" > "$work/atis_bad.log" 2>&1 && fail "import-atis took a word id out of range"
grep -q "atis.test.query.csv:1" "$work/atis_bad.log" || { cat "$work/atis_bad.log"; fail "import-atis message"; }
[ ! -e "$work/atis_bad" ] || fail "a failed import-atis left files"
# a failed import into a folder that already holds a data set leaves it byte for byte as it was (the
# test split fails after train converted; then a missing input): no file removed, none half-replaced
"$bin" data import-atis "$is/atis" "$work/atis_out" > "$work/atis_bad2.log" 2>&1 && fail "import-atis took a word id out of range"
grep -q "atis.test.query.csv:1" "$work/atis_bad2.log" || { cat "$work/atis_bad2.log"; fail "import-atis message"; }
mkdir -p "$work/atis_noslots"; cp "$is"/atis/atis.dict.* "$is"/atis/atis.train.* "$is"/atis/atis.test.query.csv \
  "$is"/atis/atis.test.intent.csv "$work/atis_noslots/"
"$bin" data import-atis "$work/atis_noslots" "$work/atis_out" > "$work/atis_bad3.log" 2>&1 && fail "import-atis without atis.test.slots.csv"
grep -q "atis.test.slots.csv" "$work/atis_bad3.log" || { cat "$work/atis_bad3.log"; fail "import-atis missing-file message"; }
for f in train.tsv train_slots.tsv test.tsv test_slots.tsv dict.intents.csv dict.slots.csv; do
  cmp "$is/$f" "$work/atis_out/$f" || fail "a failed import-atis changed or removed the existing $f"
done
[ "$(ls -A "$work/atis_out" | wc -l)" = 6 ] || { ls -A "$work/atis_out"; fail "a failed import-atis left temporary files"; }
echo "ok: import-atis"
isa=(examples/intent_slot_classification_config.yaml "${tiny[@]}" model.data_dir="$is" trainer.max_steps=120
  trainer.val_check_interval=20 model.optim.lr=2e-3)
"$bin" train "${isa[@]}" exp_manager.exp_dir="$work/i" > "$work/i.log" 2>&1 || { tail -20 "$work/i.log"; fail "intent/slot train"; }
d="$work/i/IntentSlot/v"
head -1 "$d/metrics.csv" | grep -q "val_intent_f1,val_intent_precision,val_intent_recall,val_slot_f1" || fail "intent/slot metric names"
"$bin" test "$d/checkpoints/IntentSlot.nemo" "$is" > "$work/i.test" 2>&1 || { cat "$work/i.test"; fail "intent/slot test"; }
grep -q "Intent report" "$work/i.test" && grep -q "Slot report" "$work/i.test" || fail "intent/slot reports"
compare_last_val "$d/metrics.csv" "$work/i.test" || fail "intent/slot restored metrics"
# NeMo's intent_slot_classification.py tests the trained model after training (trainer.test on
# <data_dir>/<test_ds.prefix>.tsv, the model in memory = the .nemo's weights): the reports and test_*
# lines printed are `megatune test` on the .nemo, to every printed digit
tested() { awk '/^Intent report/ {n = 0} {l[++n] = $0} /^test_[a-z_]*: / {e = n} END {for (i = 1; i <= e; i++) print l[i]}' "$1"; }
tested "$work/i.log" > "$work/i.after"; tested "$work/i.test" > "$work/i.restored"
[ "$(grep -c '^test_' "$work/i.restored")" = 7 ] || { cat "$work/i.test"; fail "intent/slot: megatune test printed no test_ lines"; }
cmp -s "$work/i.after" "$work/i.restored" || { diff "$work/i.after" "$work/i.restored"; fail "intent/slot: the test after training differs from megatune test on the .nemo"; }
echo "ok: intent/slot tests after training: $(grep '^test_intent_f1\|^test_slot_f1' "$work/i.after" | tr '\n' ' ')== megatune test on the .nemo"
# without <prefix>.tsv NeMo's script fails after training; megatune fails before it, naming the file
mkdir -p "$work/is_notest"; cp "$is"/train*.tsv "$is"/dict.* "$work/is_notest/"
"$bin" train "${isa[@]}" model.data_dir="$work/is_notest" model.validation_ds.prefix=train exp_manager.exp_dir="$work/i_nt" \
  > "$work/i_nt.log" 2>&1 && fail "intent/slot without test.tsv trained"
[ "$(grep -c "megatune: error" "$work/i_nt.log")" = 1 ] && grep -q "model.test_ds: $work/is_notest/test.tsv: .*model.test_ds.prefix=" "$work/i_nt.log" \
  && ! grep -q "^step " "$work/i_nt.log" && [ ! -e "$work/i_nt" ] \
  || { cat "$work/i_nt.log"; fail "intent/slot without test.tsv: want one message naming it, before training, no folder"; }
"$bin" train "${isa[@]}" model.data_dir="$work/is_notest" model.validation_ds.prefix=train trainer.fast_dev_run=true \
  exp_manager.exp_dir="$work/i_fd" > "$work/i_fd.log" 2>&1 || { cat "$work/i_fd.log"; fail "intent/slot fast_dev_run without test.tsv"; }
grep -q "^test_" "$work/i_fd.log" && fail "intent/slot tested under fast_dev_run (NeMo's script returns before its test)"
echo "ok: intent/slot without test.tsv: $(grep -m1 "error" "$work/i_nt.log")"
f1=$(grep "^test_slot_f1" "$work/i.test" | cut -d' ' -f2); if1=$(grep "^test_intent_f1" "$work/i.test" | cut -d' ' -f2)
# the majorities: intent 18/48 = 37.5%, slot 'O' about 66% of the words
"$py" -c "import sys; sys.exit(0 if float('$if1') > 55 and float('$f1') > 72 else 1)" \
  || fail "intent/slot did not learn (intent f1 $if1, slot f1 $f1)"
printf 'play some songs by adele\nbook a flight to paris on monday please\n' | "$bin" predict "$d/checkpoints/IntentSlot.nemo" - \
  > "$work/i.out" 2> "$work/i.err" || { cat "$work/i.err"; fail "intent/slot predict"; }
awk -F'\t' 'NF != 2 { exit 1 } { n = split($2, s, " "); if (n != (NR == 1 ? 5 : 8)) exit 1 }' "$work/i.out" \
  || { cat "$work/i.out"; fail "intent/slot predict format"; }
resume_check is IntentSlot "${isa[@]}" trainer.max_steps=40
echo "ok: intent_slot_classification (intent f1 $if1, slot f1 $f1): $(head -1 "$work/i.out")"

# ---- 4. TP=2 under mpirun == one process ----
mpi_env root shm asan # (OMP_NUM_THREADS=1 per command below)
if mpi_part "the TP=2 part"; then
    for t in p i; do
      if [ $t = p ]; then args=("${pnc[@]}" trainer.max_steps=10 trainer.val_check_interval=5); sub=Punctuation_and_Capitalization
      else args=("${isa[@]}" trainer.max_steps=10 trainer.val_check_interval=5); sub=IntentSlot; fi
      OMP_NUM_THREADS=1 "$bin" train "${args[@]}" exp_manager.exp_dir="$work/${t}1" > "$work/${t}1.log" 2>&1 || fail "$t TP=1"
      OMP_NUM_THREADS=1 mpirun --oversubscribe -np 2 "$bin" train "${args[@]}" model.tensor_model_parallel_size=2 \
        exp_manager.exp_dir="$work/${t}2" > "$work/${t}2.log" 2>&1 || { tail "$work/${t}2.log"; fail "$t TP=2"; }
      "$py" - "$work/${t}1/$sub/v/metrics.csv" "$work/${t}2/$sub/v/metrics.csv" << 'PY' || fail "$t: TP=2 differs from TP=1"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) >= 10
w = 0.0
for ra, rb in zip(a, b):
    for k in ra:
        if k in ("step", "epoch", "lr") or ra[k] == "": assert ra[k] == rb[k]; continue
        x, y = float(ra[k]), float(rb[k]); rel = abs(x - y) / max(abs(x), 1e-12); w = max(w, rel)
        assert rel <= 1e-5, (ra["step"], k, x, y)
print(f"  TP=2 == TP=1: {len(a)} rows, worst relative difference {w:.2e}")
PY
      # the TP=2 .nemo (mp_rank_XX shards) restores in one process and scores as the TP=1 one
      for k in 1 2; do
        if [ $t = p ]; then ta=(model.dataset.data_dir="$work/pnc" model.test_ds.num_samples=96); else ta=(model.data_dir="$is"); fi
        OMP_NUM_THREADS=1 "$bin" test "$work/${t}$k/$sub/v/checkpoints/$sub.nemo" "${ta[@]}" > "$work/${t}$k.test" 2>&1 \
          || { cat "$work/${t}$k.test"; fail "$t: test of the TP=$k .nemo"; }
      done
      unzip -l "$work/${t}2/$sub/v/checkpoints/$sub.nemo" 2>/dev/null | grep -q "mp_rank_01/model_weights.ckpt" \
        || tar -tf "$work/${t}2/$sub/v/checkpoints/$sub.nemo" | grep -q "mp_rank_01/model_weights.ckpt" \
        || fail "$t: the TP=2 .nemo has no mp_rank_01 weights"
      "$py" - "$work/${t}1.test" "$work/${t}2.test" << 'PY' || fail "$t: TP=2 .nemo scores differently"
import sys
a, b = ({l.split(": ")[0]: float(l.split(": ")[1]) for l in open(f) if l.startswith("test_")} for f in sys.argv[1:3])
assert a.keys() == b.keys() and len(a) == 7, (a, b)
for k in a:
    assert abs(a[k] - b[k]) <= 1e-5 * max(abs(a[k]), 1e-12), (k, a[k], b[k])
print("  TP=2 .nemo restored in one process: test metrics equal TP=1's")
PY
    done
    echo "ok: TP=2 under mpirun"
fi
mpi_part_end
echo PASSED
