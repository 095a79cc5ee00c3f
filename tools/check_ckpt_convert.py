#!/usr/bin/env python3
"""Independent checks of `megatune convert` outputs (tests/e2e/test_ckpt_convert.sh).

usage: check_ckpt_convert.py DIR
DIR/v0        source: make_megatron_ckpt.py --version 0 --tp 2 (expected.idx/.f32 = merged weights)
DIR/tp4       megatune convert v0 tp4 --tp 4      (Megatron folder, version 3.0)
DIR/hf.safetensors  megatune convert tp4 hf.safetensors
DIR/back.pt   megatune convert hf.safetensors back.pt
Merging is redone here in Python from Megatron's rules, not with megatune code.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

D = sys.argv[1]
HEADS = 4


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


def expected(d):
    raw = np.fromfile(os.path.join(d, "expected.f32"), dtype="<f4")
    out = {}
    for line in open(os.path.join(d, "expected.idx")):
        name, nd, d0, d1, off = line.split()
        nd, d0, d1, off = int(nd), int(d0), int(d1), int(off)
        out[name] = torch.tensor(raw[off:off + d0 * d1].reshape((d0, d1) if nd == 2 else (d0,)))
    return out


E = expected(os.path.join(D, "v0"))


def flat(prefix, d, out):
    for k, v in d.items():
        n = prefix + k
        if isinstance(v, dict):
            flat(n + ".", v, out)
        elif torch.is_tensor(v):
            out[n] = v
    return out


def rule(name):
    if name.endswith("word_embeddings.weight") or name == "lm_head.bias":
        return 0
    if "query_key_value" in name or "dense_h_to_4h" in name:
        return 0
    if name.endswith("attention.dense.weight") or name.endswith("dense_4h_to_h.weight"):
        return 1
    return None


# ---- TP=4 Megatron folder, version 3.0 ----
root = os.path.join(D, "tp4")
if open(os.path.join(root, "latest_checkpointed_iteration.txt")).read().strip() != "release":
    fail("tracker file")
shards = []
for r in range(4):
    sd = torch.load(os.path.join(root, "release", "mp_rank_%02d" % r, "model_optim_rng.pt"))
    if sd["checkpoint_version"] != 3.0:
        fail("checkpoint_version %r" % sd["checkpoint_version"])
    if not isinstance(sd["args"], argparse.Namespace) or sd["args"].tensor_model_parallel_size != 4 \
            or sd["args"].num_attention_heads != HEADS or sd["args"].num_layers != 2:
        fail("args %r" % sd["args"])
    lm = sd["model"]["language_model"]
    if set(lm.keys()) != {"embedding", "transformer", "pooler"}:
        fail("language_model keys %s" % list(lm.keys()))
    if set(sd["model"].keys()) != {"language_model", "lm_head", "binary_head"}:
        fail("model keys %s" % list(sd["model"].keys()))
    shards.append(flat("", sd["model"], {}))
merged = {}
for name in shards[0]:
    dim = rule(name)
    merged[name] = shards[0][name] if dim is None else torch.cat([s[name] for s in shards], dim=dim)
if set(merged) != set(E):
    fail("names differ: %s" % sorted(set(merged) ^ set(E)))
for name, want in E.items():
    got = merged[name]
    if got.dtype != torch.float32 or list(got.shape) != list(want.shape) or not torch.equal(got, want):
        fail("tp4 %s: shape %s vs %s, max diff %s" % (name, list(got.shape), list(want.shape),
                                                    (got.float() - want).abs().max() if got.shape == want.shape else "-"))
# per-rank QKV must be whole heads [np,3,hn]: rank 1 holds head 1 of the global [n,3,hn] order
q = "language_model.transformer.layers.0.attention.query_key_value.weight"
if not torch.equal(shards[1][q], E[q][48:96]):
    fail("rank 1 QKV rows are not global rows 48:96")

# ---- safetensors with MegatronBert names, parsed with json + struct ----
buf = open(os.path.join(D, "hf.safetensors"), "rb").read()
(hl,) = struct.unpack("<Q", buf[:8])
hdr = json.loads(buf[8:8 + hl])
data = buf[8 + hl:]
meta = hdr.pop("__metadata__")
if meta.get("num_attention_heads") != "4":
    fail("metadata %r" % meta)


def st(name):
    v = hdr[name]
    if v["dtype"] != "F32":
        fail("%s dtype %s" % (name, v["dtype"]))
    b, e = v["data_offsets"]
    return torch.tensor(np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"]))


H, hn = 64, 16
for l in range(2):
    p = "language_model.transformer.layers.%d." % l
    h = "bert.encoder.layer.%d." % l
    qkv_w = E[p + "attention.query_key_value.weight"].view(HEADS, 3, hn, H)
    qkv_b = E[p + "attention.query_key_value.bias"].view(HEADS, 3, hn)
    for k, part in enumerate(("query", "key", "value")):
        if not torch.equal(st(h + "attention.self.%s.weight" % part), qkv_w[:, k].reshape(H, H)):
            fail("%s %s weight" % (h, part))
        if not torch.equal(st(h + "attention.self.%s.bias" % part), qkv_b[:, k].reshape(H)):
            fail("%s %s bias" % (h, part))
    pairs = [("attention.ln.weight", "input_layernorm.weight"), ("ln.bias", "post_attention_layernorm.bias"),
             ("attention.output.dense.weight", "attention.dense.weight"), ("intermediate.dense.weight", "mlp.dense_h_to_4h.weight"),
             ("output.dense.weight", "mlp.dense_4h_to_h.weight"), ("output.dense.bias", "mlp.dense_4h_to_h.bias")]
    for hf, meg in pairs:
        if not torch.equal(st(h + hf), E[p + meg]):
            fail("%s%s" % (h, hf))
for hf, meg in [("bert.embeddings.word_embeddings.weight", "language_model.embedding.word_embeddings.weight"),
                ("bert.embeddings.token_type_embeddings.weight", "language_model.embedding.tokentype_embeddings.weight"),
                ("bert.encoder.ln.weight", "language_model.transformer.final_layernorm.weight"),
                ("bert.pooler.dense.weight", "language_model.pooler.dense.weight"),
                ("cls.predictions.bias", "lm_head.bias"), ("cls.predictions.transform.LayerNorm.bias", "lm_head.layernorm.bias"),
                ("cls.predictions.transform.dense.weight", "lm_head.dense.weight"), ("cls.seq_relationship.weight", "binary_head.weight")]:
    if not torch.equal(st(hf), E[meg]):
        fail("safetensors %s" % hf)

# ---- TP=2 fp16 folder (--dtype fp16): source values are fp16, so exact ----
sh = [flat("", torch.load(os.path.join(D, "tp2h", "release", "mp_rank_%02d" % r, "model_optim_rng.pt"))["model"], {})
      for r in range(2)]
for name, want in E.items():
    dim = rule(name)
    got = sh[0][name] if dim is None else torch.cat([s[name] for s in sh], dim=dim)
    if got.dtype != torch.float16 or not torch.equal(got.float(), want):
        fail("tp2h %s (%s)" % (name, got.dtype))

# ---- back to one Megatron .pt ----
sd = torch.load(os.path.join(D, "back.pt"))
m = flat("", sd["model"], {})
for name, want in E.items():
    if not torch.equal(m[name], want):
        fail("back.pt %s" % name)
print("convert OK")
