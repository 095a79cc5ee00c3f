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
# runs only those targets; MEGATUNE_FUZZ_JOBS=N runs N targets at a time (default: one per core).
# MEGATUNE_FUZZ_MAX_LEN=N caps an input's size (libFuzzer's -max_len; its default is 4096 bytes or
# the largest seed). A tests/fuzz/<format>.dict is passed as the target's dictionary. Prints one line
# per target as it ends, then "fuzz: N passed, N failed"; exits non-zero on any failure. The targets' scratch files live in a
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
declare -A running=() # pid -> target name, for the targets running now
cleanup() {
  local p
  for p in "${!running[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${!running[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work" "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# crash-*/timeout-*/oom-* reproducers go here (kept when MEGATUNE_FUZZ_ARTIFACTS names a folder)
art=${MEGATUNE_FUZZ_ARTIFACTS:-$work}; mkdir -p "$art"
found=${MEGATUNE_FUZZ_CORPUS_OUT:-$work}
# Targets run MEGATUNE_FUZZ_JOBS at a time (default: one per core); each is one process on one core,
# so on 2 cores two at once halve the wall time and give every target its full time.
jobs_max=${MEGATUNE_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[[ $jobs_max =~ ^[1-9][0-9]*$ ]] || jobs_max=1
ok=0; bad=0
report() { # pid rc: one line for the target that ran as pid
  local name=${running[$1]} rc=$2 log
  unset "running[$1]"
  log=$work/$name.log
  rm -rf "${scratch:?}/$name"
  if [ "$rc" = 0 ] && ! grep -q "runtime error" "$log"; then
    echo "fuzz $name: ok ($(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs, $(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')/s, $(grep -Eo 'cov: [0-9]+' "$log" | tail -1))"; ok=$((ok+1))
  else
    echo "fuzz $name: FAILED"; tail -40 "$log"; bad=$((bad+1))
    ls "$art/$name"-crash-* "$art/$name"-timeout-* "$art/$name"-oom-* "$art/$name"-slow-unit-* 2>/dev/null | while read -r c; do
      echo "  reproducer: $c ($(xxd -l 64 -p "$c" | tr -d '\n'))"; done
  fi
}
# waits for one running target to end and reports it; a signal to this script ends the wait at once
# (the traps above then stop every running target)
reap_one() {
  local pid rc
  wait -n -p pid "${!running[@]}"; rc=$?
  [ -n "${pid:-}" ] && [ -n "${running[$pid]:-}" ] && report "$pid" "$rc"
}
for f in "$bdir"/tests/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); corpus=$here/tests/fuzz/corpus/${name#fuzz_}
  if [ -n "${MEGATUNE_FUZZ_TARGETS:-}" ] && [[ " $MEGATUNE_FUZZ_TARGETS " != *" ${name#fuzz_} "* ]]; then continue; fi
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "fuzz $name: FAILED: no seed corpus in tests/fuzz/corpus/${name#fuzz_}"; bad=$((bad+1)); continue
  fi
  while [ "${#running[@]}" -ge "$jobs_max" ]; do reap_one; done
  mkdir -p "$found/$name"; log=$work/$name.log
  # a dictionary of the format's tokens where one exists (the pickle one serves every torch-file target)
  dict=(); case ${name#fuzz_} in pickle|zip|legacy_pt) d=pickle ;; *) d=${name#fuzz_} ;; esac
  [ -f "$here/tests/fuzz/$d.dict" ] && dict=(-dict="$here/tests/fuzz/$d.dict")
  maxlen=(); [ -n "${MEGATUNE_FUZZ_MAX_LEN:-}" ] && maxlen=(-max_len="$MEGATUNE_FUZZ_MAX_LEN")
  scr=$scratch/$name; mkdir -p "$scr"
  (cd "$work" && MEGATUNE_FUZZ_TMP=$scr TMPDIR=$scr exec "$f" -max_total_time="$secs" -runs="$runs" -seed="${MEGATUNE_FUZZ_SEED:-0}" \
     -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "${maxlen[@]}" -artifact_prefix="$art/$name-" \
     "$found/$name" "$corpus") > "$log" 2>&1 &
  running[$!]=$name
done
while [ "${#running[@]}" -gt 0 ]; do reap_one; done
echo "fuzz: $ok passed, $bad failed"
[ "$bad" -eq 0 ]
