#!/usr/bin/env python3
"""Reference metrics for megatune's C metrics (tests/unit/test_metrics.c), computed with
scikit-learn and SciPy (Debian's python3-sklearn, python3-scipy).

Input file:
    cls <num_classes>          then one "pred gold" pair of ints per line, or
    reg                        then one "pred gold" pair of floats per line.
Output: one "name value" per line (%.17g). Percentages as NeMo's ClassificationReport gives them.
"""
import sys

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (accuracy_score, f1_score, matthews_corrcoef,
                             precision_recall_fscore_support)


def main(path):
    with open(path) as f:
        head = f.readline().split()
        rows = [line.split() for line in f if line.strip()]
    out = []
    if head[0] == "cls":
        C = int(head[1])
        pred = np.array([int(r[0]) for r in rows])
        gold = np.array([int(r[1]) for r in rows])
        labels = list(range(C))
        p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, average=None, zero_division=0)
        for c in range(C):
            out += [(f"precision_{c}", 100 * p[c]), (f"recall_{c}", 100 * r[c]), (f"f1_{c}", 100 * f[c]),
                    (f"support_{c}", s[c])]
        for avg in ("micro", "weighted"):
            p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=labels, average=avg, zero_division=0)
            out += [(f"{avg}_precision", 100 * p), (f"{avg}_recall", 100 * r), (f"{avg}_f1", 100 * f)]
        # NeMo's macro divides by the number of classes with support: sklearn over those labels
        nonempty = [c for c in labels if (gold == c).any()]
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=nonempty, average="macro", zero_division=0)
        out += [("macro_precision", 100 * p), ("macro_recall", 100 * r), ("macro_f1", 100 * f)]
        out += [("accuracy", accuracy_score(gold, pred)), ("mcc", matthews_corrcoef(gold, pred))]
        if C == 2:
            out += [("f1_binary", f1_score(gold, pred, pos_label=1, average="binary", zero_division=0))]
    elif head[0] == "reg":
        x = np.array([float(r[0]) for r in rows])
        y = np.array([float(r[1]) for r in rows])
        out += [("pearson", pearsonr(x, y)[0]), ("spearman", spearmanr(x, y)[0])]
    else:
        sys.exit(f"{path}: unknown kind {head[0]!r}")
    for name, v in out:
        print(f"{name} {float(v):.17g}")


if __name__ == "__main__":
    main(sys.argv[1])
