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

// Both normals of Box-Muller pair `pair` (elements 2*pair and 2*pair+1 of the stream).
static void normal_pair(uint64_t seed, uint32_t stream, uint64_t pair, float z[2]) {
    uint32_t w[4];
    // Step slot 0xFFFFFFFF keeps initialisation streams apart from dropout streams at step 0.
    mt_rng_block(seed, 0xFFFFFFFFu, stream, pair, w);
    // 64-bit uniforms in (0,1] and [0,1) from two words each.
    double u1 = ((double)w[0] + (double)w[1] * 4294967296.0 + 1.0) / 18446744073709551616.0;
    double u2 = ((double)w[2] + (double)w[3] * 4294967296.0) / 18446744073709551616.0;
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925 * u2;
    z[0] = (float)(r * cos(a));
    z[1] = (float)(r * sin(a));
}

float mt_rng_normal(uint64_t seed, uint32_t stream, uint64_t index) {
    float z[2];
    normal_pair(seed, stream, index >> 1, z);
    return z[index & 1];
}

void mt_rng_normal_fill(float *out, uint64_t seed, uint32_t stream, uint64_t index0, uint64_t n) {
    uint64_t i = 0;
    while (i < n) {
        uint64_t idx = index0 + i;
        float z[2];
        normal_pair(seed, stream, idx >> 1, z);
        for (unsigned j = (unsigned)(idx & 1); j < 2 && i < n; j++, i++) out[i] = z[j];
    }
}

// 16 Philox blocks at once, block i with counter (block0 + i, stream, step): AVX2 when the
// build has it (8 lanes of 32-bit words per register), the scalar function otherwise.
#define PHILOX_LANES 16
#if defined(__AVX2__)
#include <immintrin.h>
// lo/hi 32-bit halves of x * m for 8 unsigned 32-bit lanes
static inline void mulhilo8(__m256i x, __m256i m, __m256i *lo, __m256i *hi) {
    __m256i even = _mm256_mul_epu32(x, m);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
static void philox_lanes(uint64_t seed, uint64_t step, uint32_t stream, uint64_t block0,
                         uint32_t out[4][PHILOX_LANES]) {
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    for (int half = 0; half < PHILOX_LANES / 8; half++) {
        uint32_t lo[8], hi[8];
        for (int i = 0; i < 8; i++) {
            uint64_t b = block0 + (uint64_t)(half * 8 + i);
            lo[i] = (uint32_t)b;
            hi[i] = (uint32_t)(b >> 32);
        }
        __m256i c0 = _mm256_loadu_si256((const __m256i *)lo), c1 = _mm256_loadu_si256((const __m256i *)hi);
        __m256i c2 = _mm256_set1_epi32((int)stream), c3 = _mm256_set1_epi32((int)(uint32_t)step);
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32) ^ (uint32_t)(step >> 32) * 0x9E3779B9u;
        for (int r = 0; r < 10; r++) {
            __m256i lo0, hi0, lo1, hi1;
            mulhilo8(c0, m0, &lo0, &hi0);
            mulhilo8(c2, m1, &lo1, &hi1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
            c1 = lo1;
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
            c3 = lo0;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        _mm256_storeu_si256((__m256i *)(out[0] + half * 8), c0);
        _mm256_storeu_si256((__m256i *)(out[1] + half * 8), c1);
        _mm256_storeu_si256((__m256i *)(out[2] + half * 8), c2);
        _mm256_storeu_si256((__m256i *)(out[3] + half * 8), c3);
    }
}
#else
static void philox_lanes(uint64_t seed, uint64_t step, uint32_t stream, uint64_t block0,
                         uint32_t out[4][PHILOX_LANES]) {
    for (int i = 0; i < PHILOX_LANES; i++) {
        uint32_t w[4];
        mt_rng_block(seed, step, stream, block0 + (uint64_t)i, w);
        for (int j = 0; j < 4; j++) out[j][i] = w[j];
    }
}
#endif

void mt_dropout_scale(float *scale, uint64_t seed, uint64_t step, uint32_t stream, uint64_t index0,
                      uint64_t n, float p) {
    const float keep = 1.0f / (1.0f - p);
    uint64_t i = 0;
    // unaligned head, one block at a time
    while (i < n && ((index0 + i) & 3)) {
        uint64_t idx = index0 + i;
        uint32_t w[4];
        mt_rng_block(seed, step, stream, idx >> 2, w);
        for (unsigned j = (unsigned)(idx & 3); j < 4 && i < n; j++, i++)
            scale[i] = mt_rng_u24(w[j]) >= p ? keep : 0.0f;
    }
    // whole groups of 16 blocks (64 elements)
    while (n - i >= 4 * PHILOX_LANES) {
        uint32_t w[4][PHILOX_LANES];
        philox_lanes(seed, step, stream, (index0 + i) >> 2, w);
        for (int b = 0; b < PHILOX_LANES; b++)
            for (int j = 0; j < 4; j++) scale[i + 4 * (uint64_t)b + j] = mt_rng_u24(w[j][b]) >= p ? keep : 0.0f;
        i += 4 * PHILOX_LANES;
    }
    while (i < n) {
        uint64_t idx = index0 + i;
        uint32_t w[4];
        mt_rng_block(seed, step, stream, idx >> 2, w);
        for (unsigned j = 0; j < 4 && i < n; j++, i++) scale[i] = mt_rng_u24(w[j]) >= p ? keep : 0.0f;
    }
}
