#include "kernels/ref/ref.h"

#include "core/rng.h"

static float keep_of(const mt_dropout_site *d, uint64_t idx) {
    if (!d || d->p <= 0.0f) return 1.0f;
    return mt_rng_uniform(d->seed, d->step, d->stream, idx) >= d->p ? 1.0f / (1.0f - d->p) : 0.0f;
}

// inp (n) -> out (n)
void mt_ref_dropout_fwd(float *out, const float *inp, size_t n, uint64_t index0, const mt_dropout_site *d) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * keep_of(d, index0 + i);
}

// res (n), inp (n), bias (C) -> out (n) = res + dropout(inp + bias)
void mt_ref_bias_dropout_add_fwd(float *out, const float *res, const float *inp, const float *bias, size_t n, int C,
                                 const mt_dropout_site *d) {
    for (size_t i = 0; i < n; i++) out[i] = res[i] + (inp[i] + (bias ? bias[i % (size_t)C] : 0.0f)) * keep_of(d, i);
}

// dout (n) -> dinp (n)
void mt_ref_dropout_bwd(float *dinp, const float *dout, size_t n, uint64_t index0, const mt_dropout_site *d) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * keep_of(d, index0 + i);
}
