// Every opt kernel against its ref twin on random inputs (odd sizes, padding masks, dropout on).
// Run with 2, 1 and 3 OpenMP threads. Tolerance: atol 1e-5 * max|ref| + rtol 1e-4 (both fp32; they
// differ only in summation order and GELU's exp/erf approximations).
// Where both twins share code (the scalar activations behind TANH, the Philox dropout mask), the
// result is also checked against an independent double-precision formula or the definition, so a
// shared bug cannot pass; dropout runs over several 4096-element chunks at an unaligned start, and
// the NULL mask / NULL token-types branches are compared with their explicit equivalents.
// Taking the opt table must leave the OpenMP thread count alone whichever OpenBLAS is loaded (the
// OpenMP one's openblas_set_num_threads is omp_set_num_threads); test_kernels_openmp_blas runs this
// test on the OpenMP OpenBLAS with one BLAS call per product (MEGATUNE_GEMM_SPLIT=blas).
#include <cblas.h>
#include <omp.h>

#include "core/rng.h"
#include "kernels/kernels.h"
#include "test_util.h"

static uint64_t g_idx;
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * mt_rng_uniform(31, 0, 0, g_idx++) - 1.0f);
}
static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    fill(x, n, scale);
    return x;
}
static float *dup(const float *x, size_t n) {
    float *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}
static double maxabs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}
static void close_(const char *what, const float *got, const float *want, size_t n) {
    mt_check_close(what, got, want, n, 1e-5 * fmax(maxabs(want, n), 1e-6), 1e-4);
}

static void run_all(const mt_kernels *O);

// The activations in double precision, written from their definitions (not from act_scalar.c).
static double act_def(double x, int k) {
    switch (k) {
    case MT_KACT_RELU: return x > 0 ? x : 0;
    case MT_KACT_GELU_ERF: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case MT_KACT_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case MT_KACT_GELU_ONNX: return 0.5 * x * (1 + erf(x / 1.41421));
    default: return tanh(x);
    }
}
// d/dx by a central difference of the double formula (h small against the curvature at |x| <= 4).
static double act_def_grad(double x, int k) {
    if (k == MT_KACT_RELU) return x > 0 ? 1 : 0;
    const double h = 1e-6;
    return (act_def(x + h, k) - act_def(x - h, k)) / (2 * h);
}
static void check_act_definition(const char *twin, double grtol, int k, const float *x, const float *y, const float *dy,
                                 const float *dx, size_t n) {
    // forward: a few fp32 ulps relative (1e-6 floor for values near 0);
    // backward: grtol relative, plus an absolute floor of 2e-6 |dy| (1 + |x|) for fp32 cancellation
    // in 1 + tanh(u) and 1 - tanh^2 where the derivative is small. A wrong constant or a missing
    // term is off by far more (GELU's x * pdf term reaches 0.4 |dy|).
    double worst = 0, worst_g = 0;
    for (size_t i = 0; i < n; i++) {
        double want = act_def(x[i], k), wg = dy[i] * act_def_grad(x[i], k);
        worst = mt_test_worst(worst, fabs(y[i] - want) / (1e-6 + fabs(want)));
        worst_g = mt_test_worst(worst_g, fabs(dx[i] - wg) / (grtol * fabs(wg) + 2e-6 * fabs(dy[i]) * (1 + fabs(x[i])) + 1e-30));
    }
    CHECK_MSG(worst < 2e-5, "%s act kind %d forward differs from its definition by %.3g (relative)", twin, k, worst);
    CHECK_MSG(worst_g <= 1, "%s act kind %d backward differs from its definition by %.3g x the tolerance", twin, k,
              worst_g);
}

int main(void) {
    int before = omp_get_max_threads();
    mt_kernels_opt();
    CHECK_MSG(omp_get_max_threads() == before, "taking the opt table changed the OpenMP threads from %d to %d", before,
              omp_get_max_threads());
    const char *want = getenv("MEGATUNE_EXPECT_BLAS_PARALLEL"), *lib = getenv("MEGATUNE_EXPECT_BLAS_LIB");
    // a variant whose OpenBLAS is not installed is a skip (a failure under CI), not a silent pass
    FILE *libf = want && lib ? fopen(lib, "rb") : NULL;
    if (libf) fclose(libf);
    else if (want && lib && openblas_get_parallel() != atoi(want))
        TEST_SKIP("%s is not installed (scripts/install-deps.sh installs libopenblas0-openmp)", lib);
    if (want) // the variant run must really have the OpenBLAS it names (0 seq, 1 pthread, 2 OpenMP)
        CHECK_MSG(openblas_get_parallel() == atoi(want), "OpenBLAS threading %d, expected %s", openblas_get_parallel(),
                  want);
    CHECK_MSG(mt_kernels_opt_dnnl() || !mt_test_required("MEGATUNE_REQUIRE_DNNL"),
              "MEGATUNE_REQUIRE_DNNL is set but this build has no oneDNN table (scripts/install-deps.sh installs libdnnl-dev)");
    // thread counts that split rows, columns and heads unevenly
    const int counts[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        omp_set_num_threads(counts[i]);
        fprintf(stderr, "== %d OpenMP thread(s)\n", counts[i]);
        run_all(mt_kernels_opt());
        if (mt_kernels_opt_dnnl()) { // the same table with oneDNN's fp32 matmul for the linear layers
            CHECK_MSG(mt_kernels_opt_dnnl()->linear_act_fwd && mt_kernels_opt_dnnl()->linear_residual_fwd,
                      "the oneDNN table has no GEMM epilogues");
            fprintf(stderr, "== %d OpenMP thread(s), %s\n", counts[i], mt_kernels_opt_dnnl()->name);
            run_all(mt_kernels_opt_dnnl());
        }
    }
    TEST_DONE();
}

static void run_all(const mt_kernels *O) {
    const mt_kernels *R = mt_kernels_ref();
    const int B = 3, T = 13, C = 40, N = B * T, OUT = 27, V = 50;

    // linear
    {
        float *x = rnd((size_t)N * C, 1), *w = rnd((size_t)OUT * C, 0.5f), *b = rnd(OUT, 0.5f);
        float *yr = malloc((size_t)N * OUT * 4), *yo = malloc((size_t)N * OUT * 4);
        R->linear_fwd(yr, x, w, b, N, C, OUT);
        O->linear_fwd(yo, x, w, b, N, C, OUT);
        close_("linear_fwd", yo, yr, (size_t)N * OUT);
        R->linear_fwd(yr, x, w, NULL, N, C, OUT);
        O->linear_fwd(yo, x, w, NULL, N, C, OUT);
        close_("linear_fwd no bias", yo, yr, (size_t)N * OUT);
        // the forward-only fusions (where the table has them) against the reference's separate kernels
        for (int a = 0; a <= MT_KACT_TANH && O->linear_act_fwd; a++) {
            R->linear_fwd(yr, x, w, b, N, C, OUT);
            R->act_fwd(yr, yr, (size_t)N * OUT, (mt_kact)a);
            O->linear_act_fwd(yo, x, w, b, N, C, OUT, (mt_kact)a);
            char what[48];
            snprintf(what, sizeof what, "linear_act_fwd act %d", a);
            close_(what, yo, yr, (size_t)N * OUT);
        }
        if (O->linear_residual_fwd) {
            float *res = rnd((size_t)N * OUT, 2);
            R->linear_fwd(yr, x, w, NULL, N, C, OUT);
            R->bias_dropout_add_fwd(yr, res, yr, b, (size_t)N * OUT, OUT, NULL);
            O->linear_residual_fwd(yo, res, x, w, b, N, C, OUT);
            close_("linear_residual_fwd", yo, yr, (size_t)N * OUT);
            free(res);
        }
        float *dy = rnd((size_t)N * OUT, 1), *dwr = rnd((size_t)OUT * C, 1), *dbr = rnd(OUT, 1);
        float *dwo = dup(dwr, (size_t)OUT * C), *dbo = dup(dbr, OUT);
        float *dxr = malloc((size_t)N * C * 4), *dxo = malloc((size_t)N * C * 4);
        R->linear_bwd(dxr, dwr, dbr, dy, x, w, N, C, OUT);
        O->linear_bwd(dxo, dwo, dbo, dy, x, w, N, C, OUT);
        close_("linear_bwd dinp", dxo, dxr, (size_t)N * C);
        close_("linear_bwd dw (accumulated)", dwo, dwr, (size_t)OUT * C);
        close_("linear_bwd db (accumulated)", dbo, dbr, OUT);
        free(x); free(w); free(b); free(yr); free(yo); free(dy); free(dwr); free(dbr); free(dwo); free(dbo);
        free(dxr); free(dxo);
    }
    // layernorm
    {
        float *x = rnd((size_t)N * C, 2), *w = rnd(C, 1), *b = rnd(C, 1);
        float *yr = malloc((size_t)N * C * 4), *yo = malloc((size_t)N * C * 4), mr[64], rr[64], mo[64], ro[64];
        R->layernorm_fwd(yr, mr, rr, x, w, b, N, C, 1e-5f);
        O->layernorm_fwd(yo, mo, ro, x, w, b, N, C, 1e-5f);
        close_("layernorm_fwd", yo, yr, (size_t)N * C);
        close_("layernorm_fwd mean", mo, mr, N);
        close_("layernorm_fwd rstd", ro, rr, N);
        float *dy = rnd((size_t)N * C, 1), *dxr = rnd((size_t)N * C, 1), *dxo = dup(dxr, (size_t)N * C);
        float *dwr = rnd(C, 1), *dbr = rnd(C, 1), *dwo = dup(dwr, C), *dbo = dup(dbr, C);
        R->layernorm_bwd(dxr, dwr, dbr, dy, x, w, mr, rr, N, C);
        O->layernorm_bwd(dxo, dwo, dbo, dy, x, w, mr, rr, N, C);
        close_("layernorm_bwd dinp (accumulated)", dxo, dxr, (size_t)N * C);
        close_("layernorm_bwd dw", dwo, dwr, C);
        close_("layernorm_bwd db", dbo, dbr, C);
        free(x); free(w); free(b); free(yr); free(yo); free(dy); free(dxr); free(dxo); free(dwr); free(dbr);
        free(dwo); free(dbo);
    }
    // activations
    for (int k = 0; k <= MT_KACT_TANH; k++) {
        size_t n = 1001;
        float *x = rnd(n, 4), *yr = malloc(n * 4), *yo = malloc(n * 4), *dy = rnd(n, 1);
        char what[64];
        R->act_fwd(yr, x, n, (mt_kact)k);
        O->act_fwd(yo, x, n, (mt_kact)k);
        snprintf(what, sizeof what, "act_fwd kind %d", k);
        close_(what, yo, yr, n);
        float *fwd = dup(yo, n);
        R->act_bwd(yr, dy, x, n, (mt_kact)k);
        O->act_bwd(yo, dy, x, n, (mt_kact)k);
        snprintf(what, sizeof what, "act_bwd kind %d", k);
        close_(what, yo, yr, n);
        // opt's GELU-tanh gradient uses a polynomial exp (mt_fast_expf, ~1e-7 relative) inside a
        // sigmoid whose derivative amplifies it near |u| ~ 5: measured 2e-4, allowed 5e-4
        check_act_definition("opt", k == MT_KACT_GELU_TANH ? 5e-4 : 1e-4, k, x, fwd, dy, yo, n);
        check_act_definition("ref", 1e-4, k, x, fwd, dy, yr, n);
        // in place (dinp == dout), as the model's MLP backward runs it: the same bits
        float *io = dup(dy, n);
        O->act_bwd(io, io, x, n, (mt_kact)k);
        CHECK_MSG(!memcmp(io, yo, n * sizeof *io), "act_bwd kind %d in place differs from out of place", k);
        free(io);
        free(fwd);
        free(x); free(yr); free(yo); free(dy);
    }
    // embeddings (vocab-parallel range [10, 35))
    {
        int32_t ids[3 * 13], types[3 * 13];
        for (int i = 0; i < N; i++) {
            ids[i] = (int32_t)(mt_rng_uniform(1, 0, 1, (uint64_t)i) * V);
            types[i] = i % 2;
        }
        ids[0] = ids[1] = ids[2] = 12; // repeated ids must not race in the scatter-add
        float *wte = rnd((size_t)25 * C, 1), *wpe = rnd((size_t)T * C, 1), *wtt = rnd(2 * (size_t)C, 1);
        float *yr = malloc((size_t)N * C * 4), *yo = malloc((size_t)N * C * 4);
        R->embed_word_fwd(yr, ids, wte, 10, 25, N, C);
        O->embed_word_fwd(yo, ids, wte, 10, 25, N, C);
        R->embed_pos_type_fwd(yr, types, wpe, wtt, B, T, C);
        O->embed_pos_type_fwd(yo, types, wpe, wtt, B, T, C);
        close_("embed fwd", yo, yr, (size_t)N * C);
        {   // types NULL means every token is type 0: equal to an explicit all-zero types array
            int32_t zeros[3 * 13] = {0};
            float *a = malloc((size_t)N * C * 4), *z = malloc((size_t)N * C * 4), *rz = malloc((size_t)N * C * 4);
            memset(a, 0, (size_t)N * C * 4), memset(z, 0, (size_t)N * C * 4), memset(rz, 0, (size_t)N * C * 4);
            O->embed_pos_type_fwd(a, NULL, wpe, wtt, B, T, C);
            O->embed_pos_type_fwd(z, zeros, wpe, wtt, B, T, C);
            R->embed_pos_type_fwd(rz, NULL, wpe, wtt, B, T, C);
            close_("embed fwd, types NULL (opt) vs zeros", a, z, (size_t)N * C);
            close_("embed fwd, types NULL (ref) vs zeros", rz, z, (size_t)N * C);
            float *dy2 = rnd((size_t)N * C, 1), *p1 = calloc((size_t)T * C, 4), *t1 = calloc(2 * (size_t)C, 4);
            float *p2 = calloc((size_t)T * C, 4), *t2 = calloc(2 * (size_t)C, 4), *p3 = calloc((size_t)T * C, 4),
                  *t3 = calloc(2 * (size_t)C, 4);
            O->embed_pos_type_bwd(p1, t1, dy2, NULL, B, T, C);
            O->embed_pos_type_bwd(p2, t2, dy2, zeros, B, T, C);
            R->embed_pos_type_bwd(p3, t3, dy2, NULL, B, T, C);
            close_("embed bwd types NULL (opt) vs zeros: dwtt", t1, t2, 2 * (size_t)C);
            close_("embed bwd types NULL (ref) vs zeros: dwtt", t3, t2, 2 * (size_t)C);
            close_("embed bwd types NULL (opt) vs zeros: dwpe", p1, p2, (size_t)T * C);
            free(a); free(z); free(rz); free(dy2); free(p1); free(t1); free(p2); free(t2); free(p3); free(t3);
        }
        float *dy = rnd((size_t)N * C, 1), *dr = rnd((size_t)25 * C, 1), *dO = dup(dr, (size_t)25 * C);
        float *pr = rnd((size_t)T * C, 1), *po = dup(pr, (size_t)T * C), *tr = rnd(2 * (size_t)C, 1),
              *to = dup(tr, 2 * (size_t)C);
        R->embed_word_bwd(dr, dy, ids, 10, 25, N, C);
        O->embed_word_bwd(dO, dy, ids, 10, 25, N, C);
        R->embed_pos_type_bwd(pr, tr, dy, types, B, T, C);
        O->embed_pos_type_bwd(po, to, dy, types, B, T, C);
        close_("embed word bwd", dO, dr, (size_t)25 * C);
        close_("embed pos bwd", po, pr, (size_t)T * C);
        close_("embed type bwd", to, tr, 2 * (size_t)C);
        free(wte); free(wpe); free(wtt); free(yr); free(yo); free(dy); free(dr); free(dO); free(pr); free(po);
        free(tr); free(to);
    }
    // attention with padding, with and without dropout
    for (int variant = 0; variant < 3; variant++) {
        int drop = variant == 1;
        mt_mask_mode mode = variant == 2 ? MT_MASK_KEYS_ADD : MT_MASK_MEGATRON;
        const int NH = 4, HS = 10, NHg = 8, h0 = 4;
        size_t nq = (size_t)N * 3 * NH * HS, no = (size_t)N * NH * HS, np = (size_t)B * NH * T * T;
        int32_t mask[3 * 13];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) mask[b * T + t] = t < T - 4 * b;
        float *qkv = rnd(nq, 1.5f), *or_ = malloc(no * 4), *oo = malloc(no * 4), *pr = malloc(np * 4),
              *po = malloc(np * 4), *scr = malloc(MT_ATT_SCRATCH(B, NH, T) * 4);
        mt_dropout_site d = {drop ? 0.2f : 0.0f, 9, 2, 40};
        R->attention_fwd(or_, pr, scr, qkv, mask, mode, B, T, NH, HS, NHg, h0, &d);
        O->attention_fwd(oo, po, scr, qkv, mask, mode, B, T, NH, HS, NHg, h0, &d);
        const char *names[3] = {"attention_fwd out", "attention_fwd out (dropout)", "attention_fwd out (HF mask)"};
        close_(names[variant], oo, or_, no);
        close_("attention_fwd probs", po, pr, np);
        float *dy = rnd(no, 1), *dqr = malloc(nq * 4), *dqo = malloc(nq * 4), *dq2 = malloc(nq * 4);
        float *o2 = malloc(no * 4);
        // without kept probabilities: forward output unchanged, backward recomputes them
        O->attention_fwd(o2, NULL, scr, qkv, mask, mode, B, T, NH, HS, NHg, h0, &d);
        close_("attention_fwd out (probs not kept)", o2, or_, no);
        R->attention_bwd(dq2, scr, dy, qkv, NULL, mask, mode, B, T, NH, HS, NHg, h0, &d);
        R->attention_bwd(dqr, scr, dy, qkv, pr, mask, mode, B, T, NH, HS, NHg, h0, &d);
        O->attention_bwd(dqo, scr, dy, qkv, pr, mask, mode, B, T, NH, HS, NHg, h0, &d);
        const char *bnames[3] = {"attention_bwd dqkv", "attention_bwd dqkv (dropout)", "attention_bwd dqkv (HF mask)"};
        close_(bnames[variant], dqo, dqr, nq);
        close_("attention_bwd dqkv (ref, probs recomputed)", dq2, dqr, nq);
        O->attention_bwd(dq2, scr, dy, qkv, NULL, mask, mode, B, T, NH, HS, NHg, h0, &d);
        close_("attention_bwd dqkv (opt, probs recomputed)", dq2, dqr, nq);
        free(dq2);
        free(o2);
        free(qkv); free(or_); free(oo); free(pr); free(po); free(scr); free(dy); free(dqr); free(dqo);
    }
    // attention with mask NULL (no padding): equal to an explicit all-ones mask, in both mask modes
    for (int mode = 0; mode < 2; mode++) {
        const int NH = 4, HS = 10, NHg = 4, h0 = 0;
        size_t nq = (size_t)N * 3 * NH * HS, no = (size_t)N * NH * HS, np = (size_t)B * NH * T * T;
        int32_t ones[3 * 13];
        for (int i = 0; i < N; i++) ones[i] = 1;
        mt_mask_mode mm = mode ? MT_MASK_KEYS_ADD : MT_MASK_MEGATRON;
        float *qkv = rnd(nq, 1.5f), *a = malloc(no * 4), *b1 = malloc(no * 4), *c = malloc(no * 4), *pa = malloc(np * 4),
              *pb = malloc(np * 4), *scr = malloc(MT_ATT_SCRATCH(B, NH, T) * 4);
        mt_dropout_site d = {0.1f, 3, 1, 8};
        O->attention_fwd(a, pa, scr, qkv, NULL, mm, B, T, NH, HS, NHg, h0, &d);
        O->attention_fwd(b1, pb, scr, qkv, ones, mm, B, T, NH, HS, NHg, h0, &d);
        R->attention_fwd(c, NULL, scr, qkv, NULL, mm, B, T, NH, HS, NHg, h0, &d);
        close_("attention_fwd mask NULL (opt) vs ones", a, b1, no);
        close_("attention_fwd mask NULL (ref) vs ones", c, b1, no);
        close_("attention_fwd probs mask NULL vs ones", pa, pb, np);
        float *dy = rnd(no, 1), *ga = malloc(nq * 4), *gb = malloc(nq * 4), *gc = malloc(nq * 4);
        O->attention_bwd(ga, scr, dy, qkv, pa, NULL, mm, B, T, NH, HS, NHg, h0, &d);
        O->attention_bwd(gb, scr, dy, qkv, pb, ones, mm, B, T, NH, HS, NHg, h0, &d);
        R->attention_bwd(gc, scr, dy, qkv, NULL, NULL, mm, B, T, NH, HS, NHg, h0, &d);
        close_("attention_bwd mask NULL (opt) vs ones", ga, gb, nq);
        close_("attention_bwd mask NULL (ref, recomputed) vs ones", gc, gb, nq);
        free(qkv); free(a); free(b1); free(c); free(pa); free(pb); free(scr); free(dy); free(ga); free(gb); free(gc);
    }
    // dropout over several chunks (opt works in 4096-element chunks) from an unaligned start index
    {
        const size_t n = 3 * 4096 + 1234;
        const uint64_t index0 = 4099;
        float *x = rnd(n, 1), *yr = malloc(n * 4), *yo = malloc(n * 4);
        mt_dropout_site d = {0.25f, 11, 4, 2};
        R->dropout_fwd(yr, x, n, index0, &d);
        O->dropout_fwd(yo, x, n, index0, &d);
        close_("dropout_fwd multi-chunk", yo, yr, n);
        // the definition: each element is 0 or x / (1 - p), about p of them dropped
        size_t dropped = 0, bad = 0;
        for (size_t i = 0; i < n; i++) {
            if (yo[i] == 0.0f) dropped++;
            else if (fabsf(yo[i] - x[i] / 0.75f) > 1e-6f * fabsf(x[i]) + 1e-12f) bad++;
        }
        double frac = (double)dropped / (double)n; // sd sqrt(p(1-p)/n) = 0.0035
        CHECK_MSG(bad == 0, "%zu dropout outputs are neither 0 nor x/(1-p)", bad);
        CHECK_MSG(fabs(frac - 0.25) < 0.02, "dropout dropped %.4f of the elements, p = 0.25", frac);
        // a sub-range starting at its own index0 reproduces the same mask (no dependence on chunking)
        float *part = malloc(5000 * 4);
        O->dropout_fwd(part, x + 3000, 5000, index0 + 3000, &d);
        close_("dropout_fwd sub-range = slice of the whole", part, yo + 3000, 5000);
        R->dropout_bwd(yr, x, n, index0, &d);
        O->dropout_bwd(yo, x, n, index0, &d);
        close_("dropout_bwd multi-chunk", yo, yr, n);
        const int Cb = 37; // bias_dropout_add: C not dividing the chunk size
        float *res = rnd(n, 1), *bias = rnd(Cb, 1);
        R->bias_dropout_add_fwd(yr, res, x, bias, n, Cb, &d);
        O->bias_dropout_add_fwd(yo, res, x, bias, n, Cb, &d);
        close_("bias_dropout_add multi-chunk", yo, yr, n);
        size_t bad2 = 0;
        for (size_t i = 0; i < n; i++) {
            float v = x[i] + bias[i % Cb], kept = res[i] + v / 0.75f;
            if (fabsf(yo[i] - res[i]) > 1e-6f && fabsf(yo[i] - kept) > 1e-5f * (1 + fabsf(kept))) bad2++;
        }
        CHECK_MSG(bad2 == 0, "%zu bias_dropout_add outputs are neither res nor res + (x+b)/(1-p)", bad2);
        R->bias_dropout_add_fwd(yr, res, x, NULL, n, Cb, &d);
        O->bias_dropout_add_fwd(yo, res, x, NULL, n, Cb, &d);
        close_("bias_dropout_add multi-chunk, bias NULL", yo, yr, n);
        free(x); free(yr); free(yo); free(part); free(res); free(bias);
    }
    // dropout family
    {
        size_t n = (size_t)N * C;
        float *x = rnd(n, 1), *res = rnd(n, 1), *b = rnd(C, 1), *yr = malloc(n * 4), *yo = malloc(n * 4);
        mt_dropout_site d = {0.3f, 5, 6, 7};
        R->bias_dropout_add_fwd(yr, res, x, b, n, C, &d);
        O->bias_dropout_add_fwd(yo, res, x, b, n, C, &d);
        close_("bias_dropout_add", yo, yr, n);
        R->dropout_fwd(yr, x, n, 12345, &d);
        O->dropout_fwd(yo, x, n, 12345, &d);
        close_("dropout_fwd", yo, yr, n);
        R->dropout_bwd(yr, x, n, 3, &d);
        O->dropout_bwd(yo, x, n, 3, &d);
        close_("dropout_bwd", yo, yr, n);
        free(x); free(res); free(b); free(yr); free(yo);
    }
}
