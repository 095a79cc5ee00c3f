#!/usr/bin/env bash
# Loading a 345M-shaped Megatron checkpoint (24 layers x 1024, 16 heads, vocab 30522, fp16, with
# optimizer/RNG entries) should cost about as much as reading its bytes from the page cache.
# Writes the checkpoint to /tmp (never the repo) once, warms the cache, then compares
# `cat file > /dev/null` with megatune's load (mmap + fp16->fp32 into the parameter span).
# usage: bench/bench_ckpt_load.sh [BUILD_DIR]   (default build/)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
dir=/tmp/megatune_bench_345m
f=$dir/release/mp_rank_00/model_optim_rng.pt
if [ ! -f "$f" ]; then
  echo "writing a 345M-shaped fp16 checkpoint to $dir ..."
  "$PY" "$here/tools/make_megatron_ckpt.py" "$dir" --version 0 --layers 24 --hidden 1024 --heads 16 --vocab 30522 --seq 512 --no-expected
fi
bytes=$(stat -c %s "$f")
echo "file: $f ($((bytes / 1048576)) MiB)"
cat "$f" > /dev/null; cat "$f" > /dev/null
for i in 1 2 3; do
  s=$(date +%s.%N); cat "$f" > /dev/null; e=$(date +%s.%N)
  echo "cat FILE > /dev/null (page cache): $(echo "$e - $s" | bc) s"
done
s=$(date +%s.%N); cat "$f" | wc -c > /dev/null; e=$(date +%s.%N)
echo "cat FILE | wc -c (bytes copied to user space): $(echo "$e - $s" | bc) s"
for i in 1 2 3; do "$build/bench/bench_ckpt_load" "$dir" 24 1024 16 30522 512; done
echo "TP=2 rank 1 (split on load):"
"$build/bench/bench_ckpt_load" "$dir" 24 1024 16 30522 512 2 1
