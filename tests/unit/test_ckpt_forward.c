// End to end: a Megatron checkpoint written by PyTorch (version 0 and 3.0, TP=2 shards; version
// 1.0 TP=4) is loaded into megatune at TP=1 and at TP=2 (two threads sharing an in-process
// communicator), the encoder runs, and the final hidden states match a plain PyTorch forward
// (tools/ckpt_forward_ref.py) on the merged weights at every valid position.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/state_dict.h"
#include "model/model.h"
#include "parallel/comm.h"
#include "test_util.h"
#include "thread_comm.h"

// ---- the test ----
enum { B = 2, T = 12 };
static int32_t ids[B * T], mask[B * T];

static void config(mt_model_config *c, int tp, int rank) {
    mt_model_config_defaults(c);
    c->vocab_size = 300;
    c->hidden_size = 64;
    c->num_layers = 2;
    c->num_attention_heads = 4;
    c->max_position_embeddings = 32;
    c->tp_size = tp;
    c->tp_rank = rank;
}

typedef struct {
    const char *ckpt;
    int tp, rank;
    mt_comm *comm;
    float *hidden; // out, B*T*H
    mt_status status;
    char err[512];
} job;

static void *run_job(void *arg) {
    job *j = arg;
    mt_model_config cfg;
    config(&cfg, j->tp, j->rank);
    mt_model *m = NULL;
    j->status = mt_model_create(&cfg, j->comm, &m);
    if (j->status == MT_OK) j->status = mt_megatron_load(j->ckpt, m, NULL);
    mt_batch b = {0};
    b.B = B;
    b.T = T;
    b.input_ids = ids;
    b.attention_mask = mask;
    float loss;
    if (j->status == MT_OK) j->status = mt_model_forward(m, &b, 0, 0, 0, &loss);
    if (j->status == MT_OK) memcpy(j->hidden, mt_model_hidden(m), sizeof(float) * B * T * 64);
    else snprintf(j->err, sizeof j->err, "%s", mt_last_error());
    mt_model_free(m);
    return NULL;
}

static void compare_valid(const char *what, const float *got, const float *want) {
    float g[B * T * 64], w[B * T * 64];
    size_t n = 0;
    for (int i = 0; i < B * T; i++)
        if (mask[i])
            for (int k = 0; k < 64; k++) {
                g[n] = got[i * 64 + k];
                w[n] = want[i * 64 + k];
                n++;
            }
    mt_check_close(what, g, w, n, 2e-4, 2e-4);
}

int main(void) {
    const char *py = mt_test_env("MEGATUNE_PYTHON", "/usr/bin/python3");
    const char *src = mt_test_env("MEGATUNE_SOURCE_DIR", ".");
    char cmd[4096], p[1400];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' 2>/dev/null", py);
    if (system(cmd) != 0) TEST_SKIP("no PyTorch at %s", py);
    char dir[] = "/tmp/mt_ckpt_fwd_XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("no temp dir");
    uint32_t x = 99;
    for (int i = 0; i < B * T; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)(x >> 8) % 300;
        mask[i] = !(i / T == 1 && i % T >= 8); // second sequence: 4 padding positions
    }
    snprintf(p, sizeof p, "%s/batch.txt", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "%d %d\n", B, T);
    for (int i = 0; i < B * T; i++) fprintf(f, "%d%c", ids[i], i % T == T - 1 ? '\n' : ' ');
    for (int i = 0; i < B * T; i++) fprintf(f, "%d%c", mask[i], i % T == T - 1 ? '\n' : ' ');
    fclose(f);
    const char *variants[][2] = {{"v0", "--version 0 --tp 2"}, {"v3", "--version 3 --tp 2"}, {"v1", "--version 1 --tp 4 --legacy"}};
    for (int v = 0; v < 3; v++) {
        char ck[1200];
        snprintf(ck, sizeof ck, "%s/%s", dir, variants[v][0]);
        snprintf(cmd, sizeof cmd, "%s %s/tools/make_megatron_ckpt.py %s %s && %s %s/tools/ckpt_forward_ref.py %s 4 %s/batch.txt %s/ref.f32",
                 py, src, ck, variants[v][1], py, src, ck, dir, ck);
        if (system(cmd) != 0) {
            CHECK_MSG(0, "python failed: %s", cmd);
            continue;
        }
        float *ref = malloc(sizeof(float) * B * T * 64);
        snprintf(p, sizeof p, "%s/ref.f32", ck);
        f = fopen(p, "rb");
        CHECK(f && fread(ref, sizeof(float), B * T * 64, f) == B * T * 64);
        if (f) fclose(f);
        // TP = 1
        job j1 = {ck, 1, 0, NULL, malloc(sizeof(float) * B * T * 64), MT_OK, ""};
        run_job(&j1);
        CHECK_MSG(j1.status == MT_OK, "%s TP=1: %s", variants[v][0], j1.err);
        char what[128];
        snprintf(what, sizeof what, "%s (%s) loaded at TP=1: hidden vs torch", variants[v][0], variants[v][1]);
        if (j1.status == MT_OK) compare_valid(what, j1.hidden, ref);
        // TP = 2, two threads
        thread_comm_shared sh;
        mt_comm comms[2];
        thread_comm_init(&sh, comms, 2);
        job j2[2];
        pthread_t th[2];
        for (int r = 0; r < 2; r++) {
            j2[r] = (job){ck, 2, r, &comms[r], malloc(sizeof(float) * B * T * 64), MT_OK, ""};
            pthread_create(&th[r], NULL, run_job, &j2[r]);
        }
        for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
        for (int r = 0; r < 2; r++) {
            CHECK_MSG(j2[r].status == MT_OK, "%s TP=2 rank %d: %s", variants[v][0], r, j2[r].err);
            snprintf(what, sizeof what, "%s (%s) loaded at TP=2 rank %d: hidden vs torch", variants[v][0], variants[v][1], r);
            if (j2[r].status == MT_OK) compare_valid(what, j2[r].hidden, ref);
            free(j2[r].hidden);
        }
        thread_comm_destroy(&sh);
        free(j1.hidden);
        free(ref);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
