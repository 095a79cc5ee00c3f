#include "kernels/ref/ref.h"

// inp (N,IN), w (OUT,IN), b (OUT) -> out (N,OUT)
void mt_ref_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * IN;
        for (int o = 0; o < OUT; o++) {
            const float *wr = w + (size_t)o * IN;
            double acc = b ? b[o] : 0.0f;
            for (int k = 0; k < IN; k++) acc += (double)x[k] * wr[k];
            out[(size_t)i * OUT + o] = (float)acc;
        }
    }
}

// dout (N,OUT) -> dinp (N,IN) = dout @ w; dw (OUT,IN) += dout^T @ inp; db (OUT) += colsum(dout)
void mt_ref_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT) {
    if (dinp)
        for (int i = 0; i < N; i++)
            for (int k = 0; k < IN; k++) {
                double acc = 0;
                for (int o = 0; o < OUT; o++) acc += (double)dout[(size_t)i * OUT + o] * w[(size_t)o * IN + k];
                dinp[(size_t)i * IN + k] = (float)acc;
            }
    for (int o = 0; o < OUT; o++) {
        for (int k = 0; k < IN; k++) {
            double acc = 0;
            for (int i = 0; i < N; i++) acc += (double)dout[(size_t)i * OUT + o] * inp[(size_t)i * IN + k];
            dw[(size_t)o * IN + k] += (float)acc;
        }
        if (db) {
            double acc = 0;
            for (int i = 0; i < N; i++) acc += dout[(size_t)i * OUT + o];
            db[o] += (float)acc;
        }
    }
}
