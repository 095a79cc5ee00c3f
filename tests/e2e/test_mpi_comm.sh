#!/usr/bin/env bash
# The MPI communicator under mpirun: tests/unit/test_comm_mpi.c on 2 and 4 ranks with tensor-parallel
# sizes 1, 2 and 4 (collectives on the world, tensor and data groups; Megatron's rank layout).
set -u
. "$(dirname "$0")/mpi_env.sh"
mpi_require
t=${MEGATUNE_BUILD_DIR:?}/tests/test_comm_mpi
[ -x "$t" ] || { echo "$t not built: skipped"; exit 77; }
mpi_env
mpi_require_start
for cfg in "2 1" "2 2" "4 1" "4 2" "4 4"; do
  set -- $cfg
  out=$(MT_TEST_TP=$2 mpirun --oversubscribe -x MT_TEST_TP -np "$1" "$t" 2>&1) || { echo "$out"; echo "FAIL: np=$1 tp=$2"; exit 1; }
  [ "$(grep -c '^ok$' <<< "$out")" = "$1" ] || { echo "$out"; echo "FAIL: np=$1 tp=$2: not every rank said ok"; exit 1; }
  echo "np=$1 tp=$2: ok"
done
echo "OK"
