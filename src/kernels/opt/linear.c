#include "kernels/opt/opt.h"

#include <cblas.h>
#include <string.h>

// inp (N,IN) @ w^T (IN,OUT) + b -> out (N,OUT); rows split over threads, one BLAS call each
void mt_opt_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
#pragma omp parallel
    {
        int lo, hi;
        mt_opt_split(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) {
            if (b)
                for (int i = lo; i < hi; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OUT, IN, 1.0f, inp + (size_t)lo * IN, IN,
                        w, IN, b ? 1.0f : 0.0f, out + (size_t)lo * OUT, OUT);
        }
    }
}

// dinp (N,IN) = dout (N,OUT) @ w (OUT,IN); dw (OUT,IN) += dout^T @ inp; db += colsum(dout)
void mt_opt_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT) {
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
        if (dinp) {
            mt_opt_split(N, tid, nt, &lo, &hi);
            if (hi > lo)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, IN, OUT, 1.0f, dout + (size_t)lo * OUT,
                            OUT, w, IN, 0.0f, dinp + (size_t)lo * IN, IN);
        }
        // weight rows (outputs) split over threads
        mt_opt_split(OUT, tid, nt, &lo, &hi);
        if (hi > lo) {
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
