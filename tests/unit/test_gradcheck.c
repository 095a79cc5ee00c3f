// Finite-difference checks of every ref kernel's backward: L = sum(r * f(x)) for a fixed random
// r, analytic dL/dx from the backward kernel vs central differences (h = 1e-2 on small tensors,
// L summed in double). Checked elementwise: |analytic - numeric| <= 2e-3 * max|analytic| + 1e-2 *
// |numeric|. Attention is checked with a padding mask and with dropout on (the backward must
// apply the forward's mask).
#include "core/rng.h"
#include "kernels/kernels.h"
#include "test_util.h"

static uint64_t g_idx;
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * mt_rng_uniform(77, 0, 0, g_idx++) - 1.0f);
}

typedef double (*loss_fn)(void *ctx);

// Compares grad (analytic) with central differences of fn over every element of x.
static void gradcheck(const char *what, float *x, const float *grad, size_t n, loss_fn fn, void *ctx) {
    const float h = 1e-2f;
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs((double)grad[i]));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float old = x[i];
        x[i] = old + h;
        double lp = fn(ctx);
        x[i] = old - h;
        double lm = fn(ctx);
        x[i] = old;
        double num = (lp - lm) / (2.0 * h), d = fabs(num - grad[i]);
        if (!(d <= 2e-3 * gmax + 1e-2 * fabs(num))) bad++; // NaN-safe
        worst = mt_test_worst(worst, d); // a NaN sticks in the report
    }
    fprintf(stderr, "  %-40s n=%-5zu max|grad|=%.3e max|diff|=%.3e %s\n", what, n, gmax, worst, bad ? "MISMATCH" : "ok");
    if (bad) mt_test_failures++;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// ---- linear ----
typedef struct { float *x, *w, *b, *y, *r; int N, IN, OUT; } lin_ctx;
static double lin_loss(void *p) {
    lin_ctx *c = p;
    mt_kernels_ref()->linear_fwd(c->y, c->x, c->w, c->b, c->N, c->IN, c->OUT);
    return dot(c->y, c->r, (size_t)c->N * c->OUT);
}

// ---- layernorm ----
typedef struct { float *x, *w, *b, *y, *r, mean[8], rstd[8]; int N, C; } ln_ctx;
static double ln_loss(void *p) {
    ln_ctx *c = p;
    mt_kernels_ref()->layernorm_fwd(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->y, c->r, (size_t)c->N * c->C);
}

// ---- activation ----
typedef struct { float *x, *y, *r; size_t n; mt_kact k; } act_ctx;
static double act_loss(void *p) {
    act_ctx *c = p;
    mt_kernels_ref()->act_fwd(c->y, c->x, c->n, c->k);
    return dot(c->y, c->r, c->n);
}

// ---- attention ----
typedef struct { float *qkv, *out, *probs, *scr, *r; int32_t *mask; mt_mask_mode mode; int B, T, NH, HS; mt_dropout_site d; } att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    mt_kernels_ref()->attention_fwd(c->out, c->probs, c->scr, c->qkv, c->mask, c->mode, c->B, c->T, c->NH, c->HS,
                                    c->NH, 0, &c->d);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->NH * c->HS);
}

// ---- cross-entropy ----
typedef struct { float *logits, *probs, *w; int32_t *y; int N, C; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    return mt_ce_fwd(c->probs, c->logits, c->y, c->w, c->N, c->C);
}

// ---- bias-dropout-add ----
typedef struct { float *res, *x, *bias, *y, *r; size_t n; int C; mt_dropout_site d; } bda_ctx;
static double bda_loss(void *p) {
    bda_ctx *c = p;
    mt_kernels_ref()->bias_dropout_add_fwd(c->y, c->res, c->x, c->bias, c->n, c->C, &c->d);
    return dot(c->y, c->r, c->n);
}

int main(void) {
    const mt_kernels *K = mt_kernels_ref();
    { // linear
        enum { N = 5, IN = 7, OUT = 6 };
        float x[N * IN], w[OUT * IN], b[OUT], y[N * OUT], r[N * OUT], dx[N * IN], dw[OUT * IN] = {0}, db[OUT] = {0};
        fill(x, N * IN, 1); fill(w, OUT * IN, 1); fill(b, OUT, 1); fill(r, N * OUT, 1);
        lin_ctx c = {x, w, b, y, r, N, IN, OUT};
        K->linear_bwd(dx, dw, db, r, x, w, N, IN, OUT);
        gradcheck("linear dinp", x, dx, N * IN, lin_loss, &c);
        gradcheck("linear dw", w, dw, OUT * IN, lin_loss, &c);
        gradcheck("linear db", b, db, OUT, lin_loss, &c);
    }
    { // layernorm
        enum { N = 4, C = 9 };
        ln_ctx c;
        float x[N * C], w[C], b[C], y[N * C], r[N * C], dx[N * C] = {0}, dw[C] = {0}, db[C] = {0};
        fill(x, N * C, 2); fill(w, C, 1); fill(b, C, 1); fill(r, N * C, 1);
        c.x = x; c.w = w; c.b = b; c.y = y; c.r = r; c.N = N; c.C = C;
        ln_loss(&c);
        K->layernorm_bwd(dx, dw, db, r, x, w, c.mean, c.rstd, N, C);
        gradcheck("layernorm dinp", x, dx, N * C, ln_loss, &c);
        gradcheck("layernorm dw", w, dw, C, ln_loss, &c);
        gradcheck("layernorm db", b, db, C, ln_loss, &c);
    }
    for (int k = 0; k <= MT_KACT_TANH; k++) { // activations (relu: keep away from the kink)
        enum { n = 40 };
        float x[n], y[n], r[n], dx[n];
        fill(x, n, 3);
        for (int i = 0; i < n; i++)
            if (fabsf(x[i]) < 0.05f) x[i] = 0.3f;
        fill(r, n, 1);
        act_ctx c = {x, y, r, n, (mt_kact)k};
        K->act_bwd(dx, r, x, n, (mt_kact)k);
        char what[48];
        snprintf(what, sizeof what, "activation kind %d", k);
        gradcheck(what, x, dx, n, act_loss, &c);
    }
    for (int variant = 0; variant < 3; variant++) { // attention: padding mask, dropout, HF mask
        int drop = variant == 1;
        mt_mask_mode mode = variant == 2 ? MT_MASK_KEYS_ADD : MT_MASK_MEGATRON;
        enum { B = 2, T = 5, NH = 2, HS = 3, NQ = B * T * 3 * NH * HS, NO = B * T * NH * HS, NP = B * NH * T * T };
        float qkv[NQ], out[NO], probs[NP], scr[3 * NP], r[NO], dq[NQ];
        int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        fill(qkv, NQ, 1.5f); fill(r, NO, 1);
        att_ctx c = {qkv, out, probs, scr, r, mask, mode, B, T, NH, HS, {drop ? 0.3f : 0.0f, 3, 1, 9}};
        att_loss(&c);
        K->attention_bwd(dq, scr, r, qkv, probs, mask, mode, B, T, NH, HS, NH, 0, &c.d);
        const char *names[3] = {"attention dqkv (mask)", "attention dqkv (mask, dropout 0.3)", "attention dqkv (HF key mask)"};
        gradcheck(names[variant], qkv, dq, NQ, att_loss, &c);
    }
    { // cross-entropy with weights (0 = ignored row)
        enum { N = 4, C = 5 };
        float lg[N * C], pr[N * C], w[N] = {1.0f, 0.0f, 2.5f, 0.7f}, d[N * C];
        int32_t y[N] = {0, 4, 3, 1};
        fill(lg, N * C, 2);
        ce_ctx c = {lg, pr, w, y, N, C};
        ce_loss(&c);
        mt_ce_bwd(d, pr, y, w, N, C, 1.0f);
        gradcheck("cross-entropy dlogits", lg, d, N * C, ce_loss, &c);
    }
    { // bias-dropout-add
        enum { n = 48, C = 8 };
        float res[n], x[n], bias[C], y[n], r[n], dx[n], db[C] = {0};
        fill(res, n, 1); fill(x, n, 1); fill(bias, C, 1); fill(r, n, 1);
        bda_ctx c = {res, x, bias, y, r, n, C, {0.25f, 1, 2, 3}};
        K->dropout_bwd(dx, r, n, 0, &c.d);
        for (int i = 0; i < n; i++) db[i % C] += dx[i];
        gradcheck("bias-dropout-add dinp", x, dx, n, bda_loss, &c);
        gradcheck("bias-dropout-add dbias", bias, db, C, bda_loss, &c);
    }
    TEST_DONE();
}
