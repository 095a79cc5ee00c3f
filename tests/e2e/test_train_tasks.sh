#!/usr/bin/env bash
# Short fine-tunes of tiny models on the real data of each task (token classification on CoNLL-2003,
# GLUE MRPC classification and STS-B regression), each followed by `megatune test` on the .nemo: the
# restored model (label map, head, tokenizer casing) reproduces the validation metrics the run logged.
set -u
# GOMP's default active wait makes 2 OpenMP threads crawl (seconds per step) when the 2 cores are
# shared with other tests; passive waiting keeps the runs fast without changing any result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; data=${MEGATUNE_DATA:-}
[ -n "$data" ] && [ -d "$data/conll2003" ] && [ -d "$data/glue/MRPC" ] || { echo "SKIP: MEGATUNE_DATA absent"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
py=${MEGATUNE_PYTHON:-/usr/bin/python3}
# compare_last_val METRICS_CSV TEST_OUTPUT: every val_X of the last row equals test_X
compare_last_val() {
  "$py" - "$1" "$2" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h, last = rows[0], rows[-1]
got = dict(l.split(": ") for l in open(sys.argv[2]).read().splitlines() if l.startswith("test_"))
n = 0
for i, name in enumerate(h):
    base = name[4:] if name.startswith("val_") else name if name in ("f1", "precision", "recall") else None
    if base:
        assert got["test_" + base] == last[i], (name, got.get("test_" + base), last[i])
        n += 1
assert n >= 2, h
print("  test == last validation:", {k: got[k] for k in sorted(got)})
PY
}
tiny=(model.language_model.pretrained_model_name=megatron-bert-cased model.language_model.config.hidden_size=32
  model.language_model.config.num_layers=1 model.language_model.config.num_attention_heads=2
  model.language_model.config.max_position_embeddings=128 trainer.progress_bar=lines
  trainer.limit_val_batches=2 model.optim.lr=1e-3 trainer.log_every_n_steps=2)

# --- token classification (NER) ---
mkdir -p "$work/ner"
"$bin" data import-iob --data_file "$data/conll2003/eng.testb" --out_dir "$work/ner" --split train > /dev/null 2>&1 || fail "import-iob"
"$bin" data import-iob --data_file "$data/conll2003/eng.testa" --out_dir "$work/ner" --split dev > /dev/null 2>&1 || fail "import-iob dev"
"$bin" train examples/token_classification_config.yaml "${tiny[@]}" model.dataset.data_dir="$work/ner" \
  model.tokenizer.vocab_file="$data/bert-base-cased/vocab.txt" model.dataset.max_seq_length=64 \
  model.train_ds.batch_size=16 model.validation_ds.batch_size=16 model.train_ds.num_samples=160 trainer.max_steps=6 \
  exp_manager.exp_dir="$work/e" exp_manager.version=ner exp_manager.checkpoint_callback_params.monitor=f1 \
  exp_manager.checkpoint_callback_params.mode=max > "$work/ner.log" 2>&1 || { tail -20 "$work/ner.log"; fail "NER train"; }
d="$work/e/token_classification_model/ner"
# NeMo's TokenClassificationModel logs precision, f1, recall bare; megatune's extras keep val_ names
head -1 "$d/metrics.csv" | grep -q "^step,epoch,train_loss,lr,val_loss,f1,precision,recall,val_entity_f1,val_entity_precision,val_entity_recall,val_acc$" \
  || { head -1 "$d/metrics.csv"; fail "NER metrics.csv header"; }
ls "$d"/checkpoints/*--f1=*.ckpt > /dev/null 2>&1 || fail "NER: monitor=f1 named no checkpoint"
"$bin" test "$d/checkpoints/token_classification_model.nemo" model.dataset.data_dir="$work/ner" \
  model.test_ds.batch_size=16 trainer.limit_test_batches=2 > "$work/ner.test" 2>&1 || { cat "$work/ner.test"; fail "NER test"; }
compare_last_val "$d/metrics.csv" "$work/ner.test" || fail "NER restored metrics"
echo "EU rejects German call to boycott British lamb ." | "$bin" predict "$d/checkpoints/token_classification_model.nemo" - \
  > "$work/ner.pred" 2>/dev/null || fail "NER predict"
[ "$(wc -l < "$work/ner.pred")" = 1 ] && [ "$(wc -w < "$work/ner.pred")" -ge 9 ] || { cat "$work/ner.pred"; fail "NER predict output"; }
echo "ok: NER"

# --- GLUE MRPC (classification) and STS-B (regression) ---
for task in mrpc sts-b; do
  dir=MRPC; [ $task = sts-b ] && dir=STS-B
  "$bin" train examples/glue_benchmark_config.yaml "${tiny[@]}" model.task_name=$task model.dataset.data_dir="$data/glue/$dir" \
    model.tokenizer.vocab_file="$data/bert-base-cased/vocab.txt" model.dataset.max_seq_length=64 \
    model.train_ds.batch_size=8 model.validation_ds.batch_size=16 trainer.max_steps=4 \
    exp_manager.exp_dir="$work/g" exp_manager.name=$task exp_manager.version=v > "$work/$task.log" 2>&1 || { tail -20 "$work/$task.log"; fail "$task train"; }
  d="$work/g/$task/v"
  "$bin" test "$d/checkpoints/$task.nemo" "$data/glue/$dir/dev.tsv" model.test_ds.batch_size=16 trainer.limit_test_batches=2 \
    > "$work/$task.test" 2>&1 || { cat "$work/$task.test"; fail "$task test"; }
  compare_last_val "$d/metrics.csv" "$work/$task.test" || fail "$task restored metrics"
  echo "ok: $task"
done
echo PASSED
