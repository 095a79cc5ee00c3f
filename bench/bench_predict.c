// Prediction throughput (forward only, sentences/s) of a small model on real SST-2 dev features
// built by the task loader, batched in order with dynamic padding. With --dump FILE it also writes
// the weights and every batch (MTTF, tools/torch_ref.py's format) so bench/bench_predict.py can
// time PyTorch on exactly the same batch shapes. bench/bench_predict.sh runs both.
//   bench_predict --data DIR [--hidden 256] [--layers 4] [--heads 4] [--batch 32] [--max_seq_length 128]
//                 [--repeat 3] [--dump FILE]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "tasks/task.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void put(FILE *f, const char *name, int dtype, int ndim, const int64_t *dims, const void *data) {
    uint32_t nl = (uint32_t)strlen(name), dt = (uint32_t)dtype, nd = (uint32_t)ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
    fwrite(&nl, 4, 1, f);
    fwrite(name, 1, nl, f);
    fwrite(&dt, 4, 1, f);
    fwrite(&nd, 4, 1, f);
    fwrite(dims, 8, (size_t)ndim, f);
    fwrite(data, 4, n, f);
}

int main(int argc, char **argv) {
    const char *data = getenv("MEGATUNE_DATA"), *dump = NULL;
    int hidden = 256, layers = 4, heads = 4, bs = 32, msl = 128, repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--hidden")) hidden = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--heads")) heads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) bs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max_seq_length")) msl = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dump")) dump = argv[i + 1];
        else { fprintf(stderr, "bench_predict: unknown option %s\n", argv[i]); return 2; }
    }
    if (!data) { fprintf(stderr, "bench_predict: give --data DIR (the shared data folder)\n"); return 2; }
    char p[1024];
    snprintf(p, sizeof p, "%s/bert-base-uncased/vocab.txt", data);
    mt_vocab *v = NULL;
    mt_tokenizer *tok = NULL;
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    if (mt_vocab_load(p, &v) || mt_tokenizer_create(v, &to, &tok)) { fprintf(stderr, "%s\n", mt_last_error()); return 1; }
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
    o.num_classes = 2;
    o.max_seq_length = msl;
    snprintf(p, sizeof p, "%s/glue/SST-2/dev.tsv", data);
    mt_dataset *d = NULL;
    if (mt_dataset_load(&o, tok, p, "dev", NULL, &d)) { fprintf(stderr, "%s\n", mt_last_error()); return 1; }
    mt_model_config c;
    mt_model_config_defaults(&c);
    c.vocab_size = 30522;
    c.hidden_size = hidden;
    c.num_layers = layers;
    c.num_attention_heads = heads;
    c.max_position_embeddings = msl + 8;
    c.hidden_dropout = c.attention_dropout = c.head_dropout = 0.0f;
    c.head = MT_HEAD_SEQUENCE_CLASSIFIER;
    c.num_classes = 2;
    c.head_num_layers = 2;
    mt_model *m = NULL;
    if (mt_model_create(&c, NULL, &m)) { fprintf(stderr, "%s\n", mt_last_error()); return 1; }
    mt_model_init_weights(m, 1);
    size_t n = mt_dataset_size(d), nb = (n + (size_t)bs - 1) / (size_t)bs;
    mt_batch_buffer buf = {0};
    size_t *idx = malloc((size_t)bs * sizeof *idx);
    FILE *df = NULL;
    uint32_t count = 0;
    if (dump) {
        df = fopen(dump, "wb");
        uint32_t hdr[2] = {1, 0};
        fwrite("MTTF", 1, 4, df);
        fwrite(hdr, 4, 2, df);
        const mt_param_table *t = mt_model_params(m);
        for (int i = 0; i < t->count; i++, count++) {
            char name[200];
            snprintf(name, sizeof name, "param/%s", t->params[i].name);
            put(df, name, 0, t->params[i].ndim, t->params[i].shape, mt_model_param(m, i));
        }
    }
    double best = 1e30;
    // model FLOPs of one pass: 2 per non-embedding weight per token, and the two attention
    // products, 4 * layers * hidden * T per token of a T-wide batch (padding included: both
    // programs compute it)
    double nonemb = 0, gflop = 0;
    {
        const mt_param_table *t = mt_model_params(m);
        for (int i = 0; i < t->count; i++) {
            mt_param_role r = t->params[i].role;
            if (r != MT_ROLE_WORD_EMB && r != MT_ROLE_POS_EMB && r != MT_ROLE_TYPE_EMB) nonemb += (double)t->params[i].numel;
        }
    }
    long tokens = 0;
    for (int r = 0; r < repeat; r++) {
        double t0 = now();
        tokens = 0;
        for (size_t bi = 0; bi < nb; bi++) {
            int k = 0;
            for (size_t i = bi * (size_t)bs; i < n && k < bs; i++) idx[k++] = i;
            mt_batch b;
            float loss;
            if (mt_dataset_make_batch(d, idx, k, &buf, &b) || mt_model_forward(m, &b, 0, 0, 0, &loss)) {
                fprintf(stderr, "%s\n", mt_last_error());
                return 1;
            }
            tokens += (long)b.B * b.T;
            if (r == 0) gflop += (2.0 * nonemb * b.B * b.T + 4.0 * layers * hidden * (double)b.B * b.T * b.T) / 1e9;
            if (df && r == 0) {
                int64_t dims[2] = {b.B, b.T};
                char name[64];
                snprintf(name, sizeof name, "batch%04zu/input_ids", bi);
                put(df, name, 1, 2, dims, b.input_ids);
                snprintf(name, sizeof name, "batch%04zu/token_type_ids", bi);
                put(df, name, 1, 2, dims, b.token_type_ids);
                snprintf(name, sizeof name, "batch%04zu/attention_mask", bi);
                put(df, name, 1, 2, dims, b.attention_mask);
                count += 3;
            }
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    if (df) {
        fseek(df, 8, SEEK_SET);
        fwrite(&count, 4, 1, df);
        fclose(df);
    }
    printf("megatune: %zu sentences in %zu batches (%ld padded tokens, %.1f GFLOP), best of %d: %.3f s = %.1f "
           "sentences/s\n", n, nb, tokens, gflop, repeat, best, (double)n / best);
    printf("config: hidden %d layers %d heads %d batch %d max_seq_length %d\n", hidden, layers, heads, bs, msl);
    free(idx);
    mt_batch_buffer_free(&buf);
    mt_model_free(m);
    mt_dataset_free(d);
    mt_tokenizer_free(tok);
    return 0;
}
