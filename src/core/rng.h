// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). Every draw is a pure function
// of (seed, step, stream, index): dropout masks and initial weights are reproducible, resumable
// at any step, and the same whatever the thread count or the order elements are visited in.
#ifndef MT_CORE_RNG_H
#define MT_CORE_RNG_H

#include <stdint.h>

// One Philox4x32-10 block: 128-bit counter `ctr`, 64-bit key `key` -> four 32-bit words.
void mt_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

// Four uniform words for (seed, step, stream, block): block is index/4 of the element stream.
static inline void mt_rng_block(uint64_t seed, uint64_t step, uint32_t stream, uint64_t block, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), stream, (uint32_t)step};
    // The high half of step is folded into the key so 2^32+ steps still get fresh numbers.
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ (uint32_t)(step >> 32) * 0x9E3779B9u};
    mt_philox4x32(ctr, key, out);
}

// Uniform in [0, 1) with 24 random bits, for element `index` of a stream.
float mt_rng_uniform(uint64_t seed, uint64_t step, uint32_t stream, uint64_t index);

// Standard normal for element `index` (Box-Muller on one Philox block; even/odd indices share it).
float mt_rng_normal(uint64_t seed, uint32_t stream, uint64_t index);

// out[i] = mt_rng_normal(seed, stream, index0 + i) for i < n, drawing each Box-Muller pair once.
void mt_rng_normal_fill(float *out, uint64_t seed, uint32_t stream, uint64_t index0, uint64_t n);

// Dropout keep decision for element `index`: kept with probability 1-p.
static inline float mt_rng_u24(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

// Fills keep[i] (0 or 1/(1-p)) for elements [index0, index0+n) of a stream. Dropout sites all use
// this one function so the forward and backward of a site see the same mask.
void mt_dropout_scale(float *scale, uint64_t seed, uint64_t step, uint32_t stream, uint64_t index0,
                      uint64_t n, float p);

#endif
