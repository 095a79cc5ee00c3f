#!/usr/bin/env bash
# Runs every libFuzzer target in build-fuzz/ from its corpus in tests/fuzz/corpus/<name>/.
#   scripts/fuzz.sh [seconds per target] [runs per target]     (defaults: 12 s, unbounded runs)
# MEGATUNE_FUZZ_SEED=N fixes libFuzzer's seed (0 or unset = a new random seed each run); scripts/test.sh
# uses seed 1, so a CI run replays the start of a sequence that longer runs by hand have covered.
# Every sanitizer finding is fatal: ASan/UBSan halt on the first report, a slow input (-timeout) and a
# memory blow-up (-rss_limit_mb, -malloc_limit_mb) are crashes too, and a log that mentions a
# "runtime error" fails the target even if the process somehow exited 0. New inputs go to a temporary
# folder, so the checked-in corpus never changes by itself (MEGATUNE_FUZZ_CORPUS_OUT=DIR keeps them in
# DIR/<target> for the next run: a campaign in several passes). MEGATUNE_FUZZ_TARGETS="nemo config"
# runs only those targets; MEGATUNE_FUZZ_MAX_LEN=N caps an input's size (libFuzzer's -max_len; its default
# is 4096 bytes or the largest seed). A tests/fuzz/<format>.dict is passed as the target's dictionary. Prints one line per target, then
# "fuzz: N passed, N failed"; exits non-zero on any failure. The targets' scratch files live in a
# folder of this run that is removed whatever happens (a crash, an abort, SIGINT/SIGTERM).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-12}; runs=${2:--1}
bdir=${MEGATUNE_FUZZ_BUILD:-$here/build-fuzz}
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
work=$(mktemp -d)
# The targets' scratch files (fuzz_env.h: MEGATUNE_FUZZ_TMP, and TMPDIR for a .nemo restore's folder)
# go to a folder of this run on the same tmpfs the harness would pick (/dev/shm, else /tmp; a set
# MEGATUNE_FUZZ_TMP is the parent), one subfolder per target, removed when the target ends: a target
# that crashes or aborts never unlinks its own. On exit, SIGINT or SIGTERM the running target is
# stopped and everything of this run removed; other runs' folders are never touched.
tbase=${MEGATUNE_FUZZ_TMP:-}
[ -n "$tbase" ] || { [ -d /dev/shm ] && [ -w /dev/shm ] && [ -x /dev/shm ] && tbase=/dev/shm; } || tbase=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$tbase/megatune-fuzz-run-XXXXXX") || { rm -rf "$work"; echo "fuzz: cannot make a scratch folder in $tbase"; exit 1; }
child=
cleanup() {
  if [ -n "$child" ]; then kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  rm -rf "$work" "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# crash-*/timeout-*/oom-* reproducers go here (kept when MEGATUNE_FUZZ_ARTIFACTS names a folder)
art=${MEGATUNE_FUZZ_ARTIFACTS:-$work}; mkdir -p "$art"
found=${MEGATUNE_FUZZ_CORPUS_OUT:-$work}
ok=0; bad=0
for f in "$bdir"/tests/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); corpus=$here/tests/fuzz/corpus/${name#fuzz_}
  if [ -n "${MEGATUNE_FUZZ_TARGETS:-}" ] && [[ " $MEGATUNE_FUZZ_TARGETS " != *" ${name#fuzz_} "* ]]; then continue; fi
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "fuzz $name: FAILED: no seed corpus in tests/fuzz/corpus/${name#fuzz_}"; bad=$((bad+1)); continue
  fi
  mkdir -p "$found/$name"; log=$work/$name.log
  # a dictionary of the format's tokens where one exists (the pickle one serves every torch-file target)
  dict=(); case ${name#fuzz_} in pickle|zip|legacy_pt) d=pickle ;; *) d=${name#fuzz_} ;; esac
  [ -f "$here/tests/fuzz/$d.dict" ] && dict=(-dict="$here/tests/fuzz/$d.dict")
  maxlen=(); [ -n "${MEGATUNE_FUZZ_MAX_LEN:-}" ] && maxlen=(-max_len="$MEGATUNE_FUZZ_MAX_LEN")
  scr=$scratch/$name; mkdir -p "$scr"
  # in the background so that a signal to this script is handled at once (wait returns), not after the target
  (cd "$work" && MEGATUNE_FUZZ_TMP=$scr TMPDIR=$scr exec "$f" -max_total_time="$secs" -runs="$runs" -seed="${MEGATUNE_FUZZ_SEED:-0}" \
     -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "${maxlen[@]}" -artifact_prefix="$art/$name-" \
     "$found/$name" "$corpus") > "$log" 2>&1 &
  child=$!; wait "$child"; rc=$?; child=
  rm -rf "$scr"
  if [ "$rc" = 0 ] && ! grep -q "runtime error" "$log"; then
    echo "fuzz $name: ok ($(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs, $(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')/s, $(grep -Eo 'cov: [0-9]+' "$log" | tail -1))"; ok=$((ok+1))
  else
    echo "fuzz $name: FAILED"; tail -40 "$log"; bad=$((bad+1))
    ls "$art/$name"-crash-* "$art/$name"-timeout-* "$art/$name"-oom-* "$art/$name"-slow-unit-* 2>/dev/null | while read -r c; do
      echo "  reproducer: $c ($(xxd -l 64 -p "$c" | tr -d '\n'))"; done
  fi
done
echo "fuzz: $ok passed, $bad failed"
[ "$bad" -eq 0 ]
