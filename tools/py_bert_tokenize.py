#!/usr/bin/env python3
"""The slow Python BertTokenizer algorithm (transformers' BasicTokenizer + WordpieceTokenizer, which
NeMo's Megatron-BERT path wraps), written out from its documented behaviour, standard library only:
used to check that on real data megatune's ids (which follow Hugging Face's Rust tokenizer) are
also what NeMo's Python tokenizer gives. Differences in rare corners are listed in
src/text/tokenizer.h.

usage: py_bert_tokenize.py VOCAB (--cased|--uncased) < lines > ids
"""
import sys
import unicodedata

SPECIALS = ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"]


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punct(ch):
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def basic(text, lower, never_split):
    text = "".join(" " if is_whitespace(c) else c for c in text
                   if not (ord(c) == 0 or ord(c) == 0xFFFD or is_control(c)))
    text = "".join(f" {c} " if is_cjk(ord(c)) else c for c in text)
    out = []
    for tok in text.split():
        if tok not in never_split:
            if lower:
                tok = tok.lower()
                tok = "".join(c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn")
            words, cur = [], ""
            for c in tok:
                if is_punct(c):
                    if cur:
                        words.append(cur)
                    words.append(c)
                    cur = ""
                else:
                    cur += c
            if cur:
                words.append(cur)
            out.extend(words)
        else:
            out.append(tok)
    return " ".join(out).split()


def wordpiece(word, vocab, unk, max_chars=100):
    if len(word) > max_chars:
        return [vocab[unk]]
    ids, start = [], 0
    while start < len(word):
        end, hit = len(word), None
        while start < end:
            piece = ("##" if start > 0 else "") + word[start:end]
            if piece in vocab:
                hit = vocab[piece]
                break
            end -= 1
        if hit is None:
            return [vocab[unk]]
        ids.append(hit)
        start = end
    return ids


def split_specials(text, specials):
    # transformers splits added/special tokens out of the text before the basic tokenizer
    parts, i, cur = [], 0, ""
    while i < len(text):
        m = next((s for s in specials if text.startswith(s, i)), None)
        if m:
            parts.append((cur, False))
            parts.append((m, True))
            cur = ""
            i += len(m)
        else:
            cur += text[i]
            i += 1
    parts.append((cur, False))
    return parts


def main():
    vocab_path, lower = sys.argv[1], sys.argv[2] == "--uncased"
    vocab = {}
    with open(vocab_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    specials = [s for s in SPECIALS if s in vocab]
    out = []
    for line in sys.stdin.buffer.read().decode("utf-8", errors="replace").split("\n")[:-1]:
        ids = []
        for part, special in split_specials(line, specials):
            if special:
                ids.append(vocab[part])
                continue
            for w in basic(part, lower, set()):
                ids.extend(wordpiece(w, vocab, "[UNK]"))
        out.append(" ".join(map(str, ids)))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
