#!/usr/bin/env python3
"""Independent reference for SQuAD features: Google BERT's read_squad_examples +
convert_examples_to_features (run_squad.py, which NeMo's qa_squad_processing.py keeps), written
from the rules, with WordPiece from the npm `tokenizers` package (tools/hf_tokenize.js), each
context word tokenized on its own as BERT does.

usage: squad_features_ref.py FILE.json --vocab VOCAB [--cased] [--v2] [--train] [--unlabelled]
         [--max_seq_length 384] [--doc_stride 128] [--max_query_length 64] [--limit N]
Prints one line per feature, the format of `megatune data squad-features`:
  qid <TAB> window <TAB> ids <TAB> segment ids <TAB> start <TAB> end <TAB> max-context flags <TAB> token->word
Rules beyond BERT's (megatune's, documented in src/tasks/squad.h): every labelled split gets
positions from answers[0]; only --train skips examples whose answer is not in the context.
Exit 77 when node or the npm package is missing.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def bert_ws(c):
    return c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F


def wordpiece(texts, vocab, cased):
    """ids for each text, via the Rust tokenizer (one node process for all)."""
    inp = "".join(t.replace("\n", " ") + "\n" for t in texts).encode("utf-8")
    args = ["node", os.path.join(HERE, "hf_tokenize.js"), "--vocab", vocab, "--cased" if cased else "--uncased"]
    try:
        r = subprocess.run(args, input=inp, stdout=subprocess.PIPE)
    except FileNotFoundError:
        sys.exit(77)
    if r.returncode != 0:
        sys.exit(r.returncode)
    lines = r.stdout.decode("utf-8").split("\n")
    out = [[int(x) for x in l.split()] for l in lines[: len(texts)]]
    if len(out) != len(texts):
        sys.exit("squad_features_ref.py: tokenizer returned %d lines for %d texts" % (len(out), len(texts)))
    return out


def read_examples(path, v2, labelled, limit):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    examples = []
    for article in data:
        for para in article["paragraphs"]:
            text = para["context"]
            words, c2w, prev_ws = [], [], True
            for c in text:
                if bert_ws(c):
                    prev_ws = True
                else:
                    if prev_ws:
                        words.append(c)
                    else:
                        words[-1] += c
                    prev_ws = False
                c2w.append(len(words) - 1)
            for qa in para["qas"]:
                ex = {"id": qa["id"], "q": qa["question"], "words": words, "impossible": False,
                      "sw": None, "ew": None, "ans": None}
                if v2:
                    ex["impossible"] = bool(qa.get("is_impossible", False))
                if labelled and not ex["impossible"] and qa.get("answers"):
                    a = qa["answers"][0]
                    ex["ans"] = a["text"]
                    off, n = a["answer_start"], len(a["text"])
                    ex["sw"] = max(c2w[off], 0)
                    ex["ew"] = max(c2w[off + n - 1], ex["sw"])
                examples.append(ex)
                if limit and len(examples) >= limit:
                    return examples
    return examples


def max_context(spans, cur, pos):
    best, best_i = None, None
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if pos < start or pos > end:
            continue
        score = min(pos - start, end - pos) + 0.01 * length
        if best is None or score > best:
            best, best_i = score, i
    return cur == best_i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--cased", action="store_true")
    ap.add_argument("--v2", action="store_true")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--unlabelled", action="store_true")
    ap.add_argument("--max_seq_length", type=int, default=384)
    ap.add_argument("--doc_stride", type=int, default=128)
    ap.add_argument("--max_query_length", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    vocab = [l.rstrip() for l in open(a.vocab, encoding="utf-8")]
    tok_id = {t: i for i, t in enumerate(vocab)}
    cls, sep = tok_id["[CLS]"], tok_id["[SEP]"]
    examples = read_examples(a.file, a.v2, not a.unlabelled, a.limit)

    # every distinct word, question and answer text through the tokenizer once
    texts, index = [], {}
    def want(t):
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
    for ex in examples:
        want(ex["q"])
        if ex["ans"] is not None:
            want(ex["ans"])
        for w in ex["words"]:
            want(w)
    ids = wordpiece(texts, a.vocab, a.cased)
    tok = lambda t: ids[index[t]]

    out = sys.stdout
    for ex in examples:
        words = ex["words"]
        if a.train and ex["ans"] is not None:
            actual = " ".join(words[ex["sw"]: ex["ew"] + 1])
            if actual.find(" ".join(ex["ans"].split())) == -1:
                continue
        q = tok(ex["q"])[: a.max_query_length]
        tok_to_orig, orig_to_tok, doc = [], [], []
        for i, w in enumerate(words):
            orig_to_tok.append(len(doc))
            for p in tok(w):
                tok_to_orig.append(i)
                doc.append(p)
        ts = te = None
        if ex["ans"] is not None:
            ts = orig_to_tok[ex["sw"]]
            te = orig_to_tok[ex["ew"] + 1] - 1 if ex["ew"] < len(words) - 1 else len(doc) - 1
            want_ids = tok(ex["ans"])
            done = False
            for ns in range(ts, te + 1):
                for ne in range(te, ns - 1, -1):
                    if doc[ns: ne + 1] == want_ids:
                        ts, te, done = ns, ne, True
                        break
                if done:
                    break
        room = a.max_seq_length - len(q) - 3
        spans, start = [], 0
        while start < len(doc):
            length = min(len(doc) - start, room)
            spans.append((start, length))
            if start + length == len(doc):
                break
            start += min(length, a.doc_stride)
        for si, (start, length) in enumerate(spans):
            toks = [cls] + q + [sep]
            seg = [0] * len(toks)
            mc = [0] * len(toks)
            t2o = [-1] * len(toks)
            for i in range(length):
                p = start + i
                t2o.append(tok_to_orig[p])
                mc.append(1 if max_context(spans, si, p) else 0)
                toks.append(doc[p])
                seg.append(1)
            toks.append(sep)
            seg.append(1)
            mc.append(0)
            t2o.append(-1)
            sp = ep = 0
            if ts is not None and ts >= start and te <= start + length - 1:
                sp, ep = ts - start + len(q) + 2, te - start + len(q) + 2
            j = lambda v: " ".join(map(str, v))
            out.write("%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n" % (ex["id"], si, j(toks), j(seg), sp, ep, j(mc), j(t2o)))


if __name__ == "__main__":
    main()
