// bf16 mixed precision kernels (kernels/bf16.h):
//  - the fp32 -> bf16 rounding is round-to-nearest-even with PyTorch's special cases;
//  - the emulated linear kernels equal the fp32 reference kernels run on bf16-rounded inputs
//    (products of bf16 values are exact in fp32, so only summation order differs: fp32 tolerance);
//  - the hardware (oneDNN) kernels, where this CPU has AVX512-BF16/AMX-BF16, equal the emulated
//    ones to fp32 summation-order tolerance (near-bitwise), for every transpose of mt_gemm_bf16;
//  - the bf16 weight copies the hardware kernels keep between calls (kernels.h weights version)
//    are never stale: a model whose weights were written through any accessor, or moved by an
//    optimizer step, computes bitwise what a fresh model with those weights computes.
// Run with 2, 1 and 3 OpenMP threads.
#include <omp.h>

#include "core/rng.h"
#include "kernels/bf16.h"
#include "model/model.h"
#include "model/model_kernels.h"
#include "model/optim.h"
#include "train/session.h"
#include "test_util.h"

static uint64_t g_idx;
static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * mt_rng_uniform(37, 0, 0, g_idx++) - 1.0f);
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
static float bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void check_rounding(void) {
    struct { uint32_t in; uint16_t want; } cases[] = {
        {0x3f800000u, 0x3f80}, // 1.0 exact
        {0x3f808000u, 0x3f80}, // tie between 0x3f80 and 0x3f81: to even (down)
        {0x3f818000u, 0x3f82}, // tie between 0x3f81 and 0x3f82: to even (up)
        {0x3f808001u, 0x3f81}, // just above the tie: up
        {0x3f807fffu, 0x3f80}, // just below: down
        {0xbf808001u, 0xbf81}, // negative values round by magnitude
        {0x80000000u, 0x8000}, // -0 keeps its sign
        {0x7f7fffffu, 0x7f80}, // FLT_MAX rounds to +inf, as torch does
        {0x7f800000u, 0x7f80}, // +inf
        {0xff800000u, 0xff80}, // -inf
        {0x00000001u, 0x0000}, // the smallest subnormal rounds to 0
        {0x00008000u, 0x0000}, // subnormal tie: to even
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = mt_bf16_from_f32(bits(cases[i].in));
        CHECK_MSG(got == cases[i].want, "bf16(0x%08x) = 0x%04x, want 0x%04x", cases[i].in, got, cases[i].want);
    }
    uint16_t nan = mt_bf16_from_f32(bits(0x7fc00001u)), snan = mt_bf16_from_f32(bits(0x7f800001u));
    CHECK_MSG((nan & 0x7f80) == 0x7f80 && (nan & 0x7f), "NaN stays NaN (0x%04x)", nan);
    CHECK_MSG((snan & 0x7f80) == 0x7f80 && (snan & 0x7f), "a NaN with only low bits stays NaN (0x%04x)", snan);
    // relative error of a rounding is at most 2^-8 (unit roundoff of an 8-bit significand incl. the implicit bit)
    float *x = rnd(10000, 100), *r = malloc(10000 * 4);
    mt_bf16_round(r, x, 10000);
    double worst = 0;
    for (int i = 0; i < 10000; i++) worst = mt_test_worst(worst, fabs((double)r[i] - x[i]) / fabs((double)x[i]));
    CHECK_MSG(worst <= 1.0 / 256, "bf16 rounding relative error %.3g > 2^-8", worst);
    free(x);
    free(r);
}

// The fp32 reference on pre-rounded copies of every GEMM input is what the bf16 kernels promise.
static void check_linear(const mt_kernels *K, const char *name) {
    const mt_kernels *R = mt_kernels_ref();
    const int N = 37, IN = 70, OUT = 45;
    float *x = rnd((size_t)N * IN, 1), *w = rnd((size_t)OUT * IN, 0.5f), *b = rnd(OUT, 0.5f);
    float *xr = malloc((size_t)N * IN * 4), *wr = malloc((size_t)OUT * IN * 4);
    mt_bf16_round(xr, x, (size_t)N * IN);
    mt_bf16_round(wr, w, (size_t)OUT * IN);
    float *yr = malloc((size_t)N * OUT * 4), *yk = malloc((size_t)N * OUT * 4);
    char what[96];
    R->linear_fwd(yr, xr, wr, b, N, IN, OUT);
    K->linear_fwd(yk, x, w, b, N, IN, OUT);
    snprintf(what, sizeof what, "%s linear_fwd", name);
    close_(what, yk, yr, (size_t)N * OUT);
    R->linear_fwd(yr, xr, wr, NULL, N, IN, OUT);
    K->linear_fwd(yk, x, w, NULL, N, IN, OUT);
    snprintf(what, sizeof what, "%s linear_fwd no bias", name);
    close_(what, yk, yr, (size_t)N * OUT);

    float *dy = rnd((size_t)N * OUT, 1), *dyr = malloc((size_t)N * OUT * 4);
    mt_bf16_round(dyr, dy, (size_t)N * OUT);
    float *dxr = malloc((size_t)N * IN * 4), *dxk = malloc((size_t)N * IN * 4), *junk = rnd((size_t)OUT * IN, 1);
    R->linear_bwd(dxr, junk, NULL, dyr, xr, wr, N, IN, OUT);
    float *junk2 = dup(junk, (size_t)OUT * IN);
    K->linear_bwd(dxk, junk2, NULL, dy, x, w, N, IN, OUT);
    snprintf(what, sizeof what, "%s linear_bwd dinp", name);
    close_(what, dxk, dxr, (size_t)N * IN);
    free(dxr); free(dxk); free(junk); free(junk2);
    // dw += dout^T @ inp from rounded inputs; db += the fp32 column sums of the unrounded gradient
    float *dw0 = rnd((size_t)OUT * IN, 1), *db0 = rnd(OUT, 1);
    float *dwe = dup(dw0, (size_t)OUT * IN), *dbe = dup(db0, OUT);
    R->linear_bwd(NULL, dwe, NULL, dyr, xr, wr, N, IN, OUT);
    for (int o = 0; o < OUT; o++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += dy[(size_t)i * OUT + o];
        dbe[o] += (float)s;
    }
    K->linear_bwd(NULL, dw0, db0, dy, x, w, N, IN, OUT);
    snprintf(what, sizeof what, "%s linear_bwd dw (accumulated)", name);
    close_(what, dw0, dwe, (size_t)OUT * IN);
    snprintf(what, sizeof what, "%s linear_bwd db (accumulated, fp32)", name);
    close_(what, db0, dbe, OUT);
    free(dw0); free(db0); free(dwe); free(dbe);

    // the forward-only fusions (the hardware table's run in oneDNN's epilogue) against the fp32
    // reference's separate kernels on the rounded inputs
    for (int a = 0; a <= MT_KACT_TANH && K->linear_act_fwd; a++) {
        R->linear_fwd(yr, xr, wr, b, N, IN, OUT);
        R->act_fwd(yr, yr, (size_t)N * OUT, (mt_kact)a);
        K->linear_act_fwd(yk, x, w, b, N, IN, OUT, (mt_kact)a);
        snprintf(what, sizeof what, "%s linear_act_fwd act %d", name, a);
        close_(what, yk, yr, (size_t)N * OUT);
    }
    if (K->linear_residual_fwd) {
        float *res = rnd((size_t)N * OUT, 2);
        R->linear_fwd(yr, xr, wr, NULL, N, IN, OUT);
        R->bias_dropout_add_fwd(yr, res, yr, b, (size_t)N * OUT, OUT, NULL);
        K->linear_residual_fwd(yk, res, x, w, b, N, IN, OUT);
        snprintf(what, sizeof what, "%s linear_residual_fwd", name);
        close_(what, yk, yr, (size_t)N * OUT);
        free(res);
    }
    free(x); free(w); free(b); free(xr); free(wr); free(yr); free(yk); free(dy); free(dyr);
}

// every transpose and both betas of the raw GEMM, hardware against emulated
static void check_gemm_hw(void) {
    const int M = 29, N = 41, K = 67;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta = 0; beta < 2; beta++) {
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                float *A = rnd((size_t)(ta ? K : M) * lda, 1), *B = rnd((size_t)(tb ? N : K) * ldb, 1);
                float *C0 = rnd((size_t)M * ldc, 1), *Ce = dup(C0, (size_t)M * ldc), *Ch = dup(C0, (size_t)M * ldc);
                mt_gemm_bf16(0, ta, tb, M, N, K, A, lda, B, ldb, (float)beta, Ce, ldc);
                mt_gemm_bf16(1, ta, tb, M, N, K, A, lda, B, ldb, (float)beta, Ch, ldc);
                char what[96];
                snprintf(what, sizeof what, "gemm hw vs emulated ta=%d tb=%d beta=%d", ta, tb, beta);
                close_(what, Ch, Ce, (size_t)M * ldc); // padding columns must be untouched too
                // and the emulated one against a double-precision sum of rounded products
                double worst = 0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = beta ? C0[(size_t)i * ldc + j] : 0, mag = fabs(s);
                        for (int k = 0; k < K; k++) {
                            float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                            float bb = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                            double p = (double)mt_bf16_to_f32(mt_bf16_from_f32(a)) * mt_bf16_to_f32(mt_bf16_from_f32(bb));
                            s += p;
                            mag += fabs(p);
                        }
                        worst = mt_test_worst(worst, fabs(Ce[(size_t)i * ldc + j] - s) / mag);
                    }
                CHECK_MSG(worst < 1e-5, "emulated gemm ta=%d tb=%d: error %.3g of the sum of |products|", ta, tb,
                          worst);
                free(A); free(B); free(C0); free(Ce); free(Ch);
            }
}

// trainer.precision -> kernel table: 32 and 16 are fp32 (NULL = default table); bf16 takes the
// hardware table where the CPU has bf16, else fp32; MEGATUNE_BF16 overrides bf16 only.
static void check_precision_choice(int hw) {
    unsetenv("MEGATUNE_BF16");
    CHECK(mt_session_precision_kernels("32") == NULL);
    CHECK(mt_session_precision_kernels("16") == NULL);
    CHECK(mt_session_precision_kernels("16-mixed") == NULL);
    const char *mixed[] = {"bf16", "bf16-mixed"};
    for (int i = 0; i < 2; i++) {
        const mt_kernels *k = mt_session_precision_kernels(mixed[i]);
        CHECK_MSG(hw ? k == mt_kernels_bf16() : k == NULL, "precision %s chose %s", mixed[i], k ? k->name : "fp32");
    }
    setenv("MEGATUNE_BF16", "emulate", 1);
    CHECK(mt_session_precision_kernels("16") == NULL);
    CHECK(mt_session_precision_kernels("bf16") == mt_kernels_bf16emu());
    CHECK(mt_session_precision_kernels("32") == NULL);
    setenv("MEGATUNE_BF16", "off", 1);
    CHECK(mt_session_precision_kernels("bf16") == NULL);
    CHECK(mt_kernels_bf16() == NULL);
    unsetenv("MEGATUNE_BF16");
}

// --- attention: the per-head products in bf16 (autocast's matmuls), softmax in fp32 ---
// emulated against fp32: a bf16-sized difference, not zero (it rounds); hardware against emulated:
// the same roundings, so only fp32 summation order and the rare bf16 rounding it flips
static void check_attention(int hw) {
    const int B = 2, T = 13, NH = 3, HS = 8, C = NH * HS, C3 = 3 * C;
    const size_t N = (size_t)B * T, TT = (size_t)T * T;
    const mt_kernels *O = mt_kernels_opt(), *E = mt_kernels_bf16emu(), *H = hw ? mt_kernels_bf16() : NULL;
    float *qkv = rnd(N * C3, 1.5f), *dout = rnd(N * C, 1.0f);
    int32_t mask[B * T];
    for (int i = 0; i < B * T; i++) mask[i] = (i % T) < T - 3 * (i / T); // row 1 has 3 padded keys
    for (int mode = 0; mode < 2; mode++)
        for (int dr = 0; dr < 2; dr++)
            for (int keep = 0; keep < 2; keep++) {
                mt_dropout_site d = {dr ? 0.2f : 0.0f, 9, 1, 4};
                const mt_kernels *tabs[3] = {O, E, H};
                float *out[3], *dq[3];
                for (int t = 0; t < 3; t++) {
                    out[t] = calloc(N * C, 4), dq[t] = calloc(N * C3, 4);
                    if (!tabs[t]) continue;
                    float *probs = keep ? calloc((size_t)B * NH * TT, 4) : NULL;
                    float *scr = calloc(MT_ATT_SCRATCH(B, NH, T), 4);
                    tabs[t]->attention_fwd(out[t], probs, scr, qkv, mask, (mt_mask_mode)mode, B, T, NH, HS, NH + 2, 1, &d);
                    tabs[t]->attention_bwd(dq[t], scr, dout, qkv, probs, mask, (mt_mask_mode)mode, B, T, NH, HS, NH + 2,
                                           1, &d);
                    free(probs);
                    free(scr);
                }
                double so = maxabs(out[0], N * C), sd = maxabs(dq[0], N * C3);
                double eo = mt_test_maxdiff(out[1], out[0], N * C) / so, ed = mt_test_maxdiff(dq[1], dq[0], N * C3) / sd;
                fprintf(stderr, "  attention mode %d dropout %d probs %s: |emu-fp32| out %.2e dqkv %.2e", mode, dr,
                        keep ? "kept" : "recomputed", eo, ed);
                CHECK_MSG(eo < 2e-2 && ed < 2e-2 && eo > 1e-5 && ed > 1e-5, "emulated bf16 attention vs fp32");
                if (H) {
                    double ho = mt_test_maxdiff(out[2], out[1], N * C) / so, hd = mt_test_maxdiff(dq[2], dq[1], N * C3) / sd;
                    fprintf(stderr, "; |hw-emu| out %.2e dqkv %.2e", ho, hd);
                    CHECK_MSG(ho < 1e-4 && hd < 1e-4, "hardware bf16 attention vs emulated");
                }
                fputc('\n', stderr);
                for (int t = 0; t < 3; t++) free(out[t]), free(dq[t]);
            }
    free(qkv);
    free(dout);
}

// More product shapes than the oneDNN primitive cache holds (dynamic padding makes many): evicted
// primitives are destroyed and remade, and results stay right (ASan sees any use after free).
static void check_prim_eviction(int hw) {
    const int K = 7, N = 5, MMAX = 300;
    float *A = rnd((size_t)MMAX * K, 1), *Bm = rnd((size_t)N * K, 1), *C1 = malloc((size_t)MMAX * N * 4),
          *C2 = malloc((size_t)MMAX * N * 4), *b = rnd(N, 1);
    int bad = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int M = 1; M <= MMAX; M++) {
            if (hw) {
                mt_gemm_bf16(1, 0, 1, M, N, K, A, K, Bm, K, 0.0f, C1, N);
                mt_gemm_bf16(0, 0, 1, M, N, K, A, K, Bm, K, 0.0f, C2, N);
                bad += mt_test_maxdiff(C1, C2, (size_t)M * N) > 1e-5 * fmax(maxabs(C2, (size_t)M * N), 1e-6);
            }
            if (mt_kernels_opt_dnnl()) {
                mt_kernels_opt_dnnl()->linear_fwd(C1, A, Bm, b, M, K, N);
                mt_kernels_ref()->linear_fwd(C2, A, Bm, b, M, K, N);
                bad += mt_test_maxdiff(C1, C2, (size_t)M * N) > 1e-5 * fmax(maxabs(C2, (size_t)M * N), 1e-6);
            }
        }
    CHECK_MSG(bad == 0, "%d of the products past the primitive cache's size were wrong", bad);
    free(A); free(Bm); free(C1); free(C2); free(b);
}

// a 64-wide model over a 100-token vocab with a QA head, as the model checks below use it
static void tiny_config(mt_model_config *c, int layers, int heads, int T, float dropout) {
    mt_model_config_defaults(c);
    c->vocab_size = 100;
    c->hidden_size = 64;
    c->num_layers = layers;
    c->num_attention_heads = heads;
    c->max_position_embeddings = T;
    c->hidden_dropout = c->attention_dropout = dropout;
    c->head = MT_HEAD_QA;
}

// --- the weight cache ---
static void small_model(mt_model **m) {
    mt_model_config c;
    tiny_config(&c, 2, 2, 16, 0.0f);
    *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, m));
    if (*m) mt_model_set_kernels(*m, mt_kernels_bf16());
}
static void eval_logits(mt_model *m, const mt_batch *b, float *out, size_t n) {
    CHECK_OK(mt_model_forward(m, b, 0, 1, 0, NULL));
    size_t nl = 0;
    const float *l = mt_model_logits(m, &nl);
    CHECK(l && nl == n);
    if (l && nl == n) memcpy(out, l, n * sizeof *out);
}
// m's eval logits must equal those of a new model given m's current weights (which converts afresh)
static void check_fresh(mt_model *m, const mt_batch *b, const char *what) {
    size_t n = (size_t)b->B * b->T * 2, tot = mt_model_params(m)->total;
    float *got = malloc(n * 4), *want = malloc(n * 4);
    eval_logits(m, b, got, n);
    mt_model *f;
    small_model(&f);
    if (f) {
        memcpy(mt_model_param_data(f), mt_model_param_data(m), tot * 4);
        eval_logits(f, b, want, n);
        CHECK_MSG(!memcmp(got, want, n * 4), "%s: logits differ from a fresh model's with the same weights", what);
    }
    mt_model_free(f);
    free(got);
    free(want);
}
static void check_weight_cache(void) {
    mt_model *m;
    small_model(&m);
    if (!m) return;
    mt_model_init_weights(m, 3);
    enum { B = 2, T = 8 };
    int32_t ids[B * T], mask[B * T], st[B] = {1, 2}, en[B] = {3, 4};
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37) % 100, mask[i] = 1;
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask, .start_positions = st, .end_positions = en};
    float first[B * T * 2], again[B * T * 2];
    eval_logits(m, &b, first, B * T * 2);
    eval_logits(m, &b, again, B * T * 2); // from the cached copies
    CHECK_MSG(!memcmp(first, again, sizeof first), "a second eval forward changed the logits");
    check_fresh(m, &b, "after two eval forwards");
    // one weight changed through mt_model_param (as .nemo loads write), right after a cached forward
    const mt_param_table *t = mt_model_params(m);
    eval_logits(m, &b, again, B * T * 2);
    for (int i = 0; i < t->count; i++)
        if (t->params[i].role == MT_ROLE_FC1_W) mt_model_param(m, i)[5] += 0.5f;
    eval_logits(m, &b, again, B * T * 2);
    CHECK_MSG(memcmp(first, again, sizeof first), "a changed weight did not change the logits (stale bf16 copy)");
    check_fresh(m, &b, "after mt_model_param");
    // and through mt_model_param_data (as checkpoint loads write)
    eval_logits(m, &b, again, B * T * 2);
    for (int i = 0; i < t->count; i++)
        if (t->params[i].role == MT_ROLE_QKV_W) mt_model_param_data(m)[t->params[i].offset + 3] -= 0.5f;
    check_fresh(m, &b, "after mt_model_param_data");
    // training steps (forward, backward, optimizer on mt_model_param_data), evaluating in between
    mt_optim_config oc;
    mt_optim_config_default(&oc, MT_OPTIM_ADAMW);
    mt_optimizer *o = NULL;
    CHECK_OK(mt_optimizer_create(&oc, t, &o));
    mt_model_zero_grad(m);
    for (int s = 0; s < 2 && o; s++) {
        float loss;
        CHECK_OK(mt_model_forward(m, &b, 1, 5, (uint64_t)s, &loss));
        CHECK_OK(mt_model_backward(m, 1.0f));
        mt_optimizer_step_fused(o, mt_model_param_data(m), mt_model_grad_data(m), 1e-2f, 1.0f);
        check_fresh(m, &b, "after an optimizer step");
    }
    mt_optimizer_free(o);
    mt_model_free(m);
}

// --- the hand-off and packed weights (kernels.h): a prediction forward passes pre-LN's norms, QKV,
// the attention output and FC1's activation between products in bf16 alone, and reads the weights
// in the library's packed layout; the logits must equal, bit for bit, those of the same table
// without either (every value converted by the reading product, weights in the plain layout), and
// both must have run. Pre-LN with erf GELU (the epilogue's activation); post-LN with NeMo's onnx GELU (no
// epilogue: fp32 first, then converted); T = 512 with 16 heads, whose attention runs one batch row
// at a time (the chunks read and write inside the hand-off).
static void check_handoff_case(mt_arch arch, mt_gelu_kind gelu, int T, int NH, mt_head_kind head) {
    mt_model_config c;
    tiny_config(&c, 2, NH, T, 0.0f);
    c.arch = arch;
    c.gelu = gelu;
    c.head = head;
    c.num_classes = 3;
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 11);
    enum { B = 3 };
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *mask = malloc((size_t)B * T * sizeof *mask);
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 5) % 100, mask[i] = i % T < T - 3 * (i / T); // padded rows
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
    static mt_kernels plain;
    plain = *mt_kernels_bf16();
    plain.handoff_begin = NULL, plain.handoff_end = NULL;
    size_t n = 0;
    unsigned long w0, r0, p0, w1, r1, p1;
    mt_model_set_kernels(m, &plain);
    mt_model_set_weight_copies(m, 0); // (no weights version: nothing cached, nothing packed)
    CHECK_OK(mt_model_forward(m, &b, 0, 1, 0, NULL));
    const float *l = mt_model_logits(m, &n);
    float *want = malloc(n * sizeof *want);
    memcpy(want, l, n * sizeof *want);
    mt_model_set_kernels(m, mt_kernels_bf16());
    mt_model_set_weight_copies(m, 1);
    mt_bf16_handoff_counts(&w0, &r0, &p0);
    CHECK_OK(mt_model_forward(m, &b, 0, 1, 0, NULL));
    mt_bf16_handoff_counts(&w1, &r1, &p1);
    size_t n2 = 0;
    l = mt_model_logits(m, &n2);
    CHECK(n2 == n && n > 0);
    CHECK_MSG(n2 == n && !memcmp(l, want, n * sizeof *want),
              "arch %d gelu %d T %d: logits with the bf16 hand-off differ from converting each operand (max %g)", arch,
              gelu, T, n2 == n ? mt_test_maxdiff(l, want, n) : -1.0);
    // per layer: QKV, the attention output (one write per chunk) and FC1 written; their readers read
    CHECK_MSG(w1 - w0 >= 3 * 2 && r1 - r0 >= 3 * 2, "the hand-off did not run: %lu writes, %lu reads", w1 - w0,
              r1 - r0);
    // (QKV, the attention output, FC1 and FC2 in each layer, and the head's)
    CHECK_MSG(p1 - p0 >= 4 * 2, "%lu weights packed: the encoder's products did not read packed weights", p1 - p0);
    // a second forward under the same weights reads the packed copies as they are
    mt_bf16_handoff_counts(&w0, &r0, &p0);
    CHECK_OK(mt_model_forward(m, &b, 0, 1, 0, NULL));
    mt_bf16_handoff_counts(&w1, &r1, &p1);
    l = mt_model_logits(m, &n2);
    CHECK_MSG(n2 == n && !memcmp(l, want, n * sizeof *want), "the second forward on packed weights differs");
    CHECK_MSG(p1 == p0, "a second forward under the same weights packed %lu weights again", p1 - p0);
    fprintf(stderr, "hand-off arch %d gelu %d T %d: %lu writes, %lu reads per forward\n", arch, gelu, T, w1 - w0,
            r1 - r0);
    free(want);
    free(ids);
    free(mask);
    mt_model_free(m);
}
static void check_handoff(void) {
    check_handoff_case(MT_ARCH_MEGATRON, MT_GELU_ERF, 16, 2, MT_HEAD_QA);
    check_handoff_case(MT_ARCH_BERT, MT_GELU_ONNX, 16, 4, MT_HEAD_SEQUENCE_CLASSIFIER);
    check_handoff_case(MT_ARCH_MEGATRON, MT_GELU_TANH, 512, 16, MT_HEAD_TOKEN_CLASSIFIER);
}

// --- a bf16 training step keeps QKV and the attention outputs in bf16 alone (mt_model_set_bf16_keep):
// the loss, every gradient and, with the step in backward, every updated weight must equal those of
// the same model keeping them in fp32 too, bit for bit, over two steps; and backward must have read
// them from the bf16 copy. Pre-LN and post-LN; stored probabilities, selective recomputation (with
// FC1), uniform checkpointing (its forward again in backward writes them again), attention dropout.
static void check_keep_case(mt_arch arch, int recompute, int ckpt, int in_backward) {
    mt_model_config c;
    tiny_config(&c, 3, 4, 16, 0.1f);
    c.arch = arch;
    enum { B = 3, T = 16 };
    int32_t ids[B * T], mask[B * T], st[B] = {1, 2, 5}, en[B] = {3, 4, 9};
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 5) % 100, mask[i] = i % T < T - 3 * (i / T);
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask, .start_positions = st, .end_positions = en};
    mt_model *m[2] = {NULL, NULL};
    mt_optimizer *o[2] = {NULL, NULL};
    mt_optim_config oc;
    mt_optim_config_default(&oc, MT_OPTIM_ADAMW);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(mt_model_create(&c, NULL, &m[k]));
        if (!m[k]) goto done;
        mt_model_set_kernels(m[k], mt_kernels_bf16());
        mt_model_set_bf16_keep(m[k], k); // m[0] keeps them in fp32 too
        mt_model_set_recompute(m[k], recompute);
        mt_model_set_activation_checkpoint(m[k], ckpt);
        mt_model_init_weights(m[k], 21);
        CHECK_OK(mt_optimizer_create(&oc, mt_model_params(m[k]), &o[k]));
        if (!o[k]) goto done;
    }
    const size_t tot = mt_model_params(m[0])->total;
    for (int s = 0; s < 2; s++) {
        float loss[2];
        unsigned long w0, r0, p0, w1, r1, p1;
        for (int k = 0; k < 2; k++) {
            mt_model_zero_grad(m[k]);
            mt_bf16_handoff_counts(&w0, &r0, &p0);
            CHECK_OK(mt_model_forward(m[k], &b, 1, 7, (uint64_t)s, &loss[k]));
            if (in_backward) {
                CHECK_OK(mt_model_backward_step(m[k], o[k], 1e-2f));
            } else {
                CHECK_OK(mt_model_backward(m[k], 1.0f));
                mt_optimizer_step_fused(o[k], mt_model_param_data(m[k]), mt_model_grad_data(m[k]), 1e-2f, 1.0f);
            }
            mt_bf16_handoff_counts(&w1, &r1, &p1);
            // per kept layer: QKV and the attention output written, read by the products after them and in backward
            if (k == 1)
                CHECK_MSG(w1 - w0 >= 2 * (unsigned long)c.num_layers && r1 - r0 >= 4 * (unsigned long)c.num_layers,
                          "arch %d recompute %d ckpt %d: the bf16 keep did not run (%lu writes, %lu reads)", arch,
                          recompute, ckpt, w1 - w0, r1 - r0);
            else
                CHECK_MSG(w1 == w0, "keep off: %lu hand-off writes", w1 - w0);
        }
        CHECK_MSG(!memcmp(&loss[0], &loss[1], sizeof loss[0]), "arch %d recompute %d ckpt %d step %d: loss %.9g vs %.9g",
                  arch, recompute, ckpt, s, loss[0], loss[1]);
        if (!in_backward)
            CHECK_MSG(!memcmp(mt_model_grad_data(m[0]), mt_model_grad_data(m[1]), tot * sizeof(float)),
                      "arch %d recompute %d ckpt %d step %d: gradients differ (max %g)", arch, recompute, ckpt, s,
                      mt_test_maxdiff(mt_model_grad_data(m[0]), mt_model_grad_data(m[1]), tot));
        CHECK_MSG(!memcmp(mt_model_param_data(m[0]), mt_model_param_data(m[1]), tot * sizeof(float)),
                  "arch %d recompute %d ckpt %d in_backward %d step %d: weights differ (max %g)", arch, recompute, ckpt,
                  in_backward, s, mt_test_maxdiff(mt_model_param_data(m[0]), mt_model_param_data(m[1]), tot));
    }
    CHECK_MSG(mt_model_activation_bytes(m[1]) < mt_model_activation_bytes(m[0]),
              "keeping them in bf16 did not shrink the activations (%zu vs %zu bytes)", mt_model_activation_bytes(m[1]),
              mt_model_activation_bytes(m[0]));
done:
    for (int k = 0; k < 2; k++) {
        mt_optimizer_free(o[k]);
        mt_model_free(m[k]);
    }
}
static void check_keep(void) {
    check_keep_case(MT_ARCH_MEGATRON, 0, 0, 0);
    check_keep_case(MT_ARCH_MEGATRON, 2, 0, 1);
    check_keep_case(MT_ARCH_MEGATRON, 3, 0, 1); // h recomputed from the kept bf16 attention output
    check_keep_case(MT_ARCH_MEGATRON, 1, 2, 0);
    check_keep_case(MT_ARCH_BERT, 1, 0, 1);
    check_keep_case(MT_ARCH_BERT, 0, 99, 0);
}

int main(void) {
    check_rounding();
    // the test sets MEGATUNE_BF16 itself for each mode it checks; one left in the caller's
    // environment (off, emulate) would hide the hardware path from the detection below
    unsetenv("MEGATUNE_BF16");
    const char *why = NULL;
    int hw = mt_bf16_available(&why);
    if (!hw) fprintf(stderr, "note: bf16 hardware path not tested here (%s); emulated path tested\n", why);
    CHECK_MSG(hw || !mt_test_required("MEGATUNE_REQUIRE_BF16_HW"), "MEGATUNE_REQUIRE_BF16_HW is set but %s", why);
    check_precision_choice(hw);
    const int counts[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        omp_set_num_threads(counts[i]);
        fprintf(stderr, "== %d OpenMP thread(s)\n", counts[i]);
        check_linear(mt_kernels_bf16emu(), "bf16emu");
        if (hw) {
            CHECK_MSG(mt_kernels_bf16()->linear_act_fwd && mt_kernels_bf16()->linear_residual_fwd,
                      "the hardware bf16 table has no GEMM epilogues");
            check_linear(mt_kernels_bf16(), "bf16");
            check_gemm_hw();
        }
    }
    if (hw) check_weight_cache();
    if (hw) check_handoff();
    if (hw) check_keep();
    check_attention(hw);
    check_prim_eviction(hw);
    TEST_DONE();
}
