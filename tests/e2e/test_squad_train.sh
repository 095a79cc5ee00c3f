#!/usr/bin/env bash
# Question answering end to end on SQuAD slices with a tiny model (1 layer, hidden 64, dropout 0):
#  - NeMo's question_answering_squad_config.yaml, unchanged, trains, writes
#    val_loss / val_exact_match / val_f1 to metrics.csv and a .nemo;
#  - `megatune test` on the .nemo writes predictions.json + nbest_predictions.json whose official
#    score (`megatune eval-squad`) is exactly the test_exact_match / test_f1 printed;
#  - v2.0 (version_2_with_negative): val_best_exact/best_f1 and HasAns/NoAns columns, null_odds.json,
#    eval-squad with --na-prob-file;
#  - `megatune predict` on the questions alone writes the same files as test;
#  - (do_training=false, test only: test_squad_do_training_false.sh);
#  - TP=2, and DP=2 with half the batch per rank, under mpirun give the metrics of one process (skipped part when mpirun cannot start 2 ranks).
set -u
. "$(dirname "$0")/mpi_env.sh" # mpi_env, mpi_can_start for the mpirun part
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:?}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
[ -f "$DATA/squad/dev-v1.1.json.zip" ] && [ -f "$DATA/squad/dev-v2.0.json.zip" ] || { echo "SKIP: SQuAD data missing"; exit 77; }
T=$(mktemp -d /tmp/mt_squad_train_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$SRC" || exit 1
V=$DATA/bert-base-uncased/vocab.txt

"$PY" tools/squad_slices.py "$DATA/squad" "$T" 4 || fail "cannot prepare the slices"
# NeMo's config, unchanged (its ${model.dataset.*} interpolations included)
cp examples/question_answering_squad_config.yaml "$T/qa.yaml"
tiny=(model.tokenizer.vocab_file="$V" model.language_model.pretrained_model_name=megatron-bert-uncased
  model.tokenizer.tokenizer_name=megatron-bert-uncased
  model.language_model.config.hidden_size=64 model.language_model.config.num_layers=1
  model.language_model.config.num_attention_heads=2 model.language_model.config.max_position_embeddings=128
  model.language_model.config.hidden_dropout=0 model.language_model.config.attention_dropout=0
  model.dataset.max_seq_length=128 model.dataset.doc_stride=48 model.dataset.max_query_length=24
  model.train_ds.batch_size=8 model.validation_ds.batch_size=16 model.test_ds.batch_size=16
  trainer.max_steps=6 trainer.val_check_interval=3 trainer.log_every_n_steps=1 trainer.progress_bar=lines
  trainer.precision=32 model.optim.lr=1e-3 exp_manager.version=v)

train() { # name tag extra...
  local name=$1 tag=$2; shift 2
  "$BIN" train "$T/qa.yaml" "${tiny[@]}" model.train_ds.file="$T/${tag}_train.json" \
    model.validation_ds.file="$T/${tag}_dev.json" exp_manager.exp_dir="$T/$name" model.nemo_path="$T/$name.nemo" "$@" \
    > "$T/$name.log" 2>&1 || { tail -20 "$T/$name.log"; fail "$name: train"; }
  [ -f "$T/$name/QA/v/metrics.csv" ] && [ -f "$T/$name.nemo" ] || fail "$name: no metrics.csv or .nemo"
}
train v1 v1
head -1 "$T/v1/QA/v/metrics.csv" | grep -q "val_loss,val_exact_match,val_f1" || { head -1 "$T/v1/QA/v/metrics.csv"; fail "v1 metrics.csv columns"; }

# test -> prediction files whose official score is what test prints
scored() { # name tag [v2]
  local name=$1 tag=$2
  mkdir -p "$T/$name-out"
  "$BIN" test "$T/$name.nemo" "$T/${tag}_dev.json" model.output_dir="$T/$name-out" > "$T/$name-test.txt" 2> "$T/$name-test.err" \
    || { cat "$T/$name-test.err"; fail "$name: test"; }
  [ -s "$T/$name-out/predictions.json" ] && [ -s "$T/$name-out/nbest_predictions.json" ] || fail "$name: no prediction files"
  local na=(); if [ "${3:-}" = v2 ]; then
    [ -s "$T/$name-out/null_odds.json" ] || fail "$name: no null_odds.json"
    "$BIN" eval-squad "$T/${tag}_dev.json" "$T/$name-out/predictions.json" --na-prob-file "$T/$name-out/null_odds.json" \
      | grep -q '"best_f1_thresh"' || fail "$name: eval-squad with null odds"
  fi
  "$BIN" eval-squad "$T/${tag}_dev.json" "$T/$name-out/predictions.json" > "$T/$name-eval.json" || fail "$name: eval-squad"
  "$PY" - "$T/$name-test.txt" "$T/$name-eval.json" "$name" <<'EOF' || fail "$name: logged scores differ from eval-squad's"
import json, sys
logged = dict(l.split(": ") for l in open(sys.argv[1]).read().split("\n") if l.startswith("test_"))
ev = json.load(open(sys.argv[2]))
em = ev.get("exact_match", ev.get("exact"))
for k, v in (("test_exact_match", em), ("test_f1", ev["f1"])):
    assert "%.9g" % v == logged[k].strip(), (k, v, logged[k])
print("%s: test_exact_match %s test_f1 %s == eval-squad" % (sys.argv[3], logged["test_exact_match"].strip(), logged["test_f1"].strip()))
EOF
}
scored v1 v1
# prediction files that cannot be written: exit 1 and no scores on stdout before the error
out=$("$BIN" test "$T/v1.nemo" "$T/v1_dev.json" model.output_dir="$T/v1.nemo/out" 2> "$T/unwritable.err"); rc=$?
[ $rc = 1 ] && [ -z "$out" ] && grep -q "megatune: error: " "$T/unwritable.err" \
  || fail "test with an unwritable model.output_dir: exit $rc, stdout '$out', stderr $(cat "$T/unwritable.err")"
# predict on the same questions (answers not needed) writes the same prediction files as test
mkdir -p "$T/pred"
"$PY" -c "
import json, sys
d = json.load(open(sys.argv[1]))
for a in d['data']:
    for p in a['paragraphs']:
        for q in p['qas']: q.pop('answers')
json.dump(d, open(sys.argv[2], 'w'))" "$T/v1_dev.json" "$T/v1_questions.json"
"$BIN" predict "$T/v1.nemo" "$T/v1_questions.json" "$T/pred" 2> "$T/pred.err" || { cat "$T/pred.err"; fail "predict"; }
cmp -s "$T/pred/predictions.json" "$T/v1-out/predictions.json" && cmp -s "$T/pred/nbest_predictions.json" "$T/v1-out/nbest_predictions.json" \
  || fail "predict's prediction files differ from test's"
echo "ok: predict on questions without answers == test's prediction files"

train v2 v2 model.dataset.version_2_with_negative=true
head -1 "$T/v2/QA/v/metrics.csv" | grep -q "val_best_exact,val_best_f1,val_HasAns_exact,val_HasAns_f1,val_NoAns_exact,val_NoAns_f1" \
  || { head -1 "$T/v2/QA/v/metrics.csv"; fail "v2 metrics.csv columns"; }
scored v2 v2 v2

# TP=2 == TP=1
# (not under MEGATUNE_SANITIZED=1: the ASan run keeps its time for the rest, as a scale-down, not a skip)
mpi_env root shm threads
if [ "${MEGATUNE_SANITIZED:-0}" != 1 ] && mpi_part "the TP=2 / DP=2 part"; then
    mpirun --oversubscribe -np 2 "$BIN" train "$T/qa.yaml" "${tiny[@]}" model.tensor_model_parallel_size=2 \
      model.train_ds.file="$T/v1_train.json" model.validation_ds.file="$T/v1_dev.json" exp_manager.exp_dir="$T/tp2" \
      > "$T/tp2.log" 2>&1 || { tail -20 "$T/tp2.log"; fail "TP=2 train"; }
    mpirun --oversubscribe -np 2 "$BIN" train "$T/qa.yaml" "${tiny[@]}" model.train_ds.batch_size=4 \
      model.train_ds.file="$T/v1_train.json" model.validation_ds.file="$T/v1_dev.json" exp_manager.exp_dir="$T/dp2" \
      > "$T/dp2.log" 2>&1 || { tail -20 "$T/dp2.log"; fail "DP=2 train"; }
    grep -q "tensor-parallel rank 1 of 2" "$T/tp2/QA/v/nemo_log_globalrank-1_localrank-1.txt" || fail "TP=2 did not run 2 TP ranks"
    grep -q "data-parallel rank 1 of 2" "$T/dp2/QA/v/nemo_log_globalrank-1_localrank-1.txt" || fail "DP=2 did not run 2 DP ranks"
    for run in tp2 dp2; do
    "$PY" - "$T/v1/QA/v/metrics.csv" "$T/$run/QA/v/metrics.csv" "$run" <<'EOF' || fail "$run differs from one process"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) and len(a) >= 6, (len(a), len(b))
worst = 0.0
for ra, rb in zip(a, b):
    for k in ra:
        if k in ("step", "epoch") or ra[k] == "" or rb[k] == "":
            assert ra[k] == rb[k], (k, ra[k], rb[k]); continue
        x, y = float(ra[k]), float(rb[k]); rel = abs(x - y) / max(abs(x), 1e-6); worst = max(worst, rel)
        assert rel <= 1e-4, (ra["step"], k, x, y)
print("%s == one process: %d rows, worst relative difference %.2e" % (sys.argv[3], len(a), worst))
EOF
    done
fi
mpi_part_end
echo PASS
