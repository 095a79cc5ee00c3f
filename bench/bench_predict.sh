#!/bin/bash
# Prediction throughput, megatune vs PyTorch on the same model, weights and batch shapes
# (SST-2 dev, 872 sentences, dynamic padding). Usage: bench/bench_predict.sh [BUILD_DIR] [THREADS]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../build}
THREADS=${2:-${OMP_NUM_THREADS:-2}}
DATA=${MEGATUNE_DATA:-$HERE/../../shared/data}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/mt_bench_predict_XXXXXX)
trap 'rm -rf "$T"' EXIT
H=${HIDDEN:-256} L=${LAYERS:-4} NH=${HEADS:-4} BS=${BATCH:-32}
# PyTorch in its best setting (shared/reference/pytorch-baseline.md): the OpenMP OpenBLAS and
# tcmalloc where installed; both programs wait passively
. "$HERE/torch_env.sh"
torch_env_for $THREADS
[ -x "$BUILD/megatune" ] && "$BUILD/megatune" version | grep -E '^(CPU|CPU family|ISA|fp32 products):'
echo "PyTorch environment: ${torch_env[*]}"
out=$(OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE "$BUILD/bench/bench_predict" --data "$DATA" --hidden $H --layers $L --heads $NH \
      --batch $BS --repeat 3 --dump "$T/dump.mttf")
echo "$out"
cat > "$T/cfg.json" <<JSON
{"arch": "megatron", "vocab_size": 30522, "hidden_size": $H, "num_layers": $L, "num_attention_heads": $NH,
 "layernorm_eps": 1e-5, "gelu": "erf", "head": "sequence", "num_classes": 2, "head_num_layers": 2,
 "head_activation": "relu", "head_prefix": "classifier"}
JSON
pt=$(env "${torch_env[@]}" "$PY" "$HERE/bench_predict.py" "$T/dump.mttf" "$T/cfg.json" "$THREADS" 3)
echo "$pt"
a=$(echo "$out" | sed -n 's/.*= \([0-9.]*\) sentences\/s/\1/p')
b=$(echo "$pt" | sed -n 's/.*= \([0-9.]*\) sentences\/s/\1/p')
ta=$(echo "$out" | sed -n 's/.*best of [0-9]*: \([0-9.]*\) s = .*/\1/p')
tb=$(echo "$pt" | sed -n 's/.*best of [0-9]*: \([0-9.]*\) s = .*/\1/p')
tok=$(echo "$out" | sed -n 's/.*(\([0-9]*\) padded tokens.*/\1/p')
gf=$(echo "$out" | sed -n 's/.*padded tokens, \([0-9.]*\) GFLOP.*/\1/p')
printf 'padded tokens/s: megatune %.0f, PyTorch %.0f; GFLOP/s: megatune %.1f, PyTorch %.1f\n' \
  "$(echo "$tok / $ta" | bc -l)" "$(echo "$tok / $tb" | bc -l)" "$(echo "$gf / $ta" | bc -l)" "$(echo "$gf / $tb" | bc -l)"
echo "threads $THREADS: speed ratio megatune/pytorch sentences/s = $(echo "scale=2; $a / $b" | bc) (> 1: megatune faster)"
