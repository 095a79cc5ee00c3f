#!/usr/bin/env bash
# Two "hosts" as Linux network namespaces on this machine, joined by a veth pair with addresses
# of a private range that exist only inside these two namespaces (no real network is touched).
# mpirun runs in host A; its launch agent (plm_rsh_agent) is a script that runs the remote
# command with `ip netns exec` in host B instead of ssh; ranks talk over the TCP BTL only.
#  (1) TP=2 x DP=2 across the hosts (the tensor groups inside a host, the data-parallel
#      all-reduce across) equals one process with the global batch (1e-5, as test_mpi_train),
#      and equals the same job on one host over shared memory digit for digit;
#  (2) host B vanishing mid-run (every process in its namespace killed) ends the job with a
#      message about the lost peer, no hang (Open MPI words it as a peer disconnect, or, when the
#      launch agent's death is noticed first, as daemons it could not keep: both name the cause);
#  (3) host B's network cut mid-run (its veth deleted; the processes live on) ends the job: Open
#      MPI's daemon keepalive and megatune's collective watchdog (MEGATUNE_MPI_TIMEOUT) fire; host B's
#      own processes end by themselves (its orted once TCP gives up: tcp_retries2 set low here).
# Needs root with CAP_NET_ADMIN (`ip netns add`); without it the test skips (77), saying so.
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
command -v ip > /dev/null || { echo "iproute2 (ip) not found: skipped"; exit 77; }
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}; py=${MEGATUNE_PYTHON:-python3}
mpi_env root threads asan
unset OMPI_MCA_btl OMPI_MCA_rmaps_base_oversubscribe
work=$(mktemp -d)
A=mtA$$; B=mtB$$; va=mva$$; vb=mvb$$
net=10.213.7; ipa=$net.1; ipb=$net.2
cleanup() {
  local ns p
  for ns in $A $B; do
    for p in $(ip netns pids $ns 2> /dev/null); do kill -9 "$p" 2> /dev/null; done
  done
  sleep 0.2
  ip netns del $A 2> /dev/null; ip netns del $B 2> /dev/null
  ip link del $va 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if ! ip netns add $A 2> "$work/netns.err"; then
  echo "cannot create a network namespace here ($(cat "$work/netns.err")): needs root with CAP_NET_ADMIN: skipped"
  exit 77
fi
ip netns add $B || { echo "FAIL: second namespace"; exit 1; }
# A cut-off host's orted that has a report in flight (its ranks' exit) waits out TCP's
# retransmissions, not the keepalive: tcp_retries2=15 is about 15 minutes. A cluster that wants a
# cut-off node to clean up sooner lowers it the same way (per network namespace, Linux >= 4.x).
for ns in $A $B; do ip netns exec $ns sysctl -q -w net.ipv4.tcp_retries2=4 || { echo "FAIL: tcp_retries2 in $ns"; exit 1; }; done
fail() { echo "FAIL: $*"; exit 1; }
link() { # (re)creates the veth pair A <-> B with its addresses
  ip link add $va type veth peer name $vb && ip link set $va netns $A && ip link set $vb netns $B \
    && ip -n $A addr add $ipa/24 dev $va && ip -n $B addr add $ipb/24 dev $vb \
    && ip -n $A link set $va up && ip -n $B link set $vb up && ip -n $A link set lo up && ip -n $B link set lo up
}
link || fail "veth pair"
cat > "$work/agent.sh" << EOF
#!/bin/sh
# Open MPI calls its rsh agent as: AGENT [options] HOST COMMAND...
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case \$host in
  $ipa) ns=$A ;;
  $ipb) ns=$B ;;
  *) echo "agent: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec \$ns /bin/sh -c "\$*"
EOF
chmod +x "$work/agent.sh"
mca=(--mca plm_rsh_agent "$work/agent.sh" --mca btl tcp,self --mca btl_tcp_if_include $net.0/24
  --mca oob_tcp_if_include $net.0/24 --mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1
  --mca oob_tcp_keepalive_probes 3)
# mh NAME ARGS...: 4 ranks, 2 per host, from host A
mh() {
  local name=$1; shift
  timeout -k 5 120 ip netns exec $A mpirun "${mca[@]}" --host $ipa:2,$ipb:2 -np 4 -x OMP_NUM_THREADS \
    -x MEGATUNE_MPI_TIMEOUT -x MEGATUNE_FAULT_DELAY_MS -wdir "$src" "$bin" train "$@" exp_manager.exp_dir="$work/$name" \
    > "$work/$name.log" 2>&1
}
export MEGATUNE_MPI_TIMEOUT=${MEGATUNE_MPI_TIMEOUT:-1800} MEGATUNE_FAULT_DELAY_MS=0
timeout 60 ip netns exec $A mpirun "${mca[@]}" --host $ipa:1,$ipb:1 -np 2 true > "$work/probe.log" 2>&1 \
  || { cat "$work/probe.log"; fail "mpirun cannot launch across the namespaces"; }
cd "$src"
steps=10
common=(examples/quickstart_config.yaml trainer.max_steps=$steps trainer.val_check_interval=5 trainer.log_every_n_steps=1
  trainer.progress_bar=lines exp_manager.version=v model.language_model.config.hidden_dropout=0
  model.language_model.config.attention_dropout=0 model.classifier_head.fc_dropout=0)

# --- (1) TP=2 x DP=2 across two hosts ---
"$bin" train "${common[@]}" model.train_ds.batch_size=8 exp_manager.exp_dir="$work/one" > "$work/one.log" 2>&1 || fail "one process"
OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun --oversubscribe -np 4 "$bin" train "${common[@]}" \
  model.train_ds.batch_size=4 model.tensor_model_parallel_size=2 exp_manager.exp_dir="$work/shm" > "$work/shm.log" 2>&1 \
  || { tail "$work/shm.log"; fail "one-host TP=2 x DP=2"; }
mh hosts "${common[@]}" model.train_ds.batch_size=4 model.tensor_model_parallel_size=2 || { tail -30 "$work/hosts.log"; fail "two-host run"; }
d=$work/hosts/quickstart/v
for f in nemo_log_globalrank-0_localrank-0 nemo_log_globalrank-1_localrank-1 nemo_log_globalrank-2_localrank-0 \
  nemo_log_globalrank-3_localrank-1; do [ -f "$d/$f.txt" ] || { ls "$d"; fail "rank log $f.txt (local ranks per host)"; }; done
"$py" - "$work/one/quickstart/v/metrics.csv" "$d/metrics.csv" << 'PY' || fail "two hosts vs one process"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) >= 10, (len(a), len(b))
worst = 0.0
for ra, rb in zip(a, b):
    for k in ra:
        if k in ("step", "epoch", "lr") or ra[k] == rb[k] == "": continue
        x, y = float(ra[k]), float(rb[k]); rel = abs(x - y) / max(abs(x), 1e-12); worst = max(worst, rel)
        assert rel <= 1e-5, f"step {ra['step']} {k}: {x} vs {y}"
print(f"two hosts (TP=2 x DP=2 over TCP) vs one process: {len(a)} rows, worst relative difference {worst:.2e}")
PY
cmp "$work/shm/quickstart/v/metrics.csv" "$d/metrics.csv" || fail "two hosts over TCP differ from one host over shared memory"
"$bin" inspect -q "$d/checkpoints/quickstart.nemo" > /dev/null 2>&1 || fail "two-host .nemo"
echo "ok: TP=2 x DP=2 across two hosts == one process (1e-5) == one host (digit for digit)"

long=(examples/quickstart_config.yaml trainer.max_steps=100000 trainer.val_check_interval=5 trainer.progress_bar=lines
  exp_manager.version=v model.train_ds.batch_size=4 model.tensor_model_parallel_size=2)
# started LOG: until the job has trained a while
started() {
  for _ in $(seq 1 3000); do grep -q "saved checkpoint" "$1" 2> /dev/null && return 0; sleep 0.01; done
  return 1
}

# --- (2) host B vanishes: every process in its namespace killed ---
mh gone "${long[@]}" &
job=$!
started "$work/gone.log" || fail "(2) the job did not start"
for p in $(ip netns pids $B); do kill -9 "$p" 2> /dev/null; done
t0=$(date +%s); wait $job; rc=$?; t=$(( $(date +%s) - t0 ))
[ $rc = 124 ] && fail "(2) the job hung after host B vanished"
[ $rc != 0 ] || fail "(2) the job succeeded"
sed -n "/^-----/,/^-----/p" "$work/gone.log" | head -12 | sed "s/^/  /"
grep -qE "unexpectedly disconnected|lost communication with a remote daemon|exited on signal|ORTE daemon has unexpectedly failed|unable to reliably start one or more daemons" "$work/gone.log" \
  || { tail -30 "$work/gone.log"; fail "(2) no message about the lost host"; }
[ -z "$(ip netns pids $A)" ] || fail "(2) processes left in host A"
echo "ok: host B vanished: the job ended ${t} s later (exit $rc): $(grep -oE "unexpectedly disconnected|lost communication with a remote daemon|exited on signal [0-9]+|ORTE daemon has unexpectedly failed|unable to reliably start one or more daemons" "$work/gone.log" | sort -u | tr '\n' ';')"

# --- (3) host B's network cut: the veth deleted, its processes alive ---
export MEGATUNE_MPI_TIMEOUT=5
mh cut "${long[@]}" &
job=$!
started "$work/cut.log" || fail "(3) the job did not start"
ip -n $B link del $vb
t0=$(date +%s); wait $job; rc=$?; t=$(( $(date +%s) - t0 ))
[ $rc = 124 ] && fail "(3) the job hung after the network was cut"
[ $rc != 0 ] || fail "(3) the job succeeded"
grep -qE "made no progress for 5 s|lost communication with a remote daemon" "$work/cut.log" \
  || { tail -30 "$work/cut.log"; fail "(3) no message about the cut"; }
[ -z "$(ip netns pids $A)" ] || fail "(3) processes left in host A"
# host B, cut off, ends on its own timers (the ranks' watchdog, its daemon's keepalive)
tb=0
while [ -n "$(ip netns pids $B)" ] && [ $tb -lt 600 ]; do sleep 0.1; tb=$(( tb + 1 )); done
[ -z "$(ip netns pids $B)" ] || fail "(3) processes left in host B 60 s after the job ended"
echo "  host B's own processes ended $(( tb / 10 )) s after the job"
echo "ok: host B cut off: the job ended ${t} s later (exit $rc); $(grep -o "rank [0-9]*: MPI [A-Za-z]* made no progress for 5 s" "$work/cut.log" | head -2 | tr '\n' ';')"
echo "OK"
