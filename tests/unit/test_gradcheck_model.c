// The whole model under dropout: finite differences of the training loss (dropout on in every
// site, same seed and step for each evaluation, so the mask is fixed) against mt_model_backward,
// for pre-LN and post-LN. This catches a backward that does not reuse the forward's masks. Also:
// dropout determinism (same seed/step -> same loss; new step -> new loss; eval -> no dropout).
// Two checks per parameter tensor:
//  1. Directional derivatives over the WHOLE tensor, along the analytic gradient's direction and
//     along a random +-1 direction (both unit length): the numeric slope is a central difference
//     with Richardson extrapolation, (4 D(h/2) - D(h)) / 3 with D(h) = (L(w+hv) - L(w-hv)) / 2h, so
//     the truncation error is O(h^4) and what remains is the fp32 rounding of the loss (~1e-7 |L|
//     per evaluation, i.e. ~1e-7 |L| / h on the slope). Tolerance: 1e-3 relative + 3 ulps of the
//     loss over the step (measured worst: 0.25 x the tolerance on Zen 4; the 1% error: 6-9 x). A gradient that is wrong by 1% in any tensor (a scaled bias grad, a missing term)
//     fails; the test proves it by scaling one bias gradient by 1.01 and expecting the check to fail.
//  2. Per element, 6 elements per tensor (the largest gradient and 5 spread over it), h = 3e-3
//     (larger steps cross the head's ReLU kinks): |analytic - numeric| <= 1e-2 |numeric| +
//     1e-3 max|analytic of tensor| + 2e-5: catches errors confined to single elements.
#include "core/rng.h"
#include "model/model.h"
#include "test_util.h"

// Directional check of parameter tensor i along the gradient (dir 0) or a random +-1 direction
// (dir 1), both of unit length. Returns 0 when the direction is empty (no gradient at all); else
// sets *ratio = |analytic - numeric| / tolerance (> 1 is a mismatch, printed) and *rel.
static int dir_check(mt_model *m, const mt_batch *b, int i, int dir, double *ratio, double *rel) {
    const mt_param *p = &mt_model_params(m)->params[i];
    float *w = mt_model_param(m, i), *g = mt_model_grad(m, i);
    float *v = malloc(p->numel * sizeof *v), *w0 = malloc(p->numel * sizeof *w0);
    memcpy(w0, w, p->numel * sizeof *w);
    double vn = 0;
    for (size_t e = 0; e < p->numel; e++) {
        v[e] = dir == 0 ? g[e] : (mt_rng_uniform(77, (uint32_t)i, 0, e) < 0.5f ? -1.0f : 1.0f);
        vn += (double)v[e] * v[e];
    }
    if (vn == 0) {
        free(v), free(w0);
        return 0;
    }
    double a = 0;
    for (size_t e = 0; e < p->numel; e++) v[e] = (float)(v[e] / sqrt(vn)), a += (double)g[e] * v[e];
    double H = 2e-2, D[2];
    float L0;
    CHECK_OK(mt_model_forward(m, b, 1, 99, 7, &L0));
    for (int r = 0; r < 2; r++, H /= 2) {
        float lp, lm;
        for (size_t e = 0; e < p->numel; e++) w[e] = (float)(w0[e] + H * v[e]);
        CHECK_OK(mt_model_forward(m, b, 1, 99, 7, &lp));
        for (size_t e = 0; e < p->numel; e++) w[e] = (float)(w0[e] - H * v[e]);
        CHECK_OK(mt_model_forward(m, b, 1, 99, 7, &lm));
        D[r] = ((double)lp - lm) / (2 * H);
    }
    memcpy(w, w0, p->numel * sizeof *w);
    free(v), free(w0);
    double num = (4 * D[1] - D[0]) / 3;
    // fp32 rounding of the loss: ~6e-8 |L| per evaluation; 2e-7 |L| (3 ulps) over the smaller step
    double floor_ = 2e-7 * fmax(fabs(L0), 1) / 1e-2;
    *ratio = fabs(a - num) / (1e-3 * fabs(num) + floor_);
    *rel = fabs(a - num) / fmax(fabs(num), 1e-30);
    if (!(*ratio <= 1)) // NaN-safe
        fprintf(stderr, "  MISMATCH %s along %s: analytic %.8g numeric %.8g (%.2f x tolerance)\n", p->name,
                dir == 0 ? "the gradient" : "a random direction", a, num, *ratio);
    return 1;
}

static void check_arch(mt_arch arch, mt_head_kind head, mt_activation act) {
    // a ReLU head has kinks a finite step can cross: only the element checks (small h) then
    const int smooth = act != MT_ACT_RELU;
    mt_model_config c;
    if (arch == MT_ARCH_BERT) mt_model_config_bert_defaults(&c);
    else mt_model_config_defaults(&c);
    c.vocab_size = 50;
    c.hidden_size = 16;
    c.num_layers = 2;
    c.num_attention_heads = 2;
    c.max_position_embeddings = 8;
    c.hidden_dropout = 0.2f;
    c.attention_dropout = 0.2f;
    c.head = head;
    c.num_classes = head == MT_HEAD_QA ? 0 : 3;
    c.head_num_layers = head == MT_HEAD_QA ? 1 : 2;
    c.head_dropout = 0.3f;
    c.head_activation = act;
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 5);
    const mt_param_table *t = mt_model_params(m);
    for (int i = 0; i < t->count; i++) // larger weights so every path carries gradient
        for (size_t e = 0; e < t->params[i].numel; e++)
            mt_model_param(m, i)[e] += 0.3f * (mt_rng_uniform(8, 0, (uint32_t)i, e) - 0.5f);
    enum { B = 2, T = 6 };
    int32_t ids[B * T], types[B * T], mask[B * T], labels[B * T], st[B] = {1, 2}, en[B] = {3, 2};
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 7 + 3) % 50;
        types[i] = i % T >= 3;
        mask[i] = !(i / T == 1 && i % T >= 4);
        labels[i] = i % 3;
    }
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                  .labels = labels, .start_positions = st, .end_positions = en};
    float loss0, loss1, loss_eval;
    mt_model_zero_grad(m);
    CHECK_OK(mt_model_forward(m, &b, 1, 99, 7, &loss0));
    CHECK_OK(mt_model_backward(m, 1.0f));
    CHECK_OK(mt_model_forward(m, &b, 1, 99, 7, &loss1));
    CHECK_MSG(loss0 == loss1, "same seed/step gave %g then %g", loss0, loss1);
    CHECK_OK(mt_model_forward(m, &b, 1, 99, 8, &loss1));
    CHECK_MSG(loss0 != loss1, "a new step did not change the dropout masks");
    CHECK_OK(mt_model_forward(m, &b, 0, 99, 7, &loss_eval));
    CHECK_MSG(loss_eval != loss0, "eval mode still applied dropout");

    const float h = 3e-3f;
    int bad = 0, checked = 0, dbad = 0, dchecked = 0;
    double worst_dir = 0;
    for (int i = 0; i < t->count; i++) {
        const mt_param *p = &t->params[i];
        float *w = mt_model_param(m, i), *g = mt_model_grad(m, i);
        double gmax = 0, gn = 0;
        for (size_t e = 0; e < p->numel; e++) gmax = fmax(gmax, fabs((double)g[e])), gn += (double)g[e] * g[e];
        gn = sqrt(gn);
        // 1. directional derivatives over the whole tensor
        for (int dir = 0; dir < 2 * smooth; dir++) {
            double ratio = 0, rel = 0;
            if (!dir_check(m, &b, i, dir, &ratio, &rel)) continue;
            dchecked++;
            if (dir == 0) worst_dir = mt_test_worst(worst_dir, ratio);
            if (!(ratio <= 1)) dbad++;
        }
        // 2. single elements: the largest gradient and 7 spread over the tensor
        size_t pick[6] = {0};
        for (size_t e = 0; e < p->numel; e++)
            if (fabs((double)g[e]) > fabs((double)g[pick[0]])) pick[0] = e;
        for (int k = 1; k < 6; k++) pick[k] = (size_t)k * p->numel / 6 + (size_t)k % 3;
        for (int k = 0; k < 6; k++) {
            size_t e = pick[k] < p->numel ? pick[k] : p->numel - 1;
            float old = w[e], lp, lm;
            w[e] = old + h;
            CHECK_OK(mt_model_forward(m, &b, 1, 99, 7, &lp));
            w[e] = old - h;
            CHECK_OK(mt_model_forward(m, &b, 1, 99, 7, &lm));
            w[e] = old;
            double num = ((double)lp - lm) / (2.0 * h);
            checked++;
            if (!(fabs(num - g[e]) <= 1e-2 * fabs(num) + 1e-3 * gmax + 2e-5)) {
                bad++;
                fprintf(stderr, "  MISMATCH %s[%zu]: analytic %.6g numeric %.6g\n", p->name, e, g[e], num);
            }
        }
    }
    // The check can fail: a bias gradient 1% too large (a plausible backward bug) must be caught.
    if (smooth) {
        int victim = -1;
        for (int i = 0; i < t->count; i++)
            if (strstr(t->params[i].name, "layers.1.attention.dense.bias")) victim = i;
        CHECK(victim >= 0);
        if (victim >= 0) {
            float *g = mt_model_grad(m, victim);
            size_t n = t->params[victim].numel;
            for (size_t e = 0; e < n; e++) g[e] *= 1.01f;
            double ratio = 0, rel = 0;
            fprintf(stderr, "  (self-test: %s's gradient scaled by 1.01, a mismatch is expected)\n", t->params[victim].name);
            CHECK_MSG(dir_check(m, &b, victim, 0, &ratio, &rel) && ratio > 2,
                      "a 1%% error in %s's gradient passed the directional check (%.2f x tolerance)",
                      t->params[victim].name, ratio);
            for (size_t e = 0; e < n; e++) g[e] /= 1.01f;
        }
    }
    const char *an[3] = {"ReLU", "GELU", "tanh"};
    fprintf(stderr, "%s %s (%s head): %d of %d directional checks out of tolerance (worst relative error along the "
            "gradient %.3f x the tolerance)\n", arch == MT_ARCH_BERT ? "post-LN" : "pre-LN", head == MT_HEAD_QA ? "QA" : "token", an[act],
            dbad, dchecked, worst_dir);
    if (dbad) mt_test_failures++;
    fprintf(stderr, "%s %s: %d of %d finite-difference checks out of tolerance\n",
            arch == MT_ARCH_BERT ? "post-LN" : "pre-LN", head == MT_HEAD_QA ? "QA" : "token", bad, checked);
    if (bad) mt_test_failures++;
    mt_model_free(m);
}

int main(void) {
    check_arch(MT_ARCH_MEGATRON, MT_HEAD_TOKEN_CLASSIFIER, MT_ACT_GELU);
    check_arch(MT_ARCH_BERT, MT_HEAD_TOKEN_CLASSIFIER, MT_ACT_TANH);
    check_arch(MT_ARCH_MEGATRON, MT_HEAD_QA, MT_ACT_GELU);
    check_arch(MT_ARCH_MEGATRON, MT_HEAD_TOKEN_CLASSIFIER, MT_ACT_RELU);
    TEST_DONE();
}
