#!/usr/bin/env python3
"""PyTorch side of bench_predict: times the forward of tools/torch_ref.py's model (float32,
no_grad) on the batches bench_predict dumped, and prints sentences/s.
Usage: bench_predict.py DUMP.mttf CONFIG.json THREADS REPEAT"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch  # noqa: E402
import torch_ref  # noqa: E402


def main():
    dump, cfg_path, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    tensors = torch_ref.read_mttf(dump)
    cfg = json.load(open(cfg_path))
    ref = torch_ref.Ref(cfg, {k: v for k, v in tensors.items() if k.startswith("param/")}, torch.float32)
    names = sorted({k.split("/")[0] for k in tensors if k.startswith("batch")})
    batches = [{f: tensors[f"{b}/{f}"] for f in ("input_ids", "token_type_ids", "attention_mask")} for b in names]
    n = sum(b["input_ids"].shape[0] for b in batches)
    best = 1e30
    with torch.no_grad():
        for _ in range(repeat):
            t0 = time.perf_counter()
            for b in batches:
                ref.head(ref.encoder(b))
            best = min(best, time.perf_counter() - t0)
    print(f"pytorch:  {n} sentences in {len(batches)} batches, best of {repeat}: {best:.3f} s = {n / best:.1f} sentences/s")


if __name__ == "__main__":
    main()
