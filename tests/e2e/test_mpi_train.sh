#!/usr/bin/env bash
# Tensor and data parallelism under mpirun give the losses of one process (dropout 0):
#  (a) TP=2 == TP=1; also with dropout on (the model's masks depend on global positions and heads);
#  (b) DP=2 with batch b per rank == one process with batch 2b;
#  (c) TP=2 x DP=2 on 4 ranks == one process with batch 2b.
# Only global rank 0 writes metrics.csv / hparams.yaml / cmd-args.log; every rank its own log file.
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-python3}
"$py" -c 1 2> /dev/null || { echo "no python: skipped"; exit 77; }
mpi_env
mpi_require_start
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
lm_skipped=""
steps=10
nodrop=(model.language_model.config.hidden_dropout=0 model.language_model.config.attention_dropout=0
  model.classifier_head.fc_dropout=0)
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=5
  trainer.log_every_n_steps=1 trainer.progress_bar=lines exp_manager.version=v)
run() { # name np args...
  local name=$1 np=$2; shift 2
  if [ "$np" = 1 ]; then "$bin" train "${common[@]}" "$@" exp_manager.exp_dir="$work/$name" > "$work/$name.log" 2>&1
  else mpirun --oversubscribe -np "$np" "$bin" train "${common[@]}" "$@" exp_manager.exp_dir="$work/$name" \
      > "$work/$name.log" 2>&1; fi || { tail -30 "$work/$name.log"; fail "$name run"; }
  [ -f "$work/$name/quickstart/v/metrics.csv" ] || fail "$name: no metrics.csv"
}
same() { # a b: metrics.csv rows equal to 1e-5 relative (train_loss, val_loss, val metrics)
  "$py" - "$work/$1/quickstart/v/metrics.csv" "$work/$2/quickstart/v/metrics.csv" "$1 vs $2" << 'PY' || fail "$1 vs $2"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) and len(a) >= 10, (len(a), len(b))
worst = 0.0
for ra, rb in zip(a, b):
    assert ra["step"] == rb["step"], (ra["step"], rb["step"])
    for k in ra:
        if k in ("step", "epoch", "lr"): continue
        if ra[k] == "" or rb[k] == "":
            assert ra[k] == rb[k], (k, ra["step"], ra[k], rb[k]); continue
        x, y = float(ra[k]), float(rb[k])
        rel = abs(x - y) / max(abs(x), 1e-12)
        worst = max(worst, rel)
        assert rel <= 1e-5, f"step {ra['step']} {k}: {x} vs {y} (rel {rel:.2e})"
print(f"{sys.argv[3]}: {len(a)} rows, worst relative difference {worst:.2e}")
PY
}

run tp1 1 "${nodrop[@]}" model.train_ds.batch_size=8
run tp2 2 "${nodrop[@]}" model.train_ds.batch_size=8 model.tensor_model_parallel_size=2
same tp1 tp2
d=$work/tp2/quickstart/v
[ -f "$d/nemo_log_globalrank-0_localrank-0.txt" ] && [ -f "$d/nemo_log_globalrank-1_localrank-1.txt" ] || fail "per-rank logs"
[ -f "$d/cmd-args.log" ] && [ -f "$d/hparams.yaml" ] || fail "rank 0 files"
[ "$(ls "$d"/events.out.tfevents.* | wc -l)" = 1 ] || fail "TensorBoard events: want one file (rank 0)"
grep -q "tensor_model_parallel_size: 2" "$d/hparams.yaml" || fail "hparams.yaml lacks tensor_model_parallel_size: 2"
grep -q "tensor-parallel rank 1 of 2" "$d/nemo_log_globalrank-1_localrank-1.txt" || fail "rank 1 log"

# the step inside backward (no clipping: model.optim.step_in_backward=auto turns it on) keeps the word
# embedding's gradients for the batch's rows only, each rank for its own vocab slice: TP=2 follows TP=1
run tp1sib 1 "${nodrop[@]}" model.train_ds.batch_size=8 trainer.gradient_clip_val=0
run tp2sib 2 "${nodrop[@]}" model.train_ds.batch_size=8 trainer.gradient_clip_val=0 model.tensor_model_parallel_size=2
grep -q "model.optim.step_in_backward=auto" "$work/tp2sib.log" || fail "tp2sib: the step was not in backward"
same tp1sib tp2sib

# with dropout on, TP=2 still follows TP=1
run tp1d 1 model.train_ds.batch_size=8
run tp2d 2 model.train_ds.batch_size=8 model.tensor_model_parallel_size=2
same tp1d tp2d

run dp2 2 "${nodrop[@]}" model.train_ds.batch_size=4
same tp1 dp2
# with gradient accumulation: DP=2 x batch 4 x 2 accumulated == batch 8 x 2 accumulated
run acc1 1 "${nodrop[@]}" model.train_ds.batch_size=8 trainer.accumulate_grad_batches=2
run acc2 2 "${nodrop[@]}" model.train_ds.batch_size=4 trainer.accumulate_grad_batches=2
same acc1 acc2
run tp2dp2 4 "${nodrop[@]}" model.train_ds.batch_size=4 model.tensor_model_parallel_size=2
same tp1 tp2dp2
[ "$(ls "$work/tp2dp2/quickstart/v"/nemo_log_globalrank-*_localrank-*.txt | wc -l)" = 4 ] || fail "4 rank logs"

# a data-parallel run has the flat checkpoint layout (no mp_rank_XX) and one .nemo
c=$work/dp2/quickstart/v/checkpoints
[ -f "$c/quickstart.nemo" ] && ! ls -d "$c"/mp_rank_* > /dev/null 2>&1 || fail "DP=2 checkpoint layout"

# (e) from a TP=2 Megatron-LM checkpoint (model.language_model.lm_checkpoint), split per rank: TP=2 == TP=1
if "$py" -c "import torch, numpy" 2> /dev/null; then
  "$py" "$src/tools/make_megatron_ckpt.py" "$work/mg" --tp 2 --layers 2 --hidden 64 --heads 4 --vocab 128 --seq 64 \
    --fp32 > "$work/mg.log" 2>&1 || { cat "$work/mg.log"; fail "make_megatron_ckpt.py"; }
  run mg1 1 model.train_ds.batch_size=8 model.language_model.lm_checkpoint="$work/mg"
  run mg2 2 model.train_ds.batch_size=8 model.language_model.lm_checkpoint="$work/mg" model.tensor_model_parallel_size=2
  grep -q "rank 1\] encoder weights from" "$work/mg2.log" || fail "rank 1 did not load the encoder checkpoint"
  same mg1 mg2
else
  # the rest still runs; the test then reports itself skipped (exit 77), never passed
  lm_skipped="the lm_checkpoint case (e) needs python3 with torch and numpy ($py)"
  echo "SKIP (at the end): $lm_skipped"
fi

# errors: TP not dividing the processes, heads not divisible, TP > 1 without mpirun
mpirun --oversubscribe -np 3 "$bin" train "${common[@]}" model.tensor_model_parallel_size=2 \
  exp_manager.exp_dir="$work/bad" > "$work/bad.log" 2>&1 && fail "TP=2 on 3 ranks was accepted"
grep -q "does not divide the 3 processes" "$work/bad.log" || { cat "$work/bad.log"; fail "TP=2 on 3 ranks message"; }
mpirun --oversubscribe -np 3 "$bin" train "${common[@]}" model.tensor_model_parallel_size=3 \
  exp_manager.exp_dir="$work/bad3" > "$work/bad3.log" 2>&1 && fail "TP=3 with 4 heads was accepted"
grep -q "does not divide the 4 attention heads" "$work/bad3.log" || { cat "$work/bad3.log"; fail "TP=3 message"; }
"$bin" train "${common[@]}" model.tensor_model_parallel_size=2 exp_manager.exp_dir="$work/bad1" > "$work/bad1.log" 2>&1 \
  && fail "TP=2 without mpirun was accepted"
grep -q "mpirun -np N" "$work/bad1.log" || { cat "$work/bad1.log"; fail "TP=2 without mpirun message"; }
if [ -n "$lm_skipped" ]; then echo "SKIP: everything else passed, but $lm_skipped"; exit 77; fi
echo "OK"
