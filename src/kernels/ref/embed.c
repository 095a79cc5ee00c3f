#include "kernels/ref/ref.h"

#include <string.h>

// ids (N) -> out (N,C); ids outside [vstart, vstart+vlocal) belong to another rank: zero rows
void mt_ref_embed_word_fwd(float *out, const int32_t *ids, const float *wte, int vstart, int vlocal, int N, int C) {
    for (int i = 0; i < N; i++) {
        int local = ids[i] - vstart;
        float *o = out + (size_t)i * C;
        if (local >= 0 && local < vlocal)
            memcpy(o, wte + (size_t)local * C, (size_t)C * sizeof *o);
        else
            memset(o, 0, (size_t)C * sizeof *o);
    }
}

// dout (N,C) -> dwte (vlocal,C) += scatter-add
void mt_ref_embed_word_bwd(float *dwte, const float *dout, const int32_t *ids, int vstart, int vlocal, int N, int C) {
    for (int i = 0; i < N; i++) {
        int local = ids[i] - vstart;
        if (local < 0 || local >= vlocal) continue;
        float *d = dwte + (size_t)local * C;
        const float *g = dout + (size_t)i * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

// out (B,T,C) += wpe (T..,C)[t] + wtt (types,C)[type]
void mt_ref_embed_pos_type_fwd(float *out, const int32_t *types, const float *wpe, const float *wtt, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *p = wpe + (size_t)t * C;
            const float *y = wtt + (size_t)(types ? types[(size_t)b * T + t] : 0) * C;
            for (int c = 0; c < C; c++) o[c] += p[c] + y[c];
        }
}

// dout (B,T,C) -> dwpe (T..,C) +=, dwtt (types,C) +=
void mt_ref_embed_pos_type_bwd(float *dwpe, float *dwtt, const float *dout, const int32_t *types, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *g = dout + ((size_t)b * T + t) * C;
            float *p = dwpe + (size_t)t * C;
            float *y = dwtt + (size_t)(types ? types[(size_t)b * T + t] : 0) * C;
            for (int c = 0; c < C; c++) {
                p[c] += g[c];
                y[c] += g[c];
            }
        }
}
