#!/usr/bin/env bash
# Bad inputs to `megatune train/test/predict`: each a clear error naming the problem and a non-zero
# exit, and no existing checkpoint harmed. --help works for each command.
set -u
# GOMP's default active wait makes 2 OpenMP threads crawl (seconds per step) when the 2 cores are
# shared with other tests; passive waiting keeps the runs fast without changing any result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
# expect_error DESCRIPTION PATTERN CMD...: non-zero exit and stderr matching PATTERN
expect_error() {
  local what=$1 pat=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  [ $rc -ne 0 ] || fail "$what: exit 0"
  # megatune reports errors with 1 (usage: 2); anything else is a crash, an abort or a sanitizer
  # report (scripts/test.sh makes the sanitizers exit 86) that happened on the way to the right message
  [ $rc -eq 1 ] || [ $rc -eq 2 ] || fail "$what: exit $rc (a crash or sanitizer report?): $out"
  echo "$out" | grep -Eq -- "$pat" || fail "$what: message does not match '$pat': $out"
  echo "ok: $what -> $(echo "$out" | grep -E -- "$pat" | head -1)"
}

for c in train test predict; do
  "$bin" $c --help > "$work/help.txt" || fail "$c --help exit code"
  grep -q "usage: megatune $c" "$work/help.txt" && grep -q "examples:" "$work/help.txt" || fail "$c --help text"
done
grep -q "model.language_model.pretrained_model_name" <("$bin" train --help) || fail "train --help lists no keys"

tiny=(model.language_model.config.hidden_size=32 model.language_model.config.num_layers=1 model.dataset.max_seq_length=24
  trainer.progress_bar=lines)
expect_error "missing config" "nope.yaml: cannot open the config" "$bin" train "$work/nope.yaml"
printf 'trainer:\n  max_steps: 5\n   bad_indent: 1\n' > "$work/bad.yaml"
expect_error "malformed YAML" "bad.yaml:3:[0-9]+: malformed YAML" "$bin" train "$work/bad.yaml"
printf 'trainer:\n  max_step: 5\n' > "$work/unknown.yaml"
expect_error "unknown YAML key" "unknown.yaml:2: unknown key 'trainer.max_step'; did you mean 'trainer.max_steps'" "$bin" train "$work/unknown.yaml"
expect_error "unknown override" "unknown key 'trainer.max_stepz'; did you mean 'trainer.max_steps'" \
  "$bin" train examples/quickstart_config.yaml trainer.max_stepz=3
expect_error "wrongly typed override" "trainer.max_steps expects an integer, got 'many'" \
  "$bin" train examples/quickstart_config.yaml trainer.max_steps=many
expect_error "missing data file" "no_such_train.tsv" \
  "$bin" train examples/quickstart_config.yaml "${tiny[@]}" model.train_ds.file_path="$work/no_such_train.tsv" exp_manager.exp_dir="$work/x"
expect_error "mandatory key" "model.dataset.data_dir is mandatory" "$bin" train examples/token_classification_config.yaml
expect_error "precision" "trainer.precision=8 is not supported" \
  "$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.precision=8 exp_manager.exp_dir="$work/x"
expect_error "no checkpoint to resume" "resume_ignore_no_checkpoint" \
  "$bin" train examples/quickstart_config.yaml "${tiny[@]}" exp_manager.resume_if_exists=true exp_manager.exp_dir="$work/none"
expect_error "missing .nemo" "no_such.nemo" "$bin" test "$work/no_such.nemo"
expect_error "missing resume_from_checkpoint" "trainer.resume_from_checkpoint: .*nope.ckpt" \
  "$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.resume_from_checkpoint="$work/nope.ckpt" exp_manager.exp_dir="$work/x"

# a real run with checkpoints, then corrupt/truncated checkpoints: refused, the good one untouched
run=(examples/quickstart_config.yaml "${tiny[@]}" trainer.max_steps=20 trainer.val_check_interval=10
  exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true exp_manager.exp_dir="$work/r")
"$bin" train "${run[@]}" trainer.max_steps=10 > "$work/r1.log" 2>&1 || { cat "$work/r1.log"; fail "first run"; }
ck=$(ls "$work"/r/quickstart/checkpoints/*-last.ckpt)
sum=$(md5sum < "$ck")
cp "$ck" "$work/good.ckpt"
# flip one byte in the middle of the tensor data
size=$(stat -c %s "$ck")
printf '\xff' | dd of="$ck" bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null
cp "$ck" "$work/flipped.ckpt"
expect_error "corrupt checkpoint" "cannot resume|corrupt|checksum" "$bin" train "${run[@]}"
cmp -s "$ck" "$work/flipped.ckpt" || fail "the corrupt checkpoint was modified"
head -c $((size / 3)) "$work/good.ckpt" > "$ck"
cp "$ck" "$work/trunc.ckpt"
expect_error "truncated checkpoint" "cannot resume|truncated|zip" "$bin" train "${run[@]}"
cmp -s "$ck" "$work/trunc.ckpt" || fail "the truncated checkpoint was modified"
# restore the good one: resuming works and continues to step 20
cp "$work/good.ckpt" "$ck"
[ "$(md5sum < "$ck")" = "$sum" ] || fail "copy"
"$bin" train "${run[@]}" > "$work/r2.log" 2>&1 || { cat "$work/r2.log"; fail "resume from the good checkpoint"; }
grep -q "resumed at step 10" "$work/r2.log" || fail "did not resume at step 10"
# a corrupt .nemo as init_from_nemo_model leaves the experiment's checkpoints alone
before=$(ls -l "$work"/r/quickstart/checkpoints | md5sum)
head -c 1000 "$work"/r/quickstart/checkpoints/quickstart.nemo > "$work/cut.nemo"
expect_error "truncated .nemo for init_from_nemo_model" "cut.nemo" \
  "$bin" train "${run[@]}" init_from_nemo_model="$work/cut.nemo" exp_manager.resume_if_exists=false exp_manager.exp_dir="$work/z"
[ "$(ls -l "$work"/r/quickstart/checkpoints | md5sum)" = "$before" ] || fail "checkpoints changed"
# pretrained names resolve their files in $MEGATUNE_MODEL_DIR; a missing file names the exact path
mkdir -p "$work/models/megatron-bert-uncased"
cp examples/data/quickstart_vocab.txt "$work/models/megatron-bert-uncased/vocab.txt"
MEGATUNE_MODEL_DIR="$work/models" "$bin" train examples/quickstart_config.yaml "${tiny[@]}" model.tokenizer.vocab_file=null \
  trainer.max_steps=1 exp_manager.exp_dir="$work/p" > "$work/p.log" 2>&1 || { cat "$work/p.log"; fail "preset vocab"; }
grep -q "tokenizer: $work/models/megatron-bert-uncased/vocab.txt (89 tokens, uncased)" "$work/p.log" || fail "preset vocab not used"
MEGATUNE_OFFLINE=1 MEGATUNE_MODEL_DIR="$work/models" expect_error "missing preset checkpoint" \
  "$work/models/megatron-bert-345m-uncased/model_optim_rng.pt: the checkpoint of pretrained model" \
  "$bin" train examples/quickstart_config.yaml model.language_model.pretrained_model_name=megatron-bert-345m-uncased \
  model.language_model.config=null trainer.max_steps=1 exp_manager.exp_dir="$work/p"
# max_epochs=null with max_steps: Lightning trains max_steps steps (megatune once trained none); the
# tiny run's 30 batches an epoch make 40 steps cross an epoch, so a cap of 1 epoch would show too
"$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.max_epochs=null trainer.max_steps=40 \
  trainer.log_every_n_steps=1 exp_manager.exp_dir="$work/me" > "$work/me.log" 2>&1 || { cat "$work/me.log"; fail "max_epochs=null"; }
last=$(tail -n +2 "$work"/me/quickstart/*/metrics.csv | cut -d, -f1 | sort -n | tail -1)
[ "$last" = 40 ] || { cat "$work/me.log"; fail "max_epochs=null trainer.max_steps=40 trained to step '$last'"; }
# checkpoints ranked by another metric (mode max), named after it; an unknown monitor is an error
"$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.max_steps=20 trainer.val_check_interval=10 \
  exp_manager.checkpoint_callback_params.monitor=val_acc exp_manager.checkpoint_callback_params.mode=max \
  exp_manager.checkpoint_callback_params.save_top_k=1 exp_manager.exp_dir="$work/mon" > "$work/mon.log" 2>&1 \
  || { cat "$work/mon.log"; fail "monitor=val_acc"; }
n=$(ls "$work"/mon/quickstart/*/checkpoints/ | grep -c '^quickstart--val_acc=[0-9.]*-epoch=[0-9]*\.ckpt$')
[ "$n" = 1 ] || { ls "$work"/mon/quickstart/*/checkpoints/; fail "save_top_k=1 by val_acc: $n ranked checkpoints"; }
expect_error "unknown monitor" "monitor 'val_bogus' is not a logged metric" \
  "$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.max_steps=10 trainer.val_check_interval=10 \
  exp_manager.checkpoint_callback_params.monitor=val_bogus exp_manager.exp_dir="$work/mon2"

# .ckpt vs .nemo mix-ups (NeMo issues 1852, 1759) are named as such
expect_error ".ckpt given to test" "is a torch/zip file \(a training .ckpt\?\)" "$bin" test "$work/good.ckpt"
expect_error ".nemo given to resume_from_checkpoint" "is a .nemo .*init_from_nemo_model" \
  "$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.resume_from_checkpoint="$work/r/quickstart/checkpoints/quickstart.nemo" \
  exp_manager.exp_dir="$work/y"
expect_error "predict: missing input" "no_input.txt: cannot open" "$bin" predict "$work"/r/quickstart/checkpoints/quickstart.nemo "$work/no_input.txt"

# `megatune version` reports the CPU and ISA that the kernel's own /proc/cpuinfo reports, and the
# library behind the products; a training log names the CPU too
"$bin" version > "$work/ver.txt" 2>&1 || { cat "$work/ver.txt"; fail "megatune version exit code"; }
cat "$work/ver.txt"
"$bin" --version | cmp -s - "$work/ver.txt" || fail "--version differs from version"
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1 | tr -s ' ' | sed 's/ *$//')
[ -n "$cpu" ] || fail "no model name in /proc/cpuinfo"
# (a virtual machine's cpuid may brand the CPU otherwise than its kernel did at boot: then both)
{ grep -qxF "CPU:            $cpu" "$work/ver.txt" || grep -q "^CPU:            $(printf '%s' "$cpu" | sed 's/[][\.*^$]/\\&/g') (cpuid brand: .*)$" "$work/ver.txt"; } \
  || fail "CPU line is not /proc/cpuinfo's '$cpu'"
vendor=$(sed -n 's/^vendor_id[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
family=$(sed -n 's/^cpu family[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
model=$(sed -n 's/^model[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
grep -q "^CPU family:     $vendor family $family model $model\(, \|\$\)" "$work/ver.txt" \
  || fail "CPU family line is not /proc/cpuinfo's $vendor family $family model $model"
case "$vendor $family" in
  "AuthenticAMD 26") grep -q "^CPU family:.*, Zen 5$" "$work/ver.txt" || fail "family 26 is Zen 5" ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
for f in avx2:AVX2 fma:FMA avx512f:AVX-512 avx512_bf16:AVX512-BF16 amx_bf16:AMX-BF16; do
  has_cpu=0; case $flags in *" ${f%%:*} "*) has_cpu=1 ;; esac
  has_mt=0; grep '^ISA:' "$work/ver.txt" | grep -qw -- "${f#*:}" && has_mt=1
  [ $has_cpu = $has_mt ] || fail "ISA line and /proc/cpuinfo disagree on ${f#*:} (cpuinfo $has_cpu, megatune $has_mt)"
done
case $flags in
  *" avx512_bf16 "*|*" amx_bf16 "*) grep -q '^bf16 products:  oneDNN' "$work/ver.txt" || fail "bf16 CPU without the bf16 line" ;;
  *) grep -q '^bf16 products:  not here: this CPU has neither' "$work/ver.txt" || fail "no bf16 on this CPU, not said" ;;
esac
MEGATUNE_KERNELS=blas "$bin" version | grep -q '^fp32 products:  OpenBLAS' || fail "MEGATUNE_KERNELS=blas not reported"
MEGATUNE_KERNELS=openblas "$bin" version 2>&1 | grep -q 'MEGATUNE_KERNELS=openblas is not a kernel table; use dnnl' \
  || fail "an unknown MEGATUNE_KERNELS value passes silently"
# the fp32 table's attention path: oneDNN batched by default where built with it, OpenBLAS on request
if "$bin" version | grep -q '^fp32 products:  oneDNN'; then
  "$bin" version | grep -q '^fp32 products:  oneDNN.*(attention: batched over heads)' || fail "oneDNN attention not reported"
  MEGATUNE_ATTENTION=blas "$bin" version | grep -q 'attention: OpenBLAS.*sgemm per head' || fail "MEGATUNE_ATTENTION=blas not reported"
  MEGATUNE_ATTENTION=cublas "$bin" version 2>&1 | grep -q 'MEGATUNE_ATTENTION=cublas is not an attention path; use dnnl' \
    || fail "an unknown MEGATUNE_ATTENTION value passes silently"
fi
expect_error "version with an argument" "takes no arguments" "$bin" version extra
grep -qF "CPU: $cpu (" "$work/mon.log" || fail "the training log does not name the CPU: $(head -5 "$work/mon.log")"
# one parenthesis after the name, also where the cpuid brand differs from /proc/cpuinfo's model
grep "CPU: " "$work/mon.log" | grep -qF ") (" && fail "the training log's CPU line has two groups: $(grep "CPU: " "$work/mon.log")"
echo PASSED
