#!/usr/bin/env python3
"""Opens megatune's training checkpoints and .nemo with torch the way NeMo and PyTorch Lightning 1.x
code does, and checks what that code relies on (tests only).

  check_lightning_files.py RUN_DIR --tp N --steps S [--name quickstart]

RUN_DIR is an exp_manager log folder (RUN_DIR/checkpoints/...). For every training checkpoint
(checkpoints/*.ckpt, or checkpoints/mp_rank_XX/*.ckpt when N > 1, as NeMo's NLPCheckpointConnector
lays them out):
  - torch.load(ckpt, map_location='cpu') needs no megatune, OmegaConf or Lightning import;
  - Lightning's keys: epoch, global_step, pytorch-lightning_version, state_dict, optimizer_states,
    lr_schedulers, callbacks, hyper_parameters; NeMo's checkpoint_version (3.0);
  - ckpt['state_dict'] holds float32 tensors under NeMo's names;
  - optimizer_states[0] is a torch.optim Adam/AdamW state_dict: one state per parameter, exp_avg /
    exp_avg_sq shaped as the parameter, 'step' == the optimizer steps; a torch.optim.AdamW over
    the state_dict's tensors load_state_dict()s it and takes a step;
  - lr_schedulers[0]['last_epoch'] == global_step; callbacks' ModelCheckpoint monitor;
    hyper_parameters['cfg'] is the model config (plain dicts);
The -last checkpoint of the final step S holds exactly the weights of checkpoints/NAME.nemo
(model_weights.ckpt, or mp_rank_XX/model_weights.ckpt: NeMo's restore_from counts the names with
'mp_rank' and halves it to get N); megatron_checkpoint_version.json is {"checkpoint_version": 3.0}.
With N > 1: every rank has the same keys, replicated tensors are equal across ranks, split ones
have 1/N of the rows or columns.
"""
import argparse
import glob
import io
import json
import os
import sys
import tarfile

try:
    import torch
except Exception as e:  # pragma: no cover
    print("check_lightning_files: cannot import torch: %s" % e, file=sys.stderr)
    sys.exit(77)


def fail(msg):
    print("check_lightning_files: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


LIGHTNING_KEYS = ["epoch", "global_step", "pytorch-lightning_version", "state_dict", "optimizer_states",
                  "lr_schedulers", "callbacks", "hyper_parameters"]


def check_ckpt(path):
    ck = torch.load(path, map_location="cpu")
    for k in LIGHTNING_KEYS:
        if k not in ck:
            fail("%s: no '%s'" % (path, k))
    if not ck["pytorch-lightning_version"].startswith("1."):
        fail("%s: pytorch-lightning_version %r" % (path, ck["pytorch-lightning_version"]))
    if ck.get("checkpoint_version") != 3.0:
        fail("%s: checkpoint_version %r" % (path, ck.get("checkpoint_version")))
    sd = ck["state_dict"]
    if not sd or any(not torch.is_tensor(v) or v.dtype != torch.float32 for v in sd.values()):
        fail("%s: state_dict is empty or not float32 tensors" % path)
    if not any(k.startswith("bert_model.language_model.") for k in sd):
        fail("%s: no NeMo encoder names in state_dict" % path)
    if len(ck["optimizer_states"]) != 1:
        fail("%s: %d optimizer states" % (path, len(ck["optimizer_states"])))
    osd = ck["optimizer_states"][0]
    params = list(sd.values())
    steps = ck["global_step"]
    if sorted(osd["state"]) != list(range(len(params))):
        fail("%s: optimizer state ids %s, want 0..%d" % (path, sorted(osd["state"])[:5], len(params) - 1))
    for i, p in enumerate(params):
        s = osd["state"][i]
        if s["exp_avg"].shape != p.shape or s["exp_avg_sq"].shape != p.shape:
            fail("%s: parameter %d: moments %s/%s, parameter %s" % (path, i, tuple(s["exp_avg"].shape),
                                                                   tuple(s["exp_avg_sq"].shape), tuple(p.shape)))
        if int(s["step"]) != steps:
            fail("%s: parameter %d: step %s, global_step %d" % (path, i, s["step"], steps))
    g = osd["param_groups"]
    if len(g) != 1 or g[0]["params"] != list(range(len(params))) or len(g[0]["betas"]) != 2:
        fail("%s: param_groups %r" % (path, {k: v for k, v in g[0].items() if k != "params"}))
    # torch.optim takes the state as Lightning's restore would hand it over
    tp = [torch.nn.Parameter(p.clone()) for p in params]
    opt = torch.optim.AdamW(tp, lr=1e-3)
    opt.load_state_dict(osd)
    for i, p in enumerate(tp):
        if not torch.equal(opt.state[p]["exp_avg"], osd["state"][i]["exp_avg"]):
            fail("%s: torch.optim did not take exp_avg of parameter %d" % (path, i))
        p.grad = torch.zeros_like(p)
    opt.step()
    sch = ck["lr_schedulers"][0]
    if sch["last_epoch"] != steps or len(sch["base_lrs"]) != 1:
        fail("%s: lr_schedulers[0] %r" % (path, sch))
    mc = ck["callbacks"].get("ModelCheckpoint")
    if not mc or mc["monitor"] != "val_loss" or "best_model_path" not in mc or "best_model_score" not in mc:
        fail("%s: callbacks %r" % (path, ck["callbacks"]))
    cfg = ck["hyper_parameters"].get("cfg")
    if not isinstance(cfg, dict) or "language_model" not in cfg or cfg.get("optim", {}).get("name") not in ("adam", "adamw"):
        fail("%s: hyper_parameters['cfg'] is not the model config: %r" % (path, type(cfg)))
    return ck


def nemo_members(path):
    out = {}
    with tarfile.open(path, "r:gz") as t:
        names = t.getnames()
        for m in t.getmembers():
            if m.isfile():
                out[m.name[2:] if m.name.startswith("./") else m.name] = t.extractfile(m).read()
    return names, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--name", default="quickstart")
    a = ap.parse_args()
    ck_dir = os.path.join(a.run_dir, "checkpoints")
    ranks = [ck_dir] if a.tp == 1 else [os.path.join(ck_dir, "mp_rank_%02d" % r) for r in range(a.tp)]
    last = []
    n = 0
    for d in ranks:
        files = sorted(glob.glob(os.path.join(d, "*.ckpt")))
        if not files:
            fail("no checkpoints in %s" % d)
        lf = [f for f in files if f.endswith("-last.ckpt")]
        if len(lf) != 1:
            fail("%s: %d -last checkpoints" % (d, len(lf)))
        for f in files:
            ck = check_ckpt(f)
            n += 1
            if f in lf:
                if ck["global_step"] != a.steps:
                    fail("%s: global_step %d, want %d" % (f, ck["global_step"], a.steps))
                last.append(ck["state_dict"])
    # ranks: same keys; replicated equal; split ones 1/N
    if a.tp > 1:
        for k, v0 in last[0].items():
            for r in range(1, a.tp):
                v = last[r][k]
                if v.dim() != v0.dim():
                    fail("%s: rank %d has %d dims, rank 0 %d" % (k, r, v.dim(), v0.dim()))
        split = [k for k in last[0] if not all(torch.equal(last[0][k], last[r][k]) for r in range(1, a.tp))]
        if not any(".query_key_value." in k for k in split):
            fail("no tensor differs between ranks: not tensor-parallel shards")
    nemo = os.path.join(ck_dir, a.name + ".nemo")
    names, mem = nemo_members(nemo)
    if len([x for x in names if "mp_rank" in x]) // 2 != (a.tp if a.tp > 1 else 0):
        fail("%s: NeMo's restore_from would count %d mp_rank names" % (nemo, len([x for x in names if "mp_rank" in x])))
    ver = json.loads(mem.get("megatron_checkpoint_version.json", b"null"))
    if ver != {"checkpoint_version": 3.0}:
        fail("%s: megatron_checkpoint_version.json %r" % (nemo, ver))
    for r in range(a.tp):
        member = "model_weights.ckpt" if a.tp == 1 else "mp_rank_%02d/model_weights.ckpt" % r
        if member not in mem:
            fail("%s: no %s" % (nemo, member))
        w = torch.load(io.BytesIO(mem[member]), map_location="cpu")
        if list(w) != list(last[r]) or any(not torch.equal(w[k], last[r][k]) for k in w):
            fail("%s: %s differs from the -last checkpoint's state_dict" % (nemo, member))
    print("check_lightning_files: ok: %d checkpoint(s), TP=%d, %d tensors per rank" % (n, a.tp, len(last[0])))


if __name__ == "__main__":
    main()
