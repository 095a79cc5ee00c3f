#!/usr/bin/env bash
# `megatune test` under mpirun with data parallelism (model.tensor_model_parallel_size=K below the
# process count): the test batches are shared out over the data-parallel ranks (batch b on dp rank
# b % dp, eval_dp.c) and everything printed is one process's, compared as text: the classification
# report and every test_* line. Text classification on a trained quickstart .nemo (so the predictions
# are not all one class): DP=2 == one process with an odd number of batches (the last rank idle in
# the last round) and with limit_test_batches; TP=2 x DP=2 == TP=2. With MEGATUNE_DATA, a tiny SQuAD
# model: DP=2 writes predictions.json, nbest_predictions.json and null_odds.json byte for byte as one
# process does, once (rank 0).
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; data=${MEGATUNE_DATA:-}; py=${MEGATUNE_PYTHON:-python3}
mpi_env
mpi_require_start
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }

# t NAME NP ARGS...: stdout in $work/NAME.out, stderr (every rank's log) in $work/NAME.err
t() {
  local name=$1 np=$2; shift 2
  if [ "$np" = 1 ]; then "$bin" test "$@" > "$work/$name.out" 2> "$work/$name.err"
  else mpirun --oversubscribe -np "$np" "$bin" test "$@" > "$work/$name.out" 2> "$work/$name.err"; fi \
    || { tail -20 "$work/$name.err"; fail "$name: megatune test"; }
  grep -q "^test_loss: " "$work/$name.out" || { cat "$work/$name.out"; fail "$name: no test_loss line"; }
}
# same A B: identical stdout (report and test_* lines)
same() {
  diff "$work/$1.out" "$work/$2.out" > "$work/diff" || { cat "$work/diff"; fail "$1 vs $2: test output differs"; }
  echo "$1 vs $2: identical ($(grep -c . "$work/$1.out") lines; $(grep '^test_' "$work/$1.out" | tr '\n' ' '))"
}
# shared NAME "N of the M": rank 1's log says it evaluated its share
shared() {
  grep -q "rank 1\] .*test: this data-parallel rank evaluated $2 batches" "$work/$1.err" \
    || { grep -i "evaluated\|rank" "$work/$1.err" | head; fail "$1: test batches not shared out ($2 expected on rank 1)"; }
}

"$bin" train examples/quickstart_config.yaml trainer.max_steps=150 trainer.progress_bar=lines \
  exp_manager.exp_dir="$work/q" exp_manager.version=v > "$work/q.log" 2>&1 || { tail "$work/q.log"; fail "quickstart"; }
nemo=$work/q/quickstart/v/checkpoints/quickstart.nemo
dev=examples/data/quickstart_dev.tsv
# 120 dev examples in batches of 9: 14 batches, 7 per rank
t one 1 "$nemo" "$dev" model.test_ds.batch_size=9
"$py" -c "import sys; a=float([l for l in open(sys.argv[1]) if l.startswith('test_acc')][0].split()[1]); assert 60 < a < 100, a" \
  "$work/one.out" || fail "the quickstart .nemo is not a trained model: $(grep test_acc "$work/one.out")"
t dp2 2 "$nemo" "$dev" model.test_ds.batch_size=9 model.tensor_model_parallel_size=1
same one dp2
shared dp2 "7 of the 14"
[ "$(grep -c '^test_loss' "$work/dp2.out")" = 1 ] || fail "dp2: more than one rank printed the metrics"
# limit_test_batches=5 with batches of 10: rank 0 three batches, rank 1 two
t lim1 1 "$nemo" "$dev" model.test_ds.batch_size=10 trainer.limit_test_batches=5
t lim2 2 "$nemo" "$dev" model.test_ds.batch_size=10 trainer.limit_test_batches=5 model.tensor_model_parallel_size=1
same lim1 lim2
shared lim2 "2 of the 5"
# TP=2 (the default under -np 2) against TP=2 x DP=2
t tp2 2 "$nemo" "$dev" model.test_ds.batch_size=9
t tp2dp2 4 "$nemo" "$dev" model.test_ds.batch_size=9 model.tensor_model_parallel_size=2
same tp2 tp2dp2
grep -q "evaluated 7 of the 14 batches" "$work/tp2dp2.err" || fail "tp2dp2: test batches not shared out"
# a size that does not divide the processes is one clear error
mpirun --oversubscribe -np 2 "$bin" test "$nemo" "$dev" model.tensor_model_parallel_size=3 > /dev/null 2> "$work/bad.err" \
  && fail "tensor_model_parallel_size=3 accepted on 2 processes"
grep -q "does not divide the 2 processes" "$work/bad.err" || { cat "$work/bad.err"; fail "tp=3 on 2 processes: message"; }

if [ "${MEGATUNE_SANITIZED:-0}" = 1 ]; then
  echo "sanitized build: the SQuAD case runs in the Release build only"
elif [ -n "$data" ] && [ -f "$data/squad/dev-v2.0.json.zip" ] && [ -f "$data/bert-base-uncased/vocab.txt" ]; then
  "$py" - "$data/squad" "$work" << 'PY' || fail "cannot prepare the SQuAD slices"
import json, sys, zipfile
d = json.loads(zipfile.ZipFile(sys.argv[1] + "/dev-v2.0.json.zip").read("dev-v2.0.json"))
json.dump(dict(d, data=[dict(d["data"][0], paragraphs=d["data"][0]["paragraphs"][:3])]), open(sys.argv[2] + "/tr.json", "w"))
json.dump(dict(d, data=[dict(d["data"][5], paragraphs=d["data"][5]["paragraphs"][:3])]), open(sys.argv[2] + "/dv.json", "w"))
PY
  "$bin" train examples/question_answering_squad_config.yaml model.tokenizer.vocab_file="$data/bert-base-uncased/vocab.txt" \
    model.language_model.pretrained_model_name=megatron-bert-uncased model.tokenizer.tokenizer_name=megatron-bert-uncased \
    model.language_model.config.hidden_size=32 model.language_model.config.num_layers=1 \
    model.language_model.config.num_attention_heads=2 model.language_model.config.max_position_embeddings=128 \
    model.dataset.max_seq_length=96 model.dataset.doc_stride=48 model.dataset.max_query_length=24 \
    model.dataset.version_2_with_negative=true model.train_ds.file="$work/tr.json" model.validation_ds.file="$work/dv.json" \
    model.train_ds.batch_size=8 trainer.max_steps=4 trainer.val_check_interval=4 trainer.progress_bar=lines \
    exp_manager.exp_dir="$work/qa" exp_manager.version=v model.nemo_path="$work/qa.nemo" > "$work/qa.log" 2>&1 \
    || { tail "$work/qa.log"; fail "SQuAD train"; }
  mkdir -p "$work/qa1" "$work/qa2"
  t qa1 1 "$work/qa.nemo" "$work/dv.json" model.test_ds.batch_size=7 model.output_dir="$work/qa1"
  t qa2 2 "$work/qa.nemo" "$work/dv.json" model.test_ds.batch_size=7 model.output_dir="$work/qa2" model.tensor_model_parallel_size=1
  same qa1 qa2
  grep -q "test: this data-parallel rank evaluated" "$work/qa2.err" || fail "qa2: test batches not shared out"
  for f in predictions.json nbest_predictions.json null_odds.json; do
    [ -s "$work/qa1/$f" ] || fail "one process wrote no $f"
    cmp "$work/qa1/$f" "$work/qa2/$f" || fail "DP=2 $f differs from one process's"
  done
  [ "$(grep -c 'SQuAD prediction files written' "$work/qa2.err")" = 1 ] || fail "qa2: the prediction files were not written once"
  ls "$work/qa2" | grep -q tmp && fail "qa2: temporary files left: $(ls "$work/qa2")"
  echo "SQuAD v2: DP=2 prediction files identical to one process's ($(grep -c . "$work/qa1/predictions.json") lines)"
else
  echo "SKIP: MEGATUNE_DATA ($data) has no squad/dev-v2.0.json.zip or bert-base-uncased/vocab.txt: the SQuAD case not run (text classification passed)"
  exit 77
fi
echo "OK"
