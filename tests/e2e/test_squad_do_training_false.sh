#!/usr/bin/env bash
# NeMo's question_answering_squad.py with do_training=false: `megatune train CONFIG do_training=false
# pretrained_model=X.nemo model.test_ds.file=DATA.json` trains nothing and writes no checkpoint; it
# tests the .nemo (trainer.test) and writes predictions.json / nbest_predictions.json (v2: also
# null_odds.json) into the experiment's log folder:
#  - those files are byte for byte what `megatune predict` writes for the same .nemo and data;
#  - the test_exact_match / test_f1 it prints (and logs to TensorBoard) are `megatune eval-squad`'s
#    score of that predictions.json;
#  - without model.test_ds.file, or without pretrained_model: one clear message, exit 1, no folder.
# And with do_training=true (the fine-tunes below set model.test_ds.file), NeMo's trainer.test after
# trainer.fit and the .nemo: the model in memory (the .nemo's weights) is tested, the same files go to
# the training run's log folder, and the test_* scalars to its TensorBoard file at the last step:
#  - those files are byte for byte `megatune predict`'s on the .nemo the run wrote;
#  - the printed test_exact_match / test_f1 are `megatune eval-squad`'s score of that predictions.json;
#  - with save_best_model (a best checkpoint that is not the last step's) the tested weights are the
#    best, as the .nemo's (NeMo's on_train_end restores them before the script's trainer.test).
set -u
. "$(dirname "$0")/mpi_env.sh" # mpi_env, mpi_part for the mpirun part
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:?}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
[ -f "$DATA/squad/dev-v1.1.json.zip" ] && [ -f "$DATA/squad/dev-v2.0.json.zip" ] || { echo "SKIP: SQuAD data missing"; exit 77; }
T=$(mktemp -d /tmp/mt_squad_notrain_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$SRC" || exit 1
export OMP_WAIT_POLICY=passive

"$PY" tools/squad_slices.py "$DATA/squad" "$T" 3 || fail "cannot prepare the slices"
cp examples/question_answering_squad_config.yaml "$T/qa.yaml"
tiny=(model.tokenizer.vocab_file="$DATA/bert-base-uncased/vocab.txt"
  model.language_model.pretrained_model_name=megatron-bert-uncased model.tokenizer.tokenizer_name=megatron-bert-uncased
  model.language_model.config.hidden_size=64 model.language_model.config.num_layers=1
  model.language_model.config.num_attention_heads=2 model.language_model.config.max_position_embeddings=128
  model.dataset.max_seq_length=128 model.dataset.doc_stride=48 model.dataset.max_query_length=24
  model.train_ds.batch_size=8 trainer.max_steps=4 trainer.val_check_interval=4 trainer.progress_bar=lines
  model.optim.lr=1e-3 exp_manager.version=v)

# logged_is_eval STDOUT EVAL.json LOGDIR WHAT STEP: the test_* lines printed are eval-squad's score to
# every printed digit, and the same scalars are in TensorBoard at STEP (after training: in the events
# file that holds train_loss, the run's one logger)
logged_is_eval() {
  "$PY" - "$1" "$2" "$3" "$SRC/tools" "$4" "$5" <<'EOF' || fail "$4: logged test metrics differ from eval-squad's"
import glob, json, struct, sys
sys.path.insert(0, sys.argv[4])
import read_tfevents
step = int(sys.argv[6])
logged = dict(l.split(": ", 1) for l in open(sys.argv[1]).read().split("\n") if l.startswith("test_"))
ev = json.load(open(sys.argv[2]))
want = {"test_exact_match": ev.get("exact_match", ev.get("exact")), "test_f1": ev["f1"]}
if "best_f1" in ev:
    want.update(test_best_exact=ev["best_exact"], test_best_f1=ev["best_f1"])
assert "test_loss" in logged, logged
for k, v in want.items():
    assert "%.9g" % v == logged[k].strip(), (k, v, logged.get(k))
# TensorBoard: the same scalars at the step (float32)
ev_files = glob.glob(sys.argv[3] + "/events.out.tfevents.*")
assert ev_files, "no TensorBoard events file"
f32 = lambda x: struct.unpack("<f", struct.pack("<f", float(x)))[0]
tb, where = {}, {}
for f in ev_files:
    for e in read_tfevents.read_records(f)[1:]:
        for v in e["summary"]:
            tb[v["tag"]] = (e["step"], v["simple_value"])
            where[v["tag"]] = f
for k, v in want.items():
    assert tb.get(k) == (step, f32(v)), ("TensorBoard", k, tb.get(k), v)
if step:
    assert len(ev_files) == 1 and where["test_loss"] == where["train_loss"], ("events files", ev_files)
# (test_loss is printed to 9 digits: the float32 in TensorBoard agrees to float32's precision)
tl = float(logged["test_loss"])
assert tb.get("test_loss", (-1,))[0] == step and abs(tb["test_loss"][1] - tl) <= 1e-6 * abs(tl), ("TensorBoard test_loss", tb.get("test_loss"), tl)
print("%s: %s == eval-squad (%s)" % (sys.argv[5], ", ".join("%s %s" % (k, logged[k].strip()) for k in want), ev))
EOF
}

for tag in v1 v2; do
  v2=(); [ $tag = v2 ] && v2=(model.dataset.version_2_with_negative=true)
  "$BIN" train "$T/qa.yaml" "${tiny[@]}" "${v2[@]}" model.train_ds.file="$T/${tag}_train.json" \
    model.validation_ds.file="$T/${tag}_dev.json" model.test_ds.file="$T/${tag}_dev.json" model.test_ds.batch_size=7 \
    exp_manager.exp_dir="$T/fit-$tag" model.nemo_path="$T/$tag.nemo" \
    > "$T/fit-$tag.out" 2> "$T/fit-$tag.err" || { tail -20 "$T/fit-$tag.err"; fail "$tag: fine-tune"; }
  # test only, as NeMo's script does it (the config's other keys as they are)
  "$BIN" train "$T/qa.yaml" do_training=false pretrained_model="$T/$tag.nemo" model.test_ds.file="$T/${tag}_dev.json" \
    exp_manager.exp_dir="$T/nt-$tag" exp_manager.version=v > "$T/nt-$tag.out" 2> "$T/nt-$tag.err" \
    || { cat "$T/nt-$tag.err"; fail "$tag: do_training=false"; }
  L=$T/nt-$tag/QA/v
  files=(predictions.json nbest_predictions.json); [ $tag = v2 ] && files+=(null_odds.json)
  for f in "${files[@]}"; do [ -s "$L/$f" ] || fail "$tag: no $f in the log folder $L ($(ls "$L"))"; done
  grep -q '^step ' "$T/nt-$tag.err" && fail "$tag: do_training=false ran training steps"
  [ -z "$(find "$T/nt-$tag" -name '*.ckpt' -o -name '*.nemo')" ] || fail "$tag: checkpoints written: $(find "$T/nt-$tag" -name '*.ckpt' -o -name '*.nemo')"
  [ -e "$L/metrics.csv" ] && fail "$tag: a metrics.csv of training was written"
  grep -q "predictions:  $L/predictions.json" "$T/nt-$tag.out" || fail "$tag: stdout does not say where the predictions are: $(cat "$T/nt-$tag.out")"
  # == predict on the same .nemo and data
  mkdir -p "$T/pred-$tag"
  "$BIN" predict "$T/$tag.nemo" "$T/${tag}_dev.json" "$T/pred-$tag" 2> "$T/pred-$tag.err" || { cat "$T/pred-$tag.err"; fail "$tag: predict"; }
  for f in "${files[@]}"; do cmp -s "$L/$f" "$T/pred-$tag/$f" || fail "$tag: $f differs from megatune predict's"; done
  # the logged scores == the official score of that predictions.json
  na=(); [ $tag = v2 ] && na=(--na-prob-file "$L/null_odds.json")
  "$BIN" eval-squad "$T/${tag}_dev.json" "$L/predictions.json" "${na[@]}" > "$T/eval-$tag.json" || fail "$tag: eval-squad"
  logged_is_eval "$T/nt-$tag.out" "$T/eval-$tag.json" "$L" "$tag: do_training=false" 0
  # do_training=true with model.test_ds.file: the same files and scores, from the trained model
  F=$T/fit-$tag/QA/v
  grep -q "^step " "$T/fit-$tag.out" || fail "$tag: the fine-tune printed no training step"
  grep -q "predictions:  $F/predictions.json" "$T/fit-$tag.out" || fail "$tag: no predictions line after training: $(cat "$T/fit-$tag.out")"
  grep -q "^\.nemo: .*$tag.nemo" "$T/fit-$tag.out" || fail "$tag: no .nemo line after training"
  for f in "${files[@]}"; do cmp -s "$F/$f" "$T/pred-$tag/$f" || fail "$tag: after training, $f differs from megatune predict's on the .nemo"; done
  na=(); [ $tag = v2 ] && na=(--na-prob-file "$F/null_odds.json")
  "$BIN" eval-squad "$T/${tag}_dev.json" "$F/predictions.json" "${na[@]}" > "$T/evalfit-$tag.json" || fail "$tag: eval-squad (fit)"
  logged_is_eval "$T/fit-$tag.out" "$T/evalfit-$tag.json" "$F" "$tag: after training" 4
done

# save_best_model: the .nemo holds the best checkpoint's weights and so does the model tested after
# training. A high learning rate makes the last validation worse than an earlier one, so testing
# the last step's weights would give other predictions than the .nemo's.
"$BIN" train "$T/qa.yaml" "${tiny[@]}" model.train_ds.file="$T/v1_train.json" model.validation_ds.file="$T/v1_dev.json" \
  model.test_ds.file="$T/v1_dev.json" trainer.val_check_interval=1 model.optim.lr=0.05 \
  exp_manager.checkpoint_callback_params.save_best_model=true exp_manager.exp_dir="$T/best" model.nemo_path="$T/best.nemo" \
  > "$T/best.out" 2> "$T/best.err" || { tail -20 "$T/best.err"; fail "save_best_model: fine-tune"; }
B=$T/best/QA/v
"$PY" - "$B/metrics.csv" <<'EOF' || fail "save_best_model: the last validation is the best one; the check would prove nothing"
import csv, sys
v = [float(r["val_loss"]) for r in csv.DictReader(open(sys.argv[1])) if r["val_loss"]]
assert len(v) == 4 and min(v) < v[-1], v
print("save_best_model: val_loss per step %s: the best is not the last" % v)
EOF
grep -q "the .nemo holds the best checkpoint's weights" "$T/best.err" || fail "save_best_model: the .nemo is not the best checkpoint's"
mkdir -p "$T/pred-best"
"$BIN" predict "$T/best.nemo" "$T/v1_dev.json" "$T/pred-best" 2> "$T/pred-best.err" || { cat "$T/pred-best.err"; fail "predict best.nemo"; }
for f in predictions.json nbest_predictions.json; do
  cmp -s "$B/$f" "$T/pred-best/$f" || fail "save_best_model: $f of the test after training differs from predict's on the best .nemo"
done

# Under mpirun the test after training behaves as the test-only run: every rank computes, global
# rank 0 prints once and writes the files. DP=2 (the ranks' weights are one model's): the files are
# `megatune predict`'s on the .nemo. TP=2: they are do_training=false's on the same .nemo with the same
# layout, and so are the printed test_* lines. (Release only: ASan runs skip this part.)
if [ "${MEGATUNE_SANITIZED:-0}" != 1 ]; then
  mpi_env root shm threads
  if mpi_part "the mpirun part (DP=2, TP=2)"; then
    for run in dp2 tp2; do
      par=(model.train_ds.batch_size=4); [ $run = tp2 ] && par=(model.tensor_model_parallel_size=2)
      mpirun --oversubscribe -np 2 "$BIN" train "$T/qa.yaml" "${tiny[@]}" "${par[@]}" model.train_ds.file="$T/v1_train.json" \
        model.validation_ds.file="$T/v1_dev.json" model.test_ds.file="$T/v1_dev.json" exp_manager.exp_dir="$T/$run" \
        model.nemo_path="$T/$run.nemo" > "$T/$run.out" 2> "$T/$run.err" || { tail -20 "$T/$run.err"; fail "$run: fine-tune"; }
      M=$T/$run/QA/v
      grep -q "rank 1 of 2" "$M/nemo_log_globalrank-1_localrank-1.txt" || fail "$run: not 2 ranks"
      [ "$(grep -c '^test_f1: ' "$T/$run.out")" = 1 ] || fail "$run: test_f1 printed $(grep -c '^test_f1: ' "$T/$run.out") times"
      if [ $run = dp2 ]; then
        mkdir -p "$T/pred-$run"
        "$BIN" predict "$T/$run.nemo" "$T/v1_dev.json" "$T/pred-$run" 2> "$T/pred-$run.err" || { cat "$T/pred-$run.err"; fail "$run: predict"; }
        ref=$T/pred-$run
      else
        mpirun --oversubscribe -np 2 "$BIN" train "$T/qa.yaml" do_training=false model.tensor_model_parallel_size=2 \
          pretrained_model="$T/$run.nemo" model.test_ds.file="$T/v1_dev.json" exp_manager.exp_dir="$T/nt-$run" \
          exp_manager.version=v > "$T/nt-$run.out" 2> "$T/nt-$run.err" || { tail -20 "$T/nt-$run.err"; fail "$run: do_training=false"; }
        ref=$T/nt-$run/QA/v
        diff <(grep '^test_' "$T/$run.out") <(grep '^test_' "$T/nt-$run.out") || fail "$run: test_* lines differ from do_training=false's"
      fi
      for f in predictions.json nbest_predictions.json; do
        cmp -s "$M/$f" "$ref/$f" || fail "$run: $f after training differs from $ref/$f"
      done
      "$BIN" eval-squad "$T/v1_dev.json" "$M/predictions.json" > "$T/eval-$run.json" || fail "$run: eval-squad"
      logged_is_eval "$T/$run.out" "$T/eval-$run.json" "$M" "$run: after training" 4
    done
  fi
fi

# no test file: nothing to do, said once; no pretrained_model: refused; neither leaves a folder
"$BIN" train "$T/qa.yaml" do_training=false pretrained_model="$T/v1.nemo" exp_manager.exp_dir="$T/none1" \
  > "$T/none1.out" 2> "$T/none1.err"; rc=$?
[ $rc = 1 ] || fail "do_training=false without model.test_ds.file exited $rc: $(cat "$T/none1.err")"
grep -q "do_training=false with pretrained_model=.*v1.nemo but model.test_ds.file is not set" "$T/none1.err" \
  || fail "no-test-file message: $(cat "$T/none1.err")"
[ ! -e "$T/none1" ] || fail "do_training=false without a test file left $(find "$T/none1")"
"$BIN" train "$T/qa.yaml" "${tiny[@]}" do_training=false model.test_ds.file="$T/v1_dev.json" exp_manager.exp_dir="$T/none2" \
  > "$T/none2.out" 2> "$T/none2.err"; rc=$?
[ $rc = 1 ] || fail "do_training=false without pretrained_model exited $rc: $(cat "$T/none2.err")"
grep -q "do_training=false tests a trained model but pretrained_model is not set" "$T/none2.err" \
  || fail "no-pretrained_model message: $(cat "$T/none2.err")"
[ ! -e "$T/none2" ] || fail "do_training=false without pretrained_model left $(find "$T/none2")"
# a test file that cannot be read fails before training (NeMo's model reads it when built): one
# message naming model.test_ds, exit 1, no training step, no folder
"$BIN" train "$T/qa.yaml" "${tiny[@]}" model.train_ds.file="$T/v1_train.json" model.test_ds.file="$T/missing.json" \
  exp_manager.exp_dir="$T/badtest" > "$T/badtest.out" 2> "$T/badtest.err"; rc=$?
[ $rc = 1 ] || fail "a missing model.test_ds.file exited $rc: $(cat "$T/badtest.err")"
grep -q "model.test_ds.*missing.json" "$T/badtest.err" || fail "missing test file message: $(cat "$T/badtest.err")"
grep -q '^step ' "$T/badtest.out" && fail "a missing model.test_ds.file was found only after training"
[ ! -e "$T/badtest" ] || fail "a missing model.test_ds.file left $(find "$T/badtest")"
mpi_part_end
echo PASS
