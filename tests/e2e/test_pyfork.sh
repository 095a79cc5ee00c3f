#!/usr/bin/env bash
# tests/pyfork, the `python3` every reference test runs under ctest, behaves as the real one: argv,
# stdin scripts, `-c`, the working folder, the environment, exit codes, death by a signal, a
# traceback on stderr, torch's thread count from OMP_NUM_THREADS; a killed caller takes its script
# down with it; calls run side by side; the server exits when idle; MEGATUNE_PYFORK=0 and options
# before the script go to the real Python. A wrong answer here would make every other test's
# Python answer wrong, so this one checks the wrapper against the real interpreter.
set -uo pipefail
src=${MEGATUNE_SOURCE_DIR:?}
real=${MEGATUNE_PYFORK_PYTHON:-/usr/bin/python3}
"$real" -c "import torch" 2> /dev/null || { echo "SKIP: $real cannot import torch"; exit 77; }
tmp=$(mktemp -d)
export MEGATUNE_PYFORK_DIR=$tmp/pf MEGATUNE_PYFORK_IDLE=4 MEGATUNE_PYFORK_PYTHON=$real
py=$src/tests/pyfork/python
trap 'pkill -f "pyfork_server.py $tmp/" 2> /dev/null; rm -rf "$tmp"' EXIT
fail=0
check() { # $1 description, then the command's status test
  if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}
server_pid() { pgrep -f "pyfork_server.py $tmp/pf/sock" | head -1; }

mkdir -p "$tmp/w"
cat > "$tmp/w/s.py" << 'PY'
import json, os, sys, torch
print(json.dumps(sys.argv), __name__, sys.path[0] == os.path.dirname(os.path.abspath(__file__)), os.getcwd(),
      os.environ.get("PYFORK_PROBE"), torch.get_num_threads(), os.getpid() != int(os.environ["CALLER"]))
sys.exit(int(sys.argv[1]))
PY
out=$(cd "$tmp/w" && PYFORK_PROBE=x OMP_NUM_THREADS=1 CALLER=$$ "$py" s.py 7 'a b'); rc=$?
check "script: argv, __main__, sys.path[0], cwd, env, threads, exit 7" \
  '[ $rc = 7 ] && [ "$out" = "[\"s.py\", \"7\", \"a b\"] __main__ True $tmp/w x 1 True" ]'
[ -n "$(server_pid)" ] || { echo "FAIL: no server after the first call"; fail=1; }
want=$(cd "$tmp/w" && PYFORK_PROBE=x OMP_NUM_THREADS=2 CALLER=$$ "$real" s.py 0 'a b')
out=$(cd "$tmp/w" && PYFORK_PROBE=x OMP_NUM_THREADS=2 CALLER=$$ "$py" s.py 0 'a b')
check "the same line as the real python3 (OMP_NUM_THREADS=2)" '[ "$out" = "$want" ]'

out=$(printf 'import sys\nprint(" ".join(sys.argv), __name__, repr(sys.stdin.read()))\n' | "$py" - p q); rc=$?
check "- reads the script from stdin" '[ $rc = 0 ] && [ "$out" = "- p q __main__ '"''"'" ]'
out=$("$py" -c 'import sys; print(" ".join(sys.argv)); sys.exit("bye")' r 2> "$tmp/err"); rc=$?
check "-c with arguments; sys.exit(str) prints it and exits 1" '[ $rc = 1 ] && [ "$out" = "-c r" ] && grep -qx bye "$tmp/err"'
"$py" -c 'raise ValueError("boom")' 2> "$tmp/err"; rc=$?
check "an exception: exit 1, traceback on the caller's stderr" '[ $rc = 1 ] && grep -q "ValueError: boom" "$tmp/err"'
"$py" -c 'import os, signal; os.kill(os.getpid(), signal.SIGTERM)'; rc=$?
check "killed by SIGTERM: the caller dies by it too (143)" '[ $rc = 143 ]'
out=$("$py" -c 'import random; print(random.random())'; "$py" -c 'import random; print(random.random())')
check "each call gets its own random seed" '[ "$(echo "$out" | sort -u | wc -l)" = 2 ]'
out=$(echo hi | "$py" -c 'import sys, pickle; x = sys.stdin.read().strip(); print(x)')
check "-c reads the caller's stdin" '[ "$out" = hi ]'

# A caller killed mid-script: the script is stopped too, not left running.
"$py" -c 'import time, sys; open(sys.argv[1], "w").write(__import__("os").getpid().__str__()); time.sleep(60)' "$tmp/marker" & c=$!
for _ in $(seq 200); do [ -s "$tmp/marker" ] && break; sleep 0.05; done
kill "$c"; wait "$c" 2> /dev/null
sp=$(cat "$tmp/marker" 2> /dev/null)
for _ in $(seq 40); do kill -0 "$sp" 2> /dev/null || break; sleep 0.05; done
check "killing the caller stops its script" '[ -n "$sp" ] && ! kill -0 "$sp" 2> /dev/null'

# Two calls at once run side by side (each sleeps 1.5 s: together well under 3 s). The call before
# them makes sure the server is up (MEGATUNE_PYFORK_IDLE=4 keeps it so), so no import is timed.
"$py" -c 'pass'
t0=$(date +%s%N)
"$py" -c 'import time; time.sleep(1.5)' & a=$!
"$py" -c 'import time; time.sleep(1.5)' & b=$!
wait $a; ra=$?; wait $b; rb=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "two calls at once ($ms ms)" '[ $ra = 0 ] && [ $rb = 0 ] && [ $ms -lt 2900 ]'

# What it does not forward runs the real interpreter: the same answers, no server needed.
out=$(MEGATUNE_PYFORK=0 "$py" -c 'import os, sys; print(os.path.realpath(sys.executable), os.getppid() == '$$')')
check "MEGATUNE_PYFORK=0 runs the real python3 itself" '[ "$out" = "$(realpath "$real") True" ]'
out=$("$py" -u -c 'print(1 + 1)')
check "an option before the script (-u) runs the real python3" '[ "$out" = 2 ]'

# Idle for MEGATUNE_PYFORK_IDLE seconds with nothing running: the server exits and removes its socket.
sp=$(server_pid)
for _ in $(seq 200); do [ -e "$tmp/pf/sock" ] || break; sleep 0.05; done
for _ in $(seq 100); do [ -n "$sp" ] && kill -0 "$sp" 2> /dev/null || break; sleep 0.05; done
check "the idle server exits and removes its socket" '[ -n "$sp" ] && [ ! -e "$tmp/pf/sock" ] && ! kill -0 "$sp" 2> /dev/null'
out=$("$py" -c 'print("again")')
check "the next call starts a new server" '[ "$out" = again ] && [ -n "$(server_pid)" ] && [ "$(server_pid)" != "$sp" ]'

[ $fail = 0 ] && echo "test_pyfork: all passed"
exit $fail
