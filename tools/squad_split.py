#!/usr/bin/env python3
"""Splits a SQuAD .json (or .json.zip) by article for the learning check: articles [0, N) -> OUT/train.json;
with --val K, articles [N, N+K) -> OUT/val.json (validation: checkpoint choice and settings); the rest ->
OUT/heldout.json (scored once at the end). Prints the trivial baselines (official v1.1 scores via
tools/squad_eval_ref.py rules) on the held-back questions (and on val.json): empty answer, the context's
first sentence, its first 3 words; writes each baseline's answers as OUT/baseline_<name>.json (question id
-> answer, the predictions.json format) so `megatune eval-squad OUT/heldout.json OUT/baseline_<name>.json`
scores them too.
usage: squad_split.py DATA.json[.zip] N OUT_DIR [--val K]"""
import json, os, re, sys, zipfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from squad_eval_ref import normalize, f1_v1  # noqa: E402

args = sys.argv[1:]
k = 0
if "--val" in args:
    i = args.index("--val")
    k = int(args[i + 1])
    del args[i:i + 2]
if len(args) != 3:
    sys.exit(__doc__)
src, n, out = args[0], int(args[1]), args[2]
if src.endswith(".zip"):
    z = zipfile.ZipFile(src)
    d = json.loads(z.read([x for x in z.namelist() if x.endswith(".json") and "MACOSX" not in x][0]))
else:
    d = json.load(open(src, encoding="utf-8"))
if n < 1 or k < 0 or n + k >= len(d["data"]):
    sys.exit("squad_split.py: N=%d and --val %d leave no held-back article (the file has %d)" % (n, k, len(d["data"])))
os.makedirs(out, exist_ok=True)
json.dump(dict(d, data=d["data"][:n]), open(os.path.join(out, "train.json"), "w"))
splits = [("heldout", dict(d, data=d["data"][n + k:]))]
if k:
    splits.append(("val", dict(d, data=d["data"][n:n + k])))
base = {"empty": lambda c: "", "first_sentence": lambda c: re.split(r"(?<=[.!?])\s", c, 1)[0],
        "first_3_words": lambda c: " ".join(c.split()[:3])}
for split, part in splits:
    json.dump(part, open(os.path.join(out, split + ".json"), "w"))
    for name, fn in base.items():
        em = f1 = tot = 0
        preds = {}
        for a in part["data"]:
            for p in a["paragraphs"]:
                for qa in p["qas"]:
                    pr, g = fn(p["context"]), [x["text"] for x in qa["answers"]]
                    preds[qa["id"]] = pr
                    em += max(normalize(pr) == normalize(x) for x in g)
                    f1 += max(f1_v1(pr, x) for x in g)
                    tot += 1
        if split == "heldout":
            json.dump(preds, open(os.path.join(out, "baseline_%s.json" % name), "w"))
        print("%s baseline %-15s exact_match %.2f f1 %.2f (%d questions, %d articles)"
              % (split, name, 100.0 * em / tot, 100.0 * f1 / tot, tot, len(part["data"])))
