#!/usr/bin/env python3
"""Independent checks of .nemo files written by megatune (tests only).

  check_nemo.py inspect NEMO --hidden H --layers L --heads N --positions P --vocab-lines V
                          --classes C [--head-prefix classifier] [--head-layers K] [--arch megatron]
      Opens the gzip tar with Python's tarfile, torch.load()s ./model_weights.ckpt from memory and
      checks the NeMo state-dict keys, shapes and dtypes expected for that shape (Megatron's
      vocab padding to a multiple of 128), the encoder config JSON (sorted keys, indent 2) and
      model_config.yaml (target, nemo: artifact references present in the archive).
  check_nemo.py same-weights A.nemo B.nemo [--only-prefix P]
      Exit 0 when both archives hold bitwise-equal tensors under the same keys, 3 when a tensor
      differs (so a caller that wants "different" can tell it from a failed check, exit 1).
  check_nemo.py megatron NEMO CKPT_DIR
      The .nemo's encoder tensors (bert_model.<name>) equal the merged TP=1 weights that
      tools/make_megatron_ckpt.py wrote next to the Megatron checkpoint (expected.idx/.f32),
      over the vocab rows both hold; rows past the checkpoint's are zero.
  check_nemo.py nemo-style IN.nemo OUT.nemo
      Rewrites model_config.yaml the way NeMo writes it: no language_model.config block (the
      encoder is described only by the config_file member) and no megatune-only keys.
  check_nemo.py make-bad OUT KIND [SOURCE.nemo]
      Writes a malicious or broken archive: dotdot (../ member), absolute (/tmp/... member),
      symlink, hardlink, device, truncated (first half of SOURCE), garbage.
"""
import io
import json
import sys
import tarfile


def fail(msg):
    print("check_nemo: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read_members(path):
    out = {}
    with tarfile.open(path, "r:gz") as t:
        for m in t.getmembers():
            if m.isdir():
                continue
            if not m.isfile():
                fail("%s: member %s is not a regular file" % (path, m.name))
            out[m.name] = t.extractfile(m).read()
    return out


def load_weights(members):
    import torch
    if "./model_weights.ckpt" not in members:
        fail("no ./model_weights.ckpt member (members: %s)" % sorted(members))
    return torch.load(io.BytesIO(members["./model_weights.ckpt"]), map_location="cpu")


def expected_keys(a):
    v = (a.vocab_lines + 127) // 128 * 128
    h, f = a.hidden, a.ffn or 4 * a.hidden
    lm = "bert_model.language_model."
    e = {
        lm + "embedding.word_embeddings.weight": (v, h),
        lm + "embedding.position_embeddings.weight": (a.positions, h),
        lm + "embedding.tokentype_embeddings.weight": (2, h),
    }
    for l in range(a.layers):
        p = lm + "transformer.layers.%d." % l
        e[p + "input_layernorm.weight"] = (h,)
        e[p + "input_layernorm.bias"] = (h,)
        e[p + "attention.query_key_value.weight"] = (3 * h, h)
        e[p + "attention.query_key_value.bias"] = (3 * h,)
        e[p + "attention.dense.weight"] = (h, h)
        e[p + "attention.dense.bias"] = (h,)
        e[p + "post_attention_layernorm.weight"] = (h,)
        e[p + "post_attention_layernorm.bias"] = (h,)
        e[p + "mlp.dense_h_to_4h.weight"] = (f, h)
        e[p + "mlp.dense_h_to_4h.bias"] = (f,)
        e[p + "mlp.dense_4h_to_h.weight"] = (h, f)
        e[p + "mlp.dense_4h_to_h.bias"] = (h,)
    e[lm + "transformer.final_layernorm.weight"] = (h,)
    e[lm + "transformer.final_layernorm.bias"] = (h,)
    for i in range(a.head_layers):
        out = a.classes if i == a.head_layers - 1 else h
        e["%s.mlp.layer%d.weight" % (a.head_prefix, 2 * i)] = (out, h)
        e["%s.mlp.layer%d.bias" % (a.head_prefix, 2 * i)] = (out,)
    return e


def inspect(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("nemo")
    for k in ("hidden", "layers", "heads", "positions", "vocab_lines", "classes"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, required=True)
    ap.add_argument("--ffn", type=int, default=0)
    ap.add_argument("--head-prefix", default="classifier")
    ap.add_argument("--head-layers", type=int, default=2)
    a = ap.parse_args(argv)
    import torch
    import yaml
    members = read_members(a.nemo)
    sd = load_weights(members)
    want = expected_keys(a)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    if set(got) != set(want):
        fail("keys differ: missing %s, unexpected %s" % (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    for k, s in want.items():
        if got[k] != s:
            fail("%s has shape %s, want %s" % (k, got[k], s))
        if sd[k].dtype != torch.float32:
            fail("%s has dtype %s" % (k, sd[k].dtype))
        if not torch.isfinite(sd[k]).all():
            fail("%s holds non-finite values" % k)
    cfg = yaml.safe_load(members["./model_config.yaml"].decode())
    if "target" not in cfg or not cfg["target"].startswith("nemo.collections.nlp.models."):
        fail("model_config.yaml has no NeMo target: %r" % cfg.get("target"))
    refs = [cfg["tokenizer"]["vocab_file"], cfg["language_model"]["config_file"]]
    if cfg.get("class_labels", {}).get("class_labels_file"):
        refs.append(cfg["class_labels"]["class_labels_file"])
    for r in refs:
        if not r.startswith("nemo:") or "./" + r[5:] not in members:
            fail("artifact reference %r is not a member" % r)
    enc_name = "./" + cfg["language_model"]["config_file"][5:]
    enc_text = members[enc_name].decode()
    enc = json.loads(enc_text)
    if enc_text != json.dumps(enc, indent=2, sort_keys=True):
        fail("encoder config JSON is not sorted-keys indent-2")
    for k, v in (("hidden_size", a.hidden), ("num_layers", a.layers), ("num_attention_heads", a.heads),
                 ("max_position_embeddings", a.positions)):
        if enc.get(k) != v:
            fail("encoder config %s = %r, want %r" % (k, enc.get(k), v))
    # NeMo's Megatron-tokenizer members (its docs' model-parallel listing)
    vocab = members.get("./tokenizer.vocab_file")
    if vocab is None or vocab.decode().count("\n") != a.vocab_lines:
        fail("./tokenizer.vocab_file missing or with the wrong line count")
    if cfg["tokenizer"]["vocab_file"] != "nemo:tokenizer.vocab_file":
        fail("tokenizer.vocab_file = %r" % cfg["tokenizer"]["vocab_file"])
    vd = {}
    for i, t in enumerate(vocab.decode().split("\n")[:-1]):
        vd[t] = i
    want = json.dumps(dict(sorted(vd.items(), key=lambda kv: kv[1])), indent=2, sort_keys=True) + "\n"
    if members.get("./tokenizer_vocab_dict.json", b"").decode() != want:
        fail("./tokenizer_vocab_dict.json differs from json.dumps(vocab, indent=2, sort_keys=True)")
    ver = members.get("./megatron_checkpoint_version.json")
    if ver is None or ver.decode() != json.dumps({"checkpoint_version": 3.0}):
        fail("./megatron_checkpoint_version.json is %r" % ver)
    print("check_nemo: ok: %d tensors, target %s" % (len(sd), cfg["target"]))


def same_weights(argv):
    import torch
    prefix = ""
    if "--only-prefix" in argv:
        i = argv.index("--only-prefix")
        prefix = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    a = load_weights(read_members(argv[0]))
    b = load_weights(read_members(argv[1]))
    if set(a) != set(b):
        fail("key sets differ")
    n = 0
    for k in a:
        if not k.startswith(prefix):
            continue
        if a[k].shape != b[k].shape or not torch.equal(a[k], b[k]):
            print("check_nemo: tensor %s differs" % k, file=sys.stderr)
            sys.exit(3)
        n += 1
    print("check_nemo: %d tensors equal" % n)


def megatron(argv):
    import numpy as np
    import torch
    sd = load_weights(read_members(argv[0]))
    flat = np.fromfile(argv[1] + "/expected.f32", dtype="<f4")
    n = 0
    for line in open(argv[1] + "/expected.idx"):
        name, ndim, d0, d1, off = line.split()
        d0, d1, off = int(d0), int(d1), int(off)
        want = torch.from_numpy(flat[off:off + d0 * d1].copy()).reshape((d0, d1) if int(ndim) == 2 else (d0,))
        key = "bert_model." + name
        if key not in sd:
            if name.startswith("language_model.") and ".pooler." not in name:
                fail("%s missing from the .nemo" % key)
            continue  # pooler / lm_head: not part of the fine-tuning model
        got = sd[key]
        rows = min(got.shape[0], want.shape[0])
        if not torch.equal(got[:rows], want[:rows]):
            fail("%s differs from the Megatron checkpoint" % key)
        if got.shape[0] > rows and got[rows:].abs().sum() != 0:
            fail("%s: rows past the checkpoint's are not zero" % key)
        n += 1
    print("check_nemo: %d encoder tensors equal the Megatron checkpoint" % n)


def nemo_style(argv):
    import yaml
    members = read_members(argv[0])
    cfg = yaml.safe_load(members["./model_config.yaml"].decode())
    cfg["language_model"]["config"] = None
    cfg["tokenizer"].pop("do_lower_case", None)
    members["./model_config.yaml"] = yaml.safe_dump(cfg).encode()
    with tarfile.open(argv[1], "w:gz") as t:
        for name in ["./model_config.yaml"] + [m for m in members if m != "./model_config.yaml"]:
            ti = tarfile.TarInfo(name)
            ti.size = len(members[name])
            t.addfile(ti, io.BytesIO(members[name]))


def make_bad(argv):
    out, kind = argv[0], argv[1]
    if kind in ("truncated",):
        data = open(argv[2], "rb").read()
        open(out, "wb").write(data[: len(data) // 2])
        return
    if kind == "garbage":
        open(out, "wb").write(b"this is not a tar.gz file\n" * 10)
        return
    with tarfile.open(out, "w:gz") as t:
        def add(name, data=b"x", **kw):
            ti = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(ti, k, v)
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
        add("./model_config.yaml", b"target: nemo.collections.nlp.models.TextClassificationModel\n")
        if kind == "dotdot":
            add("./../../megatune_evil_member.txt", b"escaped\n")
        elif kind == "absolute":
            add("/tmp/megatune_evil_absolute.txt", b"escaped\n")
        elif kind == "symlink":
            add("./model_weights.ckpt", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        elif kind == "hardlink":
            add("./model_weights.ckpt", type=tarfile.LNKTYPE, linkname="/etc/passwd")
        elif kind == "device":
            add("./model_weights.ckpt", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        else:
            fail("unknown kind %s" % kind)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "inspect":
        inspect(rest)
    elif cmd == "same-weights":
        same_weights(rest)
    elif cmd == "megatron":
        megatron(rest)
    elif cmd == "nemo-style":
        nemo_style(rest)
    elif cmd == "make-bad":
        make_bad(rest)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
