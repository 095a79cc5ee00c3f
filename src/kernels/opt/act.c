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

static void gelu_erf_fwd(float *out, const float *inp, size_t n, float inv_k) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * half_one_plus_erf(inp[i], inv_k);
}

// d/dx x * 0.5 (1 + erf(x k')) = 0.5 (1 + erf(x k')) + x k' exp(-(x k')^2) / sqrt(pi)
static void gelu_erf_bwd(float *dinp, const float *dout, const float *inp, size_t n, float inv_k) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], z = x * inv_k;
        float g = half_one_plus_erf(x, inv_k) + x * inv_k * 0.56418958354775628f * mt_fast_expf(-z * z);
        dinp[i] = dout[i] * g;
    }
}

// 0.5 x (1 + tanh(u)) = x * sigmoid(2u): no cancellation for negative x
static void gelu_tanh_fwd(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        out[i] = x / (1.0f + mt_fast_expf(-2.0f * u));
    }
}

// with s = sigmoid(2u): d/dx = s + 2 x s (1 - s) du/dx
static void gelu_tanh_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], x2 = x * x;
        float u = 0.7978845608028654f * (x + 0.044715f * x2 * x);
        float sg = 1.0f / (1.0f + mt_fast_expf(-2.0f * u));
        float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x2);
        dinp[i] = dout[i] * (sg + 2.0f * x * sg * (1.0f - sg) * du);
    }
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
