#include "kernels/opt/opt.h"

#include <math.h>

#include "kernels/bf16.h"

// One row x (C) -> o (C), or o16 in bf16 (the same fp32 values, rounded) when o16 is given
void mt_opt_layernorm_row(float *o, uint16_t *o16, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int C, float eps) {
    float m = mt_opt_sum(x, C) / C;
    float v = mt_opt_sum_sqdev(x, m, C) / C;
    float s = 1.0f / sqrtf(v + eps);
    if (o16)
        for (int c = 0; c < C; c++) o16[c] = mt_bf16_from_f32(((x[c] - m) * s) * w[c] + b[c]);
    else
        for (int c = 0; c < C; c++) o[c] = ((x[c] - m) * s) * w[c] + b[c];
    *mean = m;
    *rstd = s;
}

// inp (N,C) -> out (N,C), mean (N), rstd (N)
void mt_opt_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        mt_opt_layernorm_row(out + (size_t)i * C, NULL, mean + i, rstd + i, inp + (size_t)i * C, w, b, C, eps);
}

// dout (N,C) -> dinp (N,C) +=, dw (C) +=, db (C) +=
void mt_opt_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel
    {
        // rows per thread for dinp
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            const float *x = inp + (size_t)i * C, *g = dout + (size_t)i * C;
            float *dx = dinp + (size_t)i * C;
            float m = mean[i], s = rstd[i];
            // sums of g w and of g w xhat over lanes (opt.h: one running sum was latency-bound)
            float sg[MT_OPT_LANES] = {0}, sgx[MT_OPT_LANES] = {0};
            int c = 0;
            for (; c + MT_OPT_LANES <= C; c += MT_OPT_LANES)
                for (int j = 0; j < MT_OPT_LANES; j++) {
                    float gw = g[c + j] * w[c + j];
                    sg[j] += gw;
                    sgx[j] += gw * ((x[c + j] - m) * s);
                }
            for (; c < C; c++) {
                float gw = g[c] * w[c];
                sg[c % MT_OPT_LANES] += gw;
                sgx[c % MT_OPT_LANES] += gw * ((x[c] - m) * s);
            }
            float mg = mt_opt_fold_sum(sg) / C, mgx = mt_opt_fold_sum(sgx) / C;
            for (int c = 0; c < C; c++) dx[c] += s * (g[c] * w[c] - mg - ((x[c] - m) * s) * mgx);
        }
        // columns per thread for dw/db, so the reduction over rows needs no locks
        int lo, hi;
        mt_opt_split(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int i = 0; i < N; i++) {
            const float *x = inp + (size_t)i * C, *g = dout + (size_t)i * C;
            float m = mean[i], s = rstd[i];
            for (int c = lo; c < hi; c++) {
                dw[c] += g[c] * ((x[c] - m) * s);
                db[c] += g[c];
            }
        }
    }
}
