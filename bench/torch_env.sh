# Sourced by the bench scripts: PyTorch's best setting on these machines
# (shared/reference/pytorch-baseline.md): N threads that wait passively, the OpenMP build of
# OpenBLAS and tcmalloc where installed. Usage: torch_env_for N; then env "${torch_env[@]}" python3 ...
torch_env_for() {
  torch_env=(OMP_NUM_THREADS=$1 OMP_WAIT_POLICY=PASSIVE)
  local ompblas=/usr/lib/x86_64-linux-gnu/openblas-openmp tcm
  [ -d "$ompblas" ] && torch_env+=(LD_LIBRARY_PATH=$ompblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH})
  tcm=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
  [ -n "$tcm" ] && torch_env+=(LD_PRELOAD=$tcm)
  return 0
}
