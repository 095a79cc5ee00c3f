#include "kernels/opt/opt.h"

#include <cblas.h>
#include <math.h>
#include "core/rng.h"

// Softmax over one score row with the padding mask (mrow NULL = none); row is overwritten with probs.
void mt_opt_masked_softmax_row(float *row, const int32_t *mrow, mt_mask_mode mode, int qvalid, int T) {
    if (mrow)
        for (int j = 0; j < T; j++) {
            if (mode == MT_MASK_MEGATRON && (!qvalid || mrow[j] == 0)) row[j] = -10000.0f;
            if (mode == MT_MASK_KEYS_ADD && mrow[j] == 0) row[j] += -10000.0f;
        }
    float mx = mt_opt_max(row, T);
    for (int j = 0; j < T; j++) row[j] = mt_fast_expf(row[j] - mx); // vectorized
    float inv = 1.0f / mt_opt_sum(row, T);
    for (int j = 0; j < T; j++) row[j] *= inv;
}

// P (T,T) = masked softmax(scale * Q K^T) of one head
static void head_probs(float *P, const float *Q, const float *K, int C3, const int32_t *mrow, mt_mask_mode mode,
                       int T, int HS, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, Q, C3, K, C3, 0.0f, P, T);
    for (int i = 0; i < T; i++) mt_opt_masked_softmax_row(P + (size_t)i * T, mrow, mode, mrow ? mrow[i] != 0 : 1, T);
}

// qkv (B,T,3*NH*HS) -> out (B,T,NH*HS), probs (B,NH,T,T); one (batch, head) per thread, BLAS per head.
// round: the probabilities (after dropout) enter P V rounded to bf16 (the emulated bf16 path, whose
// qkv the caller has rounded).
void mt_opt_attention_fwd_r(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                            mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                            const mt_dropout_site *drop, int round) {
    const int C3 = 3 * NH * HS, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int dropping = drop && drop->p > 0.0f;
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *Q = qkv + (size_t)b * T * C3 + (size_t)h * 3 * HS;
        const float *K = Q + HS, *V = Q + 2 * HS;
        float *P = probs ? probs + (size_t)bh * T * T : scratch + ((size_t)2 * B * NH + bh) * T * T;
        head_probs(P, Q, K, C3, mask ? mask + (size_t)b * T : NULL, mode, T, HS, scale);
        const float *Pd = P;
        if (dropping) {
            float *D = scratch + (size_t)bh * T * T;
            uint64_t base = ((uint64_t)b * NHg + h0 + h) * T * T;
            mt_dropout_scale(D, drop->seed, drop->step, drop->stream, base, (uint64_t)T * T, drop->p);
            for (size_t k = 0; k < (size_t)T * T; k++) D[k] *= P[k];
            Pd = D;
        }
        if (round) { // (without dropout this scratch block is free)
            float *D = scratch + (size_t)bh * T * T;
            mt_opt_round_bf16(D, Pd, (size_t)T * T);
            Pd = D;
        }
        // out_h (T,HS) = Pd (T,T) @ V (T,HS)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, Pd, T, V, C3, 0.0f,
                    out + (size_t)b * T * C + (size_t)h * HS, C);
    }
}

void mt_opt_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                          mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop) {
    mt_opt_attention_fwd_r(out, probs, scratch, qkv, mask, mode, B, T, NH, HS, NHg, h0, drop, 0);
}

// One row of the softmax backward: ds (T) holds d(probs after dropout) on entry and d(scores),
// scale included, on return; keep is the row's dropout scale (NULL: none).
void mt_opt_softmax_bwd_row(float *ds, const float *p, const float *keep, const int32_t *mrow, mt_mask_mode mode,
                            int qvalid, int T, float scale) {
    if (keep)
        for (int j = 0; j < T; j++) ds[j] *= keep[j];
    float dot = mt_opt_dot(ds, p, T);
    for (int j = 0; j < T; j++) {
        float g = p[j] * (ds[j] - dot) * scale;
        // a masked score is a constant: no gradient reaches q or k through it
        ds[j] = (mrow && mode == MT_MASK_MEGATRON && (!qvalid || mrow[j] == 0)) ? 0.0f : g;
    }
}

// dout (B,T,NH*HS) -> dqkv (B,T,3*NH*HS); round: Pd and d(scores) enter their products rounded to
// bf16 (the emulated bf16 path, whose qkv and dout the caller has rounded)
void mt_opt_attention_bwd_r(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                            const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                            const mt_dropout_site *drop, int round) {
    const int C3 = 3 * NH * HS, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int dropping = drop && drop->p > 0.0f;
    const size_t TT = (size_t)T * T;
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *Q = qkv + (size_t)b * T * C3 + (size_t)h * 3 * HS;
        const float *K = Q + HS, *V = Q + 2 * HS;
        float *dQ = dqkv + (size_t)b * T * C3 + (size_t)h * 3 * HS;
        float *dK = dQ + HS, *dV = dQ + 2 * HS;
        const float *dO = dout + (size_t)b * T * C + (size_t)h * HS;
        const int32_t *mrow = mask ? mask + (size_t)b * T : NULL;
        const float *P = probs ? probs + (size_t)bh * TT : NULL;
        if (!P) {
            float *R = scratch + ((size_t)2 * B * NH + bh) * TT;
            head_probs(R, Q, K, C3, mrow, mode, T, HS, scale);
            P = R;
        }
        float *dS = scratch + (size_t)bh * TT;
        float *keep = scratch + (size_t)B * NH * TT + (size_t)bh * TT;
        const float *Pd = P;
        if (dropping) {
            uint64_t base = ((uint64_t)b * NHg + h0 + h) * TT;
            mt_dropout_scale(keep, drop->seed, drop->step, drop->stream, base, TT, drop->p);
            // dS is free here: use it for Pd while computing dV
            for (size_t k = 0; k < TT; k++) dS[k] = P[k] * keep[k];
            Pd = dS;
        }
        if (round) { // dS is free until dPd below
            mt_opt_round_bf16(dS, Pd, TT);
            Pd = dS;
        }
        // dV (T,HS) = Pd^T (T,T) @ dO (T,HS)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, Pd, T, dO, C, 0.0f, dV, C3);
        // dPd (T,T) = dO (T,HS) @ V^T (HS,T)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dO, C, V, C3, 0.0f, dS, T);
        for (int i = 0; i < T; i++)
            mt_opt_softmax_bwd_row(dS + (size_t)i * T, P + (size_t)i * T, dropping ? keep + (size_t)i * T : NULL, mrow,
                                   mode, mrow ? mrow[i] != 0 : 1, T, scale);
        if (round) mt_opt_round_bf16(dS, dS, TT);
        // dQ (T,HS) = dS (T,T) @ K (T,HS); dK (T,HS) = dS^T @ Q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, dS, T, K, C3, 0.0f, dQ, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, dS, T, Q, C3, 0.0f, dK, C3);
    }
}

void mt_opt_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                          const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop) {
    mt_opt_attention_bwd_r(dqkv, scratch, dout, qkv, probs, mask, mode, B, T, NH, HS, NHg, h0, drop, 0);
}
