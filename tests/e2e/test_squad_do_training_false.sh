#!/usr/bin/env bash
# NeMo's question_answering_squad.py with do_training=false: `megatune train CONFIG do_training=false
# pretrained_model=X.nemo model.test_ds.file=DATA.json` trains nothing and writes no checkpoint; it
# tests the .nemo (trainer.test) and writes predictions.json / nbest_predictions.json (v2: also
# null_odds.json) into the experiment's log folder:
#  - those files are byte for byte what `megatune predict` writes for the same .nemo and data;
#  - the test_exact_match / test_f1 it prints (and logs to TensorBoard) are `megatune eval-squad`'s
#    score of that predictions.json;
#  - without model.test_ds.file, or without pretrained_model: one clear message, exit 1, no folder.
set -u
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:?}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
[ -f "$DATA/squad/dev-v1.1.json.zip" ] && [ -f "$DATA/squad/dev-v2.0.json.zip" ] || { echo "SKIP: SQuAD data missing"; exit 77; }
T=$(mktemp -d /tmp/mt_squad_notrain_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$SRC" || exit 1
export OMP_WAIT_POLICY=passive

"$PY" - "$DATA/squad" "$T" <<'EOF' || fail "cannot prepare the slices"
import json, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
for name, tag in (("dev-v1.1", "v1"), ("dev-v2.0", "v2")):
    d = json.loads(zipfile.ZipFile("%s/%s.json.zip" % (src, name)).read(name + ".json"))
    tr = dict(d, data=[dict(d["data"][0], paragraphs=d["data"][0]["paragraphs"][:3])])
    dv = dict(d, data=[dict(d["data"][5], paragraphs=d["data"][5]["paragraphs"][:3])])
    json.dump(tr, open("%s/%s_train.json" % (dst, tag), "w"))
    json.dump(dv, open("%s/%s_dev.json" % (dst, tag), "w"))
EOF
cp examples/question_answering_squad_config.yaml "$T/qa.yaml"
tiny=(model.tokenizer.vocab_file="$DATA/bert-base-uncased/vocab.txt"
  model.language_model.pretrained_model_name=megatron-bert-uncased model.tokenizer.tokenizer_name=megatron-bert-uncased
  model.language_model.config.hidden_size=64 model.language_model.config.num_layers=1
  model.language_model.config.num_attention_heads=2 model.language_model.config.max_position_embeddings=128
  model.dataset.max_seq_length=128 model.dataset.doc_stride=48 model.dataset.max_query_length=24
  model.train_ds.batch_size=8 trainer.max_steps=4 trainer.val_check_interval=4 trainer.progress_bar=lines
  model.optim.lr=1e-3 exp_manager.version=v)

for tag in v1 v2; do
  v2=(); [ $tag = v2 ] && v2=(model.dataset.version_2_with_negative=true)
  "$BIN" train "$T/qa.yaml" "${tiny[@]}" "${v2[@]}" model.train_ds.file="$T/${tag}_train.json" \
    model.validation_ds.file="$T/${tag}_dev.json" exp_manager.exp_dir="$T/fit-$tag" model.nemo_path="$T/$tag.nemo" \
    > "$T/fit-$tag.log" 2>&1 || { tail -20 "$T/fit-$tag.log"; fail "$tag: fine-tune"; }
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
  "$PY" - "$T/nt-$tag.out" "$T/eval-$tag.json" "$L" "$SRC/tools" "$tag" <<'EOF' || fail "$tag: logged test metrics differ from eval-squad's"
import glob, json, struct, sys
sys.path.insert(0, sys.argv[4])
import read_tfevents
logged = dict(l.split(": ", 1) for l in open(sys.argv[1]).read().split("\n") if l.startswith("test_"))
ev = json.load(open(sys.argv[2]))
want = {"test_exact_match": ev.get("exact_match", ev.get("exact")), "test_f1": ev["f1"]}
if "best_f1" in ev:
    want.update(test_best_exact=ev["best_exact"], test_best_f1=ev["best_f1"])
assert "test_loss" in logged, logged
for k, v in want.items():
    assert "%.9g" % v == logged[k].strip(), (k, v, logged.get(k))
# TensorBoard: the same scalars at step 0 (float32)
ev_files = glob.glob(sys.argv[3] + "/events.out.tfevents.*")
assert ev_files, "no TensorBoard events file"
f32 = lambda x: struct.unpack("<f", struct.pack("<f", float(x)))[0]
tb = {}
for f in ev_files:
    for e in read_tfevents.read_records(f)[1:]:
        for v in e["summary"]: tb[v["tag"]] = (e["step"], v["simple_value"])
for k, v in want.items():
    assert tb.get(k) == (0, f32(v)), ("TensorBoard", k, tb.get(k), v)
# (test_loss is printed to 9 digits: the float32 in TensorBoard agrees to float32's precision)
tl = float(logged["test_loss"])
assert tb.get("test_loss", (-1,))[0] == 0 and abs(tb["test_loss"][1] - tl) <= 1e-6 * abs(tl), ("TensorBoard test_loss", tb.get("test_loss"), tl)
print("%s: %s == eval-squad (%s)" % (sys.argv[5], ", ".join("%s %s" % (k, logged[k].strip()) for k in want), ev))
EOF
done

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
echo PASS
