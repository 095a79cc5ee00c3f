#!/usr/bin/env python3
"""PyTorch reference for megatune's optimizer, clipping and schedules.

Reads IN (written by tests/parity/test_optim_parity.c), runs torch.optim.Adam / AdamW with
torch.nn.utils.clip_grad_norm_ and NeMo's schedule formulas, writes OUT.

IN layout (little-endian): int32 n_tensors, int32 steps, int32 kind (0 adam, 1 adamw),
int32 decay_all, int32 sched (0 constant, 1 WarmupAnnealing, 2 SquareRootAnnealing,
3 CosineAnnealing), int32 warmup, float32 lr, float32 weight_decay, float32 clip, float32 min_lr;
then per tensor int32 numel, int32 ndim; then the initial values; then steps x grads.
OUT: steps x (float32 lr, float32 grad_norm, all parameter values).
"""
import math
import struct
import sys

import numpy as np
import torch


def nemo_lr(kind, base, min_lr, step, warmup, max_steps):
    # Written from NeMo's lr_scheduler.py (WarmupPolicy.get_lr and the _get_lr of each class).
    if warmup > 0 and step <= warmup:
        return base * (step + 1) / (warmup + 1)
    if kind == 0:
        return base
    if step > max_steps:
        return min_lr
    if kind == 1:
        mult = (step - warmup) / (max_steps - warmup)
        return min_lr + (1 - mult) * (base - min_lr)
    if kind == 2:
        return max(base * ((max_steps - step) / max_steps) ** 0.5, min_lr)
    if kind == 3:
        mult = 0.5 * (1 + math.cos(math.pi * (step - warmup) / (max_steps - warmup)))
        return (base - min_lr) * mult + min_lr
    raise ValueError(kind)


def main(inp, out):
    data = open(inp, "rb").read()
    n, steps, kind, decay_all, sched, warmup = struct.unpack_from("<6i", data, 0)
    lr, wd, clip, min_lr = struct.unpack_from("<4f", data, 24)
    off = 40
    sizes, decays = [], []
    for _ in range(n):
        numel, ndim = struct.unpack_from("<2i", data, off)
        off += 8
        sizes.append(numel)
        # Megatron's rule (_get_params_for_weight_decay_optimization; later Megatron-LM writes it as
        # name.endswith(".bias") or len(param.shape) == 1): no decay for biases and LayerNorm
        # weights and biases, which in a BERT are exactly the 1-D tensors
        decays.append(ndim > 1)
    total = sum(sizes)
    flat = np.frombuffer(data, dtype="<f4", count=total, offset=off).copy()
    off += 4 * total
    grads = np.frombuffer(data, dtype="<f4", count=total * steps, offset=off).reshape(steps, total)
    params, pos = [], 0
    for s in sizes:
        params.append(torch.nn.Parameter(torch.from_numpy(flat[pos:pos + s].copy())))
        pos += s
    if decay_all:
        groups = [{"params": params, "weight_decay": wd}]
    else:
        groups = [{"params": [p for p, d in zip(params, decays) if d], "weight_decay": wd},
                  {"params": [p for p, d in zip(params, decays) if not d], "weight_decay": 0.0}]
    cls = torch.optim.AdamW if kind == 1 else torch.optim.Adam
    opt = cls(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    torch.set_num_threads(1)
    with open(out, "wb") as f:
        for t in range(steps):
            pos = 0
            for p, s in zip(params, sizes):
                p.grad = torch.from_numpy(grads[t, pos:pos + s].copy())
                pos += s
            if clip > 0:
                norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
            else:
                norm = float(torch.norm(torch.stack([torch.norm(p.grad) for p in params])))
            cur = nemo_lr(sched, lr, min_lr, t, warmup, steps)
            for g in opt.param_groups:
                g["lr"] = cur
            opt.step()
            f.write(struct.pack("<2f", cur, norm))
            f.write(torch.cat([p.detach().reshape(-1) for p in params]).numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
