#!/usr/bin/env python3
"""Writes hostile / malformed torch checkpoint files for tests/unit/test_ckpt_hostile.c.

usage: make_hostile_ckpt.py OUTDIR MARKER
Files whose unpickling in Python WOULD run code (os.system, builtins.eval, subprocess) create
MARKER; a safe reader must leave MARKER absent. The others are malformed in one specific way;
hostile.txt lists "file expected-error-substring" ("OK" = must open fine).
"""
import builtins
import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile

import torch

out, marker = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
cases = []


class Evil:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def save(name, obj, expect, legacy=False):
    torch.save(obj, os.path.join(out, name), _use_new_zipfile_serialization=not legacy)
    cases.append((name, expect))


w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
save("evil_system.pt", {"w": w, "x": Evil(os.system, ("touch %s" % marker,))}, "OK")
save("evil_eval.pt", {"w": w, "x": Evil(builtins.eval, ("open(%r, 'w')" % marker,))}, "OK")
save("evil_subprocess.pt", {"w": w, "x": Evil(subprocess.call, (["touch", marker],))}, "OK")
save("evil_legacy.pt", {"w": w, "x": Evil(os.system, ("touch %s" % marker,))}, "OK", legacy=True)
save("evil_exec_in_model.pt", {"model": {"language_model": Evil(builtins.exec, ("open(%r,'w')" % marker,))}}, "OK")


# ---- hand-built zip checkpoints with a chosen tensor header ---------------------------------
class FakeStorage:
    pass


class FakeTensor:
    def __init__(self, offset, size, stride):
        self.a = (offset, size, stride)

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (STORE, self.a[0], self.a[1], self.a[2], False, collections.OrderedDict()))


STORE = FakeStorage()


class P(pickle.Pickler):
    numel = 10

    def persistent_id(self, obj):
        if obj is STORE:
            return ("storage", torch.FloatStorage, "0", "cpu", P.numel)
        return None


def crafted(name, tensor, numel, data_bytes, expect, members=None, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    P.numel = numel
    P(buf, protocol=2).dump({"t": tensor})
    with zipfile.ZipFile(os.path.join(out, name), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        if members is None:
            z.writestr("archive/data/0", data_bytes)
        else:
            for k, v in members.items():
                z.writestr(k, v, compress_type=compress)
        z.writestr("archive/version", "3\n")
    cases.append((name, expect))


crafted("ok_crafted.pt", FakeTensor(0, (2, 5), (5, 1)), 10, b"\0" * 40, "OK")
crafted("short_storage.pt", FakeTensor(0, (10,), (1,)), 100, b"\0" * 40, "declares 100")
crafted("view_past_storage.pt", FakeTensor(0, (20,), (1,)), 10, b"\0" * 40, "needs storage element 19")
crafted("offset_past_storage.pt", FakeTensor(1000, (2,), (1,)), 10, b"\0" * 40, "needs storage element 1001")
crafted("huge_sizes.pt", FakeTensor(0, (2 ** 62, 2 ** 62), (1, 1)), 10, b"\0" * 40, "overflow")
crafted("negative_stride.pt", FakeTensor(0, (3,), (-1,)), 10, b"\0" * 40, "stride")
# one float viewed as [2^31, 2^31] through zero strides: 2^62 elements (convert sized a buffer of
# 2^62 * 4 bytes, which wrapped to 0)
crafted("zero_stride_huge.pt", FakeTensor(0, (2 ** 31, 2 ** 31), (0, 0)), 1, b"\0" * 4, "the file is corrupt")
crafted("missing_member.pt", FakeTensor(0, (3,), (1,)), 10, b"", "has no member", members={})
crafted("compressed_member.pt", FakeTensor(0, (3,), (1,)), 10, b"", "compressed",
        members={"archive/data/0": b"\0" * 40}, compress=zipfile.ZIP_DEFLATED)


def raw_zip(name, pkl, expect):
    with zipfile.ZipFile(os.path.join(out, name), "w", zipfile.ZIP_STORED) as z:
        z.writestr("x/data.pkl", pkl)
    cases.append((name, expect))


raw_zip("memo_unknown.pt", b"\x80\x02h\x05.", "memo index 5")
raw_zip("bad_opcode.pt", b"\x80\x02\xff.", "opcode 0xff")
raw_zip("no_stop.pt", b"\x80\x02}q\x00", "no STOP")
raw_zip("self_list.pt", b"\x80\x02]q\x00h\x00a.", "OK")
raw_zip("deep_dicts.pt", b"\x80\x02}" + b"X\x01\x00\x00\x00k}" * 200 + b"s" * 200 + b".", "OK")
raw_zip("huge_string.pt", b"\x80\x02X\xff\xff\xff\x7fabc.", "truncated")
raw_zip("huge_long.pt", b"\x80\x02\x8b\xff\xff\xff\x7f.", "truncated")
raw_zip("setitems_no_dict.pt", b"\x80\x02(X\x01\x00\x00\x00aK\x01u.", "SETITEMS")
raw_zip("reduce_non_callable.pt", b"\x80\x02K\x01)R.", "not a callable")
raw_zip("persid_bad.pt", b"\x80\x02X\x03\x00\x00\x00abcQ.", "persistent id")
raw_zip("storage_type_bad.pt",
        b"\x80\x02(X\x07\x00\x00\x00storagecos\nsystem\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ.",
        "storage type 'os.system'")

# a pickle that is not in a zip and not torch's legacy layout
with open(os.path.join(out, "plain_pickle.pt"), "wb") as f:
    f.write(pickle.dumps({"a": 1}, protocol=2))
cases.append(("plain_pickle.pt", "legacy magic"))
with open(os.path.join(out, "garbage.pt"), "wb") as f:
    f.write(b"hello world, not a checkpoint")
cases.append(("garbage.pt", "not a PyTorch checkpoint"))

with open(os.path.join(out, "hostile.txt"), "w") as f:
    for n, e in cases:
        f.write("%s\t%s\n" % (n, e))
