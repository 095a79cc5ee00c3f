#!/usr/bin/env bash
# Storage faults during training: a file-size limit (ulimit -f), a full disk (a small tmpfs), a
# folder turned read-only, an experiment folder that is read-only from the start, and the
# checkpoint / experiment folder deleted while training. Each must end with one clear error
# naming the file and the cause, a non-zero exit, the previous good checkpoint intact and
# readable, and no partial file under a final name (no *.tmp left either). After a full disk is
# given space again, the resumed run's metrics.csv equals an uninterrupted run's.
# The tmpfs cases need mount rights (root with CAP_SYS_ADMIN); without them only the ulimit and
# deletion cases run, and the script says so.
set -u
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d)
mounts=()
cleanup() {
  local m
  for m in "${mounts[@]}"; do umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
steps=40
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=2
  model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.dataset.max_seq_length=24 model.train_ds.batch_size=8 trainer.log_every_n_steps=1 trainer.progress_bar=lines
  exp_manager.create_tensorboard_logger=false exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)

# intact DIR: the checkpoint folder holds a readable -last, no *.tmp, every file readable
intact() {
  compgen -G "$1/*-last.ckpt" > /dev/null || { ls -la "$1"; return 1; }
  ! ls "$1" | grep -q '\.tmp' || { ls -la "$1"; echo "a temporary file was left"; return 1; }
  local f
  for f in "$1"/*.ckpt "$1"/*.nemo; do
    [ -e "$f" ] || continue
    "$bin" inspect -q "$f" > /dev/null 2>&1 || { echo "unreadable: $f"; return 1; }
  done
}
# one_error LOG PATTERN: exactly one "megatune: error:" line, and it matches PATTERN
one_error() {
  grep "megatune: error:" "$1" | sed 's/^/  /'
  [ "$(grep -c "megatune: error:" "$1")" = 1 ] || { cat "$1"; echo "want one error line"; return 1; }
  grep "megatune: error:" "$1" | grep -qE "$2" || { grep "megatune: error:" "$1"; echo "error lacks /$2/"; return 1; }
}
# wait_ckpt PID DIR: until the first -last checkpoint exists
wait_ckpt() {
  for _ in $(seq 1 3000); do
    compgen -G "$2/*-last.ckpt" > /dev/null && return 0
    kill -0 "$1" 2> /dev/null || return 1
    sleep 0.005
  done
  return 1
}

"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full" > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "uninterrupted run"; }
full=$work/full/quickstart/metrics.csv

# --- a file-size limit: the first checkpoint (~440 kB) exceeds 200 kB ---
(ulimit -f 200; exec "$bin" train "${common[@]}" exp_manager.exp_dir="$work/fsize") > "$work/fsize.log" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$work/fsize.log"; fail "ulimit -f: exit $rc, want 1 (SIGXFSZ would be 153)"; }
one_error "$work/fsize.log" "\.ckpt\.tmp: write failed: File too large" || fail "ulimit -f message"
! compgen -G "$work/fsize/quickstart/checkpoints/*" > /dev/null || { ls "$work/fsize/quickstart/checkpoints"; fail "ulimit -f: files left"; }
echo "ok: ulimit -f"

# --- the checkpoint folder deleted while training (writes held open 30 ms so the run lasts) ---
MEGATUNE_FAULT_DELAY_MS=30 "$bin" train "${common[@]}" exp_manager.exp_dir="$work/del" > "$work/del.log" 2>&1 &
pid=$!
wait_ckpt $pid "$work/del/quickstart/checkpoints" || fail "deleted folder: no first checkpoint"
# the run is stopped while the folder goes, so the deletion lands mid-training however loaded the
# machine is (a run that ended first would exit 0)
kill -STOP $pid
rm -rf "$work/del/quickstart/checkpoints"
kill -CONT $pid
wait $pid; rc=$?
[ $rc = 1 ] || { cat "$work/del.log"; fail "checkpoint folder deleted: exit $rc, want 1"; }
# (the folder is gone, or, when rm -rf raced with a write, its files are: both are said)
one_error "$work/del.log" "checkpoint folder .*/checkpoints no longer exists|was removed meanwhile" || fail "deleted checkpoint folder message"
echo "ok: checkpoint folder deleted while training"

# --- the whole experiment folder deleted while training ---
MEGATUNE_FAULT_DELAY_MS=30 "$bin" train "${common[@]}" exp_manager.exp_dir="$work/gone" > "$work/gone.log" 2>&1 &
pid=$!
wait_ckpt $pid "$work/gone/quickstart/checkpoints" || fail "deleted experiment: no first checkpoint"
kill -STOP $pid
rm -rf "$work/gone"
kill -CONT $pid
wait $pid; rc=$?
[ $rc = 1 ] || { cat "$work/gone.log"; fail "experiment folder deleted: exit $rc, want 1"; }
one_error "$work/gone.log" "no longer exists|was removed meanwhile|metrics.csv: write failed" || fail "deleted experiment folder message"
[ ! -e "$work/gone" ] || { find "$work/gone"; fail "deleted experiment folder: files were recreated"; }
echo "ok: experiment folder deleted while training"

if ! { mkdir -p "$work/probe" && mount -t tmpfs -o size=1m tmpfs "$work/probe" 2> /dev/null; }; then
  echo "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): the full-disk and read-only cases were not run"
  case "${CI:-}" in true|1|yes) fail "CI: the full-disk and read-only cases need mount rights" ;; esac
  echo "SKIP: the full-disk and read-only cases need mount rights (the rest passed)"
  exit 77
fi
umount "$work/probe"

# --- a full disk: room for one checkpoint and its top-k link, not for the next -last ---
mkdir -p "$work/full_disk"
mount -t tmpfs -o size=700k tmpfs "$work/full_disk" && mounts+=("$work/full_disk") || fail "mount tmpfs"
"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full_disk" > "$work/df.log" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$work/df.log"; fail "full disk: exit $rc, want 1"; }
one_error "$work/df.log" "\.ckpt\.tmp: write failed: No space left on device" || fail "full-disk message"
grep "megatune: error:" "$work/df.log" | grep -q "the previous one, .*-last.ckpt, is intact" || fail "full disk: the message does not name the kept checkpoint"
intact "$work/full_disk/quickstart/checkpoints" || fail "full disk: the previous checkpoint is not intact"
# given room, the run resumes and ends as an uninterrupted one
mount -o remount,size=16m "$work/full_disk" || fail "remount"
"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full_disk" > "$work/df2.log" 2>&1 || { cat "$work/df2.log"; fail "resume after the disk was freed"; }
grep -q "resumed at step" "$work/df2.log" || fail "full disk: the second run did not resume"
cmp "$full" "$work/full_disk/quickstart/metrics.csv" || fail "full disk: resumed metrics.csv differs from the uninterrupted run"
intact "$work/full_disk/quickstart/checkpoints" || fail "full disk: after the resume"
echo "ok: full disk (error, previous checkpoint kept, resumed to the same metrics)"

# --- the checkpoint folder (its own file system, checkpoint_callback_params.dirpath) turned read-only
# during training; a file system with files open for writing cannot be remounted read-only, so
# the experiment folder with metrics.csv stays on the ordinary disk ---
mkdir -p "$work/ro"
mount -t tmpfs -o size=16m tmpfs "$work/ro" && mounts+=("$work/ro") || fail "mount tmpfs"
MEGATUNE_FAULT_DELAY_MS=30 "$bin" train "${common[@]}" exp_manager.exp_dir="$work/rox" \
  exp_manager.checkpoint_callback_params.dirpath="$work/ro" > "$work/ro.log" 2>&1 &
pid=$!
wait_ckpt $pid "$work/ro" || fail "read-only: no first checkpoint"
# (a file open for writing makes the remount fail: the run goes on for a moment and it is tried
# again, each time with the run stopped, so it lands mid-training however loaded the machine is)
for _ in $(seq 1 200); do
  kill -STOP $pid 2> /dev/null || break
  mount -o remount,ro "$work/ro" 2> /dev/null && { kill -CONT $pid; break; }
  kill -CONT $pid; sleep 0.005
done
touch "$work/ro/x" 2> /dev/null && fail "could not remount read-only"
wait $pid; rc=$?
[ $rc = 1 ] || { cat "$work/ro.log"; fail "read-only: exit $rc, want 1"; }
one_error "$work/ro.log" "Read-only file system" || fail "read-only message"
grep "megatune: error:" "$work/ro.log" | grep -q "the previous one, .*-last.ckpt, is intact" || fail "read-only: the message does not name the kept checkpoint"
intact "$work/ro" || fail "read-only: the previous checkpoint is not intact"
# --- and read-only from the start: refused before training, naming the folder ---
"$bin" train "${common[@]}" exp_manager.exp_dir="$work/ro" exp_manager.resume_if_exists=false exp_manager.version=new \
  > "$work/ro2.log" 2>&1 && fail "a read-only experiment folder was accepted"
one_error "$work/ro2.log" "/ro/quickstart(/new)?: cannot create the folder: Read-only file system" || fail "read-only start message"
grep -q "training:" "$work/ro2.log" && fail "read-only from the start: training began"
echo "ok: read-only experiment folder (during training and from the start)"
echo "OK"
