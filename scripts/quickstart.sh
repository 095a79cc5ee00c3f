#!/usr/bin/env bash
# The first command of the README: installs the Debian packages, builds megatune (release), and
# fine-tunes a tiny Megatron-style encoder (2 layers, hidden 64) on a small sentiment dataset the
# project ships (examples/data/quickstart_*.tsv); training ends by testing the model on the dev file
# (model.test_ds, as NeMo's script), then the .nemo it wrote predicts one sentence. Extra arguments
# are passed to `megatune train` as overrides (e.g. trainer.max_epochs=2).
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} # tiny model: do not spin threads on a busy machine
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/install-deps.sh --runtime
build=$(bash scripts/build.sh release | tail -1)
bin="$build/megatune"
echo "quickstart: training (about a minute on 2 cores)..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
pb=lines; [ -t 1 ] && pb=bar # stdout goes through tee: decide from the script's own terminal
"$bin" train examples/quickstart_config.yaml trainer.progress_bar=$pb exp_manager.exp_dir="$here/nemo_experiments" "$@" | tee "$log"
nemo=$(sed -n 's/^\.nemo: *//p' "$log" | tail -1)
logdir=$(sed -n 's/^log dir: *//p' "$log" | tail -1)
# (train already tested the .nemo's weights on model.test_ds, as NeMo's script does: the report above)
echo
echo "quickstart: predicting one sentence"
echo "the acting was not dull and i loved every minute ." | "$bin" predict "$nemo" - 2>/dev/null
cat <<MSG

quickstart: done in $(( $(date +%s) - start )) s.
  logs:         $logdir/nemo_log_globalrank-0_localrank-0.txt
  metrics:      $logdir/metrics.csv  (TensorBoard: tensorboard --logdir $logdir)
  checkpoints:  $logdir/checkpoints/
  .nemo:        $nemo
next:
  $bin test $nemo examples/data/quickstart_dev.tsv
  $bin predict $nemo sentences.txt predictions.tsv
  $bin train --help
MSG
