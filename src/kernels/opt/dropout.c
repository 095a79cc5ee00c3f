#include "kernels/opt/opt.h"

#include "core/rng.h"

// Blocks of 4 elements share one Philox call; threads take whole blocks (index0 aligned per chunk).
#define DROP_CHUNK 4096

// inp (n) -> out (n)
void mt_opt_dropout_fwd(float *out, const float *inp, size_t n, uint64_t index0, const mt_dropout_site *d) {
    if (!d || d->p <= 0.0f) {
        if (out != inp)
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) out[i] = inp[i];
        return;
    }
    size_t nchunks = (n + DROP_CHUNK - 1) / DROP_CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t ch = 0; ch < nchunks; ch++) {
        float keep[DROP_CHUNK];
        size_t lo = ch * DROP_CHUNK, m = n - lo < DROP_CHUNK ? n - lo : DROP_CHUNK;
        mt_dropout_scale(keep, d->seed, d->step, d->stream, index0 + lo, m, d->p);
        for (size_t i = 0; i < m; i++) out[lo + i] = inp[lo + i] * keep[i];
    }
}

// out (n) = res + dropout(inp + bias[i % C])
void mt_opt_bias_dropout_add_fwd(float *out, const float *res, const float *inp, const float *bias, size_t n, int C,
                                 const mt_dropout_site *d) {
    size_t nchunks = (n + DROP_CHUNK - 1) / DROP_CHUNK;
    int drop = d && d->p > 0.0f;
#pragma omp parallel for schedule(static)
    for (size_t ch = 0; ch < nchunks; ch++) {
        float keep[DROP_CHUNK];
        size_t lo = ch * DROP_CHUNK, m = n - lo < DROP_CHUNK ? n - lo : DROP_CHUNK;
        if (drop) mt_dropout_scale(keep, d->seed, d->step, d->stream, lo, m, d->p);
        for (size_t i = 0; i < m; i++) {
            size_t k = lo + i;
            float v = inp[k] + (bias ? bias[k % (size_t)C] : 0.0f);
            out[k] = res[k] + (drop ? v * keep[i] : v);
        }
    }
}

// dout (n) -> dinp (n)
void mt_opt_dropout_bwd(float *dinp, const float *dout, size_t n, uint64_t index0, const mt_dropout_site *d) {
    mt_opt_dropout_fwd(dinp, dout, n, index0, d);
}
