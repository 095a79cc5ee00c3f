#!/usr/bin/env bash
# Every Unicode code point, and random mark-heavy text, against Hugging Face's tokenizers (npm):
#  1. each code point c (all 1,112,063 that can be one line of UTF-8; a sample under sanitizers)
#     in "x<c>y <c>A<c>": control/whitespace/punctuation/CJK/accent/case handling per character;
#  2. 20,000 seeded random lines drawn mostly from combining marks, Hangul, CJK compatibility
#     ideographs, musical symbols and other planes, mixed with special tokens: NFD canonical
#     reordering and the byte offsets HF assigns to reordered characters.
# Ids and byte offsets must be identical, cased and uncased. Exit 77 without node/tokenizers/data.
set -uo pipefail
src=${MEGATUNE_SOURCE_DIR:?}
bin=${MEGATUNE_BIN:?}
data=${MEGATUNE_DATA:-}
py=${MEGATUNE_PYTHON:-python3}
hf=$src/tools/hf_tokenize.js
[ -n "$data" ] && [ -f "$data/bert-base-uncased/vocab.txt" ] || { echo "SKIP: MEGATUNE_DATA vocabs missing"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo x | node "$hf" --vocab "$data/bert-base-uncased/vocab.txt" > /dev/null
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: npm package tokenizers missing"; exit 77; }
[ $rc -ne 0 ] && { echo "FAIL: hf_tokenize.js does not run"; exit 1; }

step=1
[ "${MEGATUNE_SANITIZED:-0}" = 1 ] && step=5
"$py" - "$tmp" $step <<'EOF'
import random, sys
tmp, step = sys.argv[1], int(sys.argv[2])
with open(f"{tmp}/sweep.txt", "w", encoding="utf-8", newline="\n") as f:
    for c in range(0, 0x110000, 1):
        if 0xD800 <= c <= 0xDFFF or c == 10 or (c % step and c > 0x3000):
            continue
        ch = chr(c)
        f.write(f"x{ch}y {ch}A{ch}\n")
r = random.Random(20240611)
pools = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
         (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x1E00, 0x1FFF),
         (0x2000, 0x206F), (0x20D0, 0x20FF), (0x2E00, 0x2E7F), (0x3000, 0x30FF), (0x302A, 0x302F),
         (0x4E00, 0x4E80), (0xAC00, 0xAD00), (0xF900, 0xFAFF), (0xFE00, 0xFE2F), (0xFF00, 0xFFEF),
         (0x1D160, 0x1D17F), (0x1F300, 0x1F6FF), (0x16FF0, 0x16FF1), (0x1E000, 0x1E02A), (0x0, 0x1F),
         (0x10000, 0x10FFFF)]
specials = ["[SEP]", "[CLS]", "[MASK]", "[UNK]", "[PAD]", "[", "]", " ", "  ", "\t", "\u0130", "\u03a3", "ß"]
with open(f"{tmp}/rand.txt", "w", encoding="utf-8", newline="\n") as f:
    for i in range(20000):
        s = []
        for _ in range(r.randint(0, 25)):
            if r.random() < 0.1:
                s.append(r.choice(specials))
                continue
            a, b = r.choice(pools)
            c = r.randint(a, b)
            s.append("A" if 0xD800 <= c <= 0xDFFF or c == 10 else chr(c))
        f.write("".join(s) + "\n")
EOF
[ $? -eq 0 ] && [ -s "$tmp/sweep.txt" ] && [ -s "$tmp/rand.txt" ] || { echo "FAIL: writing the test lines"; exit 1; }
fail=0
for file in sweep rand; do
  for casing in uncased cased; do
    v=$data/bert-base-$casing/vocab.txt
    node "$hf" --vocab "$v" --$casing --offsets < "$tmp/$file.txt" > "$tmp/hf.out" || { echo "FAIL: node"; fail=1; continue; }
    "$bin" tokenize --vocab-file "$v" --$casing --offsets < "$tmp/$file.txt" | sed -E 's/,-?[0-9]+\)/)/g' > "$tmp/mt.out" \
      || { echo "FAIL: $file ($casing): megatune tokenize failed (pipeline exit ${PIPESTATUS[*]})"; fail=1; continue; }
    n=$(wc -l < "$tmp/$file.txt")
    bad=$(paste -d '\n' "$tmp/hf.out" "$tmp/mt.out" | awk 'NR%2==1{h=$0; next} h!=$0{n++} END{print n+0}')
    if [ "$(wc -l < "$tmp/mt.out")" = "$n" ] && [ "$bad" = 0 ]; then
      echo "ok: $file ($casing): $n lines identical (ids and byte offsets)"
    else
      echo "FAIL: $file ($casing): $bad of $n lines differ; first ones:"
      paste -d '\n' "$tmp/$file.txt" "$tmp/hf.out" "$tmp/mt.out" | awk 'NR%3==1{t=$0} NR%3==2{h=$0} NR%3==0 && h!=$0 {print "  text: " t; print "  hf  : " h; print "  mt  : " $0; if (++k==3) exit}'
      fail=1
    fi
  done
done
[ $fail -eq 0 ] && echo PASSED || echo FAILED
exit $fail
