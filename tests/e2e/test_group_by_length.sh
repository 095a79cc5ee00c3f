#!/usr/bin/env bash
# model.train_ds.group_by_length=true: the run says what it saves (fewer padded tokens than the plain
# order), trains on another order than the plain run (a different loss trace), and a run stopped
# mid-epoch by SIGTERM and resumed writes the same metrics.csv, to the last digit, as an uninterrupted
# one: the grouped order is a pure function of (seed, epoch), recomputed on resume.
set -u
. "$(dirname "$0")/wait_rows.sh" # wait_rows
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
steps=120
if [ "${MEGATUNE_SANITIZED:-0}" = 1 ]; then steps=60; fi
# 480 examples, batch 8, accumulation 2: 60 batches (30 steps) an epoch; megabatches of 15 batches
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=10
  model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.dataset.max_seq_length=24 model.train_ds.batch_size=8 trainer.accumulate_grad_batches=2
  trainer.log_every_n_steps=1 trainer.progress_bar=lines
  exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)
fail() { echo "FAIL: $*"; exit 1; }

"$bin" train "${common[@]}" model.train_ds.group_by_length=true exp_manager.exp_dir="$work/full" \
  > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "grouped run"; }
full="$work/full/quickstart/metrics.csv"
[ "$(wc -l < "$full")" -gt $((steps / 2)) ] || fail "metrics.csv too short"
line=$(grep -o "group_by_length: epoch 0 feeds [0-9]* padded tokens for [0-9]* real ones ([0-9]* without" "$work/full.log") \
  || { cat "$work/full.log"; fail "no group_by_length line in the log"; }
read -r grouped real plain < <(echo "$line" | grep -o "[0-9][0-9]*" | sed -n '2p;3p;4p' | tr '\n' ' ')
echo "epoch 0: $grouped padded tokens grouped, $plain plain, $real real"
[ "$real" -le "$grouped" ] && [ "$grouped" -lt "$plain" ] || fail "grouping did not reduce padding: $line"

"$bin" train "${common[@]}" exp_manager.exp_dir="$work/plain" > "$work/plain.log" 2>&1 || { cat "$work/plain.log"; fail "plain run"; }
grep -q "group_by_length" "$work/plain.log" && fail "the plain run mentions group_by_length"
cmp -s "$full" "$work/plain/quickstart/metrics.csv"; rc=$? # (2, a missing file, is no difference)
[ $rc = 1 ] || fail "group_by_length=true trained the same trace as the plain order (cmp exit $rc)"

# SIGTERM once a third of the steps are logged: finish the step, save -last, exit 143; the resumed run
# must restart mid-epoch (batch > 0), or the try is repeated: a resume at an epoch's start proves less.
ok=0
for attempt in 1 2 3 4 5; do
  d="$work/t$attempt"
  "$bin" train "${common[@]}" model.train_ds.group_by_length=true exp_manager.exp_dir="$d" > "$d.1.log" 2>&1 &
  pid=$!
  wait_rows "$d/quickstart/metrics.csv" $((steps / 3)) $pid
  kill -TERM $pid 2>/dev/null
  wait $pid; rc=$?
  if [ $rc -eq 0 ]; then echo "attempt $attempt: the run ended before SIGTERM; retrying"; continue; fi
  [ $rc -eq 143 ] || { cat "$d.1.log"; fail "SIGTERM exit code $rc, want 143"; }
  "$bin" train "${common[@]}" model.train_ds.group_by_length=true exp_manager.exp_dir="$d" > "$d.2.log" 2>&1 \
    || { cat "$d.2.log"; fail "resumed run"; }
  where=$(grep -o "resumed at step [0-9]* (epoch [0-9]*, batch [0-9]*)" "$d.2.log") || fail "the run did not resume"
  echo "attempt $attempt: $where of $steps"
  case $where in *", batch 0)") echo "resumed at an epoch's start; retrying"; continue ;; esac
  cmp "$full" "$d/quickstart/metrics.csv" || { diff "$full" "$d/quickstart/metrics.csv" | head; fail "metrics.csv differs after SIGTERM + resume"; }
  ok=1; break
done
[ $ok = 1 ] || fail "no SIGTERM landed mid-epoch in 5 attempts"

# the checkpoint records the order's kind: resuming it with the setting changed says so, and a resume
# with it unchanged (above, $d.2.log) does not
grep -q "trained with model.train_ds.group_by_length" "$d.2.log" && fail "an unchanged resume warned about group_by_length"
"$bin" train "${common[@]}" model.train_ds.group_by_length=false trainer.max_steps=$((steps + 2)) exp_manager.exp_dir="$d" \
  > "$d.3.log" 2>&1 || { cat "$d.3.log"; fail "resume with group_by_length changed"; }
grep -q "the checkpoint was trained with model.train_ds.group_by_length=true, this run has false" "$d.3.log" \
  || { cat "$d.3.log"; fail "resuming with group_by_length changed gave no warning"; }
echo PASSED
