#!/usr/bin/env python3
"""An independent Python implementation of conlleval (CoNLL-2000 evaluation script, default
mode) written from its rules, used to check megatune's C version (tests/unit/test_metrics.c).

Input: conlleval's format, "token ... gold guess" per line, blank line = sentence boundary.
A line whose first field is "-X-" is a boundary too. "-DOCSTART- -X- O O" lines are ordinary
tokens (counted in the token accuracy), as in the perl script.
Output: found_correct, found_guessed, correct_chunks, correct_tags, tokens, precision, recall,
f1, accuracy (one "name value" per line), plus per type "type:<T> p r f1".
"""
import sys
from collections import Counter


def parse(tag):
    # perl: ($tag, $type) = split(/-/, $s); $type = $type ? $type : ""
    parts = [p for p in tag.split("-")]
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()  # perl's split drops trailing empty fields
    t = parts[0]
    ty = parts[1] if len(parts) > 1 else ""
    if ty in ("", "0"):
        ty = ""
    return t, ty


ENDS = {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}
STARTS = {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")}


def chunk_end(pt, t, pty, ty):
    return ((pt, t) in ENDS or (pt not in ("O", ".") and pty != ty) or pt in ("[", "]"))


def chunk_start(pt, t, pty, ty):
    return ((pt, t) in STARTS or (t not in ("O", ".") and pty != ty) or t in ("[", "]"))


def evaluate(lines):
    c = Counter()
    per_correct, per_guessed, per_chunk = Counter(), Counter(), Counter()
    last = ("O", "", "O", "")  # correct tag/type, guessed tag/type
    in_correct = False
    for line in lines:
        f = line.split()
        boundary = len(f) == 0 or f[0] == "-X-"
        if boundary:
            ct, cty, gt, gty = "O", "", "O", ""
        else:
            ct, cty = parse(f[-2])
            gt, gty = parse(f[-1])
        lct, lcty, lgt, lgty = last
        ec, eg = chunk_end(lct, ct, lcty, cty), chunk_end(lgt, gt, lgty, gty)
        sc, sg = chunk_start(lct, ct, lcty, cty), chunk_start(lgt, gt, lgty, gty)
        if in_correct:
            if ec and eg and lgty == lcty:
                in_correct = False
                c["correct_chunks"] += 1
                per_chunk[lcty] += 1
            elif ec != eg or gty != cty:
                in_correct = False
        if sc and sg and gty == cty:
            in_correct = True
        if sc:
            c["found_correct"] += 1
            per_correct[cty] += 1
        if sg:
            c["found_guessed"] += 1
            per_guessed[gty] += 1
        if not boundary:
            if ct == gt and cty == gty:
                c["correct_tags"] += 1
            c["tokens"] += 1
        last = (ct, cty, gt, gty)
    if in_correct:
        c["correct_chunks"] += 1
        per_chunk[last[1]] += 1

    def prf(ok, guessed, correct):
        p = 100.0 * ok / guessed if guessed else 0.0
        r = 100.0 * ok / correct if correct else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    p, r, f1 = prf(c["correct_chunks"], c["found_guessed"], c["found_correct"])
    out = {k: c[k] for k in ("found_correct", "found_guessed", "correct_chunks", "correct_tags", "tokens")}
    out.update(precision=p, recall=r, f1=f1, accuracy=100.0 * c["correct_tags"] / c["tokens"] if c["tokens"] else 0.0)
    types = sorted(set(per_correct) | set(per_guessed))
    return out, {t: prf(per_chunk[t], per_guessed[t], per_correct[t]) for t in types}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        res, per_type = evaluate(fh.read().split("\n"))
    for k, v in res.items():
        print(f"{k} {float(v):.17g}")
    for t, (p, r, f) in per_type.items():
        print(f"type:{t} {p:.17g} {r:.17g} {f:.17g}")
