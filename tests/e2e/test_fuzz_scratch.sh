#!/usr/bin/env bash
# scripts/fuzz.sh leaves none of its targets' scratch behind (fuzz_env.h puts it in MEGATUNE_FUZZ_TMP,
# a .nemo restore in TMPDIR; a target that crashes never removes its own). A stand-in target (a
# script named like a real one, in a stand-in build folder) makes a folder in each, as the real ones
# do, then aborts, hangs or passes:
#  - it aborts: the target is FAILED, fuzz.sh exits 1, and its folders (under /dev/shm, as the
#    harness picks, or under a given MEGATUNE_FUZZ_TMP) and fuzz.sh's run folder are gone;
#  - fuzz.sh gets SIGTERM while two targets run at once (MEGATUNE_FUZZ_JOBS=2): exit 143 at once,
#    both stopped, nothing left;
#  - they pass: "ok" for each, nothing left.
# No real fuzzer runs; only folders this test made (recorded by the stand-in) are looked at.
set -u
SRC=${MEGATUNE_SOURCE_DIR:?}
T=$(mktemp -d /tmp/mt_fuzz_scratch_XXXXXX)
# a run of the old script would leave the stand-in's folders: the test removes what it recorded
trap 'while read -r a b c; do rm -rf "$a" "$b" ${c:+"${c%/*}"}; done < "$T/made" 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
: > "$T/made"
mkdir -p "$T/build/tests"
cat > "$T/build/tests/fuzz_config" <<'EOF'
#!/usr/bin/env bash
# as fuzz_env.h: MEGATUNE_FUZZ_TMP, else /dev/shm, else /tmp; a restore's folder in TMPDIR
base=${MEGATUNE_FUZZ_TMP:-/dev/shm}; [ -w "$base" ] || base=/tmp
d=$(mktemp -d "$base/megatune-fuzz-config-XXXXXX") || exit 3
n=$(mktemp -d "${TMPDIR:-/tmp}/megatune-nemo-XXXXXX") || exit 3
echo x > "$d/input.yaml"
echo "$d $n ${MEGATUNE_FUZZ_TMP:-}" >> "$REC"
case $MODE in
  abort) kill -ABRT $$ ;;
  hang) echo $$ >> "$PIDFILE"; exec sleep 60 ;;
  *) echo "stat::number_of_executed_units: 1"; exit 0 ;;
esac
EOF
chmod +x "$T/build/tests/fuzz_config"
cp "$T/build/tests/fuzz_config" "$T/build/tests/fuzz_nemo"
export MEGATUNE_FUZZ_BUILD=$T/build MEGATUNE_FUZZ_TARGETS=config REC=$T/made PIDFILE=$T/pid

# nothing of a recorded line is left: the target's two folders and the run folder around them,
# which is a folder of its own under the base $2
left_over() {
  local what=$1 a b c
  [ -s "$T/made" ] || fail "$what: the stand-in target did not run"
  while read -r a b c; do
    for x in "$a" "$b"; do [ ! -e "$x" ] || fail "$what: $x is left behind"; done
    case $c in "$2"/megatune-fuzz-run-*/fuzz_config|"$2"/megatune-fuzz-run-*/fuzz_nemo) ;;
      *) fail "$what: the target's scratch was '$c', not a run folder's under $2" ;; esac
    [ ! -e "${c%/*}" ] || fail "$what: the run folder ${c%/*} is left behind"
  done < "$T/made"
  : > "$T/made"
}

shm=/dev/shm; [ -d $shm ] && [ -w $shm ] && [ -x $shm ] || shm=/tmp
MODE=abort bash "$SRC/scripts/fuzz.sh" 1 1 > "$T/abort.out" 2>&1; rc=$?
[ $rc = 1 ] || { cat "$T/abort.out"; fail "abort: fuzz.sh exited $rc"; }
grep -q "^fuzz fuzz_config: FAILED" "$T/abort.out" || { cat "$T/abort.out"; fail "abort: not reported FAILED"; }
left_over "abort (default base $shm)" "$shm"

mkdir "$T/base"
MEGATUNE_FUZZ_TMP=$T/base MODE=abort bash "$SRC/scripts/fuzz.sh" 1 1 > "$T/abort2.out" 2>&1
left_over "abort (MEGATUNE_FUZZ_TMP)" "$T/base"
[ -z "$(ls -A "$T/base")" ] || fail "MEGATUNE_FUZZ_TMP keeps $(ls -A "$T/base")"

export MEGATUNE_FUZZ_TARGETS="config nemo" MEGATUNE_FUZZ_JOBS=2
MODE=hang bash "$SRC/scripts/fuzz.sh" 100 > "$T/hang.out" 2>&1 & fz=$!
for _ in $(seq 100); do [ "$(cat "$T/pid" 2> /dev/null | wc -l)" = 2 ] && break; sleep 0.1; done
[ "$(cat "$T/pid" 2> /dev/null | wc -l)" = 2 ] || { kill "$fz"; cat "$T/hang.out"; fail "hang: the two targets did not run at once"; }
t0=$(date +%s)
kill -TERM "$fz"; wait "$fz"; rc=$?
[ $rc = 143 ] || fail "SIGTERM: fuzz.sh exited $rc"
[ $(( $(date +%s) - t0 )) -le 10 ] || fail "SIGTERM: fuzz.sh waited for the targets to end"
while read -r tp; do
  if kill -0 "$tp" 2> /dev/null; then kill "$tp"; fail "SIGTERM: a running target was left running"; fi
done < "$T/pid"
left_over "SIGTERM" "$shm"

MODE=ok bash "$SRC/scripts/fuzz.sh" 1 1 > "$T/ok.out" 2>&1 || { cat "$T/ok.out"; fail "ok: fuzz.sh failed"; }
for t in config nemo; do grep -q "^fuzz fuzz_$t: ok" "$T/ok.out" || { cat "$T/ok.out"; fail "ok: $t not reported ok"; }; done
grep -q "^fuzz: 2 passed, 0 failed" "$T/ok.out" || { cat "$T/ok.out"; fail "ok: no summary of 2 passed"; }
left_over "ok" "$shm"
echo PASS
