#!/usr/bin/env python3
"""PyTorch reference for megatune's model, written from scratch (no transformers).

Reads a JSON config and a tensor file (initial weights by their NeMo names, plus one batch) that a
megatune test wrote, and writes a tensor file with the reference's logits, loss and the gradient of
every parameter, and optionally a training trace (AdamW + NeMo schedule + gradient clipping).

Tensor file format ("MTTF", little-endian), shared with tests/parity/parity_util.h:
    b"MTTF", u32 version (1), u32 count, then per tensor:
    u32 name_len, name bytes (UTF-8), u32 dtype (0 f32, 1 i32, 2 f64), u32 ndim, i64 dims[ndim], raw data.

Usage: torch_ref.py --config c.json --input in.mttf --output out.mttf [--autocast bf16]
--autocast bf16 runs the step(s) in float32 under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
CPU mixed precision (matrix products in bf16, fp32 parameters and gradients): the peer of
trainer.precision=bf16.
Exit code 77 when torch cannot be imported (the calling test reports itself skipped).
"""
import argparse
import json
import math
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # pragma: no cover - environment dependent
    print(f"torch_ref.py: cannot import torch/numpy: {e}", file=sys.stderr)
    sys.exit(77)

DT = {0: np.float32, 1: np.int32, 2: np.float64}
DT_CODE = {np.dtype(np.float32): 0, np.dtype(np.int32): 1, np.dtype(np.float64): 2}


def read_mttf(path):
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"MTTF":
        raise SystemExit(f"{path}: not an MTTF tensor file")
    ver, count = struct.unpack_from("<II", data, 4)
    off = 12
    for _ in range(count):
        (nl,) = struct.unpack_from("<I", data, off)
        off += 4
        name = data[off:off + nl].decode()
        off += nl
        dt, nd = struct.unpack_from("<II", data, off)
        off += 8
        dims = struct.unpack_from("<%dq" % nd, data, off)
        off += 8 * nd
        n = int(np.prod(dims)) if nd else 1
        arr = np.frombuffer(data, dtype=DT[dt], count=n, offset=off).reshape(dims)
        off += arr.nbytes
        out[name] = arr.copy()
    return out


def write_mttf(path, tensors):
    with open(path, "wb") as f:
        f.write(b"MTTF" + struct.pack("<II", 1, len(tensors)))
        for name, arr in tensors.items():
            arr = np.ascontiguousarray(arr)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<II", DT_CODE[arr.dtype], arr.ndim))
            f.write(struct.pack("<%dq" % arr.ndim, *arr.shape))
            f.write(arr.tobytes())


class Ref:
    def __init__(self, cfg, tensors, dtype):
        self.c = cfg
        self.dtype = dtype
        self.P = {}
        self.order = []
        for name, arr in tensors.items():
            if name.startswith("param/"):
                n = name[len("param/"):]
                self.P[n] = torch.tensor(arr, dtype=dtype, requires_grad=True)
                self.order.append(n)
        lm = "bert_model.language_model."
        self.lm = lm

    def p(self, name):
        return self.P[name]

    def gelu(self, x):
        g = self.c["gelu"]
        if g == "erf":
            return F.gelu(x)
        if g == "tanh":
            return F.gelu(x, approximate="tanh")
        if g == "onnx":
            return 0.5 * x * (1.0 + torch.erf(x / 1.41421))
        raise ValueError(g)

    def head_act(self, x, a=None):
        a = a or self.c["head_activation"]
        if a == "relu":
            return torch.relu(x)
        if a == "gelu":
            return F.gelu(x)
        if a == "tanh":
            return torch.tanh(x)
        raise ValueError(a)

    def ln(self, x, prefix):
        C = self.c["hidden_size"]
        return F.layer_norm(x, (C,), self.p(prefix + ".weight"), self.p(prefix + ".bias"), self.c["layernorm_eps"])

    def attention(self, x, l, mask):
        c = self.c
        B, T, C = x.shape
        NH = c["num_attention_heads"]
        HS = C // NH
        pre = f"{self.lm}transformer.layers.{l}.attention."
        qkv = F.linear(x, self.p(pre + "query_key_value.weight"), self.p(pre + "query_key_value.bias"))
        # checkpoint_version >= 2: rows are [heads, 3, head_dim]
        qkv = qkv.view(B, T, NH, 3, HS)
        q = qkv[:, :, :, 0, :].permute(0, 2, 1, 3)
        k = qkv[:, :, :, 1, :].permute(0, 2, 1, 3)
        v = qkv[:, :, :, 2, :].permute(0, 2, 1, 3)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HS)
        if c["arch"] == "bert":
            # Hugging Face BertModel: (1 - mask) * -10000 added over keys only
            scores = scores + ((1.0 - mask) * -10000.0)[:, None, None, :]
        else:
            m2 = (mask[:, None, :] * mask[:, :, None]).unsqueeze(1)  # (B,1,T,T), Megatron's outer product
            scores = scores.masked_fill(m2 < 0.5, -10000.0)
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, C)
        return F.linear(ctx, self.p(pre + "dense.weight"), self.p(pre + "dense.bias"))

    def mlp(self, x, l):
        pre = f"{self.lm}transformer.layers.{l}.mlp."
        h = self.gelu(F.linear(x, self.p(pre + "dense_h_to_4h.weight"), self.p(pre + "dense_h_to_4h.bias")))
        return F.linear(h, self.p(pre + "dense_4h_to_h.weight"), self.p(pre + "dense_4h_to_h.bias"))

    def encoder(self, batch):
        c = self.c
        ids = torch.tensor(batch["input_ids"], dtype=torch.long)
        B, T = ids.shape
        types = torch.tensor(batch.get("token_type_ids", np.zeros((B, T), np.int32)), dtype=torch.long)
        mask = torch.tensor(batch.get("attention_mask", np.ones((B, T), np.int32)) != 0, dtype=self.dtype)
        lm = self.lm
        x = (F.embedding(ids, self.p(lm + "embedding.word_embeddings.weight"))
             + self.p(lm + "embedding.position_embeddings.weight")[:T][None]
             + F.embedding(types, self.p(lm + "embedding.tokentype_embeddings.weight")))
        post = c["arch"] == "bert"
        if post:
            x = self.ln(x, lm + "embedding.layernorm")
        for l in range(c["num_layers"]):
            pre = f"{lm}transformer.layers.{l}."
            if post:
                h = self.ln(x + self.attention(x, l, mask), pre + "post_attention_layernorm")
                x = self.ln(h + self.mlp(h, l), pre + "post_mlp_layernorm")
            else:
                h = x + self.attention(self.ln(x, pre + "input_layernorm"), l, mask)
                x = h + self.mlp(self.ln(h, pre + "post_attention_layernorm"), l)
        if not post:
            x = self.ln(x, lm + "transformer.final_layernorm")
        return x

    def mlp_head(self, x, n, pfx, act):
        # NeMo MultiLayerPerceptron: Linear modules at layer0, layer2, ...; activation between
        for i in range(n):
            x = F.linear(x, self.p(f"{pfx}.layer{2 * i}.weight"), self.p(f"{pfx}.layer{2 * i}.bias"))
            if i < n - 1:
                x = self.head_act(x, act)
        return x

    def head(self, hidden):
        c = self.c
        x = hidden
        if c["head"] in ("sequence", "regression"):
            x = x[:, 0]
        pfx = c["head_prefix"] + "." + c.get("head_mlp", "mlp")
        out = self.mlp_head(x, c["head_num_layers"], pfx, c["head_activation"])
        if c.get("head2", "none") == "none":
            return out
        # second head: a TokenClassifier on every token (P&C capit_classifier, intent/slot slot_mlp);
        # dropout is 0 in the parity cases, so sharing it or not makes no difference here
        pfx2 = c["head2_prefix"] + "." + c.get("head2_mlp", "mlp")
        return out, self.mlp_head(hidden, c["head2_num_layers"], pfx2, c["head2_activation"])

    def token_ce(self, logits, batch, labels_key, weights_key):
        # NeMo CrossEntropyLoss(logits_ndim=3) with loss_mask: positions where loss_mask > 0.5
        labels = torch.tensor(batch[labels_key], dtype=torch.long).reshape(-1)
        if "loss_mask" in batch:
            lm = torch.tensor(batch["loss_mask"]).reshape(-1) > 0.5
        elif "attention_mask" in batch:
            lm = torch.tensor(batch["attention_mask"]).reshape(-1) != 0
        else:
            lm = torch.ones_like(labels, dtype=torch.bool)
        w = torch.tensor(batch[weights_key], dtype=self.dtype) if weights_key in batch else None
        lg = logits.reshape(-1, logits.shape[-1])
        return F.cross_entropy(lg[lm], labels[lm], weight=w)

    def loss(self, logits, batch):
        c = self.c
        if c.get("head2", "none") != "none":
            # NeMo AggregatorLoss(num_inputs=2, weights): w1*loss_1 + w2*loss_2
            l1 = self.loss1(logits[0], batch)
            l2 = self.token_ce(logits[1], batch, "labels2", "class_weights2")
            return c.get("head_loss_weight", 1.0) * l1 + c.get("head2_loss_weight", 1.0) * l2
        return self.loss1(logits, batch)

    def loss1(self, logits, batch):
        c = self.c
        h = c["head"]
        if h == "token":
            return self.token_ce(logits, batch, "labels", "class_weights")
        if h == "sequence":
            labels = torch.tensor(batch["labels"], dtype=torch.long)
            w = torch.tensor(batch["class_weights"], dtype=self.dtype) if "class_weights" in batch else None
            return F.cross_entropy(logits, labels, weight=w)
        if h == "regression":
            return F.mse_loss(logits.view(-1), torch.tensor(batch["targets"], dtype=self.dtype))
        if h == "qa":
            s = torch.tensor(batch["start_positions"], dtype=torch.long)
            e = torch.tensor(batch["end_positions"], dtype=torch.long)
            return (F.cross_entropy(logits[..., 0], s) + F.cross_entropy(logits[..., 1], e)) / 2
        raise ValueError(h)

    def step(self, batch):
        for p in self.P.values():
            p.grad = None
        logits = self.head(self.encoder(batch))
        loss = self.loss(logits, batch)
        loss.backward()
        return logits, loss


def nemo_lr(i, lr, max_steps, warmup, kind, min_lr=0.0):
    # NeMo v1.0.0 lr_scheduler.py as restated in clarifications.md (written independently of src/model/sched.c)
    if warmup > 0 and i <= warmup:
        return lr * (i + 1) / (warmup + 1)
    if i > max_steps:
        return min_lr
    if kind == "WarmupAnnealing":
        return lr * max((i / max_steps - 1) / (warmup / max_steps - 1), 0.0)
    if kind == "constant":
        return lr
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--autocast", default="none", choices=["none", "bf16"])
    args = ap.parse_args()
    if args.autocast == "bf16":
        args.dtype = "float32"
    with open(args.config) as f:
        cfg = json.load(f)
    tensors = read_mttf(args.input)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.set_num_threads(1)
    ref = Ref(cfg, tensors, dtype)
    batch = {k[len("batch/"):]: v for k, v in tensors.items() if k.startswith("batch/")}
    # A trace may run over several batches in order: tensors "trace_batch<k>/<field>", step i uses
    # batch i % count (the data order of a real fine-tune); without them every step uses "batch/".
    trace_batches = []
    while any(k.startswith("trace_batch%d/" % len(trace_batches)) for k in tensors):
        pre = "trace_batch%d/" % len(trace_batches)
        trace_batches.append({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
    if not trace_batches:
        trace_batches = [batch]
    out = {}
    trace = cfg.get("trace")
    if args.autocast == "bf16":
        step_plain = ref.step

        def step_autocast(b):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return step_plain(b)
        ref.step = step_autocast
    if not trace:
        logits, loss = ref.step(batch)
        if isinstance(logits, tuple):  # two heads: one span, the first head's logits then the second's
            logits = torch.cat([logits[0].float().reshape(-1), logits[1].float().reshape(-1)])
        out["logits"] = logits.detach().float().numpy().astype(np.float32)  # (bf16 under --autocast)
        out["loss"] = np.array([loss.item()], np.float32)
        for n in ref.order:
            g = ref.P[n].grad
            out["grad/" + n] = (g if g is not None else torch.zeros_like(ref.P[n])).numpy().astype(np.float32)
    else:
        steps = trace["steps"]
        params = [ref.P[n] for n in ref.order]
        opt = torch.optim.AdamW(params, lr=trace["lr"], betas=(trace["beta1"], trace["beta2"]), eps=trace["eps"],
                                weight_decay=trace["weight_decay"])
        warmup = int(trace["warmup_ratio"] * steps)
        losses, norms, lrs = [], [], []
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            _, loss = ref.step(trace_batches[i % len(trace_batches)])
            norm = torch.nn.utils.clip_grad_norm_(params, trace["clip"])
            lr = nemo_lr(i, trace["lr"], steps, warmup, trace["sched"])
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            losses.append(loss.item())
            norms.append(float(norm))
            lrs.append(lr)
        out["trace/loss"] = np.array(losses, np.float32)
        out["trace/grad_norm"] = np.array(norms, np.float32)
        out["trace/lr"] = np.array(lrs, np.float32)
        for n in ref.order:
            out["final/" + n] = ref.P[n].detach().numpy().astype(np.float32)
    write_mttf(args.output, out)


if __name__ == "__main__":
    main()
