#!/usr/bin/env bash
# NeMo's text_classification_with_bert.py (v1.0-v1.4) tests the trained model when model.test_ds.file_path
# is set: trainer.test(model=model, ckpt_path=None, verbose=False) after trainer.fit and save_to, so the
# model in memory (the .nemo's weights) is tested and test_loss / test_precision / test_f1 / test_recall
# (and the classification report) are logged; nothing is written. megatune train does the same:
#  - the report and test_* lines printed after training are `megatune test` on the written .nemo and
#    the same file, to every printed digit; the same scalars are in the run's TensorBoard file at the
#    last step;
#  - with save_best_model (a best checkpoint that is not the last step's) the tested weights are the
#    .nemo's, the best;
#  - without model.test_ds.file_path nothing is tested; a test file that cannot be read fails before
#    training with one message naming model.test_ds, and leaves no folder.
set -u
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
T=$(mktemp -d /tmp/mt_tc_test_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$SRC" || exit 1
export OMP_WAIT_POLICY=passive
ex=examples
steps=80; [ "${MEGATUNE_SANITIZED:-0}" = 1 ] && steps=24
tiny=("$ex/quickstart_config.yaml" model.language_model.config.hidden_size=32 model.language_model.config.num_layers=1
  model.dataset.max_seq_length=24 model.train_ds.batch_size=8 trainer.max_steps=$steps
  trainer.progress_bar=lines trainer.log_every_n_steps=4 model.optim.lr=3e-3 model.validation_ds.file_path="$ex/data/quickstart_dev.tsv"
  model.test_ds.batch_size=16 exp_manager.version=v)
test_file="$ex/data/quickstart_dev.tsv"

report() { awk '/^label  / {n = 0} {l[++n] = $0} /^test_[a-z_]*: / {e = n} END {for (i = 1; i <= e; i++) print l[i]}' "$1"; }
# same_as_test OUT NEMO LOGDIR STEP WHAT: OUT's report and test_* lines are `megatune test NEMO`'s, and
# the test_* scalars are in LOGDIR's one events file at STEP, then `epoch` (60 batches an epoch)
same_as_test() {
  "$BIN" test "$2" "$test_file" model.test_ds.batch_size=16 > "$T/t.out" 2> "$T/t.err" || { cat "$T/t.err"; fail "$5: megatune test"; }
  # the last report table and the test_* lines after it, as printed (validation prints reports too)
  report "$1" > "$T/a"; report "$T/t.out" > "$T/b"
  [ "$(grep -c '^test_' "$T/b")" -ge 4 ] && grep -q "^test_f1: " "$T/b" || { cat "$T/t.out"; fail "$5: megatune test printed no metrics"; }
  [ "$(grep -c '^test_' "$T/a")" = "$(grep -c '^test_' "$T/b")" ] || { cat "$1"; fail "$5: train printed other test lines"; }
  cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b"; fail "$5: the test after training differs from megatune test on the .nemo"; }
  "$PY" - "$1" "$3" "$4" "$SRC/tools" $(( ($4 - 1) / 60 )) <<'PY' || fail "$5: TensorBoard"
import glob, struct, sys
sys.path.insert(0, sys.argv[4])
import read_tfevents
logged = dict(l.split(": ", 1) for l in open(sys.argv[1]).read().split("\n") if l.startswith("test_"))
step = int(sys.argv[3])
files = glob.glob(sys.argv[2] + "/events.out.tfevents.*")
assert len(files) == 1, files
f32 = lambda x: struct.unpack("<f", struct.pack("<f", float(x)))[0]
tb, seq = {}, []
for e in read_tfevents.read_records(files[0])[1:]:
    for v in e["summary"]:
        tb[v["tag"]] = (e["step"], v["simple_value"])
        seq.append((v["tag"], e["step"], v["simple_value"]))
for k, v in logged.items():
    got = tb.get(k)
    assert got and got[0] == step and abs(got[1] - f32(v)) <= 1e-6 * abs(float(v)), ("TensorBoard", k, got, v, step)
# Lightning's log_metrics adds `epoch` (trainer.current_epoch: the last step's epoch after fit) after them
last_test = max(i for i, t in enumerate(seq) if t[0].startswith("test_"))
assert seq[last_test + 1:] == [("epoch", step, float(sys.argv[5]))], ("after the test scalars", seq[last_test - 1:])
PY
  echo "ok: $5: $(tr '\n' ' ' < <(grep '^test_' "$T/a")) == megatune test on the .nemo, TensorBoard at step $4"
}

# 1. the last step's weights
"$BIN" train "${tiny[@]}" model.test_ds.file_path="$test_file" exp_manager.exp_dir="$T/e1" > "$T/e1.out" 2> "$T/e1.err" \
  || { tail "$T/e1.err"; fail "train"; }
d=$T/e1/quickstart/v
grep -q "test: test_loss" "$d/nemo_log_globalrank-0_localrank-0.txt" || fail "the log file has no test line"
grep -q "^predictions:" "$T/e1.out" && fail "text classification announced prediction files"
[ -z "$(find "$d" -name '*predictions*')" ] || fail "text classification wrote prediction files"
same_as_test "$T/e1.out" "$d/checkpoints/quickstart.nemo" "$d" "$steps" "last step"

# 2. save_best_model: the best checkpoint (by val_loss) is an earlier one, and it is what is tested
# (60 steps = one epoch exactly in Release: the test's `epoch` is 0, the epoch of the last step)
s2=60; [ "${MEGATUNE_SANITIZED:-0}" = 1 ] && s2=$steps
"$BIN" train "${tiny[@]}" trainer.max_steps=$s2 model.test_ds.file_path="$test_file" exp_manager.exp_dir="$T/e2" model.optim.lr=0.3 \
  trainer.val_check_interval=4 model.validation_ds.batch_size=16 exp_manager.checkpoint_callback_params.save_best_model=true \
  > "$T/e2.out" 2> "$T/e2.err" || { tail "$T/e2.err"; fail "save_best_model train"; }
d=$T/e2/quickstart/v
# (validation and test read the same file in batches of 16: the tested loss is a logged val_loss)
"$PY" - "$d/metrics.csv" "$T/e2.out" <<'PY' || fail "save_best_model: not the best checkpoint's weights tested"
import csv, sys
v = ["%.9g" % float(r["val_loss"]) for r in csv.DictReader(open(sys.argv[1])) if r["val_loss"]]
t = [l.split(": ")[1].strip() for l in open(sys.argv[2]) if l.startswith("test_loss: ")]
best = min(v, key=float)
assert len(v) >= 2 and float(best) < float(v[-1]), ("the best is the last step's: the case tests nothing", v)
assert t == [best], ("tested", t, "best", best, "val_losses", v)
print("  save_best_model: tested loss %s = the best val_loss (last %s)" % (t[0], v[-1]))
PY
same_as_test "$T/e2.out" "$d/checkpoints/quickstart.nemo" "$d" "$s2" "save_best_model"

# 3. no test file: nothing tested; 4. an unreadable test file fails before training, leaving nothing
"$BIN" train "${tiny[@]}" trainer.max_steps=2 model.test_ds.file_path=null exp_manager.exp_dir="$T/e3" > "$T/e3.out" 2> "$T/e3.err" || fail "train without a test file"
grep -q "^test_" "$T/e3.out" && fail "tested without model.test_ds.file_path"
grep -q "test: test_loss" "$T/e3.err" && fail "logged a test without model.test_ds.file_path"
"$BIN" train "${tiny[@]}" model.test_ds.file_path="$T/missing.tsv" exp_manager.exp_dir="$T/e4" > "$T/e4.out" 2> "$T/e4.err"; rc=$?
[ $rc = 1 ] || fail "a missing test file: exit $rc"
[ "$(grep -c "megatune: error" "$T/e4.err")" = 1 ] && grep -q "model.test_ds.*missing.tsv" "$T/e4.err" || { cat "$T/e4.err"; fail "missing test file message"; }
grep -q "^step " "$T/e4.out" && fail "a missing test file was found only after training"
[ ! -e "$T/e4" ] || fail "a missing test file left $(find "$T/e4")"
echo "ok: no test file: no test; a missing one: $(grep "megatune: error" "$T/e4.err")"
echo PASS
