// Philox4x32-10 known-answer vectors (Random123's kat_vectors) and the dropout masks built on it:
// keep rate, 1/(1-p) scaling, determinism, independence of thread count, and that backward
// applies the same mask as forward.
#include <omp.h>

#include "core/rng.h"
#include "kernels/kernels.h"
#include "test_util.h"

static void kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t e0, uint32_t e1,
                uint32_t e2, uint32_t e3) {
    uint32_t ctr[4] = {c0, c1, c2, c3}, key[2] = {k0, k1}, out[4];
    mt_philox4x32(ctr, key, out);
    CHECK_MSG(out[0] == e0 && out[1] == e1 && out[2] == e2 && out[3] == e3, "philox got %08x %08x %08x %08x", out[0],
              out[1], out[2], out[3]);
}

int main(void) {
    kat(0, 0, 0, 0, 0, 0, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
    kat(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu,
        0xa20bc7c6u, 0x6d5451fdu);
    kat(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu,
        0x5001e420u, 0x24126ea1u);

    // uniform / normal moments
    double s = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float z = mt_rng_normal(5, 3, (uint64_t)i);
        s += z;
        s2 += (double)z * z;
    }
    CHECK_MSG(fabs(s / n) < 0.01 && fabs(s2 / n - 1.0) < 0.02, "normal mean %g var %g", s / n, s2 / n);
    // the bulk fill draws the same numbers as the one-element function, from any start
    float fill[37];
    mt_rng_normal_fill(fill, 5, 3, 11, 37);
    int same = 1;
    for (int i = 0; i < 37; i++) same &= fill[i] == mt_rng_normal(5, 3, 11 + (uint64_t)i);
    CHECK(same);

    // dropout: statistics, scaling, determinism, thread independence, fwd/bwd agreement
    const size_t N = 1 << 18;
    float *x = malloc(N * sizeof *x), *y1 = malloc(N * sizeof *x), *y2 = malloc(N * sizeof *x),
          *g = malloc(N * sizeof *x);
    for (size_t i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
    const float p = 0.1f;
    mt_dropout_site d = {p, 11, 3, 17};
    const mt_kernels *tabs[2] = {mt_kernels_ref(), mt_kernels_opt()};
    omp_set_num_threads(1);
    tabs[0]->dropout_fwd(y1, x, N, 100, &d);
    omp_set_num_threads(2);
    tabs[1]->dropout_fwd(y2, x, N, 100, &d);
    size_t zeros = 0, bad_scale = 0, differ = 0;
    for (size_t i = 0; i < N; i++) {
        if (y1[i] == 0.0f) zeros++;
        else if (fabsf(y1[i] - x[i] / (1.0f - p)) > 1e-5f * y1[i]) bad_scale++;
        if (y1[i] != y2[i]) differ++;
    }
    double rate = (double)zeros / N;
    fprintf(stderr, "dropout p=%.2f: zero fraction %.4f\n", p, rate);
    CHECK(fabs(rate - p) < 0.005);
    CHECK(bad_scale == 0);
    CHECK_MSG(differ == 0, "ref (1 thread) and opt (2 threads) masks differ in %zu places", differ);
    // same mask in backward: d/dx of sum(dropout(x)) is the mask itself
    for (size_t i = 0; i < N; i++) g[i] = 1.0f;
    tabs[1]->dropout_bwd(g, g, N, 100, &d);
    size_t mismatch = 0;
    for (size_t i = 0; i < N; i++)
        if ((g[i] == 0.0f) != (y1[i] == 0.0f)) mismatch++;
    CHECK(mismatch == 0);
    // another step or stream gives another mask; the same arguments the same one
    mt_dropout_site d2 = d;
    d2.step = 4;
    tabs[1]->dropout_fwd(y2, x, N, 100, &d2);
    differ = 0;
    for (size_t i = 0; i < N; i++) differ += (y1[i] == 0.0f) != (y2[i] == 0.0f);
    CHECK(differ > N / 20);
    tabs[1]->dropout_fwd(y2, x, N, 100, &d);
    CHECK(memcmp(y1, y2, N * sizeof *y1) == 0);
    // bias-dropout-add uses the same element indices (index0 = 0)
    float *res = calloc(N, sizeof *res);
    tabs[1]->bias_dropout_add_fwd(y2, res, x, NULL, N, 64, &d);
    tabs[0]->dropout_fwd(y1, x, N, 0, &d);
    CHECK(memcmp(y1, y2, N * sizeof *y1) == 0);
    free(res);
    free(x); free(y1); free(y2); free(g);
    TEST_DONE();
}
