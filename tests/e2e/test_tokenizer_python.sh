#!/usr/bin/env bash
# NeMo's Megatron-BERT path tokenizes with the slow Python BertTokenizer, not HF's Rust one.
# tools/py_bert_tokenize.py writes that algorithm out (standard library only); on real text from
# the shared data sets its ids must equal megatune's, cased and uncased. (The corners where the two
# differ - unassigned code points, final sigma, ... - are listed in src/text/tokenizer.h and do
# not occur in these corpora.) Exit 77 without the data.
set -uo pipefail
src=${MEGATUNE_SOURCE_DIR:?}
bin=${MEGATUNE_BIN:?}
data=${MEGATUNE_DATA:-}
py=${MEGATUNE_PYTHON:-python3}
[ -n "$data" ] && [ -f "$data/bert-base-uncased/vocab.txt" ] || { echo "SKIP: MEGATUNE_DATA vocabs missing"; exit 77; }
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
per_source=1000
[ "${MEGATUNE_SANITIZED:-0}" = 1 ] && per_source=300
"$py" "$src/tools/tokenizer_corpus.py" "$data" "$tmp/corpus.txt" --max-per-source $per_source 2> "$tmp/log"
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: data sets missing"; exit 77; }
[ $rc -ne 0 ] && { cat "$tmp/log"; echo "FAIL: corpus extraction"; exit 1; }
fail=0
for casing in uncased cased; do
  v=$data/bert-base-$casing/vocab.txt
  "$py" "$src/tools/py_bert_tokenize.py" "$v" --$casing < "$tmp/corpus.txt" > "$tmp/py.out" \
    || { echo "FAIL: $casing: the Python reference failed"; fail=1; continue; }
  "$bin" tokenize --vocab-file "$v" --$casing < "$tmp/corpus.txt" > "$tmp/mt.out" \
    || { echo "FAIL: $casing: megatune tokenize exited $?"; fail=1; continue; }
  n=$(wc -l < "$tmp/corpus.txt")
  [ "$n" -gt 0 ] || { echo "FAIL: the corpus is empty"; fail=1; continue; }
  bad=$(paste -d '\n' "$tmp/py.out" "$tmp/mt.out" | awk 'NR%2==1{h=$0; next} h!=$0{n++} END{print n+0}')
  if [ "$(wc -l < "$tmp/mt.out")" = "$n" ] && [ "$(wc -l < "$tmp/py.out")" = "$n" ] && [ "$bad" = 0 ]; then
    echo "ok: $casing: $n lines, same ids as the Python BertTokenizer algorithm"
  else
    echo "FAIL: $casing: $bad of $n lines differ"
    paste -d '\n' "$tmp/corpus.txt" "$tmp/py.out" "$tmp/mt.out" | awk 'NR%3==1{t=$0} NR%3==2{h=$0} NR%3==0 && h!=$0 {print "  text: " t; print "  py  : " h; print "  mt  : " $0; if (++k==3) exit}'
    fail=1
  fi
done
[ $fail -eq 0 ] && echo PASSED || echo FAILED
exit $fail
