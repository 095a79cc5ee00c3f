// mt_optimizer_step_fused (clip scale + Adam/AdamW + zero_grad in one pass, what the trainer runs)
// must equal mt_clip_grad_norm + mt_optimizer_step + mt_model_zero_grad BITWISE: same parameters,
// same moments, cleared gradients, over several steps, with clipping active, inactive and off.
#include "core/rng.h"
#include "model/model.h"
#include "model/optim.h"
#include "test_util.h"

static void run(mt_optim_kind kind, float clip, float gmag) {
    mt_model_config c;
    mt_model_config_defaults(&c);
    c.vocab_size = 100;
    c.hidden_size = 32;
    c.num_layers = 1;
    c.num_attention_heads = 2;
    c.max_position_embeddings = 16;
    c.head = MT_HEAD_QA;
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 7);
    const mt_param_table *t = mt_model_params(m);
    const size_t n = t->total;
    mt_optim_config oc;
    mt_optim_config_default(&oc, kind);
    oc.weight_decay = 0.01f;
    mt_optimizer *a = NULL, *b = NULL;
    CHECK_OK(mt_optimizer_create(&oc, t, &a));
    CHECK_OK(mt_optimizer_create(&oc, t, &b));
    float *pa = malloc(n * 4), *pb = malloc(n * 4), *ga = malloc(n * 4), *gb = malloc(n * 4);
    memcpy(pa, mt_model_param_data(m), n * 4);
    memcpy(pb, pa, n * 4);
    int scaled = 0;
    for (int step = 0; step < 4; step++) {
        for (size_t i = 0; i < n; i++) ga[i] = gmag * (mt_rng_uniform(11, (uint64_t)step, 0, i) - 0.5f);
        memcpy(gb, ga, n * 4);
        float na = mt_clip_grad_norm(ga, t, clip, NULL);
        mt_optimizer_step(a, pa, ga, 1e-3f);
        memset(ga, 0, n * 4);
        float nb = mt_grad_norm(gb, t, NULL), coef = mt_clip_coef(nb, clip);
        scaled += coef != 1.0f;
        mt_optimizer_step_fused(b, pb, gb, 1e-3f, coef);
        CHECK_MSG(na == nb, "norm %g vs %g", na, nb);
        CHECK_MSG(!memcmp(pa, pb, n * 4), "kind %d clip %g step %d: parameters differ", (int)kind, clip, step);
        CHECK_MSG(!memcmp(mt_optimizer_exp_avg(a), mt_optimizer_exp_avg(b), n * 4), "exp_avg differs");
        CHECK_MSG(!memcmp(mt_optimizer_exp_avg_sq(a), mt_optimizer_exp_avg_sq(b), n * 4), "exp_avg_sq differs");
        CHECK_MSG(!memcmp(ga, gb, n * 4), "gradients not cleared");
    }
    // the cases below must exercise both branches
    CHECK_MSG(clip > 0 && gmag > 1 ? scaled == 4 : scaled == 0, "clip %g gmag %g: scaled %d of 4 steps", clip, gmag,
              scaled);
    free(pa); free(pb); free(ga); free(gb);
    mt_optimizer_free(a);
    mt_optimizer_free(b);
    mt_model_free(m);
}

int main(void) {
    const mt_optim_kind kinds[2] = {MT_OPTIM_ADAMW, MT_OPTIM_ADAM};
    for (int k = 0; k < 2; k++) {
        run(kinds[k], 1.0f, 10.0f);  // norm far above 1: clipped every step
        run(kinds[k], 1e6f, 0.01f);  // never clipped
        run(kinds[k], 0.0f, 10.0f);  // clipping off
    }
    TEST_DONE();
}
