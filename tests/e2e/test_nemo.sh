#!/usr/bin/env bash
# .nemo written by `megatune train`: read by Python (tarfile + torch.load) with NeMo's keys and
# shapes; restored by `megatune test` with exactly the validation metrics the run logged; weights
# carried by init_from_nemo_model; metrics.csv columns; TensorBoard events read by the independent
# reader match metrics.csv; malicious/broken archives are refused without touching the disk.
set -u
# GOMP's default active wait makes 2 OpenMP threads crawl (seconds per step) when the 2 cores are
# shared with other tests; passive waiting keeps the runs fast without changing any result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-/usr/bin/python3}
"$py" -c "import torch, yaml" 2>/dev/null || { echo "SKIP: python with torch and yaml needed"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
# "these differ" only when both files could be read and differ (cmp: 1), never when one is missing (2)
differ() { cmp -s "$1" "$2"; [ $? = 1 ]; }
# the same for two .nemo files' tensors: check_nemo exits 3 for a differing tensor, 1 when it failed
weights_differ() {
  "$py" tools/check_nemo.py same-weights "$1" "$2" > "$work/sw.out" 2>&1
  local rc=$?
  [ $rc = 3 ] || { [ $rc = 0 ] || cat "$work/sw.out"; return 1; }
}
steps=40; [ "${MEGATUNE_SANITIZED:-0}" = 1 ] && steps=20
shape=(model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.language_model.config.num_attention_heads=4 model.dataset.max_seq_length=24)
"$bin" train examples/quickstart_config.yaml "${shape[@]}" trainer.max_steps=$steps trainer.val_check_interval=10 \
  trainer.log_every_n_steps=3 model.train_ds.batch_size=8 exp_manager.exp_dir="$work/e" exp_manager.version=v \
  > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "train"; }
dir="$work/e/quickstart/v"
nemo="$dir/checkpoints/quickstart.nemo"
[ -f "$nemo" ] || fail "no .nemo"
grep -q "^.nemo: *$nemo" "$work/train.log" || fail "train did not print the .nemo path"
for f in cmd-args.log hparams.yaml nemo_log_globalrank-0_localrank-0.txt metrics.csv; do [ -s "$dir/$f" ] || fail "missing $f"; done

"$py" tools/check_nemo.py inspect "$nemo" --hidden 32 --layers 2 --heads 4 --positions 64 --vocab-lines 89 \
  --classes 2 --head-layers 2 || fail "check_nemo inspect"

# metrics.csv columns and rows; test metrics == last logged validation metrics
"$py" - "$dir/metrics.csv" "$steps" <<'PY' || fail "metrics.csv"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
want = ["step", "epoch", "train_loss", "lr", "val_loss", "val_f1", "val_precision", "val_recall", "val_acc"]
assert rows[0] == want, rows[0]
steps = [int(r[0]) for r in rows[1:]]
# logged every 3 steps, plus every validation (every 10 batches) and the last step
exp = sorted(set(range(3, int(sys.argv[2]) + 1, 3)) | set(range(10, int(sys.argv[2]) + 1, 10)))
assert steps == exp, (steps, exp)
for r in rows[1:]:
    assert all(r[i] != "" for i in range(4)), r
    has_val = int(r[0]) % 10 == 0
    assert all((r[i] != "") == has_val for i in range(4, 9)), r
PY
last=$(tail -1 "$dir/metrics.csv")
"$bin" test "$nemo" > "$work/test.out" 2>&1 || { cat "$work/test.out"; fail "megatune test"; }
"$py" - "$dir/metrics.csv" "$work/test.out" <<'PY' || fail "test metrics differ from the logged validation metrics"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h, last = rows[0], rows[-1]
got = dict(l.split(": ") for l in open(sys.argv[2]).read().splitlines() if l.startswith("test_"))
for name in ["loss", "f1", "precision", "recall", "acc"]:
    v = last[h.index("val_" + name)]
    assert got["test_" + name] == v, (name, got["test_" + name], v)
print("test metrics == logged validation metrics:", got)
PY

# TensorBoard events, read independently, carry the metrics.csv values
ev=$(ls "$dir"/events.out.tfevents.* | head -1)
"$py" - "$src/tools" "$ev" "$dir/metrics.csv" <<'PY' || fail "TensorBoard events"
import csv, struct, sys
sys.path.insert(0, sys.argv[1])
import read_tfevents as r
ev = r.read_records(sys.argv[2])
assert ev[0]["file_version"] == "brain.Event:2"
f32 = lambda x: struct.unpack("<f", struct.pack("<f", float(x)))[0]
sc = {}
for e in ev[1:]:
    for v in e["summary"]:
        sc[(e["step"], v["tag"])] = v["simple_value"]
rows = list(csv.reader(open(sys.argv[3])))
h = rows[0]
n = 0
for row in rows[1:]:
    for i, tag in enumerate(h[2:], 2):
        if row[i] == "":
            assert (int(row[0]), tag) not in sc
            continue
        assert sc[(int(row[0]), tag)] == f32(row[i]), (row[0], tag, sc.get((int(row[0]), tag)), row[i])
        n += 1
print("tensorboard: %d scalars match metrics.csv" % n)
PY

# a .nemo shaped as NeMo writes it (encoder only in the config_file JSON member) restores the same
"$py" tools/check_nemo.py nemo-style "$nemo" "$work/nemo_style.nemo" || fail "nemo-style rewrite"
"$bin" test "$work/nemo_style.nemo" > "$work/test2.out" 2>&1 || { cat "$work/test2.out"; fail "test of the NeMo-style .nemo"; }
[ "$(grep '^test_' "$work/test.out")" = "$(grep '^test_' "$work/test2.out")" ] || fail "NeMo-style .nemo gives other metrics"

# model.language_model.config_file (Megatron JSON, dashed keys) decides the shape
printf '{"hidden-size": 32, "num-attention-heads": 4, "num-layers": 1, "max-seq-length": 64}\n' > "$work/enc.json"
"$bin" train examples/quickstart_config.yaml model.language_model.config=null model.language_model.config_file="$work/enc.json" \
  trainer.max_steps=2 exp_manager.exp_dir="$work/cf" exp_manager.version=v > "$work/cf.log" 2>&1 || { cat "$work/cf.log"; fail "config_file"; }
"$py" tools/check_nemo.py inspect "$work/cf/quickstart/v/checkpoints/quickstart.nemo" --hidden 32 --layers 1 --heads 4 \
  --positions 64 --vocab-lines 89 --classes 2 || fail "config_file shape"

# training checkpoints are PyTorch Lightning checkpoints: weights, Adam moments, counters
"$py" - "$dir"/checkpoints/*-last.ckpt "$steps" <<'PY' || fail "torch.load of the -last checkpoint"
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu")
assert ck["global_step"] == int(sys.argv[2]) and ck["megatune"]["optimizer_steps"] == int(sys.argv[2]), ck["global_step"]
sd = ck["state_dict"]
st = ck["optimizer_states"][0]["state"]
assert len(sd) == 33 and sorted(st) == list(range(33)), (len(sd), sorted(st))
assert all(st[i]["exp_avg"].shape == v.shape for i, v in enumerate(sd.values()))
assert sd["classifier.mlp.layer2.weight"].shape == (2, 32)
print("checkpoint: %d tensors, global_step %d" % (len(sd), ck["global_step"]))
PY

# hparams.yaml is the full config, readable by YAML
"$py" -c "import yaml,sys; c=yaml.safe_load(open(sys.argv[1])); assert c['trainer']['max_steps']==$steps and c['model']['language_model']['config']['hidden_size']==32" "$dir/hparams.yaml" || fail "hparams.yaml"

# predict
printf 'the movie was great .\nthe plot is dull .\n' > "$work/in.txt"
"$bin" predict "$nemo" "$work/in.txt" "$work/pred.tsv" 2>/dev/null || fail "predict"
[ "$(wc -l < "$work/pred.tsv")" = 2 ] && grep -Eq '^[01]	0?\.[0-9]+|^[01]	1' "$work/pred.tsv" || { cat "$work/pred.tsv"; fail "predict output"; }

# init_from_nemo_model: every weight, heads included; max_steps=0 still writes the .nemo
"$bin" train examples/quickstart_config.yaml "${shape[@]}" trainer.max_steps=0 init_from_nemo_model="$nemo" \
  trainer.seed=99 exp_manager.exp_dir="$work/i" exp_manager.version=v > "$work/init.log" 2>&1 || { cat "$work/init.log"; fail "init_from_nemo_model"; }
"$py" tools/check_nemo.py same-weights "$nemo" "$work/i/quickstart/v/checkpoints/quickstart.nemo" || fail "init_from_nemo_model weights"

# trainer.seed decides the initial weights, and (from the same weights: init_from_nemo_model) the data
# order and the dropout masks; the same seed gives the same run. Every other run here uses the default.
seeded() { # TAG SEED ARGS...: a 3-step run; its metrics.csv is $work/seed_TAG/quickstart/v/metrics.csv
  local tag=$1 seed=$2; shift 2
  "$bin" train examples/quickstart_config.yaml "${shape[@]}" trainer.max_steps=3 trainer.log_every_n_steps=1 \
    trainer.seed=$seed "$@" exp_manager.exp_dir="$work/seed_$tag" exp_manager.version=v > "$work/seed_$tag.log" 2>&1 \
    || { cat "$work/seed_$tag.log"; fail "trainer.seed=$seed run"; }
}
seeded a 1; seeded b 2; seeded c 1
sm() { echo "$work/seed_$1/quickstart/v/metrics.csv"; }
[ "$(wc -l < "$(sm a)")" = 4 ] || fail "seeded runs: want 3 rows"
cmp -s "$(sm a)" "$(sm c)" || fail "trainer.seed=1 twice gave two runs"
differ "$(sm a)" "$(sm b)" || fail "trainer.seed=1 and 2 trained the same run"
weights_differ "$work/seed_a/quickstart/v/checkpoints/quickstart.nemo" \
  "$work/seed_b/quickstart/v/checkpoints/quickstart.nemo" || fail "trainer.seed=1 and 2 ended with the same weights"
seeded d 1 init_from_nemo_model="$nemo"; seeded e 2 init_from_nemo_model="$nemo"
differ "$(sm d)" "$(sm e)" || fail "from the same weights, trainer.seed=1 and 2 trained the same run (data order, dropout)"
# with dropout off only the data order is left to the seed: shuffled (the default) it differs, with
# model.train_ds.shuffle=false it cannot
nodrop=(init_from_nemo_model="$nemo" model.language_model.config.hidden_dropout=0
  model.language_model.config.attention_dropout=0 model.classifier_head.fc_dropout=0)
seeded h 1 "${nodrop[@]}"; seeded i 2 "${nodrop[@]}"
differ "$(sm h)" "$(sm i)" || fail "dropout off, trainer.seed=1 and 2 trained the same run: the data was not shuffled"
seeded j 1 "${nodrop[@]}" model.train_ds.shuffle=false; seeded k 2 "${nodrop[@]}" model.train_ds.shuffle=false
cmp -s "$(sm j)" "$(sm k)" || fail "dropout off and model.train_ds.shuffle=false, trainer.seed=1 and 2 trained two runs"
seeded f 1 trainer.max_steps=0; seeded g 2 trainer.max_steps=0
weights_differ "$work/seed_f/quickstart/v/checkpoints/quickstart.nemo" \
  "$work/seed_g/quickstart/v/checkpoints/quickstart.nemo" || fail "trainer.seed=1 and 2 gave the same initial weights"
echo "trainer.seed: the initial weights, the data order and dropout follow it"

# model.language_model.lm_checkpoint: a Megatron-LM folder with 2 tensor-parallel shards (checkpoint
# version 3) merged into the encoder; max_steps=0 writes the untouched weights into the .nemo
"$py" tools/make_megatron_ckpt.py "$work/mck" --tp 2 --version 3 --hidden 32 --heads 4 --layers 2 --vocab 89 \
  --seq 64 > /dev/null || fail "make_megatron_ckpt"
"$bin" train examples/quickstart_config.yaml "${shape[@]}" trainer.max_steps=0 model.language_model.lm_checkpoint="$work/mck" \
  exp_manager.exp_dir="$work/m" exp_manager.version=v > "$work/m.log" 2>&1 || { cat "$work/m.log"; fail "lm_checkpoint"; }
grep -q "encoder weights from $work/mck: 29 tensors loaded" "$work/m.log" || fail "lm_checkpoint load message"
"$py" tools/check_nemo.py megatron "$work/m/quickstart/v/checkpoints/quickstart.nemo" "$work/mck" || fail "encoder != checkpoint"
expect_fail=$("$bin" train examples/quickstart_config.yaml trainer.max_steps=0 model.language_model.lm_checkpoint="$work/mck" \
  exp_manager.exp_dir="$work/m2" 2>&1); rc=$?
[ $rc = 1 ] && echo "$expect_fail" | grep "megatune: error: " | grep -q "$work/mck" \
  || fail "a checkpoint of another shape: exit $rc, want 1 with an error naming it: $expect_fail"
echo "shape mismatch -> $(echo "$expect_fail" | tail -1)"

# a .nemo on demand from any training checkpoint: resume from it with max_steps=0
ck=$(ls "$dir"/checkpoints/*-last.ckpt)
"$bin" train examples/quickstart_config.yaml "${shape[@]}" trainer.max_steps=0 trainer.resume_from_checkpoint="$ck" \
  exp_manager.exp_dir="$work/od" exp_manager.version=v > "$work/od.log" 2>&1 || { cat "$work/od.log"; fail "on-demand .nemo"; }
"$py" tools/check_nemo.py same-weights "$nemo" "$work/od/quickstart/v/checkpoints/quickstart.nemo" || fail "on-demand .nemo weights"

# hostile and broken archives: refused for their own reason, nothing written outside. (The archive
# must exist: a missing one is refused too, naming the same file, and would pass the checks below.)
for kind in dotdot absolute symlink hardlink device garbage truncated; do
  "$py" tools/check_nemo.py make-bad "$work/bad_$kind.nemo" $kind "$nemo" && [ -s "$work/bad_$kind.nemo" ] \
    || fail "check_nemo.py make-bad $kind wrote no archive"
  case $kind in
    dotdot|absolute) why="has an unsafe name" ;;
    symlink|hardlink|device) why="member './model_weights.ckpt' is a link or special file" ;;
    garbage) why="not a .nemo (gzip tar)" ;;
    truncated) why="is corrupt or truncated" ;;
  esac
  out=$("$bin" test "$work/bad_$kind.nemo" 2>&1); rc=$?
  # exit 1 is a refusal; a crash (128+signal, or an ASan report) is not
  [ $rc -eq 1 ] || fail "$kind .nemo: exit $rc, want 1 (a clear refusal, not a crash or an acceptance): $out"
  ! echo "$out" | grep -q "AddressSanitizer\|runtime error" || fail "$kind: sanitizer report: $out"
  echo "$out" | grep -qF "bad_$kind.nemo" && echo "$out" | grep "megatune: error: " | grep -qF "$why" \
    || fail "$kind: not refused as '$why': $out"
  echo "$kind -> $(echo "$out" | tail -1)"
done
[ ! -e /tmp/megatune_evil_absolute.txt ] || fail "absolute member was written"
[ -z "$(find "$work/.." -maxdepth 2 -name megatune_evil_member.txt 2>/dev/null)" ] || fail "../ member was written"
out=$("$bin" train examples/quickstart_config.yaml trainer.max_steps=1 init_from_nemo_model="$work/bad_dotdot.nemo" \
  exp_manager.exp_dir="$work/j" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "megatune: error: .*bad_dotdot.nemo.*unsafe name" \
  || fail "init_from_nemo_model with a bad .nemo: exit $rc, want 1 with the unsafe-name message: $out"
echo PASSED
