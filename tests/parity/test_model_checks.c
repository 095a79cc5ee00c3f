// Model construction checks that need no PyTorch: TP=2 shards of both ranks, concatenated along
// each parameter's split dimension, equal the TP=1 initialisation; bad batches are refused with
// a message naming the problem; backward before forward is refused; activation checkpointing
// gives the gradients of a run without it.
#include "kernels/bf16.h"
#include "model/model.h"
#include "model/model_kernels.h"
#include "model/optim.h"
#include "test_util.h"

static void small(mt_model_config *c, int tp, int rank) {
    mt_model_config_defaults(c);
    c->vocab_size = 997;
    c->hidden_size = 32;
    c->num_layers = 2;
    c->num_attention_heads = 4;
    c->max_position_embeddings = 16;
    c->head = MT_HEAD_TOKEN_CLASSIFIER;
    c->num_classes = 4;
    c->head_num_layers = 2;
    c->tp_size = tp;
    c->tp_rank = rank;
}

static void check_shards(void) {
    mt_model_config c1, c2a, c2b;
    small(&c1, 1, 0);
    small(&c2a, 2, 0);
    small(&c2b, 2, 1);
    mt_model *m1 = NULL, *r0 = NULL, *r1 = NULL;
    CHECK_OK(mt_model_create(&c1, NULL, &m1));
    CHECK_OK(mt_model_create(&c2a, NULL, &r0));
    CHECK_OK(mt_model_create(&c2b, NULL, &r1));
    if (!m1 || !r0 || !r1) return;
    mt_model_init_weights(m1, 77);
    mt_model_init_weights(r0, 77);
    mt_model_init_weights(r1, 77);
    const mt_param_table *t1 = mt_model_params(m1), *t2 = mt_model_params(r0);
    CHECK(t1->count == t2->count);
    int compared = 0;
    for (int i = 0; i < t1->count && i < t2->count; i++) {
        const mt_param *p1 = &t1->params[i], *p2 = &t2->params[i];
        CHECK(strcmp(p1->name, p2->name) == 0);
        const float *w1 = mt_model_param(m1, i), *a = mt_model_param(r0, i), *b = mt_model_param(r1, i);
        size_t bad = 0;
        int64_t rows = p1->shape[0], cols = p1->shape[1];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < cols; q++) {
                float want = w1[r * cols + q], got;
                if (p2->split_dim == 0) {
                    int64_t lr = p2->shape[0];
                    got = r < lr ? a[r * cols + q] : b[(r - lr) * cols + q];
                } else if (p2->split_dim == 1) {
                    int64_t lc = p2->shape[1];
                    got = q < lc ? a[r * lc + q] : b[r * lc + (q - lc)];
                } else {
                    got = a[r * cols + q];
                    if (b[r * cols + q] != got) bad++;
                }
                if (got != want) bad++;
            }
        CHECK_MSG(bad == 0, "%s: %zu elements of the TP=2 shards differ from TP=1", p1->name, bad);
        compared++;
    }
    // the vocab-split table: Megatron pads the vocab to a multiple of make_vocab_size_divisible_by (128)
    // times TP, so 997 -> 1024 rows at TP=1 (8 x 128) and TP=2 (4 x 256), 512 on each rank
    const mt_param *we1 = &t1->params[mt_param_index(t1, MT_ROLE_WORD_EMB, -1)];
    const mt_param *we = &t2->params[mt_param_index(t2, MT_ROLE_WORD_EMB, -1)];
    const int64_t pad1 = (997 + 127) / 128 * 128, pad2 = (997 + 255) / 256 * 256;
    CHECK_MSG(we1->global_shape[0] == pad1 && we1->shape[0] == pad1, "TP=1 word embeddings: %lld rows of %lld, want %lld",
              (long long)we1->shape[0], (long long)we1->global_shape[0], (long long)pad1);
    CHECK_MSG(we->global_shape[0] == pad2 && we->shape[0] == pad2 / 2 &&
                  mt_model_params(r1)->params[mt_param_index(t2, MT_ROLE_WORD_EMB, -1)].shape[0] == pad2 / 2,
              "TP=2 word embeddings: %lld rows of %lld on a rank, want %lld of %lld", (long long)we->shape[0],
              (long long)we->global_shape[0], (long long)pad2 / 2, (long long)pad2);
    fprintf(stderr, "compared %d tensors across TP=1 and TP=2 shards\n", compared);
    // a TP=2 shard cannot run forward without a communicator of size 2
    int32_t ids[4] = {1, 2, 3, 4};
    mt_batch bt = {.B = 1, .T = 4, .input_ids = ids};
    float loss;
    CHECK(mt_model_forward(r0, &bt, 0, 0, 0, &loss) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "communicator") != NULL);
    mt_model_free(m1);
    mt_model_free(r0);
    mt_model_free(r1);
}

static void check_errors(void) {
    mt_model_config c;
    small(&c, 1, 0);
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 1);
    int32_t ids[2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8}, labels[8] = {0, 1, 2, 3, 0, 1, 2, 3}, types[8] = {0};
    mt_batch b = {.B = 2, .T = 4, .input_ids = ids, .token_type_ids = types, .labels = labels};
    float loss;
    CHECK(mt_model_backward(m, 1.0f) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "forward") != NULL);
    {   // the step in backward refuses the same way, before its optimizer counts a step
        mt_optim_config oc;
        mt_optim_config_default(&oc, MT_OPTIM_ADAMW);
        mt_optimizer *o = NULL;
        CHECK_OK(mt_optimizer_create(&oc, mt_model_params(m), &o));
        CHECK(mt_model_backward_step(m, o, 1e-3f) == MT_ERR_INVALID);
        CHECK(strstr(mt_last_error(), "forward") != NULL);
        CHECK(mt_optimizer_steps(o) == 0);
        CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, NULL)); // a prediction forward: no loss to differentiate
        CHECK(mt_model_backward_step(m, o, 1e-3f) == MT_ERR_INVALID);
        CHECK(mt_optimizer_steps(o) == 0);
        mt_optimizer_free(o);
    }
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, &loss));
    CHECK_OK(mt_model_backward(m, 1.0f));
    ids[5] = 997;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "token id 997") && strstr(mt_last_error(), "position 1"));
    ids[5] = -1;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    ids[5] = 6;
    CHECK(mt_model_backward(m, 1.0f) == MT_ERR_INVALID); // the failed forward left nothing to differentiate
    types[3] = 2;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "token type") != NULL);
    types[3] = 0;
    labels[2] = 4;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "label 4") != NULL);
    labels[2] = 2;
    b.T = 17;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "max_position_embeddings") != NULL);
    b.T = 0;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    b.T = 4;
    b.B = -1;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    b.B = 2;
    b.labels = NULL;
    CHECK(mt_model_forward(m, &b, 0, 0, 0, &loss) == MT_ERR_INVALID);
    // prediction needs no labels, and its forward cannot be differentiated
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, NULL));
    CHECK(mt_model_backward(m, 1.0f) == MT_ERR_INVALID);
    // a larger batch grows the arena; the smaller one still works after it
    int32_t big_ids[4 * 16] = {0}, big_labels[4 * 16] = {0};
    mt_batch big = {.B = 4, .T = 16, .input_ids = big_ids, .labels = big_labels};
    CHECK_OK(mt_model_forward(m, &big, 1, 3, 0, &loss));
    // gradient accumulation: two backwards at loss_scale 0.5 add up to one at 1.0
    const mt_param_table *t = mt_model_params(m);
    size_t total = t->total;
    float *once = malloc(total * sizeof *once);
    mt_model_zero_grad(m);
    CHECK_OK(mt_model_backward(m, 1.0f));
    memcpy(once, mt_model_grad_data(m), total * sizeof *once);
    mt_model_zero_grad(m);
    CHECK_OK(mt_model_backward(m, 0.5f));
    CHECK_OK(mt_model_backward(m, 0.5f));
    double nrm = 0;
    for (size_t i = 0; i < total; i++) nrm += (double)once[i] * once[i];
    CHECK(nrm > 0);
    mt_check_close("grad accumulation 0.5+0.5 vs 1.0", mt_model_grad_data(m), once, total, 1e-7, 1e-5);
    free(once);
    b.labels = labels;
    float l2;
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, &l2));
    size_t n = 0;
    CHECK(mt_model_logits(m, &n) && n == 2 * 4 * 4);
    mt_model_free(m);

    // QA spans outside the sequence
    small(&c, 1, 0);
    c.head = MT_HEAD_QA;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    int32_t s[2] = {0, 4}, e[2] = {1, 3};
    mt_batch q = {.B = 2, .T = 4, .input_ids = ids, .start_positions = s, .end_positions = e};
    CHECK(mt_model_forward(m, &q, 0, 0, 0, &loss) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "span") != NULL);
    s[1] = 3;
    CHECK_OK(mt_model_forward(m, &q, 0, 0, 0, &loss));
    mt_model_free(m);

    // inconsistent configs are refused at create
    small(&c, 1, 0);
    c.num_attention_heads = 5;
    CHECK(mt_model_create(&c, NULL, &m) == MT_ERR_INVALID);
}

// Prediction (loss NULL) keeps one layer's activations and splits attention into batch chunks
// (here 8 rows of T=512 x 4 heads: chunks of 5 and 3); its logits must equal a training-layout forward.
static void check_lean(mt_arch arch) {
    mt_model_config c;
    small(&c, 1, 0);
    if (arch == MT_ARCH_BERT) {
        mt_model_config_bert_defaults(&c);
        small(&c, 1, 0);
        c.arch = MT_ARCH_BERT;
        c.layernorm_eps = 1e-12f;
    }
    c.max_position_embeddings = 512;
    c.num_layers = 3;
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 4);
    enum { B = 8, T = 512 };
    int32_t *ids = malloc(B * T * 4), *mask = malloc(B * T * 4), *labels = calloc(B * T, 4);
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 37) % 997;
        mask[i] = (i % T) < T - 40 * (i / T);
    }
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask, .labels = labels};
    float loss;
    size_t n1 = 0, n2 = 0;
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, &loss));
    const float *l1 = mt_model_logits(m, &n1);
    float *full = malloc(n1 * sizeof *full);
    memcpy(full, l1, n1 * sizeof *full);
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, NULL));
    const float *l2 = mt_model_logits(m, &n2);
    CHECK(n1 == n2 && l2);
    if (n1 == n2 && l2) mt_check_close(arch == MT_ARCH_BERT ? "lean prediction logits (post-LN)" : "lean prediction logits (pre-LN)", l2, full, n1, 1e-6, 1e-5);
    CHECK(mt_model_backward(m, 1.0f) == MT_ERR_INVALID);
    // a training-mode prediction with attention dropout cannot chunk (masks are per batch row)
    CHECK_OK(mt_model_forward(m, &b, 1, 3, 0, NULL));
    // and a training forward after it is whole again
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, &loss));
    CHECK_OK(mt_model_backward(m, 1.0f));
    free(full); free(ids); free(mask); free(labels);
    mt_model_free(m);
}

// An evaluation forward runs FC1's GELU in the product's epilogue and keeps no pre-activation; a
// backward after it recomputes that, so its gradients equal those after a training forward without
// dropout, even when the buffer still holds another batch's values (both arches).
static void check_backward_after_eval(mt_arch arch) {
    mt_model_config c;
    if (arch == MT_ARCH_BERT) mt_model_config_bert_defaults(&c);
    small(&c, 1, 0);
    c.arch = arch;
    c.hidden_dropout = c.attention_dropout = c.head_dropout = 0.0f;
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 5);
    enum { B = 3, T = 16 };
    int32_t ids[B * T], other[B * T], mask[B * T], labels[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 37 + 5) % 997, other[i] = (i * 101 + 7) % 997;
        mask[i] = (i % T) < T - 3 * (i / T);
        labels[i] = i % 4;
    }
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask, .labels = labels};
    mt_batch b2 = b;
    b2.input_ids = other;
    const size_t total = mt_model_params(m)->total;
    float *g_train = malloc(total * sizeof *g_train), loss;
    mt_model_zero_grad(m);
    CHECK_OK(mt_model_forward(m, &b, 1, 3, 0, &loss));
    CHECK_OK(mt_model_backward(m, 1.0f));
    memcpy(g_train, mt_model_grad_data(m), total * sizeof *g_train);
    CHECK_OK(mt_model_forward(m, &b2, 1, 3, 0, &loss)); // leaves b2's activations behind
    mt_model_zero_grad(m);
    CHECK_OK(mt_model_forward(m, &b, 0, 0, 0, &loss));
    CHECK_OK(mt_model_backward(m, 1.0f));
    double gmax = 0;
    for (size_t i = 0; i < total; i++) gmax = fmax(gmax, fabs((double)g_train[i]));
    CHECK(gmax > 0);
    mt_check_close(arch == MT_ARCH_BERT ? "backward after an eval forward (post-LN)"
                                        : "backward after an eval forward (pre-LN)",
                   mt_model_grad_data(m), g_train, total, 1e-5 * gmax, 1e-4);
    free(g_train);
    mt_model_free(m);
}

// Activation checkpointing recomputes the checkpointed layers' forward inside backward, with the
// forward's dropout masks: loss and every gradient must equal those of a run that kept all
// activations, bit for bit, over several AdamW-free steps (each step's batch and dropout differ),
// while the activations laid out shrink. So must selective recomputation (probabilities, GELU and
// pre-LN LayerNorm outputs refilled in backward; then FC1's outputs too), alone and beside
// checkpointing, whose recomputed forward already refills them. Both arches, dropout on, every kernel table given.
static void check_activation_checkpoint(mt_arch arch, const mt_kernels *k, const char *kname) {
    mt_model_config c;
    if (arch == MT_ARCH_BERT) mt_model_config_bert_defaults(&c);
    small(&c, 1, 0);
    c.arch = arch;
    c.num_layers = 4;
    c.hidden_dropout = c.attention_dropout = 0.1f;
    enum { B = 3, T = 16, STEPS = 2 };
    // off, all (uniform), the first two (block 2), past num_layers; then selective alone and with block 2,
    // and selective with FC1's outputs recomputed too, alone and with block 2; and with (pre-LN) the
    // residual after attention as well
    const int modes[] = {0, 4, 2, 9, 0, 2, 0, 2, 0, 2}, recompute[] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3};
    enum { NMODES = 10 };
    const int nmodes = NMODES;
    size_t total = 0, bytes[NMODES] = {0};
    float *g[NMODES] = {NULL}, loss[NMODES][STEPS];
    for (int mi = 0; mi < nmodes; mi++) {
        mt_model *m = NULL;
        CHECK_OK(mt_model_create(&c, NULL, &m));
        if (!m) return;
        mt_model_set_kernels(m, k);
        mt_model_init_weights(m, 11);
        mt_model_set_activation_checkpoint(m, modes[mi]);
        mt_model_set_recompute(m, recompute[mi]);
        total = mt_model_params(m)->total;
        g[mi] = malloc(total * STEPS * sizeof(float));
        for (int s = 0; s < STEPS; s++) {
            int32_t ids[B * T], mask[B * T], labels[B * T];
            for (int i = 0; i < B * T; i++) {
                ids[i] = (i * 37 + 5 + 13 * s) % 997;
                mask[i] = (i % T) < T - 2 * (i / T);
                labels[i] = (i + s) % 4;
            }
            mt_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask, .labels = labels};
            mt_model_zero_grad(m);
            CHECK_OK(mt_model_forward(m, &b, 1, 21, (uint64_t)s, &loss[mi][s]));
            CHECK_OK(mt_model_backward(m, 1.0f));
            memcpy(g[mi] + (size_t)s * total, mt_model_grad_data(m), total * sizeof(float));
        }
        bytes[mi] = mt_model_activation_bytes(m);
        mt_model_free(m);
    }
    double gmax = 0;
    for (size_t i = 0; i < total * STEPS; i++) gmax = fmax(gmax, fabs((double)g[0][i]));
    CHECK_MSG(gmax > 0, "%s: the reference run has no gradient", kname);
    size_t ndiff = 0;
    for (int mi = 1; mi < nmodes; mi++) {
        size_t diff = 0;
        for (size_t i = 0; i < total * STEPS; i++) diff += memcmp(&g[mi][i], &g[0][i], sizeof(float)) != 0;
        CHECK_MSG(diff == 0, "%s, %s, checkpointing %d layers%s: %zu of %zu gradient values differ from the run "
                  "that kept every activation", kname, arch == MT_ARCH_BERT ? "post-LN" : "pre-LN", modes[mi],
                  recompute[mi] == 3 ? ", selective with FC1 and h" : recompute[mi] == 2 ? ", selective with FC1"
                  : recompute[mi] ? ", selective" : "", diff,
                  total * STEPS);
        ndiff += diff;
        for (int s = 0; s < STEPS; s++)
            CHECK_MSG(memcmp(&loss[mi][s], &loss[0][s], sizeof(float)) == 0,
                      "%s, checkpointing %d layers: step %d loss %.9g, without %.9g", kname, modes[mi], s,
                      (double)loss[mi][s], (double)loss[0][s]);
    }
    // all four layers share one set: at least two layers' worth less than keeping each
    CHECK_MSG(bytes[1] < bytes[0] && bytes[2] < bytes[0] && bytes[1] < bytes[2] && bytes[3] == bytes[1],
              "%s: activation bytes off %zu, all %zu, first two %zu, past the end %zu", kname, bytes[0], bytes[1],
              bytes[2], bytes[3]);
    CHECK_MSG(bytes[4] < bytes[0] && bytes[5] < bytes[2], "%s: selective lays out %zu bytes (off %zu), with block 2 "
              "%zu (without %zu)", kname, bytes[4], bytes[0], bytes[5], bytes[2]);
    CHECK_MSG(bytes[6] < bytes[4] && bytes[7] < bytes[5], "%s: selective with FC1 lays out %zu bytes (without FC1 "
              "%zu), with block 2 %zu (%zu)", kname, bytes[6], bytes[4], bytes[7], bytes[5]);
    // pre-LN shares h across the layers at recompute 3 (the layers outside block 2: 1 of 2 here);
    // post-LN has no h, so its layout is recompute 2's
    if (arch == MT_ARCH_BERT)
        CHECK_MSG(bytes[8] == bytes[6] && bytes[9] == bytes[7], "%s: post-LN at recompute 3 lays out %zu / %zu bytes, "
                  "at 2 %zu / %zu", kname, bytes[8], bytes[9], bytes[6], bytes[7]);
    else
        CHECK_MSG(bytes[8] < bytes[6] && bytes[9] < bytes[7], "%s: selective with FC1 and h lays out %zu bytes (without h "
                  "%zu), with block 2 %zu (%zu)", kname, bytes[8], bytes[6], bytes[9], bytes[7]);
    fprintf(stderr, "activation checkpointing (%s, %s): %zu gradient values of %d steps differ; activations "
            "%zu -> %zu bytes\n", kname, arch == MT_ARCH_BERT ? "post-LN" : "pre-LN", ndiff, STEPS, bytes[0], bytes[1]);
    for (int mi = 0; mi < nmodes; mi++) free(g[mi]);
}

int main(void) {
    const char *why = NULL;
    for (int a = 0; a < 2; a++) {
        mt_arch arch = a ? MT_ARCH_BERT : MT_ARCH_MEGATRON;
        check_activation_checkpoint(arch, mt_kernels_ref(), "ref");
        check_activation_checkpoint(arch, mt_kernels_default(), mt_kernels_default()->name);
        check_activation_checkpoint(arch, mt_kernels_bf16emu(), "bf16emu");
        if (mt_bf16_available(&why)) check_activation_checkpoint(arch, mt_kernels_bf16(), "bf16");
        else fprintf(stderr, "activation checkpointing on bf16 hardware not run: %s\n", why);
    }
    check_backward_after_eval(MT_ARCH_MEGATRON);
    check_backward_after_eval(MT_ARCH_BERT);
    check_lean(MT_ARCH_MEGATRON);
    check_lean(MT_ARCH_BERT);
    check_shards();
    check_errors();
    TEST_DONE();
}
