#!/usr/bin/env bash
# End to end: one epoch of real fine-tuning data, `megatune train` beside a PyTorch loop that batches
# as NeMo does (bench/bench_epoch.py), each with and without group_by_length, batch 32, AdamW,
# dropout 0.1, BERT-base shape (12 x 768, Megatron pre-LN, random init), fp32 (or --precision bf16:
# megatune's trainer.precision=bf16 beside torch.autocast("cpu", dtype=torch.bfloat16)):
#   SST-2 train (67,349 sentences; text classification: NeMo pads each batch to its longest) and
#   CoNLL-2003 eng.train (14,041 sentences; token classification: NeMo pads every sentence to the
#   dataset's longest, capped at max_seq_length 128; megatune pads each batch to its longest).
#   bench/bench_epoch.sh [--fraction F] [--tiny] [--tasks "sst2 conll"] [--grouping "0 1"]
#                        [--precision 32|bf16] [--build DIR] [--threads N]
# --grouping "1" runs only the group_by_length=true pair (a whole epoch without grouping is 2.9x the
# padded tokens on SST-2, 2.5x / 6x on CoNLL).
# --fraction F runs the first F of each epoch's batches (trainer.limit_train_batches=F; the peer
# cuts its batch list the same way) and says so; 1 (the default) is a full epoch, hours per run on
# 2 cores. --tiny uses a 2 x 128 model, for trying the script out. The whole epoch's token counts
# are exact for each order (no training needed for them); the "est. epoch" column divides the
# epoch's padded tokens by the padded tokens/s measured over the fraction. A fraction with
# group_by_length starts in the first megabatch, whose first batch holds the longest example: judge
# what grouping buys by the epoch's padded tokens and the estimate, not by a short fraction's wall.
# Timed: the training loop (batches, forward, backward, optimizer; megatune's own closing line, the
# peer's timer); "process" is the whole run, data loading and start-up included.
# PyTorch gets its best setting (shared/reference/pytorch-baseline.md): N threads,
# OMP_WAIT_POLICY=PASSIVE, and the OpenMP OpenBLAS + tcmalloc where installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build fraction=1 tiny=0 tasks="sst2 conll" threads=${THREADS:-2} grouping="0 1" precision=32
while [ $# -gt 0 ]; do
  case $1 in
    --fraction) fraction=$2; shift 2 ;;
    --tiny) tiny=1; shift ;;
    --tasks) tasks=$2; shift 2 ;;
    --grouping) grouping=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: $0 [--fraction F] [--tiny] [--tasks \"sst2 conll\"] [--grouping \"0 1\"] [--precision 32|bf16] [--build DIR] [--threads N]" >&2; exit 2 ;;
  esac
done
case $precision in 32|bf16) ;; *) echo "bench_epoch.sh: --precision must be 32 or bf16, got $precision" >&2; exit 2 ;; esac
for g in $grouping; do case $g in 0|1) ;; *) echo "bench_epoch.sh: --grouping takes 0 and/or 1, got $grouping" >&2; exit 2 ;; esac; done
awk -v f="$fraction" 'BEGIN { exit !(f > 0 && f <= 1) }' || { echo "bench_epoch.sh: --fraction must be in (0, 1], got $fraction" >&2; exit 2; }
# always a float for Lightning's limit_train_batches: an int ("1") would mean one batch
limit=$(awk -v f="$fraction" 'BEGIN { printf "%.8f", f }')
data=${MEGATUNE_DATA:-$here/../shared/data}
[ -d "$data" ] || data=/work/shared/data
sst2=$data/glue/SST-2/train.tsv conll=$data/conll2003/eng.train vocab=$data/bert-base-uncased/vocab.txt
for f in "$sst2" "$conll" "$vocab"; do [ -f "$f" ] || { echo "bench_epoch.sh: $f is missing (set MEGATUNE_DATA)" >&2; exit 1; }; done
bin=$build/megatune py=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$bin" ] || { echo "bench_epoch.sh: $bin not built (bash scripts/build.sh release)" >&2; exit 1; }
if [ $tiny = 1 ]; then L=2 H=128 NH=2; else L=12 H=768 NH=12; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

. "$here/bench/torch_env.sh"
torch_env_for $threads
"$bin" version | grep -E '^(CPU|CPU family|ISA|fp32 products|bf16 products):'
echo "$(nproc) cores visible, $threads threads per program; load now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "shape: $L layers x $H hidden, $NH heads, batch 32, max_seq_length 128, precision $precision, AdamW, dropout 0.1"
if awk -v f="$fraction" 'BEGIN { exit !(f < 1) }'; then
  echo "FRACTION: each run trains the first $fraction of its epoch's batches, not a whole epoch"
else
  echo "a full epoch per run"
fi
echo "PyTorch environment: ${torch_env[*]}"

"$bin" data import-iob --data_file "$conll" --out_dir "$work/conll" > /dev/null
# token classification loads a validation split; validation itself is off (limit_val_batches=0)
head -100 "$work/conll/text_train.txt" > "$work/conll/text_dev.txt"
head -100 "$work/conll/labels_train.txt" > "$work/conll/labels_dev.txt"

mt_config() { # $1 = task
  local lm="    pretrained_model_name: megatron-bert-uncased
    lm_checkpoint: null
    config:
      hidden_size: $H
      num_attention_heads: $NH
      num_layers: $L
      max_position_embeddings: 512
      hidden_dropout: 0.1
      attention_dropout: 0.1"
  if [ "$1" = sst2 ]; then cat <<YAML
task: text_classification
model:
  tokenizer: {vocab_file: $vocab}
  language_model:
$lm
  classifier_head: {num_output_layers: 2, fc_dropout: 0.1}
  dataset: {num_classes: 2, max_seq_length: 128}
  train_ds: {file_path: $sst2, batch_size: 32, shuffle: true}
  optim: {name: adamw, lr: 2e-5, weight_decay: 0.01}
YAML
  else cat <<YAML
task: token_classification
model:
  tokenizer: {vocab_file: $vocab}
  language_model:
$lm
  head: {num_fc_layers: 2, fc_dropout: 0.5, activation: relu}
  dataset: {data_dir: $work/conll, max_seq_length: 128}
  train_ds: {text_file: text_train.txt, labels_file: labels_train.txt, batch_size: 32, shuffle: true}
  optim: {name: adamw, lr: 2e-5, weight_decay: 0.01}
YAML
  fi
}

now() { date +%s.%N; }
rows=()
for task in $tasks; do
  mt_config "$task" > "$work/$task.yaml"
  # known from the grouped run's log only: placeholders keep the row's fields in place when it is not run
  mt_epoch_plain=0; mt_epoch_grouped=0; mt_epoch_real="?"
  for g in $grouping; do
    gb=$([ $g = 1 ] && echo true || echo false)
    # megatune
    t0=$(now)
    OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE MEGATUNE_OFFLINE=1 "$bin" train "$work/$task.yaml" \
      trainer.max_epochs=1 trainer.precision=$precision trainer.limit_train_batches="$limit" trainer.seed=1234 trainer.log_every_n_steps=50 trainer.limit_val_batches=0 \
      trainer.progress_bar=lines model.train_ds.group_by_length=$gb model.nemo_path=null \
      exp_manager.exp_dir="$work/exp" exp_manager.create_checkpoint_callback=false \
      exp_manager.create_tensorboard_logger=false > "$work/mt.log" 2>&1 || { cat "$work/mt.log" >&2; exit 1; }
    mt_proc=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    line=$(grep -o "trained [0-9]* batches in [0-9.]* s.*" "$work/mt.log") || { cat "$work/mt.log" >&2; exit 1; }
    echo "megatune $task group_by_length=$gb: $line (process $mt_proc s)"
    read -r mb ms mreal mpad < <(echo "$line" | sed -E 's/trained ([0-9]+) batches in ([0-9.]+) s.*\(([0-9]+) tokens, ([0-9]+) with padding\)/\1 \2 \3 \4/')
    if [ $g = 1 ]; then
      gl=$(grep -o "epoch 0 feeds [0-9]* padded tokens for [0-9]* real ones ([0-9]* without" "$work/mt.log" | grep -o "[0-9][0-9]*" | tr '\n' ' ')
      read -r _ mt_epoch_grouped mt_epoch_real mt_epoch_plain <<<"$gl"
    fi
    eval "mt_${g}=\"\$mb \$ms \$mreal \$mpad \$mt_proc\""
    # PyTorch
    t0=$(now)
    if [ $task = sst2 ]; then pdata=$sst2; else pdata=$work/conll; fi
    po=$(env "${torch_env[@]}" "$py" "$here/bench/bench_epoch.py" --task "$task" --data "$pdata" --vocab "$vocab" \
      --megatune "$bin" --fraction "$fraction" --group-by-length $g --layers $L --hidden $H --heads $NH \
      --threads "$threads" --precision "$precision") || { echo "$po" >&2; exit 1; }
    pt_proc=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    echo "$po" | grep -v '^RESULT' | sed "s/\$/ (process $pt_proc s)/"
    r=$(echo "$po" | grep '^RESULT')
    v() { echo "$r" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    eval "pt_${g}=\"$(v batches) $(v loop_s) $(v real) $(v padded) $pt_proc $(v epoch_real) $(v epoch_padded) $(v epoch_batches)\""
  done
  # one row per (task, grouping): megatune then PyTorch
  for g in $grouping; do
    eval "m=(\$mt_$g)"; eval "p=(\$pt_$g)"
    if [ $g = 1 ]; then mep=$mt_epoch_grouped; else mep=$mt_epoch_plain; fi
    rows+=("$task $g ${m[*]} $mep $mt_epoch_real ${p[*]}")
  done
done

echo
echo "tok/s = real tokens per second of the training loop; pad tok/s counts padding too; ratio = megatune's"
echo "tokens/s over PyTorch's (> 1: megatune faster); est. epoch = the epoch's padded tokens / pad tok/s"
printf '%-6s %-5s %-9s %8s %9s %8s %9s %9s %12s %12s %10s\n' task group program batches "loop s" "process" \
  "tok/s" "pad tok/s" "epoch tok" "epoch pad" "est. epoch"
for row in "${rows[@]}"; do
  read -r task g mb ms mreal mpad mproc mep mer pb ps preal ppad pproc per pep pbatches <<<"$row"
  gbl=$([ "$g" = 1 ] && echo on || echo off)
  awk -v t="$task" -v g="$gbl" -v mb="$mb" -v ms="$ms" -v mr="$mreal" -v mp="$mpad" -v mproc="$mproc" -v mep="$mep" \
      -v mer="$mer" -v pb="$pb" -v ps="$ps" -v pr="$preal" -v pp="$ppad" -v pproc="$pproc" -v per="$per" -v pep="$pep" \
      -v nb="$pbatches" 'BEGIN {
    mt = mr / ms; mpt = mp / ms; pt = pr / ps; ppt = pp / ps
    me = mep > 0 ? mep / mpt : -1; pe = pep / ppt
    printf "%-6s %-5s %-9s %8s %9.1f %8.1f %9.0f %9.0f %12s %12s %10s\n", t, g, "megatune", mb "/" nb, ms, mproc, mt, mpt, mer, (mep > 0 ? mep : "?"), (me > 0 ? sprintf("%.0fs", me) : "?")
    printf "%-6s %-5s %-9s %8s %9.1f %8.1f %9.0f %9.0f %12s %12s %9.0fs\n", t, g, "pytorch", pb "/" nb, ps, pproc, pt, ppt, per, pep, pe
    printf "%-6s %-5s ratio megatune/pytorch: tokens/s %.2f, padded tokens/s %.2f, est. epoch time %s\n", t, g, mt / pt, mpt / ppt, (me > 0 ? sprintf("%.2f", me / pe) : "? (the plain epoch'"'"'s tokens come from a grouped run)")
  }'
done
