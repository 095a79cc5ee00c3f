#!/usr/bin/env python3
"""megatune beside PyTorch, one run, alternating: training steps and inference (forward only, eval)
in fp32 and bf16 (megatune's trainer.precision=bf16 vs PyTorch's CPU bf16 autocast), per shape.

    bench/bench_compare.py [--build build] [--shapes base,345m,345m-384] [--modes train,infer]
                           [--precisions 32,bf16] [--steps 3] [--repeats 3] [--threads 2] [--isa avx2]
                           [--ckpt N] [--step-in-backward] [--selective | --selective-fc1 | --selective-attn-out]

Each (shape, mode, precision) runs megatune then PyTorch `repeats` times in turn, so both see the
same machine load; it prints medians with min/max of ms per step, the ratio of medians (PyTorch
time / megatune time: > 1 means megatune is faster), tokens/s, GFLOP/s as a share of the FMA peak
measured by bench_peak (the bf16 peak for bf16 rows), peak RSS, and the ratio of CPU time per step
(all threads; less disturbed than wall time when other jobs share the cores). 345M shapes run under
flock /tmp/megatune-bigmem.lock (they need several GiB). PyTorch gets its best setting
(shared/reference/pytorch-baseline.md): OpenMP OpenBLAS and tcmalloc when installed,
OMP_WAIT_POLICY=PASSIVE; megatune runs with the same thread count and wait policy. bf16 rows are
skipped where the CPU lacks AVX512-BF16/AMX (PyTorch's bf16 is emulated there: not a fair peer).
--isa avx2 limits both programs' libraries to AVX2 (OPENBLAS_CORETYPE=Haswell, ONEDNN_MAX_CPU_ISA=AVX2)
on an AVX-512 CPU: a proxy for an AVX2-only machine, not one (clock, caches and megatune's own loops,
compiled for the build machine unless --build names a build made with -march=haswell, stay as they are).
--ckpt N (train rows only) checkpoints the activations of the first N layers in both programs (megatune's
mt_model_set_activation_checkpoint, torch.utils.checkpoint in PyTorch; N past the layer count = all):
one more forward of those layers per step for less activation memory. A header line says so, train rows
are labelled "train+ckptN", and a column gives megatune's activation MiB (bench_train's act_mib). GFLOP/s
and peak% count the model's FLOPs, not the recomputation.
--step-in-backward (train rows only) runs megatune's update inside backward (model.optim.step_in_backward:
no gradient span) and turns gradient clipping off in BOTH programs (it needs every gradient before the
first update), so both do the same work; the rows are labelled "+sib".
--selective (train rows only) has megatune recompute in backward what cheap work gives again (attention
probabilities, GELU and LayerNorm outputs: model.activations_checkpoint_granularity=selective); PyTorch
has no such switch and runs as it is; the rows are labelled "+sel". --selective-fc1 recomputes FC1's
outputs as well (model.activations_checkpoint_fc1=true: one more FC1 product per layer and step, not
counted in GFLOP/s); rows "+sel+fc1". --selective-attn-out recomputes the residual after attention too
(model.activations_checkpoint_attn_out=true: one more attention output product per layer); rows "+sel+fc1+ao".
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {
    "small": "--layers 4 --hidden 256 --heads 4 --seq 128 --batch 16",
    "base": "--layers 12 --hidden 768 --heads 12 --seq 128 --batch 8",
    "345m": "--layers 24 --hidden 1024 --heads 16 --seq 128 --batch 8",
    "345m-384": "--layers 24 --hidden 1024 --heads 16 --seq 384 --batch 2",
}


def result(out):
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def run(cmd, env, big):
    if big:
        cmd = ["flock", "/tmp/megatune-bigmem.lock"] + cmd
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        return None
    return result(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--shapes", default="base,345m,345m-384")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--precisions", default="32,bf16")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--isa", default="native", choices=["native", "avx2"])
    ap.add_argument("--ckpt", type=int, default=0, metavar="N",
                    help="train rows: checkpoint the activations of the first N layers in both programs "
                         "(0: off; N past the layer count: all)")
    ap.add_argument("--step-in-backward", action="store_true",
                    help="train rows: megatune updates inside backward (no gradient span); clipping off in both")
    ap.add_argument("--selective", action="store_true",
                    help="train rows: megatune recomputes probabilities, GELU and LayerNorm outputs in backward")
    ap.add_argument("--selective-fc1", action="store_true",
                    help="train rows: --selective and FC1's outputs recomputed too")
    ap.add_argument("--selective-attn-out", action="store_true",
                    help="train rows: --selective-fc1 and the residual after attention recomputed too")
    a = ap.parse_args()
    a.selective_fc1 = a.selective_fc1 or a.selective_attn_out
    a.selective = a.selective or a.selective_fc1
    if a.ckpt < 0:
        ap.error("--ckpt %d: give the number of layers to checkpoint, 0 (off) or more" % a.ckpt)
    for shape in a.shapes.split(","):
        if shape not in SHAPES:
            ap.error("--shapes: unknown shape %r; use %s" % (shape, ",".join(SHAPES)))
    py = os.environ.get("MEGATUNE_PYTHON", "/usr/bin/python3")
    base = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE")
    if a.isa == "avx2":
        base.update(OPENBLAS_CORETYPE="Haswell", ONEDNN_MAX_CPU_ISA="AVX2")
    tenv = dict(base)
    ompblas = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
    if os.path.isdir(ompblas):
        tenv["LD_LIBRARY_PATH"] = ompblas + (":" + tenv["LD_LIBRARY_PATH"] if tenv.get("LD_LIBRARY_PATH") else "")
    tcm = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
    if os.path.exists(tcm):
        tenv["LD_PRELOAD"] = tcm
    def measure_peak():
        out = subprocess.run([os.path.join(a.build, "bench", "bench_peak")], env=base, capture_output=True,
                             text=True).stdout
        return out, {k: float(v) for k, v in re.findall(r"(\w+)_gflops=([0-9.]+)", out)}

    peak, pk = measure_peak()
    print(peak.strip())
    mt = os.path.join(a.build, "megatune")
    if os.path.exists(mt):  # the libraries behind megatune's products here (megatune version)
        ver = subprocess.run([mt, "version"], env=base, capture_output=True, text=True).stdout
        print("\n".join("megatune " + line for line in ver.splitlines()
                        if line.split(":")[0] in ("fp32 products", "bf16 products")))
    has_bf16 = pk.get("bf16", 0) > 0 or "AMX-BF16" in peak
    isa = " OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2" if a.isa == "avx2" else ""
    print("load average %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print("both: OMP_NUM_THREADS=%d OMP_WAIT_POLICY=PASSIVE%s" % (a.threads, isa))
    print("PyTorch env: OMP_NUM_THREADS=%d OMP_WAIT_POLICY=PASSIVE%s%s" % (
        a.threads, " LD_LIBRARY_PATH=" + ompblas if "LD_LIBRARY_PATH" in tenv else "",
        " LD_PRELOAD=" + tcm if "LD_PRELOAD" in tenv else ""))
    if a.ckpt and "train" in a.modes.split(","):
        print("activation checkpointing: first %d layers (all where a shape has fewer) in both programs, "
              "train rows only; GFLOP/s and peak%% count the model's FLOPs, not the recomputation" % a.ckpt)
    if a.step_in_backward and "train" in a.modes.split(","):
        print("step in backward: megatune updates each layer inside backward (no gradient span); gradient "
              "clipping off in both programs, train rows only")
    print("ratio = PyTorch ms / megatune ms of the medians (> 1: megatune faster); peak% = GFLOP/s / measured peak")
    # train rows' mode column: "+ckptN" when checkpointing, "+sib" with the step in backward, "+sel" selective
    train_suffix = (("+ckpt%d" % a.ckpt if a.ckpt else "") + ("+sib" if a.step_in_backward else "") +
                    ("+sel" if a.selective else "") + ("+fc1" if a.selective_fc1 else "") + ("+ao" if a.selective_attn_out else ""))
    ml = len("train" + train_suffix)
    hdr = "%-9s %-*s %-4s | %-26s | %-26s | %6s | %9s %9s | %7s %7s | %6s %6s" % (
        "shape", ml, "mode", "prec", "megatune ms med [min,max]", "pytorch ms med [min,max]", "ratio", "mt tok/s",
        "pt tok/s", "mt pk%", "pt pk%", "mt MiB", "pt MiB") + " | cpu-time ratio | mt act MiB | load avg"
    print(hdr)
    for shape in a.shapes.split(","):
        args = SHAPES[shape].split()
        big = shape.startswith("345m")
        for mode in a.modes.split(","):
            ck = a.ckpt if mode == "train" else 0
            sib = a.step_in_backward and mode == "train"
            sel = a.selective and mode == "train"
            label = mode + (train_suffix if mode == "train" else "")
            for prec in a.precisions.split(","):
                if prec == "bf16" and not has_bf16:
                    print("%-9s %-*s %-4s | skipped: no AVX512-BF16/AMX-BF16 %s" % (
                        shape, ml, label, prec, "under --isa avx2" if a.isa == "avx2" else "on this CPU"))
                    continue
                infer = "1" if mode == "infer" else "0"
                mcmd = [os.path.join(a.build, "bench", "bench_train")] + args + [
                    "--steps", str(a.steps), "--precision", prec, "--infer", infer]
                pcmd = [py, os.path.join(HERE, "bench_train.py")] + args + [
                    "--steps", str(a.steps), "--threads", str(a.threads), "--bf16", "1" if prec == "bf16" else "0",
                    "--infer", infer]
                if ck:
                    mcmd += ["--ckpt", str(ck)]
                    pcmd += ["--ckpt", str(ck)]
                if sel:
                    mcmd += ["--recompute", "3" if a.selective_attn_out else "2" if a.selective_fc1 else "1"]
                if sib:
                    mcmd += ["--step-in-backward", "1", "--clip", "0"]
                    pcmd += ["--clip", "0"]
                if mode == "infer":
                    mcmd += ["--dropout", "0"]
                mr, pr = [], []
                for _ in range(a.repeats):
                    r = run(mcmd, base, big)
                    if r:
                        mr.append(r)
                    r = run(pcmd, tenv, big)
                    if r:
                        pr.append(r)
                if not mr or not pr:
                    print("%-9s %-*s %-4s | a run failed (see above)" % (shape, ml, label, prec))
                    continue
                mms = [r["ms_per_step"] for r in mr]
                pms = [r["ms_per_step"] for r in pr]
                mmed, pmed = statistics.median(mms), statistics.median(pms)
                gf = statistics.median([r["gflops"] for r in mr])
                pgf = gf * mmed / pmed  # same FLOP count
                p = pk.get("bf16" if prec == "bf16" else "fp32", 0) or float("nan")
                ntok = [int(x) for x in args[args.index("--seq") + 1:args.index("--seq") + 2]][0] * int(
                    args[args.index("--batch") + 1])
                cr = statistics.median([r["cpu_ms_per_step"] for r in pr]) / statistics.median(
                    [r["cpu_ms_per_step"] for r in mr])
                act = max(r.get("act_mib", float("nan")) for r in mr)
                print("%-9s %-*s %-4s | %8.0f [%7.0f,%7.0f] | %8.0f [%7.0f,%7.0f] | %6.2f | %9.0f %9.0f | %6.0f%% %6.0f%% | %6.0f %6.0f | %14.2f | %10.1f | %s" % (
                    shape, ml, label, prec, mmed, min(mms), max(mms), pmed, min(pms), max(pms), pmed / mmed,
                    ntok / mmed * 1e3, ntok / pmed * 1e3, 100 * gf / p, 100 * pgf / p,
                    max(r["rss_mib"] for r in mr), max(r["rss_mib"] for r in pr), cr, act,
                    open("/proc/loadavg").read().split()[0]), flush=True)
    # A busy machine halves bench_peak's reading and with it inflates peak%; the ratios, from
    # alternating runs, are less affected. Say so rather than print a share above the ceiling.
    _, pk2 = measure_peak()
    f0, f1 = pk.get("fp32", 0), pk2.get("fp32", 0)
    print("peak at the end: fp32_gflops=%.1f (start %.1f)" % (f1, f0))
    if f0 and f1 and abs(f1 - f0) > 0.1 * max(f0, f1):
        print("WARNING: the FMA peak moved by more than 10%% during the run (%.1f -> %.1f GFLOP/s): other work "
              "shared the cores; peak%% is unreliable, compare the ratios of repeated runs" % (f0, f1))


if __name__ == "__main__":
    main()
