// A tensor-parallel group of threads for tests: two (or more) threads of one process share this
// communicator, so TP=N runs of the model can be checked against TP=1 without MPI. Each rank
// publishes a pointer to its buffer, all wait, then each reads the others' data directly.
#ifndef MT_TEST_THREAD_COMM_H
#define MT_TEST_THREAD_COMM_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/comm.h"

#define THREAD_COMM_MAX 8

typedef struct {
    pthread_barrier_t bar;
    int size;
    const void *ptr[THREAD_COMM_MAX];
} thread_comm_shared;

static mt_status thread_comm_all_reduce(mt_comm *c, float *buf, size_t n, mt_reduce_op op) {
    thread_comm_shared *s = c->impl;
    s->ptr[c->rank] = buf;
    pthread_barrier_wait(&s->bar);
    float *tmp = malloc(n * sizeof *tmp);
    if (!tmp) abort();
    memcpy(tmp, s->ptr[0], n * sizeof *tmp);
    for (int r = 1; r < s->size; r++) { // rank order, so every rank gets the same bits
        const float *x = s->ptr[r];
        for (size_t i = 0; i < n; i++) tmp[i] = op == MT_REDUCE_SUM ? tmp[i] + x[i] : (tmp[i] > x[i] ? tmp[i] : x[i]);
    }
    pthread_barrier_wait(&s->bar); // everyone has read every buffer before anyone overwrites its own
    memcpy(buf, tmp, n * sizeof *tmp);
    free(tmp);
    pthread_barrier_wait(&s->bar);
    return MT_OK;
}
static mt_status thread_comm_all_gather(mt_comm *c, const float *in, float *out, size_t n) {
    thread_comm_shared *s = c->impl;
    s->ptr[c->rank] = in;
    pthread_barrier_wait(&s->bar);
    float *tmp = malloc((size_t)s->size * n * sizeof *tmp); // `out` may alias `in`
    if (!tmp) abort();
    for (int r = 0; r < s->size; r++) memcpy(tmp + (size_t)r * n, s->ptr[r], n * sizeof *tmp);
    pthread_barrier_wait(&s->bar);
    memcpy(out, tmp, (size_t)s->size * n * sizeof *tmp);
    free(tmp);
    pthread_barrier_wait(&s->bar);
    return MT_OK;
}
static mt_status thread_comm_broadcast(mt_comm *c, void *buf, size_t bytes, int root) {
    thread_comm_shared *s = c->impl;
    s->ptr[c->rank] = buf;
    pthread_barrier_wait(&s->bar);
    if (c->rank != root) memcpy(buf, s->ptr[root], bytes);
    pthread_barrier_wait(&s->bar);
    return MT_OK;
}
static mt_status thread_comm_barrier(mt_comm *c) {
    pthread_barrier_wait(&((thread_comm_shared *)c->impl)->bar);
    return MT_OK;
}
static void thread_comm_free(mt_comm *c) { (void)c; }
static const mt_comm_ops thread_comm_ops = {"test-threads", thread_comm_all_reduce, thread_comm_all_gather,
                                            thread_comm_broadcast, thread_comm_barrier, thread_comm_free};

// Sets up `size` communicators (one per thread) over `shared`; destroy with thread_comm_destroy.
static inline void thread_comm_init(thread_comm_shared *shared, mt_comm *comms, int size) {
    memset(shared, 0, sizeof *shared);
    shared->size = size;
    pthread_barrier_init(&shared->bar, NULL, (unsigned)size);
    for (int r = 0; r < size; r++) comms[r] = (mt_comm){&thread_comm_ops, r, size, shared};
}
static inline void thread_comm_destroy(thread_comm_shared *shared) { pthread_barrier_destroy(&shared->bar); }

#endif
