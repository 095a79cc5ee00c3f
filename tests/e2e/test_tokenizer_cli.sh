#!/usr/bin/env bash
# `megatune tokenize` as a user meets it: output formats, --pretrained through the model directory,
# --info (Megatron padded vocab size), and the error paths (missing vocab, bad UTF-8 with line and
# byte, unknown pretrained name, bad options) with their exit codes.
set -uo pipefail
bin=${MEGATUNE_BIN:?}
data=${MEGATUNE_DATA:-}
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # $1 description, then the command's status test
  if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}

printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n,\n!\nun\n##aff\n##able\nHello\n' > "$tmp/vocab.txt"
v=$tmp/vocab.txt

out=$(printf 'Hello, world!\nunaffable [SEP]\n\n' | "$bin" tokenize --vocab-file "$v")
check "ids, one line per input line (uncased default)" '[ "$out" = "$(printf "5 7 6 8\n9 10 11 3\n")" ]'
out=$(printf 'Hello, world!\n' | "$bin" tokenize --vocab-file "$v" --cased --tokens)
check "--cased --tokens" '[ "$out" = "Hello , world !" ]'
out=$(printf 'Hello, world!\n' | "$bin" tokenize --vocab-file "$v" --tokens --offsets)
check "--offsets prints X(start,end,word)" '[ "$out" = "hello(0,5,0) ,(5,6,0) world(7,12,1) !(12,13,1)" ]'
out=$(printf 'no newline at end' | "$bin" tokenize --vocab-file "$v" | wc -l)
check "a last line without newline is tokenized" '[ "$out" = 1 ]'
out=$(printf 'a\r\n' | "$bin" tokenize --vocab-file "$v")
check "CRLF input: the CR is whitespace" '[ "$out" = "1" ]'

"$bin" tokenize --help > "$tmp/help.txt"; rc=$?
check "--help exits 0 and shows examples and the pretrained names" \
  '[ $rc = 0 ] && grep -q "examples:" "$tmp/help.txt" && grep -q "megatron-bert-345m-uncased" "$tmp/help.txt"'

err=$(echo hi | "$bin" tokenize --vocab-file "$tmp/missing/vocab.txt" 2>&1 >/dev/null); rc=$?
check "missing vocab: exit 1, message names the path" '[ $rc = 1 ] && [[ "$err" == *"$tmp/missing/vocab.txt"* ]] && [ $(printf "%s\n" "$err" | wc -l) = 1 ]'

err=$(printf 'hello\nab\xffcd\nworld\n' | "$bin" tokenize --vocab-file "$v" 2>&1 >"$tmp/o.txt"); rc=$?
check "bad UTF-8: exit 1 naming line 2 and byte 2" '[ $rc = 1 ] && [[ "$err" == *"line 2"* ]] && [[ "$err" == *"byte offset 2"* ]]'
check "bad UTF-8: lines before the error were printed" '[ "$(cat "$tmp/o.txt")" = "5" ]'
out=$(printf 'hello\nab\xffcd\nworld\n' | "$bin" tokenize --vocab-file "$v" --invalid-utf8=replace); rc=$?
check "--invalid-utf8=replace: no error, all lines" '[ $rc = 0 ] && [ "$(printf "%s\n" "$out" | wc -l)" = 3 ]'
err=$(echo x | "$bin" tokenize --vocab-file "$v" --invalid-utf8=maybe 2>&1); rc=$?
check "bad --invalid-utf8 value: usage error 2" '[ $rc = 2 ] && [[ "$err" == *maybe* ]]'
err=$(echo x | "$bin" tokenize --frobnicate 2>&1); rc=$?
check "unknown option: usage error 2" '[ $rc = 2 ] && [[ "$err" == *frobnicate* ]]'
err=$(echo x | "$bin" tokenize 2>&1); rc=$?
check "no vocab given: usage error 2" '[ $rc = 2 ]'

# --pretrained resolves <MEGATUNE_MODEL_DIR>/<name>/vocab.txt and the name's casing.
export MEGATUNE_MODEL_DIR=$tmp/models
err=$(echo hi | MEGATUNE_OFFLINE=1 "$bin" tokenize --pretrained megatron-bert-345m-cased 2>&1); rc=$?
check "--pretrained with no file: exit 1, exact path and download page" \
  '[ $rc = 1 ] && [[ "$err" == *"$tmp/models/megatron-bert-345m-cased/vocab.txt"* ]] && [[ "$err" == *"huggingface.co/bert-large-cased"* ]]'
mkdir -p "$tmp/models/megatron-bert-345m-cased" "$tmp/models/bert-base-uncased"
cp "$v" "$tmp/models/megatron-bert-345m-cased/vocab.txt"
cp "$v" "$tmp/models/bert-base-uncased/vocab.txt"
out=$(echo 'Hello hello' | "$bin" tokenize --pretrained megatron-bert-345m-cased)
check "--pretrained cased name keeps case" '[ "$out" = "12 5" ]'
out=$(echo 'Hello hello' | "$bin" tokenize --pretrained bert-base-uncased)
check "--pretrained uncased name lower-cases" '[ "$out" = "5 5" ]'
out=$(echo 'Hello hello' | "$bin" tokenize --pretrained megatron-bert-345m-cased --uncased)
check "--uncased overrides the name's casing" '[ "$out" = "5 5" ]'
err=$(echo hi | "$bin" tokenize --pretrained bert-gigantic 2>&1); rc=$?
check "unknown pretrained name: exit 1, lists the known names" '[ $rc = 1 ] && [[ "$err" == *bert-gigantic* ]] && [[ "$err" == *biomegatron-bert-345m-uncased* ]]'

out=$("$bin" tokenize --vocab-file "$v" --info)
check "--info on a small vocab: 13 lines, padded to 128" \
  '[[ "$out" == *"vocab_size 13"* ]] && [[ "$out" == *"padded_vocab_size 128 "* ]] && [[ "$out" == *"unk_id 1"* ]] && [[ "$out" == *"mask_id 4"* ]]'

if [ -n "$data" ] && [ -f "$data/bert-base-uncased/vocab.txt" ]; then
  out=$("$bin" tokenize --vocab-file "$data/bert-base-uncased/vocab.txt" --info)
  check "--info uncased: 30522 -> 30592 (nemo.md)" '[[ "$out" == *"vocab_size 30522"* ]] && [[ "$out" == *"padded_vocab_size 30592 "* ]]'
  out=$("$bin" tokenize --vocab-file "$data/bert-base-uncased/vocab.txt" --info --tp 2)
  check "--info uncased TP=2: 30720 (nemo.md)" '[[ "$out" == *"padded_vocab_size 30720 "* ]]'
  out=$("$bin" tokenize --vocab-file "$data/bert-base-cased/vocab.txt" --cased --info)
  check "--info cased: 28996 -> 29056 (nemo.md)" '[[ "$out" == *"vocab_size 28996"* ]] && [[ "$out" == *"padded_vocab_size 29056 "* ]]'
  # The examples in --help print what they say.
  out=$(echo 'Hello, world!' | "$bin" tokenize --vocab-file "$data/bert-base-uncased/vocab.txt")
  check "help example ids" 'grep -q "^      $out\$" "$tmp/help.txt"'
  out=$(echo 'Hello, world!' | "$bin" tokenize --vocab-file "$data/bert-base-uncased/vocab.txt" --tokens --offsets)
  check "help example tokens/offsets" 'grep -qF "      $out" "$tmp/help.txt"'
else
  [ $fail -eq 0 ] || { echo FAILED; exit 1; }
  echo "SKIP: MEGATUNE_DATA ($data) has no bert-base-uncased/vocab.txt: the real-vocab checks not run (the rest passed)"
  exit 77
fi
[ $fail -eq 0 ] && echo PASSED || echo FAILED
exit $fail
