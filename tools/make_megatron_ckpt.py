#!/usr/bin/env python3
"""Writes Megatron-LM BERT checkpoints laid out the way Megatron-LM saves them, for tests.

For each variant: <out>/<variant>/release/mp_rank_XX/model_optim_rng.pt (or iter_0000010/ plus
latest_checkpointed_iteration.txt), with nested dicts, OrderedDict leaves carrying _metadata, an
argparse Namespace under 'args', optimizer / lr-scheduler / RNG entries (numpy RNG tuple, torch
uint8 tensors), fp16 (or fp32) weights, checkpoint_version absent / 1.0 / 2.0 / 3.0 with QKV rows
in that version's per-rank order (version 0: strided slices), and TP = 1, 2, 4 shards.

Next to each checkpoint: expected.idx + expected.f32, the merged TP=1 weights in fp32 in the
layout a loader must produce (QKV rows as the global [heads, 3, head_dim] order; vocab rows as
many as the checkpoint holds). expected.idx lines: "name ndim d0 d1 float_offset".

usage: make_megatron_ckpt.py OUT [--matrix] [--version V] [--tp P] [--legacy] [--fp32 | --bf16]
       [--layers L --hidden H --heads N --vocab V --seq S] [--new-names] [--iter] [--bench]
"""
import argparse
import collections
import os
import random
import struct
import sys
import types

import numpy as np
import torch


def fake_module(name):
    """Registers an importable module so pickle can name classes from Megatron packages."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        n = ".".join(parts[:i])
        if n not in sys.modules:
            sys.modules[n] = types.ModuleType(n)
    return sys.modules[name]


_ls = fake_module("megatron.fp16.loss_scaler")


class DynamicLossScaler:
    def __init__(self):
        self.cur_scale = 4096.0
        self.cur_iter = 10
        self.scale_window = 1000


DynamicLossScaler.__module__ = "megatron.fp16.loss_scaler"
_ls.DynamicLossScaler = DynamicLossScaler

import enum

_en = fake_module("megatron.model.enums")


class AttnMaskType(enum.Enum):
    padding = 1
    causal = 2


AttnMaskType.__module__ = "megatron.model.enums"
_en.AttnMaskType = AttnMaskType


def od(items):
    d = collections.OrderedDict(items)
    d._metadata = collections.OrderedDict([("", {"version": 1})])
    return d


def pad_vocab(v, tp, div=128):
    m = div * tp
    return (v + m - 1) // m * m


def master_weights(L, H, N, V, S, Vp, seed, dtype):
    """Global TP=1 weights (QKV in the [N,3,hn] order) rounded through the storage dtype."""
    g = torch.Generator().manual_seed(seed)
    F = 4 * H

    def r(*shape, scale=0.05, offset=0.0):
        t = torch.randn(*shape, generator=g) * scale + offset
        return t.to(dtype).float()

    w = collections.OrderedDict()
    w["language_model.embedding.word_embeddings.weight"] = r(Vp, H)
    w["language_model.embedding.position_embeddings.weight"] = r(S, H)
    w["language_model.embedding.tokentype_embeddings.weight"] = r(2, H)
    for i in range(L):
        p = "language_model.transformer.layers.%d." % i
        w[p + "input_layernorm.weight"] = r(H, offset=1.0)
        w[p + "input_layernorm.bias"] = r(H)
        w[p + "attention.query_key_value.weight"] = r(3 * H, H)
        w[p + "attention.query_key_value.bias"] = r(3 * H)
        w[p + "attention.dense.weight"] = r(H, H)
        w[p + "attention.dense.bias"] = r(H)
        w[p + "post_attention_layernorm.weight"] = r(H, offset=1.0)
        w[p + "post_attention_layernorm.bias"] = r(H)
        w[p + "mlp.dense_h_to_4h.weight"] = r(F, H)
        w[p + "mlp.dense_h_to_4h.bias"] = r(F)
        w[p + "mlp.dense_4h_to_h.weight"] = r(H, F)
        w[p + "mlp.dense_4h_to_h.bias"] = r(H)
    w["language_model.transformer.final_layernorm.weight"] = r(H, offset=1.0)
    w["language_model.transformer.final_layernorm.bias"] = r(H)
    w["language_model.pooler.dense.weight"] = r(H, H)
    w["language_model.pooler.dense.bias"] = r(H)
    w["lm_head.bias"] = r(Vp)
    w["lm_head.dense.weight"] = r(H, H)
    w["lm_head.dense.bias"] = r(H)
    w["lm_head.layernorm.weight"] = r(H, offset=1.0)
    w["lm_head.layernorm.bias"] = r(H)
    w["binary_head.weight"] = r(2, H)
    w["binary_head.bias"] = r(2)
    return w


def split_rule(name):
    if name.endswith("word_embeddings.weight") or name == "lm_head.bias":
        return "vocab", 0
    if "query_key_value" in name:
        return "qkv", 0
    if "dense_h_to_4h" in name:
        return "col", 0
    if name.endswith("attention.dense.weight") or name.endswith("dense_4h_to_h.weight"):
        return "row", 1
    return "rep", -1


def shard(name, t, tp, rank, version, N):
    rule, dim = split_rule(name)
    if rule == "rep":
        return t
    if rule != "qkv":
        return torch.chunk(t, tp, dim=dim)[rank].contiguous()
    rows = t.shape[0]
    hn = rows // (3 * N)
    npr = N // tp
    rest = t.shape[1:]
    g = t.reshape(N, 3, hn, *rest)[rank * npr:(rank + 1) * npr]  # [np,3,hn,...]
    if version >= 2:
        loc = g
    elif version == 1:
        loc = g.transpose(1, 2)  # [np,hn,3,...]
    else:
        loc = g.transpose(0, 1)  # [3,np,hn,...]: the strided slice
    return loc.reshape(rows // tp, *rest).contiguous()


def make_args(L, H, N, V, S, Vp, tp, version):
    a = argparse.Namespace()
    a.num_layers = L
    a.hidden_size = H
    a.num_attention_heads = N
    a.max_position_embeddings = S
    a.seq_length = S
    a.make_vocab_size_divisible_by = 128
    a.padded_vocab_size = Vp
    a.tokenizer_type = "BertWordPieceLowerCase"
    a.fp16 = True
    a.lr = 1e-4
    a.attn_mask_type = AttnMaskType.padding
    if version >= 3:
        a.tensor_model_parallel_size = tp
        a.pipeline_model_parallel_size = 1
    else:
        a.model_parallel_size = tp
    return a


def rank_state(w, tp, rank, version, N, L, H, S, V, Vp, dtype, new_names, seed):
    sd = collections.OrderedDict()
    for k, v in w.items():
        sd[k] = shard(k, v, tp, rank, version, N).to(dtype)
    tkey = "encoder" if new_names else "transformer"

    def sub(prefix):
        return [(k[len(prefix):], v) for k, v in sd.items() if k.startswith(prefix)]

    tr = []
    for k, v in sub("language_model.transformer."):
        if new_names:
            k = k.replace(".attention.", ".self_attention.")
        tr.append((k, v))
    lm = {
        "embedding": {
            "word_embeddings": od(sub("language_model.embedding.word_embeddings.")),
            "position_embeddings": od(sub("language_model.embedding.position_embeddings.")),
            "tokentype_embeddings": od(sub("language_model.embedding.tokentype_embeddings.")),
        },
        tkey: od(tr),
        "pooler": od(sub("language_model.pooler.")),
    }
    model = {"language_model": lm, "lm_head": od(sub("lm_head.")), "binary_head": od(sub("binary_head."))}
    st = {}
    st["args"] = make_args(L, H, N, V, S, Vp, tp, version)
    if version > 0:
        st["checkpoint_version"] = float(version)
    st["iteration"] = 10
    st["model"] = model
    g = torch.Generator().manual_seed(seed + 100 + rank)
    fp32 = [v.float().clone() for v in list(sd.values())[:3]]
    if version == 0:
        st["optimizer"] = {
            "loss_scaler": DynamicLossScaler(),
            "dynamic_loss_scale": True,
            "overflow": False,
            "first_closure_call_this_step": True,
            "optimizer_state_dict": {"state": {0: {"exp_avg": torch.randn(4, generator=g), "step": 10}},
                                     "param_groups": [{"lr": 1e-4, "params": [0, 1, 2]}]},
            "fp32_from_fp16": [fp32],
        }
    else:
        st["optimizer"] = {
            "optimizer": {"state": {0: {"exp_avg": torch.randn(4, generator=g),
                                        "exp_avg_sq": torch.rand(4, generator=g), "step": 10}},
                          "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1, 2]}]},
            "grad_scaler": {"scale": torch.tensor([4096.0]), "growth_tracker": 3},
            "fp32_from_fp16_params": [fp32],
        }
    st["lr_scheduler"] = {"max_lr": 1e-4, "warmup_steps": 10, "num_steps": 10, "decay_style": "linear",
                          "decay_steps": 100, "min_lr": 0.0}
    random.seed(seed)
    np.random.seed(seed)
    st["random_rng_state"] = random.getstate()
    st["np_rng_state"] = np.random.get_state()
    st["torch_rng_state"] = torch.get_rng_state()
    st["cuda_rng_state"] = torch.get_rng_state()[:64].clone()
    st["rng_tracker_states"] = {"model-parallel-rng": torch.get_rng_state()[:32].clone()}
    return st


def write_expected(w, out):
    with open(os.path.join(out, "expected.idx"), "w") as idx, open(os.path.join(out, "expected.f32"), "wb") as f:
        off = 0
        for k, v in w.items():
            a = v.float().contiguous().numpy().astype("<f4")
            shape = list(a.shape) + [1] * (2 - a.ndim)
            idx.write("%s %d %d %d %d\n" % (k, a.ndim, shape[0], shape[1], off))
            f.write(a.tobytes())
            off += a.size


def make(out, version, tp, legacy, fp32, L, H, N, V, S, new_names=False, use_iter=False, seed=1234, expected=True,
         bf16=False):
    os.makedirs(out, exist_ok=True)
    dtype = torch.float32 if fp32 else torch.bfloat16 if bf16 else torch.float16
    Vp = pad_vocab(V, tp)
    w = master_weights(L, H, N, V, S, Vp, seed, dtype)
    if expected:
        write_expected(w, out)
    folder = "iter_0000010" if use_iter else "release"
    with open(os.path.join(out, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write("10" if use_iter else "release")
    for r in range(tp):
        d = os.path.join(out, folder, "mp_rank_%02d" % r)
        os.makedirs(d, exist_ok=True)
        st = rank_state(w, tp, r, version, N, L, H, S, V, Vp, dtype, new_names, seed)
        torch.save(st, os.path.join(d, "model_optim_rng.pt"), _use_new_zipfile_serialization=not legacy)


def make_flat(out, L, H, N, V, S, prefix, wrap, seed=1234):
    """A flat state dict in one file (BioMegatron's MegatronBERT.pt style, or NeMo's {'state_dict'})
    with no checkpoint_version: version-0 QKV order, fp16."""
    os.makedirs(out, exist_ok=True)
    Vp = pad_vocab(V, 1)
    w = master_weights(L, H, N, V, S, Vp, seed, torch.float16)
    write_expected(w, out)
    sd = collections.OrderedDict((prefix + k, shard(k, v, 1, 0, 0, N).half()) for k, v in w.items())
    torch.save({"state_dict": sd} if wrap else sd, os.path.join(out, "model.pt"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--matrix", action="store_true", help="all versions x TP 1,2,4 + legacy + new names")
    ap.add_argument("--version", type=int, default=3)
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--legacy", action="store_true")
    ap.add_argument("--fp32", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--new-names", action="store_true")
    ap.add_argument("--iter", action="store_true")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=300)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--no-expected", action="store_true")
    a = ap.parse_args()
    dims = (a.layers, a.hidden, a.heads, a.vocab, a.seq)
    if a.matrix:
        names = []
        for v in (0, 1, 2, 3):
            for tp in (1, 2, 4):
                n = "v%d_tp%d" % (v, tp)
                make(os.path.join(a.out, n), v, tp, False, False, *dims, use_iter=(tp == 2))
                names.append(n)
        make(os.path.join(a.out, "v0_tp2_legacy"), 0, 2, True, False, *dims)
        make(os.path.join(a.out, "v3_tp1_legacy"), 3, 1, True, False, *dims)
        make(os.path.join(a.out, "v3_tp2_newnames"), 3, 2, False, False, *dims, new_names=True)
        make(os.path.join(a.out, "v2_tp1_fp32"), 2, 1, False, True, *dims)
        make(os.path.join(a.out, "v3_tp2_bf16"), 3, 2, False, False, *dims, bf16=True)
        make_flat(os.path.join(a.out, "flat_biomegatron"), *dims, "", False)
        make_flat(os.path.join(a.out, "flat_nemo_wrapped"), *dims, "bert_model.", True)
        names += ["v0_tp2_legacy", "v3_tp1_legacy", "v3_tp2_newnames", "v2_tp1_fp32", "v3_tp2_bf16", "flat_biomegatron", "flat_nemo_wrapped"]
        with open(os.path.join(a.out, "variants.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        return
    make(a.out, a.version, a.tp, a.legacy, a.fp32, *dims, new_names=a.new_names, use_iter=a.iter,
         expected=not a.no_expected, bf16=a.bf16)


if __name__ == "__main__":
    main()
