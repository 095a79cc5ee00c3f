// The whole model under dropout: finite differences of the training loss (dropout on in every
// site, same seed and step for each evaluation, so the mask is fixed) against mt_model_backward,
// for pre-LN and post-LN. This catches a backward that does not reuse the forward's masks. Also:
// dropout determinism (same seed/step -> same loss; new step -> new loss; eval -> no dropout).
// Check per element (h = 3e-3; larger steps cross ReLU kinks): |analytic - numeric| <=
// 3e-3 * max|analytic of tensor| + 3e-2 * |numeric| + 1e-5 (fp32 loss rounding / 2h).
#include "core/rng.h"
#include "model/model.h"
#include "test_util.h"

static void check_arch(mt_arch arch, mt_head_kind head) {
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

    const float h = getenv("GC_H") ? (float)atof(getenv("GC_H")) : 3e-3f;
    int bad = 0, checked = 0;
    for (int i = 0; i < t->count; i++) {
        const mt_param *p = &t->params[i];
        float *w = mt_model_param(m, i), *g = mt_model_grad(m, i);
        double gmax = 0;
        for (size_t e = 0; e < p->numel; e++) gmax = fmax(gmax, fabs((double)g[e]));
        // the element with the largest gradient, plus two spread over the tensor
        size_t pick[3] = {0, p->numel / 3, (2 * p->numel) / 3 + 1};
        for (size_t e = 0; e < p->numel; e++)
            if (fabs((double)g[e]) > fabs((double)g[pick[0]])) pick[0] = e;
        for (int k = 0; k < 3; k++) {
            size_t e = pick[k] < p->numel ? pick[k] : p->numel - 1;
            float old = w[e], lp, lm;
            w[e] = old + h;
            CHECK_OK(mt_model_forward(m, &b, 1, 99, 7, &lp));
            w[e] = old - h;
            CHECK_OK(mt_model_forward(m, &b, 1, 99, 7, &lm));
            w[e] = old;
            double num = ((double)lp - lm) / (2.0 * h);
            checked++;
            if (fabs(num - g[e]) > 3e-3 * gmax + 3e-2 * fabs(num) + 1e-5) {
                bad++;
                fprintf(stderr, "  MISMATCH %s[%zu]: analytic %.6g numeric %.6g\n", p->name, e, g[e], num);
            }
        }
    }
    fprintf(stderr, "%s %s: %d of %d finite-difference checks out of tolerance\n",
            arch == MT_ARCH_BERT ? "post-LN" : "pre-LN", head == MT_HEAD_QA ? "QA" : "token", bad, checked);
    if (bad) mt_test_failures++;
    mt_model_free(m);
}

int main(void) {
    check_arch(MT_ARCH_MEGATRON, MT_HEAD_TOKEN_CLASSIFIER);
    check_arch(MT_ARCH_BERT, MT_HEAD_TOKEN_CLASSIFIER);
    check_arch(MT_ARCH_MEGATRON, MT_HEAD_QA);
    TEST_DONE();
}
