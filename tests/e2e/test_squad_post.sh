#!/usr/bin/env bash
# SQuAD post-processing and scoring against independent Python implementations of the rules:
#  1. BERT's write_predictions/get_final_text (tools/squad_post_ref.py) on the same random logits:
#     predictions.json, nbest_predictions.json and (v2) null_odds.json byte-identical, v1.1 and
#     v2.0, uncased and cased (do_lower_case false), default and small n_best/max_answer_length.
#  2. `megatune eval-squad` prints what tools/squad_eval_ref.py (the official evaluate-v1.1/v2.0
#     rules) prints, every digit, on perfect / empty / perturbed predictions, with null odds.
#  3. Bad prediction files are refused with one message naming the file and question id, and
#     nothing on stdout.
# Full dev sets for scoring; a slice for post-processing (the Python reference is slow). Under
# MEGATUNE_SANITIZED=1 everything runs on the first 2 articles.
set -u
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:?}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
[ -f "$DATA/squad/dev-v1.1.json.zip" ] && [ -f "$DATA/squad/dev-v2.0.json.zip" ] || { echo "SKIP: SQuAD data missing"; exit 77; }
T=$(mktemp -d /tmp/mt_squad_post_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
UNC=$DATA/bert-base-uncased/vocab.txt; CAS=$DATA/bert-base-cased/vocab.txt

"$PY" - "$DATA/squad" "$T" "${MEGATUNE_SANITIZED:-0}" <<'EOF' || fail "cannot prepare the SQuAD files"
import json, random, sys, zipfile
src, dst, small = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
random.seed(7)
for name in ("dev-v1.1", "dev-v2.0"):
    d = json.loads(zipfile.ZipFile("%s/%s.json.zip" % (src, name)).read(name + ".json"))
    if small:
        d["data"] = d["data"][:2]
    json.dump(d, open("%s/%s.json" % (dst, name), "w"))
    part = dict(d, data=d["data"][:2] if small else [a for i, a in enumerate(d["data"]) if i % 20 == 0])
    json.dump(part, open("%s/%s-part.json" % (dst, name), "w"))
    preds = {"perfect": {}, "empty": {}, "pert": {}}
    na = {}
    for art in d["data"]:
        for p in art["paragraphs"]:
            w = p["context"].split()
            for qa in p["qas"]:
                g = qa["answers"][0]["text"] if qa["answers"] else ""
                r = random.random()
                preds["perfect"][qa["id"]] = g
                preds["empty"][qa["id"]] = ""
                preds["pert"][qa["id"]] = (g if r < 0.4 else g + " the " + w[0] if r < 0.6 else
                                           " ".join(w[: random.randint(0, 6)]) if r < 0.8 else g[: len(g) // 2])
                na[qa["id"]] = round(random.random() * 1.5, 3)
    for k, v in preds.items():
        json.dump(v, open("%s/%s-%s.json" % (dst, name, k), "w"))
    json.dump(na, open("%s/%s-na.json" % (dst, name), "w"))
EOF

# --- 1. post-processing ---
post() { # label, data, vocab, megatune/reference options...
  local label=$1 data=$2 vocab=$3; shift 3
  local case=(); [ "$vocab" = "$CAS" ] && case=(--cased)
  local v2=(); case " $* " in *" --v2 "*) v2=(--v2) ;; esac
  "$BIN" data squad-features "$data" --vocab "$vocab" "${case[@]}" "${v2[@]}" > "$T/feat.tsv" || fail "$label: features"
  local nf; nf=$(wc -l < "$T/feat.tsv")
  "$PY" - "$nf" "$T/logits.txt" <<'EOF' || fail "$label: logits"
import random, struct, sys
random.seed(int(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[1])):
        xs = [struct.unpack("f", struct.pack("f", random.gauss(0, 3)))[0] for _ in range(768)]
        f.write("%d %s\n" % (i, " ".join(repr(x) for x in xs)))
EOF
  rm -rf "$T/mt" "$T/ref"; mkdir "$T/mt" "$T/ref"
  "$BIN" data squad-features "$data" --vocab "$vocab" "${case[@]}" --logits "$T/logits.txt" --out_dir "$T/mt" "$@" \
    || fail "$label: megatune post-processing"
  "$PY" "$SRC/tools/squad_post_ref.py" "$data" "$T/feat.tsv" "$vocab" "$T/logits.txt" "$T/ref" "$@" || fail "$label: reference"
  local files=(predictions.json nbest_predictions.json); [ ${#v2[@]} -gt 0 ] && files+=(null_odds.json)
  for f in "${files[@]}"; do
    [ -s "$T/ref/$f" ] || fail "$label: reference wrote no $f"
    cmp -s "$T/mt/$f" "$T/ref/$f" || { diff "$T/mt/$f" "$T/ref/$f" | head -6; fail "$label: $f differs"; }
  done
  echo "ok: $label: $nf features, $(grep -c '": ' "$T/ref/predictions.json") predictions, ${files[*]} identical"
}
post "v1.1 uncased" "$T/dev-v1.1-part.json" "$UNC"
post "v2.0 uncased thr 1.5" "$T/dev-v2.0-part.json" "$UNC" --v2 --null_score_diff_threshold 1.5
post "v2.0 uncased thr -2" "$T/dev-v2.0-part.json" "$UNC" --v2 --null_score_diff_threshold -2
post "v1.1 cased n_best 5 max_answer 8" "$T/dev-v1.1-part.json" "$CAS" --no_lower_case --n_best_size 5 --max_answer_length 8

# --- 2. eval-squad ---
for v in dev-v1.1 dev-v2.0; do
  for p in perfect empty pert; do
    "$BIN" eval-squad "$T/$v.json" "$T/$v-$p.json" > "$T/a.txt" 2>/dev/null || fail "eval-squad $v $p"
    "$PY" "$SRC/tools/squad_eval_ref.py" "$T/$v.json" "$T/$v-$p.json" > "$T/b.txt" || fail "reference $v $p"
    cmp -s "$T/a.txt" "$T/b.txt" || { cat "$T/a.txt" "$T/b.txt"; fail "eval-squad $v $p differs"; }
  done
  "$BIN" eval-squad "$T/$v.json" "$T/$v-pert.json" --na-prob-file "$T/$v-na.json" > "$T/a.txt" || fail "eval-squad $v na"
  "$PY" "$SRC/tools/squad_eval_ref.py" "$T/$v.json" "$T/$v-pert.json" --na-prob-file "$T/$v-na.json" > "$T/b.txt" \
    || fail "reference $v na"
  cmp -s "$T/a.txt" "$T/b.txt" || { cat "$T/a.txt" "$T/b.txt"; fail "eval-squad $v with null odds differs"; }
  echo "ok: eval-squad $v: $(tr -d '\n' < "$T/a.txt" | cut -c1-120)"
done
grep -q '"exact_match": 100.0, "f1": 100.0' <("$BIN" eval-squad "$T/dev-v1.1.json" "$T/dev-v1.1-perfect.json") \
  || fail "perfect v1.1 predictions must score 100"
grep -q '"best_exact"' "$T/a.txt" || fail "no best_exact with --na-prob-file"
# scores that cannot be written are an error, not a silent exit 0
if [ -w /dev/full ]; then
  out=$("$BIN" eval-squad "$T/dev-v1.1.json" "$T/dev-v1.1-perfect.json" 2>&1 > /dev/full); rc=$?
  [ $rc = 1 ] && echo "$out" | grep -q "stdout: write error" || fail "eval-squad > /dev/full: exit $rc: $out"
fi

# --- 3. bad prediction files ---
badp() { # name, data, content, expected parts...
  local name=$1 data=$2 content=$3; shift 3
  printf '%s' "$content" > "$T/$name.json"
  "$BIN" eval-squad "$data" "$T/$name.json" > "$T/o.txt" 2> "$T/e.txt"
  local rc=$?
  [ $rc -eq 1 ] || { cat "$T/e.txt"; fail "$name: exit $rc, want 1"; }
  [ ! -s "$T/o.txt" ] || fail "$name: printed scores"
  for w in "$T/$name.json" "$@"; do grep -qF -- "$w" "$T/e.txt" || { cat "$T/e.txt"; fail "$name: message lacks '$w'"; }; done
  echo "ok: $name: $(head -1 "$T/e.txt")"
}
Q1=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['data'][0]['paragraphs'][0]['qas'][0]['id'])" "$T/dev-v2.0.json")
badp missing_v2 "$T/dev-v2.0.json" "{\"$Q1\": \"x\"}" "no prediction for question id"
badp nonstring "$T/dev-v1.1.json" "{\"$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['data'][0]['paragraphs'][0]['qas'][0]['id'])" "$T/dev-v1.1.json")\": 3}" "must be a string"
badp malformed "$T/dev-v1.1.json" '{"a": ' "not valid JSON"
badp notobject "$T/dev-v1.1.json" '["a"]' "one JSON object"
# v1.1: a missing prediction scores 0 with the official script's message on stderr
"$BIN" eval-squad "$T/dev-v1.1.json" <(echo '{}') > "$T/o.txt" 2> "$T/e.txt" || fail "v1.1 empty predictions refused"
grep -q '"exact_match": 0.0, "f1": 0.0' "$T/o.txt" && grep -q "will receive score 0" "$T/e.txt" || fail "v1.1 missing ids"
echo PASS
