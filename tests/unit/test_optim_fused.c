// mt_optimizer_step_fused (clip scale + Adam/AdamW + zero_grad in one pass, what the trainer runs)
// must equal mt_clip_grad_norm + mt_optimizer_step + mt_model_zero_grad BITWISE: same parameters,
// same moments, cleared gradients, over several steps, with clipping active, inactive and off.
// mt_model_backward_step (the step inside backward, span by span) must equal backward + the
// fused step BITWISE too, and leave the gradient span untouched.
#include "core/rng.h"
#include "kernels/bf16.h"
#include "model/model.h"
#include "model/model_kernels.h"
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

// Two copies of one model: A runs forward, backward and the fused step (as the trainer without
// step_in_backward), B forward and mt_model_backward_step; after each of 3 steps (new batch, new
// dropout) parameters, both moments and the losses must be identical, and B's gradients all zero.
// Weight decay on weights only (NeMo's groups: a per-float mask), with and without activation
// checkpointing, both arches, a token head and the joint second head (its span is the tail); B keeps
// no bf16 weight copies between products. B's word embedding gradients are the batch's rows only
// (repeated ids among them), every other row updated with zero gradients.
static void run_in_backward(mt_arch arch, const mt_kernels *k, const char *kname, int ckpt, int two_heads) {
    mt_model_config c;
    if (arch == MT_ARCH_BERT) mt_model_config_bert_defaults(&c);
    else mt_model_config_defaults(&c);
    c.vocab_size = 100;
    c.hidden_size = 32;
    c.num_layers = 3;
    c.num_attention_heads = 2;
    c.max_position_embeddings = 16;
    c.head = MT_HEAD_TOKEN_CLASSIFIER;
    c.num_classes = 3;
    c.head_num_layers = 2;
    if (two_heads) {
        c.head = MT_HEAD_SEQUENCE_CLASSIFIER;
        c.head2 = MT_HEAD_TOKEN_CLASSIFIER;
        c.num_classes2 = 4;
        c.head2_num_layers = 1;
        // NeMo's intent/slot model: intent on token 0, slots per token, one shared dropout
        snprintf(c.head_prefix, sizeof c.head_prefix, "classifier");
        snprintf(c.head_mlp, sizeof c.head_mlp, "intent_mlp");
        snprintf(c.head2_prefix, sizeof c.head2_prefix, "classifier");
        snprintf(c.head2_mlp, sizeof c.head2_mlp, "slot_mlp");
        c.head2_shares_dropout = 1;
    }
    c.hidden_dropout = c.attention_dropout = 0.1f;
    mt_model *a = NULL, *b = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &a));
    CHECK_OK(mt_model_create(&c, NULL, &b));
    if (!a || !b) return;
    mt_model_set_kernels(a, k);
    mt_model_set_kernels(b, k);
    mt_model_init_weights(a, 3);
    mt_model_init_weights(b, 3);
    mt_model_set_activation_checkpoint(a, ckpt);
    mt_model_set_activation_checkpoint(b, ckpt);
    mt_model_set_weight_copies(b, 0); // as the trainer with step_in_backward: the same results
    const mt_param_table *t = mt_model_params(a);
    const size_t n = t->total;
    mt_optim_config oc;
    mt_optim_config_default(&oc, MT_OPTIM_ADAMW);
    oc.decay_all = 0;
    mt_optimizer *oa = NULL, *ob = NULL;
    CHECK_OK(mt_optimizer_create(&oc, t, &oa));
    CHECK_OK(mt_optimizer_create(&oc, t, &ob));
    if (!oa || !ob) return;
    enum { B = 2, T = 12 };
    mt_model_zero_grad(a);
    mt_model_zero_grad(b);
    for (int step = 0; step < 3; step++) {
        int32_t ids[B * T], mask[B * T], labels[B * T], labels2[B * T];
        for (int i = 0; i < B * T; i++) {
            // repeated ids: the step in backward sums a word row's tokens in a compact row
            ids[i] = i % 5 == 4 ? ids[i - 3] : (i * 7 + 3 * step + 1) % 100;
            mask[i] = i % T < T - 3 * (i / T);
            labels[i] = (i + step) % 3;
            labels2[i] = (i * 5 + step) % 4;
        }
        mt_batch bt = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask, .labels = labels,
                       .labels2 = two_heads ? labels2 : NULL};
        const float lr = 1e-3f * (float)(step + 1);
        float la = 0, lb = 0;
        CHECK_OK(mt_model_forward(a, &bt, 1, 9, (uint64_t)step, &la));
        CHECK_OK(mt_model_backward(a, 1.0f));
        mt_optimizer_step_fused(oa, mt_model_param_data(a), mt_model_grad_data(a), lr, 1.0f);
        CHECK_OK(mt_model_forward(b, &bt, 1, 9, (uint64_t)step, &lb));
        CHECK_OK(mt_model_backward_step(b, ob, lr));
        const char *what = arch == MT_ARCH_BERT ? "post-LN" : "pre-LN";
        CHECK_MSG(!memcmp(&la, &lb, sizeof la), "%s %s ckpt %d step %d: loss %.9g vs %.9g", kname, what, ckpt, step,
                  (double)la, (double)lb);
        size_t dp = 0, dm = 0, dv = 0, gnz = 0;
        const float *pa = mt_model_param_data(a), *pb = mt_model_param_data(b), *gb = mt_model_grad_data(b);
        for (size_t i = 0; i < n; i++) {
            dp += memcmp(&pa[i], &pb[i], 4) != 0;
            dm += memcmp(&mt_optimizer_exp_avg(oa)[i], &mt_optimizer_exp_avg(ob)[i], 4) != 0;
            dv += memcmp(&mt_optimizer_exp_avg_sq(oa)[i], &mt_optimizer_exp_avg_sq(ob)[i], 4) != 0;
            gnz += gb[i] != 0.0f;
        }
        CHECK_MSG(dp == 0 && dm == 0 && dv == 0 && gnz == 0,
                  "%s %s ckpt %d heads %d step %d: of %zu values %zu parameters, %zu exp_avg, %zu exp_avg_sq differ "
                  "from backward + step; %zu gradients nonzero", kname, what, ckpt, 1 + two_heads, step, n, dp, dm,
                  dv, gnz);
        CHECK(mt_optimizer_steps(oa) == step + 1 && mt_optimizer_steps(ob) == step + 1);
    }
    fprintf(stderr, "step in backward (%s, %s, checkpointing %d layers, %d head(s)): 3 steps checked\n", kname,
            arch == MT_ARCH_BERT ? "post-LN" : "pre-LN", ckpt, 1 + two_heads);
    mt_optimizer_free(oa);
    mt_optimizer_free(ob);
    mt_model_free(a);
    mt_model_free(b);
}

int main(void) {
    const char *why = NULL;
    for (int arch = 0; arch < 2; arch++) {
        mt_arch ar = arch ? MT_ARCH_BERT : MT_ARCH_MEGATRON;
        run_in_backward(ar, mt_kernels_ref(), "ref", 0, 0);
        run_in_backward(ar, mt_kernels_default(), mt_kernels_default()->name, 0, 0);
        run_in_backward(ar, mt_kernels_default(), mt_kernels_default()->name, 3, 1);
        run_in_backward(ar, mt_kernels_bf16emu(), "bf16emu", 2, 0);
        if (mt_bf16_available(&why)) run_in_backward(ar, mt_kernels_bf16(), "bf16", 0, 1);
    }
    const mt_optim_kind kinds[2] = {MT_OPTIM_ADAMW, MT_OPTIM_ADAM};
    for (int k = 0; k < 2; k++) {
        run(kinds[k], 1.0f, 10.0f);  // norm far above 1: clipped every step
        run(kinds[k], 1e6f, 0.01f);  // never clipped
        run(kinds[k], 0.0f, 10.0f);  // clipping off
    }
    TEST_DONE();
}
