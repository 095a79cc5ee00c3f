#include "kernels/ref/ref.h"

#include <math.h>

// inp (N,C) -> out (N,C), mean (N), rstd (N); biased variance as PyTorch
void mt_ref_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        float s = (float)(1.0 / sqrt(v + eps));
        float *o = out + (size_t)i * C;
        for (int c = 0; c < C; c++) o[c] = ((x[c] - (float)m) * s) * w[c] + b[c];
        mean[i] = (float)m;
        rstd[i] = s;
    }
}

// dout (N,C) -> dinp (N,C) +=, dw (C) +=, db (C) +=
void mt_ref_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *g = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        double sum_g = 0, sum_gx = 0;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float gw = g[c] * w[c];
            sum_g += gw;
            sum_gx += gw * xhat;
            dw[c] += g[c] * xhat;
            db[c] += g[c];
        }
        float mg = (float)(sum_g / C), mgx = (float)(sum_gx / C);
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            dx[c] += s * (g[c] * w[c] - mg - xhat * mgx);
        }
    }
}
