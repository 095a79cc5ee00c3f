#include "parallel/comm.h"

#include <stdlib.h>
#include <string.h>

static mt_status single_all_reduce(mt_comm *c, float *buf, size_t n, mt_reduce_op op) {
    (void)c; (void)buf; (void)n; (void)op;
    return MT_OK;
}
static mt_status single_all_gather(mt_comm *c, const float *in, float *out, size_t n) {
    (void)c;
    if (in != out) memmove(out, in, n * sizeof *in);
    return MT_OK;
}
static mt_status single_broadcast(mt_comm *c, void *buf, size_t bytes, int root) {
    (void)c; (void)buf; (void)bytes; (void)root;
    return MT_OK;
}
static mt_status single_barrier(mt_comm *c) { (void)c; return MT_OK; }
static void single_free(mt_comm *c) { free(c); }

static const mt_comm_ops single_ops = {
    .name = "single",
    .all_reduce = single_all_reduce,
    .all_gather = single_all_gather,
    .broadcast = single_broadcast,
    .barrier = single_barrier,
    .free = single_free,
};

mt_comm *mt_comm_single(void) {
    mt_comm *c = mt_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ops = &single_ops;
    c->rank = 0;
    c->size = 1;
    return c;
}

void mt_comm_free(mt_comm *c) {
    if (c && c->ops && c->ops->free) c->ops->free(c);
}
