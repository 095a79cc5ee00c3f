#!/usr/bin/env bash
# Faults under mpirun. None may hang (each job runs under a 90 s timeout):
#  (a) ranks launched with different configs (MPMD, rank 1 with another lr): every rank stops
#      before training, global rank 0 names the differing line on both ranks;
#  (b) rank 1's data file unreadable or malformed (the same relative path, another working
#      folder): every rank stops before training with rank 1's message, no MPI_Abort;
#  (c) rank 1 killed with -9 mid-run: the job ends with Open MPI naming the rank and signal, the
#      checkpoint written before is readable, and mpirun -np 2 resumes it to the metrics.csv of
#      an uninterrupted run, digit for digit;
#  (d) TP=2: rank 1 killed while it writes its checkpoint (mp_rank_01/*.ckpt.tmp present): the
#      two ranks' files may now be of different steps; the resume agrees on a common one (each
#      rank keeps its previous -last until both have written the new one) and reproduces the
#      uninterrupted TP=2 metrics.csv.
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
mpi_env
mpi_require_start
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ex=$src/examples
tiny=("$ex/quickstart_config.yaml" model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.dataset.max_seq_length=24 model.train_ds.batch_size=4 trainer.log_every_n_steps=1 trainer.progress_bar=lines
  model.tokenizer.vocab_file="$ex/data/quickstart_vocab.txt" model.validation_ds.file_path="$ex/data/quickstart_dev.tsv"
  exp_manager.create_tensorboard_logger=false model.test_ds.file_path=null) # (no test after training: the runs below are about training)
mpi() { timeout -k 5 90 mpirun --oversubscribe "$@"; }
# stopped LOG: the job stopped before training, cleanly (no hang, no abort)
stopped() {
  [ $rc = 124 ] && { tail "$1"; fail "$1: the job hung"; }
  [ $rc != 0 ] || { tail "$1"; fail "$1: the job succeeded"; }
  ! grep -q "training: " "$1" || fail "$1: training began"
  ! grep -q "MPI_ABORT" "$1" || { cat "$1"; fail "$1: ended by MPI_Abort, not by agreement"; }
  [ "$(grep -c "megatune: error:" "$1")" = 1 ] || { cat "$1"; fail "$1: want one error line (from global rank 0)"; }
  grep "megatune: error:" "$1" | sed 's/^/  /'
}

# --- (a) different configs ---
mpi -np 1 "$bin" train "${tiny[@]}" trainer.max_steps=4 model.train_ds.file_path="$ex/data/quickstart_train.tsv" \
  exp_manager.exp_dir="$work/a" : -np 1 "$bin" train "${tiny[@]}" trainer.max_steps=4 \
  model.train_ds.file_path="$ex/data/quickstart_train.tsv" exp_manager.exp_dir="$work/a" model.optim.lr=2e-3 > "$work/a.log" 2>&1
rc=$?
stopped "$work/a.log"
grep -q "megatune: error: rank 1: the resolved config differs from global rank 0's at line [0-9]*: here '    lr: 0.002', rank 0 '    lr: 0.001'; launch every rank with the same config" "$work/a.log" \
  || fail "config mismatch message"
echo "ok: ranks with different configs"

# --- (b) rank 1's data file: absent, then malformed (same relative path, rank 1 in another folder) ---
mkdir -p "$work/r0" "$work/r1"
cp "$ex/data/quickstart_train.tsv" "$work/r0/train.tsv"
b=("${tiny[@]}" trainer.max_steps=4 model.train_ds.file_path=train.tsv exp_manager.exp_dir="$work/b")
mpi -np 1 -wdir "$work/r0" "$bin" train "${b[@]}" : -np 1 -wdir "$work/r1" "$bin" train "${b[@]}" > "$work/b1.log" 2>&1
rc=$?
stopped "$work/b1.log"
grep -q "megatune: error: rank 1: .*train.tsv" "$work/b1.log" || fail "absent data file: rank 1's message"
{ head -5 "$ex/data/quickstart_train.tsv"; printf 'no label here\n'; } > "$work/r1/train.tsv"
mpi -np 1 -wdir "$work/r0" "$bin" train "${b[@]}" : -np 1 -wdir "$work/r1" "$bin" train "${b[@]}" > "$work/b2.log" 2>&1
rc=$?
stopped "$work/b2.log"
grep -q "megatune: error: rank 1: .*train.tsv:6: missing label" "$work/b2.log" || fail "malformed data file: rank 1's message with the line"
echo "ok: a rank's data file absent or malformed"

# --- (c) rank 1 killed mid-run; then resumed ---
c=("${tiny[@]}" trainer.max_steps=20 trainer.val_check_interval=2 model.train_ds.file_path="$ex/data/quickstart_train.tsv"
  exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)
mpi -np 2 "$bin" train "${c[@]}" exp_manager.exp_dir="$work/full" > "$work/full.log" 2>&1 || { tail "$work/full.log"; fail "uninterrupted DP=2 run"; }
find_rank1() { # the process of global rank 1 launched with MEGATUNE_FAULT_DELAY_MS=40
  local p
  for p in $(pgrep -f "megatune train"); do
    tr '\0' '\n' < /proc/$p/environ 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" || continue
    tr '\0' '\n' < /proc/$p/environ 2> /dev/null | grep -qx "MEGATUNE_FAULT_DELAY_MS=40" && { echo $p; return; }
  done
}
# checkpoint writes held open 40 ms so the run lasts; rank 1 is stopped as soon as it is found, so
# the kill lands mid-training however loaded the machine is. A run that ended before rank 1 was
# found (it once did under CI load) starts again, at most 3 times.
ck=$work/k/quickstart/checkpoints
for attempt in 1 2 3; do
  rm -rf "$work/k"
  MEGATUNE_FAULT_DELAY_MS=40 timeout -k 5 90 mpirun --oversubscribe -x MEGATUNE_FAULT_DELAY_MS -np 2 "$bin" train "${c[@]}" \
    exp_manager.exp_dir="$work/k" > "$work/k.log" 2>&1 &
  job=$!
  for _ in $(seq 1 3000); do compgen -G "$ck/*-last.ckpt" > /dev/null && break; kill -0 $job 2> /dev/null || break; sleep 0.01; done
  victim=$(find_rank1)
  [ -n "$victim" ] && kill -STOP "$victim" 2> /dev/null && break
  wait $job
  echo "  the run ended before rank 1 was caught (attempt $attempt)"
  [ $attempt = 3 ] && fail "three runs ended before rank 1 could be killed mid-run"
done
compgen -G "$ck/*-last.ckpt" > /dev/null || fail "no checkpoint before the kill"
sleep 0.1
kill -9 "$victim"
t0=$(date +%s)
wait $job; rc=$?
[ $rc = 124 ] && fail "the job hung after rank 1 was killed"
[ $rc != 0 ] || fail "the job succeeded although rank 1 was killed"
grep -q "process rank 1 .* exited on signal 9" "$work/k.log" || { tail -20 "$work/k.log"; fail "no message naming rank 1 and signal 9"; }
echo "  killed rank 1: the job ended $(( $(date +%s) - t0 )) s later, exit $rc: $(grep -o "process rank 1 .* exited on signal 9[^.]*" "$work/k.log")"
for f in "$ck"/*.ckpt; do "$bin" inspect -q "$f" > /dev/null 2>&1 || fail "unreadable after the kill: $f"; done
mpi -np 2 "$bin" train "${c[@]}" exp_manager.exp_dir="$work/k" > "$work/k2.log" 2>&1 || { tail "$work/k2.log"; fail "resume after the kill"; }
grep -q "resumed at step" "$work/k2.log" || fail "the second run did not resume"
cmp "$work/full/quickstart/metrics.csv" "$work/k/quickstart/metrics.csv" || fail "resumed DP=2 metrics.csv differs"
echo "ok: rank 1 killed mid-run ends the job; resumed to the same metrics.csv ($(grep -o 'resumed at step [0-9]*' "$work/k2.log"))"

# --- (d) TP=2, rank 1 killed mid-checkpoint-write ---
mpi -np 2 "$bin" train "${c[@]}" model.tensor_model_parallel_size=2 exp_manager.exp_dir="$work/tpfull" > "$work/tpfull.log" 2>&1 \
  || { tail "$work/tpfull.log"; fail "uninterrupted TP=2 run"; }
# trial 1: killed while both ranks write; trial 2: rank 1 stopped (SIGSTOP) in its write until
# rank 0's new -last is in place, then killed: rank 0 is a step ahead and must fall back
# catch_in_write TRIAL: starts the TP=2 run in $d and returns once rank 1 ($victim) is in its
# writes-th checkpoint write (trial 2: stopped there by SIGSTOP); returns 1 if the run ended first
catch_in_write() {
  local trial=$1 j=0
  rm -rf "$d"
  MEGATUNE_FAULT_DELAY_MS=40 timeout -k 5 90 mpirun --oversubscribe -x MEGATUNE_FAULT_DELAY_MS -np 2 "$bin" train "${c[@]}" \
    model.tensor_model_parallel_size=2 exp_manager.exp_dir="$d" > "$work/tpk$trial.log" 2>&1 &
  job=$!
  for _ in $(seq 1 3000); do compgen -G "$ck1/*.ckpt.tmp" > /dev/null && break; sleep 0.002; done
  victim=$(find_rank1)
  [ -n "$victim" ] || fail "(d) rank 1's process not found"
  writes=$(( 2 + RANDOM % 6 )) # kill during rank 1's writes-th checkpoint write
  while [ $j -lt $writes ]; do
    j=$(( j + 1 ))
    for _ in $(seq 1 3000); do compgen -G "$ck1/*.ckpt.tmp" > /dev/null && break; kill -0 "$victim" 2> /dev/null || break; sleep 0.002; done
    kill -0 "$victim" 2> /dev/null || return 1
    if [ $trial = 2 ] && [ $j = $writes ]; then
      kill -STOP "$victim"
      compgen -G "$ck1/*.ckpt.tmp" > /dev/null && return 0 # stopped inside the write
      kill -CONT "$victim"; writes=$(( writes + 1 ))
    fi
    [ $j -lt $writes ] && { while compgen -G "$ck1/*.ckpt.tmp" > /dev/null && kill -0 "$victim" 2> /dev/null; do sleep 0.002; done; }
  done
  # (trial 1) the wait above can also end without a write in progress: then this is no kill mid-write
  compgen -G "$ck1/*.ckpt.tmp" > /dev/null || { echo "  TP=2 trial $trial: no checkpoint write in progress"; return 1; }
  return 0
}
trials="1 2"; [ "${MEGATUNE_SANITIZED:-0}" = 1 ] && trials=2
for trial in $trials; do
  d=$work/tp$trial; ck0=$d/quickstart/checkpoints/mp_rank_00; ck1=$d/quickstart/checkpoints/mp_rank_01
  # On a loaded machine the SIGSTOP of trial 2 may miss every write window until the run has ended
  # (10 checkpoint writes): then the trial starts again, at most 3 times, instead of waiting on a
  # process that is gone (a CI run once hung here until ctest's timeout).
  for attempt in 1 2 3; do
    catch_in_write $trial && break
    wait $job
    echo "  TP=2 trial $trial: the run ended before rank 1 was caught in checkpoint write $writes (attempt $attempt)"
    [ $attempt = 3 ] && fail "(d) trial $trial: three runs ended before rank 1 was caught inside a checkpoint write"
  done
  if [ $trial = 2 ]; then
    for _ in $(seq 1 2000); do
      [ "$(ls "$ck0" | grep -c -- '-last.ckpt$')" = 2 ] && ! compgen -G "$ck0/*.tmp" > /dev/null && break
      sleep 0.005
    done
  fi
  kill -9 "$victim"
  wait $job; rc=$?
  [ $rc = 124 ] && fail "(d) the job hung after rank 1 was killed"
  [ $rc != 0 ] || fail "(d) trial $trial: the job succeeded although rank 1 was killed"
  left="rank 0: $(ls "$ck0" | grep -c -- '-last.ckpt$') -last file(s), rank 1: $(ls "$ck1" | grep -c -- '-last.ckpt$')"
  [ $trial = 2 ] && [ "$(ls "$ck0" | grep -c -- '-last.ckpt$')" != 2 ] && fail "(d) rank 0 did not keep its previous -last ($left)"
  mpi -np 2 "$bin" train "${c[@]}" model.tensor_model_parallel_size=2 exp_manager.exp_dir="$d" > "$work/tpr$trial.log" 2>&1 \
    || { grep "megatune: error" "$work/tpr$trial.log"; fail "(d) trial $trial: the TP=2 resume failed"; }
  [ $trial = 2 ] && ! grep -q "checkpoints differ in step" "$work/tpr$trial.log" && fail "(d) rank 0 did not fall back"
  cmp "$work/tpfull/quickstart/metrics.csv" "$d/quickstart/metrics.csv" || fail "(d) trial $trial: TP=2 resumed metrics.csv differs"
  [ "$(ls "$ck0" | grep -c -- '-last.ckpt$')" = 1 ] || { ls "$ck0"; fail "(d) stale -last left after the resume"; }
  echo "  TP=2 trial $trial: killed in rank 1's checkpoint write $writes ($left); $(grep -o 'resumed at step [0-9]*' "$work/tpr$trial.log" | head -1)$(grep -q 'checkpoints differ in step' "$work/tpr$trial.log" && echo ', rank 0 fell back to its previous -last')"
done
echo "ok: TP=2 rank killed mid-checkpoint resumes to the same metrics.csv"
echo "OK"
