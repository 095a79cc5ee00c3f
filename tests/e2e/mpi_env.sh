# Sourced (not run) by the tests that start mpirun: tests/e2e/test_mpi_*.sh, and the mpirun parts of
# test_download, test_interop, test_pnc_intent_slot, test_squad_train, test_squad_do_training_false.
# A test_mpi_* test without mpirun, or where it cannot start 2 processes, skips (77); scripts/test.sh
# counts a skip as a failure under CI=true, so CI without a working mpirun fails. A test with an mpirun
# part guards it with mpi_part and ends with mpi_part_end (CI=true: the test fails; locally: SKIP, 77).

# mpi_require: exit 77 (skipped) unless mpirun is on PATH.
mpi_require() {
  command -v mpirun > /dev/null || { echo "mpirun not found: skipped"; exit 77; }
}

# mpi_env [PART...]: exports what the mpirun runs need; no PART: all of them.
#   root     Open MPI refuses root (a container's user) without both variables
#   shm      one host over shared memory: vader without single-copy (CMA needs ptrace rights that
#            containers often lack), and more ranks than cores
#   threads  one OpenMP thread per rank (the ranks share the cores)
#   asan     Open MPI's own allocations are not ours to leak-check
mpi_env() {
  local part
  [ $# -gt 0 ] || set -- root shm threads asan
  for part in "$@"; do
    case $part in
      root) export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ;;
      shm) export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 ;;
      threads) export OMP_NUM_THREADS=1 ;;
      asan) export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 ;;
      *) echo "mpi_env: unknown part '$part' (root, shm, threads, asan)"; exit 1 ;;
    esac
  done
}

# mpi_can_start: mpirun starts 2 processes here (after mpi_env).
mpi_can_start() {
  mpirun --oversubscribe -np 2 true > /dev/null 2>&1
}

# mpi_require_start: exit 77 (skipped) unless it can.
mpi_require_start() {
  mpi_can_start || { echo "mpirun cannot start 2 processes here: skipped"; exit 77; }
}

# mpi_part WHAT: 0 when the mpirun part WHAT of a test can run here (after mpi_env). Otherwise, under
# CI=true (scripts/test.sh's spelling: true, 1 or yes) the test fails now, naming what was missing; a
# developer's run says SKIP, runs the rest and returns 1, and mpi_part_end turns the test into a skip.
mpi_part() {
  local why=
  if ! command -v mpirun > /dev/null; then why="mpirun not found on PATH (scripts/install-deps.sh installs openmpi-bin)"
  elif ! mpi_can_start; then why="mpirun cannot start 2 processes here"; fi
  [ -z "$why" ] && return 0
  case "${CI:-}" in
    true|1|yes) echo "FAIL: $1: $why (CI=true: a skipped part is a failure)"; exit 1 ;;
  esac
  echo "SKIP: $1: $why; the rest of the test runs"
  MPI_PART_SKIPPED="${MPI_PART_SKIPPED:+$MPI_PART_SKIPPED; }$1: $why"
  return 1
}

# mpi_part_end: after the rest passed, exit 77 (skipped, with the reason) when an mpirun part was skipped.
mpi_part_end() {
  [ -z "${MPI_PART_SKIPPED:-}" ] || { echo "SKIP (the rest passed): $MPI_PART_SKIPPED"; exit 77; }
}
