# Sourced by the e2e tests that stop a training run part-way (SIGKILL, SIGTERM) and resume it.
# wait_rows CSV N PID: returns once CSV has more than N lines (metrics.csv: header + logged steps) or
# PID has exited; gives up after about 30 s (6000 polls of 5 ms) and lets the caller's checks decide.
wait_rows() {
  local csv=$1 n=$2 pid=$3 rows
  for _ in $(seq 1 6000); do
    rows=$(cat "$csv" 2>/dev/null | wc -l)
    [ "$rows" -gt "$n" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.005
  done
}
