// Loads Megatron-LM checkpoints written by PyTorch (tools/make_megatron_ckpt.py: versions 0,
// 1.0, 2.0, 3.0; TP 1, 2, 4; zip and legacy containers; fp16, bf16 and fp32; old and new key
// names; flat state dicts)
// into models at TP=1, TP=2 (both ranks) and TP=4 (rank 3), and compares every parameter with
// the merged fp32 weights PyTorch wrote next to each checkpoint.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/state_dict.h"
#include "model/model.h"
#include "test_util.h"

typedef struct {
    char name[256];
    int ndim;
    int64_t d0, d1, off;
} exp_entry;

typedef struct {
    exp_entry *e;
    int n;
    float *data;
} expected;

static int load_expected(const char *dir, expected *x) {
    char p[1024];
    snprintf(p, sizeof p, "%s/expected.idx", dir);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    x->e = calloc(4096, sizeof *x->e);
    x->n = 0;
    while (x->n < 4096 && fscanf(f, "%255s %d %lld %lld %lld", x->e[x->n].name, &x->e[x->n].ndim, (long long *)&x->e[x->n].d0,
                                 (long long *)&x->e[x->n].d1, (long long *)&x->e[x->n].off) == 5)
        x->n++;
    fclose(f);
    snprintf(p, sizeof p, "%s/expected.f32", dir);
    f = fopen(p, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    x->data = malloc((size_t)sz);
    size_t got = fread(x->data, 1, (size_t)sz, f);
    fclose(f);
    return got == (size_t)sz;
}

static const exp_entry *find_exp(const expected *x, const char *name) {
    for (int i = 0; i < x->n; i++)
        if (!strcmp(x->e[i].name, name)) return &x->e[i];
    return NULL;
}

static void free_expected(expected *x) {
    free(x->e);
    free(x->data);
}

static void small_config(mt_model_config *c, int tp, int rank) {
    mt_model_config_defaults(c);
    c->vocab_size = 300;
    c->hidden_size = 64;
    c->num_layers = 2;
    c->num_attention_heads = 4;
    c->max_position_embeddings = 32;
    c->tp_size = tp;
    c->tp_rank = rank;
}

// Compares every encoder parameter of a loaded span with the expected merged weights.
static void compare(const char *variant, const mt_model_config *cfg, const mt_param_table *tab, const float *span,
                    const expected *x) {
    int bad = 0;
    for (int i = 0; i < tab->count; i++) {
        const mt_param *p = &tab->params[i];
        const char *mn = mt_param_megatron_name(p);
        if (!mn) continue;
        const exp_entry *e = find_exp(x, mn);
        if (!e) {
            fprintf(stderr, "%s: no expected tensor for %s\n", variant, mn);
            mt_test_failures++;
            continue;
        }
        const float *E = x->data + e->off;
        const float *got = span + p->offset;
        int64_t rows = p->shape[0], cols = p->ndim == 2 ? p->shape[1] : 1;
        int64_t ecols = e->d1;
        for (int64_t r = 0; r < rows && bad < 5; r++)
            for (int64_t c = 0; c < cols && bad < 5; c++) {
                int64_t gr = r, gc = c;
                if (p->split == MT_SPLIT_COLUMN || p->split == MT_SPLIT_VOCAB) gr = cfg->tp_rank * rows + r;
                if (p->split == MT_SPLIT_ROW) gc = cfg->tp_rank * cols + c;
                float want = gr < e->d0 ? E[gr * ecols + gc] : 0.0f;
                float g = got[r * cols + c];
                if (g != want) {
                    fprintf(stderr, "%s tp=%d rank=%d: %s[%lld,%lld] = %g, want %g\n", variant, cfg->tp_size, cfg->tp_rank,
                            p->name, (long long)r, (long long)c, g, want);
                    bad++;
                }
            }
    }
    if (bad) mt_test_failures++;
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == 0;
}

int main(void) {
    const char *py = mt_test_env("MEGATUNE_PYTHON", "/usr/bin/python3");
    const char *src = mt_test_env("MEGATUNE_SOURCE_DIR", ".");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' 2>/dev/null", py);
    if (!run_cmd(cmd)) TEST_SKIP("no PyTorch at %s", py);
    char dir[] = "/tmp/mt_ckpt_megatron_XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("cannot make a temp dir");
    snprintf(cmd, sizeof cmd, "%s %s/tools/make_megatron_ckpt.py %s --matrix", py, src, dir);
    CHECK(run_cmd(cmd));
    char p[1024];
    snprintf(p, sizeof p, "%s/variants.txt", dir);
    FILE *vf = fopen(p, "r");
    CHECK(vf != NULL);
    char variant[128];
    int nvariants = 0;
    while (vf && fscanf(vf, "%127s", variant) == 1) {
        char vdir[1024];
        snprintf(vdir, sizeof vdir, "%s/%s", dir, variant);
        expected x = {0};
        CHECK_MSG(load_expected(vdir, &x), "%s: expected weights", variant);
        int flat = !strncmp(variant, "flat", 4);
        int want_version = flat ? 0 : variant[1] - '0';
        int want_tp = flat ? 1 : atoi(strstr(variant, "tp") + 2);
        char lpath[1100];
        snprintf(lpath, sizeof lpath, flat ? "%s/model.pt" : "%s", vdir);
        static const int tps[][2] = {{1, 0}, {2, 0}, {2, 1}, {4, 3}};
        for (size_t k = 0; k < sizeof tps / sizeof *tps; k++) {
            mt_model_config cfg;
            small_config(&cfg, tps[k][0], tps[k][1]);
            if (mt_model_config_finalize(&cfg) != MT_OK) {
                CHECK_MSG(0, "finalize: %s", mt_last_error());
                continue;
            }
            mt_param_table tab;
            CHECK_OK(mt_param_table_build(&cfg, &tab));
            float *span = calloc(tab.total, sizeof(float));
            for (size_t i = 0; i < tab.total; i++) span[i] = 12345.0f; // must all be overwritten
            mt_megatron_info info;
            mt_status s = mt_megatron_load_params(lpath, &cfg, &tab, span, &info);
            CHECK_MSG(s == MT_OK, "%s tp=%d: %s", variant, cfg.tp_size, mt_last_error());
            if (s == MT_OK) {
                compare(variant, &cfg, &tab, span, &x);
                CHECK(info.tp_size == want_tp);
                CHECK((int)info.checkpoint_version == want_version);
                CHECK(info.has_version == (want_version > 0));
                CHECK(flat ? !info.args_found : (info.args_found && info.hidden_size == 64 && info.num_layers == 2));
                CHECK(info.missing == 0);
                CHECK(info.unused == 9); // pooler (2), lm_head (5), binary_head (2)
            }
            free(span);
            mt_param_table_free(&tab);
        }
        free_expected(&x);
        nvariants++;
    }
    if (vf) fclose(vf);
    CHECK(nvariants == 19);

    // A config that disagrees with the checkpoint's args is an error naming both values.
    {
        mt_model_config cfg;
        small_config(&cfg, 1, 0);
        cfg.max_position_embeddings = 64;
        CHECK_OK(mt_model_config_finalize(&cfg));
        mt_param_table tab;
        CHECK_OK(mt_param_table_build(&cfg, &tab));
        float *span = calloc(tab.total, sizeof(float));
        snprintf(p, sizeof p, "%s/v3_tp2", dir);
        mt_status s = mt_megatron_load_params(p, &cfg, &tab, span, NULL);
        CHECK(s != MT_OK);
        CHECK(strstr(mt_last_error(), "max_position_embeddings=32") && strstr(mt_last_error(), "64"));
        free(span);
        mt_param_table_free(&tab);
    }
    // A shallower model than the checkpoint is an error even without args (flat file).
    {
        mt_model_config cfg;
        small_config(&cfg, 1, 0);
        cfg.num_layers = 1;
        CHECK_OK(mt_model_config_finalize(&cfg));
        mt_param_table tab;
        CHECK_OK(mt_param_table_build(&cfg, &tab));
        float *span = calloc(tab.total, sizeof(float));
        snprintf(p, sizeof p, "%s/flat_biomegatron/model.pt", dir);
        CHECK(mt_megatron_load_params(p, &cfg, &tab, span, NULL) != MT_OK);
        CHECK(strstr(mt_last_error(), "has 2 transformer layers") && strstr(mt_last_error(), "num_layers=1"));
        free(span);
        mt_param_table_free(&tab);
    }
    // Through the model API, with a task head the checkpoint does not have.
    {
        mt_model_config cfg;
        small_config(&cfg, 1, 0);
        cfg.head = MT_HEAD_SEQUENCE_CLASSIFIER;
        cfg.num_classes = 3;
        mt_model *m = NULL;
        CHECK_OK(mt_model_create(&cfg, NULL, &m));
        if (m) {
            mt_megatron_info info;
            snprintf(p, sizeof p, "%s/v1_tp4", dir);
            CHECK_OK(mt_megatron_load(p, m, &info));
            CHECK(info.missing == 2);
            expected x = {0};
            CHECK(load_expected(p, &x));
            compare("v1_tp4 via model", mt_model_get_config(m), mt_model_params(m), mt_model_param_data(m), &x);
            free_expected(&x);
            // the trainer's order: initialise (everything / the head alone), then load the encoder;
            // both must give the same model bit for bit, with a randomly initialised head
            mt_model *m2 = NULL;
            CHECK_OK(mt_model_create(&cfg, NULL, &m2));
            if (m2) {
                mt_model_init_weights(m, 7);
                CHECK_OK(mt_megatron_load(p, m, NULL));
                mt_model_init_head_weights(m2, 7);
                CHECK_OK(mt_megatron_load(p, m2, NULL));
                const mt_param_table *tab = mt_model_params(m);
                const float *a = mt_model_param_data(m), *b = mt_model_param_data(m2);
                CHECK_MSG(!memcmp(a, b, tab->total * sizeof *a), "head-only initialisation + load differs from "
                          "full initialisation + load");
                int heads = 0;
                for (int i = 0; i < tab->count; i++) {
                    const mt_param *q = &tab->params[i];
                    if (mt_param_megatron_name(q) || q->ndim != 2) continue;
                    double ss = 0;
                    for (size_t e = 0; e < q->numel; e++) ss += (double)b[q->offset + e] * b[q->offset + e];
                    CHECK_MSG(ss > 0, "head weight %s was not initialised", q->name);
                    heads++;
                }
                CHECK_MSG(heads == 1, "%d head weight matrices (expected 1)", heads);
                mt_model_free(m2);
            }
            mt_model_free(m);
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
