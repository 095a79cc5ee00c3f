#include "kernels/opt/opt.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

// Rows per BLAS call: small enough that a thread descheduled by a busy machine delays only one
// block (the other thread takes the rest), large enough for BLAS to run at full speed.
static int block_rows(int n, int nt) {
    int b = n / (2 * nt);
    if (b < 32) b = 32;
    return (b + 7) / 8 * 8;
}

// MEGATUNE_GEMM_SPLIT=blas with the OpenMP OpenBLAS: one BLAS call per product, threaded by
// OpenBLAS on our pool (each matrix packed once) instead of our row blocks (each block re-packs
// the weights). Measured level in CPU time and slower in wall time on a loaded machine (its
// static split waits for a descheduled thread), so the row blocks stay the default.
static int whole_calls(void) {
    const char *e = getenv("MEGATUNE_GEMM_SPLIT");
    return __atomic_load_n(&mt_opt_blas_omp, __ATOMIC_ACQUIRE) && e && !strcmp(e, "blas") && !omp_in_parallel();
}

// inp (N,IN) @ w^T (IN,OUT) + b -> out (N,OUT)
void mt_opt_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    if (whole_calls()) {
        if (b)
#pragma omp parallel for schedule(static) if ((size_t)N * OUT > 65536)
            for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, w, IN, b ? 1.0f : 0.0f, out,
                    OUT);
        return;
    }
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
    if (whole_calls()) {
        if (dinp)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, w, IN, 0.0f, dinp, IN);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, N, 1.0f, dout, OUT, inp, IN, 1.0f, dw, IN);
        if (db) mt_opt_bias_grad(db, dout, N, OUT);
        return;
    }
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
