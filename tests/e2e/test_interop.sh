#!/usr/bin/env bash
# Files NeMo and PyTorch Lightning users take both ways:
#  (a) tools/check_lightning_files.py opens the .ckpt and .nemo of a TP=1 run and of a TP=2 run
#      (mpirun -np 2) with torch as NeMo / Lightning code does;
#  (b) pretrained_model=X.nemo fine-tunes the .nemo's own model (config, vocab, labels) whatever
#      the YAML's language_model / tokenizer say: with lr 0 the new .nemo holds X's exact weights;
#  (c) init_from_ptl_ckpt takes a Lightning .ckpt's state_dict (lr 0: the same weights again);
#  (d) two initialisation keys, and an NGC name in init_from_pretrained_model, are refused clearly;
#  (e) `megatune inspect X.nemo` opens with the summary (task, encoder, TP, version, labels, vocab).
set -u
. "$(dirname "$0")/mpi_env.sh" # mpi_env, mpi_can_start for the mpirun part
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-/usr/bin/python3}
"$py" -c "import torch" 2>/dev/null || { echo "SKIP: python with torch needed"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
steps=6
shape=(model.language_model.config.hidden_size=32 model.language_model.config.num_layers=2
  model.language_model.config.num_attention_heads=4 model.dataset.max_seq_length=24)
common=(examples/quickstart_config.yaml "${shape[@]}" trainer.max_steps=$steps trainer.val_check_interval=3
  model.train_ds.batch_size=8 exp_manager.version=v)
"$bin" train "${common[@]}" exp_manager.exp_dir="$work/a" > "$work/a.log" 2>&1 || { tail -20 "$work/a.log"; fail "train"; }
A="$work/a/quickstart/v"
"$py" tools/check_lightning_files.py "$A" --tp 1 --steps $steps || fail "TP=1 files"

# (b) pretrained_model: the YAML's encoder shape and vocab are not used (a missing vocab, another shape)
"$bin" train "${common[@]}" model.tokenizer.vocab_file="$work/no-such-vocab.txt" \
  model.language_model.config.hidden_size=64 model.language_model.config.num_layers=1 \
  pretrained_model="$A/checkpoints/quickstart.nemo" model.optim.lr=0 model.optim.sched.name=null \
  trainer.max_steps=2 exp_manager.exp_dir="$work/b" > "$work/b.log" 2>&1 || { tail -20 "$work/b.log"; fail "pretrained_model"; }
grep -q "pretrained_model=.*come from the .nemo's own config" "$work/b.log" || fail "pretrained_model: no log line"
"$py" tools/check_nemo.py same-weights "$A/checkpoints/quickstart.nemo" "$work/b/quickstart/v/checkpoints/quickstart.nemo" \
  || fail "pretrained_model: the weights are not the .nemo's"

# (b2) pretrained_model= a .nemo written as NeMo writes one (TP=2, checkpoint_version 0, a non-ASCII
# vocab): fine-tuned, and the new .nemo's tokenizer members are what NeMo's json.dumps gives
mkdir -p "$work/ref" "$work/nerdata"
"$py" tools/make_nemo_ref.py "$work/ref" || fail "make_nemo_ref"
for split in train dev; do
  for i in 1 2 3 4 5 6; do echo "john smith went to paris"; echo "the café of john"; done > "$work/nerdata/text_$split.txt"
  for i in 1 2 3 4 5 6; do echo "B-PER I-PER O O O"; echo "O O O B-PER"; done > "$work/nerdata/labels_$split.txt"
done
"$bin" train examples/token_classification_config.yaml pretrained_model="$work/ref/v0_tp2.nemo" \
  model.dataset.data_dir="$work/nerdata" model.dataset.max_seq_length=32 trainer.max_steps=2 model.train_ds.batch_size=4 \
  model.optim.lr=0 model.optim.sched.name=null \
  model.validation_ds.batch_size=4 exp_manager.exp_dir="$work/b2" exp_manager.version=v > "$work/b2.log" 2>&1 \
  || { tail -20 "$work/b2.log"; fail "pretrained_model (NeMo-written .nemo)"; }
"$py" - "$work"/b2/*/v/checkpoints/*.nemo <<'PY' || fail "tokenizer members of the fine-tuned .nemo"
import json, sys, tarfile
t = tarfile.open(sys.argv[1], "r:gz")
m = {n.name: t.extractfile(n).read() for n in t.getmembers() if n.isfile()}
toks = m["./tokenizer.vocab_file"].decode().split("\n")[:-1]
assert len(toks) == 100 and "café" in toks, len(toks)
want = json.dumps(dict(sorted({w: i for i, w in enumerate(toks)}.items(), key=lambda kv: kv[1])), indent=2, sort_keys=True) + "\n"
assert m["./tokenizer_vocab_dict.json"].decode() == want
assert json.loads(m["./megatron_checkpoint_version.json"]) == {"checkpoint_version": 3.0}
print("fine-tuned NeMo-written .nemo: tokenizer_vocab_dict.json == json.dumps(...), version 3.0")
PY
# lr 0: the version-0 TP=2 weights came in reordered and merged: the same model written at TP=1, version 3.0
"$py" tools/check_nemo.py same-weights "$work/ref/v3_tp1.nemo" "$work"/b2/*/v/checkpoints/*.nemo \
  || fail "pretrained_model: version-0 TP=2 weights not loaded as the TP=1 version-3.0 model"

# (c) init_from_ptl_ckpt: NeMo's torch.load(ckpt)['state_dict'] into the model
last=$(ls "$A"/checkpoints/*-last.ckpt)
"$bin" train "${common[@]}" init_from_ptl_ckpt="$last" model.optim.lr=0 model.optim.sched.name=null \
  trainer.max_steps=2 exp_manager.exp_dir="$work/c" > "$work/c.log" 2>&1 || { tail -20 "$work/c.log"; fail "init_from_ptl_ckpt"; }
"$py" tools/check_nemo.py same-weights "$A/checkpoints/quickstart.nemo" "$work/c/quickstart/v/checkpoints/quickstart.nemo" \
  || fail "init_from_ptl_ckpt: the weights are not the checkpoint's"

# (d) refusals
out=$("$bin" train "${common[@]}" init_from_ptl_ckpt="$last" init_from_nemo_model="$A/checkpoints/quickstart.nemo" \
  exp_manager.exp_dir="$work/d" 2>&1) && fail "two init keys accepted"
echo "$out" | grep -q "init_from_nemo_model and init_from_ptl_ckpt are both set" || fail "two init keys: $out"
out=$("$bin" train "${common[@]}" init_from_pretrained_model=NERModel exp_manager.exp_dir="$work/d2" 2>&1) \
  && fail "NGC name accepted"
echo "$out" | grep -q "does not download NeMo's NGC models" || fail "NGC name: $out"

# (e) inspect summary
"$bin" inspect "$A/checkpoints/quickstart.nemo" > "$work/inspect.txt" 2>&1 || { cat "$work/inspect.txt"; fail "inspect"; }
"$py" - "$work/inspect.txt" <<'PY' || fail "inspect summary"
import sys
lines = open(sys.argv[1]).read().splitlines()
head = "\n".join(lines[:8])
for want in ["task: text_classification", "encoder: megatron, 2 layers, hidden 32, 4 heads, ffn 128",
             "tensor-parallel size: 1", "checkpoint_version: 3", "labels: 2", "vocab: 89 tokens"]:
    assert want in head, (want, head)
print("inspect summary ok")
PY

# (a, TP=2) mpirun -np 2: NeMo's mp_rank_XX layout for .ckpt and .nemo
mpi_env
if mpi_part "the TP=2 part"; then
    mpirun --oversubscribe -np 2 "$bin" train "${common[@]}" model.tensor_model_parallel_size=2 \
      exp_manager.exp_dir="$work/tp2" > "$work/tp2.log" 2>&1 || { tail -20 "$work/tp2.log"; fail "TP=2 train"; }
    "$py" tools/check_lightning_files.py "$work/tp2/quickstart/v" --tp 2 --steps $steps || fail "TP=2 files"
    "$bin" inspect "$work/tp2/quickstart/v/checkpoints/quickstart.nemo" > "$work/tp2-inspect.txt" 2>&1 \
      || { rc=$?; tail -5 "$work/tp2-inspect.txt"; fail "inspect TP=2: exit $rc"; }
    head -8 "$work/tp2-inspect.txt" | grep -q "tensor-parallel size: 2" || fail "inspect TP=2"
    # a NeMo-written TP=2 .nemo of checkpoint_version 0, one shard per process: the predictions of
    # the same model written at TP=1 / version 3.0 in one process (test_nemo_ref checks its logits)
    printf 'john smith went to paris\nthe cafe of john and smith\n' > "$work/ner.txt"
    "$bin" predict --format all-words "$work/ref/v3_tp1.nemo" "$work/ner.txt" "$work/p1.txt" 2>/dev/null || fail "predict v3_tp1"
    mpirun --oversubscribe -np 2 "$bin" predict --format all-words "$work/ref/v0_tp2.nemo" "$work/ner.txt" "$work/p2.txt" \
      > "$work/p2.log" 2>&1 || { tail "$work/p2.log"; fail "mpirun predict v0_tp2"; }
    [ "$(wc -l < "$work/p1.txt")" = 2 ] || { cat "$work/p1.txt"; fail "predict v3_tp1: want 2 lines"; }
    cmp -s "$work/p1.txt" "$work/p2.txt" || { cat "$work/p1.txt" "$work/p2.txt"; fail "TP=2 version-0 .nemo predicts differently"; }
fi
mpi_part_end
echo "PASS"
