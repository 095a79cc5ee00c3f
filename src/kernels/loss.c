#include "kernels/kernels.h"

#include <math.h>

// logits (N,C), labels (N), w (N) -> probs (N,C); returns sum_i w_i * nll_i
double mt_ce_fwd(float *probs, const float *logits, const int32_t *labels, const float *w, int N, int C) {
    double total = 0;
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * C;
        float *p = probs + (size_t)i * C;
        float mx = x[0];
        for (int c = 1; c < C; c++) mx = x[c] > mx ? x[c] : mx;
        double sum = 0;
        for (int c = 0; c < C; c++) sum += exp((double)x[c] - mx);
        for (int c = 0; c < C; c++) p[c] = (float)(exp((double)x[c] - mx) / sum);
        if (w[i] != 0.0f) total += (double)w[i] * (log(sum) + mx - x[labels[i]]);
    }
    return total;
}

// probs (N,C) -> dlogits (N,C) = scale * w_i * (p - onehot)
void mt_ce_bwd(float *dlogits, const float *probs, const int32_t *labels, const float *w, int N, int C, float scale) {
    for (int i = 0; i < N; i++) {
        float s = scale * w[i];
        float *d = dlogits + (size_t)i * C;
        const float *p = probs + (size_t)i * C;
        for (int c = 0; c < C; c++) d[c] = s * p[c];
        if (w[i] != 0.0f) d[labels[i]] -= s;
    }
}
