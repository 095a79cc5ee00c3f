#!/usr/bin/env python3
"""PyTorch peer of bench_epoch.sh: one epoch (or its first --fraction of batches) of SST-2 or CoNLL-2003
training with the model of bench_train.py (pre-LN Megatron-BERT, random init) and NeMo's heads, in a
loop that batches as NeMo does:

- order: a fresh random permutation per epoch (torch's RandomSampler, which PTL's shuffle=True uses);
- padding: SST-2 (text classification) pads each batch to its longest sentence (NeMo's collate_fn);
  CoNLL (token classification) pads every sentence to min(max_seq_length, the longest in the
  dataset), as NeMo's get_features does, so each batch has the same width;
- --group-by-length 1: Hugging Face's LengthGroupedSampler (shuffle, megabatches of
  min(n / (4 x batch), 50) batches sorted longest first, the longest example moved to the front),
  and padding to each batch's longest (HF's DataCollatorWithPadding), for both tasks.

Features are built as megatune builds them: token ids from `megatune tokenize` (BERT WordPiece),
[CLS] + pieces + [SEP] cut to max_seq_length (text classification: pieces cut to max_seq_length,
then [SEP]: NeMo's off-by-one), a word's label on all its pieces (token classification). AdamW,
dropout 0.1, no clipping, constant lr (a schedule costs nothing measurable). Timed: the training
loop (batch tensors, forward, loss, backward, optimizer step); prints tokens/s over real and over
padded tokens, the whole epoch's token counts for this order, and "RESULT ..." for the script.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_train import Model  # noqa: E402


def tokenize(megatune, vocab, lines, offsets):
    args = [megatune, "tokenize", "--vocab-file", vocab, "--uncased"] + (["--offsets"] if offsets else [])
    out = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True, check=True).stdout
    rows = out.split("\n")[: len(lines)]
    if not offsets:
        return [[int(t) for t in r.split()] for r in rows]
    res = []
    for r in rows:  # "id(start,end,word)"
        res.append([(int(t[: t.index("(")]), int(t[t.rindex(",") + 1: -1])) for t in r.split()])
    return res


def load_sst2(path, megatune, vocab, max_len, cls, sep):
    sents, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split()
            if not parts:
                continue
            try:
                lab = int(parts[-1])
            except ValueError:
                continue  # the header
            sents.append(" ".join(parts[:-1]))
            labels.append(lab)
    feats = []
    for ids, lab in zip(tokenize(megatune, vocab, sents, False), labels):
        feats.append(([cls] + ids)[:max_len] + [sep])
    return feats, labels, 2


def load_conll(data_dir, megatune, vocab, max_len, cls, sep):
    with open(os.path.join(data_dir, "text_train.txt"), encoding="utf-8") as f:
        texts = [l.rstrip("\n") for l in f]
    with open(os.path.join(data_dir, "labels_train.txt"), encoding="utf-8") as f:
        word_labels = [l.split() for l in f]
    names = sorted({l for ls in word_labels for l in ls} - {"O"})
    lid = {"O": 0, **{n: i + 1 for i, n in enumerate(names)}}  # pad label 'O' = 0, then sorted
    feats, labels = [], []
    for toks, wl in zip(tokenize(megatune, vocab, texts, True), word_labels):
        ids = [cls] + [t for t, _ in toks] + [sep]
        lab = [0] + [lid[wl[w]] for _, w in toks] + [0]
        if len(ids) > max_len:  # NeMo keeps [CLS] and the last max_len-1
            ids, lab = [ids[0]] + ids[-max_len + 1:], [lab[0]] + lab[-max_len + 1:]
        feats.append(ids)
        labels.append(lab)
    return feats, labels, len(lid)


def grouped_order(lengths, batch, gen):
    n = len(lengths)
    mult = max(1, min(n // (4 * batch), 50))
    mb = mult * batch
    perm = torch.randperm(n, generator=gen).tolist()
    megas = [sorted(perm[i:i + mb], key=lambda j: lengths[j], reverse=True) for i in range(0, n, mb)]
    best = max(range(len(megas)), key=lambda k: (lengths[megas[k][0]], -k))
    megas[0][0], megas[best][0] = megas[best][0], megas[0][0]
    return [j for m in megas for j in m]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=["sst2", "conll"], required=True)
    ap.add_argument("--data", required=True, help="SST-2 train.tsv, or the folder of text_train.txt/labels_train.txt")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--megatune", required=True, help="the megatune binary (its tokenizer builds the features)")
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--group-by-length", type=int, default=0)
    ap.add_argument("--precision", choices=["32", "bf16"], default="32", help="bf16: torch.autocast on the CPU")
    for k, v in dict(layers=12, hidden=768, heads=12, batch=32, max_seq_length=128, threads=2, seed=1234).items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cls, sep = 101, 102  # bert-base-uncased
    t_load = time.perf_counter()
    if a.task == "sst2":
        feats, labels, ncls = load_sst2(a.data, a.megatune, a.vocab, a.max_seq_length, cls, sep)
    else:
        feats, labels, ncls = load_conll(a.data, a.megatune, a.vocab, a.max_seq_length, cls, sep)
    t_load = time.perf_counter() - t_load
    n = len(feats)
    lengths = [len(f) for f in feats]
    gen = torch.Generator().manual_seed(a.seed)
    order = grouped_order(lengths, a.batch, gen) if a.group_by_length else torch.randperm(n, generator=gen).tolist()
    batches = [order[i:i + a.batch] for i in range(0, n, a.batch)]
    fixed = a.task == "conll" and not a.group_by_length  # NeMo's token classification pads to the dataset's longest
    width_all = max(lengths)

    def width(b):
        return width_all if fixed else max(lengths[i] for i in b)

    epoch_real = sum(lengths)
    epoch_padded = sum(len(b) * width(b) for b in batches)
    nb = len(batches) if a.fraction >= 1 else max(1, int(len(batches) * a.fraction))  # as PTL's limit_train_batches

    vp = (30522 + 127) // 128 * 128
    model = Model(vp, a.hidden, a.layers, a.heads, 512, 0.1)
    model.qa = nn.Identity()  # NeMo's heads instead: 2 layers, relu
    head = nn.Sequential(nn.Dropout(0.1 if a.task == "sst2" else 0.5), nn.Linear(a.hidden, a.hidden), nn.ReLU(),
                         nn.Dropout(0.1 if a.task == "sst2" else 0.5), nn.Linear(a.hidden, ncls))
    model.train()
    head.train()
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)
    real = padded = 0
    t0 = time.perf_counter()
    for b in batches[:nb]:
        T = width(b)
        ids = torch.zeros(len(b), T, dtype=torch.long)
        mask = torch.zeros(len(b), T, dtype=torch.long)
        for r, i in enumerate(b):
            ids[r, : lengths[i]] = torch.tensor(feats[i])
            mask[r, : lengths[i]] = 1
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            h = model(ids, torch.zeros_like(ids), mask)
            if a.task == "sst2":
                loss = F.cross_entropy(head(h[:, 0]), torch.tensor([labels[i] for i in b]))
            else:
                lab = torch.zeros(len(b), T, dtype=torch.long)
                for r, i in enumerate(b):
                    lab[r, : lengths[i]] = torch.tensor(labels[i])
                logits = head(h)
                sel = mask.bool()
                loss = F.cross_entropy(logits[sel], lab[sel])
        loss.backward()
        opt.step()
        real += int(mask.sum())
        padded += len(b) * T
    dt = time.perf_counter() - t0
    print(f"pytorch {torch.__version__} {a.task} group_by_length={a.group_by_length} precision={a.precision} threads={a.threads} "
          f"{a.layers}x{a.hidden}: {nb} of {len(batches)} batches in {dt:.1f} s (features built in {t_load:.1f} s), "
          f"{real / dt:.0f} tokens/s, {padded / dt:.0f} padded tokens/s")
    print(f"RESULT batches={nb} epoch_batches={len(batches)} loop_s={dt:.3f} real={real} padded={padded} "
          f"epoch_real={epoch_real} epoch_padded={epoch_padded} examples={n}")


if __name__ == "__main__":
    main()
