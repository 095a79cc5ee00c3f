#!/usr/bin/env bash
# The MPI communicator under mpirun: tests/unit/test_comm_mpi.c on 2 and 4 ranks with tensor-parallel
# sizes 1, 2 and 4 (collectives on the world, tensor and data groups; Megatron's rank layout).
set -u
command -v mpirun > /dev/null || { echo "mpirun not found: skipped"; exit 77; }
t=${MEGATUNE_BUILD_DIR:?}/tests/test_comm_mpi
[ -x "$t" ] || { echo "$t not built: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# vader without single-copy (CMA needs ptrace rights that containers often lack)
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpirun --oversubscribe -np 2 true > /dev/null 2>&1 || { echo "mpirun cannot start 2 processes here: skipped"; exit 77; }
for cfg in "2 1" "2 2" "4 1" "4 2" "4 4"; do
  set -- $cfg
  out=$(MT_TEST_TP=$2 mpirun --oversubscribe -x MT_TEST_TP -np "$1" "$t" 2>&1) || { echo "$out"; echo "FAIL: np=$1 tp=$2"; exit 1; }
  [ "$(grep -c '^ok$' <<< "$out")" = "$1" ] || { echo "$out"; echo "FAIL: np=$1 tp=$2: not every rank said ok"; exit 1; }
  echo "np=$1 tp=$2: ok"
done
echo "OK"
