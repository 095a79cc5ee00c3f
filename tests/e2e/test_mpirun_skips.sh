#!/usr/bin/env bash
# The mpirun parts of the e2e tests follow the suite's rule on skips (tests/e2e/mpi_env.sh):
#  - without mpirun on PATH, or with one that cannot start 2 processes, mpi_part under CI=true fails
#    the test (exit 1) naming what was missing; a developer's run prints a SKIP line naming it, runs
#    the rest, and mpi_part_end exits 77 (skipped) with that reason;
#  - with a working mpirun the part runs and mpi_part_end changes nothing;
#  - no e2e script that starts mpirun guards it with a bare `command -v mpirun` (a silent skip).
set -u
SRC=${MEGATUNE_SOURCE_DIR:?}
fail() { echo "FAIL: $*"; exit 1; }
T=$(mktemp -d /tmp/mt_mpirun_skips_XXXXXX); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/none" "$T/broken" "$T/works"
# a PATH without mpirun: only what the helpers use
for c in true cat; do ln -s "$(command -v $c)" "$T/none/$c"; done
cp -P "$T/none/"* "$T/broken/"; cp -P "$T/none/"* "$T/works/"
printf '#!/bin/sh\necho "mpirun: cannot start" >&2; exit 1\n' > "$T/broken/mpirun"
printf '#!/bin/sh\nexit 0\n' > "$T/works/mpirun"
chmod +x "$T/broken/mpirun" "$T/works/mpirun"
bash_bin=$(command -v bash)

# $1 = PATH folder, $2 = CI value ("" = unset); prints the output, sets rc
part() {
  out=$(env -i PATH="$T/$1" ${2:+CI=$2} "$bash_bin" -c '. "$0"; mpi_env; if mpi_part "the TP=2 part"; then echo "part ran"; fi
    echo "rest ran"; mpi_part_end; echo "test passed"' "$SRC/tests/e2e/mpi_env.sh" 2>&1); rc=$?
}

for ci in true 1 yes; do
  part none $ci
  [ $rc = 1 ] || fail "CI=$ci, no mpirun: exit $rc, not 1: $out"
  [[ $out == *"FAIL: the TP=2 part: mpirun not found on PATH"* ]] || fail "CI=$ci, no mpirun: message: $out"
  [[ $out == *"rest ran"* ]] && fail "CI=$ci, no mpirun: went on after the failure"
done
echo "ok: CI=true|1|yes without mpirun fails, naming it"
part broken true
[ $rc = 1 ] && [[ $out == *"FAIL: the TP=2 part: mpirun cannot start 2 processes here"* ]] \
  || fail "CI=true, mpirun that cannot start: exit $rc: $out"
echo "ok: CI=true with an mpirun that cannot start fails, naming it"

for p in none broken; do
  for ci in "" false; do
    part $p "$ci"
    [ $rc = 77 ] || fail "$p, CI='$ci': exit $rc, not 77 (skipped): $out"
    [[ $out == *"SKIP: the TP=2 part: mpirun"* ]] || fail "$p, CI='$ci': no SKIP line: $out"
    [[ $out == *"rest ran"* ]] || fail "$p, CI='$ci': the rest did not run"
    [[ $out == *"part ran"* || $out == *"test passed"* ]] && fail "$p, CI='$ci': the part ran or the test passed: $out"
    tail -1 <<< "$out" | grep -q "^SKIP (the rest passed): the TP=2 part: mpirun" || fail "$p: last line: $out"
  done
done
echo "ok: a local run without a working mpirun skips loudly (77, reason on the last line for scripts/test.sh)"

for ci in "" true; do
  part works "$ci"
  [ $rc = 0 ] && [[ $out == *"part ran"*"rest ran"*"test passed"* ]] && [[ $out != *SKIP* ]] \
    || fail "working mpirun, CI='$ci': exit $rc: $out"
done
echo "ok: with a working mpirun the part runs"

# every e2e script that starts mpirun: a test_mpi_* script (mpi_require: exit 77, a failure under
# CI) or one whose parts go through mpi_part / an explicit CI check; none skips silently
n=0
for f in "$SRC"/tests/e2e/test_*.sh; do
  case $f in */test_mpi_*|*/test_mpirun_skips.sh) continue ;; esac
  grep -q "mpirun --oversubscribe" "$f" || continue
  n=$((n + 1))
  grep -qE "^\s*if command -v mpirun" "$f" && fail "$(basename "$f"): 'if command -v mpirun' skips silently; use mpi_part"
  grep -qE "mpi_part |CI:-.*fail \"mpirun" "$f" || fail "$(basename "$f"): its mpirun part has no mpi_part guard"
  if grep -q "mpi_part " "$f"; then grep -q "^\s*mpi_part_end" "$f" || fail "$(basename "$f"): mpi_part without mpi_part_end"; fi
done
[ $n -ge 5 ] || fail "only $n e2e scripts start mpirun (test_download, test_interop, test_pnc_intent_slot, test_squad_train, ...)"
echo "ok: the $n e2e scripts with an mpirun part fail under CI without it"
echo PASS
