// Tensor parallelism without MPI: two threads each run one TP=2 shard of the model through a
// test communicator (all-reduce over shared memory), and the result must equal the TP=1 model:
// logits and loss, and every gradient (split ones concatenated along the split dimension,
// replicated ones identical on both ranks). Dropout is ON: attention-dropout masks are indexed
// by the global head, hidden-dropout masks by the replicated element, so TP does not change them.
// This checks the f/g collective points (Megatron's mappings) and the vocab-parallel embedding.
// Tolerance: atol 1e-5 * max|TP=1 value| + rtol 1e-4 (reduction order differs).
#include <pthread.h>

#include "model/model.h"
#include "test_util.h"
#include "thread_comm.h"

static thread_comm_shared g_sc;
static mt_comm g_comms[2];

enum { B = 2, T = 8 };
static int32_t ids[B * T], types[B * T], mask[B * T], labels[B * T];

static void config(mt_model_config *c, int tp, int rank, mt_arch arch) {
    if (arch == MT_ARCH_BERT) mt_model_config_bert_defaults(c);
    else mt_model_config_defaults(c);
    c->vocab_size = 1000;
    c->hidden_size = 32;
    c->num_layers = 2;
    c->num_attention_heads = 4;
    c->max_position_embeddings = 16;
    c->hidden_dropout = 0.1f;
    c->attention_dropout = 0.2f;
    c->head = MT_HEAD_TOKEN_CLASSIFIER;
    c->num_classes = 3;
    c->head_num_layers = 2;
    c->head_dropout = 0.1f;
    c->tp_size = tp;
    c->tp_rank = rank;
}

typedef struct {
    int rank;
    mt_arch arch;
    mt_model *m;
    float loss;
    mt_status st;
} rank_job;

static mt_batch make_batch(void) {
    mt_batch b = {.B = B, .T = T, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                  .labels = labels};
    return b;
}

static void *rank_main(void *p) {
    rank_job *j = p;
    mt_comm *comm = &g_comms[j->rank];
    mt_model_config c;
    config(&c, 2, j->rank, j->arch);
    j->st = mt_model_create(&c, comm, &j->m);
    if (j->st != MT_OK) return NULL;
    mt_model_init_weights(j->m, 31);
    mt_batch b = make_batch();
    mt_model_zero_grad(j->m);
    j->st = mt_model_forward(j->m, &b, 1, 5, 3, &j->loss);
    if (j->st == MT_OK) j->st = mt_model_backward(j->m, 1.0f);
    return NULL;
}

static double maxabs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

static void run(mt_arch arch) {
    fprintf(stderr, "== %s\n", arch == MT_ARCH_BERT ? "post-LN" : "pre-LN");
    mt_model_config c1;
    config(&c1, 1, 0, arch);
    mt_model *m1 = NULL;
    CHECK_OK(mt_model_create(&c1, NULL, &m1));
    if (!m1) return;
    mt_model_init_weights(m1, 31);
    mt_batch b = make_batch();
    float loss1;
    mt_model_zero_grad(m1);
    CHECK_OK(mt_model_forward(m1, &b, 1, 5, 3, &loss1));
    CHECK_OK(mt_model_backward(m1, 1.0f));

    rank_job jobs[2] = {{0, arch, NULL, 0, MT_OK}, {1, arch, NULL, 0, MT_OK}};
    pthread_t th[2];
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, rank_main, &jobs[r]);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    CHECK(jobs[0].st == MT_OK && jobs[1].st == MT_OK);
    if (jobs[0].st != MT_OK || jobs[1].st != MT_OK) goto out;
    fprintf(stderr, "  loss TP=1 %.7f, TP=2 ranks %.7f %.7f\n", loss1, jobs[0].loss, jobs[1].loss);
    CHECK(fabs(loss1 - jobs[0].loss) <= 1e-5 * fabs(loss1) && jobs[0].loss == jobs[1].loss);
    size_t n1, n2;
    const float *l1 = mt_model_logits(m1, &n1), *l2 = mt_model_logits(jobs[0].m, &n2);
    CHECK(n1 == n2);
    if (n1 == n2) mt_check_close("logits", l2, l1, n1, 1e-5 * maxabs(l1, n1), 1e-4);
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
                else if (p2->split_dim == 1) v = q < p2->shape[1] ? ga[r * p2->shape[1] + q] : gb[r * p2->shape[1] + q - p2->shape[1]];
                else {
                    v = ga[r * cols + q];
                    if (gb[r * cols + q] != v) CHECK_MSG(0, "%s: replicated gradient differs across ranks", p1->name);
                }
                cat[r * cols + q] = v;
            }
        mt_check_close(p1->name, cat, g1, p1->numel, 1e-5 * fmax(maxabs(g1, p1->numel), 1e-6), 1e-4);
        free(cat);
    }
out:
    for (int r = 0; r < 2; r++) mt_model_free(jobs[r].m);
    mt_model_free(m1);
}

int main(void) {
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 131 + 7) % 1000; // both halves of the vocab, so both ranks' lookups matter
        types[i] = (i % T) >= T / 2;
        mask[i] = !(i / T == 1 && i % T >= 5);
        labels[i] = i % 3;
    }
    thread_comm_init(&g_sc, g_comms, 2);
    run(MT_ARCH_MEGATRON);
    run(MT_ARCH_BERT);
    thread_comm_destroy(&g_sc);
    TEST_DONE();
}
