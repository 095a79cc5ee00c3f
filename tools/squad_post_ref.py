#!/usr/bin/env python3
"""Independent reference for SQuAD post-processing: Google BERT's write_predictions and
get_final_text (with its BasicTokenizer), written from the rules, for tests of megatune's.
usage: squad_post_ref.py DATA.json FEATURES.tsv VOCAB LOGITS OUT_DIR [--v2] [--n_best_size 20]
         [--max_answer_length 30] [--null_score_diff_threshold 0.0] [--no_lower_case]
FEATURES.tsv: `megatune data squad-features` lines (checked equal to squad_features_ref.py);
LOGITS: "feature start_logits... end_logits..." per line (max_seq_length values each)."""
import argparse, collections, json, math, os, unicodedata


def bert_ws(c):
    return c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F


def basic_tokenize(text, lower):
    def is_ws(c):
        return c in (" ", "\t", "\n", "\r") or unicodedata.category(c) == "Zs"
    def is_ctrl(c):
        return c not in ("\t", "\n", "\r") and unicodedata.category(c).startswith("C")
    def is_punct(c):
        o = ord(c)
        return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or unicodedata.category(c).startswith("P")
    def is_cjk(o):
        return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or 0x2A700 <= o <= 0x2B73F
                or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or 0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F)
    out = []
    for c in text:
        if ord(c) in (0, 0xFFFD) or is_ctrl(c):
            continue
        out.append(" " if is_ws(c) else (" %s " % c if is_cjk(ord(c)) else c))
    tokens = []
    for w in "".join(out).split():
        if lower:
            w = "".join(ch for ch in unicodedata.normalize("NFD", w.lower()) if unicodedata.category(ch) != "Mn")
        cur = []
        for ch in w:
            if is_punct(ch):
                if cur: tokens.append("".join(cur)); cur = []
                tokens.append(ch)
            else:
                cur.append(ch)
        if cur: tokens.append("".join(cur))
    return tokens


def final_text(pred, orig, lower):
    tok_text = " ".join(basic_tokenize(orig, lower))
    start = tok_text.find(pred)
    if start == -1:
        return orig
    end = start + len(pred) - 1
    def strip(t):
        ns, m = [], {}
        for i, c in enumerate(t):
            if c == " ": continue
            m[len(ns)] = i; ns.append(c)
        return "".join(ns), m
    ons, omap = strip(orig)
    tns, tmap = strip(tok_text)
    if len(ons) != len(tns):
        return orig
    inv = {v: k for k, v in tmap.items()}
    if start not in inv or inv[start] not in omap or end not in inv or inv[end] not in omap:
        return orig
    return orig[omap[inv[start]]: omap[inv[end]] + 1]


def best_idx(v, n):
    return [i for i, _ in sorted(enumerate(v), key=lambda x: x[1], reverse=True)[:n]]


def main():
    ap = argparse.ArgumentParser()
    for x in ("data", "features", "vocab", "logits", "out"): ap.add_argument(x)
    ap.add_argument("--v2", action="store_true"); ap.add_argument("--no_lower_case", action="store_true")
    ap.add_argument("--n_best_size", type=int, default=20); ap.add_argument("--max_answer_length", type=int, default=30)
    ap.add_argument("--null_score_diff_threshold", type=float, default=0.0)
    a = ap.parse_args()
    vocab = [l.rstrip() for l in open(a.vocab, encoding="utf-8")]
    rev = {}
    for i, t in enumerate(vocab): rev[t] = i
    words_of = {}
    order = []
    for art in json.load(open(a.data, encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            words, prev = [], True
            for c in p["context"]:
                if bert_ws(c): prev = True
                else:
                    if prev: words.append(c)
                    else: words[-1] += c
                    prev = False
            for qa in p["qas"]:
                words_of[qa["id"]] = words; order.append(qa["id"])
    feats = collections.defaultdict(list)
    flist = []
    for line in open(a.features, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        F = {"id": f[0], "ids": list(map(int, f[2].split())), "mc": list(map(int, f[6].split())),
             "t2o": list(map(int, f[7].split()))}
        feats[f[0]].append(len(flist)); flist.append(F)
    logits = {}
    for line in open(a.logits):
        v = line.split(); fi = int(v[0]); x = [float(t) for t in v[1:]]; h = len(x) // 2
        logits[fi] = (x[:h], x[h:])
    preds, nbest_all, odds = collections.OrderedDict(), collections.OrderedDict(), collections.OrderedDict()
    for qid in order:
        if qid not in feats: continue
        prelim = []; null = 1000000; nf = 0; ns_ = ne_ = 0
        for fi in feats[qid]:
            F = flist[fi]; sl, el = logits[fi]
            if a.v2:
                s = sl[0] + el[0]
                if s < null: null, nf, ns_, ne_ = s, fi, sl[0], el[0]
            for s in best_idx(sl, a.n_best_size):
                for e in best_idx(el, a.n_best_size):
                    if s >= len(F["ids"]) or e >= len(F["ids"]): continue
                    if F["t2o"][s] < 0 or F["t2o"][e] < 0 or not F["mc"][s]: continue
                    if e < s or e - s + 1 > a.max_answer_length: continue
                    prelim.append((fi, s, e, sl[s], el[e]))
        if a.v2: prelim.append((nf, 0, 0, ns_, ne_))
        prelim = sorted(prelim, key=lambda x: x[3] + x[4], reverse=True)
        seen, nbest = {}, []
        for fi, s, e, x, y in prelim:
            if len(nbest) >= a.n_best_size: break
            F = flist[fi]
            if s > 0:
                tok = " ".join(vocab[i] for i in F["ids"][s: e + 1]).replace(" ##", "").replace("##", "")
                tok = " ".join(tok.strip().split())
                orig = " ".join(words_of[qid][F["t2o"][s]: F["t2o"][e] + 1])
                text = final_text(tok, orig, not a.no_lower_case)
                if text in seen: continue
                seen[text] = True
            else:
                text = ""; seen[text] = True
            nbest.append((text, x, y))
        if a.v2:
            if "" not in seen: nbest.append(("", ns_, ne_))
            if len(nbest) == 1: nbest.insert(0, ("empty", 0.0, 0.0))
        if not nbest: nbest.append(("empty", 0.0, 0.0))
        scores = [x + y for _, x, y in nbest]
        mx = max(scores); ex = [math.exp(s - mx) for s in scores]; tot = sum(ex)
        nbest_all[qid] = [collections.OrderedDict([("text", t), ("probability", p / tot), ("start_logit", x), ("end_logit", y)])
                          for (t, x, y), p in zip(nbest, ex)]
        if not a.v2:
            preds[qid] = nbest[0][0]
        else:
            b = next(n for n in nbest if n[0])
            diff = null - b[1] - b[2]
            odds[qid] = diff
            preds[qid] = "" if diff > a.null_score_diff_threshold else b[0]
    def w(name, obj):
        with open(os.path.join(a.out, name), "w") as f: f.write(json.dumps(obj, indent=4) + "\n")
    w("predictions.json", preds); w("nbest_predictions.json", nbest_all)
    if a.v2: w("null_odds.json", odds)


if __name__ == "__main__":
    main()
