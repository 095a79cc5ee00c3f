#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs packages, builds Release and ASan+UBSan,
# runs ctest in both, runs the fuzz targets for a bounded time, and ends with one summary line.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bash scripts/install-deps.sh || exit 1
pass=0; fail=0; skip=0
run_ctest() { # $1 = build dir, $2 = label
  local log; log=$(mktemp)
  (cd "$1" && ctest --output-on-failure -j 2 --timeout 600 2>&1) | tee "$log"
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then echo "test.sh: $2: ctest printed no summary"; fail=$((fail+1)); rm -f "$log"; return; fi
  local total failed skipped
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  skipped=$(grep -cE "\*\*\*Skipped|Not Run" "$log" || true)
  pass=$((pass + total - failed - skipped)); fail=$((fail + failed)); skip=$((skip + skipped))
  rm -f "$log"
}
echo "== Release build =="
bash scripts/build.sh release || { echo "0 passed, 1 failed"; exit 1; }
run_ctest build release
echo "== ASan+UBSan build =="
bash scripts/build.sh asan || { echo "$pass passed, $((fail+1)) failed"; exit 1; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  MEGATUNE_SANITIZED=1 run_ctest build-asan asan
if command -v clang >/dev/null 2>&1 && ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== fuzz (bounded) =="
  if bash scripts/build.sh fuzz >/dev/null; then
    for f in build-fuzz/tests/fuzz_*; do
      [ -x "$f" ] || continue
      name=$(basename "$f"); corpus=tests/fuzz/corpus/${name#fuzz_}
      mkdir -p /tmp/megatune-fuzz-$name
      if "$f" -max_total_time=20 -rss_limit_mb=2048 /tmp/megatune-fuzz-$name $( [ -d "$corpus" ] && echo "$corpus") >/tmp/megatune-$name.log 2>&1; then
        echo "fuzz $name: ok ($(grep -Eo '#[0-9]+' /tmp/megatune-$name.log | tail -1) runs)"; pass=$((pass+1))
      else
        echo "fuzz $name: FAILED"; tail -40 /tmp/megatune-$name.log; fail=$((fail+1))
      fi
    done
  else
    echo "fuzz build failed"; fail=$((fail+1))
  fi
fi
echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
