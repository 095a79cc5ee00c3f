#!/usr/bin/env python3
"""Independent checks of files megatune wrote (used by tests/unit/test_ckpt_roundtrip.c).

usage: check_ckpt_roundtrip.py DIR
DIR/flat.pt          megatune mt_torch_save; DIR/flat.raw.* hold each tensor's raw bytes
DIR/nested.pt        {'model': {'language_model': {...}}, 'checkpoint_version': 3.0, ...}
DIR/st.safetensors   parsed with json + struct only (no safetensors package), compared with raw
DIR/model_weights.ckpt and DIR/wrapped.ckpt   the same NeMo state dict, plain and wrapped as
                     {'state_dict': ..., 'epoch': 3} with Megatron's newer 'encoder' / 'self_attention'
                     names: torch.load gives the same tensors under the mapped names
Exit 0 when everything matches bit-exactly; prints the first difference otherwise.
"""
import json
import os
import struct
import sys
import zipfile

import torch

D = sys.argv[1]
DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "int64": torch.int64,
      "float64": torch.float64, "int32": torch.int32, "uint8": torch.uint8}


def raw(name):
    with open(os.path.join(D, "flat.raw." + name), "rb") as f:
        return f.read()


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


# zip layout: stored members, 64-byte aligned data, prefix = basename without extension
with zipfile.ZipFile(os.path.join(D, "flat.pt")) as z:
    for info in z.infolist():
        if not info.filename.startswith("flat/"):
            fail("member %s lacks prefix flat/" % info.filename)
        if info.compress_type != 0:
            fail("member %s is compressed" % info.filename)
        with open(os.path.join(D, "flat.pt"), "rb") as f:
            f.seek(info.header_offset)
            h = f.read(30)
            nlen, xlen = struct.unpack("<HH", h[26:30])
            off = info.header_offset + 30 + nlen + xlen
            if info.filename.startswith("flat/data/") and off % 64:
                fail("member %s data at %d is not 64-byte aligned" % (info.filename, off))
    if z.testzip() is not None:
        fail("CRC error in flat.pt")

sd = torch.load(os.path.join(D, "flat.pt"))
with open(os.path.join(D, "flat.names")) as f:
    names = [l.split() for l in f if l.strip()]
if list(sd.keys()) != [n for n, _, _ in names]:
    fail("keys %s != %s" % (list(sd.keys()), [n for n, _, _ in names]))
if type(sd).__name__ != "OrderedDict":
    fail("root is %s" % type(sd))
for n, dt, shape in names:
    t = sd[n]
    if t.dtype != DT[dt]:
        fail("%s dtype %s != %s" % (n, t.dtype, dt))
    want_shape = [int(x) for x in shape.split(",")] if shape != "-" else []
    if list(t.shape) != want_shape:
        fail("%s shape %s != %s" % (n, list(t.shape), want_shape))
    if tensor_bytes(t) != raw(n):
        fail("%s bytes differ" % n)

z64 = torch.load(os.path.join(D, "zip64.pt"))
for n, dt, shape in names:
    if tensor_bytes(z64[n]) != raw(n):
        fail("zip64.pt %s bytes differ" % n)
with zipfile.ZipFile(os.path.join(D, "zip64.pt")) as z:
    if z.testzip() is not None:
        fail("CRC error in zip64.pt")
with open(os.path.join(D, "zip64.pt"), "rb") as f:
    if b"PK\x06\x06" not in f.read():
        fail("zip64.pt has no ZIP64 end record")

nest = torch.load(os.path.join(D, "nested.pt"))
if nest["checkpoint_version"] != 3.0 or not isinstance(nest["checkpoint_version"], float):
    fail("checkpoint_version %r" % nest.get("checkpoint_version"))
if nest["iteration"] != 7 or nest["name"] != "megatune" or nest["flag"] is not True or nest["none"] is not None:
    fail("scalars %r" % ({k: nest[k] for k in ("iteration", "name", "flag", "none")},))
if nest["big"] != -5000000000 or nest["lst"] != [1, 2.5, "x"] or nest["tup"] != (3, 4):
    fail("containers %r %r %r" % (nest["big"], nest["lst"], nest["tup"]))
w = nest["model"]["language_model"]["embedding"]["word_embeddings"]["weight"]
if tensor_bytes(w) != raw("w32"):
    fail("nested tensor bytes")

# safetensors: parse with json + struct only
with open(os.path.join(D, "st.safetensors"), "rb") as f:
    buf = f.read()
(hl,) = struct.unpack("<Q", buf[:8])
hdr = json.loads(buf[8:8 + hl])
data = buf[8 + hl:]
meta = hdr.pop("__metadata__", {})
if meta.get("format") != "pt":
    fail("metadata %r" % meta)
ends = sorted((v["data_offsets"][0], v["data_offsets"][1]) for v in hdr.values())
pos = 0
for b, e in ends:
    if b != pos:
        fail("safetensors data not contiguous at %d" % b)
    pos = e
if pos != len(data):
    fail("safetensors data section %d bytes, offsets cover %d" % (len(data), pos))
STD = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "F64": "float64", "I32": "int32", "U8": "uint8"}
for n, dt, shape in names:
    v = hdr[n]
    if STD[v["dtype"]] != dt:
        fail("safetensors %s dtype %s" % (n, v["dtype"]))
    want_shape = [int(x) for x in shape.split(",")] if shape != "-" else []
    if v["shape"] != want_shape:
        fail("safetensors %s shape %s" % (n, v["shape"]))
    b, e = v["data_offsets"]
    if data[b:e] != raw(n):
        fail("safetensors %s bytes" % n)
plain = torch.load(os.path.join(D, "model_weights.ckpt"))
wrapped = torch.load(os.path.join(D, "wrapped.ckpt"))
if wrapped.get("epoch") != 3 or not isinstance(wrapped.get("state_dict"), dict):
    fail("wrapped.ckpt: no state_dict or epoch %r" % wrapped.get("epoch"))
if not plain or not all(isinstance(t, torch.Tensor) for t in plain.values()):
    fail("model_weights.ckpt holds no tensors")


def newer_name(k):
    return k.replace("language_model.transformer.", "language_model.encoder.").replace(".attention.",
                                                                                      ".self_attention.")


renamed = {newer_name(k): t for k, t in plain.items()}
if set(renamed) != set(wrapped["state_dict"]):
    fail("wrapped.ckpt keys %s != %s" % (sorted(wrapped["state_dict"]), sorted(renamed)))
if not any(k != newer_name(k) for k in plain):
    fail("model_weights.ckpt has no key the newer names change")
for k, t in renamed.items():
    if not torch.equal(t, wrapped["state_dict"][k]):
        fail("wrapped.ckpt %s differs from model_weights.ckpt" % k)
print("roundtrip OK")
