#!/usr/bin/env bash
# megatune inspect / convert end to end on checkpoints written by PyTorch: Megatron v0 TP=2 ->
# TP=4 folder -> safetensors -> single .pt, each output checked by an independent Python merge
# (tools/check_ckpt_convert.py); inspect on folders, legacy files, .safetensors and a .nemo
# archive (members read in memory, hostile member names never extracted); hostile pickles stay inert.
set -u
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
BIN=${MEGATUNE_BIN:?}
SRC=${MEGATUNE_SOURCE_DIR:?}
"$PY" -c 'import torch' 2>/dev/null || { echo "SKIP: no torch"; exit 77; }
T=$(mktemp -d /tmp/mt_ckpt_e2e_XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# inspect_to FILE ARGS...: `megatune inspect ARGS` into FILE; its exit status is checked before any grep
# (a pipe into grep would pass a crash after the matching line)
inspect_to() { local f=$1; shift; "$BIN" inspect "$@" > "$f" 2>&1 || { local rc=$?; tail -n 5 "$f"; fail "inspect $*: exit $rc"; }; }

"$PY" "$SRC/tools/make_megatron_ckpt.py" "$T/v0" --version 0 --tp 2 || fail "generator"
"$BIN" inspect "$T/v0" > "$T/inspect.txt" || fail "inspect folder"
grep -q "checkpoint_version: absent" "$T/inspect.txt" || fail "inspect: version"
grep -q "2 tensor-parallel rank file" "$T/inspect.txt" || fail "inspect: TP size"
grep -q "architecture: megatron (pre-LN), layers=2 hidden=64 heads=4 ffn=256 vocab_rows=512" "$T/inspect.txt" || fail "inspect: arch"
grep -q "lm_head.bias .*float16  \[512\]  vocab-split" "$T/inspect.txt" || fail "inspect: lm_head"
grep -q "args .*argparse.Namespace (inert)" "$T/inspect.txt" || fail "inspect: args"

"$BIN" convert "$T/v0" "$T/tp4" --tp 4 || fail "convert to tp4"
"$BIN" convert "$T/tp4" "$T/hf.safetensors" || fail "convert to safetensors"
"$BIN" convert "$T/hf.safetensors" "$T/back.pt" || fail "convert safetensors to pt"
"$BIN" convert "$T/tp4" "$T/tp2h" --tp 2 --dtype fp16 || fail "convert tp4 to tp2 fp16"
"$PY" "$SRC/tools/check_ckpt_convert.py" "$T" || fail "python check of convert outputs"
inspect_to "$T/i-st.txt" "$T/hf.safetensors"
grep -q "bert.encoder.layer.1.attention.self.value.weight" "$T/i-st.txt" || fail "inspect safetensors"
inspect_to "$T/i-back.txt" -q "$T/back.pt"
grep -q "checkpoint_version: 3" "$T/i-back.txt" || fail "inspect back.pt"

# legacy (pre-1.6) container
"$PY" "$SRC/tools/make_megatron_ckpt.py" "$T/leg" --version 1 --legacy --no-expected || fail "legacy generator"
inspect_to "$T/i-leg.txt" "$T/leg/release/mp_rank_00/model_optim_rng.pt"
grep -q "torch legacy (pre-1.6) container" "$T/i-leg.txt" || fail "inspect legacy"

# converting into an existing folder replaces its ranks whole: TP=4 then TP=2 leaves exactly
# release/mp_rank_00..01 and the tracker, nothing hidden beside them
"$BIN" convert "$T/v0" "$T/re" --tp 4 || fail "convert into a new folder"
"$BIN" convert "$T/v0" "$T/re" --tp 2 || fail "convert into an existing folder"
[ "$(ls -A "$T/re" | tr '\n' ' ')" = "latest_checkpointed_iteration.txt release " ] || fail "folder after reconversion: $(ls -A "$T/re")"
[ "$(cat "$T/re/latest_checkpointed_iteration.txt")" = release ] || fail "tracker after reconversion"
[ "$(ls "$T/re/release" | tr '\n' ' ')" = "mp_rank_00 mp_rank_01 " ] || fail "ranks after reconversion: $(ls "$T/re/release")"
inspect_to "$T/i-re.txt" "$T/re"
grep -q "2 tensor-parallel rank file" "$T/i-re.txt" || fail "inspect after reconversion"

# usage errors and bad input
"$BIN" convert "$T/v0" 2>/dev/null; [ $? -eq 2 ] || fail "convert without DST should be a usage error"
"$BIN" convert "$T/v0" "$T/x.safetensors" --tp 2 2>"$T/err.txt"; [ $? -eq 1 ] || fail "safetensors --tp 2 should fail"
grep -q "single TP=1 file" "$T/err.txt" || fail "safetensors --tp message"
"$BIN" convert "$T/v0" "$T/bad" --tp 3 2>"$T/err.txt"; [ $? -eq 1 ] || fail "--tp 3 should fail"
"$BIN" inspect "$T/nonexistent" 2>"$T/err.txt"; [ $? -eq 1 ] || fail "inspect missing path"
grep -q "nonexistent" "$T/err.txt" || fail "missing path message"

# hostile: a pickle calling os.system / eval is inert; a .nemo with a traversal member is read in memory only
MARK="$T/PWNED"
"$PY" "$SRC/tools/make_hostile_ckpt.py" "$T/h" "$MARK" || fail "hostile generator"
"$BIN" inspect "$T/h/evil_system.pt" > "$T/evil.txt" || fail "inspect evil"
grep -q "posix.system (inert)" "$T/evil.txt" || fail "evil object not shown inert"
"$BIN" inspect "$T/h/evil_eval.pt" > /dev/null || fail "inspect evil eval"
# refused (it records no head count), not a crash or a sanitizer report on the way: the status counts
"$BIN" convert "$T/h/evil_exec_in_model.pt" "$T/evil_out.pt" 2>"$T/err.txt"; rc=$?
[ $rc -eq 1 ] || { cat "$T/err.txt"; fail "convert of a hostile pickle: exit $rc, want 1"; }
grep -q "evil_exec_in_model.pt: the checkpoint does not record num_attention_heads" "$T/err.txt" || { cat "$T/err.txt"; fail "hostile convert message"; }
[ ! -e "$T/evil_out.pt" ] || fail "a refused convert wrote $T/evil_out.pt"
# with the head count given, what stops it is that the state dict holds no tensor: no empty output
"$BIN" convert "$T/h/evil_exec_in_model.pt" "$T/evil_out.pt" --heads 2 2>"$T/err.txt"; rc=$?
[ $rc -eq 1 ] || { cat "$T/err.txt"; fail "convert --heads 2 of a hostile pickle: exit $rc, want 1"; }
grep -q "evil_exec_in_model.pt: no tensors found in its state dict" "$T/err.txt" || { cat "$T/err.txt"; fail "no-tensor convert message"; }
[ ! -e "$T/evil_out.pt" ] || fail "a refused convert wrote $T/evil_out.pt"
[ -e "$MARK" ] && fail "hostile payload ran"
# one float viewed as [2^31, 2^31] through zero strides: refused as corrupt, naming the file, and no
# output (it once sized a buffer of 2^62 floats that wrapped to 0 bytes and was overrun)
"$BIN" convert "$T/h/zero_stride_huge.pt" "$T/zs_out.pt" --heads 2 2>"$T/err.txt"; rc=$?
[ $rc -eq 1 ] || { cat "$T/err.txt"; fail "convert of a zero-stride 2^62-element tensor: exit $rc, want 1"; }
[ "$(grep -c "error" "$T/err.txt")" -eq 1 ] && grep -q "zero_stride_huge.pt: .*the file is corrupt" "$T/err.txt" ||
  { cat "$T/err.txt"; fail "zero-stride convert message"; }
[ ! -e "$T/zs_out.pt" ] || fail "a refused convert wrote $T/zs_out.pt"
"$BIN" inspect "$T/h/short_storage.pt" 2>"$T/err.txt"; [ $? -eq 1 ] || fail "short storage must fail"
grep -q "declares 100" "$T/err.txt" || fail "short storage message"

# inspect runs two folders below nemo_out, so the member ../../escape.txt would land in nemo_out itself
# (from nemo_out it would land beside $T, where no check looks), and the absolute member names a
# path inside $T: every place a careless extraction could write is under $T/nemo_out or $T
mkdir -p "$T/nemo_out/a/b"
"$PY" - "$T" <<'EOF' || fail "nemo builder"
import io, sys, tarfile, torch, collections
T = sys.argv[1]
sd = collections.OrderedDict()
sd["bert_model.language_model.embedding.word_embeddings.weight"] = torch.zeros(8, 4)
sd["classifier.mlp.layer0.weight"] = torch.ones(3, 4)
buf = io.BytesIO(); torch.save(sd, buf)
with tarfile.open(T + "/m.nemo", "w:gz") as tf:
    for name, data in [("./model_config.yaml", b"hidden_size: 4\n"), ("./model_weights.ckpt", buf.getvalue()),
                       ("../../escape.txt", b"x"), (T + "/abs_escape.txt", b"y")]:
        ti = tarfile.TarInfo(name); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
EOF
(cd "$T/nemo_out/a/b" && "$BIN" inspect "$T/m.nemo" > "$T/nemo.txt") || fail "inspect .nemo"
grep -q "classifier.mlp.layer0.weight .*float32  \[3, 4\]" "$T/nemo.txt" || fail ".nemo weights not listed"
grep -q "hidden_size: 4" "$T/nemo.txt" || fail ".nemo config not shown"
grep -qF -- "$T/abs_escape.txt" "$T/nemo.txt" && grep -qF -- "../../escape.txt" "$T/nemo.txt" || fail "the hostile members are not listed"
[ -e "$T/nemo_out/escape.txt" ] || [ -e "$T/abs_escape.txt" ] && fail ".nemo member extracted to disk"
[ -z "$(find "$T/nemo_out" ! -type d)" ] || fail "inspect wrote files: $(find "$T/nemo_out" ! -type d)"
echo "PASSED"
