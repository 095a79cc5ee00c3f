#!/usr/bin/env python3
"""The official SQuAD scoring rules (evaluate-v1.1.py / evaluate-v2.0.py), written from the rules
in ../shared/data/SOURCES.md, for tests of `megatune eval-squad`.
usage: squad_eval_ref.py DATA.json PRED.json [--na-prob-file F]   (version from the data file)"""
import argparse, collections, json, re, string, sys


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_v1(pred, gold):
    p, g = normalize(pred).split(), normalize(gold).split()
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0
    pr, rc = 1.0 * same / len(p), 1.0 * same / len(g)
    return (2 * pr * rc) / (pr + rc)


def f1_v2(pred, gold):
    p, g = normalize(pred).split() if pred else [], normalize(gold).split() if gold else []
    if not p or not g:
        return int(p == g)
    return f1_v1(pred, gold)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data"); ap.add_argument("pred"); ap.add_argument("--na-prob-file")
    a = ap.parse_args()
    d = json.load(open(a.data, encoding="utf-8"))
    preds = json.load(open(a.pred, encoding="utf-8"))
    if "2." not in d.get("version", ""):
        em = f1 = total = 0
        for art in d["data"]:
            for p in art["paragraphs"]:
                for qa in p["qas"]:
                    total += 1
                    if qa["id"] not in preds:
                        continue
                    golds = [x["text"] for x in qa["answers"]]
                    em += max(normalize(preds[qa["id"]]) == normalize(g) for g in golds)
                    f1 += max(f1_v1(preds[qa["id"]], g) for g in golds)
        print(json.dumps({"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}))
        return
    has, ex, f1s = {}, {}, {}
    for art in d["data"]:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                q = qa["id"]
                has[q] = bool(qa["answers"])
                golds = [x["text"] for x in qa["answers"] if normalize(x["text"])] or [""]
                pr = preds[q]
                ex[q] = max(int(normalize(pr) == normalize(g)) for g in golds)
                f1s[q] = max(f1_v2(pr, g) for g in golds)
    na = json.load(open(a.na_prob_file)) if a.na_prob_file else {k: 0.0 for k in preds}
    def thr(sc):
        return {q: (float(not has[q]) if na[q] > 1.0 else s) for q, s in sc.items()}
    et, ft = thr(ex), thr(f1s)
    def evald(e, f, ids=None):
        ids = list(e) if ids is None else ids
        return [("exact", 100.0 * sum(e[k] for k in ids) / len(ids)), ("f1", 100.0 * sum(f[k] for k in ids) / len(ids)),
                ("total", len(ids))]
    out = collections.OrderedDict(evald(et, ft))
    hq = [k for k in has if has[k]]; nq = [k for k in has if not has[k]]
    if hq:
        for k, v in evald(et, ft, hq): out["HasAns_" + k] = v
    if nq:
        for k, v in evald(et, ft, nq): out["NoAns_" + k] = v
    if a.na_prob_file:
        for name, sc in (("exact", ex), ("f1", f1s)):
            cur = best = sum(1 for k in has if not has[k]); bt = 0.0
            for q in sorted(na, key=lambda k: na[k]):
                if q not in sc: continue
                diff = sc[q] if has[q] else (-1 if preds[q] else 0)
                cur += diff
                if cur > best: best, bt = cur, na[q]
            out["best_" + name] = 100.0 * best / len(sc)
            out["best_" + name + "_thresh"] = bt
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
