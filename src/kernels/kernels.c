#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

const mt_kernels *mt_kernels_default(void) {
    const char *k = getenv("MEGATUNE_KERNELS");
    if (k && strcmp(k, "ref") == 0) return mt_kernels_ref();
    // oneDNN's fp32 matmul ran the step's linear shapes about 10% faster than OpenBLAS's sgemm per
    // CPU second (Zen 4, AVX-512 and limited to AVX2; README "Speed")
    if (k && strcmp(k, "blas") == 0) return mt_kernels_opt();
    if (mt_kernels_opt_dnnl()) return mt_kernels_opt_dnnl();
    return mt_kernels_opt();
}

static _Thread_local uint64_t weights_version;
void mt_kernels_set_weights_version(uint64_t v) { weights_version = v; }
uint64_t mt_kernels_weights_version(void) { return weights_version; }

void mt_linear_act_compose(mt_linear_fwd_fn lin, void (*act)(float *, const float *, size_t, mt_kact), float *out,
                           const float *inp, const float *w, const float *b, int N, int IN, int OUT, mt_kact kind) {
    lin(out, inp, w, b, N, IN, OUT);
    if (N > 0 && OUT > 0) act(out, out, (size_t)N * OUT, kind);
}

void mt_linear_residual_compose(mt_linear_fwd_fn lin,
                                void (*bda)(float *, const float *, const float *, const float *, size_t, int,
                                            const mt_dropout_site *),
                                float *out, const float *res, const float *inp, const float *w, const float *b, int N,
                                int IN, int OUT) {
    lin(out, inp, w, NULL, N, IN, OUT);
    if (N > 0 && OUT > 0) bda(out, res, out, b, (size_t)N * OUT, OUT, NULL); // elementwise: out may be its inp
}
