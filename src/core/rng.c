#include "core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void mt_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

float mt_rng_uniform(uint64_t seed, uint64_t step, uint32_t stream, uint64_t index) {
    uint32_t w[4];
    mt_rng_block(seed, step, stream, index >> 2, w);
    return mt_rng_u24(w[index & 3]);
}

float mt_rng_normal(uint64_t seed, uint32_t stream, uint64_t index) {
    uint32_t w[4];
    // Step slot 0xFFFFFFFF keeps initialisation streams apart from dropout streams at step 0.
    mt_rng_block(seed, 0xFFFFFFFFu, stream, index >> 1, w);
    // 32-bit uniforms in (0,1] and [0,1) from two words each.
    double u1 = ((double)w[0] + (double)w[1] * 4294967296.0 + 1.0) / 18446744073709551616.0;
    double u2 = ((double)w[2] + (double)w[3] * 4294967296.0) / 18446744073709551616.0;
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925 * u2;
    return (float)((index & 1) ? r * sin(a) : r * cos(a));
}

void mt_dropout_scale(float *scale, uint64_t seed, uint64_t step, uint32_t stream, uint64_t index0,
                      uint64_t n, float p) {
    const float keep = 1.0f / (1.0f - p);
    uint64_t i = 0;
    while (i < n) {
        uint64_t idx = index0 + i;
        uint32_t w[4];
        mt_rng_block(seed, step, stream, idx >> 2, w);
        for (unsigned j = (unsigned)(idx & 3); j < 4 && i < n; j++, i++)
            scale[i] = mt_rng_u24(w[j]) >= p ? keep : 0.0f;
    }
}
