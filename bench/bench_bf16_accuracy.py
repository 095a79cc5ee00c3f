#!/usr/bin/env python3
"""Does trainer.precision=bf16 train as well as fp32? Same initialisation, same data order, same
dropout draws: for each seed, `megatune train` runs once in fp32 and once in bf16 from that seed, and
the dev metrics are compared pair by pair, beside the spread between seeds (the noise a different
initialisation alone causes).

    bench/bench_bf16_accuracy.py [--build build] [--tasks sst2,conll] [--seeds 1,2,3]
                                 [--layers 4 --hidden 256 --heads 4] [--epochs 1] [--lr 1e-4]

Data: SST-2 train -> dev accuracy; CoNLL-2003 eng.train -> eng.testa (dev) token accuracy and entity
F1 (CoNLL's own scoring), from ../shared/data (or $MEGATUNE_DATA). Models start from random weights
(no pretrained checkpoint is needed), batch 32, AdamW with WarmupAnnealing (10% warm-up), dropout 0.1,
group_by_length on (it only orders the batches). Where the CPU lacks AVX512-BF16/AMX-BF16 the bf16
runs use megatune's emulated bf16 path (MEGATUNE_BF16=emulate: the same rounding, fp32 speed) and
say so. Prints per run the metrics and the wall time, then per task the mean and the spread of
each precision over the seeds and the mean paired difference bf16 - fp32.
"""
import argparse
import csv
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_line():
    model, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    isa = [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if x in flags]
    return model, isa


def config(task, a, data, work):
    lm = f"""    pretrained_model_name: megatron-bert-uncased
    lm_checkpoint: null
    config:
      hidden_size: {a.hidden}
      num_attention_heads: {a.heads}
      num_layers: {a.layers}
      max_position_embeddings: 512
      hidden_dropout: 0.1
      attention_dropout: 0.1"""
    vocab = os.path.join(data, "bert-base-uncased", "vocab.txt")
    optim = f"{{name: adamw, lr: {a.lr}, weight_decay: 0.01, sched: {{name: WarmupAnnealing, warmup_ratio: 0.1}}}}"
    if task == "sst2":
        glue = os.path.join(data, "glue", "SST-2")
        return f"""task: text_classification
model:
  tokenizer: {{vocab_file: {vocab}}}
  language_model:
{lm}
  classifier_head: {{num_output_layers: 2, fc_dropout: 0.1}}
  dataset: {{num_classes: 2, max_seq_length: 128}}
  train_ds: {{file_path: {glue}/train.tsv, batch_size: 32, shuffle: true}}
  validation_ds: {{file_path: {glue}/dev.tsv, batch_size: 64, shuffle: false}}
  optim: {optim}
"""
    return f"""task: token_classification
model:
  tokenizer: {{vocab_file: {vocab}}}
  language_model:
{lm}
  head: {{num_fc_layers: 2, fc_dropout: 0.1, activation: relu}}
  dataset: {{data_dir: {work}/conll, max_seq_length: 128}}
  train_ds: {{text_file: text_train.txt, labels_file: labels_train.txt, batch_size: 32, shuffle: true}}
  validation_ds: {{text_file: text_dev.txt, labels_file: labels_dev.txt, batch_size: 64, shuffle: false}}
  optim: {optim}
"""


def last_val_row(exp_dir):
    paths = glob.glob(os.path.join(exp_dir, "**", "metrics.csv"), recursive=True)
    if len(paths) != 1:
        sys.exit(f"bench_bf16_accuracy: expected one metrics.csv under {exp_dir}, found {len(paths)}")
    with open(paths[0]) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_loss") not in (None, "")]
    if not rows:
        sys.exit(f"bench_bf16_accuracy: {paths[0]} has no validation row")
    return rows[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--tasks", default="sst2,conll")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fraction", type=float, default=1.0, help="train on the first F of each epoch (to try it out)")
    a = ap.parse_args()
    data = os.environ.get("MEGATUNE_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
    if not os.path.isdir(data):
        data = "/work/shared/data"
    binary = os.path.join(a.build, "megatune")
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench_bf16_accuracy: {binary} not built (bash scripts/build.sh release)")
    model, isa = cpu_line()
    native = "avx512_bf16" in isa or "amx_bf16" in isa
    print(f"CPU: {model}; ISA: {' '.join(isa)}; {a.threads} threads")
    print(f"shape {a.layers} x {a.hidden} ({a.heads} heads), random init, batch 32, AdamW lr {a.lr}, "
          f"{a.epochs} epoch(s)" + (f" (FRACTION {a.fraction} of each)" if a.fraction < 1 else "") + f"; bf16: {'native (oneDNN)' if native else 'EMULATED (MEGATUNE_BF16=emulate): no bf16 on this CPU'}")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE", MEGATUNE_OFFLINE="1")
    keys = {"sst2": ["val_acc"], "conll": ["val_acc", "val_entity_f1"]}
    for task in a.tasks.split(","):
        if task not in keys:
            sys.exit(f"bench_bf16_accuracy: --tasks takes sst2 and/or conll, got {task!r}")
    results = {}
    with tempfile.TemporaryDirectory() as work:
        if "conll" in a.tasks.split(","):
            for split in ("train", "testa"):
                subprocess.run([binary, "data", "import-iob", "--data_file",
                                os.path.join(data, "conll2003", "eng." + split), "--out_dir",
                                os.path.join(work, "conll")], check=True, stdout=subprocess.DEVNULL)
        for task in a.tasks.split(","):
            cfg = os.path.join(work, task + ".yaml")
            with open(cfg, "w") as f:
                f.write(config(task, a, data, work))
            for seed in [int(s) for s in a.seeds.split(",")]:
                for prec in ("32", "bf16"):
                    exp = os.path.join(work, f"exp-{task}-{seed}-{prec}")
                    renv = dict(env)
                    if prec == "bf16" and not native:
                        renv["MEGATUNE_BF16"] = "emulate"
                    t0 = time.time()
                    r = subprocess.run([binary, "train", cfg, f"trainer.precision={prec}", f"trainer.seed={seed}",
                                        f"trainer.max_epochs={a.epochs}", "trainer.progress_bar=lines",
                                        "trainer.limit_train_batches=%.8f" % a.fraction,
                                        "model.train_ds.group_by_length=true", "model.nemo_path=null",
                                        f"exp_manager.exp_dir={exp}", "exp_manager.create_checkpoint_callback=false",
                                        "exp_manager.create_tensorboard_logger=false"],
                                       env=renv, capture_output=True, text=True)
                    if r.returncode != 0:
                        sys.exit(f"bench_bf16_accuracy: megatune train failed ({task}, seed {seed}, {prec}):\n"
                                 + r.stderr[-3000:])
                    row = last_val_row(exp)
                    missing = [k for k in keys[task] if row.get(k) in (None, "")]
                    if missing:
                        sys.exit(f"bench_bf16_accuracy: the last validation row of {exp} has no {', '.join(missing)}")
                    vals = [float(row[k]) for k in keys[task]]
                    results[(task, seed, prec)] = vals
                    print(f"{task:5s} seed {seed} {prec:4s}: " + ", ".join(
                        f"{k[4:]} {v:.2f}" for k, v in zip(keys[task], vals)) + f"  ({time.time() - t0:.0f} s)",
                        flush=True)
    print()
    print("per task and metric: mean [min, max] over seeds for each precision; paired difference bf16 - fp32")
    for task in a.tasks.split(","):
        seeds = [int(s) for s in a.seeds.split(",")]
        for i, k in enumerate(keys[task]):
            f32 = [results[(task, s, "32")][i] for s in seeds]
            b16 = [results[(task, s, "bf16")][i] for s in seeds]
            d = [b - f for b, f in zip(b16, f32)]
            sd = statistics.stdev(f32) if len(f32) > 1 else float("nan")
            print(f"{task:5s} {k[4:]:9s} fp32 {statistics.mean(f32):6.2f} [{min(f32):.2f}, {max(f32):.2f}]  "
                  f"bf16 {statistics.mean(b16):6.2f} [{min(b16):.2f}, {max(b16):.2f}]  "
                  f"bf16 - fp32 {statistics.mean(d):+.2f} [{min(d):+.2f}, {max(d):+.2f}]  "
                  f"(seed-to-seed sd of fp32 {sd:.2f})")


if __name__ == "__main__":
    main()
