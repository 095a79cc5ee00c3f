#!/usr/bin/env bash
# `megatune train` as a NeMo user runs it: NeMo's stock YAMLs with a bad data path fail with one
# message and leave no experiment folder; a real (tiny) run honours checkpoint_callback_params
# (filename, prefix/postfix, save_top_k, always_save_nemo + save_best_model), check_val_every_n_epoch,
# fast_dev_run, logs each no-op trainer key once, says which encoder config it used (config_file
# wins over the config block), and writes lightning_logs.txt, nemo_error_log.txt, git-info.log,
# and a model_config.yaml / hparams.yaml with the task's keys only and shortest floats.
set -u
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }

# 1. config/data errors leave nothing behind
for cfg in question_answering_squad_config text_classification_config token_classification_config; do
  case $cfg in
    question_answering*) data=(model.train_ds.file="$work/nope.json" model.validation_ds.file="$work/nope.json") ;;
    text_classification*) data=(model.dataset.num_classes=2 model.train_ds.file_path="$work/nope.tsv") ;;
    token_classification*) data=(model.dataset.data_dir="$work/nope") ;;
  esac
  out=$("$bin" train tests/data/nemo_configs/$cfg.yaml "${data[@]}" \
    model.language_model.pretrained_model_name=megatron-bert-uncased model.tokenizer.vocab_file=examples/data/quickstart_vocab.txt \
    exp_manager.exp_dir="$work/exp" 2>&1)
  rc=$?
  [ $rc -eq 1 ] || fail "$cfg with a missing data file: exit $rc: $out"
  [ "$(echo "$out" | grep -c 'megatune: error')" = 1 ] || fail "$cfg: not one error line: $out"
  [ ! -e "$work/exp" ] || { find "$work/exp"; fail "$cfg: a failed setup left $work/exp behind"; }
  echo "ok: $cfg -> $(echo "$out" | grep 'megatune: error')"
done
out=$("$bin" train examples/quickstart_config.yaml 'exp_manager.name=${model.nope}' exp_manager.exp_dir="$work/exp" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "names no key" && [ ! -e "$work/exp" ] || fail "bad interpolation: $out"

# 2. a tiny run, 2 epochs of 4 batches, validated every second epoch only
tiny=(model.language_model.config.hidden_size=32 model.language_model.config.num_layers=1
  model.language_model.config.num_attention_heads=2 model.dataset.max_seq_length=24 trainer.progress_bar=lines
  model.train_ds.num_samples=64 model.train_ds.batch_size=16 model.validation_ds.num_samples=32)
git init -q "$work/repo" || fail "git init"
cp -r examples "$work/repo/"
( cd "$work/repo" && git add -A && git -c user.name=t -c user.email=t@t -c commit.gpgsign=false commit -qm x ) || fail "commit"
echo "# local edit" >> "$work/repo/examples/quickstart_config.yaml"
( cd "$work/repo" && "$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.max_epochs=4 \
    trainer.check_val_every_n_epoch=2 trainer.gpus=2 trainer.benchmark=false trainer.amp_level=O1 \
    model.optim.lr=1e-5 exp_manager.exp_dir="$work/run" exp_manager.version=v \
    "exp_manager.checkpoint_callback_params.filename={val_loss:.2f}-{epoch}" \
    exp_manager.checkpoint_callback_params.prefix=qs exp_manager.checkpoint_callback_params.postfix=-best.nemo \
    exp_manager.checkpoint_callback_params.always_save_nemo=true \
    exp_manager.checkpoint_callback_params.save_best_model=true ) > "$work/run.log" 2>&1 \
  || { cat "$work/run.log"; fail "tiny run"; }
d="$work/run/quickstart/v"
ls "$d/checkpoints" | grep -Eq '^val_loss=[0-9]+\.[0-9]{2}-epoch=1\.ckpt$' || { ls "$d/checkpoints"; fail "filename template"; }
ls "$d/checkpoints" | grep -Eq '^val_loss=[0-9]+\.[0-9]{2}-epoch=3-last\.ckpt$' || { ls "$d/checkpoints"; fail "last"; }
# validation ran in epochs 1 and 3 only (check_val_every_n_epoch=2): two validations
[ "$(grep -c 'validation at step' "$work/run.log")" = 2 ] || fail "check_val_every_n_epoch: $(grep 'validation at' "$work/run.log")"
[ -f "$d/checkpoints/qs-best.nemo" ] || { ls "$d/checkpoints"; fail "prefix+postfix .nemo"; }
grep -q "(always_save_nemo)" "$work/run.log" || fail "always_save_nemo wrote no .nemo during training"
for k in trainer.gpus=2 trainer.amp_level=O1; do
  [ "$(grep -c "$k: no effect here" "$work/run.log")" = 1 ] || fail "no-op line for $k"
done
! grep -q "trainer.benchmark" "$work/run.log" || fail "a default no-op value was logged"
grep -q "encoder shape from the model.language_model.config block" "$work/run.log" || fail "which encoder config"
grep -q "GPU available: False" "$d/lightning_logs.txt" && grep -q "saving model to" "$d/lightning_logs.txt" \
  || fail "lightning_logs.txt: $(cat "$d/lightning_logs.txt")"
[ -f "$d/nemo_error_log.txt" ] || fail "nemo_error_log.txt"
! grep -q "\] .*I " "$d/nemo_error_log.txt" || fail "info lines in nemo_error_log.txt"
head -1 "$d/git-info.log" | grep -Eq '^commit hash: [0-9a-f]{40}$' || fail "git-info.log: $(head -3 "$d/git-info.log")"
grep -q '^+# local edit' "$d/git-info.log" || fail "git-info.log lacks the diff"
grep -q '    lr: 1.0e-05$' "$d/hparams.yaml" || fail "hparams.yaml float: $(grep ' lr:' "$d/hparams.yaml")"
! grep -Eq 'doc_stride|token_classifier|pad_label' "$d/hparams.yaml" || fail "hparams.yaml holds other tasks' keys"
mkdir "$work/x" && tar -xzf "$d/checkpoints/qs-best.nemo" -C "$work/x" || fail "untar"
mc="$work/x/model_config.yaml"
grep -q 'lr: 1.0e-05$' "$mc" && grep -q 'layernorm_epsilon: 1.0e-05$' "$mc" || fail "model_config.yaml floats: $(grep -E 'lr:|epsilon' "$mc")"
! grep -Eq 'doc_stride|token_classifier|pad_label|ds_item|text_file' "$mc" || fail "model_config.yaml holds other tasks' keys"

# 3. fast_dev_run: one batch of train and of validation, no checkpoints
"$bin" train examples/quickstart_config.yaml "${tiny[@]}" trainer.fast_dev_run=true exp_manager.exp_dir="$work/fdr" \
  > "$work/fdr.log" 2>&1 || { cat "$work/fdr.log"; fail "fast_dev_run"; }
grep -q "1 batches/epoch, 1 optimizer steps" "$work/fdr.log" || fail "fast_dev_run steps: $(grep 'training:' "$work/fdr.log")"
[ -z "$(find "$work/fdr" -name '*.ckpt' -o -name '*.nemo')" ] || fail "fast_dev_run wrote checkpoints"

# 4. config_file wins over the config block, and the log says so
printf '{"hidden-size": 32, "num-attention-heads": 2, "num-layers": 1, "max-seq-length": 64}\n' > "$work/enc.json"
"$bin" train examples/quickstart_config.yaml "${tiny[@]}" model.language_model.config_file="$work/enc.json" \
  model.language_model.config.hidden_size=48 trainer.max_steps=1 exp_manager.exp_dir="$work/cf" > "$work/cf.log" 2>&1 \
  || { cat "$work/cf.log"; fail "config_file run"; }
grep -q "config_file takes precedence" "$work/cf.log" || fail "no precedence warning"
grep -q "hidden 32," "$work/cf.log" || fail "config_file did not win: $(grep 'model:' "$work/cf.log")"
echo "ok"
