#!/usr/bin/env bash
# Parity with Hugging Face's tokenizers (npm, the Rust library) configured as
# BertWordPieceTokenizer: real text from the shared data sets (CoNLL-2003, SQuAD dev v1.1/v2.0
# contexts and questions, GLUE SST-2/MRPC/RTE/CoLA/STS-B, ChemProt, NCBI-disease) and hand-written
# edge cases, for the uncased vocab (lowercase + strip accents) and the cased vocab. Every line must
# give the same ids AND the same byte offsets. Word indices are checked against Python's
# str.split(). One megatune and one node process per file (streamed), not one per line.
# Exit 77 when node, the npm package or the data are missing.
set -uo pipefail
src=${MEGATUNE_SOURCE_DIR:?}
bin=${MEGATUNE_BIN:?}
data=${MEGATUNE_DATA:-}
py=${MEGATUNE_PYTHON:-python3}
hf=$src/tools/hf_tokenize.js
[ -n "$data" ] && [ -f "$data/bert-base-uncased/vocab.txt" ] && [ -f "$data/bert-base-cased/vocab.txt" ] \
  || { echo "SKIP: MEGATUNE_DATA vocabs missing"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo x > "$tmp/probe.txt"
node "$hf" --vocab "$data/bert-base-uncased/vocab.txt" < "$tmp/probe.txt" > /dev/null
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: npm package tokenizers missing (cd tools && npm install tokenizers)"; exit 77; }
[ $rc -ne 0 ] && { echo "FAIL: hf_tokenize.js does not run"; exit 1; }

per_source=3000
[ "${MEGATUNE_SANITIZED:-0}" = 1 ] && per_source=600
"$py" "$src/tools/tokenizer_corpus.py" "$data" "$tmp/corpus.txt" --max-per-source $per_source 2> "$tmp/corpus.log"
rc=$?
[ $rc -eq 77 ] && { cat "$tmp/corpus.log"; echo "SKIP: data sets missing"; exit 77; }
[ $rc -ne 0 ] && { cat "$tmp/corpus.log"; echo "FAIL: corpus extraction"; exit 1; }

# Hand-written edge cases, one per line (written by Python so every byte is explicit).
"$py" - "$tmp/edge.txt" <<'EOF'
import sys
cases = [
    "", " ", "\t\t", "   \t  ", "\r",
    "Hello, world!", "HELLO World hello", "résumé naïve café Ångström Æsir Øre ßtraße",
    "cafe\u0301 e\u0300\u0301\u0302x a\u0308\u0323b \u0301lone", "İstanbul IĞDIR ΟΔΟΣ Σίσυφος ΣΑΣ",
    "ﬁne ﬂow Ⅻ ① ㎏ ＦＵＬＬＷＩＤＴＨ ｈｅｌｌｏ", "中文字符测试 日本語のテキスト 한국어 텍스트",
    "a中b 中a 中中中 \u3400\U00020000\U0002B81F\U0002B820\U0002B920 \uF900\uFA0E \U0002F800",
    "emoji 😀😃 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ ☺︎ 🥰x",
    "ctrl\x01\x02\x03x del\x7fx nul\x00x esc\x1bx", "bell\x07 vt\x0bx ff\x0cx fs\x1cx us\x1fx nel\x85x",
    "tab\tsep\tvalues", "nbsp\u00a0here", "thin\u2009space\u200aand\u3000ideographic\u2028line\u2029para",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj\u00adsoft", "replacement\ufffdchar",
    "[CLS] text [SEP] more [PAD] [UNK] [MASK]", "a[SEP]b[CLS]c", "[cls] [Sep] [MASK [MASK]] [[UNK]]",
    "!!!??? ... ,,, --- ((( ))) \"quoted\" 'single' `back`", "a-b_c.d/e\\f@g#h$i%j^k&l*m+n=o|p~q<r>s{t}u[v]w:x;y",
    "«guillemets» „quotes“ ‘curly’ — – … · • ¿¡ ※ § ¶ † ‡ ‰ ′ ″",
    "$100 €50 £20 ¥1000 ₹ ₩ ฿ ¢ 50% 3.14 1,000,000 2021-05-06 12:30",
    "x" * 100, "x" * 101, "é" * 100, "é" * 101, "ab" * 60, "antidisestablishmentarianism" * 4,
    "supercalifragilisticexpialidocious unbelievably uncharacteristically",
    "Ελληνικά Русский текст עברית العربية हिन्दी ภาษาไทย ქართული Հայերեն",
    "ﷺ ﷽ ٱلْعَرَبِيَّة अनुच्छेद ক্ষ ฉัน",
    "\U0001D400\U0001D7D8 math 𝕏 𝔸 ∑∫√∞≠≤ ±×÷", "private\ue000use\U000F0000x", "unassigned\u0378x\U000E0080y",
    "variation\ufe0fselector\U000E0100x", "combining\u20ddenclosing\u0488x", "\u0e01\u0e34\u0e4d\u0e48 thai marks",
    "Hangul 가각 jamo \u1100\u1161\u11a8", "mixed CASE with ÀÉÎÕÜ and àéîõü", "trailing spaces   ",
    "   leading spaces", "multiple     internal      spaces", "end.", "(parenthetical)", "e.g. i.e. U.S.A.",
    "don't can't won't it's", "email@example.com http://example.com/path?q=1&r=2#frag",
    # long runs of combining marks (NFD reordering of more than 32 marks, buffer growth past 64)
    "a" + "\u302e\u0316\u0301\U0001D166" * 15 + " c", "b" + "\u0301\u302e" * 40 + "!",
    "x" + "\u0301" * 200 + "y",
    "\u302f\u302e" * 50 + " \u1e000\u0300\u1e001" * 30,
]
with open(sys.argv[1], "w", encoding="utf-8", newline="\n") as f:
    for c in cases:
        assert "\n" not in c
        f.write(c + "\n")
EOF
[ $? -eq 0 ] && [ -s "$tmp/edge.txt" ] || { echo "FAIL: writing the edge cases"; exit 1; }

fail=0
compare() { # $1 file, $2 cased|uncased, $3 label
  local v=$data/bert-base-$2/vocab.txt
  node "$hf" --vocab "$v" --$2 --offsets < "$1" > "$tmp/hf.out" || { echo "FAIL: node on $3"; fail=1; return; }
  "$bin" tokenize --vocab-file "$v" --$2 --offsets < "$1" > "$tmp/mt.raw" || { echo "FAIL: megatune on $3"; fail=1; return; }
  sed -E 's/,-?[0-9]+\)/)/g' "$tmp/mt.raw" > "$tmp/mt.out" # drop the word index HF does not report
  local n_in n_hf n_mt
  n_in=$(wc -l < "$1"); n_hf=$(wc -l < "$tmp/hf.out"); n_mt=$(wc -l < "$tmp/mt.out")
  if [ "$n_in" != "$n_hf" ] || [ "$n_in" != "$n_mt" ]; then
    echo "FAIL: $3 ($2): line counts differ: input $n_in, hf $n_hf, megatune $n_mt"; fail=1; return
  fi
  local bad
  bad=$(paste -d '\n' "$tmp/hf.out" "$tmp/mt.out" | awk 'NR%2==1{h=$0; next} h!=$0{n++} END{print n+0}')
  local toks
  toks=$(wc -w < "$tmp/hf.out")
  if [ "$bad" != 0 ]; then
    echo "FAIL: $3 ($2): $bad of $n_in lines differ; first ones:"
    paste -d '\n' "$1" "$tmp/hf.out" "$tmp/mt.out" | awk 'NR%3==1{t=$0} NR%3==2{h=$0} NR%3==0 && h!=$0 {print "  text: " t; print "  hf  : " h; print "  mt  : " $0; if (++k==3) exit}'
    fail=1
  else
    echo "ok: $3 ($2): $n_in lines, $toks tokens: identical ids and byte offsets"
  fi
  # Word indices: each token's word is the Python str.split() word holding its first byte.
  "$py" - "$1" "$tmp/mt.raw" <<'EOF' || { echo "FAIL: $3 ($2): word indices"; fail=1; }
import re, sys
texts = open(sys.argv[1], "rb").read().split(b"\n")
outs = open(sys.argv[2], "rb").read().split(b"\n")
pat = re.compile(rb"\((\d+),(\d+),(-?\d+)\)(?: |$)")
bad = checked = 0
for text, out in zip(texts, outs):
    s = text.decode("utf-8")
    word_of = [-1] * (len(text) + 1)   # byte -> python word index
    pos = w = 0
    for i, word in enumerate(s.split()):
        start = s.index(word, pos)
        b0 = len(s[:start].encode()); b1 = b0 + len(word.encode())
        for b in range(b0, b1): word_of[b] = i
        pos = start + len(word)
    for m in pat.finditer(out):
        start, word = int(m.group(1)), int(m.group(3))
        checked += 1
        if word_of[start] != word:
            bad += 1
            if bad <= 3: print(f"  word mismatch: {s!r} token at byte {start}: got {word}, python {word_of[start]}")
print(f"  words: {checked} tokens checked against str.split(), {bad} wrong")
sys.exit(1 if bad else 0)
EOF
}

cat "$tmp/corpus.log" | sed 's/^/  corpus: /'
for casing in uncased cased; do
  compare "$tmp/corpus.txt" $casing "real corpus"
  compare "$tmp/edge.txt" $casing "edge cases"
done

# Invalid UTF-8 under --invalid-utf8=replace: node decodes the bytes with U+FFFD, which BERT's
# cleaning removes; ids must agree (offsets differ by construction: node's string is re-encoded).
printf 'ok\xffline\nbad \xc0\xaf overlong\nsurrogate \xed\xa0\x80 x\ntrunc \xe4\xb8\n\xfe\xff start\nmid\x80dle word\n' > "$tmp/bad.txt"
for casing in uncased cased; do
  v=$data/bert-base-$casing/vocab.txt
  # (both must succeed and print one line per input line: two empty outputs would compare equal)
  node "$hf" --vocab "$v" --$casing < "$tmp/bad.txt" > "$tmp/hf.bad" || { echo "FAIL: node on invalid UTF-8 ($casing)"; fail=1; }
  "$bin" tokenize --vocab-file "$v" --$casing --invalid-utf8=replace < "$tmp/bad.txt" > "$tmp/mt.bad" \
    || { echo "FAIL: megatune tokenize --invalid-utf8=replace exit code ($casing)"; fail=1; }
  [ "$(wc -l < "$tmp/mt.bad")" = "$(wc -l < "$tmp/bad.txt")" ] && [ -s "$tmp/mt.bad" ] \
    || { echo "FAIL: invalid UTF-8 ($casing): $(wc -l < "$tmp/mt.bad") output lines for $(wc -l < "$tmp/bad.txt")"; fail=1; }
  if cmp -s "$tmp/hf.bad" "$tmp/mt.bad"; then echo "ok: invalid UTF-8 replaced ($casing): $(wc -l < "$tmp/bad.txt") lines identical"
  else echo "FAIL: invalid UTF-8 replace ($casing)"; diff "$tmp/hf.bad" "$tmp/mt.bad" | head; fail=1; fi
done
# Vocab-file quirks: duplicate tokens (the later line wins), CRLF, trailing spaces/tabs/NBSP.
printf '[PAD]\n[UNK]\r\n[CLS]\n[SEP]  \nhello\nworld\t\nhello\n##s\n\xc2\xa0\nfoo\xc2\xa0\n##s\nbar \r\n' > "$tmp/dupvocab.txt"
printf 'hello worlds foo bar [SEP] hellos [UNK]\nHello\n' > "$tmp/dup.txt"
node "$hf" --vocab "$tmp/dupvocab.txt" --offsets < "$tmp/dup.txt" > "$tmp/hf.dup"
"$bin" tokenize --vocab-file "$tmp/dupvocab.txt" --offsets < "$tmp/dup.txt" | sed -E 's/,-?[0-9]+\)/)/g' > "$tmp/mt.dup"
if cmp -s "$tmp/hf.dup" "$tmp/mt.dup" && grep -q '^6(0,5) 5(6,11) 10(11,12)' "$tmp/mt.dup"; then
  echo "ok: vocab with duplicates, CRLF and trailing whitespace: same ids as HF (later duplicate wins)"
else echo "FAIL: vocab quirks"; diff "$tmp/hf.dup" "$tmp/mt.dup"; fail=1; fi
[ $fail -eq 0 ] && echo "PASSED" || echo "FAILED"
exit $fail
