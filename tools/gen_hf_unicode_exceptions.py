#!/usr/bin/env python3
"""Finds the code points where Hugging Face's BERT tokenizer classifies a character differently
from utf8proc, and prints them as the C table in src/text/hf_unicode.c.

Why: HF's normalizer and pre-tokenizer (Rust) take "control" (Cc|Cf|Co), "punctuation" (P*) and
"non-spacing mark" (Mn) from the unicode_categories crate 0.1.1, and NFD (decompositions,
combining classes) from unicode-normalization-alignments 0.1.12: both have Unicode 9.0 tables;
utf8proc (2.8 here) is Unicode 15. So to HF every character assigned after Unicode 9.0 is an
unassigned code point: an ordinary character, with no decomposition and combining class 0
(class MT_HF_NEW; the set comes from Perl's Unicode::UCD "Present_In=9.0" plus utf8proc for
characters newer than Perl's tables). A few older characters changed category since 9.0
(e.g. U+166D Po -> So): those get HF's class, found by the sweep below. Everything else comes
from utf8proc. The sweep checks both parts: every code point must then classify as HF does.

How: every code point c is tokenized by HF (tools/hf_tokenize.js) as "x<c>y" with a 8-token vocab
([PAD] [UNK] [CLS] [SEP] [MASK] x y ##y), cased and uncased; the ids show what HF did with c:
  x ##y        removed (cased: control; uncased only: a non-spacing mark stripped)
  x y          whitespace
  x [UNK] y    isolated (punctuation, or CJK)
  other        an ordinary character
The same classes are computed from utf8proc (through ctypes) with the rules of src/text/tokenizer.c.

usage: tools/gen_hf_unicode_exceptions.py > table.txt   (needs node + tools/node_modules/tokenizers)
"""
import ctypes
import ctypes.util
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PLAIN, CONTROL, SPACE, ISOLATED, MARK = "plain", "control", "space", "isolated", "mark"


def cjk(c):
    return any(a <= c <= b for a, b in [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                        (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)])


def utf8proc_classes(cps):
    lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so.2")
    lib.utf8proc_get_property.restype = ctypes.POINTER(ctypes.c_int16)
    lib.utf8proc_get_property.argtypes = [ctypes.c_int32]
    CC, CF, CO, MN, ZS, ZL, ZP = 26, 27, 29, 6, 23, 24, 25
    PC, PO = 12, 18
    out = {}
    for c in cps:
        cat = lib.utf8proc_get_property(c)[0]
        if c in (9, 10, 13) or c == 32 or cat in (ZS, ZL, ZP):
            k = SPACE
        elif c == 0 or c == 0xFFFD or cat in (CC, CF, CO):
            k = CONTROL
        elif cjk(c) or PC <= cat <= PO or (c < 128 and chr(c) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"):
            k = ISOLATED
        else:
            k = PLAIN
        out[c] = (k, k == CONTROL or (k == PLAIN and cat == MN))
    return out


def present_in_9():
    out = subprocess.run(["perl", "-MUnicode::UCD=prop_invlist", "-e",
                          'print join(",", prop_invlist("Present_In=9.0")), "\\n"'],
                         capture_output=True, check=True, text=True).stdout.strip().split(",")
    inv = [int(x) for x in out]
    old = bytearray(0x110000)
    for i in range(0, len(inv), 2):
        end = inv[i + 1] if i + 1 < len(inv) else 0x110000
        old[inv[i]:end] = b"\x01" * (end - inv[i])
    return old


def hf_classes(cps):
    with tempfile.TemporaryDirectory() as tmp:
        vocab = os.path.join(tmp, "vocab.txt")
        with open(vocab, "w") as f:
            f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\ny\n##y\n")
        text = os.path.join(tmp, "sweep.txt")
        with open(text, "w", encoding="utf-8") as f:
            for c in cps:
                f.write(f"x{chr(c)}y\n")
        res = {}
        for casing in ("cased", "uncased"):
            with open(text, "rb") as fin:
                out = subprocess.run(["node", os.path.join(HERE, "hf_tokenize.js"), "--vocab", vocab, f"--{casing}"],
                                     stdin=fin, capture_output=True, check=True).stdout.decode().split("\n")
            res[casing] = out
    classes = {}
    for i, c in enumerate(cps):
        def kind(ids):
            if ids == "5 7": return CONTROL
            if ids == "5 6": return SPACE
            if ids == "5 1 6": return ISOLATED
            return PLAIN
        kc, ku = kind(res["cased"][i]), kind(res["uncased"][i])
        classes[c] = (kc, ku == CONTROL)  # (cased class, removed when uncased)
    return classes


def main():
    # Code points that cannot be one line of UTF-8 text: surrogates, and \n (the line separator).
    cps = [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF) and c != 10]
    hf, mine = hf_classes(cps), utf8proc_classes(cps)
    old = present_in_9()
    lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so.2")
    lib.utf8proc_get_property.restype = ctypes.POINTER(ctypes.c_int16)
    lib.utf8proc_get_property.argtypes = [ctypes.c_int32]
    names = {PLAIN: "MT_HF_PLAIN", CONTROL: "MT_HF_CONTROL", ISOLATED: "MT_HF_PUNCT", MARK: "MT_HF_MARK"}
    rows = []
    for c in cps:
        if not old[c] and lib.utf8proc_get_property(c)[0] != 0:  # assigned now, not in Unicode 9.0
            if hf[c] != ((ISOLATED if cjk(c) else PLAIN), False):  # CJK ranges are isolated by range
                sys.exit(f"U+{c:04X} is newer than Unicode 9.0 but HF does not treat it as ordinary: {hf[c]}")
            rows.append((c, "MT_HF_NEW"))
            continue
        if hf[c] != mine[c]:
            kc, stripped = hf[c]
            if SPACE in (kc, mine[c][0]):
                sys.exit(f"U+{c:04X}: whitespace differs; not representable")
            want = kc if kc != PLAIN else (MARK if stripped else PLAIN)
            if kc == ISOLATED and cjk(c):
                sys.exit(f"U+{c:04X}: CJK differs")
            rows.append((c, names[want]))
    ranges = []
    for c, k in rows:
        if ranges and ranges[-1][1] == c - 1 and ranges[-1][2] == k:
            ranges[-1][1] = c
        else:
            ranges.append([c, c, k])
    print(f"// {len(rows)} code points in {len(ranges)} ranges", file=sys.stderr)
    for a, b, k in ranges:
        print(f"    {{0x{a:04X}, 0x{b:04X}, {k}}},")


if __name__ == "__main__":
    main()
