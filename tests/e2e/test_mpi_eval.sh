#!/usr/bin/env bash
# Validation is sharded over the data-parallel ranks (batch b on dp rank b % dp) and its metrics
# are those of one process digit for digit: val_loss and every val_* column of metrics.csv are
# compared as strings. The weights are kept fixed (model.optim.lr=0) so that only validation
# differs between the runs: DP=2 == one process and TP=2 x DP=2 == TP=2 (TP changes the forward's
# summation order, so TP=2 vs one process is compared to 1e-5 relative). An odd number of
# validation batches leaves the last rank idle in the last round. Text classification (a trained
# quickstart .nemo, so the predictions are not all one class), and with MEGATUNE_DATA token
# classification (conlleval F1) and STS-B regression (Pearson/Spearman) from random weights.
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-python3}; data=${MEGATUNE_DATA:-}
"$py" -c 1 2> /dev/null || { echo "no python: skipped"; exit 77; }
mpi_env
mpi_require_start
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }

# run NAME NP ARGS...: metrics.csv at $work/NAME/m/v/metrics.csv
run() {
  local name=$1 np=$2; shift 2
  local a=("$@" trainer.max_steps=2 trainer.val_check_interval=1 trainer.log_every_n_steps=1 trainer.progress_bar=lines
    model.optim.lr=0 exp_manager.create_checkpoint_callback=false exp_manager.create_tensorboard_logger=false
    exp_manager.exp_dir="$work/$name" exp_manager.name=m exp_manager.version=v)
  if [ "$np" = 1 ]; then "$bin" train "${a[@]}" > "$work/$name.log" 2>&1
  else mpirun --oversubscribe -np "$np" "$bin" train "${a[@]}" > "$work/$name.log" 2>&1; fi \
    || { tail -20 "$work/$name.log"; fail "$name run"; }
}
# same_val A B TOL: the val_* columns (and val_loss) of A and B; TOL=0: equal as text
same_val() {
  "$py" - "$work/$1/m/v/metrics.csv" "$work/$2/m/v/metrics.csv" "$3" "$1 vs $2" << 'PY' || fail "$1 vs $2"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2]))); tol = float(sys.argv[3])
assert len(a) == len(b) == 2, (len(a), len(b))
cols = [k for k in a[0] if k.startswith("val_")]
assert len(cols) >= 2 and list(a[0]) == list(b[0]), (list(a[0]), list(b[0]))
for ra, rb in zip(a, b):
    for k in cols:
        if tol == 0:
            assert ra[k] == rb[k], f"step {ra['step']} {k}: {ra[k]} vs {rb[k]}"
        else:
            x, y = float(ra[k]), float(rb[k])
            assert abs(x - y) <= tol * max(abs(x), 1e-6), f"step {ra['step']} {k}: {x} vs {y}"
print(f"{sys.argv[4]}: equal ({'digit for digit' if tol == 0 else f'to {tol:g}'}):",
      {k: a[-1][k] for k in cols})
PY
}
# sharded LOG NP_DP: each rank's log says it evaluated its share
sharded() {
  grep -q "this data-parallel rank evaluated" "$work/$1.log" || { tail "$work/$1.log"; fail "$1: validation not sharded"; }
}
# check NAME ARGS...: the four runs and their comparisons
check() {
  local name=$1; shift
  run "${name}1" 1 "$@"
  run "${name}dp2" 2 "$@"
  sharded "${name}dp2"
  same_val "${name}1" "${name}dp2" 0
  run "${name}tp2" 2 "$@" model.tensor_model_parallel_size=2
  run "${name}tp2dp2" 4 "$@" model.tensor_model_parallel_size=2
  sharded "${name}tp2dp2"
  same_val "${name}tp2" "${name}tp2dp2" 0
  same_val "${name}1" "${name}tp2" 1e-5
}

# --- text classification: 120 dev examples in batches of 10 (12 batches), and of 9 (14, odd) ---
"$bin" train examples/quickstart_config.yaml trainer.max_steps=150 trainer.progress_bar=lines \
  exp_manager.exp_dir="$work/t" exp_manager.version=v > "$work/t.log" 2>&1 || { tail "$work/t.log"; fail "quickstart"; }
nemo=$work/t/quickstart/v/checkpoints/quickstart.nemo
qs=(examples/quickstart_config.yaml init_from_nemo_model="$nemo" model.train_ds.batch_size=4)
check qs "${qs[@]}" model.validation_ds.batch_size=9
# the metric must not be degenerate (all one class), or the comparison proves little
"$py" -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1])))[-1]; assert 60 < float(r['val_acc']) < 100, r" \
  "$work/qs1/m/v/metrics.csv" || fail "quickstart .nemo is not a trained model"
grep -q "evaluated 7 of the 14 batches" "$work/qsdp2.log" || fail "DP=2: want 7 of 14 batches per rank"
# with limit_val_batches, an odd count: rank 0 evaluates 3 batches, rank 1 two
run qslim1 1 "${qs[@]}" model.validation_ds.batch_size=10 trainer.limit_val_batches=5
run qslim2 2 "${qs[@]}" model.validation_ds.batch_size=10 trainer.limit_val_batches=5
same_val qslim1 qslim2 0
grep -q "rank 1\] .*evaluated 2 of the 5 batches" "$work/qslim2.log" || fail "limit_val_batches=5 on DP=2"

if [ "${MEGATUNE_SANITIZED:-0}" = 1 ]; then
  echo "sanitized build: the token classification and STS-B cases run in the Release build only"
elif [ -n "$data" ] && [ -d "$data/conll2003" ] && [ -d "$data/glue/STS-B" ]; then
  tiny=(model.language_model.pretrained_model_name=megatron-bert-cased model.language_model.config.hidden_size=32
    model.language_model.config.num_layers=1 model.language_model.config.num_attention_heads=2
    model.language_model.config.max_position_embeddings=128 model.tokenizer.vocab_file="$data/bert-base-cased/vocab.txt"
    model.dataset.max_seq_length=64 model.train_ds.batch_size=4)
  # --- token classification: conlleval F1 over the words of every window ---
  mkdir -p "$work/ner"
  "$bin" data import-iob --data_file "$data/conll2003/eng.testb" --out_dir "$work/ner" --split train > /dev/null 2>&1 || fail "import-iob"
  "$bin" data import-iob --data_file "$data/conll2003/eng.testa" --out_dir "$work/ner" --split dev > /dev/null 2>&1 || fail "import-iob dev"
  check ner examples/token_classification_config.yaml "${tiny[@]}" model.dataset.data_dir="$work/ner" \
    model.train_ds.num_samples=64 model.validation_ds.batch_size=16 trainer.limit_val_batches=7
  # --- STS-B regression: Pearson and Spearman of every prediction ---
  check sts examples/glue_benchmark_config.yaml "${tiny[@]}" model.task_name=sts-b model.dataset.data_dir="$data/glue/STS-B" \
    model.validation_ds.batch_size=16 trainer.limit_val_batches=9
else
  echo "SKIP: MEGATUNE_DATA ($data) has no conll2003/ and glue/STS-B/: token classification and STS-B cases not run (text classification passed)"
  exit 77
fi
echo "OK"
