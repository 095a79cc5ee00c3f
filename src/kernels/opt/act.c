#include "kernels/opt/opt.h"

#include <math.h>
#include <stdint.h>

// Branch-free erfc the compiler can vectorize (libm's calls block vectorization); exp: opt.h.
// erfc(z) for z >= 0 (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
static inline float erfc_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float poly = -1.26551223f +
                 t * (1.00002368f +
                      t * (0.37409196f +
                           t * (0.09678418f +
                                t * (-0.18628806f +
                                     t * (0.27886807f +
                                          t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
    return t * mt_fast_expf(-z * z + poly);
}

// Phi-like term 0.5 * (1 + erf(x / k)) for any sign of x
static inline float half_one_plus_erf(float x, float inv_k) {
    float z = x * inv_k, a = fabsf(z);
    float c = 0.5f * erfc_pos(a);
    return z >= 0.0f ? 1.0f - c : c;
}

#define INV_SQRT2 0.70710678118654752f

static inline float gelu_erf(float x, float inv_k) { return x * half_one_plus_erf(x, inv_k); }

// d/dx x * 0.5 (1 + erf(x k')) = 0.5 (1 + erf(x k')) + x k' exp(-(x k')^2) / sqrt(pi)
static inline float gelu_erf_grad(float x, float inv_k) {
    float z = x * inv_k;
    return half_one_plus_erf(x, inv_k) + x * inv_k * 0.56418958354775628f * mt_fast_expf(-z * z);
}

// 0.5 x (1 + tanh(u)) = x * sigmoid(2u): no cancellation for negative x
static inline float gelu_tanh(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + mt_fast_expf(-2.0f * u));
}

// with s = sigmoid(2u): d/dx = s + 2 x s (1 - s) du/dx
static inline float gelu_tanh_grad(float x) {
    float x2 = x * x;
    float u = 0.7978845608028654f * (x + 0.044715f * x2 * x);
    float sg = 1.0f / (1.0f + mt_fast_expf(-2.0f * u));
    float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x2);
    return sg + 2.0f * x * sg * (1.0f - sg) * du;
}

static void gelu_erf_fwd(float *out, const float *inp, size_t n, float inv_k) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = gelu_erf(inp[i], inv_k);
}

static void gelu_erf_bwd(float *dinp, const float *dout, const float *inp, size_t n, float inv_k) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * gelu_erf_grad(inp[i], inv_k);
}

static void gelu_tanh_fwd(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = gelu_tanh(inp[i]);
}

static void gelu_tanh_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * gelu_tanh_grad(inp[i]);
}

// inp (n) -> out (n)
void mt_opt_act_fwd(float *out, const float *inp, size_t n, mt_kact kind) {
    switch (kind) {
    case MT_KACT_RELU:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        return;
    case MT_KACT_GELU_ERF: gelu_erf_fwd(out, inp, n, INV_SQRT2); return;
    case MT_KACT_GELU_ONNX: gelu_erf_fwd(out, inp, n, 1.0f / 1.41421f); return;
    case MT_KACT_GELU_TANH: gelu_tanh_fwd(out, inp, n); return;
    default:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) out[i] = mt_kact_scalar(inp[i], kind);
    }
}

// dinp (n) = dout * act'(inp)
void mt_opt_act_bwd(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind) {
    switch (kind) {
    case MT_KACT_RELU:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
        return;
    case MT_KACT_GELU_ERF: gelu_erf_bwd(dinp, dout, inp, n, INV_SQRT2); return;
    case MT_KACT_GELU_ONNX: gelu_erf_bwd(dinp, dout, inp, n, 1.0f / 1.41421f); return;
    case MT_KACT_GELU_TANH: gelu_tanh_bwd(dinp, dout, inp, n); return;
    default:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * mt_kact_grad_scalar(inp[i], kind);
    }
}

// One row segment of the fused bias+activation: p += bias, y = act(p). The switch stays outside
// the loops so each one vectorizes.
static void bias_act_seg(float *y, float *p, const float *bias, int n, mt_kact kind) {
    if (bias)
        for (int j = 0; j < n; j++) p[j] += bias[j];
    switch (kind) {
    case MT_KACT_RELU:
        for (int j = 0; j < n; j++) y[j] = p[j] > 0.0f ? p[j] : 0.0f;
        return;
    case MT_KACT_GELU_ERF:
        for (int j = 0; j < n; j++) y[j] = gelu_erf(p[j], INV_SQRT2);
        return;
    case MT_KACT_GELU_ONNX:
        for (int j = 0; j < n; j++) y[j] = gelu_erf(p[j], 1.0f / 1.41421f);
        return;
    case MT_KACT_GELU_TANH:
        for (int j = 0; j < n; j++) y[j] = gelu_tanh(p[j]);
        return;
    default:
        for (int j = 0; j < n; j++) y[j] = mt_kact_scalar(p[j], kind);
    }
}

// g = dy * act'(p); db += g
static void bias_act_grad_seg(float *g, float *db, const float *dy, const float *p, int n, mt_kact kind) {
    switch (kind) {
    case MT_KACT_RELU:
        for (int j = 0; j < n; j++) g[j] = p[j] > 0.0f ? dy[j] : 0.0f;
        break;
    case MT_KACT_GELU_ERF:
        for (int j = 0; j < n; j++) g[j] = dy[j] * gelu_erf_grad(p[j], INV_SQRT2);
        break;
    case MT_KACT_GELU_ONNX:
        for (int j = 0; j < n; j++) g[j] = dy[j] * gelu_erf_grad(p[j], 1.0f / 1.41421f);
        break;
    case MT_KACT_GELU_TANH:
        for (int j = 0; j < n; j++) g[j] = dy[j] * gelu_tanh_grad(p[j]);
        break;
    default:
        for (int j = 0; j < n; j++) g[j] = dy[j] * mt_kact_grad_scalar(p[j], kind);
    }
    if (db)
        for (int j = 0; j < n; j++) db[j] += g[j];
}

// pre (N,C) += bias; out = act(pre): one pass instead of a bias copy before the GEMM and an
// activation pass after it
void mt_opt_bias_act_fwd(float *out, float *pre, const float *bias, int N, int C, mt_kact kind) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        bias_act_seg(out + (size_t)i * C, pre + (size_t)i * C, bias, C, kind);
}

// dinp = dout * act'(pre); db += colsum(dinp) in the same pass. Each thread owns a slice of the
// columns and walks all rows in order, so db's sums do not depend on the thread count.
void mt_opt_bias_act_bwd(float *dinp, float *db, const float *dout, const float *pre, int N, int C, mt_kact kind) {
#pragma omp parallel
    {
        int lo, hi;
        mt_opt_split(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int i = 0; i < N && hi > lo; i++) {
            size_t r = (size_t)i * C + lo;
            bias_act_grad_seg(dinp + r, db ? db + lo : NULL, dout + r, pre + r, hi - lo, kind);
        }
    }
}
