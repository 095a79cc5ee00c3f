#!/usr/bin/env python3
"""Splits a SQuAD .json (or .json.zip) by article for the learning check: articles [0, N) -> OUT/train.json,
the rest -> OUT/heldout.json. Also prints the trivial baselines on the held-back questions
(official v1.1 scores via tools/squad_eval_ref.py rules): empty answer, the context's first
sentence, its first 3 words.
usage: squad_split.py DATA.json[.zip] N OUT_DIR"""
import json, os, re, sys, zipfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from squad_eval_ref import normalize, f1_v1  # noqa: E402

src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if src.endswith(".zip"):
    z = zipfile.ZipFile(src)
    d = json.loads(z.read([x for x in z.namelist() if x.endswith(".json") and "MACOSX" not in x][0]))
else:
    d = json.load(open(src, encoding="utf-8"))
os.makedirs(out, exist_ok=True)
json.dump(dict(d, data=d["data"][:n]), open(os.path.join(out, "train.json"), "w"))
held = dict(d, data=d["data"][n:])
json.dump(held, open(os.path.join(out, "heldout.json"), "w"))
base = {"empty": lambda c: "", "first_sentence": lambda c: re.split(r"(?<=[.!?])\s", c, 1)[0],
        "first_3_words": lambda c: " ".join(c.split()[:3])}
for name, fn in base.items():
    em = f1 = tot = 0
    for a in held["data"]:
        for p in a["paragraphs"]:
            for qa in p["qas"]:
                pr, g = fn(p["context"]), [x["text"] for x in qa["answers"]]
                em += max(normalize(pr) == normalize(x) for x in g)
                f1 += max(f1_v1(pr, x) for x in g)
                tot += 1
    print("baseline %-15s exact_match %.2f f1 %.2f (%d held-back questions)" % (name, 100.0 * em / tot, 100.0 * f1 / tot, tot))
