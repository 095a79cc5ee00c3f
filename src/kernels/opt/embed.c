#include "kernels/opt/opt.h"

#include <string.h>

// ids (N) -> out (N,C)
void mt_opt_embed_word_fwd(float *out, const int32_t *ids, const float *wte, int vstart, int vlocal, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        int local = ids[i] - vstart;
        float *o = out + (size_t)i * C;
        if (local >= 0 && local < vlocal)
            memcpy(o, wte + (size_t)local * C, (size_t)C * sizeof *o);
        else
            memset(o, 0, (size_t)C * sizeof *o);
    }
}

// dout (N,C) -> dwte (vlocal,C) +=; threads own column ranges so repeated ids never race
void mt_opt_embed_word_bwd(float *dwte, const float *dout, const int32_t *ids, int vstart, int vlocal, int N, int C) {
#pragma omp parallel
    {
        int lo, hi;
        mt_opt_split(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int i = 0; i < N; i++) {
            int local = ids[i] - vstart;
            if (local < 0 || local >= vlocal) continue;
            float *d = dwte + (size_t)local * C;
            const float *g = dout + (size_t)i * C;
            for (int c = lo; c < hi; c++) d[c] += g[c];
        }
    }
}

// out (B,T,C) += wpe[t] + wtt[type]
void mt_opt_embed_pos_type_fwd(float *out, const int32_t *types, const float *wpe, const float *wtt, int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B * T; r++) {
        int t = r % T;
        float *o = out + (size_t)r * C;
        const float *p = wpe + (size_t)t * C;
        const float *y = wtt + (size_t)(types ? types[r] : 0) * C;
        for (int c = 0; c < C; c++) o[c] += p[c] + y[c];
    }
}

// dout (B,T,C) -> dwpe +=, dwtt +=; column ranges per thread
void mt_opt_embed_pos_type_bwd(float *dwpe, float *dwtt, const float *dout, const int32_t *types, int B, int T, int C) {
#pragma omp parallel
    {
        int lo, hi;
        mt_opt_split(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int r = 0; r < B * T; r++) {
            const float *g = dout + (size_t)r * C;
            float *p = dwpe + (size_t)(r % T) * C;
            float *y = dwtt + (size_t)(types ? types[r] : 0) * C;
            for (int c = lo; c < hi; c++) {
                p[c] += g[c];
                y[c] += g[c];
            }
        }
    }
}
