#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs packages, builds Release and ASan+UBSan,
# runs ctest in both, runs the fuzz targets for a bounded time, and ends with one summary line.
# Under CI=true a skipped test (exit 77: a missing dependency) fails the run, naming what was missing;
# a developer's local run may skip, and the skips are listed with their reasons before the summary.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bash scripts/install-deps.sh || exit 1
pass=0; fail=0; skip=0
ci=0; case "${CI:-}" in true|1|yes) ci=1 ;; esac
# Coverage that would otherwise vanish into a note (tests/test_util.h, mt_test_required): CI machines
# have oneDNN (scripts/install-deps.sh installs it), and a CPU with AVX512-BF16 or AMX-BF16 there must
# run the hardware bf16 path. Outside CI neither is assumed (a developer may build without oneDNN).
if ((ci)); then
  export MEGATUNE_REQUIRE_DNNL=${MEGATUNE_REQUIRE_DNNL:-1}
  grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2> /dev/null && export MEGATUNE_REQUIRE_BF16_HW=${MEGATUNE_REQUIRE_BF16_HW:-1}
fi
skipped_list=$(mktemp); trap 'rm -f "$skipped_list"' EXIT
# The reason a test gave for skipping: the last line of its output that says so (LastTest.log keeps
# every test's output, ctest --output-on-failure does not show a skipped test's).
skip_reason() { # $1 = build dir, $2 = test name
  awk -v t="$2" '$0 ~ "^[0-9]+/[0-9]+ Test: "t"$" {on=1; next} on && /^<end of output>/ {exit}
    on && tolower($0) ~ /skip|missing|not found|not built|needed|cannot/ {r=$0} END {print r}' \
    "$1/Testing/Temporary/LastTest.log" 2>/dev/null | cut -c1-200
}
run_ctest() { # $1 = build dir, $2 = label
  local log; log=$(mktemp)
  (cd "$1" && ctest --output-on-failure -j 2 --timeout 600 2>&1) | tee "$log"
  # the tests' Python fork server (tests/pyfork) would exit after 30 idle seconds; stop it now
  pkill -f "pyfork_server.py $(cd "$1" && pwd)/pyfork/sock" 2>/dev/null || true
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then echo "test.sh: $2: ctest printed no summary"; fail=$((fail+1)); rm -f "$log"; return; fi
  local total failed skipped
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  skipped=$(grep -cE "\*\*\*Skipped|Not Run" "$log" || true)
  pass=$((pass + total - failed - skipped)); fail=$((fail + failed)); skip=$((skip + skipped))
  local t
  for t in $(grep -E "\*\*\*Skipped|Not Run" "$log" | sed -E 's/.*Test +#[0-9]+: ([^ ]+) .*/\1/'); do
    echo "$2: $t: $(skip_reason "$1" "$t")" >> "$skipped_list"
  done
  rm -f "$log"
}
echo "== Release build =="
bash scripts/build.sh release || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
run_ctest build release
echo "== ASan+UBSan build =="
bash scripts/build.sh asan || { echo "$pass passed, $((fail+1)) failed, $skip skipped"; exit 1; }
# exitcode=86: a sanitizer report must not look like a refusal (exit 1), which many tests expect
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:exitcode=86 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 \
  MEGATUNE_SANITIZED=1 run_ctest build-asan asan
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang not found: the fuzz targets were not run"; skip=$((skip+1))
  echo "fuzz: all targets: clang not found (scripts/install-deps.sh installs it)" >> "$skipped_list"
elif ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== fuzz (bounded) =="
  if bash scripts/build.sh fuzz >/dev/null; then
    flog=$(mktemp)
    MEGATUNE_FUZZ_SEED=${MEGATUNE_FUZZ_SEED:-1} bash scripts/fuzz.sh 12 | tee "$flog"
    frc=${PIPESTATUS[0]}
    fok=$(grep -c "^fuzz fuzz_.*: ok" "$flog"); fbad=$(grep -c "^fuzz fuzz_.*: FAILED" "$flog")
    # every target must have run and passed: a build that made no binaries would otherwise count 0/0
    fwant=$(ls tests/fuzz/fuzz_*.c | wc -l)
    [ -n "${MEGATUNE_FUZZ_TARGETS:-}" ] && fwant=$(wc -w <<< "$MEGATUNE_FUZZ_TARGETS")
    pass=$((pass + fok)); fail=$((fail + fbad))
    if [ "$frc" -ne 0 ] || [ "$fok" -ne "$fwant" ]; then
      echo "fuzz: $fok of $fwant targets passed, scripts/fuzz.sh exited $frc (build-fuzz/tests/ holds $(ls build-fuzz/tests/fuzz_* 2> /dev/null | wc -l) target(s))"
      [ "$fbad" -eq 0 ] && fail=$((fail+1))
    fi
    rm -f "$flog"
  else
    echo "fuzz build failed"; fail=$((fail+1))
  fi
fi
echo
if [ "$skip" -gt 0 ]; then
  echo "== $skip skipped (a dependency was missing) =="
  cat "$skipped_list"
  if ((ci)); then
    echo "CI=true: a skipped test is a failed test; install what is named above"
    fail=$((fail + skip))
  fi
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
