// Punctuation/capitalisation on real features against PyTorch (tools/torch_ref.py, float64):
// CoNLL-2003 dev sentences, detokenised (a token of only , . ? ! ; : is glued to the word before
// it), go through `data import-pnc` (mt_data_import_pnc) and the P&C loader with small windows;
// the two-head model (punct_classifier 2 layers gelu, capit_classifier 1 layer) then runs
//   - one forward/backward: logits of both heads, the summed loss and every gradient;
//   - a 20-step AdamW + WarmupAnnealing + clip_grad_norm trace over 5 different batches in order.
// Also checked on the way: the importer's labels for a known sentence, and that the features put
// each word's punct/capit labels on all its pieces with [CLS]/[SEP] at id 0.
// Tolerances as test_parity_two_heads.c / test_task_parity.c: logits atol 2e-5*max + rtol 1e-4,
// gradients atol max(1e-4*max, 1e-6) + rtol 1e-3, per-step trace loss rel 2e-4.
#include "parity_util.h"
#include "model/optim.h"
#include "model/sched.h"
#include "tasks/data_tools.h"
#include "tasks/task.h"

#define NB 5
#define STEPS 20

static void detok(const char *src, const char *dst) {
    FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
    CHECK(in && out);
    if (!in || !out) {
        if (in) fclose(in);
        if (out) fclose(out);
        return;
    }
    char line[8192];
    int lines = 0;
    while (fgets(line, sizeof line, in) && lines < 400) {
        char *save = NULL, *w = strtok_r(line, " \n", &save);
        int first = 1;
        for (; w; w = strtok_r(NULL, " \n", &save)) {
            int glue = !first && strlen(w) == 1 && strchr(",.?!;:", w[0]);
            fprintf(out, "%s%s", glue || first ? "" : " ", w);
            first = 0;
        }
        fputc('\n', out);
        lines++;
    }
    fclose(in);
    fclose(out);
}

int main(void) {
    const char *data = getenv("MEGATUNE_DATA");
    if (!data || !*data) TEST_SKIP("MEGATUNE_DATA not set");
    char vp[1024], p[1024], raw[1024];
    snprintf(vp, sizeof vp, "%s/bert-base-uncased/vocab.txt", data);
    snprintf(p, sizeof p, "%s/conll2003/eng.testa", data);
    if (access(vp, R_OK) != 0 || access(p, R_OK) != 0) TEST_SKIP("vocab or CoNLL-2003 not found");
    const char *dir = parity_tmpdir();
    CHECK_OK(mt_data_import_iob(p, dir, "conll", NULL, NULL));
    snprintf(p, sizeof p, "%s/text_conll.txt", dir);
    snprintf(raw, sizeof raw, "%s/dev.txt", dir);
    detok(p, raw);
    size_t nl = 0, nw = 0;
    CHECK_OK(mt_data_import_pnc(raw, dir, &nl, &nw));
    CHECK(nl == 400 && nw > 2000);
    // eng.testa line 1 is "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER INNINGS VICTORY ."; the free "-"
    // vanishes, the "." glued to VICTORY becomes its label, every word starts upper case
    {
        char tpath[1100], lpath[1100], t[256] = "", l[256] = "";
        snprintf(tpath, sizeof tpath, "%s/text_dev.txt", dir);
        snprintf(lpath, sizeof lpath, "%s/labels_dev.txt", dir);
        FILE *ft = fopen(tpath, "r"), *fl = fopen(lpath, "r");
        CHECK(ft && fl && fgets(t, sizeof t, ft) && fgets(l, sizeof l, fl));
        if (ft) fclose(ft);
        if (fl) fclose(fl);
        CHECK_MSG(!strcmp(t, "cricket leicestershire take over at top after innings victory\n"), "text line 1: %s", t);
        CHECK_MSG(!strcmp(l, "OU OU OU OU OU OU OU OU .U\n"), "labels line 1: %s", l);
    }
    mt_vocab *v = NULL;
    CHECK_OK(mt_vocab_load(vp, &v));
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    mt_tokenizer *tok = NULL;
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    if (!tok) TEST_DONE();
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_PUNCT_CAPIT);
    o.max_seq_length = 24; // some sentences become several windows
    mt_dataset *d = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, dir, "dev", NULL, &d));
    if (!d) TEST_DONE();
    mt_head_kind h1, h2;
    int nc1, nc2;
    mt_dataset_head(d, &h1, &nc1);
    mt_dataset_head2(d, &h2, &nc2);
    CHECK(h1 == MT_HEAD_TOKEN_CLASSIFIER && h2 == MT_HEAD_TOKEN_CLASSIFIER && nc1 == 3 && nc2 == 2); // no '?' in these 400 lines
    CHECK(!strcmp(mt_dataset_label_name(d, 0), "O") && !strcmp(mt_dataset_label_name(d, 1), ",") &&
          !strcmp(mt_dataset_label_name(d, 2), "."));
    CHECK(!strcmp(mt_dataset_label_name2(d, 0), "O") && !strcmp(mt_dataset_label_name2(d, 1), "U"));
    CHECK(mt_dataset_size(d) > 400); // windows

    mt_model_config c;
    parity_small_config(&c, MT_ARCH_MEGATRON, MT_HEAD_TOKEN_CLASSIFIER);
    c.vocab_size = 30522;
    c.num_classes = nc1;
    c.head2 = MT_HEAD_TOKEN_CLASSIFIER;
    c.num_classes2 = nc2;
    snprintf(c.head_prefix, sizeof c.head_prefix, "punct_classifier");
    snprintf(c.head2_prefix, sizeof c.head2_prefix, "capit_classifier");
    c.head_num_layers = 2;
    c.head_activation = MT_ACT_GELU;
    c.head2_num_layers = 1;
    mt_model *m = NULL;
    CHECK_OK(mt_model_create(&c, NULL, &m));
    if (!m) TEST_DONE();
    mt_model_init_weights(m, 99);
    const mt_param_table *t = mt_model_params(m);
    for (int i = 0; i < t->count; i++)
        if (t->params[i].group == MT_PARAM_HEAD)
            for (size_t e = 0; e < t->params[i].numel; e++) mt_model_param(m, i)[e] *= 10.0f;
    const mt_model_config *fc = mt_model_get_config(m);

    // batches: 4 features each, different ones per batch
    mt_batch_buffer buf[NB];
    mt_batch b[NB];
    memset(buf, 0, sizeof buf);
    int pieces_checked = 0;
    for (int k = 0; k < NB; k++) {
        size_t idx[4];
        for (int i = 0; i < 4; i++) idx[i] = (size_t)(k * 37 + i * 5 + 1) % mt_dataset_size(d);
        CHECK_OK(mt_dataset_make_batch(d, idx, 4, &buf[k], &b[k]));
        CHECK(b[k].labels && b[k].labels2 && b[k].loss_mask);
        // [CLS] carries pad id 0 in both label rows
        for (int r = 0; r < 4; r++) {
            CHECK(b[k].labels[r * b[k].T] == 0 && b[k].labels2[r * b[k].T] == 0);
            for (int q = 1; q + 1 < b[k].T; q++) { // a non-first piece (## prefix) repeats the piece before it
                size_t at = (size_t)r * b[k].T + q;
                if (!b[k].attention_mask[at + 1]) break;
                const char *pc = mt_vocab_token(v, b[k].input_ids[at]);
                if (pc && pc[0] == '#' && pc[1] == '#' && q > 1) {
                    CHECK(b[k].labels[at] == b[k].labels[at - 1] && b[k].labels2[at] == b[k].labels2[at - 1]);
                    pieces_checked++;
                }
            }
        }
    }
    CHECK_MSG(pieces_checked > 0, "no word piece continuation in the batches");

    char extra[1024], cfg[512], in[512], out[512], cfg2[512], out2[512];
    const double lr = 1e-3, wd = 0.01, clip = 1.0;
    snprintf(extra, sizeof extra,
             "\"head2\": \"token\", \"head2_prefix\": \"capit_classifier\", \"head2_mlp\": \"mlp\", \"num_classes2\": %d, "
             "\"head2_num_layers\": 1, \"head2_activation\": \"relu\"", nc2);
    snprintf(cfg, sizeof cfg, "%s/pnc.json", dir);
    snprintf(in, sizeof in, "%s/pnc.in", dir);
    snprintf(out, sizeof out, "%s/pnc.out", dir);
    parity_write_config(cfg, fc, extra);
    char extra2[1400];
    snprintf(extra2, sizeof extra2, "%s, \"trace\": {\"steps\": %d, \"lr\": %g, \"beta1\": 0.9, \"beta2\": 0.999, "
             "\"eps\": 1e-8, \"weight_decay\": %g, \"warmup_ratio\": 0.1, \"sched\": \"WarmupAnnealing\", \"clip\": %g}",
             extra, STEPS, lr, wd, clip);
    snprintf(cfg2, sizeof cfg2, "%s/pnc_trace.json", dir);
    snprintf(out2, sizeof out2, "%s/pnc_trace.out", dir);
    parity_write_config(cfg2, fc, extra2);
    mttf_writer w;
    CHECK(mttf_open(&w, in));
    parity_write_params(&w, m);
    for (int k = 0; k < NB; k++) {
        char name[64];
        int64_t bt[2] = {b[k].B, b[k].T};
        const char *pre = "batch";
        char tp[32];
        for (int pass = 0; pass < (k == 0 ? 2 : 1); pass++) {
            snprintf(tp, sizeof tp, "trace_batch%d", k);
            const char *px = pass ? pre : tp;
#define ADD(field, type, ptr) (snprintf(name, sizeof name, "%s/%s", px, field), mttf_add(&w, name, type, 2, bt, ptr))
            ADD("input_ids", MTTF_I32, b[k].input_ids);
            ADD("token_type_ids", MTTF_I32, b[k].token_type_ids);
            ADD("attention_mask", MTTF_I32, b[k].attention_mask);
            ADD("labels", MTTF_I32, b[k].labels);
            ADD("labels2", MTTF_I32, b[k].labels2);
            ADD("loss_mask", MTTF_F32, b[k].loss_mask);
#undef ADD
        }
    }
    mttf_close(&w);
    if (!parity_run_ref(cfg, in, out) || !parity_run_ref(cfg2, in, out2)) {
        mt_test_failures++;
        TEST_DONE();
    }
    // one forward/backward on batch 0
    mttf_file ref;
    CHECK(mttf_read(&ref, out));
    const mttf_tensor *rl = mttf_find(&ref, "logits"), *rloss = mttf_find(&ref, "loss");
    CHECK(rl && rloss);
    float loss = 0;
    mt_model_zero_grad(m);
    CHECK_OK(mt_model_forward(m, &b[0], 1, 7, 0, &loss));
    CHECK_OK(mt_model_backward(m, 1.0f));
    size_t n = 0;
    const float *lg = mt_model_logits(m, &n);
    double worst = 0;
    if (rl && rloss && n == rl->n) {
        mt_check_close("pnc logits", lg, rl->f, n, 2e-5 * parity_max_abs(rl->f, n), 1e-4);
        CHECK_MSG(fabs(loss - rloss->f[0]) <= 1e-5 * fabs(rloss->f[0]), "loss %.8f vs torch %.8f", loss, rloss->f[0]);
        for (int i = 0; i < t->count; i++) {
            char name[200];
            snprintf(name, sizeof name, "grad/%s", t->params[i].name);
            const mttf_tensor *g = mttf_find(&ref, name);
            CHECK_MSG(g && g->n == t->params[i].numel, "%s missing", name);
            if (!g || g->n != t->params[i].numel) continue;
            double sc = parity_max_abs(g->f, g->n);
            for (size_t e = 0; sc > 1e-6 && e < g->n; e++) worst = mt_test_worst(worst, fabs(mt_model_grad(m, i)[e] - g->f[e]) / sc);
            mt_check_close(t->params[i].name, mt_model_grad(m, i), g->f, g->n, fmax(1e-4 * sc, 1e-6), 1e-3);
        }
        fprintf(stderr, "SUMMARY pnc real features: loss %.7f (torch %.7f), worst max|grad err|/max|grad| %.2e\n", loss,
                rloss->f[0], worst);
    } else {
        CHECK_MSG(0, "logit count %zu vs reference %zu", n, rl ? rl->n : 0);
    }
    mttf_free(&ref);
    // the 20-step trace from the same initial weights (the forward above changed no weight)
    mttf_file tr;
    CHECK(mttf_read(&tr, out2));
    const mttf_tensor *tl = mttf_find(&tr, "trace/loss");
    CHECK(tl && tl->n == STEPS);
    mt_optim_config oc;
    mt_optim_config_default(&oc, MT_OPTIM_ADAMW);
    oc.weight_decay = (float)wd;
    mt_optimizer *opt = NULL;
    CHECK_OK(mt_optimizer_create(&oc, t, &opt));
    mt_sched_config sc = {MT_SCHED_WARMUP_ANNEALING, lr, 0.0, STEPS, -1, 0.1};
    float losses[STEPS];
    for (int s = 0; s < STEPS && opt; s++) {
        mt_model_zero_grad(m);
        CHECK_OK(mt_model_forward(m, &b[s % NB], 1, 7, (uint64_t)s, &losses[s]));
        CHECK_OK(mt_model_backward(m, 1.0f));
        mt_clip_grad_norm(mt_model_grad_data(m), t, (float)clip, NULL);
        mt_optimizer_step(opt, mt_model_param_data(m), mt_model_grad_data(m), (float)mt_sched_lr(&sc, s));
    }
    if (tl && tl->n == STEPS && opt) {
        double wr = 0;
        for (int s = 0; s < STEPS; s++) wr = mt_test_worst(wr, fabs(losses[s] - tl->f[s]) / fabs(tl->f[s]));
        fprintf(stderr, "SUMMARY pnc 20-step trace: loss %.6f -> %.6f (torch %.6f -> %.6f), worst rel err %.2e\n",
                losses[0], losses[STEPS - 1], tl->f[0], tl->f[STEPS - 1], wr);
        mt_check_close("pnc 20-step loss trace", losses, tl->f, STEPS, 0, 2e-4);
        float first = 0, last = 0;
        for (int k = 0; k < NB; k++) first += losses[k], last += losses[STEPS - NB + k];
        CHECK_MSG(last < first, "loss did not fall (%g -> %g)", first, last);
    }
    mttf_free(&tr);
    mt_optimizer_free(opt);
    for (int k = 0; k < NB; k++) mt_batch_buffer_free(&buf[k]);
    mt_model_free(m);
    mt_dataset_free(d);
    mt_tokenizer_free(tok);
    TEST_DONE();
}
