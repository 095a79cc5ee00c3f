// Fast kernels: OpenMP for all threading, one pool. The pthread OpenBLAS runs single-threaded
// inside our OpenMP threads; the OpenMP OpenBLAS shares the pool (mt_kernels_opt in table.c says
// how). With oneDNN built in, fp32 linear layers run on its matmul instead (mt_kernels_opt_dnnl, chosen in kernels.c).
#ifndef MT_KERNELS_OPT_H
#define MT_KERNELS_OPT_H
#include <omp.h>
#include "kernels/kernels.h"

// Branch-free exp the compiler can vectorize (libm's calls block vectorization).
// exp: Cody-Waite reduction by ln 2 and a degree-6 polynomial, ~2 ulp on [-87, 88].
static inline float mt_fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // round to nearest by the 1.5*2^23 trick (floorf and memcpy would stop vectorization)
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666672e-1f + r * (4.16664183e-2f + r * (8.33336726e-3f +
                                                                                          r * 1.39819994e-3f)))));
    union {
        float f;
        int32_t i;
    } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}

// Row reductions over 16 running lanes (element k goes to lane k % 16), folded in a fixed tree. One
// running sum is a chain of dependent adds, 4 cycles a float, which made LayerNorm and softmax
// latency-bound; the lanes vectorize. The order depends only on n: the same digits every run, on any
// thread count (the reference kernels keep the plain left-to-right sums; the tests compare the two).
#define MT_OPT_LANES 16
static inline float mt_opt_fold_sum(float *s) {
    for (int w = MT_OPT_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) s[j] += s[j + w];
    return s[0];
}
// sum of x[0..n)
static inline float mt_opt_sum(const float *x, int n) {
    float s[MT_OPT_LANES] = {0};
    int k = 0;
    for (; k + MT_OPT_LANES <= n; k += MT_OPT_LANES)
        for (int j = 0; j < MT_OPT_LANES; j++) s[j] += x[k + j];
    for (; k < n; k++) s[k % MT_OPT_LANES] += x[k];
    return mt_opt_fold_sum(s);
}
// sum of (x - m)^2
static inline float mt_opt_sum_sqdev(const float *x, float m, int n) {
    float s[MT_OPT_LANES] = {0};
    int k = 0;
    for (; k + MT_OPT_LANES <= n; k += MT_OPT_LANES)
        for (int j = 0; j < MT_OPT_LANES; j++) {
            float d = x[k + j] - m;
            s[j] += d * d;
        }
    for (; k < n; k++) s[k % MT_OPT_LANES] += (x[k] - m) * (x[k] - m);
    return mt_opt_fold_sum(s);
}
// sum of x * y
static inline float mt_opt_dot(const float *x, const float *y, int n) {
    float s[MT_OPT_LANES] = {0};
    int k = 0;
    for (; k + MT_OPT_LANES <= n; k += MT_OPT_LANES)
        for (int j = 0; j < MT_OPT_LANES; j++) s[j] += x[k + j] * y[k + j];
    for (; k < n; k++) s[k % MT_OPT_LANES] += x[k] * y[k];
    return mt_opt_fold_sum(s);
}
// max of x[0..n), n >= 1 (exact whatever the order)
static inline float mt_opt_max(const float *x, int n) {
    float s[MT_OPT_LANES];
    for (int j = 0; j < MT_OPT_LANES; j++) s[j] = x[0];
    int k = 0;
    for (; k + MT_OPT_LANES <= n; k += MT_OPT_LANES)
        for (int j = 0; j < MT_OPT_LANES; j++) s[j] = x[k + j] > s[j] ? x[k + j] : s[j];
    for (; k < n; k++) s[0] = x[k] > s[0] ? x[k] : s[0];
    for (int j = 1; j < MT_OPT_LANES; j++) s[0] = s[j] > s[0] ? s[j] : s[0];
    return s[0];
}

// 1 when OpenBLAS is its OpenMP build (set by mt_kernels_opt): it then threads a product called
// outside our parallel regions on our own pool.
extern int mt_opt_blas_omp;

// Rows [*lo, *hi) of n for thread `tid` of `nt`.
static inline void mt_opt_split(int n, int tid, int nt, int *lo, int *hi) {
    int q = n / nt, r = n % nt;
    *lo = tid * q + (tid < r ? tid : r);
    *hi = *lo + q + (tid < r ? 1 : 0);
}

// db[o] += sum over rows i of dout[i][o]: split by columns, so each thread owns its entries of db and
// the sum runs in row order whatever the thread count (the same digits on any machine).
static inline void mt_opt_bias_grad(float *db, const float *dout, int N, int OUT) {
#pragma omp parallel
    {
        int lo, hi;
        mt_opt_split(OUT, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int i = 0; i < N; i++) {
            const float *g = dout + (size_t)i * OUT;
            for (int o = lo; o < hi; o++) db[o] += g[o];
        }
    }
}

void mt_opt_embed_word_fwd(float *out, const int32_t *ids, const float *wte, int vstart, int vlocal, int N, int C);
void mt_opt_embed_word_bwd(float *dwte, const float *dout, const int32_t *ids, int vstart, int vlocal, int N, int C);
void mt_opt_embed_pos_type_fwd(float *out, const int32_t *types, const float *wpe, const float *wtt, int B, int T, int C);
void mt_opt_embed_pos_type_bwd(float *dwpe, float *dwtt, const float *dout, const int32_t *types, int B, int T, int C);
void mt_opt_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps);
// one row of it, written in fp32 to o or, when o16 is given, in bf16 to o16 (the same values, rounded)
void mt_opt_layernorm_row(float *o, uint16_t *o16, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int C, float eps);
void mt_opt_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C);
void mt_opt_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT);
void mt_opt_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT);
void mt_opt_act_fwd(float *out, const float *inp, size_t n, mt_kact kind);
void mt_opt_act_bwd(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind);
void mt_opt_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                          mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop);
void mt_opt_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                          const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop);
// the attention kernels with bf16 rounding of the probabilities and score gradients before their
// products (round = 1; the emulated bf16 path), and the row steps the oneDNN bf16 attention shares
void mt_opt_attention_fwd_r(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                            mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                            const mt_dropout_site *drop, int round);
void mt_opt_attention_bwd_r(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                            const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                            const mt_dropout_site *drop, int round);
void mt_opt_masked_softmax_row(float *row, const int32_t *mrow, mt_mask_mode mode, int qvalid, int T);
void mt_opt_softmax_bwd_row(float *ds, const float *p, const float *keep, const int32_t *mrow, mt_mask_mode mode,
                            int qvalid, int T, float scale);
// dst = src rounded to bf16 values (single-threaded; dst may equal src)
static inline void mt_opt_round_bf16(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        union { float f; uint32_t u; } v = {src[i]};
        if ((v.u & 0x7fffffffu) <= 0x7f800000u) v.u = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) & 0xffff0000u;
        else v.u = (v.u | 0x400000u) & 0xffff0000u; // NaN stays NaN, as mt_bf16_from_f32
        dst[i] = v.f;
    }
}
void mt_opt_dropout_fwd(float *out, const float *inp, size_t n, uint64_t index0, const mt_dropout_site *d);
void mt_opt_bias_dropout_add_fwd(float *out, const float *res, const float *inp, const float *bias, size_t n, int C,
                                 const mt_dropout_site *d);
void mt_opt_dropout_bwd(float *dinp, const float *dout, size_t n, uint64_t index0, const mt_dropout_site *d);
#endif
