#!/usr/bin/env bash
# A run killed with SIGKILL in the middle and resumed (exp_manager.resume_if_exists) writes the same
# metrics.csv — every loss, lr and validation metric, to the last digit — as an uninterrupted run of
# the same config; so does a run stopped by SIGTERM (which finishes the step and saves -last).
set -u
. "$(dirname "$0")/wait_rows.sh" # wait_rows
# GOMP's default active wait makes 2 OpenMP threads crawl (seconds per step) when the 2 cores are
# shared with other tests; passive waiting keeps the runs fast without changing any result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
steps=120; every=10
if [ "${MEGATUNE_SANITIZED:-0}" = 1 ]; then steps=60; every=10; fi
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=$every
  model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.dataset.max_seq_length=24 model.train_ds.batch_size=8 trainer.accumulate_grad_batches=2
  trainer.log_every_n_steps=1 trainer.progress_bar=lines
  exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)
fail() { echo "FAIL: $*"; exit 1; }

"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full" > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "uninterrupted run"; }
full="$work/full/quickstart/metrics.csv"
[ "$(wc -l < "$full")" -gt $((steps / 2)) ] || fail "uninterrupted metrics.csv too short"

# --- SIGKILL once a third of the steps are logged (between checkpoints), then resume ---
killed_mid=0
for attempt in 1 2 3; do
  rm -rf "$work/k"
  "$bin" train "${common[@]}" exp_manager.exp_dir="$work/k" > "$work/k1.log" 2>&1 &
  pid=$!
  wait_rows "$work/k/quickstart/metrics.csv" $((steps / 3)) $pid
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  "$bin" train "${common[@]}" exp_manager.exp_dir="$work/k" > "$work/k2.log" 2>&1 || { cat "$work/k2.log"; fail "resumed run"; }
  if grep -q "resumed at step" "$work/k2.log"; then
    at=$(grep -o "resumed at step [0-9]*" "$work/k2.log" | grep -o "[0-9]*$")
    if [ "$at" -lt "$steps" ]; then killed_mid=1; break; fi
  fi
  echo "attempt $attempt: the kill did not land mid-run; retrying"
done
[ $killed_mid = 1 ] || fail "could not kill the run in the middle in 3 attempts"
echo "killed and resumed at step $at of $steps"
cmp "$full" "$work/k/quickstart/metrics.csv" || { diff "$full" "$work/k/quickstart/metrics.csv" | head; fail "metrics.csv differs after SIGKILL+resume"; }
[ -d "$work/k/quickstart/run_0" ] || fail "previous run's files were not moved to run_0/"

# --- SIGTERM / SIGINT (Ctrl-C): finish the step, save -last, exit 128+signal; resume gives the same
# file. The signal is sent once a third of the steps are logged, and a run that had already finished
# (exit 0) is retried, then fails the test: a branch that never saw the signal proves nothing.
signal_mid_run() { # $1 = signal name, $2 = number, $3 = folder tag
  local sig=$1 num=$2 d="$work/$3" rc=1 at=""
  for attempt in 1 2 3; do
    rm -rf "$d"
    "$bin" train "${common[@]}" exp_manager.exp_dir="$d" > "$d.1.log" 2>&1 &
    local pid=$!
    wait_rows "$d/quickstart/metrics.csv" $((steps / 3)) $pid
    kill -"$sig" $pid 2>/dev/null
    wait $pid; rc=$?
    echo "SIG$sig attempt $attempt: exit $rc"
    [ $rc -ne 0 ] && break
    echo "the run finished before SIG$sig arrived; retrying"
  done
  [ $rc -ne 0 ] || fail "SIG$sig never landed mid-run in 3 attempts"
  [ $rc -eq $((128 + num)) ] || { cat "$d.1.log"; fail "SIG$sig exit code $rc, want $((128 + num))"; }
  grep -q "stopped by signal $num" "$d.1.log" || fail "no 'stopped by signal $num' message"
  compgen -G "$d/quickstart/checkpoints/*-last.ckpt" > /dev/null || fail "SIG$sig: no -last checkpoint saved"
  "$bin" train "${common[@]}" exp_manager.exp_dir="$d" > "$d.2.log" 2>&1 || { cat "$d.2.log"; fail "resume after SIG$sig"; }
  at=$(grep -o "resumed at step [0-9]*" "$d.2.log" | grep -o "[0-9]*$")
  [ -n "$at" ] && [ "$at" -lt "$steps" ] || fail "after SIG$sig the run did not resume mid-way (resumed at '${at}')"
  echo "SIG$sig: stopped and resumed at step $at of $steps"
  cmp "$full" "$d/quickstart/metrics.csv" || { diff "$full" "$d/quickstart/metrics.csv" | head; fail "metrics.csv differs after SIG$sig+resume"; }
}
signal_mid_run TERM 15 t
signal_mid_run INT 2 i

# the final models agree too
"$bin" test "$work/full/quickstart/checkpoints/quickstart.nemo" > "$work/test_a.out" 2>&1 || fail "megatune test of the uninterrupted run's .nemo"
"$bin" test "$work/k/quickstart/checkpoints/quickstart.nemo" > "$work/test_b.out" 2>&1 || fail "megatune test of the resumed run's .nemo"
a=$(grep '^test_' "$work/test_a.out")
b=$(grep '^test_' "$work/test_b.out")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "test metrics of the final .nemo differ: '$a' vs '$b'"
# resuming a finished run trains nothing and keeps metrics.csv as it was
cp "$full" "$work/full_before.csv"
"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full" > "$work/again.log" 2>&1 || { cat "$work/again.log"; fail "re-run of a finished run"; }
grep -q "resumed at step $steps" "$work/again.log" || fail "re-run did not resume at the end"
cmp "$work/full_before.csv" "$full" || fail "re-running a finished run changed metrics.csv"
echo PASSED
