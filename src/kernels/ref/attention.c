#include "kernels/ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include "core/rng.h"

// Dropout multiplier of attention-probability element (b, h, i, j).
static float att_keep(const mt_dropout_site *d, int b, int h, int i, int j, int T, int NHg, int h0) {
    if (!d || d->p <= 0.0f) return 1.0f;
    uint64_t idx = (((uint64_t)b * NHg + h0 + h) * T + i) * T + j;
    return mt_rng_uniform(d->seed, d->step, d->stream, idx) >= d->p ? 1.0f / (1.0f - d->p) : 0.0f;
}

// Megatron: is score (i, j) kept (not set to -10000)?
static int keep_pair(const int32_t *mask, mt_mask_mode mode, int b, int i, int j, int T) {
    if (!mask || mode != MT_MASK_MEGATRON) return 1;
    return mask[(size_t)b * T + i] != 0 && mask[(size_t)b * T + j] != 0;
}

// Hugging Face: the additive bias of key j
static float key_bias(const int32_t *mask, mt_mask_mode mode, int b, int j, int T) {
    return (mask && mode == MT_MASK_KEYS_ADD && mask[(size_t)b * T + j] == 0) ? -10000.0f : 0.0f;
}

// Softmax probabilities P (T,T) of head h of batch row b.
static void ref_head_probs(float *P, const float *qkv, const int32_t *mask, mt_mask_mode mode, int b, int h, int T,
                           int NH, int HS) {
    const int C3 = 3 * NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int i = 0; i < T; i++) {
        const float *q = qkv + ((size_t)b * T + i) * C3 + h * 3 * HS;
        float *row = P + (size_t)i * T;
        float mx = -INFINITY;
        for (int j = 0; j < T; j++) {
            const float *k = qkv + ((size_t)b * T + j) * C3 + h * 3 * HS + HS;
            float s = 0;
            for (int e = 0; e < HS; e++) s += q[e] * k[e];
            s = s * scale + key_bias(mask, mode, b, j, T);
            if (!keep_pair(mask, mode, b, i, j, T)) s = -10000.0f;
            row[j] = s;
            if (s > mx) mx = s;
        }
        double sum = 0;
        for (int j = 0; j < T; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        for (int j = 0; j < T; j++) row[j] = (float)(row[j] / sum);
    }
}

// qkv (B,T,3*NH*HS) [per head: q,k,v] -> out (B,T,NH*HS), probs (B,NH,T,T)
void mt_ref_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                          mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop) {
    const int C3 = 3 * NH * HS, C = NH * HS;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *P = (probs ? probs : scratch) + ((size_t)b * NH + h) * T * T;
            ref_head_probs(P, qkv, mask, mode, b, h, T, NH, HS);
            for (int i = 0; i < T; i++) {
                const float *row = P + (size_t)i * T;
                float *o = out + ((size_t)b * T + i) * C + h * HS;
                for (int e = 0; e < HS; e++) o[e] = 0;
                for (int j = 0; j < T; j++) {
                    float pj = row[j] * att_keep(drop, b, h, i, j, T, NHg, h0);
                    const float *v = qkv + ((size_t)b * T + j) * C3 + h * 3 * HS + 2 * HS;
                    for (int e = 0; e < HS; e++) o[e] += pj * v[e];
                }
            }
        }
}

// dout (B,T,NH*HS) -> dqkv (B,T,3*NH*HS)
void mt_ref_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                          const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop) {
    const int C3 = 3 * NH * HS, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    for (size_t i = 0; i < (size_t)B * T * C3; i++) dqkv[i] = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *P = probs ? probs + ((size_t)b * NH + h) * T * T : NULL;
            if (!P) {
                float *R = scratch + ((size_t)2 * B * NH + (size_t)b * NH + h) * T * T;
                ref_head_probs(R, qkv, mask, mode, b, h, T, NH, HS);
                P = R;
            }
            float *dS = scratch + ((size_t)b * NH + h) * T * T;
            for (int i = 0; i < T; i++) {
                const float *g = dout + ((size_t)b * T + i) * C + h * HS;
                // dPdrop[j] = g . v_j ; dv_j += Pdrop[i,j] g
                double dot = 0;
                for (int j = 0; j < T; j++) {
                    float keep = att_keep(drop, b, h, i, j, T, NHg, h0);
                    const float *v = qkv + ((size_t)b * T + j) * C3 + h * 3 * HS + 2 * HS;
                    float *dv = dqkv + ((size_t)b * T + j) * C3 + h * 3 * HS + 2 * HS;
                    float s = 0;
                    for (int e = 0; e < HS; e++) {
                        s += g[e] * v[e];
                        dv[e] += P[(size_t)i * T + j] * keep * g[e];
                    }
                    float dp = s * keep;
                    dS[(size_t)i * T + j] = dp;
                    dot += (double)dp * P[(size_t)i * T + j];
                }
                for (int j = 0; j < T; j++) {
                    float ds = P[(size_t)i * T + j] * (dS[(size_t)i * T + j] - (float)dot);
                    // a masked score is a constant: no gradient reaches q or k through it
                    if (!keep_pair(mask, mode, b, i, j, T)) ds = 0;
                    dS[(size_t)i * T + j] = ds * scale;
                }
            }
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * C3 + h * 3 * HS;
                float *dq = dqkv + ((size_t)b * T + i) * C3 + h * 3 * HS;
                for (int j = 0; j < T; j++) {
                    float ds = dS[(size_t)i * T + j];
                    const float *k = qkv + ((size_t)b * T + j) * C3 + h * 3 * HS + HS;
                    float *dk = dqkv + ((size_t)b * T + j) * C3 + h * 3 * HS + HS;
                    for (int e = 0; e < HS; e++) {
                        dq[e] += ds * k[e];
                        dk[e] += ds * q[e];
                    }
                }
            }
        }
}
