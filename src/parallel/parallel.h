// The process groups of a tensor x data parallel run, as Megatron builds them
// (mpu/initialize.py): global rank = dp_rank * tp + tp_rank, so a tensor-parallel group is tp
// consecutive ranks and a data-parallel group is every rank with the same tp_rank.
// Launched under mpirun (OMPI_COMM_WORLD_SIZE / PMI_SIZE / PMIX_SIZE in the environment) the
// groups are MPI communicators (comm_mpi.c); otherwise they are groups of one and MPI is never
// initialised, so a plain `megatune train` pays nothing.
#ifndef MT_PARALLEL_PARALLEL_H
#define MT_PARALLEL_PARALLEL_H

#include "core/status.h"
#include "parallel/comm.h"

typedef struct {
    int world_rank, world_size;
    int tp_rank, tp_size;
    int dp_rank, dp_size;
    int local_rank;   // rank on this node (for nemo_log_globalrank-G_localrank-L.txt)
    int uses_mpi;     // 1 when the groups are MPI communicators
    mt_comm *world, *tp, *dp;
} mt_parallel;

// The world size the launcher announced in the environment (1 when not launched by mpirun/srun).
int mt_parallel_launched_size(void);
// Initialises MPI on first use (MPI_Init_thread, FUNNELED; MPI_Finalize at exit) when the
// launcher announced more than one process, and builds the groups for `tp_size`. Fails, naming
// the fix, when world size % tp_size != 0, or when more than one process was launched and this
// build has no MPI.
mt_status mt_parallel_create(int tp_size, mt_parallel **out) MT_WARN_UNUSED;
void mt_parallel_free(mt_parallel *p);
// Stops every process of the job (MPI_Abort) after a failure on one rank, which would otherwise
// leave the others blocked in a collective. Returns (does nothing) when MPI is not running.
void mt_parallel_abort(int code);

// The MPI library this build links ("Open MPI v4.1.4, ..." first line), or why there is none.
void mt_parallel_library(char *buf, size_t n);

// An MPI communicator as an mt_comm (comm is an MPI_Comm passed as a pointer to it; the mt_comm
// duplicates it and frees its copy). Only with MEGATUNE_HAVE_MPI; elsewhere returns NULL.
mt_comm *mt_comm_mpi_dup(const void *mpi_comm);

#endif
