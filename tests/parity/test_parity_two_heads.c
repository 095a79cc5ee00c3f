// The two-head models against tools/torch_ref.py (PyTorch, float64): logits of both heads, the
// aggregated loss and EVERY parameter gradient, for both kernel tables.
//   P&C (NeMo PunctuationCapitalizationModel): punct_classifier.mlp + capit_classifier.mlp, two
//     TokenClassifiers with their own num_fc_layers/activation; loss = punct CE + capit CE, both
//     over loss_mask (AggregatorLoss without weights).
//   Intent/slot (SequenceTokenClassifier): classifier.intent_mlp on token 0 and classifier.slot_mlp
//     on every token; loss = 0.6 * intent CE + 0.4 * slot CE (intent_loss_weight), class weights on
//     both (class_balancing=weighted_loss).
// Then TP=2 (two threads, tests/thread_comm.h) equals TP=1 with every dropout ON, including the two
// heads' own masks (P&C) and the shared one (intent/slot).
// Tolerances as test_parity_model.c: logits atol 2e-5*max|ref| + rtol 1e-4, loss rel 1e-5, each
// gradient atol max(1e-4*max|ref|, 1e-6) + rtol 1e-3; TP: atol 1e-5*max + rtol 1e-4.
#include <pthread.h>

#include "parity_util.h"
#include "thread_comm.h"
#include "model/model_kernels.h"

typedef struct {
    const char *name;
    mt_arch arch;
    int intent_slot;      // 0: P&C
    int layers1, layers2; // num_fc_layers of the two heads
    mt_activation act1, act2;
    int class_weights;
} two_case;

static void two_config(mt_model_config *c, const two_case *tc) {
    parity_small_config(c, tc->arch, tc->intent_slot ? MT_HEAD_SEQUENCE_CLASSIFIER : MT_HEAD_TOKEN_CLASSIFIER);
    c->head2 = MT_HEAD_TOKEN_CLASSIFIER;
    c->head_num_layers = tc->layers1;
    c->head2_num_layers = tc->layers2;
    c->head_activation = tc->act1;
    c->head2_activation = tc->act2;
    if (tc->intent_slot) {
        snprintf(c->head_prefix, sizeof c->head_prefix, "classifier");
        snprintf(c->head_mlp, sizeof c->head_mlp, "intent_mlp");
        snprintf(c->head2_prefix, sizeof c->head2_prefix, "classifier");
        snprintf(c->head2_mlp, sizeof c->head2_mlp, "slot_mlp");
        c->num_classes = 4;
        c->num_classes2 = 7;
        c->head2_shares_dropout = 1;
        c->head_loss_weight = 0.6f;
        c->head2_loss_weight = 0.4f;
    } else {
        snprintf(c->head_prefix, sizeof c->head_prefix, "punct_classifier");
        snprintf(c->head2_prefix, sizeof c->head2_prefix, "capit_classifier");
        c->num_classes = 4; // O , . ?
        c->num_classes2 = 2; // O U
    }
}

static void add_labels2(parity_batch *pb, int32_t *labels2, float *w2, int nc2, uint64_t seed) {
    for (int i = 0; i < pb->B * pb->T; i++) labels2[i] = (int32_t)(mt_rng_uniform(seed, 11, 0, (uint64_t)i) * nc2) % nc2;
    for (int i = 0; i < nc2; i++) w2[i] = 0.5f + 1.5f * mt_rng_uniform(seed, 12, 0, (uint64_t)i);
    pb->batch.labels2 = labels2;
}

static void run_case(const two_case *tc, int index) {
    fprintf(stderr, "== case %s\n", tc->name);
    mt_model_config c;
    two_config(&c, tc);
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) return;
    mt_model_init_weights(m, 4321 + (uint64_t)index);
    const mt_param_table *t = mt_model_params(m);
    int n_head1 = 0, n_head2 = 0;
    for (int i = 0; i < t->count; i++) {
        const mt_param *p = &t->params[i];
        if (p->group == MT_PARAM_HEAD) // scaled up so the loss gradient is not tiny everywhere
            for (size_t e = 0; e < p->numel; e++) mt_model_param(m, i)[e] *= 20.0f;
        if (p->ndim == 1)
            for (size_t e = 0; e < p->numel; e++)
                mt_model_param(m, i)[e] += 0.1f * (mt_rng_uniform(98, (uint64_t)index, (uint32_t)i, e) - 0.5f);
        n_head1 += p->role == MT_ROLE_HEAD_W;
        n_head2 += p->role == MT_ROLE_HEAD2_W;
    }
    CHECK_MSG(n_head1 == tc->layers1 && n_head2 == tc->layers2, "head layers %d/%d", n_head1, n_head2);
    // NeMo's state-dict names
    char want[2][128];
    snprintf(want[0], sizeof want[0], "%s.%s.layer%d.weight", c.head_prefix, c.head_mlp, 2 * (tc->layers1 - 1));
    snprintf(want[1], sizeof want[1], "%s.%s.layer%d.bias", c.head2_prefix, c.head2_mlp, 2 * (tc->layers2 - 1));
    CHECK_MSG(mt_param_find(t, want[0]) && mt_param_find(t, want[1]), "missing %s or %s", want[0], want[1]);

    const mt_model_config *fc = mt_model_get_config(m);
    parity_batch pb;
    parity_batch_make(&pb, fc, 3, 16, 555 + (uint64_t)index, 1, tc->class_weights);
    int32_t labels2[3 * 16];
    float w2[16];
    add_labels2(&pb, labels2, w2, fc->num_classes2, 99 + (uint64_t)index);
    if (tc->class_weights) pb.batch.class_weights2 = w2;

    char cfg_path[512], in_path[512], out_path[512], extra[512];
    snprintf(cfg_path, sizeof cfg_path, "%s/two%d.json", parity_tmpdir(), index);
    snprintf(in_path, sizeof in_path, "%s/two%d.in", parity_tmpdir(), index);
    snprintf(out_path, sizeof out_path, "%s/two%d.out", parity_tmpdir(), index);
    snprintf(extra, sizeof extra,
             "\"head_mlp\": \"%s\", \"head2\": \"token\", \"head2_prefix\": \"%s\", \"head2_mlp\": \"%s\", "
             "\"num_classes2\": %d, \"head2_num_layers\": %d, \"head2_activation\": \"%s\", "
             "\"head_loss_weight\": %.9g, \"head2_loss_weight\": %.9g",
             fc->head_mlp, fc->head2_prefix, fc->head2_mlp, fc->num_classes2, fc->head2_num_layers,
             act_name(fc->head2_activation), (double)fc->head_loss_weight, (double)fc->head2_loss_weight);
    parity_write_config(cfg_path, fc, extra);
    mttf_writer w;
    CHECK(mttf_open(&w, in_path));
    parity_write_params(&w, m);
    parity_batch_write(&w, &pb, fc);
    int64_t bt[2] = {pb.B, pb.T}, nc2[1] = {fc->num_classes2};
    mttf_add(&w, "batch/labels2", MTTF_I32, 2, bt, labels2);
    if (tc->class_weights) mttf_add(&w, "batch/class_weights2", MTTF_F32, 1, nc2, w2);
    mttf_close(&w);
    mttf_file ref = {0};
    if (!parity_run_ref(cfg_path, in_path, out_path)) {
        mt_test_failures++;
        goto done;
    }
    CHECK(mttf_read(&ref, out_path));
    const mttf_tensor *rl = mttf_find(&ref, "logits"), *rloss = mttf_find(&ref, "loss");
    CHECK(rl && rloss);
    if (!rl || !rloss) goto done;
    for (int kt = 0; kt < 2; kt++) {
        const mt_kernels *k = kt ? mt_kernels_ref() : mt_kernels_opt();
        mt_model_set_kernels(m, k);
        mt_model_zero_grad(m);
        float loss = 0;
        CHECK_OK(mt_model_forward(m, &pb.batch, 1, 42, 0, &loss));
        CHECK_OK(mt_model_backward(m, 1.0f));
        size_t n = 0;
        const float *lg = mt_model_logits(m, &n);
        size_t want_n = (size_t)(tc->intent_slot ? pb.B : pb.B * pb.T) * fc->num_classes +
                        (size_t)pb.B * pb.T * fc->num_classes2;
        CHECK_MSG(n == rl->n && n == want_n, "logit count %zu vs reference %zu (expected %zu)", n, rl->n, want_n);
        double lscale = parity_max_abs(rl->f, rl->n), worst_logit = 0, worst_grad = 0;
        if (n == rl->n) {
            mt_check_close("logits", lg, rl->f, n, 2e-5 * lscale, 1e-4);
            for (size_t e = 0; e < n; e++) worst_logit = mt_test_worst(worst_logit, fabs((double)lg[e] - rl->f[e]) / lscale);
        }
        double rel = fabs(loss - rloss->f[0]) / fabs(rloss->f[0]);
        CHECK_MSG(rel < 1e-5, "loss megatune %.8f torch %.8f", loss, rloss->f[0]);
        for (int i = 0; i < t->count; i++) {
            char name[200];
            snprintf(name, sizeof name, "grad/%s", t->params[i].name);
            const mttf_tensor *g = mttf_find(&ref, name);
            CHECK_MSG(g && g->n == t->params[i].numel, "reference gradient %s missing or wrong size", name);
            if (!g || g->n != t->params[i].numel) continue;
            double scale = parity_max_abs(g->f, g->n);
            const float *mine = mt_model_grad(m, i);
            if (t->params[i].group == MT_PARAM_HEAD)
                CHECK_MSG(scale > 1e-6, "%s: reference gradient is zero, the case does not exercise it", name);
            for (size_t e = 0; scale > 1e-6 && e < g->n; e++)
                worst_grad = mt_test_worst(worst_grad, fabs((double)mine[e] - g->f[e]) / scale);
            mt_check_close(t->params[i].name, mine, g->f, g->n, fmax(1e-4 * scale, 1e-6), 1e-3);
        }
        fprintf(stderr, "  SUMMARY %s %s: loss %.8f (torch %.8f, rel %.2e), max|logit err|/max|logit| %.2e, "
                "worst max|grad err|/max|grad| %.2e over %d tensors\n", tc->name, k->name, loss, rloss->f[0], rel,
                worst_logit, worst_grad, t->count);
    }
    mt_model_set_kernels(m, NULL);
done:
    mttf_free(&ref);
    parity_batch_free(&pb);
    mt_model_free(m);
}

// ---- TP=2 equals TP=1, dropout on ----
static thread_comm_shared g_sc;
static mt_comm g_comms[2];
enum { TB = 2, TT = 8 };
static int32_t t_ids[TB * TT], t_types[TB * TT], t_mask[TB * TT], t_labels[TB * TT], t_labels2[TB * TT];
static float t_lmask[TB * TT];

static void tp_config(mt_model_config *c, const two_case *tc, int tp, int rank) {
    two_config(c, tc);
    c->hidden_size = 32;
    c->max_position_embeddings = 16;
    c->hidden_dropout = 0.1f;
    c->attention_dropout = 0.2f;
    c->head_dropout = 0.3f;
    c->head2_dropout = 0.2f;
    c->tp_size = tp;
    c->tp_rank = rank;
}

typedef struct {
    int rank;
    const two_case *tc;
    mt_model *m;
    float loss;
    mt_status st;
} rank_job;

static mt_batch tp_batch(void) {
    mt_batch b = {.B = TB, .T = TT, .input_ids = t_ids, .token_type_ids = t_types, .attention_mask = t_mask,
                  .labels = t_labels, .labels2 = t_labels2, .loss_mask = t_lmask};
    return b;
}

static void *rank_main(void *p) {
    rank_job *j = p;
    mt_model_config c;
    tp_config(&c, j->tc, 2, j->rank);
    j->st = mt_model_create(&c, &g_comms[j->rank], &j->m);
    if (j->st != MT_OK) return NULL;
    mt_model_init_weights(j->m, 77);
    mt_batch b = tp_batch();
    mt_model_zero_grad(j->m);
    j->st = mt_model_forward(j->m, &b, 1, 5, 3, &j->loss);
    if (j->st == MT_OK) j->st = mt_model_backward(j->m, 1.0f);
    return NULL;
}

static void run_tp(const two_case *tc) {
    fprintf(stderr, "== TP=2 vs TP=1: %s\n", tc->name);
    for (int i = 0; i < TB * TT; i++) {
        t_ids[i] = (i * 131 + 7) % 1000;
        t_types[i] = 0;
        t_mask[i] = !(i / TT == 1 && i % TT >= 5);
        t_labels[i] = tc->intent_slot ? i % 4 : i % 4;
        t_labels2[i] = (i * 3) % 2;
        t_lmask[i] = t_mask[i] && i % 5 != 2;
    }
    if (tc->intent_slot) { t_labels[0] = 3; t_labels[1] = 1; } // intent labels (B)
    mt_model_config c1;
    tp_config(&c1, tc, 1, 0);
    mt_model *m1 = NULL;
    CHECK_OK(mt_model_create(&c1, NULL, &m1));
    if (!m1) return;
    mt_model_init_weights(m1, 77);
    mt_batch b = tp_batch();
    float loss1 = 0;
    mt_model_zero_grad(m1);
    CHECK_OK(mt_model_forward(m1, &b, 1, 5, 3, &loss1));
    CHECK_OK(mt_model_backward(m1, 1.0f));
    // the heads' dropout is on and matters: an eval forward gives another loss
    float loss_eval = 0;
    {
        mt_model *me = NULL;
        CHECK_OK(mt_model_create(&c1, NULL, &me));
        mt_model_init_weights(me, 77);
        CHECK_OK(mt_model_forward(me, &b, 0, 5, 3, &loss_eval));
        mt_model_free(me);
    }
    CHECK_MSG(fabs(loss_eval - loss1) > 1e-4, "dropout changes nothing (train %g, eval %g)", loss1, loss_eval);
    rank_job jobs[2] = {{0, tc, NULL, 0, MT_OK}, {1, tc, NULL, 0, MT_OK}};
    pthread_t th[2];
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, rank_main, &jobs[r]);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    CHECK(jobs[0].st == MT_OK && jobs[1].st == MT_OK);
    if (jobs[0].st == MT_OK && jobs[1].st == MT_OK) {
        fprintf(stderr, "  loss TP=1 %.7f, TP=2 ranks %.7f %.7f\n", loss1, jobs[0].loss, jobs[1].loss);
        CHECK(fabs(loss1 - jobs[0].loss) <= 1e-5 * fabs(loss1) && jobs[0].loss == jobs[1].loss);
        size_t n1, n2;
        const float *l1 = mt_model_logits(m1, &n1), *l2 = mt_model_logits(jobs[0].m, &n2);
        CHECK(n1 == n2);
        if (n1 == n2) mt_check_close("logits", l2, l1, n1, 1e-5 * parity_max_abs(l1, n1), 1e-4);
        const mt_param_table *t1 = mt_model_params(m1), *t2 = mt_model_params(jobs[0].m);
        for (int i = 0; i < t1->count; i++) {
            const mt_param *p1 = &t1->params[i], *p2 = &t2->params[i];
            const float *g1 = mt_model_grad(m1, i), *ga = mt_model_grad(jobs[0].m, i), *gb = mt_model_grad(jobs[1].m, i);
            float *cat = malloc(p1->numel * sizeof *cat);
            int64_t rows = p1->shape[0], cols = p1->shape[1];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t q = 0; q < cols; q++) {
                    float v;
                    if (p2->split_dim == 0) v = r < p2->shape[0] ? ga[r * cols + q] : gb[(r - p2->shape[0]) * cols + q];
                    else if (p2->split_dim == 1)
                        v = q < p2->shape[1] ? ga[r * p2->shape[1] + q] : gb[r * p2->shape[1] + q - p2->shape[1]];
                    else {
                        v = ga[r * cols + q];
                        if (gb[r * cols + q] != v) CHECK_MSG(0, "%s: replicated gradient differs across ranks", p1->name);
                    }
                    cat[r * cols + q] = v;
                }
            mt_check_close(p1->name, cat, g1, p1->numel, 1e-5 * fmax(parity_max_abs(g1, p1->numel), 1e-6), 1e-4);
            free(cat);
        }
    }
    for (int r = 0; r < 2; r++) mt_model_free(jobs[r].m);
    mt_model_free(m1);
}

int main(void) {
    static const two_case cases[] = {
        {"P&C megatron 1+1 fc layers relu", MT_ARCH_MEGATRON, 0, 1, 1, MT_ACT_RELU, MT_ACT_RELU, 0},
        {"P&C megatron 2+3 fc layers gelu/tanh", MT_ARCH_MEGATRON, 0, 2, 3, MT_ACT_GELU, MT_ACT_TANH, 0},
        {"P&C bert post-LN 2+1 relu", MT_ARCH_BERT, 0, 2, 1, MT_ACT_RELU, MT_ACT_RELU, 0},
        {"intent/slot megatron 2 layers, weights 0.6/0.4", MT_ARCH_MEGATRON, 1, 2, 2, MT_ACT_RELU, MT_ACT_RELU, 0},
        {"intent/slot megatron weighted_loss", MT_ARCH_MEGATRON, 1, 2, 2, MT_ACT_RELU, MT_ACT_RELU, 1},
        {"intent/slot bert 1 layer", MT_ARCH_BERT, 1, 1, 1, MT_ACT_RELU, MT_ACT_RELU, 0},
    };
    // under the sanitizers (10x slower) one P&C and one intent/slot case cover every code path
    int sanitized = getenv("MEGATUNE_SANITIZED") != NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!sanitized || i == 1 || i == 4) run_case(&cases[i], (int)i);
    thread_comm_init(&g_sc, g_comms, 2);
    run_tp(&cases[1]);
    run_tp(&cases[3]);
    thread_comm_destroy(&g_sc);
    TEST_DONE();
}
