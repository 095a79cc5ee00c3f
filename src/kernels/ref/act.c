#include "kernels/ref/ref.h"

// inp (n) -> out (n)
void mt_ref_act_fwd(float *out, const float *inp, size_t n, mt_kact kind) {
    for (size_t i = 0; i < n; i++) out[i] = mt_kact_scalar(inp[i], kind);
}

// dout (n), inp (n) -> dinp (n) = dout * act'(inp)
void mt_ref_act_bwd(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * mt_kact_grad_scalar(inp[i], kind);
}

// pre (N,C) += bias; out = act(pre)
void mt_ref_bias_act_fwd(float *out, float *pre, const float *bias, int N, int C, mt_kact kind) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            size_t k = (size_t)i * C + j;
            if (bias) pre[k] += bias[j];
            out[k] = mt_kact_scalar(pre[k], kind);
        }
}

// dinp = dout * act'(pre); db += colsum(dinp)
void mt_ref_bias_act_bwd(float *dinp, float *db, const float *dout, const float *pre, int N, int C, mt_kact kind) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            size_t k = (size_t)i * C + j;
            dinp[k] = dout[k] * mt_kact_grad_scalar(pre[k], kind);
            if (db) db[j] += dinp[k];
        }
}
