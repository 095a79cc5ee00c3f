// The MPI communicator and Megatron's process groups. Run plainly (ctest), it checks the
// one-process path: no MPI, groups of one, identities, and the error for TP > world size. Run
// under mpirun (tests/e2e/test_mpi_comm.sh, with MT_TEST_TP = tensor-parallel size), it checks
// every collective on the world, tensor and data groups against values computed by hand.
#include <stdint.h>

#include "parallel/parallel.h"
#include "test_util.h"

static void one_process(void) {
    CHECK(mt_parallel_launched_size() == 1);
    mt_parallel *p = NULL;
    CHECK_OK(mt_parallel_create(1, &p));
    if (!p) return;
    CHECK(p->world_size == 1 && p->tp_size == 1 && p->dp_size == 1 && !p->uses_mpi);
    CHECK(p->world_rank == 0 && p->tp_rank == 0 && p->dp_rank == 0 && p->local_rank == 0);
    float v[3] = {1, 2, 3}, g[3];
    CHECK_OK(mt_all_reduce(p->world, v, 3, MT_REDUCE_SUM));
    CHECK_OK(mt_all_gather(p->tp, v, g, 3));
    CHECK(v[0] == 1 && v[2] == 3 && g[1] == 2);
    CHECK_OK(mt_barrier(p->dp));
    mt_parallel_free(p);
    p = NULL;
    CHECK(mt_parallel_create(2, &p) != MT_OK && !p);
    CHECK(strstr(mt_last_error(), "does not divide the 1 processes") != NULL);
    CHECK(mt_parallel_create(0, &p) != MT_OK);
}

static void under_mpi(int tp) {
    mt_parallel *p = NULL;
    CHECK_OK(mt_parallel_create(tp, &p));
    if (!p) return;
    const int W = p->world_size, g = p->world_rank;
    CHECK(p->uses_mpi && W > 1 && W == mt_parallel_launched_size());
    // Megatron's layout: rank = dp_rank * tp + tp_rank
    CHECK(p->tp_size == tp && p->dp_size == W / tp);
    CHECK(p->tp_rank == g % tp && p->dp_rank == g / tp);
    CHECK(p->world->size == W && p->world->rank == g);
    CHECK(p->tp->size == tp && p->tp->rank == p->tp_rank);
    CHECK(p->dp->size == W / tp && p->dp->rank == p->dp_rank);
    // all-reduce SUM / MAX over the world
    float v[2] = {(float)g, 1.0f};
    CHECK_OK(mt_all_reduce(p->world, v, 2, MT_REDUCE_SUM));
    CHECK_MSG(v[0] == (float)(W * (W - 1) / 2) && v[1] == (float)W, "sum %g %g", v[0], v[1]);
    float mx = (float)(g * 7 % W);
    CHECK_OK(mt_all_reduce(p->world, &mx, 1, MT_REDUCE_MAX));
    CHECK(mx == (float)(W - 1) || W % 7 == 0);
    // all-gather in each group: the members, in group-rank order
    float me = (float)g, *got = calloc((size_t)W, sizeof *got);
    CHECK_OK(mt_all_gather(p->tp, &me, got, 1));
    for (int i = 0; i < tp; i++) CHECK_MSG(got[i] == (float)(p->dp_rank * tp + i), "tp gather[%d] = %g", i, got[i]);
    CHECK_OK(mt_all_gather(p->dp, &me, got, 1));
    for (int i = 0; i < W / tp; i++) CHECK_MSG(got[i] == (float)(i * tp + p->tp_rank), "dp gather[%d] = %g", i, got[i]);
    // in place: this rank's contribution already sits in its slot
    for (int i = 0; i < W; i++) got[i] = -1;
    got[g] = me;
    CHECK_OK(mt_all_gather(p->world, got + g, got, 1));
    for (int i = 0; i < W; i++) CHECK(got[i] == (float)i);
    free(got);
    // a long all-reduce within the tensor group (the g/f operators' use)
    size_t n = (size_t)3 << 20;
    float *big = malloc(n * sizeof *big);
    if (big) {
        for (size_t i = 0; i < n; i++) big[i] = (float)((i % 1000) * (size_t)(p->tp_rank + 1));
        CHECK_OK(mt_all_reduce(p->tp, big, n, MT_REDUCE_SUM));
        const float f = (float)(tp * (tp + 1) / 2);
        int bad = 0;
        for (size_t i = 0; i < n && bad < 3; i++)
            if (big[i] != (float)(i % 1000) * f) { CHECK_MSG(0, "big[%zu] = %g", i, big[i]); bad++; }
        free(big);
    }
    // broadcast bytes from the last rank
    char msg[32];
    snprintf(msg, sizeof msg, "from rank %d", g);
    CHECK_OK(mt_broadcast(p->world, msg, sizeof msg, W - 1));
    char want[32];
    snprintf(want, sizeof want, "from rank %d", W - 1);
    CHECK(!strcmp(msg, want));
    CHECK_OK(mt_barrier(p->world));
    mt_parallel_free(p);
    // a second set of groups in the same process (test/predict after train) reuses MPI
    p = NULL;
    CHECK_OK(mt_parallel_create(1, &p));
    if (p) CHECK(p->dp_size == W && p->tp_size == 1);
    mt_parallel_free(p);
}

int main(void) {
    if (mt_parallel_launched_size() == 1) {
        one_process();
    } else {
        const char *t = getenv("MT_TEST_TP");
        under_mpi(t ? atoi(t) : 1);
    }
    if (mt_test_failures) fprintf(stderr, "%d check(s) failed\n", mt_test_failures);
    else printf("ok\n");
    return mt_test_failures ? 1 : 0;
}
