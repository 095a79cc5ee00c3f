#!/usr/bin/env python3
"""PyTorch peer of bench_train.c: the same pre-LN Megatron-BERT + QA head, fp32, AdamW, clipping.

Tuned as /work/shared/reference/pytorch-baseline.md says: torch.set_num_threads(N) (default 2);
bench_train.sh runs it with OMP_WAIT_POLICY=PASSIVE and, when installed, the OpenMP OpenBLAS and
tcmalloc. Prints "RESULT ms_per_step=..." like the C driver.
--ckpt N runs the first N encoder layers under torch.utils.checkpoint.checkpoint (training only; N past
--layers = all), as bench_train.c --ckpt N does: each layer's forward runs again before its backward,
with the dropout masks replayed (preserve_rng_state, checkpoint's default), so the loss trace is that of
--ckpt 0. Everything else is the same best setting.
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint


class Layer(nn.Module):
    def __init__(self, h, nh, p):
        super().__init__()
        self.nh = nh
        self.ln1 = nn.LayerNorm(h, eps=1e-5)
        self.qkv = nn.Linear(h, 3 * h)
        self.dense = nn.Linear(h, h)
        self.ln2 = nn.LayerNorm(h, eps=1e-5)
        self.fc1 = nn.Linear(h, 4 * h)
        self.fc2 = nn.Linear(4 * h, h)
        self.p = p

    def forward(self, x, mask2):
        B, T, C = x.shape
        hs = C // self.nh
        qkv = self.qkv(self.ln1(x)).view(B, T, self.nh, 3, hs)
        q, k, v = [qkv[:, :, :, i].permute(0, 2, 1, 3) for i in range(3)]
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hs)
        s = s.masked_fill(mask2, -10000.0)
        a = F.dropout(torch.softmax(s, -1), self.p, self.training)
        ctx = torch.matmul(a, v).permute(0, 2, 1, 3).reshape(B, T, C)
        h = x + F.dropout(self.dense(ctx), self.p, self.training)
        return h + F.dropout(self.fc2(F.gelu(self.fc1(self.ln2(h)))), self.p, self.training)


class Model(nn.Module):
    def __init__(self, vocab, h, layers, nh, maxpos, p, ckpt=0):
        super().__init__()
        self.ckpt = ckpt  # layers [0, ckpt) recompute their forward in backward (training only)
        self.wte = nn.Embedding(vocab, h)
        self.wpe = nn.Embedding(maxpos, h)
        self.wtt = nn.Embedding(2, h)
        self.layers = nn.ModuleList([Layer(h, nh, p) for _ in range(layers)])
        self.lnf = nn.LayerNorm(h, eps=1e-5)
        self.qa = nn.Linear(h, 2)
        self.p = p

    def forward(self, ids, types, mask):
        B, T = ids.shape
        x = self.wte(ids) + self.wpe.weight[:T][None] + self.wtt(types)
        x = F.dropout(x, self.p, self.training)
        m = mask.float()
        mask2 = ((m[:, None, :] * m[:, :, None]) < 0.5).unsqueeze(1)
        for i, l in enumerate(self.layers):
            if i < self.ckpt and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(l, x, mask2)
            else:
                x = l(x, mask2)
        return self.qa(self.lnf(x))


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(layers=12, hidden=768, heads=12, seq=128, batch=8, vocab=30522, steps=5, warmup=1,
                     threads=2).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--bf16", type=int, default=0, help="1: torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--infer", type=int, default=0, help="1: forward only, eval mode, no_grad")
    ap.add_argument("--ckpt", type=int, default=0,
                    help="checkpoint the activations of the first N layers (training only; N > layers: all)")
    ap.add_argument("--clip", type=float, default=1.0, help="clip_grad_norm_ max norm; 0 = no clipping")
    a = ap.parse_args()
    if a.ckpt < 0:
        ap.error("--ckpt %d: give the number of layers to checkpoint, 0 (off) or more" % a.ckpt)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    vp = (a.vocab + 127) // 128 * 128
    model = Model(vp, a.hidden, a.layers, a.heads, max(512, a.seq), a.dropout, 0 if a.infer else a.ckpt)
    model.train(not a.infer)
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    types = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    st = torch.arange(a.batch) % a.seq
    en = (torch.arange(a.batch) + 3) % a.seq
    total = cpu = 0.0
    last = float("nan")
    for s in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        if a.infer:
            with torch.no_grad(), amp:
                model(ids, types, mask)
        else:
            opt.zero_grad(set_to_none=True)
            with amp:
                logits = model(ids, types, mask)
                loss = (F.cross_entropy(logits[..., 0], st) + F.cross_entropy(logits[..., 1], en)) / 2
            loss.backward()
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
        dt = time.perf_counter() - t0
        if not a.infer:
            last = loss.item()  # (outside the timed step)
        if s >= a.warmup:
            total += dt
            cpu += time.process_time() - c0
    ms = total / a.steps * 1e3
    n = a.batch * a.seq
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"pytorch {torch.__version__} {'infer' if a.infer else 'train'} {'bf16-autocast' if a.bf16 else 'fp32'} threads={a.threads} layers={a.layers} hidden={a.hidden} seq={a.seq} "
          f"batch={a.batch} ckpt={0 if a.infer else a.ckpt}: {ms:.1f} ms/step, {n / (ms / 1e3):.0f} tokens/s, "
          f"peak RSS {rss:.0f} MiB" + ("" if a.infer else f", loss {last:.6f}"))
    print(f"RESULT ms_per_step={ms:.3f} tokens_per_s={n / (ms / 1e3):.1f} rss_mib={rss:.0f} "
          f"cpu_ms_per_step={cpu / a.steps * 1e3:.3f}")


if __name__ == "__main__":
    main()
