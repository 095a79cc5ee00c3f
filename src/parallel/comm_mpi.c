#include "parallel/parallel.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "core/log.h"

int mt_parallel_launched_size(void) {
    // Open MPI's mpirun, then MPICH/Hydra and PMIx launchers (srun --mpi=pmix).
    static const char *const keys[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = getenv(keys[i]);
        if (v && *v) {
            long n = strtol(v, NULL, 10);
            if (n >= 1 && n < INT_MAX) return (int)n;
        }
    }
    return 1;
}

static int env_local_rank(void) {
    static const char *const keys[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = getenv(keys[i]);
        if (v && *v) return (int)strtol(v, NULL, 10);
    }
    return -1;
}

static mt_status single_groups(mt_parallel *p) {
    p->world = mt_comm_single();
    p->tp = mt_comm_single();
    p->dp = mt_comm_single();
    if (!p->world || !p->tp || !p->dp) return MT_ERR_NOMEM;
    return MT_OK;
}

#if defined(MEGATUNE_HAVE_MPI) && MEGATUNE_HAVE_MPI

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    MPI_Comm comm;
} mpi_impl;

static MPI_Comm comm_of(mt_comm *c) { return ((mpi_impl *)c->impl)->comm; }

// ---- watchdog ----
// A peer that dies is reported by Open MPI, which ends the job; a peer that is cut off (its host's
// network gone, the process stopped) is not: every rank would wait in its collective forever. A
// thread checks that no collective lasts longer than MEGATUNE_MPI_TIMEOUT seconds (default 1800,
// as torch.distributed's; 0 = off) and otherwise ends this process with a message naming the
// call; the launcher then ends the rest of the job. The clock covers waiting for slower ranks too
// (a checkpoint being written), hence the generous default.
static _Atomic long long g_wait_since_ms = 0; // 0 = not in a collective
static const char *_Atomic g_wait_what = "";
static long g_timeout_s = -1;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watchdog(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec nap = {0, 200 * 1000000L};
        nanosleep(&nap, NULL);
        long long since = atomic_load(&g_wait_since_ms);
        if (since && now_ms() - since > g_timeout_s * 1000LL) {
            int rank = -1;
            const char *v = getenv("OMPI_COMM_WORLD_RANK");
            if (!v) v = getenv("PMI_RANK");
            if (v) rank = atoi(v);
            char msg[512];
            int n = snprintf(msg, sizeof msg, "megatune: error: rank %d: MPI %s made no progress for %ld s: a peer "
                             "process or its host is gone or unreachable (network cut); stopping this process. "
                             "MEGATUNE_MPI_TIMEOUT=SECONDS changes the limit (0 = wait forever)\n",
                             rank, atomic_load(&g_wait_what), g_timeout_s);
            if (n > 0) (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
            _exit(70);
        }
    }
    return NULL;
}

static void watchdog_start(void) {
    const char *v = getenv("MEGATUNE_MPI_TIMEOUT");
    g_timeout_s = v && *v ? strtol(v, NULL, 10) : 1800;
    if (g_timeout_s <= 0) return;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, watchdog, NULL) != 0) mt_warn("could not start the MPI watchdog thread");
    pthread_attr_destroy(&a);
}

static void wait_begin(const char *what) {
    atomic_store(&g_wait_what, what);
    atomic_store(&g_wait_since_ms, now_ms());
}
static void wait_end(void) { atomic_store(&g_wait_since_ms, 0); }

// MPI counts are int: long buffers go in chunks.
#define MT_MPI_CHUNK ((size_t)1 << 30)

static mt_status mpi_check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return MT_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return mt_fail(MT_ERR_IO, "MPI %s failed: %s", what, msg);
}

static mt_status mpi_all_reduce(mt_comm *c, float *buf, size_t n, mt_reduce_op op) {
    MPI_Op mop = op == MT_REDUCE_MAX ? MPI_MAX : MPI_SUM;
    for (size_t off = 0; off < n; off += MT_MPI_CHUNK) {
        size_t k = n - off < MT_MPI_CHUNK ? n - off : MT_MPI_CHUNK;
        wait_begin("Allreduce");
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, mop, comm_of(c));
        wait_end();
        MT_TRY(mpi_check(rc, "Allreduce"));
    }
    return MT_OK;
}

static mt_status mpi_all_gather(mt_comm *c, const float *in, float *out, size_t n) {
    if (n > (size_t)INT_MAX)
        return mt_fail(MT_ERR_UNSUPPORTED, "MPI Allgather of %zu floats per rank exceeds INT_MAX", n);
    // `in` may alias this rank's slot of `out` (or be `out` itself, as the single backend allows).
    int rc;
    wait_begin("Allgather");
    if (in == out || in == out + (size_t)c->rank * n)
        rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, (int)n, MPI_FLOAT, comm_of(c));
    else
        rc = MPI_Allgather(in, (int)n, MPI_FLOAT, out, (int)n, MPI_FLOAT, comm_of(c));
    wait_end();
    return mpi_check(rc, "Allgather");
}

static mt_status mpi_broadcast(mt_comm *c, void *buf, size_t bytes, int root) {
    char *p = buf;
    for (size_t off = 0; off < bytes; off += MT_MPI_CHUNK) {
        size_t k = bytes - off < MT_MPI_CHUNK ? bytes - off : MT_MPI_CHUNK;
        wait_begin("Bcast");
        int rc = MPI_Bcast(p + off, (int)k, MPI_BYTE, root, comm_of(c));
        wait_end();
        MT_TRY(mpi_check(rc, "Bcast"));
    }
    return MT_OK;
}

static mt_status mpi_barrier(mt_comm *c) {
    wait_begin("Barrier");
    int rc = MPI_Barrier(comm_of(c));
    wait_end();
    return mpi_check(rc, "Barrier");
}

static void mpi_free(mt_comm *c) {
    if (!c) return;
    mpi_impl *im = c->impl;
    int fin = 0;
    MPI_Finalized(&fin);
    if (im && !fin && im->comm != MPI_COMM_NULL) MPI_Comm_free(&im->comm);
    free(im);
    free(c);
}

static const mt_comm_ops mpi_ops = {
    .name = "mpi",
    .all_reduce = mpi_all_reduce,
    .all_gather = mpi_all_gather,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .free = mpi_free,
};

// Takes ownership of `comm`.
static mt_comm *wrap(MPI_Comm comm) {
    mt_comm *c = mt_calloc(1, sizeof *c);
    mpi_impl *im = mt_calloc(1, sizeof *im);
    if (!c || !im) {
        free(c);
        free(im);
        MPI_Comm_free(&comm);
        return NULL;
    }
    im->comm = comm;
    c->ops = &mpi_ops;
    c->impl = im;
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->size);
    return c;
}

mt_comm *mt_comm_mpi_dup(const void *mpi_comm) {
    int init = 0;
    MPI_Initialized(&init);
    if (!init || !mpi_comm) return NULL;
    MPI_Comm d;
    if (MPI_Comm_dup(*(const MPI_Comm *)mpi_comm, &d) != MPI_SUCCESS) return NULL;
    return wrap(d);
}

static void finalize_at_exit(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

void mt_parallel_abort(int code) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin) return;
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

static mt_status ensure_mpi(void) {
    int init = 0;
    MPI_Initialized(&init);
    if (init) return MT_OK;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return mt_fail(MT_ERR_IO, "MPI_Init_thread failed: check the mpirun installation (mpirun --version)");
    // OpenMP threads never call MPI; only the main thread does (FUNNELED suffices; the watchdog
    // thread never calls MPI either).
    atexit(finalize_at_exit);
    watchdog_start();
    return MT_OK;
}

static mt_status mpi_groups(mt_parallel *p) {
    MPI_Comm w, t, d;
    MT_TRY(mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &w), "Comm_dup"));
    p->world = wrap(w);
    // Megatron: tensor groups [g*tp, (g+1)*tp), data groups {tp_rank + k*tp}.
    MT_TRY(mpi_check(MPI_Comm_split(MPI_COMM_WORLD, p->dp_rank, p->tp_rank, &t), "Comm_split (tensor group)"));
    p->tp = wrap(t);
    MT_TRY(mpi_check(MPI_Comm_split(MPI_COMM_WORLD, p->tp_rank, p->dp_rank, &d), "Comm_split (data group)"));
    p->dp = wrap(d);
    if (!p->world || !p->tp || !p->dp) return MT_ERR_NOMEM;
    p->local_rank = env_local_rank();
    if (p->local_rank < 0) {
        MPI_Comm node;
        MT_TRY(mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
                         "Comm_split_type"));
        MPI_Comm_rank(node, &p->local_rank);
        MPI_Comm_free(&node);
    }
    return MT_OK;
}

#else

void mt_parallel_abort(int code) { (void)code; }
mt_comm *mt_comm_mpi_dup(const void *mpi_comm) {
    (void)mpi_comm;
    return NULL;
}

#endif

void mt_parallel_free(mt_parallel *p) {
    if (!p) return;
    mt_comm_free(p->world);
    mt_comm_free(p->tp);
    mt_comm_free(p->dp);
    free(p);
}

mt_status mt_parallel_create(int tp_size, mt_parallel **out) {
    *out = NULL;
    if (tp_size < 1) return mt_fail(MT_ERR_INVALID, "tensor_model_parallel_size must be >= 1, got %d", tp_size);
    int launched = mt_parallel_launched_size();
    mt_parallel *p = mt_calloc(1, sizeof *p);
    if (!p) return MT_ERR_NOMEM;
    mt_status st = MT_OK;
    p->world_size = 1;
    p->local_rank = 0;
    if (launched > 1) {
#if defined(MEGATUNE_HAVE_MPI) && MEGATUNE_HAVE_MPI
        st = ensure_mpi();
        if (st != MT_OK) goto fail;
        MPI_Comm_rank(MPI_COMM_WORLD, &p->world_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &p->world_size);
        p->uses_mpi = 1;
#else
        st = mt_fail(MT_ERR_UNSUPPORTED, "launched as %d processes, but this build has no MPI: install an MPI "
                     "(libopenmpi-dev) and rebuild (cmake -DMEGATUNE_MPI=ON), or run one process", launched);
        goto fail;
#endif
    }
    if (p->world_size % tp_size != 0) {
        st = mt_fail(MT_ERR_INVALID, "model.tensor_model_parallel_size=%d does not divide the %d processes launched: "
                     "use mpirun -np N with N a multiple of %d (N = tensor x data parallel size)", tp_size,
                     p->world_size, tp_size);
        goto fail;
    }
    p->tp_size = tp_size;
    p->dp_size = p->world_size / tp_size;
    p->tp_rank = p->world_rank % tp_size;
    p->dp_rank = p->world_rank / tp_size;
    if (p->world_size == 1) {
        st = single_groups(p);
    } else {
#if defined(MEGATUNE_HAVE_MPI) && MEGATUNE_HAVE_MPI
        st = mpi_groups(p);
#endif
    }
    if (st != MT_OK) goto fail;
    *out = p;
    return MT_OK;
fail:
    mt_parallel_free(p);
    return st;
}

void mt_parallel_library(char *buf, size_t n) {
    if (n == 0) return;
#if defined(MEGATUNE_HAVE_MPI) && MEGATUNE_HAVE_MPI
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len); // one of the calls allowed before MPI_Init
    v[len < MPI_MAX_LIBRARY_VERSION_STRING ? len : MPI_MAX_LIBRARY_VERSION_STRING - 1] = '\0';
    v[strcspn(v, "\n")] = '\0';
    snprintf(buf, n, "%s", v);
#else
    snprintf(buf, n, "not built (install libopenmpi-dev and rebuild for tensor and data parallelism)");
#endif
}
