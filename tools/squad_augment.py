#!/usr/bin/env python3
"""Synthetic SQuAD questions tried for the learning check (README, "Learning check"): none of them
helped a small model from random weights beat the first-sentence baseline; kept so the trials can be
repeated. Every mode reads only the input file's own contexts and questions.

A model trained from scratch on dev-v1.1's 42 training articles learns each paragraph's answers by
heart before it learns to match the question's words to the context. Each mode attacks that:
  cloze        for a sentence of a context, an answer-like span (a year, a number, a run of capitalised
               words) is cut out; the words around it, some dropped and the halves sometimes swapped,
               become the question, headed by a question word that fits ("when" for a year)
  cloze-mixed  the same, asked about new paragraphs of 3-7 sentences drawn at random from every context
               (no paragraph to learn by heart)
  real-mixed   each real question, asked about its answer's sentence set among 2-5 random sentences
               from other paragraphs, at a random place (3 variants per question)
  match        "what is W ?" about new paragraphs of 2-4 random sentences, where W is a word that occurs
               once in the paragraph and is the answer: pure word matching, as a sanity check (a 3x128
               model learns it: F1 78 on the validation articles after 600 steps)

usage: squad_augment.py MODE IN.json OUT.json [--count N] [--no-real] [--seed S]
  --count N   cloze: questions per paragraph (16); cloze-mixed / match: new paragraphs (8000);
              real-mixed: variants per question (3)
  --no-real   write only the synthetic questions (default: the input's questions too)"""
import json, random, re, sys

SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")
WORD = re.compile(r"\S+")
EDGE = "\"'()[],.;:!?"
SMALL = {"of", "the", "and", "de", "von", "van", "la", "du", "for"}
HEAD = {"year": ["when", "in what year", "what year"], "number": ["how many", "how much", "what"],
        "name": ["who", "what", "which", "where"]}


def words_of(text, base):
    """(start, end, word) in context offsets, punctuation stripped from both edges of each word."""
    out = []
    for m in WORD.finditer(text):
        w, s = m.group(), m.start()
        lead = len(w) - len(w.lstrip(EDGE))
        w = w.strip(EDGE)
        if w:
            out.append((base + s + lead, base + s + lead + len(w), w))
    return out


def answer_spans(ws):
    """Answer-like spans of a sentence as (first word, last word + 1, kind)."""
    out, i = [], 0
    while i < len(ws):
        w = ws[i][2]
        if re.fullmatch(r"1[0-9]{3}|20[0-9]{2}", w):
            out.append((i, i + 1, "year"))
        elif re.search(r"[0-9]", w):
            j = i + 1
            if j < len(ws) and ws[j][2].isalpha() and ws[j][2].islower():
                j += 1  # "3 million", "40 percent"
            out.append((i, j, "number"))
        elif w[0].isupper() and i > 0:
            j = i + 1
            while j < len(ws) and (ws[j][2][0].isupper() or (ws[j][2] in SMALL and j + 1 < len(ws)
                                                              and ws[j + 1][2][0].isupper())):
                j += 1
            if j - i <= 6:
                out.append((i, j, "name"))
            i = j
            continue
        i += 1
    return out


def cloze_question(rng, ws, a, b, kind):
    # real questions are short and share the words near the answer, paraphrased and reordered
    rest = [w for k, (_, _, w) in enumerate(ws) if a - 8 <= k < a or b <= k < b + 8]
    rest = [w for w in rest if rng.random() > 0.25]
    if len(rest) > 3 and rng.random() < 0.5:
        cut = rng.randrange(1, len(rest))
        rest = rest[cut:] + rest[:cut]
    return " ".join([rng.choice(HEAD[kind])] + rest) + "?"


def cloze_qas(rng, ctx, tag, limit):
    qs = []
    for m in SENTENCE.finditer(ctx):
        ws = words_of(m.group(), m.start())
        if len(ws) >= 5:
            for a, b, kind in answer_spans(ws):
                s, e = ws[a][0], ws[b - 1][1]
                qs.append((cloze_question(rng, ws, a, b, kind), s, ctx[s:e]))
    rng.shuffle(qs)
    return [{"id": "%s-%d" % (tag, k), "question": q, "answers": [{"answer_start": s, "text": t}]}
            for k, (q, s, t) in enumerate(qs[:limit])]


def match_qas(rng, ctx, tag):
    ws = [(m.start(), m.group()) for m in re.finditer(r"[A-Za-z]{4,}", ctx)]
    qs = []
    for k in range(4):
        s, w = rng.choice(ws)
        if len(re.findall(r"\b%s\b" % w, ctx)) == 1:
            qs.append({"id": "%s-%d" % (tag, k), "question": "what is %s ?" % w,
                       "answers": [{"answer_start": s, "text": w}]})
    return qs


def main():
    args = sys.argv[1:]
    no_real = "--no-real" in args
    if no_real:
        args.remove("--no-real")
    opts = {"--count": None, "--seed": 1234}
    for k in list(opts):
        if k in args:
            i = args.index(k)
            opts[k] = int(args[i + 1])
            del args[i:i + 2]
    if len(args) != 3 or args[0] not in ("cloze", "cloze-mixed", "real-mixed", "match"):
        sys.exit(__doc__)
    mode, src, dst = args
    count = opts["--count"] or {"cloze": 16, "real-mixed": 3}.get(mode, 8000)
    rng = random.Random(opts["--seed"])
    data = json.load(open(src, encoding="utf-8"))
    arts = data["data"]
    pool = [m.group().strip() for art in arts for p in art["paragraphs"]
            for m in SENTENCE.finditer(p["context"]) if len(m.group().split()) >= 5]
    new = []  # synthetic paragraphs
    if mode == "cloze":
        for ai, art in enumerate(arts):
            for pi, p in enumerate(art["paragraphs"]):
                new.append({"context": p["context"], "qas": cloze_qas(rng, p["context"], "cloze-%d-%d" % (ai, pi), count)})
    elif mode in ("cloze-mixed", "match"):
        for pi in range(count):
            ctx = " ".join(rng.sample(pool, rng.randint(3, 7) if mode == "cloze-mixed" else rng.randint(2, 4)))
            qas = cloze_qas(rng, ctx, "cloze-mixed-%d" % pi, 4) if mode == "cloze-mixed" else match_qas(rng, ctx, "match-%d" % pi)
            new.append({"context": ctx, "qas": qas})
    else:
        for art in arts:
            for p in art["paragraphs"]:
                ctx = p["context"]
                sents = [(m.start(), m.end()) for m in SENTENCE.finditer(ctx)]
                for qa in p["qas"]:
                    ans = qa["answers"][0]
                    s0, e0 = ans["answer_start"], ans["answer_start"] + len(ans["text"])
                    hit = [(s, e) for s, e in sents if s <= s0 and e0 <= e]
                    if not hit:
                        continue  # the answer crosses a sentence boundary
                    raw = ctx[hit[0][0]:hit[0][1]]
                    sent = raw.strip()
                    off = s0 - hit[0][0] - (len(raw) - len(raw.lstrip()))
                    for v in range(count):
                        others = rng.sample(pool, rng.randint(2, 5))
                        at = rng.randint(0, len(others))
                        parts = others[:at] + [sent] + others[at:]
                        start = sum(len(x) + 1 for x in parts[:at]) + off
                        new.append({"context": " ".join(parts), "qas": [{
                            "id": "%s-mixed-%d" % (qa["id"], v), "question": qa["question"],
                            "answers": [{"answer_start": start, "text": ans["text"]}]}]})
        rng.shuffle(new)
    real = sum(len(p["qas"]) for art in arts for p in art["paragraphs"])
    out = [] if no_real else arts
    json.dump(dict(data, data=out + [{"title": mode, "paragraphs": new}]), open(dst, "w", encoding="utf-8"))
    print("squad_augment.py: %s: %d real questions%s, %d %s questions in %d paragraphs"
          % (dst, 0 if no_real else real, "" if not no_real else " (dropped)",
             sum(len(p["qas"]) for p in new), mode, len(new)))


main()
