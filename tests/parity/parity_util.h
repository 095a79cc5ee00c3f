// Helpers for the PyTorch parity tests: the MTTF tensor file (see tools/torch_ref.py), running the
// reference script, and a model configuration/batch maker. Header-only; include once per test.
#ifndef MT_PARITY_UTIL_H
#define MT_PARITY_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "model/model.h"
#include "test_util.h"

enum { MTTF_F32 = 0, MTTF_I32 = 1, MTTF_F64 = 2 };

typedef struct {
    FILE *f;
    uint32_t count;
} mttf_writer;

static inline int mttf_open(mttf_writer *w, const char *path) {
    w->f = fopen(path, "wb");
    w->count = 0;
    if (!w->f) return 0;
    uint32_t hdr[2] = {1, 0};
    fwrite("MTTF", 1, 4, w->f);
    fwrite(hdr, 4, 2, w->f);
    return 1;
}

static inline void mttf_add(mttf_writer *w, const char *name, int dtype, int ndim, const int64_t *dims, const void *data) {
    uint32_t nl = (uint32_t)strlen(name), dt = (uint32_t)dtype, nd = (uint32_t)ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
    fwrite(&nl, 4, 1, w->f);
    fwrite(name, 1, nl, w->f);
    fwrite(&dt, 4, 1, w->f);
    fwrite(&nd, 4, 1, w->f);
    fwrite(dims, 8, (size_t)ndim, w->f);
    fwrite(data, dtype == MTTF_F64 ? 8 : 4, n, w->f);
    w->count++;
}

static inline void mttf_close(mttf_writer *w) {
    fseek(w->f, 8, SEEK_SET);
    fwrite(&w->count, 4, 1, w->f);
    fclose(w->f);
}

typedef struct {
    char name[160];
    int dtype, ndim;
    int64_t dims[4];
    size_t n;
    float *f; // f32 data (f64 converted)
} mttf_tensor;

typedef struct {
    mttf_tensor *t;
    int count;
} mttf_file;

static inline int mttf_read(mttf_file *out, const char *path) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[4];
    uint32_t hdr[2];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "MTTF", 4) != 0 || fread(hdr, 4, 2, f) != 2) {
        fclose(f);
        return 0;
    }
    out->t = calloc(hdr[1] ? hdr[1] : 1, sizeof *out->t);
    for (uint32_t i = 0; i < hdr[1]; i++) {
        mttf_tensor *t = &out->t[i];
        uint32_t nl, dt, nd;
        if (fread(&nl, 4, 1, f) != 1 || nl >= sizeof t->name || fread(t->name, 1, nl, f) != nl) break;
        t->name[nl] = 0;
        if (fread(&dt, 4, 1, f) != 1 || fread(&nd, 4, 1, f) != 1 || nd > 4) break;
        if (fread(t->dims, 8, nd, f) != nd) break;
        t->dtype = (int)dt;
        t->ndim = (int)nd;
        t->n = 1;
        for (uint32_t d = 0; d < nd; d++) t->n *= (size_t)t->dims[d];
        t->f = malloc((t->n ? t->n : 1) * sizeof(float));
        if (dt == MTTF_F64) {
            for (size_t e = 0; e < t->n; e++) {
                double v;
                if (fread(&v, 8, 1, f) != 1) break;
                t->f[e] = (float)v;
            }
        } else if (fread(t->f, 4, t->n, f) != t->n) {
            break;
        }
        out->count = (int)i + 1;
    }
    fclose(f);
    return out->count == (int)hdr[1];
}

static inline const mttf_tensor *mttf_find(const mttf_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static inline void mttf_free(mttf_file *f) {
    for (int i = 0; i < f->count; i++) free(f->t[i].f);
    free(f->t);
    memset(f, 0, sizeof *f);
}

// Writes every parameter of a TP=1 model as "param/<name>".
static inline void parity_write_params(mttf_writer *w, mt_model *m) {
    const mt_param_table *t = mt_model_params(m);
    for (int i = 0; i < t->count; i++) {
        const mt_param *p = &t->params[i];
        char name[200];
        snprintf(name, sizeof name, "param/%s", p->name);
        mttf_add(w, name, MTTF_F32, p->ndim, p->shape, mt_model_param(m, i));
    }
}

// Runs tools/torch_ref.py; exits 77 (skip) when PyTorch is missing. Returns 1 on success.
static inline int parity_run_ref(const char *cfg_path, const char *in_path, const char *out_path) {
    const char *py = mt_test_env("MEGATUNE_PYTHON", "/usr/bin/python3");
    const char *src = mt_test_env("MEGATUNE_SOURCE_DIR", ".");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 '%s' '%s/tools/torch_ref.py' --config '%s' --input '%s' --output '%s'",
             py, src, cfg_path, in_path, out_path);
    int rc = system(cmd);
    if (rc == -1) TEST_SKIP("cannot run %s", py);
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
    if (code == 77) TEST_SKIP("PyTorch is not importable by %s", py);
    if (code != 0) {
        fprintf(stderr, "reference failed (exit %d): %s\n", code, cmd);
        return 0;
    }
    return 1;
}

// A temporary directory for one test's files, removed at exit (MEGATUNE_KEEP_PARITY=1 keeps it).
static char parity_dir_[256];
static inline void parity_tmpdir_cleanup_(void) {
    if (!parity_dir_[0] || getenv("MEGATUNE_KEEP_PARITY")) return;
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", parity_dir_);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", parity_dir_);
}
static inline const char *parity_tmpdir(void) {
    if (!parity_dir_[0]) {
        snprintf(parity_dir_, sizeof parity_dir_, "%s/mt_parity_XXXXXX", mt_test_env("TMPDIR", "/tmp"));
        if (!mkdtemp(parity_dir_)) TEST_SKIP("cannot create a temporary directory");
        atexit(parity_tmpdir_cleanup_);
    }
    return parity_dir_;
}

static inline const char *gelu_name(mt_gelu_kind g) { return g == MT_GELU_TANH ? "tanh" : g == MT_GELU_ONNX ? "onnx" : "erf"; }
static inline const char *head_name(mt_head_kind h) {
    switch (h) {
    case MT_HEAD_TOKEN_CLASSIFIER: return "token";
    case MT_HEAD_SEQUENCE_CLASSIFIER: return "sequence";
    case MT_HEAD_SEQUENCE_REGRESSION: return "regression";
    case MT_HEAD_QA: return "qa";
    default: return "none";
    }
}
static inline const char *act_name(mt_activation a) { return a == MT_ACT_GELU ? "gelu" : a == MT_ACT_TANH ? "tanh" : "relu"; }

// Writes the JSON config the reference reads; `extra` is appended inside the object (may be "").
static inline void parity_write_config(const char *path, const mt_model_config *c, const char *extra) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "{\"arch\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, \"num_layers\": %d, "
               "\"num_attention_heads\": %d, \"layernorm_eps\": %.9g, \"gelu\": \"%s\", \"head\": \"%s\", "
               "\"num_classes\": %d, \"head_num_layers\": %d, \"head_activation\": \"%s\", \"head_prefix\": \"%s\"%s%s}\n",
            c->arch == MT_ARCH_BERT ? "bert" : "megatron", c->vocab_size, c->hidden_size, c->num_layers,
            c->num_attention_heads, (double)c->layernorm_eps, gelu_name(c->gelu), head_name(c->head), c->num_classes,
            c->head_num_layers, act_name(c->head_activation), c->head_prefix, extra[0] ? ", " : "", extra);
    fclose(f);
}

// A random batch with varying lengths (row b keeps T - 5*b tokens, at least 3), token types 0 then 1.
typedef struct {
    int B, T;
    int32_t *ids, *types, *mask, *labels, *start, *end;
    float *loss_mask, *targets, *class_weights;
    mt_batch batch;
} parity_batch;

static inline void parity_batch_make(parity_batch *pb, const mt_model_config *c, int B, int T, uint64_t seed,
                              int with_loss_mask, int with_class_weights) {
    memset(pb, 0, sizeof *pb);
    size_t N = (size_t)B * T;
    pb->B = B;
    pb->T = T;
    pb->ids = calloc(N, 4);
    pb->types = calloc(N, 4);
    pb->mask = calloc(N, 4);
    pb->labels = calloc(N, 4);
    pb->start = calloc((size_t)B, 4);
    pb->end = calloc((size_t)B, 4);
    pb->loss_mask = calloc(N, 4);
    pb->targets = calloc((size_t)B, 4);
    int nc = c->num_classes > 0 ? c->num_classes : 2;
    pb->class_weights = calloc((size_t)nc, 4);
    uint64_t k = 0;
    for (int b = 0; b < B; b++) {
        int len = T - 5 * b;
        if (len < 3) len = 3;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            pb->ids[i] = t < len ? (int32_t)(mt_rng_uniform(seed, 1, 0, k++) * c->vocab_size) : 0;
            if (pb->ids[i] >= c->vocab_size) pb->ids[i] = c->vocab_size - 1;
            pb->types[i] = t < len && t >= len / 2 ? 1 : 0;
            pb->mask[i] = t < len;
            pb->labels[i] = (int32_t)(mt_rng_uniform(seed, 2, 0, k++) * nc) % nc;
            pb->loss_mask[i] = t < len && mt_rng_uniform(seed, 3, 0, k++) < 0.7f ? 1.0f : 0.0f;
        }
        pb->loss_mask[(size_t)b * T] = 1.0f; // never an empty row
        pb->start[b] = (int32_t)(mt_rng_uniform(seed, 4, 0, (uint64_t)b) * len) % len;
        pb->end[b] = pb->start[b] + (int32_t)(mt_rng_uniform(seed, 5, 0, (uint64_t)b) * (len - pb->start[b]));
        if (pb->end[b] >= len) pb->end[b] = len - 1;
        pb->targets[b] = 2.0f * mt_rng_uniform(seed, 6, 0, (uint64_t)b) - 1.0f;
    }
    for (int i = 0; i < nc; i++) pb->class_weights[i] = 0.5f + 1.5f * mt_rng_uniform(seed, 7, 0, (uint64_t)i);
    mt_batch *bt = &pb->batch;
    memset(bt, 0, sizeof *bt);
    bt->B = B;
    bt->T = T;
    bt->input_ids = pb->ids;
    bt->token_type_ids = pb->types;
    bt->attention_mask = pb->mask;
    if (c->head == MT_HEAD_SEQUENCE_CLASSIFIER)
        for (int b = 0; b < B; b++) pb->labels[b] = pb->labels[(size_t)b * T];
    bt->labels = pb->labels;
    bt->loss_mask = with_loss_mask ? pb->loss_mask : NULL;
    bt->class_weights = with_class_weights ? pb->class_weights : NULL;
    bt->targets = pb->targets;
    bt->start_positions = pb->start;
    bt->end_positions = pb->end;
}

static inline void parity_batch_write(mttf_writer *w, const parity_batch *pb, const mt_model_config *c) {
    int64_t bt[2] = {pb->B, pb->T}, b1[1] = {pb->B}, nc[1] = {c->num_classes};
    mttf_add(w, "batch/input_ids", MTTF_I32, 2, bt, pb->ids);
    mttf_add(w, "batch/token_type_ids", MTTF_I32, 2, bt, pb->types);
    mttf_add(w, "batch/attention_mask", MTTF_I32, 2, bt, pb->mask);
    if (c->head == MT_HEAD_TOKEN_CLASSIFIER) mttf_add(w, "batch/labels", MTTF_I32, 2, bt, pb->labels);
    if (c->head == MT_HEAD_SEQUENCE_CLASSIFIER) mttf_add(w, "batch/labels", MTTF_I32, 1, b1, pb->labels);
    if (pb->batch.loss_mask) mttf_add(w, "batch/loss_mask", MTTF_F32, 2, bt, pb->loss_mask);
    if (pb->batch.class_weights) mttf_add(w, "batch/class_weights", MTTF_F32, 1, nc, pb->class_weights);
    if (c->head == MT_HEAD_SEQUENCE_REGRESSION) mttf_add(w, "batch/targets", MTTF_F32, 1, b1, pb->targets);
    if (c->head == MT_HEAD_QA) {
        mttf_add(w, "batch/start_positions", MTTF_I32, 1, b1, pb->start);
        mttf_add(w, "batch/end_positions", MTTF_I32, 1, b1, pb->end);
    }
}

static inline void parity_batch_free(parity_batch *pb) {
    free(pb->ids); free(pb->types); free(pb->mask); free(pb->labels); free(pb->start); free(pb->end);
    free(pb->loss_mask); free(pb->targets); free(pb->class_weights);
}

static inline double parity_max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    return m;
}

// The small shape every parity case starts from.
static inline void parity_small_config(mt_model_config *c, mt_arch arch, mt_head_kind head) {
    if (arch == MT_ARCH_BERT)
        mt_model_config_bert_defaults(c);
    else
        mt_model_config_defaults(c);
    c->vocab_size = 1000;
    c->hidden_size = 64;
    c->num_layers = 2;
    c->num_attention_heads = 4;
    c->max_position_embeddings = 32;
    c->hidden_dropout = c->attention_dropout = 0.0f;
    c->head = head;
    c->num_classes = head == MT_HEAD_TOKEN_CLASSIFIER ? 5 : head == MT_HEAD_SEQUENCE_CLASSIFIER ? 3 : 0;
    c->head_num_layers = head == MT_HEAD_QA || head == MT_HEAD_NONE ? 1 : 2;
}

#endif
