#!/usr/bin/env bash
# Tokenizer throughput, megatune vs Hugging Face's Rust tokenizer (npm `tokenizers`, set up as
# BertWordPieceTokenizer by tools/hf_tokenize.js), on the same real text: every line of the
# shared corpora (CoNLL-2003, SQuAD dev, GLUE, ChemProt, NCBI; tools/tokenizer_corpus.py), both
# vocabs. Neither timing includes reading the file or printing. HF is measured single-threaded
# (RAYON_NUM_THREADS=1, like megatune's one thread) and with its default thread pool
# (encodeBatch over 1000-line batches).
#   bench/bench_tokenizer.sh [BUILD_DIR]     (default: build; needs bench_tokenizer built)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
data=${MEGATUNE_DATA:-$here/../shared/data}
bench=$build/bench/bench_tokenizer
[ -x "$bench" ] || { echo "build it first: cmake --build $build --target bench_tokenizer" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$here/tools/tokenizer_corpus.py" "$data" "$tmp/corpus.txt" 2> "$tmp/log"
echo "corpus: $(tail -1 "$tmp/log" | cut -d' ' -f2) lines, $(wc -c < "$tmp/corpus.txt") bytes; $(nproc) CPUs"
for casing in uncased cased; do
  v=$data/bert-base-$casing/vocab.txt
  mt=$("$bench" --vocab "$v" --file "$tmp/corpus.txt" --$casing --repeat 3)
  hf1=$(RAYON_NUM_THREADS=1 node "$here/tools/hf_tokenize.js" --vocab "$v" --$casing --bench "$tmp/corpus.txt")
  hfn=$(node "$here/tools/hf_tokenize.js" --vocab "$v" --$casing --bench "$tmp/corpus.txt")
  m=$(awk '{print $2}' <<<"$mt"); h1=$(awk '{print $2}' <<<"$hf1"); hn=$(awk '{print $2}' <<<"$hfn")
  mtok=$(awk '{print $8}' <<<"$mt"); htok=$(awk '{print $8}' <<<"$hf1")
  echo "$casing: megatune $m MB/s (1 thread) | HF tokenizers $h1 MB/s (1 thread), $hn MB/s (default threads)" \
       "| ratio megatune/HF-1-thread $(awk -v a="$m" -v b="$h1" 'BEGIN{printf "%.2f", a/b}')" \
       "| tokens per pass: megatune $((mtok / 3)), HF $htok"
done
