#!/usr/bin/env python3
"""Small SQuAD slices for the e2e tests: from DATA/dev-v1.1.json.zip and DATA/dev-v2.0.json.zip, writes
OUT/v1_train.json and OUT/v2_train.json (the first N paragraphs of article 0) and OUT/v1_dev.json and
OUT/v2_dev.json (the first 3 paragraphs of article 5), each with the source's version field.
usage: squad_slices.py DATA_DIR OUT_DIR N"""
import json, sys, zipfile

if len(sys.argv) != 4:
    sys.exit(__doc__)
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, tag in (("dev-v1.1", "v1"), ("dev-v2.0", "v2")):
    d = json.loads(zipfile.ZipFile("%s/%s.json.zip" % (src, name)).read(name + ".json"))
    for part, art, k in (("train", 0, n), ("dev", 5, 3)):
        a = d["data"][art]
        json.dump(dict(d, data=[dict(a, paragraphs=a["paragraphs"][:k])]), open("%s/%s_%s.json" % (dst, tag, part), "w"))
