#!/usr/bin/env bash
# megatune beside PyTorch on the same training step (pre-LN BERT + QA head, fp32, AdamW, clipping,
# dropout 0.1), for the BERT-base shape and a small shape, in one run; prints time ratios.
#   bench/bench_train.sh [build-dir] [steps] [repeats]
# The two programs alternate `repeats` times per shape and the fastest run of each is kept: the
# machine is shared, and the minimum is the least disturbed measurement.
# PyTorch gets its best setting from shared/reference/pytorch-baseline.md: 2 threads,
# OMP_WAIT_POLICY=PASSIVE, and the OpenMP OpenBLAS + tcmalloc when they are installed. megatune
# runs with the same thread count and OMP_WAIT_POLICY=PASSIVE (on a shared machine, spinning
# OpenMP threads take the cores the working ones need).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
steps=${2:-5}
repeats=${3:-2}
bin=$build/bench/bench_train
py=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$bin" ] || { echo "bench_train.sh: $bin not built (cmake --build $build --target bench_train)" >&2; exit 1; }
threads=${THREADS:-2}
. "$here/bench/torch_env.sh"
torch_env_for $threads
echo "PyTorch environment: ${torch_env[*]}"
shapes=(
  "base:--layers 12 --hidden 768 --heads 12 --seq 128 --batch 8"
  "small:--layers 4 --hidden 256 --heads 4 --seq 128 --batch 16"
  # SQuAD's sequence length (question answering, NeMo's max_seq_length 384)
  "qa384:--layers 12 --hidden 768 --heads 12 --seq 384 --batch 2"
)
# Megatron-BERT 345M at seq 384 needs ~6 GiB per program: BENCH_345M=1 adds it (run the script under
# `flock /tmp/megatune-bigmem.lock` on a shared machine).
[ "${BENCH_345M:-0}" = 1 ] && shapes+=("qa345m:--layers 24 --hidden 1024 --heads 16 --seq 384 --batch 2")
# BENCH_SHAPES="qa384 qa345m" runs only those
if [ -n "${BENCH_SHAPES:-}" ]; then
  keep=(); for s in "${shapes[@]}"; do [[ " $BENCH_SHAPES " == *" ${s%%:*} "* ]] && keep+=("$s"); done; shapes=("${keep[@]}")
fi
echo "ratio = megatune / PyTorch (< 1: megatune faster); wall = ms per step, cpu = CPU ms per step (all threads)"
printf '%-6s %14s %14s %8s %12s %12s %8s\n' shape "megatune wall" "pytorch wall" ratio "mt cpu" "pt cpu" "cpu ratio"
for s in "${shapes[@]}"; do
  name=${s%%:*}; args=${s#*:}
  mt=; pt=; mcpu=; pcpu=
  for ((r = 0; r < repeats; r++)); do
    # shellcheck disable=SC2086
    mo=$(OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE "$bin" $args --steps "$steps")
    printf '%s\n' "$mo" >&2
    # shellcheck disable=SC2086
    po=$(env "${torch_env[@]}" "$py" "$here/bench/bench_train.py" $args --steps "$steps" --threads "$threads")
    printf '%s\n' "$po" >&2
    m=$(sed -n 's/^RESULT ms_per_step=\([0-9.]*\).*/\1/p' <<<"$mo"); mc=$(sed -n 's/^RESULT.*cpu_ms_per_step=\([0-9.]*\).*/\1/p' <<<"$mo")
    p=$(sed -n 's/^RESULT ms_per_step=\([0-9.]*\).*/\1/p' <<<"$po"); pc=$(sed -n 's/^RESULT.*cpu_ms_per_step=\([0-9.]*\).*/\1/p' <<<"$po")
    mcpu=$(awk -v a="$mc" -v b="$mcpu" 'BEGIN { print (b == "" || a < b) ? a : b }')
    pcpu=$(awk -v a="$pc" -v b="$pcpu" 'BEGIN { print (b == "" || a < b) ? a : b }')
    mt=$(awk -v a="$m" -v b="$mt" 'BEGIN { print (b == "" || a < b) ? a : b }')
    pt=$(awk -v a="$p" -v b="$pt" 'BEGIN { print (b == "" || a < b) ? a : b }')
  done
  ratio=$(awk -v a="$mt" -v b="$pt" 'BEGIN { printf "%.3f", a / b }')
  cratio=$(awk -v a="$mcpu" -v b="$pcpu" 'BEGIN { printf "%.3f", a / b }')
  printf '%-6s %14.1f %14.1f %8s %12.1f %12.1f %8s\n' "$name" "$mt" "$pt" "$ratio" "$mcpu" "$pcpu" "$cratio"
done
