#!/usr/bin/env bash
# SQuAD features (src/tasks/squad.c) against tools/squad_features_ref.py, an independent Python
# BERT convert_examples_to_features with the npm tokenizer for WordPiece: every feature of
# dev-v1.1 and dev-v2.0 (ids, segment ids, start/end, max-context flags, token->word map) at
# NeMo's defaults (384/128/64, uncased), plus cased train-mode features with small windows (many
# windows per context, so the max-context rule matters). Under MEGATUNE_SANITIZED=1 the sets are
# cut to their first 3 articles. Then bad SQuAD files: one clear message naming the file and the
# question id, exit 1. Exit 77 when node, the npm package or the data are missing.
set -u
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}; DATA=${MEGATUNE_DATA:?}
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
[ -f "$DATA/squad/dev-v1.1.json.zip" ] && [ -f "$DATA/squad/dev-v2.0.json.zip" ] || { echo "SKIP: SQuAD data missing"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
T=$(mktemp -d /tmp/mt_squad_feat_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
UNC=$DATA/bert-base-uncased/vocab.txt; CAS=$DATA/bert-base-cased/vocab.txt

"$PY" - "$DATA/squad" "$T" "${MEGATUNE_SANITIZED:-0}" <<'EOF' || fail "cannot unzip the SQuAD dev sets"
import json, sys, zipfile
src, dst, small = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
for name in ("dev-v1.1", "dev-v2.0"):
    d = json.loads(zipfile.ZipFile("%s/%s.json.zip" % (src, name)).read(name + ".json"))
    if small:
        d["data"] = d["data"][:3]
    json.dump(d, open("%s/%s.json" % (dst, name), "w"))
    d["data"] = d["data"][:8]  # the small-window checks: many windows per context, fewer contexts
    json.dump(d, open("%s/%s-part.json" % (dst, name), "w"))
EOF

check() { # label, args...
  local label=$1; shift
  "$BIN" data squad-features "$@" > "$T/mt.txt" 2> "$T/mt.err" || { cat "$T/mt.err"; fail "$label: megatune failed"; }
  "$PY" "$SRC/tools/squad_features_ref.py" "$@" > "$T/ref.txt"
  local rc=$?
  [ $rc -eq 77 ] && { echo "SKIP: npm package tokenizers missing (cd tools && npm install tokenizers)"; exit 77; }
  [ $rc -eq 0 ] || fail "$label: reference failed ($rc)"
  local n; n=$(wc -l < "$T/ref.txt")
  [ "$n" -gt 100 ] || fail "$label: only $n reference features"
  if ! cmp -s "$T/mt.txt" "$T/ref.txt"; then
    diff <(cut -f1-6 "$T/mt.txt") <(cut -f1-6 "$T/ref.txt") | head -5
    fail "$label: features differ from the reference"
  fi
  echo "ok: $label: $n features identical"
}
check "dev-v1.1 uncased 384/128/64" "$T/dev-v1.1.json" --vocab "$UNC"
check "dev-v2.0 uncased 384/128/64" "$T/dev-v2.0.json" --vocab "$UNC" --v2
check "dev-v1.1 (8 articles) cased train 128/32/16" "$T/dev-v1.1-part.json" --vocab "$CAS" --cased --train --max_seq_length 128 --doc_stride 32 --max_query_length 16
check "dev-v2.0 (8 articles) cased train 96/24/12" "$T/dev-v2.0-part.json" --vocab "$CAS" --cased --v2 --train --max_seq_length 96 --doc_stride 24 --max_query_length 12

# A training answer that does not match the context is skipped and counted; dev keeps it.
cat > "$T/mis.json" <<'EOF'
{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "The cat sat on the mat.",
 "qas": [{"id": "q1", "question": "Who sat?", "answers": [{"text": "cat", "answer_start": 4}]},
         {"id": "q2", "question": "Where?", "answers": [{"text": "dog", "answer_start": 19}]}]}]}]}
EOF
"$BIN" data squad-features "$T/mis.json" --vocab "$UNC" --train > "$T/o.txt" 2> "$T/e.txt" || fail "mismatch file refused"
[ "$(wc -l < "$T/o.txt")" = 1 ] && grep -q "^q1" "$T/o.txt" || fail "train: the mismatched answer was not skipped"
grep -q "1 training question(s) skipped" "$T/e.txt" || { cat "$T/e.txt"; fail "no counted warning"; }
"$BIN" data squad-features "$T/mis.json" --vocab "$UNC" > "$T/o.txt" 2>/dev/null && [ "$(wc -l < "$T/o.txt")" = 2 ] \
  || fail "dev: the mismatched answer must keep its feature"

# Bad files: exit 1, one message naming the file and the question id (or byte).
bad() { # name, json, expected message parts...
  local name=$1 json=$2; shift 2
  printf '%s' "$json" > "$T/$name.json"
  "$BIN" data squad-features "$T/$name.json" --vocab "$UNC" > "$T/o.txt" 2> "$T/e.txt"
  local rc=$?
  [ $rc -eq 1 ] || { cat "$T/e.txt"; fail "$name: exit $rc, want 1"; }
  [ ! -s "$T/o.txt" ] || fail "$name: output written"
  [ "$(grep -c . "$T/e.txt")" -eq 1 ] || { cat "$T/e.txt"; fail "$name: want one message"; }
  for w in "$T/$name.json" "$@"; do grep -qF -- "$w" "$T/e.txt" || { cat "$T/e.txt"; fail "$name: message lacks '$w'"; }; done
  echo "ok: $name: $(cat "$T/e.txt")"
}
P='{"version":"1.1","data":[{"title":"t","paragraphs":[{"context":'
bad malformed '{"data": [' "malformed JSON"
bad nodata '{"version":"1.1"}' '"data"'
bad nocontext '{"data":[{"title":"t","paragraphs":[{"qas":[{"id":"x7","question":"q?","answers":[]}]}]}]}' "x7" "context"
bad noid "$P"'"a b","qas":[{"question":"q?","answers":[{"text":"a","answer_start":0}]}]}]}]}' '"id"'
bad noquestion "$P"'"a b","qas":[{"id":"x9","answers":[{"text":"a","answer_start":0}]}]}]}]}' "x9" '"question"'
bad dupid "$P"'"a b","qas":[{"id":"d1","question":"q?","answers":[{"text":"a","answer_start":0}]},{"id":"d1","question":"r?","answers":[{"text":"b","answer_start":2}]}]}]}]}' "d1" "twice"
bad emptyctx "$P"'"  ","qas":[{"id":"e1","question":"q?","answers":[{"text":"a","answer_start":0}]}]}]}]}' "e1" "empty context"
# U+202F is BERT whitespace: no word, so no position an answer could take (was a crash reading unset positions)
bad nnbspctx "$P"'" \u202f ","qas":[{"id":"e2","question":"q?","answers":[{"text":"a","answer_start":0}]}]}]}]}' "e2" "empty context"
# a NUL character would cut the string short silently in the JSON reader (raw NUL bytes: test_tasks_baddata)
bad nulctx "$P"'"a\u0000 b","qas":[{"id":"z1","question":"q?","answers":[{"text":"a","answer_start":0}]}]}]}]}' "byte 65" "NUL"
bad nulid "$P"'"a b","qas":[{"id":"z\\\u0000","question":"q?","answers":[{"text":"a","answer_start":0}]}]}]}]}' "byte 86" "NUL"
bad range "$P"'"a b","qas":[{"id":"r1","question":"q?","answers":[{"text":"b","answer_start":7}]}]}]}]}' "r1" "answer_start 7"
bad noanswer "$P"'"a b","qas":[{"id":"n1","question":"q?","answers":[]}]}]}]}' "n1" "version_2_with_negative"
# train mode too: the answer is checked against the context there
"$BIN" data squad-features "$T/nnbspctx.json" --vocab "$UNC" --train > "$T/o.txt" 2> "$T/e.txt"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$T/o.txt" ] && [ "$(grep -c . "$T/e.txt")" -eq 1 ] && grep -q "e2.*empty context" "$T/e.txt" \
  || { cat "$T/e.txt"; fail "nnbspctx --train: exit $rc, want one message and exit 1"; }
# an escaped backslash before u0000 is the text \u0000, not a NUL
printf '%s' "$P"'"a b","qas":[{"id":"lit\\u0000","question":"q?","answers":[{"text":"a","answer_start":0}]}]}]}]}' > "$T/lit.json"
"$BIN" data squad-features "$T/lit.json" --vocab "$UNC" > "$T/o.txt" 2> "$T/e.txt" && grep -qF 'lit\u0000' "$T/o.txt" \
  || { cat "$T/e.txt"; fail "an escaped backslash before u0000 was refused"; }
echo PASS
