#!/bin/bash
# Failed commands leave no partial output (QA regressions): predict, data import-iob / import-chemprot
# and convert to a Megatron folder write to a temporary beside the target and rename it in only on
# success, so a failure leaves no file, or the previous one untouched. Also: predict's OUTPUT '-' is
# stdout, a repeated YAML key and a folder given as the config are refused with one clear message.
set -u
BIN=${MEGATUNE_BIN:?}; SRC=${MEGATUNE_SOURCE_DIR:?}
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
export OMP_WAIT_POLICY=passive
T=$(mktemp -d /tmp/mt_e2e_qa_XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# Every run goes through mt: a refusal must exit 1 (2: usage); any other status is a crash, an
# abort or a sanitizer report (exit 86 under scripts/test.sh) on the error path, which `&& fail` alone would
# count as a refusal. Recorded in a file because some runs are in subshells; checked at the end.
mt() {
  "$BIN" "$@"
  local rc=$?
  # 141: SIGPIPE, from `| grep -q` closing the pipe early
  [ $rc -le 2 ] || [ $rc -eq 141 ] || echo "megatune $* exited $rc (a crash, an abort or a sanitizer report)" >> "$T/abnormal"
  return $rc
}
cd "$SRC" || exit 1

# a tiny .nemo (2 steps of the quickstart)
mt train examples/quickstart_config.yaml trainer.max_steps=2 exp_manager.exp_dir="$T/e" exp_manager.version=v \
  > "$T/train.log" 2>&1 || { tail "$T/train.log"; fail "quickstart train"; }
N="$T/e/quickstart/v/checkpoints/quickstart.nemo"
[ -f "$N" ] || fail "no .nemo at $N"

# --- predict ---
printf 'a great movie\nthe plot was dull\n' > "$T/in.txt"
printf 'a great movie\n\xff bad bytes\n' > "$T/bad.txt"
mt predict "$N" "$T/bad.txt" "$T/p1.tsv" 2> "$T/err" && fail "predict accepted bad UTF-8"
grep -q 'bad.txt:2: invalid UTF-8' "$T/err" || fail "predict message: $(cat "$T/err")"
[ -e "$T/p1.tsv" ] && fail "a failed predict left $T/p1.tsv"
echo previous > "$T/p2.tsv"
mt predict "$N" "$T/bad.txt" "$T/p2.tsv" 2>/dev/null && fail "predict accepted bad UTF-8 (2)"
[ "$(cat "$T/p2.tsv")" = previous ] || fail "a failed predict changed the previous OUTPUT"
mt predict "$N" "$T" "$T/p3.tsv" 2>/dev/null && fail "predict read a folder as INPUT"
[ -e "$T/p3.tsv" ] && fail "a failed predict (folder input) left its OUTPUT"
ls "$T" | grep -q '\.tmp\.' && fail "temporary files left behind: $(ls "$T")"
mt predict "$N" "$T/in.txt" "$T/p4.tsv" 2>/dev/null || fail "predict to a file"
[ "$(wc -l < "$T/p4.tsv")" = 2 ] || fail "predict wrote $(wc -l < "$T/p4.tsv") lines, expected 2"
( cd "$T" && mt predict "$N" in.txt - 2>/dev/null ) > "$T/stdout.tsv" || fail "predict OUTPUT '-'"
[ -e "$T/-" ] && fail "predict wrote a file named '-' instead of stdout"
cmp -s "$T/stdout.tsv" "$T/p4.tsv" || fail "predict '-' output differs from the file output"
# paths holding '=' (NeMo's checkpoint names do), '#', ': ' or a quote are paths, not overrides
mkdir -p "$T/d #1: x"; cp "$T/in.txt" "$T/d #1: x/it's=in.txt"
mt predict "$N" "$T/d #1: x/it's=in.txt" "$T/d #1: x/p=1.tsv" 2> "$T/err" || fail "predict with '=' in paths: $(cat "$T/err")"
cmp -s "$T/d #1: x/p=1.tsv" "$T/p4.tsv" || fail "predict with '=' in paths wrote other predictions"
cp examples/data/quickstart_dev.tsv "$T/d #1: x/it's=dev.tsv"
mt test "$N" examples/data/quickstart_dev.tsv 2>/dev/null | grep '^test_' > "$T/t1" || fail "test"
mt test "$N" "$T/d #1: x/it's=dev.tsv" 2>/dev/null | grep '^test_' > "$T/t2" || fail "test with '=' in DATA"
cmp -s "$T/t1" "$T/t2" || fail "test DATA with odd characters gave other metrics"
mt test "$N" a.tsv b.tsv 2>/dev/null; [ $? = 2 ] || fail "test accepted two DATA arguments"
mt predict "$N" "$T/in.txt" "$T" 2> "$T/err" && fail "predict wrote over a folder"
grep -q 'is a folder' "$T/err" || fail "predict folder OUTPUT message: $(cat "$T/err")"

# while predict waits for input, TMPDIR holds no copy of the weights (freed right after loading)
mkdir -p "$T/tmpd"; mkfifo "$T/fifo"
TMPDIR="$T/tmpd" mt predict "$N" - < "$T/fifo" > "$T/fifo.out" 2> "$T/fifo.err" &
pid=$!
exec 3> "$T/fifo"
for i in $(seq 300); do grep -q 'restored' "$T/fifo.err" && break; sleep 0.1; done # restored = weights loaded
weights=$(find "$T/tmpd" -name 'model_weights.ckpt')
echo 'a great movie' >&3; exec 3>&-
wait $pid || fail "predict from a fifo"
[ -z "$weights" ] || fail "the weights copy stays in TMPDIR while predicting: $weights"
[ "$(wc -l < "$T/fifo.out")" = 1 ] || fail "fifo predict output: $(cat "$T/fifo.out")"
[ -z "$(ls -A "$T/tmpd")" ] || fail "predict left $(ls -A "$T/tmpd") in TMPDIR"

# inspect -q on a .nemo drops the stored-tensor list as it does for other files
qout=$(mt inspect -q "$N") || fail "inspect -q .nemo: exit $?"
[ -n "$qout" ] || fail "inspect -q .nemo printed nothing"
q=$(echo "$qout" | grep -c 'stored tensors'); f=$(mt inspect "$N" | grep -c 'stored tensors')
[ "$q" = 0 ] && [ "$f" = 1 ] || fail "inspect -q .nemo: $q stored-tensor lists (full: $f)"

# --- data import-iob / import-chemprot ---
printf 'EU B-ORG\nrejects O\n\nGerman B-MISC\ncall\n' > "$T/bad.iob"
mkdir -p "$T/ner"
mt data import-iob --data_file "$T/bad.iob" --out_dir "$T/ner" --split train 2> "$T/err" && fail "import-iob accepted a 1-field line"
grep -q 'bad.iob:5' "$T/err" || fail "import-iob message: $(cat "$T/err")"
[ -n "$(ls -A "$T/ner")" ] && fail "a failed import-iob left files: $(ls -A "$T/ner")"
printf 'a sentence\tCPR:3\nanother one\n' > "$T/bad_cp.tsv"
mt data import-chemprot "$T/bad_cp.tsv" "$T/cp.tsv" --label-map "$T/map.tsv" 2>/dev/null && fail "import-chemprot accepted a missing label"
[ -e "$T/cp.tsv" ] || [ -e "$T/map.tsv" ] && fail "a failed import-chemprot left output"
mt data import-iob --data_file "$T/bad.iob" --out_dir "$T/new_ner" 2>/dev/null && fail "import-iob accepted a 1-field line (2)"
[ -e "$T/new_ner" ] && fail "a failed import-iob left the --out_dir it created"
# the help's example writes into a folder that does not exist yet
printf 'sentence\tlabel\na sentence\tCPR:3\nanother one\tFalse\n' > "$T/cp_train.tsv"
mt data import-chemprot "$T/cp_train.tsv" "$T/cp/train.tsv" --label-map "$T/cp/label_mapping.tsv" >/dev/null \
  || fail "import-chemprot into a new folder"
[ "$(cat "$T/cp/label_mapping.tsv")" = "$(printf 'CPR:3\t0\nFalse\t1')" ] || fail "label map: $(cat "$T/cp/label_mapping.tsv")"
mt data import-chemprot "$T/bad_cp.tsv" "$T/cp2/train.tsv" 2>/dev/null && fail "import-chemprot accepted a missing label (2)"
[ -e "$T/cp2" ] && fail "a failed import-chemprot left the folder it created"

# --- convert to a Megatron folder ---
tar -xzf "$N" -C "$T" ./model_weights.ckpt || fail "untar"
mt convert "$T/model_weights.ckpt" "$T/mg3" --heads 4 --tp 3 2>/dev/null && fail "convert split 4 heads over 3 ranks"
[ -e "$T/mg3" ] && fail "a failed convert left $(find "$T/mg3")"
mt convert "$T/model_weights.ckpt" "$T/mg" --heads 4 --tp 2 >/dev/null || fail "convert --tp 2"
before=$(cd "$T/mg" && find . -type f | sort | xargs md5sum)
mt convert "$T/model_weights.ckpt" "$T/mg" --heads 4 --tp 3 2>/dev/null && fail "convert split 4 heads over 3 ranks (2)"
[ "$(cd "$T/mg" && find . -type f | sort | xargs md5sum)" = "$before" ] || fail "a failed convert changed the previous folder"
[ -z "$(find "$T/mg" -name '.*tmp*')" ] || fail "convert left temporaries: $(find "$T/mg")"
mt convert "$T/model_weights.ckpt" "$T/mg" --heads 4 --tp 4 >/dev/null || fail "convert --tp 4 over a TP=2 folder"
[ "$(ls "$T/mg/release")" = "$(printf 'mp_rank_00\nmp_rank_01\nmp_rank_02\nmp_rank_03')" ] || fail "ranks: $(ls "$T/mg/release")"
mt convert "$T/mg" "$T/back.pt" >/dev/null || fail "convert the TP=4 folder back"
# latest_checkpointed_iteration.txt is read as Megatron does (str.strip()); an empty one is named
printf '  release \r\n' > "$T/mg/latest_checkpointed_iteration.txt"
mt inspect -q "$T/mg" > /dev/null 2> "$T/err" || fail "padded 'release' tracker: $(cat "$T/err")"
: > "$T/mg/latest_checkpointed_iteration.txt"
mt inspect -q "$T/mg" > /dev/null 2> "$T/err" && fail "empty tracker accepted"
grep -q 'latest_checkpointed_iteration.txt: the file is empty' "$T/err" || fail "empty tracker message: $(cat "$T/err")"
mt convert a b --tp 0 2> "$T/err"; [ $? = 2 ] && grep -q -- '--tp must be 1 or more' "$T/err" || fail "--tp 0 message: $(cat "$T/err")"

# --- config files ---
sed 's/^  max_steps: null/  max_steps: 3\n  max_steps: 4/' examples/quickstart_config.yaml > "$T/dup.yaml"
mt train "$T/dup.yaml" exp_manager.exp_dir="$T/e2" 2> "$T/err" && fail "a repeated key was accepted"
grep -q "dup.yaml:10: duplicate key 'trainer.max_steps' (first set on line 9)" "$T/err" || fail "dup message: $(cat "$T/err")"
[ -e "$T/e2" ] && fail "a refused config created the experiment folder"
# an example longer than the model's positions is found before training, not at its first batch
( tail -n +2 examples/data/quickstart_train.tsv; for i in $(seq 80); do printf 'good '; done; printf '\t1\n' ) > "$T/long.tsv"
mt train examples/quickstart_config.yaml model.train_ds.file_path="$T/long.tsv" model.dataset.max_seq_length=100 \
  trainer.max_steps=40 exp_manager.exp_dir="$T/e3" > /dev/null 2> "$T/err" && fail "trained on an example longer than the positions"
grep -q 'an example has 82 tokens but the model has only 64 positions.*max_seq_length=63 or less' "$T/err" \
  || fail "long example message: $(grep error "$T/err")"
grep -q '^step' "$T/err" && fail "training started before the length check"
mt train examples/quickstart_config.yaml model.train_ds.file_path="$T/long.tsv" model.dataset.max_seq_length=63 \
  trainer.max_steps=2 exp_manager.exp_dir="$T/e3" > /dev/null 2>&1 || fail "the suggested max_seq_length does not fit"
mt test "$N" "$T/long.tsv" model.dataset.max_seq_length=100 > /dev/null 2> "$T/err" && fail "tested a too-long example"
grep -q 'model.test_ds (.*long.tsv): an example has 82 tokens' "$T/err" || fail "test long message: $(grep error "$T/err")"
# init_from_nemo_model whose head does not fit: the message names the .nemo's model class and
# member, not a temporary copy that is gone by then
mt train examples/quickstart_config.yaml init_from_nemo_model="$N" model.dataset.num_classes=3 trainer.max_steps=2 \
  exp_manager.exp_dir="$T/e4" > /dev/null 2> "$T/err" && fail "a 2-class .nemo initialised a 3-class model"
grep -q "quickstart.nemo (a TextClassificationModel): its weights do not fit.*model_weights.ckpt: 'classifier" "$T/err" \
  || fail "init_from_nemo_model message: $(grep error "$T/err")"
grep -q "megatune-nemo-" "$T/err" && fail "the message names a temporary file: $(grep error "$T/err")"
# num_samples applies to every split (as the help says), and 0 is refused as in NeMo
mt train examples/quickstart_config.yaml trainer.max_steps=1 model.train_ds.num_samples=5 \
  model.validation_ds.num_samples=7 exp_manager.exp_dir="$T/e5" > /dev/null 2> "$T/err" || fail "num_samples run: $(grep error "$T/err")"
grep -q 'model.train_ds: 5 examples' "$T/err" && grep -q 'model.validation_ds: 7 examples' "$T/err" \
  || fail "num_samples not applied: $(grep examples "$T/err")"
mt test "$N" examples/data/quickstart_dev.tsv model.test_ds.num_samples=10 2>&1 | grep -q 'model.test_ds: 10 examples' \
  || fail "test_ds.num_samples not applied"
mt train examples/quickstart_config.yaml trainer.max_steps=1 model.train_ds.num_samples=0 exp_manager.exp_dir="$T/e5" \
  > /dev/null 2> "$T/err" && fail "num_samples=0 accepted"
grep -q 'model.train_ds.num_samples=0 would use no example' "$T/err" || fail "num_samples=0 message: $(grep error "$T/err")"
# NeMo/Hydra habits: --config-path/--config-name (and -cp/-cn), ++key=value
mt train --config-path=examples --config-name=quickstart_config ++trainer.max_steps=1 exp_manager.exp_dir="$T/e6" \
  > /dev/null 2> "$T/err" || fail "--config-path/--config-name: $(grep error "$T/err")"
grep -q '1 optimizer steps' "$T/err" || fail "++trainer.max_steps=1 not applied"
mt train -cp examples -cn quickstart_config.yaml trainer.max_steps=1 exp_manager.exp_dir="$T/e6" > /dev/null 2>&1 \
  || fail "-cp/-cn"
# token classification features never exceed max_seq_length: no "+1 positions" warning for it
mkdir -p "$T/nerd"
for sp in train dev; do printf 'the movie was great\nnot dull\n' > "$T/nerd/text_$sp.txt"; printf 'O B-X O O\nO B-X\n' > "$T/nerd/labels_$sp.txt"; done
mt train examples/token_classification_config.yaml model.dataset.data_dir="$T/nerd" model.dataset.max_seq_length=16 \
  model.language_model.pretrained_model_name=megatron-bert-uncased model.tokenizer.vocab_file=examples/data/quickstart_vocab.txt \
  model.language_model.config.hidden_size=16 model.language_model.config.num_layers=1 \
  model.language_model.config.num_attention_heads=2 model.language_model.config.max_position_embeddings=16 \
  trainer.max_steps=1 exp_manager.exp_dir="$T/e7" > /dev/null 2> "$T/err" || fail "tiny NER: $(grep error "$T/err")"
grep -q 'positions but the model has' "$T/err" && fail "spurious positions warning for NER: $(grep positions "$T/err")"
# a resumed run takes its weights from the checkpoint (as NeMo): the lm_checkpoint it started from
# may be gone, and no "random weights" warning is printed
mt convert "$T/model_weights.ckpt" "$T/enc.pt" --heads 4 > /dev/null || fail "convert enc.pt"
R=(examples/quickstart_config.yaml model.language_model.lm_checkpoint="$T/enc.pt" exp_manager.exp_dir="$T/e8"
   exp_manager.resume_if_exists=true exp_manager.resume_ignore_no_checkpoint=true)
mt train "${R[@]}" trainer.max_steps=2 > /dev/null 2> "$T/err" || fail "run from enc.pt: $(grep error "$T/err")"
grep -q 'encoder weights from .*enc.pt' "$T/err" || fail "enc.pt not loaded"
rm "$T/enc.pt"
mt train "${R[@]}" trainer.max_steps=4 > /dev/null 2> "$T/err" || fail "resume without enc.pt: $(grep error "$T/err")"
grep -q 'resumed at step 2' "$T/err" || fail "did not resume"
grep -q 'random weights' "$T/err" && fail "a resumed run warns about random weights"
# model.nemo_path is written after the last step: an unwritable one fails before training starts
mt train examples/quickstart_config.yaml trainer.max_steps=3 model.nemo_path="$T/no/such/x.nemo" \
  exp_manager.exp_dir="$T/e9" > /dev/null 2> "$T/err" && fail "trained with an unwritable nemo_path"
grep -q "model.nemo_path=.*no/such/x.nemo: the folder .*no/such does not exist" "$T/err" || fail "nemo_path message: $(grep error "$T/err")"
grep -q '^step' "$T/err" && fail "training ran before the nemo_path check"
mt train examples/quickstart_config.yaml trainer.max_steps=3 model.nemo_path="$T" exp_manager.exp_dir="$T/e9" \
  > /dev/null 2> "$T/err" && fail "nemo_path naming a folder was accepted"
grep -q "is a folder" "$T/err" || fail "nemo_path folder message: $(grep error "$T/err")"
# runs started together (same second) get their own version folders instead of sharing one
for i in 1 2 3; do
  mt train examples/quickstart_config.yaml trainer.max_steps=1 exp_manager.exp_dir="$T/e10" > /dev/null 2>&1 &
done
wait
[ "$(ls "$T/e10/quickstart" | wc -l)" = 3 ] || fail "3 parallel runs made $(ls "$T/e10/quickstart" | wc -l) version folders"
for d in "$T"/e10/quickstart/*/; do
  [ "$(ls "$d"checkpoints/*-last.ckpt | wc -l)" = 1 ] || fail "$d holds $(ls "$d"checkpoints/*-last.ckpt | wc -l) -last checkpoints"
done
# a run that fails in setup (bad data) says why on stderr and leaves no experiment folder behind;
# stdout points at no log or metrics that do not exist
mt train examples/quickstart_config.yaml model.train_ds.file_path="$T/bad.txt" exp_manager.exp_dir="$T/e11" \
  exp_manager.version=v > "$T/out" 2> "$T/err" && fail "trained on bad UTF-8"
grep -q 'megatune: error: model.train_ds: .*bad.txt:2: invalid UTF-8' "$T/err" || fail "stderr lacks the error: $(cat "$T/err")"
[ ! -e "$T/e11" ] || fail "a failed setup left $(find "$T/e11")"
! grep -q '^log dir:\|^metrics:' "$T/out" || fail "failed run stdout: $(cat "$T/out")"
# an encoder checkpoint trained with a much larger vocab is refused (its first rows would be read
# as our tokens' embeddings); its own vocab loads
( cat examples/data/quickstart_vocab.txt; for i in $(seq 3000); do echo "filler$i"; done ) > "$T/big_vocab.txt"
mt train examples/quickstart_config.yaml model.tokenizer.vocab_file="$T/big_vocab.txt" trainer.max_steps=1 \
  exp_manager.exp_dir="$T/e12" exp_manager.version=v > /dev/null 2>&1 || fail "big-vocab run"
tar -xzf "$T/e12/quickstart/v/checkpoints/quickstart.nemo" -C "$T/e12" ./model_weights.ckpt || fail "untar big"
mt convert "$T/e12/model_weights.ckpt" "$T/big.pt" --heads 4 > /dev/null || fail "convert big.pt"
mt train examples/quickstart_config.yaml model.language_model.lm_checkpoint="$T/big.pt" trainer.max_steps=1 \
  exp_manager.exp_dir="$T/e12" > /dev/null 2> "$T/err" && fail "a 3200-row checkpoint loaded with an 89-token vocab"
grep -q 'big.pt has 3200 vocab rows but the tokenizer.s vocab has 89 tokens' "$T/err" || fail "vocab rows message: $(grep error "$T/err")"
mt train examples/quickstart_config.yaml model.language_model.lm_checkpoint="$T/big.pt" trainer.max_steps=1 \
  model.tokenizer.vocab_file="$T/big_vocab.txt" exp_manager.exp_dir="$T/e12" > /dev/null 2> "$T/err" \
  || fail "the checkpoint's own vocab: $(grep error "$T/err")"
mt train "$T" 2> "$T/err" && fail "a folder was accepted as the config"
grep -q 'is a folder' "$T/err" || fail "folder config message: $(cat "$T/err")"
# --- a .nemo member whose tar header claims 7 GiB (5 real bytes) is read without reserving 7 GiB:
# a small member (config) is refused by its size cap (restore and inspect share one tar reader), a weights member read in memory (inspect) grows
# with the bytes that arrive and is found truncated ---
PY=${MEGATUNE_PYTHON:-/usr/bin/python3}
for member in model_config.yaml model_weights.ckpt; do
"$PY" - "$T/forged-$member.nemo" "./$member" <<'PYEOF' || fail "writing forged.nemo"
import gzip, sys, tarfile
ti = tarfile.TarInfo(sys.argv[2]); ti.size = 5
b = bytearray(ti.tobuf(format=tarfile.USTAR_FORMAT))
b[124:136] = b"%011o\0" % (7 << 30)
b[148:156] = b" " * 8
b[148:156] = b"%06o\0 " % sum(b[:512])
open(sys.argv[1], "wb").write(gzip.compress(bytes(b) + b"a: 1\n" + b"\0" * 1531))
PYEOF
done
# ASan reserves terabytes of shadow address space: no limit for a sanitized binary, also when ctest
# runs without MEGATUNE_SANITIZED=1
asan=${MEGATUNE_SANITIZED:-0}
grep -qa __asan_init "$BIN" && asan=1
for cmd in "predict $T/forged-model_config.yaml.nemo $T/in.txt|larger than 256 MiB" \
           "inspect $T/forged-model_config.yaml.nemo|larger than 256 MiB" \
           "inspect $T/forged-model_weights.ckpt.nemo|truncated"; do
  want=${cmd#*|}; cmd=${cmd%|*}
  # 1 GiB of address space is plenty for an honest read
  ( [ "$asan" = 1 ] || ulimit -v 1048576; mt $cmd ) > /dev/null 2> "$T/err" && fail "$cmd accepted a forged size"
  grep -q "$want" "$T/err" || fail "$cmd: $(cat "$T/err")"
done
[ -e "$T/abnormal" ] && fail "$(cat "$T/abnormal")"
echo PASSED
