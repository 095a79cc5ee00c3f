#include "kernels/opt/opt.h"

#include <cblas.h>
#include <string.h>

// Rows per BLAS call: small enough that a thread descheduled by a busy machine delays only one
// block (the other thread takes the rest), large enough for BLAS to run at full speed.
static int block_rows(int n, int nt) {
    int b = n / (2 * nt);
    if (b < 32) b = 32;
    return (b + 7) / 8 * 8;
}

// inp (N,IN) @ w^T (IN,OUT) + b -> out (N,OUT)
void mt_opt_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    const int bs = block_rows(N, omp_get_max_threads()), nb = (N + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < nb; blk++) {
        int lo = blk * bs, hi = lo + bs < N ? lo + bs : N;
        if (b)
            for (int i = lo; i < hi; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OUT, IN, 1.0f, inp + (size_t)lo * IN, IN, w, IN,
                    b ? 1.0f : 0.0f, out + (size_t)lo * OUT, OUT);
    }
}

// dinp (N,IN) = dout (N,OUT) @ w (OUT,IN); dw (OUT,IN) += dout^T @ inp; db += colsum(dout)
void mt_opt_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT) {
    const int nt = omp_get_max_threads();
    const int bn = block_rows(N, nt), nbn = dinp ? (N + bn - 1) / bn : 0;
    const int bo = block_rows(OUT, nt), nbo = (OUT + bo - 1) / bo;
    // one work list: input-gradient row blocks, then weight-gradient row blocks (each owns its rows of dw)
#pragma omp parallel for schedule(dynamic, 1)
    for (int task = 0; task < nbn + nbo; task++) {
        if (task < nbn) {
            int lo = task * bn, hi = lo + bn < N ? lo + bn : N;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, IN, OUT, 1.0f, dout + (size_t)lo * OUT, OUT,
                        w, IN, 0.0f, dinp + (size_t)lo * IN, IN);
        } else {
            int lo = (task - nbn) * bo, hi = lo + bo < OUT ? lo + bo : OUT;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, IN, N, 1.0f, dout + lo, OUT, inp, IN, 1.0f,
                        dw + (size_t)lo * IN, IN);
            if (db)
                for (int i = 0; i < N; i++) {
                    const float *g = dout + (size_t)i * OUT;
                    for (int o = lo; o < hi; o++) db[o] += g[o];
                }
        }
    }
}
