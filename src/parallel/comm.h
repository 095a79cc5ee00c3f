// The collective interface. The model calls it at exactly Megatron's f/g points; the trainer
// calls it for the data-parallel gradient all-reduce. A communicator is a small table of
// function pointers (ggml-backend style): comm_single.c makes every call a no-op for one
// process; comm_mpi.c (a later issue) fills the same table with MPI.
#ifndef MT_PARALLEL_COMM_H
#define MT_PARALLEL_COMM_H

#include <stddef.h>
#include "core/status.h"

typedef enum { MT_REDUCE_SUM = 0, MT_REDUCE_MAX = 1 } mt_reduce_op;

typedef struct mt_comm mt_comm;

typedef struct {
    const char *name;
    // In-place all-reduce of `n` floats over the group.
    mt_status (*all_reduce)(mt_comm *c, float *buf, size_t n, mt_reduce_op op);
    // All-gather: each rank contributes `n` floats; `out` receives size*n floats in rank order.
    mt_status (*all_gather)(mt_comm *c, const float *in, float *out, size_t n);
    // Broadcast `bytes` from `root`.
    mt_status (*broadcast)(mt_comm *c, void *buf, size_t bytes, int root);
    mt_status (*barrier)(mt_comm *c);
    void (*free)(mt_comm *c);
} mt_comm_ops;

struct mt_comm {
    const mt_comm_ops *ops;
    int rank;   // rank inside this group
    int size;   // group size
    void *impl; // backend state
};

// A group of one: all collectives are identities.
mt_comm *mt_comm_single(void);

static inline mt_status mt_all_reduce(mt_comm *c, float *buf, size_t n, mt_reduce_op op) {
    return (c && c->size > 1) ? c->ops->all_reduce(c, buf, n, op) : MT_OK;
}
static inline mt_status mt_all_gather(mt_comm *c, const float *in, float *out, size_t n) {
    if (c && c->size > 1) return c->ops->all_gather(c, in, out, n);
    for (size_t i = 0; i < n && in != out; i++) out[i] = in[i];
    return MT_OK;
}
static inline mt_status mt_broadcast(mt_comm *c, void *buf, size_t bytes, int root) {
    return (c && c->size > 1) ? c->ops->broadcast(c, buf, bytes, root) : MT_OK;
}
static inline mt_status mt_barrier(mt_comm *c) {
    return (c && c->size > 1) ? c->ops->barrier(c) : MT_OK;
}
void mt_comm_free(mt_comm *c);

// Collective (agree.c): every rank passes its own status; all get MT_OK only when every rank
// passed MT_OK, otherwise every rank fails with the lowest failing rank's code and message,
// prefixed "rank K: ", so that a failure one rank sees stops all of them with its cause.
mt_status mt_comm_agree(mt_comm *c, mt_status mine) MT_WARN_UNUSED;
// Collective: fails on every rank (agreed as above) when `text` differs from global rank 0's,
// naming `what` and the first differing line on both ranks, then `fix`.
mt_status mt_comm_same_text(mt_comm *c, const char *text, size_t len, const char *what,
                            const char *fix) MT_WARN_UNUSED;

// Megatron's tensor-parallel region operators (mpu/mappings.py):
//   f = copy_to_tensor_model_parallel_region:    forward identity, backward all-reduce
//   g = reduce_from_tensor_model_parallel_region: forward all-reduce, backward identity
static inline mt_status mt_tp_f_forward(mt_comm *tp, float *x, size_t n) { (void)tp; (void)x; (void)n; return MT_OK; }
static inline mt_status mt_tp_f_backward(mt_comm *tp, float *dx, size_t n) { return mt_all_reduce(tp, dx, n, MT_REDUCE_SUM); }
static inline mt_status mt_tp_g_forward(mt_comm *tp, float *y, size_t n) { return mt_all_reduce(tp, y, n, MT_REDUCE_SUM); }
static inline mt_status mt_tp_g_backward(mt_comm *tp, float *dy, size_t n) { (void)tp; (void)dy; (void)n; return MT_OK; }

#endif
