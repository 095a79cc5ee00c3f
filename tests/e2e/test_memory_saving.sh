#!/usr/bin/env bash
# The two ways to train in less memory give the run that keeps everything, to the last digit
# (metrics.csv byte for byte, dropout on), in one process and with tensor parallelism (mpirun -np 2):
#  - NeMo's activations_checkpoint_* keys: uniform, block and selective recomputation (with
#    megatune's activations_checkpoint_fc1, then activations_checkpoint_attn_out, too); the log
#    says what is recomputed and the activation MiB fall;
#  - model.optim.step_in_backward: the update inside backward, no gradient span; with checkpointing too,
#    and with 2 data-parallel replicas.
# Bad values and combinations are refused with the key named.
set -u
. "$(dirname "$0")/mpi_env.sh" # mpi_env, mpi_part, mpi_part_end
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
steps=24
if [ "${MEGATUNE_SANITIZED:-0}" = 1 ]; then steps=8; fi
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=8
  model.language_model.config.hidden_size=32 model.language_model.config.num_layers=4
  model.dataset.max_seq_length=24 model.train_ds.batch_size=8 trainer.log_every_n_steps=1
  trainer.progress_bar=lines exp_manager.version=v trainer.gradient_clip_val=0)
off=(model.optim.step_in_backward=false) # (auto would turn it on here: no clipping, no accumulation)
run() { # name np args...
  local name=$1 np=$2; shift 2
  if [ "$np" = 1 ]; then "$bin" train "${common[@]}" "$@" exp_manager.exp_dir="$work/$name" > "$work/$name.log" 2>&1
  else mpirun --oversubscribe -np "$np" "$bin" train "${common[@]}" "$@" exp_manager.exp_dir="$work/$name" \
      > "$work/$name.log" 2>&1; fi || { tail -30 "$work/$name.log"; fail "$name run"; }
  [ "$(wc -l < "$work/$name/quickstart/v/metrics.csv")" -gt "$steps" ] || fail "$name: metrics.csv too short"
}
same() { # reference name
  cmp "$work/$1/quickstart/v/metrics.csv" "$work/$2/quickstart/v/metrics.csv" \
    || { diff "$work/$1/quickstart/v/metrics.csv" "$work/$2/quickstart/v/metrics.csv" | head; fail "$2: metrics.csv differs from $1"; }
  echo "$2: metrics.csv identical to $1"
}
says() { # name text
  grep -qF "$2" "$work/$1.log" || { grep -i "checkpointing" "$work/$1.log"; fail "$1: the log does not say '$2'"; }
}

run plain 1 "${off[@]}"
grep -q "activation checkpointing" "$work/plain.log" && fail "the plain run mentions activation checkpointing"
grep -q "step_in_backward" "$work/plain.log" && fail "the plain run mentions step_in_backward"
run uniform 1 "${off[@]}" model.activations_checkpoint_method=uniform
says uniform "activation checkpointing: uniform, 4 of 4 layers keep only their input"
same plain uniform
mib() { grep -o "activations: [0-9.]* MiB" "$work/$1.log" | head -1 | grep -o "[0-9.]*"; }
a_plain=$(mib plain); a_uniform=$(mib uniform)
[ -n "$a_plain" ] && [ -n "$a_uniform" ] || fail "no 'activations: ... MiB' line in the logs"
awk -v a="$a_uniform" -v b="$a_plain" 'BEGIN { exit !(a < 0.6 * b) }' \
  || fail "uniform checkpointing laid out $a_uniform MiB of activations, the plain run $a_plain"
echo "activations: plain $a_plain MiB, uniform $a_uniform MiB"
run block 1 "${off[@]}" model.activations_checkpoint_granularity=full model.activations_checkpoint_method=block \
  model.activations_checkpoint_num_layers=3
says block "activation checkpointing: block, 3 of 4 layers keep only their input"
same plain block
run selective 1 "${off[@]}" model.activations_checkpoint_granularity=selective
says selective "activation checkpointing: selective"
same plain selective
# each mode must lay out fewer activations than the plain run (a mode that only logs its line would
# pass the same-metrics checks above): block 3 of 4 keeps two sets of layer activations (the shared
# one and layer 4's), so it lies between uniform (one) and plain (four); selective drops every
# layer's attention probabilities and GELU outputs
a_block=$(mib block); a_selective=$(mib selective)
[ -n "$a_block" ] && [ -n "$a_selective" ] || fail "no 'activations: ... MiB' line in the block / selective logs"
awk -v u="$a_uniform" -v k="$a_block" -v p="$a_plain" 'BEGIN { exit !(u < k && k < p) }' \
  || fail "block checkpointing of 3 layers laid out $a_block MiB of activations: not between uniform ($a_uniform) and plain ($a_plain)"
awk -v s="$a_selective" -v p="$a_plain" 'BEGIN { exit !(s < p) }' \
  || fail "selective checkpointing laid out $a_selective MiB of activations, the plain run $a_plain"
echo "activations: block $a_block MiB, selective $a_selective MiB"
# a further recomputation: its log line, the plain run's metrics, fewer activation MiB than the last
recomputes_more() { # name log-text what than-name
  says "$1" "$2"
  same plain "$1"
  local a b; a=$(mib "$1"); b=$(mib "$4")
  awk -v f="$a" -v s="$b" 'BEGIN { exit !(f < s) }' || fail "$3 laid out $a MiB of activations, $4 $b"
  echo "activations: $3 $a MiB"
}
run selective_fc1 1 "${off[@]}" model.activations_checkpoint_granularity=selective model.activations_checkpoint_fc1=true
recomputes_more selective_fc1 "GELU outputs, FC1 outputs and" "selective with FC1" selective
run selective_ao 1 "${off[@]}" model.activations_checkpoint_granularity=selective model.activations_checkpoint_fc1=true \
  model.activations_checkpoint_attn_out=true
recomputes_more selective_ao "LayerNorm outputs and the residual stream after attention are recomputed" \
  "selective with FC1 and the attention output" selective_fc1

run inbwd 1 model.optim.step_in_backward=true
says inbwd "model.optim.step_in_backward: each layer's weights are updated as soon as backward has its gradients"
same plain inbwd
run inbwd_uniform 1 model.optim.step_in_backward=true model.activations_checkpoint_method=uniform
same plain inbwd_uniform
# the gradient span is really never written with step_in_backward (a trainer that only logged the
# switch would give the same metrics): the log's resident MiB, from mincore, of a span big enough to
# be its own mapping (ASan builds keep every block on the heap, zeroed, so there only the line is checked)
for sib in true false; do
  "$bin" train "${common[@]}" trainer.max_steps=2 model.optim.step_in_backward=$sib \
    model.language_model.config.hidden_size=128 model.language_model.config.num_layers=2 \
    exp_manager.exp_dir="$work/res_$sib" > "$work/res_$sib.log" 2>&1 || { tail "$work/res_$sib.log"; fail "res_$sib run"; }
done
g_true=$(grep -o "gradients [0-9.]* MiB resident of [0-9.]*" "$work/res_true.log" | head -1)
g_false=$(grep -o "gradients [0-9.]* MiB resident of [0-9.]*" "$work/res_false.log" | head -1)
[ -n "$g_true" ] && [ -n "$g_false" ] || fail "no 'memory after the first step' line: $(grep -i memory "$work/res_true.log")"
echo "step_in_backward: $g_true; without: $g_false"
if [ "${MEGATUNE_SANITIZED:-0}" != 1 ]; then
  echo "$g_true" | grep -q "^gradients 0.0 MiB" || fail "step_in_backward wrote the gradient span: $g_true"
  echo "$g_false" | awk '{ exit !($2 > 1.0 && $2 == $6) }' || fail "without step_in_backward the span is not resident: $g_false"
fi

# auto (the default): on without clipping and accumulation, off with either
run auto 1
says auto "model.optim.step_in_backward=auto (no clipping, no accumulation)"
same plain auto
run auto_clip 1 trainer.gradient_clip_val=1.0
grep -q "step_in_backward" "$work/auto_clip.log" && fail "auto turned step_in_backward on with clipping"

# bad values: one message naming the key and the fix, a non-zero exit, no run folder
bad() { # expected-text args...
  local want=$1; shift
  "$bin" train "${common[@]}" "$@" exp_manager.exp_dir="$work/bad" > "$work/bad.log" 2>&1 && fail "accepted: $*"
  grep -qF "$want" "$work/bad.log" || { cat "$work/bad.log"; fail "no '$want' for: $*"; }
  [ ! -e "$work/bad/quickstart/v/metrics.csv" ] || fail "a refused config left a metrics.csv: $*"
}
bad "model.activations_checkpoint_method 'everything' is unknown: use null, uniform or block" \
  model.activations_checkpoint_method=everything
bad "model.activations_checkpoint_granularity 'some' is unknown: use null, full or selective" \
  model.activations_checkpoint_granularity=some
bad "model.activations_checkpoint_method must be uniform or block when model.activations_checkpoint_granularity is full" \
  model.activations_checkpoint_granularity=full
bad "model.activations_checkpoint_fc1 true needs model.activations_checkpoint_granularity=selective (got null)" \
  model.activations_checkpoint_fc1=true
bad "model.activations_checkpoint_attn_out true needs model.activations_checkpoint_fc1=true" \
  model.activations_checkpoint_granularity=selective model.activations_checkpoint_attn_out=true
bad "model.activations_checkpoint_num_layers must be >= 1, got 0" model.activations_checkpoint_method=block \
  model.activations_checkpoint_num_layers=0
bad "model.optim.step_in_backward 'sometimes' is unknown: use true, false or auto" model.optim.step_in_backward=sometimes
bad "model.optim.step_in_backward true needs trainer.gradient_clip_val=0 (got 1)" model.optim.step_in_backward=true \
  trainer.gradient_clip_val=1.0
bad "model.optim.step_in_backward true needs trainer.accumulate_grad_batches=1 (got 2)" model.optim.step_in_backward=true \
  trainer.accumulate_grad_batches=2

# tensor parallelism: the recomputed forward repeats its all-reduces on both ranks in step, and each
# rank updates its own shard inside backward; data parallelism: each span's gradients are averaged
# over the two replicas inside backward (DDP's sum, then times 1/2: the same values as one average)
mpi_env
if mpi_part "the TP=2 part"; then
  run tp2 2 "${off[@]}" model.tensor_model_parallel_size=2
  run tp2_uniform 2 "${off[@]}" model.tensor_model_parallel_size=2 model.activations_checkpoint_method=uniform
  same tp2 tp2_uniform
  # the attention output product recomputed in backward all-reduces its partial sums again
  run tp2_ao 2 "${off[@]}" model.tensor_model_parallel_size=2 model.activations_checkpoint_granularity=selective \
    model.activations_checkpoint_fc1=true model.activations_checkpoint_attn_out=true
  same tp2 tp2_ao
  run tp2_inbwd 2 model.tensor_model_parallel_size=2 model.optim.step_in_backward=true
  same tp2 tp2_inbwd
  run dp2 2 "${off[@]}"
  run dp2_inbwd 2 model.optim.step_in_backward=true
  same dp2 dp2_inbwd
fi
mpi_part_end
echo PASSED
