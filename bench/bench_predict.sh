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
out=$(OMP_NUM_THREADS=$THREADS "$BUILD/bench/bench_predict" --data "$DATA" --hidden $H --layers $L --heads $NH \
      --batch $BS --repeat 3 --dump "$T/dump.mttf")
echo "$out"
cat > "$T/cfg.json" <<JSON
{"arch": "megatron", "vocab_size": 30522, "hidden_size": $H, "num_layers": $L, "num_attention_heads": $NH,
 "layernorm_eps": 1e-5, "gelu": "erf", "head": "sequence", "num_classes": 2, "head_num_layers": 2,
 "head_activation": "relu", "head_prefix": "classifier"}
JSON
pt=$(OMP_NUM_THREADS=$THREADS "$PY" "$HERE/bench_predict.py" "$T/dump.mttf" "$T/cfg.json" "$THREADS" 3)
echo "$pt"
a=$(echo "$out" | sed -n 's/.*= \([0-9.]*\) sentences\/s/\1/p')
b=$(echo "$pt" | sed -n 's/.*= \([0-9.]*\) sentences\/s/\1/p')
echo "threads $THREADS: megatune/pytorch = $(echo "scale=2; $a / $b" | bc)"
