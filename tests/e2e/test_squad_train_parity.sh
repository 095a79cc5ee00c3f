#!/usr/bin/env bash
# Question answering training against PyTorch on real SQuAD features: a 20-step fine-tune (tiny
# Megatron encoder, QA head, span loss, AdamW, clipping, WarmupAnnealing, dropout off, no
# shuffling, validation every 10 batches) from the same initial weights; every step's train_loss
# and lr and every val_loss in megatune's metrics.csv must match tools/nemo_train_ref.py --qa,
# which trains on the features `megatune data squad-features` dumps (checked equal to the
# independent tools/squad_features_ref.py in test_squad_features.sh), padded to max_seq_length.
set -u
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:?}; PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
"$PY" -c "import torch" 2>/dev/null || { echo "SKIP: torch needed"; exit 77; }
[ -f "$DATA/squad/dev-v1.1.json.zip" ] || { echo "SKIP: SQuAD data missing"; exit 77; }
T=$(mktemp -d /tmp/mt_squad_parity_XXXXXX); trap 'rm -rf "$T"' EXIT
cd "$SRC" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
V=$DATA/bert-base-uncased/vocab.txt
"$PY" - "$DATA/squad" "$T" <<'PY' || fail "slices"
import json, sys, zipfile
d = json.loads(zipfile.ZipFile(sys.argv[1] + "/dev-v1.1.json.zip").read("dev-v1.1.json"))
json.dump(dict(d, data=[dict(d["data"][2], paragraphs=d["data"][2]["paragraphs"][:9])]), open(sys.argv[2] + "/train.json", "w"))
json.dump(dict(d, data=[dict(d["data"][7], paragraphs=d["data"][7]["paragraphs"][:1])]), open(sys.argv[2] + "/dev.json", "w"))
PY
L=64; S=24; Q=16; steps=20
args=(examples/learning/squad_small_from_scratch.yaml model.train_ds.file="$T/train.json" model.validation_ds.file="$T/dev.json"
  model.tokenizer.vocab_file="$V" model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.language_model.config.num_attention_heads=4 model.language_model.config.max_position_embeddings=64
  model.language_model.config.hidden_dropout=0 model.language_model.config.attention_dropout=0
  model.dataset.max_seq_length=$L model.dataset.doc_stride=$S model.dataset.max_query_length=$Q
  model.train_ds.shuffle=false model.train_ds.batch_size=8 model.validation_ds.batch_size=16
  trainer.accumulate_grad_batches=1 trainer.gradient_clip_val=0.5 model.optim.lr=2e-3 model.optim.weight_decay=0.01
  model.optim.sched.name=WarmupAnnealing model.optim.sched.warmup_ratio=0.25 trainer.val_check_interval=10
  trainer.log_every_n_steps=1 trainer.max_epochs=100 exp_manager.version=v)
"$BIN" train "${args[@]}" trainer.max_steps=0 model.nemo_path="$T/init.nemo" exp_manager.exp_dir="$T/init" > "$T/init.log" 2>&1 \
  || { tail "$T/init.log"; fail "initial model"; }
"$BIN" train "${args[@]}" trainer.max_steps=$steps exp_manager.exp_dir="$T/run" > "$T/run.log" 2>&1 \
  || { tail "$T/run.log"; fail "training"; }
"$BIN" data squad-features "$T/train.json" --vocab "$V" --train --max_seq_length $L --doc_stride $S --max_query_length $Q > "$T/train.tsv" \
  && "$BIN" data squad-features "$T/dev.json" --vocab "$V" --max_seq_length $L --doc_stride $S --max_query_length $Q > "$T/dev.tsv" \
  || fail "feature dump"
echo "$(wc -l < "$T/train.tsv") train features, $(wc -l < "$T/dev.tsv") dev features"
"$PY" tools/nemo_train_ref.py --qa "$T/init.nemo" "$T/run/squad_small/v/metrics.csv" "$T/train.tsv" "$T/dev.tsv" "$V" \
  --batch 8 --val-batch 16 --accumulate 1 --max-steps $steps --val-every 10 --lr 2e-3 --wd 0.01 --clip 0.5 \
  --warmup-ratio 0.25 --max-seq-length $L --hidden 32 --layers 2 --heads 4 || fail "megatune's QA training differs from PyTorch's"
echo PASSED
