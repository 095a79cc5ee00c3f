#!/usr/bin/env bash
# The training loop against PyTorch: a 24-step text-classification fine-tune (accumulation 2, an
# uneven last batch per epoch, clipping, AdamW, WarmupAnnealing, validation every 10 batches, dropout
# off, no shuffling) from the same initial weights; every step's train_loss and lr and every
# val_loss in megatune's metrics.csv must match tools/nemo_train_ref.py's PyTorch re-run.
# model.optim.betas, eps and weight_decay are set to values that are neither NeMo's nor the
# optimizer's defaults: a trainer that did not pass them on would otherwise train the same trace.
set -u
# GOMP's default active wait makes 2 OpenMP threads crawl (seconds per step) when the 2 cores are
# shared with other tests; passive waiting keeps the runs fast without changing any result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-/usr/bin/python3}
"$py" -c "import torch" 2>/dev/null || { echo "SKIP: torch needed"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
# 90 training examples, batch 8: 12 batches per epoch, the last one of 2 examples
head -91 examples/data/quickstart_train.tsv > "$work/train.tsv"
head -41 examples/data/quickstart_dev.tsv > "$work/dev.tsv"
steps=24
args=(examples/quickstart_config.yaml model.train_ds.file_path="$work/train.tsv" model.validation_ds.file_path="$work/dev.tsv"
  model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.language_model.config.num_attention_heads=4 model.language_model.config.hidden_dropout=0
  model.language_model.config.attention_dropout=0 model.classifier_head.fc_dropout=0 model.train_ds.shuffle=false
  model.train_ds.batch_size=8 model.validation_ds.batch_size=16 trainer.accumulate_grad_batches=2
  trainer.gradient_clip_val=0.05 model.optim.name=adamw model.optim.lr=2e-3 model.optim.weight_decay=0.1
  'model.optim.betas=[0.8,0.99]' model.optim.eps=1e-6
  model.optim.sched.name=WarmupAnnealing model.optim.sched.warmup_ratio=0.25 trainer.val_check_interval=10
  trainer.log_every_n_steps=1 model.dataset.max_seq_length=32 trainer.max_epochs=100)
"$bin" train "${args[@]}" trainer.max_steps=0 exp_manager.exp_dir="$work/init" exp_manager.version=v > "$work/init.log" 2>&1 \
  || { cat "$work/init.log"; fail "initial model"; }
"$bin" train "${args[@]}" trainer.max_steps=$steps exp_manager.exp_dir="$work/run" exp_manager.version=v > "$work/run.log" 2>&1 \
  || { cat "$work/run.log"; fail "training"; }
"$py" tools/nemo_train_ref.py "$work/init/quickstart/v/checkpoints/quickstart.nemo" "$work/run/quickstart/v/metrics.csv" \
  "$work/train.tsv" "$work/dev.tsv" examples/data/quickstart_vocab.txt --batch 8 --val-batch 16 --accumulate 2 \
  --max-steps $steps --val-every 10 --lr 2e-3 --wd 0.1 --betas 0.8 0.99 --eps 1e-6 --clip 0.05 --warmup-ratio 0.25 --max-seq-length 32 \
  --hidden 32 --layers 2 --heads 4 || fail "megatune's training differs from PyTorch's"

# model.optim.name=adam (L2 decay in the gradient, torch.optim.Adam) with decay_all=false (no decay on
# biases and LayerNorm weights), 12 steps from the same initial weights
s2=12
"$bin" train "${args[@]}" trainer.max_steps=$s2 model.optim.name=adam model.optim.decay_all=false \
  exp_manager.exp_dir="$work/adam" exp_manager.version=v > "$work/adam.log" 2>&1 || { cat "$work/adam.log"; fail "adam training"; }
"$py" tools/nemo_train_ref.py "$work/init/quickstart/v/checkpoints/quickstart.nemo" "$work/adam/quickstart/v/metrics.csv" \
  "$work/train.tsv" "$work/dev.tsv" examples/data/quickstart_vocab.txt --batch 8 --val-batch 16 --accumulate 2 \
  --max-steps $s2 --val-every 10 --lr 2e-3 --wd 0.1 --betas 0.8 0.99 --eps 1e-6 --adam --no-decay-1d --clip 0.05 \
  --warmup-ratio 0.25 --max-seq-length 32 --hidden 32 --layers 2 --heads 4 || fail "megatune's Adam training differs from PyTorch's"

# The other schedules with a floor and an explicit warmup, through the config: each step's lr in
# metrics.csv against tools/optim_ref.py's NeMo formulas (checked against the scheduler by
# test_optim_parity; here the trainer must pass model.optim.sched.{name,min_lr,warmup_steps,
# warmup_ratio} on). A tiny model: only the lr column is compared. trainer.val_check_interval=0.5 (a
# fraction of the 6 batches of an epoch, NeMo's ".25 for 4 times per epoch") validates every 3 batches.
for sched in "CosineAnnealing 3 1e-4 warmup_steps=3" "SquareRootAnnealing 2 2e-4 warmup_ratio=0.25" \
             "WarmupAnnealing 1 3e-4 warmup_steps=2"; do
  set -- $sched
  "$bin" train examples/quickstart_config.yaml model.train_ds.file_path="$work/train.tsv" \
    model.validation_ds.file_path="$work/dev.tsv" model.language_model.config.hidden_size=16 \
    model.language_model.config.num_layers=1 model.language_model.config.num_attention_heads=2 trainer.max_steps=12 \
    trainer.log_every_n_steps=1 model.optim.lr=2e-3 model.optim.sched.name=$1 model.optim.sched.min_lr=$3 \
    model.optim.sched.$4 trainer.val_check_interval=0.5 exp_manager.exp_dir="$work/s$1" exp_manager.version=v \
    > "$work/s$1.log" 2>&1 || { cat "$work/s$1.log"; fail "$1 run"; }
  vals=$(awk -F, 'NR == 1 && $5 != "val_loss" {exit 1} NR > 1 && $5 != "" {printf "%s ", $1}' "$work/s$1/quickstart/v/metrics.csv") \
    && [ "$vals" = "3 6 9 12 " ] || fail "$1: val_check_interval=0.5 of 6 batches validated at steps '$vals', want 3 6 9 12"
  "$py" - "$work/s$1/quickstart/v/metrics.csv" "$src/tools" "$2" "$3" "$4" <<'PY' || fail "$1: the lr per step is not NeMo's"
import csv, sys
sys.path.insert(0, sys.argv[2])
from optim_ref import nemo_lr
kind, min_lr, how = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rows = list(csv.DictReader(open(sys.argv[1])))
assert [int(r["step"]) for r in rows] == list(range(1, 13)), [r["step"] for r in rows]
k, v = how.split("=")
warmup = int(v) if k == "warmup_steps" else int(float(v) * 12)
for r in rows:  # row s holds the lr of optimizer step s - 1
    want = nemo_lr(kind, 2e-3, min_lr, int(r["step"]) - 1, warmup, 12)
    assert abs(float(r["lr"]) - want) <= 1e-6 * want, (r["step"], r["lr"], want)
print("%s: 12 steps, lr as NeMo's (min_lr %g, %s): %s" % (sys.argv[1].split("/")[-4][1:], min_lr, how,
      " ".join("%.3g" % float(r["lr"]) for r in rows)))
PY
done
echo PASSED
