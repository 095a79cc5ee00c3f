#!/usr/bin/env bash
# kill -9 campaign: a tiny model with a checkpoint every 2 steps is killed at random moments and
# resumed (exp_manager.resume_if_exists). The trials cycle through four targets:
#   time  - a random moment of the whole run (start-up, a step, a validation, a write, the .nemo)
#   step  - once a random number of metrics.csv rows is written (mid-training)
#   ckpt  - while a checkpoint is being written (a *.ckpt.tmp exists; MEGATUNE_FAULT_DELAY_MS
#           holds each write open halfway with part of the file on disk)
#   nemo  - while the final .nemo is being written (a *.nemo.tmp exists)
# After each kill every *.ckpt and .nemo present must be readable (megatune inspect; torch.load
# with PyTorch when it imports), the resumed run must succeed, its metrics.csv must equal the
# uninterrupted run's byte for byte, its .nemo must be readable, and no *.tmp may be left.
# MEGATUNE_FAULT_TRIALS (default 4, one per target) sets the trial count; the
# campaign by hand: MEGATUNE_FAULT_TRIALS=60 bash tests/e2e/test_fault_kill.sh
set -u
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-/usr/bin/python3}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export TMPDIR=$work/tmp; mkdir -p "$TMPDIR"
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
trials=${MEGATUNE_FAULT_TRIALS:-4}
steps=40
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=2
  model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.dataset.max_seq_length=24 model.train_ds.batch_size=8 trainer.log_every_n_steps=1 trainer.progress_bar=lines
  exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true exp_manager.create_tensorboard_logger=false)
torch=0
"$py" -c "import torch" 2> /dev/null && torch=1

"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full" > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "uninterrupted run"; }
full=$work/full/quickstart/metrics.csv
[ "$(wc -l < "$full")" -gt $steps ] || fail "uninterrupted metrics.csv too short"
t0=$(date +%s%N)
"$bin" train "${common[@]}" exp_manager.exp_dir="$work/full2" > /dev/null 2>&1 || fail "second uninterrupted run"
run_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
cmp -s "$full" "$work/full2/quickstart/metrics.csv" || fail "two uninterrupted runs differ"

# readable DIR [notorch]: every checkpoint and .nemo in DIR opens
readable() {
  local f
  for f in "$1"/*.ckpt "$1"/*.nemo; do
    [ -e "$f" ] || continue
    "$bin" inspect -q "$f" > "$work/inspect.log" 2>&1 || { cat "$work/inspect.log"; echo "unreadable: $f"; return 1; }
  done
  if [ $torch = 1 ] && [ -z "${2:-}" ] && compgen -G "$1/*.ckpt" > /dev/null; then
    "$py" -c "
import glob, sys, torch
for f in sorted(glob.glob(sys.argv[1] + '/*.ckpt')):
    sd = torch.load(f, map_location='cpu')
    # a PyTorch Lightning 1.x checkpoint: a whole state_dict, the optimizer state and a step
    # (explicit exits, not assert, which python -O strips)
    if not (int(sd['global_step']) > 0 and isinstance(sd.get('state_dict'), dict) and sd['state_dict']):
        sys.exit(f + ': no global_step or state_dict')
    if not (sd['optimizer_states'] and sd['optimizer_states'][0]['state']):
        sys.exit(f + ': no optimizer state')
" "$1" || { echo "torch.load failed in $1"; return 1; }
  fi
}
# wait_for PID GLOB: until a file matches or the process ends
wait_for() {
  local i
  for i in $(seq 1 4000); do
    compgen -G "$2" > /dev/null && return 0
    kill -0 "$1" 2> /dev/null || return 1
    sleep 0.002
  done
  return 1
}

declare -A outcome
modes=(time step ckpt nemo)
for t in $(seq 1 "$trials"); do
  mode=${modes[$(( (t - 1) % 4 ))]}
  d=$work/t$t; c=$d/quickstart/checkpoints
  delay=0; [ $mode = ckpt ] || [ $mode = nemo ] && delay=60
  MEGATUNE_FAULT_DELAY_MS=$delay "$bin" train "${common[@]}" exp_manager.exp_dir="$d" > "$work/k$t.log" 2>&1 &
  pid=$!
  case $mode in
    time) sleep "$(awk -v s=$RANDOM -v ms="$run_ms" 'BEGIN { printf "%.3f", (s % 1000) / 1000 * ms * 1.1 / 1000 }')" ;;
    step) want=$(( 2 + RANDOM % (steps - 4) ))
          for _ in $(seq 1 4000); do
            [ "$(cat "$d/quickstart/metrics.csv" 2> /dev/null | wc -l)" -gt $want ] && break
            kill -0 $pid 2> /dev/null || break
            sleep 0.002
          done ;;
    ckpt) # the k-th checkpoint write of the run, k random
          k=$(( 1 + RANDOM % (steps / 2) ))
          for j in $(seq 1 $k); do
            wait_for $pid "$c/*.ckpt.tmp" || break
            [ $j -lt $k ] && { while compgen -G "$c/*.ckpt.tmp" > /dev/null && kill -0 $pid 2> /dev/null; do sleep 0.002; done; }
          done
          sleep "0.0$(( RANDOM % 5 ))" ;;
    nemo) wait_for $pid "$c/*.nemo.tmp"; sleep "0.0$(( RANDOM % 5 ))" ;;
  esac
  kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null; rc=$?
  tmps=$(ls "$c" 2> /dev/null | grep -c '\.tmp$')
  readable "$c" || fail "trial $t ($mode): a checkpoint is unreadable after kill -9"
  "$bin" train "${common[@]}" exp_manager.exp_dir="$d" > "$work/r$t.log" 2>&1 || { tail -20 "$work/r$t.log"; fail "trial $t ($mode): the resumed run failed"; }
  if [ $rc = 0 ]; then what="finished before the kill"
  elif grep -q "resumed at step $steps " "$work/r$t.log"; then what="killed after the last step (resumed at $steps: .nemo rewritten)"
  elif grep -q "resumed at step" "$work/r$t.log"; then what="killed mid-run, resumed"
  else what="killed before the first checkpoint, started afresh"; fi
  [ "$tmps" -gt 0 ] && what="$what; a write was in progress"
  cmp -s "$full" "$d/quickstart/metrics.csv" || { diff "$full" "$d/quickstart/metrics.csv" | head; fail "trial $t ($mode): metrics.csv differs after kill -9 + resume"; }
  readable "$c" notorch || fail "trial $t ($mode): unreadable checkpoint after the resume"
  [ -f "$c/quickstart.nemo" ] || fail "trial $t ($mode): no .nemo after the resume"
  ! ls "$c" | grep -q '\.tmp' || { ls "$c"; fail "trial $t ($mode): *.tmp or *.tmp.d left after the resume"; }
  [ "$(ls "$c"/*.ckpt | grep -vc -- '-last.ckpt')" -le 2 ] || { ls "$c"; fail "trial $t ($mode): more than save_top_k=2 ranked checkpoints"; }
  echo "trial $t ($mode): $what (resumed: $(grep -o 'resumed at step [0-9]*' "$work/r$t.log" || echo none)); metrics.csv identical"
  key="$mode: $what"; outcome[$key]=$(( ${outcome[$key]:-0} + 1 ))
  rm -rf "$d"
done
echo "summary of $trials trials (kill -9, resume; every checkpoint readable, every metrics.csv identical):"
for k in "${!outcome[@]}"; do echo "  ${outcome[$k]} x $k"; done | sort -k3
[ -z "$(ls "$TMPDIR")" ] || { ls "$TMPDIR"; fail "files left in TMPDIR"; }
# every checkpoint above was also to be opened with torch.load: without torch that part never ran
[ $torch = 1 ] || { echo "SKIP: everything else passed, but torch.load of each checkpoint needs python3 with torch ($py)"; exit 77; }
echo "OK"
