#!/usr/bin/env python3
"""Megatron-BERT encoder forward in plain PyTorch on the merged weights that
make_megatron_ckpt.py wrote (expected.idx/.f32), for tests/unit/test_ckpt_forward.c.

usage: ckpt_forward_ref.py CKPT_DIR HEADS BATCH.txt OUT.f32
BATCH.txt: "B T" then B lines of T token ids, then B lines of T mask values (1 = real token).
OUT.f32: final hidden states (after final_layernorm), float32 [B, T, H]. Pre-LN, erf GELU,
eps 1e-5, scores QK^T/sqrt(hn), padded keys masked (valid positions are what tests compare).
QKV rows of the merged weights are in [heads, 3, head_dim] order.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

d, heads, batch_path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = np.fromfile(os.path.join(d, "expected.f32"), dtype="<f4")
W = {}
for line in open(os.path.join(d, "expected.idx")):
    name, nd, d0, d1, off = line.split()
    nd, d0, d1, off = int(nd), int(d0), int(d1), int(off)
    n = d0 * d1
    a = raw[off:off + n].reshape((d0, d1) if nd == 2 else (d0,))
    W[name] = torch.tensor(a, dtype=torch.float64)

tok = open(batch_path).read().split()
B, T = int(tok[0]), int(tok[1])
vals = [int(x) for x in tok[2:]]
ids = torch.tensor(vals[:B * T]).reshape(B, T)
mask = torch.tensor(vals[B * T:2 * B * T]).reshape(B, T)

p = "language_model."
x = W[p + "embedding.word_embeddings.weight"][ids] + W[p + "embedding.position_embeddings.weight"][:T][None] + \
    W[p + "embedding.tokentype_embeddings.weight"][0][None, None]
H = x.shape[-1]
hn = H // heads
L = 1 + max(int(k.split(".")[3]) for k in W if k.startswith(p + "transformer.layers."))
eps = 1e-5
key_mask = (mask[:, None, None, :] == 0)
for l in range(L):
    q = p + "transformer.layers.%d." % l
    h = F.layer_norm(x, (H,), W[q + "input_layernorm.weight"], W[q + "input_layernorm.bias"], eps)
    qkv = h @ W[q + "attention.query_key_value.weight"].T + W[q + "attention.query_key_value.bias"]
    qkv = qkv.reshape(B, T, heads, 3, hn)
    Q, K, V = qkv[..., 0, :], qkv[..., 1, :], qkv[..., 2, :]  # [B,T,n,hn]
    Q, K, V = (t.permute(0, 2, 1, 3) for t in (Q, K, V))
    s = Q @ K.transpose(-1, -2) / math.sqrt(hn)
    s = s.masked_fill(key_mask, -10000.0)
    a = torch.softmax(s, dim=-1) @ V  # [B,n,T,hn]
    a = a.permute(0, 2, 1, 3).reshape(B, T, H)
    x = x + a @ W[q + "attention.dense.weight"].T + W[q + "attention.dense.bias"]
    h = F.layer_norm(x, (H,), W[q + "post_attention_layernorm.weight"], W[q + "post_attention_layernorm.bias"], eps)
    m = F.gelu(h @ W[q + "mlp.dense_h_to_4h.weight"].T + W[q + "mlp.dense_h_to_4h.bias"])
    x = x + m @ W[q + "mlp.dense_4h_to_h.weight"].T + W[q + "mlp.dense_4h_to_h.bias"]
x = F.layer_norm(x, (H,), W[p + "transformer.final_layernorm.weight"], W[p + "transformer.final_layernorm.bias"], eps)
x.float().numpy().astype("<f4").tofile(out)
