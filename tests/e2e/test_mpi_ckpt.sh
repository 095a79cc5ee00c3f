#!/usr/bin/env bash
# Tensor-parallel checkpoints and .nemo under mpirun (NeMo's model-parallel layout):
#  - checkpoints/mp_rank_00/ and mp_rank_01/ each hold that rank's -last and top-k .ckpt;
#  - checkpoints/<name>.nemo has mp_rank_XX/model_weights.ckpt members and no top-level weights;
#  - a TP=2 run stopped at step 5 and resumed from its -last checkpoints writes the same
#    metrics.csv as an uninterrupted TP=2 run (constant LR: max_steps does not change the schedule);
#  - `mpirun -np 2 megatune test` on the TP=2 .nemo reproduces the last logged validation metrics;
#    one process (merging the shards) and 4 processes (splitting them) get the same numbers;
#  - init_from_nemo_model reshards too (TP=2 .nemo -> TP=1 run, TP=1 .nemo -> TP=2 run);
#  - predict under mpirun writes one line per input.
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-python3}
"$py" -c 1 2> /dev/null || { echo "no python: skipped"; exit 77; }
mpi_env
mpi_require_start
work=$(mktemp -d); pid=
# a failed check must not leave a background mpirun training
trap '[ -n "$pid" ] && kill -TERM $pid 2> /dev/null; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
common=(examples/quickstart_config.yaml trainer.val_check_interval=5 trainer.log_every_n_steps=1
  trainer.progress_bar=lines model.optim.sched.name=null model.train_ds.batch_size=8
  model.tensor_model_parallel_size=2 exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)
mpi() { mpirun --oversubscribe -np 2 "$bin" "$@"; }

mpi train "${common[@]}" trainer.max_steps=10 exp_manager.exp_dir="$work/full" > "$work/full.log" 2>&1 \
  || { tail -30 "$work/full.log"; fail "TP=2 run"; }
d=$work/full/quickstart
for r in 00 01; do
  ls "$d/checkpoints/mp_rank_$r/"*-last.ckpt > /dev/null 2>&1 || fail "no -last.ckpt in mp_rank_$r"
  [ "$(ls "$d/checkpoints/mp_rank_$r/"*.ckpt | grep -vc -- -last.ckpt)" -ge 1 ] || fail "no top-k .ckpt in mp_rank_$r"
done
ls "$d/checkpoints/"*.ckpt > /dev/null 2>&1 && fail "a .ckpt outside mp_rank_XX"
nemo=$d/checkpoints/quickstart.nemo
[ -f "$nemo" ] || fail "no $nemo"
"$py" - "$nemo" << 'PY' || fail ".nemo members"
import sys, tarfile
names = [n[2:] if n.startswith("./") else n for n in tarfile.open(sys.argv[1]).getnames()]
assert "model_weights.ckpt" not in names, names
for r in ("00", "01"):
    assert f"mp_rank_{r}/model_weights.ckpt" in names and f"mp_rank_{r}" in names, names
assert "model_config.yaml" in names
# NeMo's restore_from counts the members naming mp_rank: a folder and a file per rank
assert sum("mp_rank" in n for n in names) // 2 == 2, names
cfg = tarfile.open(sys.argv[1]).extractfile("./model_config.yaml").read().decode()
assert "tensor_model_parallel_size: 2" in cfg, cfg
print("members:", names)
PY
# the shards differ (each holds half of the split tensors)
"$py" - "$nemo" << 'PY' || fail "shard sizes"
import sys, tarfile
t = tarfile.open(sys.argv[1])
a, b = (t.extractfile(f"./mp_rank_0{r}/model_weights.ckpt").read() for r in (0, 1))
assert a != b
print("shard bytes:", len(a), len(b))
PY

# stop at step 5, resume to 10
mpi train "${common[@]}" trainer.max_steps=5 exp_manager.exp_dir="$work/r" > "$work/r1.log" 2>&1 || { tail -30 "$work/r1.log"; fail "first half"; }
mpi train "${common[@]}" trainer.max_steps=10 exp_manager.exp_dir="$work/r" > "$work/r2.log" 2>&1 || { tail -30 "$work/r2.log"; fail "resumed half"; }
[ "$(grep -c "resumed at step 5" "$work/r2.log")" = 2 ] || { cat "$work/r2.log"; fail "both ranks resume at step 5"; }
grep -q "mp_rank_01/.*-last.ckpt" "$work/r2.log" || fail "rank 1 did not resume from its own mp_rank_01 file"
cmp "$d/metrics.csv" "$work/r/quickstart/metrics.csv" || { diff "$d/metrics.csv" "$work/r/quickstart/metrics.csv" | head; fail "resumed metrics.csv differs"; }

# trainer.resume_from_checkpoint naming rank 0's file: each rank resumes from its own mp_rank_XX copy (NeMo)
last0=$(ls "$work/r/quickstart/checkpoints/mp_rank_00/"*-last.ckpt)
mpi train "${common[@]}" trainer.max_steps=12 exp_manager.resume_if_exists=false exp_manager.exp_dir="$work/rc" \
  exp_manager.version=v trainer.resume_from_checkpoint="$last0" > "$work/rc.log" 2>&1 || { tail -30 "$work/rc.log"; fail "resume_from_checkpoint"; }
grep -q "resuming from .*/mp_rank_01/" "$work/rc.log" || { grep resum "$work/rc.log"; fail "rank 1 not on its own file"; }

# SIGTERM to mpirun reaches every rank; they agree on one step, each saves its -last, and both resume there.
# Open MPI 4 answers a SIGTERM by sending the ranks SIGCONT, then SIGTERM odls_base_sigkill_timeout
# seconds later, then SIGKILL as long again after that. Its default, 1 s, is too short for a loaded
# machine (CI) to finish the step and write the checkpoints, so the test gives the time a user is
# told to give (README, "Stopping a run under mpirun"); mpirun itself then takes 2 x 5 s to return.
# While mpirun waits it reads none of the ranks' output, so a rank that prints more than a pipe holds
# (64 KiB) blocks in write(); once a stop is asked, megatune makes its pipes non-blocking so that the
# rank can still finish and save (CI once lost the stop this way, validating every 100 steps, at
# about 64 KiB in 5 s). Validation every 5 steps here fills the pipes well before mpirun's SIGTERM,
# so this checks that path every time; the stop is read from each rank's log.
OMPI_MCA_odls_base_sigkill_timeout=5 mpirun --oversubscribe -np 2 "$bin" train "${common[@]}" trainer.max_steps=1000000 trainer.max_epochs=100000 \
  exp_manager.exp_dir="$work/s" > "$work/s1.log" 2>&1 &
pid=$!
for _ in $(seq 1 3000); do
  [ "$(ls "$work/s/quickstart/checkpoints/mp_rank_01/"*-last.ckpt 2> /dev/null | wc -l)" -ge 1 ] && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.02
done
kill -TERM $pid 2> /dev/null
for _ in $(seq 1 3000); do kill -0 $pid 2> /dev/null || break; sleep 0.02; done
kill -0 $pid 2> /dev/null && { kill -KILL $pid; fail "the ranks did not stop within 60 s of SIGTERM"; }
wait $pid
ranklogs=("$work/s/quickstart/nemo_log_globalrank-0_localrank-0.txt" "$work/s/quickstart/nemo_log_globalrank-1_localrank-1.txt")
stops=$(cat "${ranklogs[@]}" | grep -o "stopped by signal 15 after step [0-9]*" | sort -u)
[ "$(cat "${ranklogs[@]}" | grep -c "stopped by signal 15")" = 2 ] && [ "$(wc -l <<< "$stops")" = 1 ] \
  || { tail -n 5 "${ranklogs[@]}" "$work/s1.log"; fail "both ranks should stop at one step: $stops"; }
at=${stops##* }
mpi train "${common[@]}" trainer.max_steps=$((at + 2)) trainer.max_epochs=100000 exp_manager.exp_dir="$work/s" \
  > "$work/s2.log" 2>&1 || { tail -20 "$work/s2.log"; fail "resume after SIGTERM"; }
[ "$(grep -c "resumed at step $at " "$work/s2.log")" = 2 ] || { grep resum "$work/s2.log"; fail "both ranks resume at step $at"; }
echo "SIGTERM: both ranks stopped after step $at and resumed there"

# test on the TP=2 .nemo reproduces the last validation (the .nemo holds the last weights)
mpi test "$nemo" examples/data/quickstart_dev.tsv > "$work/test.out" 2> "$work/test.err" || { cat "$work/test.err"; fail "mpirun test"; }
"$py" - "$d/metrics.csv" "$work/test.out" << 'PY' || fail "test metrics vs logged validation"
import csv, sys
last = [r for r in csv.DictReader(open(sys.argv[1])) if r["val_loss"]][-1]
got = dict(l.split(": ") for l in open(sys.argv[2]).read().splitlines() if l.startswith("test_"))
assert len([l for l in open(sys.argv[2]) if l.startswith("test_loss")]) == 1, "rank 1 printed too"
for k, v in last.items():
    if not k.startswith("val_"): continue
    x, y = float(v), float(got["test_" + k[4:]])
    assert abs(x - y) <= 1e-5 * max(1.0, abs(x)), (k, x, y)
print("test == logged validation at step", last["step"], ":", {k: got[k] for k in sorted(got)})
PY
# one process merges the shards (the param table's split rules) and gets the same numbers; so do 4
# processes splitting the 2 shards further
"$bin" test "$nemo" examples/data/quickstart_dev.tsv > "$work/t1.out" 2> "$work/t1.err" || { cat "$work/t1.err"; fail "one-process test of the TP=2 .nemo"; }
grep -q "tensor-parallel size 2 resharded to 1" "$work/t1.err" || fail "no resharding message"
mpirun --oversubscribe -np 4 "$bin" test "$nemo" examples/data/quickstart_dev.tsv > "$work/t4.out" 2> "$work/t4.err" || { cat "$work/t4.err"; fail "TP=4 test of the TP=2 .nemo"; }
# (to 1e-5 as the checks above: a row-parallel layer sums its K in TP parts, so only a GEMM that
# happens to block K at the same boundary, as OpenBLAS's did, gives the last printed digit too)
for f in t1 t4; do
  "$py" - "$work/test.out" "$work/$f.out" << 'PY' || fail "$f: test metrics differ from TP=2's"
import sys
a, b = ({l.split(": ")[0]: float(l.split(": ")[1]) for l in open(p) if l.startswith("test_")} for p in sys.argv[1:])
assert a.keys() == b.keys() and a, (a, b)
for k in a:
    assert abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(a[k])), (k, a[k], b[k])
PY
done

# the TP=2 .nemo initialises a TP=1 run, and a TP=1 .nemo a TP=2 run, with the same result
tc=(examples/quickstart_config.yaml trainer.max_steps=6 trainer.val_check_interval=3 trainer.log_every_n_steps=1
  trainer.progress_bar=lines exp_manager.version=v model.train_ds.batch_size=8)
"$bin" train "${tc[@]}" init_from_nemo_model="$nemo" exp_manager.exp_dir="$work/i1" > "$work/i1.log" 2>&1 || { tail "$work/i1.log"; fail "TP=1 from TP=2 .nemo"; }
n1=$work/i1/quickstart/v/checkpoints/quickstart.nemo
mpi train "${tc[@]}" init_from_nemo_model="$n1" model.tensor_model_parallel_size=2 exp_manager.exp_dir="$work/i2" \
  > "$work/i2.log" 2>&1 || { tail "$work/i2.log"; fail "TP=2 from TP=1 .nemo"; }
"$bin" train "${tc[@]}" init_from_nemo_model="$n1" exp_manager.exp_dir="$work/i3" > "$work/i3.log" 2>&1 || { tail "$work/i3.log"; fail "TP=1 from TP=1 .nemo"; }
"$py" - "$work/i2/quickstart/v/metrics.csv" "$work/i3/quickstart/v/metrics.csv" << 'PY' || fail "TP=2 init from .nemo differs from TP=1"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) == 6, (len(a), len(b))
for ra, rb in zip(a, b):
    for k in ("train_loss", "val_loss"):
        if ra[k] or rb[k]:
            x, y = float(ra[k]), float(rb[k])
            assert abs(x - y) <= 1e-5 * abs(x), (ra["step"], k, x, y)
print("init_from_nemo_model: TP=2 from a TP=1 .nemo == TP=1")
PY
mpi predict "$nemo" examples/data/quickstart_dev.tsv "$work/pred.txt" > "$work/pred.log" 2>&1 || { cat "$work/pred.log"; fail "mpirun predict"; }
[ "$(wc -l < "$work/pred.txt")" = "$(wc -l < examples/data/quickstart_dev.tsv)" ] || fail "predict line count"
# a TP .nemo missing a shard, or with a shard of the wrong shape, is refused with a message (no crash)
"$py" - "$nemo" "$work/bad1.nemo" "$work/bad2.nemo" << 'PY' || fail "making broken .nemo files"
import io, sys, tarfile
src = tarfile.open(sys.argv[1])
members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
def write(path, keep, swap=None):
    with tarfile.open(path, "w:gz") as out:
        for m, data in members:
            if not keep(m.name): continue
            if swap and m.name == swap[0]: data = swap[1]; m.size = len(data)
            out.addfile(m, io.BytesIO(data) if data is not None else None)
write(sys.argv[2], lambda n: "mp_rank_01" not in n)
cfg = dict(members)[[m for m, _ in members if m.name.endswith("model_config.yaml")][0]]
# the vocab file in place of shard 1's weights: not a torch file
write(sys.argv[3], lambda n: True, ("./mp_rank_01/model_weights.ckpt", b"not a torch zip" * 10))
PY
"$bin" test "$work/bad1.nemo" examples/data/quickstart_dev.tsv > "$work/b1.log" 2>&1; rc=$?
# (the one shard left is read as a whole model: its QKV has half the rows the config asks for)
[ $rc = 1 ] && grep -q "error: .*bad1.nemo: member mp_rank_00/model_weights.ckpt: '.*query_key_value.weight' has shape \[96, 64\] in the file but \[192, 64\] in the model" \
  "$work/b1.log" || { cat "$work/b1.log"; fail "missing shard: rc $rc"; }
"$bin" test "$work/bad2.nemo" examples/data/quickstart_dev.tsv > "$work/b2.log" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "member mp_rank_01/model_weights.ckpt" "$work/b2.log" || { cat "$work/b2.log"; fail "corrupt shard: rc $rc"; }
mpi predict "$nemo" - < examples/data/quickstart_dev.tsv > "$work/pstdin.log" 2>&1 && fail "predict from stdin under mpirun was accepted"
grep -q "INPUT must be a file" "$work/pstdin.log" || { cat "$work/pstdin.log"; fail "stdin message"; }
echo "OK"
