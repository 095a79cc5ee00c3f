#!/usr/bin/env bash
# Configures and builds one build folder: scripts/build.sh [release|asan|fuzz]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
case $kind in
  release) dir=$here/build;      args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=$here/build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DMEGATUNE_SANITIZE=ON) ;;
  fuzz)    dir=$here/build-fuzz; args=(-DCMAKE_BUILD_TYPE=Debug -DMEGATUNE_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
target=(); [ "$kind" = fuzz ] && target=(--target fuzzers)
cmake -S "$here" -B "$dir" "${args[@]}" >/dev/null
# Show warnings and errors only; a failed build fails this script.
if ! cmake --build "$dir" -j "$jobs" "${target[@]}" >"$dir/build.log" 2>&1; then
  grep -E "error|Error" "$dir/build.log" | head -40; exit 1
fi
grep -E "warning" "$dir/build.log" | head -40 || true
echo "$dir"
