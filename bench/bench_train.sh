#!/usr/bin/env bash
# megatune beside PyTorch on the same training step (pre-LN BERT + QA head, fp32, AdamW, clipping,
# dropout 0.1), for the BERT-base shape and a small shape, in one run; prints time ratios.
#   bench/bench_train.sh [build-dir] [steps]
# PyTorch gets its best setting from shared/reference/pytorch-baseline.md: 2 threads,
# OMP_WAIT_POLICY=PASSIVE, and the OpenMP OpenBLAS + tcmalloc when they are installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
steps=${2:-5}
bin=$build/bench/bench_train
py=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$bin" ] || { echo "bench_train.sh: $bin not built (cmake --build $build --target bench_train)" >&2; exit 1; }
threads=${THREADS:-2}
torch_env=(OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE)
ompblas=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -d "$ompblas" ] && torch_env+=(LD_LIBRARY_PATH=$ompblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH})
tcm=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
[ -n "$tcm" ] && torch_env+=(LD_PRELOAD=$tcm)
echo "PyTorch environment: ${torch_env[*]}"
shapes=(
  "base:--layers 12 --hidden 768 --heads 12 --seq 128 --batch 8"
  "small:--layers 4 --hidden 256 --heads 4 --seq 128 --batch 16"
)
printf '%-6s %14s %14s %8s\n' shape "megatune ms" "pytorch ms" ratio
for s in "${shapes[@]}"; do
  name=${s%%:*}; args=${s#*:}
  # shellcheck disable=SC2086
  mt=$(OMP_NUM_THREADS=$threads "$bin" $args --steps "$steps" | tee /dev/stderr | sed -n 's/^RESULT ms_per_step=\([0-9.]*\).*/\1/p')
  # shellcheck disable=SC2086
  pt=$(env "${torch_env[@]}" "$py" "$here/bench/bench_train.py" $args --steps "$steps" --threads "$threads" \
       | tee /dev/stderr | sed -n 's/^RESULT ms_per_step=\([0-9.]*\).*/\1/p')
  ratio=$(awk -v a="$mt" -v b="$pt" 'BEGIN { printf "%.3f", a / b }')
  printf '%-6s %14.1f %14.1f %8s   (megatune/PyTorch time; < 1 means megatune is faster)\n' "$name" "$mt" "$pt" "$ratio"
done
