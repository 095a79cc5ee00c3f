#!/usr/bin/env python3
"""Writes real text lines from the shared data sets, one sentence/paragraph per line, for the
tokenizer parity test and benchmark.

usage: tokenizer_corpus.py DATA_DIR OUT_FILE [--max-per-source N]

Sources: CoNLL-2003 sentences (first column joined by spaces), SQuAD v1.1 + v2.0 dev contexts and
questions (from the .zip files), GLUE SST-2 / MRPC / RTE / CoLA / STS-B sentences, ChemProt
sentences, NCBI-disease sentences. Newlines inside a text become spaces so that every text is one
line; nothing else is changed (bytes are kept exactly, via surrogateescape). Prints
"<source> <lines>" per source on stderr. Exit 77 if DATA_DIR lacks the files.
"""
import json
import os
import sys
import zipfile


def read_lines(path):
    with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        return f.read().split("\n")


def iob_sentences(path, skip_docstart):
    sent = []
    for line in read_lines(path):
        line = line.rstrip("\r")
        if not line.strip():
            if sent:
                yield " ".join(sent)
            sent = []
            continue
        word = line.split()[0] if " " in line or "\t" in line else line
        if skip_docstart and word == "-DOCSTART-":
            continue
        sent.append(word)
    if sent:
        yield " ".join(sent)


def tsv_columns(path, cols, header):
    lines = read_lines(path)
    if header:
        lines = lines[1:]
    for line in lines:
        if not line:
            continue
        parts = line.rstrip("\r").split("\t")
        for c in cols:
            if c < len(parts) and parts[c].strip():
                yield parts[c]


def squad(path):
    with zipfile.ZipFile(path) as z:
        name = [n for n in z.namelist() if n.endswith(".json")][0]
        data = json.loads(z.read(name).decode("utf-8"))
    for art in data["data"]:
        for para in art["paragraphs"]:
            yield para["context"]
            for qa in para["qas"]:
                yield qa["question"]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    data, out = sys.argv[1], sys.argv[2]
    cap = None
    if "--max-per-source" in sys.argv:
        cap = int(sys.argv[sys.argv.index("--max-per-source") + 1])
    d = lambda *p: os.path.join(data, *p)
    sources = [
        ("conll2003/eng.train", lambda: iob_sentences(d("conll2003", "eng.train"), True)),
        ("conll2003/eng.testa", lambda: iob_sentences(d("conll2003", "eng.testa"), True)),
        ("squad/dev-v1.1", lambda: squad(d("squad", "dev-v1.1.json.zip"))),
        ("squad/dev-v2.0", lambda: squad(d("squad", "dev-v2.0.json.zip"))),
        ("glue/SST-2/train", lambda: tsv_columns(d("glue", "SST-2", "train.tsv"), [0], True)),
        ("glue/MRPC/train", lambda: tsv_columns(d("glue", "MRPC", "train.tsv"), [3, 4], True)),
        ("glue/RTE/train", lambda: tsv_columns(d("glue", "RTE", "train.tsv"), [1, 2], True)),
        ("glue/CoLA/train", lambda: tsv_columns(d("glue", "CoLA", "train.tsv"), [3], False)),
        ("glue/STS-B/train", lambda: tsv_columns(d("glue", "STS-B", "train.tsv"), [7, 8], True)),
        ("chemprot/train", lambda: tsv_columns(d("chemprot", "train.tsv"), [0], True)),
        ("ncbi-disease/train", lambda: iob_sentences(d("ncbi-disease", "train.tsv"), False)),
    ]
    for rel in ["conll2003/eng.train", "squad/dev-v1.1.json.zip", "glue/SST-2/train.tsv", "chemprot/train.tsv",
                "ncbi-disease/train.tsv"]:
        if not os.path.exists(d(rel)):
            print(f"tokenizer_corpus.py: {d(rel)} is missing", file=sys.stderr)
            return 77
    total = 0
    with open(out, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        for name, gen in sources:
            n = 0
            for text in gen():
                if cap is not None and n >= cap:
                    break
                f.write(text.replace("\r\n", " ").replace("\n", " ") + "\n")
                n += 1
            print(f"{name} {n}", file=sys.stderr)
            total += n
    print(f"total {total}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
