#!/bin/bash
# `megatune predict` against `megatune test` on the same tiny, barely trained models (2 steps, so
# their predictions are varied): the accuracy and
# entity F1 recomputed from predict's output (independently, in Python; conlleval via
# tools/conlleval_ref.py) equal the metrics `megatune test` reports. NER runs with
# max_seq_length 16 so most sentences are split into windows: every word must get one label.
set -u
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:-}; PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -n "$DATA" ] && [ -f "$DATA/conll2003/eng.testa" ] || { echo "SKIP: no MEGATUNE_DATA"; exit 77; }
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
T=$(mktemp -d /tmp/mt_e2e_predict_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
tiny=(model.language_model.pretrained_model_name=megatron-bert-uncased model.language_model.config.hidden_size=32
  model.language_model.config.num_layers=1 model.language_model.config.num_attention_heads=2
  model.language_model.config.max_position_embeddings=64 exp_manager.version=v)

# --- NER (CoNLL-2003 dev sentences, windows) ---
"$BIN" data import-iob --data_file "$DATA/conll2003/eng.testa" --out_dir "$T" --split all >/dev/null || fail import-iob
head -300 "$T/text_all.txt" > "$T/text_train.txt"; head -300 "$T/labels_all.txt" > "$T/labels_train.txt"
sed -n 301,400p "$T/text_all.txt" > "$T/text_dev.txt"; sed -n 301,400p "$T/labels_all.txt" > "$T/labels_dev.txt"
"$BIN" train "$SRC/examples/token_classification_config.yaml" "${tiny[@]}" model.dataset.data_dir="$T" \
  model.tokenizer.vocab_file="$DATA/bert-base-uncased/vocab.txt" model.dataset.max_seq_length=16 trainer.max_steps=2 \
  model.train_ds.batch_size=16 exp_manager.exp_dir="$T/e" > "$T/train.log" 2>&1 || { tail "$T/train.log"; fail "NER train"; }
N=$(ls "$T"/e/*/v/checkpoints/*.nemo | head -1)
"$BIN" predict --format all-words "$N" "$T/text_dev.txt" "$T/pred.txt" 2>/dev/null || fail "NER predict"
# the default output is NeMo's add_predictions line, rebuilt here with Python's own str.isalpha
"$BIN" predict "$N" "$T/text_dev.txt" "$T/pred_nemo.txt" 2>/dev/null || fail "NER predict (NeMo format)"
"$PY" - "$T" <<'PY' || fail "NER predict: not NeMo's add_predictions format"
import re, sys
t = sys.argv[1]
allw = open(f"{t}/pred.txt").read().split("\n")[:-1]
nemo = open(f"{t}/pred_nemo.txt").read().split("\n")[:-1]
assert len(allw) == len(nemo) == 100
tagged = untagged = punct = 0
for a, b in zip(allw, nemo):
    out = ""
    for it in a.split(" "):
        word, label = re.fullmatch(r"(.*)\[([^\[\]]+)\]", it).groups()
        p = "" if word[-1].isalpha() else word[-1]
        if p:
            word = word[:-1]
            punct += 1
        out += word + ("[" + label + "]" if label != "O" else "") + p + " "
        tagged += label != "O"; untagged += label == "O"
    assert out.strip() == b, (out.strip(), b)
assert tagged and untagged and punct, (tagged, untagged, punct)
print("NER predict: NeMo's add_predictions format on %d lines (%d tagged, %d O words, %d split-off characters)"
      % (len(nemo), tagged, untagged, punct))
PY
"$BIN" test "$N" > "$T/test.out" 2>/dev/null || fail "NER test"
"$PY" - "$T" "$SRC/tools" <<'PY' || fail "NER predict output disagrees with megatune test"
import re, subprocess, sys
t, tools = sys.argv[1], sys.argv[2]
text = open(f"{t}/text_dev.txt").read().split("\n")[:-1]
gold = open(f"{t}/labels_dev.txt").read().split("\n")[:-1]
pred = open(f"{t}/pred.txt").read().split("\n")[:-1]
assert len(pred) == len(text) == 100, (len(pred), len(text))
ok = n = 0
rows = []
for tl, gl, pl in zip(text, gold, pred):
    words, labels = tl.split(), gl.split()
    items = pl.split(" ")
    assert len(items) == len(words), (tl, pl)
    for w, g, it in zip(words, labels, items):
        m = re.fullmatch(r"(.*)\[([^\[\]]+)\]", it)
        assert m and m.group(1) == w, (w, it)
        ok += m.group(2) == g; n += 1
        rows.append(f"{w} {g} {m.group(2)}")
    rows.append("")
open(f"{t}/conll.txt", "w").write("\n".join(rows) + "\n")
got = dict(l.split(": ") for l in open(f"{t}/test.out").read().splitlines() if l.startswith("test_"))
acc = 100.0 * ok / n
assert abs(acc - float(got["test_acc"])) < 1e-5, (acc, got["test_acc"])
ref = dict(l.split() for l in subprocess.run([sys.executable, f"{tools}/conlleval_ref.py", f"{t}/conll.txt"],
           capture_output=True, text=True, check=True).stdout.splitlines() if not l.startswith("type:"))
assert abs(float(ref["f1"]) - float(got["test_entity_f1"])) < 1e-5, (ref["f1"], got["test_entity_f1"])
print(f"NER: {n} words, every word labelled once; accuracy {acc:.4f} and entity F1 {float(ref['f1']):.4f} match megatune test")
PY

# --- text classification (the quickstart data) ---
"$BIN" train "$SRC/examples/quickstart_config.yaml" "${tiny[@]}" trainer.max_steps=2 exp_manager.exp_dir="$T/q" \
  model.train_ds.file_path="$SRC/examples/data/quickstart_train.tsv" model.validation_ds.file_path="$SRC/examples/data/quickstart_dev.tsv" \
  model.test_ds.file_path="$SRC/examples/data/quickstart_dev.tsv" model.tokenizer.vocab_file="$SRC/examples/data/quickstart_vocab.txt" \
  > "$T/qtrain.log" 2>&1 || { tail "$T/qtrain.log"; fail "text classification train"; }
Q=$(ls "$T"/q/*/v/checkpoints/*.nemo | head -1)
"$BIN" predict "$Q" "$SRC/examples/data/quickstart_dev.tsv" "$T/qpred.txt" 2>/dev/null || fail "TC predict"
"$BIN" test "$Q" > "$T/qtest.out" 2>/dev/null || fail "TC test"
"$PY" - "$SRC/examples/data/quickstart_dev.tsv" "$T/qpred.txt" "$T/qtest.out" <<'PY' || fail "TC predict output disagrees with megatune test"
import sys
rows = [l.rstrip("\n") for l in open(sys.argv[1])]
pred = open(sys.argv[2]).read().split("\n")[:-1]
assert len(pred) == len(rows), (len(pred), len(rows))
ok = n = 0
for r, p in zip(rows, pred):
    last = r.split()[-1] if r.split() else ""
    if not last.lstrip("-").isdigit():   # header line: predicted like any text line
        continue
    lab, prob = p.split("\t")
    assert 0.5 <= float(prob) <= 1.0, p
    ok += int(lab) == int(last); n += 1
got = dict(l.split(": ") for l in open(sys.argv[3]).read().splitlines() if l.startswith("test_"))
acc = 100.0 * ok / n
assert abs(acc - float(got["test_acc"])) < 1e-5, (acc, got["test_acc"])
print(f"text classification: {n} lines, accuracy {acc:.4f} matches megatune test")
PY
echo PASSED
