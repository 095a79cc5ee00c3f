// Every opt kernel against its ref twin on random inputs (odd sizes, padding masks, dropout on).
// Run with 2, 1 and 3 OpenMP threads. Tolerance: atol 1e-5 * max|ref| + rtol 1e-4 (both fp32; they
// differ only in summation order and GELU's exp/erf approximations).
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

static void run_all(void);

int main(void) {
    // thread counts that split rows, columns and heads unevenly
    const int counts[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        omp_set_num_threads(counts[i]);
        fprintf(stderr, "== %d OpenMP thread(s)\n", counts[i]);
        run_all();
    }
    TEST_DONE();
}

static void run_all(void) {
    const mt_kernels *R = mt_kernels_ref(), *O = mt_kernels_opt();
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
        R->act_bwd(yr, dy, x, n, (mt_kact)k);
        O->act_bwd(yo, dy, x, n, (mt_kact)k);
        snprintf(what, sizeof what, "act_bwd kind %d", k);
        close_(what, yo, yr, n);
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
