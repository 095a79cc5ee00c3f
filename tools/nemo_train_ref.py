#!/usr/bin/env python3
"""PyTorch re-run of a short megatune text-classification fine-tune, for the trainer parity test.

Starts from the weights of a .nemo written with trainer.max_steps=0 (the run's initial model),
rebuilds NeMo's text-classification features for a whitespace-tokenizable TSV ([CLS] words
[SEP], labels = the last token, header skipped), and trains with PyTorch: batches in file order
(shuffle off) padded to the longest, gradient accumulation (loss / accumulate, an optimizer step
every `accumulate` batches and at the epoch's last batch), clip_grad_norm_, torch.optim.AdamW and
NeMo's WarmupAnnealing schedule (tools/torch_ref.py's nemo_lr), dropout off. Validation loss = the
mean of the dev batch losses. Then compares every step's train_loss and lr, and every val_loss,
with megatune's metrics.csv.

usage: nemo_train_ref.py INIT.nemo METRICS.csv TRAIN.tsv DEV.tsv VOCAB --batch B --val-batch VB
         --accumulate A --max-steps S --val-every N --lr LR --wd WD --clip C --warmup-ratio R
         --max-seq-length L --hidden H --layers NL --heads NH [--qa]
With --qa, TRAIN/DEV are SQuAD features as `megatune data squad-features` prints them (checked
equal to tools/squad_features_ref.py), batches are padded to max_seq_length (as NeMo/BERT) with
segment ids, and the head is the 1-layer QA head with the span loss.
"""
import argparse
import csv
import io
import os
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import numpy as np
    import torch
    from torch_ref import Ref, nemo_lr
except Exception as e:  # pragma: no cover
    print("nemo_train_ref.py: cannot import torch: %s" % e, file=sys.stderr)
    sys.exit(77)


def load_nemo_weights(path):
    with tarfile.open(path, "r:gz") as t:
        data = t.extractfile("./model_weights.ckpt").read()
    sd = torch.load(io.BytesIO(data), map_location="cpu")
    return {"param/" + k: v.numpy() for k, v in sd.items()}


def features(path, vocab, max_len):
    rows = []
    for line in open(path, encoding="utf-8").read().splitlines():
        words = line.split()
        try:
            label = int(words[-1])
        except ValueError:
            continue  # header
        toks = [w.lower() for w in words[:-1]]
        missing = [w for w in toks if w not in vocab]
        if missing:
            sys.exit("nemo_train_ref.py: words outside the vocab (not whitespace-tokenizable): %s" % missing[:3])
        ids = [vocab["[CLS]"]] + [vocab[w] for w in toks][: max_len - 1] + [vocab["[SEP]"]]
        rows.append((ids, label))
    return rows


def squad_features(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        rows.append((list(map(int, f[2].split())), list(map(int, f[3].split())), int(f[4]), int(f[5])))
    return rows


def squad_batch(rows, L):
    ids = np.zeros((len(rows), L), np.int32)
    types = np.zeros((len(rows), L), np.int32)
    mask = np.zeros((len(rows), L), np.int32)
    for i, (r, t, _, _) in enumerate(rows):
        ids[i, : len(r)] = r
        types[i, : len(t)] = t
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": np.array([r[2] for r in rows], np.int32),
            "end_positions": np.array([r[3] for r in rows], np.int32)}


def batch_of(rows):
    if BATCH_QA:
        return squad_batch(rows, BATCH_QA)
    T = max(len(r[0]) for r in rows)
    ids = np.zeros((len(rows), T), np.int32)
    mask = np.zeros((len(rows), T), np.int32)
    for i, (r, _) in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": np.array([r[1] for r in rows], np.int32)}


BATCH_QA = 0  # max_seq_length when the features are SQuAD's


def main():
    global BATCH_QA
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", action="store_true")
    for k in ("nemo", "metrics", "train", "dev", "vocab"):
        ap.add_argument(k)
    for k in ("batch", "val_batch", "accumulate", "max_steps", "val_every", "max_seq_length", "hidden", "layers", "heads"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, required=True)
    for k in ("lr", "wd", "clip", "warmup_ratio"):
        ap.add_argument("--" + k.replace("_", "-"), type=float, required=True)
    # model.optim.betas / eps (NeMo's defaults unless the run set others)
    ap.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999])
    ap.add_argument("--eps", type=float, default=1e-8)
    # model.optim.name=adam: torch.optim.Adam (weight decay as L2 in the gradient), not AdamW;
    # model.optim.decay_all=false: Megatron's groups, no decay on 1-D tensors (biases, LayerNorm)
    ap.add_argument("--adam", action="store_true")
    ap.add_argument("--no-decay-1d", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    vocab = {w: i for i, w in enumerate(open(a.vocab, encoding="utf-8").read().splitlines())}
    if a.qa:
        BATCH_QA = a.max_seq_length
        train, dev = squad_features(a.train), squad_features(a.dev)
    else:
        train = features(a.train, vocab, a.max_seq_length)
        dev = features(a.dev, vocab, a.max_seq_length)
    cfg = {"hidden_size": a.hidden, "num_layers": a.layers, "num_attention_heads": a.heads, "gelu": "erf",
           "head_activation": "relu", "layernorm_eps": 1e-5, "arch": "megatron", "head": "qa" if a.qa else "sequence",
           "head_num_layers": 1 if a.qa else 2, "head_prefix": "classifier"}
    ref = Ref(cfg, load_nemo_weights(a.nemo), torch.float64)
    params = [ref.P[n] for n in ref.order]
    groups = [{"params": params, "weight_decay": a.wd}]
    if a.no_decay_1d:
        groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": a.wd},
                  {"params": [p for p in params if p.dim() == 1], "weight_decay": 0.0}]
    opt = (torch.optim.Adam if a.adam else torch.optim.AdamW)(groups, lr=a.lr, betas=tuple(a.betas), eps=a.eps)
    warmup = int(a.warmup_ratio * a.max_steps)
    bpe = (len(train) + a.batch - 1) // a.batch

    def evaluate():
        with torch.no_grad():
            losses = [ref.loss(ref.head(ref.encoder(batch_of(dev[i:i + a.val_batch]))), batch_of(dev[i:i + a.val_batch])).item()
                      for i in range(0, len(dev), a.val_batch)]
        return sum(losses) / len(losses)

    logged = {}
    step, group = 0, []
    for p in params:
        p.grad = None
    while step < a.max_steps:
        for b in range(bpe):
            batch = batch_of(train[b * a.batch:(b + 1) * a.batch])
            loss = ref.loss(ref.head(ref.encoder(batch)), batch)
            (loss / a.accumulate).backward()
            group.append(loss.item())
            if (b + 1) % a.accumulate and b + 1 != bpe:
                continue
            torch.nn.utils.clip_grad_norm_(params, a.clip)
            lr = nemo_lr(step, a.lr, a.max_steps, warmup, "WarmupAnnealing")
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            for p in params:
                p.grad = None
            step += 1
            before = b + 1 - len(group)
            row = {"train_loss": sum(group) / len(group), "lr": lr}
            group = []
            if (b + 1) // a.val_every > before // a.val_every or step == a.max_steps:
                row["val_loss"] = evaluate()
            logged[step] = row
            if step == a.max_steps:
                break

    rows = list(csv.DictReader(open(a.metrics)))
    worst = {"train_loss": 0.0, "lr": 0.0, "val_loss": 0.0}
    n_val = 0
    for r in rows:
        s = int(r["step"])
        want = logged[s]
        for k in ("train_loss", "lr", "val_loss"):
            if r[k] == "":
                if k in want:
                    sys.exit("step %d: megatune logged no %s, the reference computed one" % (s, k))
                continue
            if k not in want:
                sys.exit("step %d: megatune logged %s, the reference has none" % (s, k))
            d = abs(float(r[k]) - want[k]) / max(abs(want[k]), 1e-12)
            worst[k] = max(worst[k], d)
            n_val += k == "val_loss"
    if len(rows) != a.max_steps or n_val == 0:
        sys.exit("metrics.csv has %d rows and %d validations; want %d rows" % (len(rows), n_val, a.max_steps))
    print("max relative difference vs PyTorch over %d steps: train_loss %.2e, lr %.2e, val_loss %.2e (%d validations)"
          % (len(rows), worst["train_loss"], worst["lr"], worst["val_loss"], n_val))
    tol = {"train_loss": 1e-5, "lr": 1e-6, "val_loss": 1e-5}
    bad = [k for k in tol if worst[k] > tol[k]]
    if bad:
        sys.exit("out of tolerance: %s" % ", ".join("%s %.2e > %.0e" % (k, worst[k], tol[k]) for k in bad))


if __name__ == "__main__":
    main()
