// Hugging Face safetensors -> model: BertModel (post-LN) names map onto params.c's post-LN slots
// (embeddings.LayerNorm -> embedding.layernorm, attention.output.LayerNorm -> post_attention_layernorm,
// output.LayerNorm -> post_mlp_layernorm) and MegatronBert names onto the pre-LN ones; separate
// query/key/value tensors are fused into the [heads, 3, head_dim] row order and split over TP ranks.
// Every tensor is filled with a value derived from its HF name and element index, so each
// destination element can be traced back to exactly one source element.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/safetensors.h"
#include "ckpt/state_dict.h"
#include "test_util.h"

enum { H = 16, NH = 2, HN = 8, F = 64, V = 40, S = 8, L = 2 };

static float tag(int id, int64_t i) { return (float)id * 1000.0f + (float)i; }

typedef struct {
    char name[160];
    int id, ndim;
    int64_t shape[2];
    float *data;
} hf_t;

static hf_t ts[128];
static int nts;

static void add(const char *name, int ndim, int64_t d0, int64_t d1) {
    hf_t *t = &ts[nts];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->id = nts + 1;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    int64_t n = d0 * (ndim == 2 ? d1 : 1);
    t->data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) t->data[i] = tag(t->id, i);
    nts++;
}

static const hf_t *get(const char *name) {
    for (int i = 0; i < nts; i++)
        if (!strcmp(ts[i].name, name)) return &ts[i];
    return NULL;
}

static void build(int bert) {
    nts = 0;
    char n[160];
    add("bert.embeddings.word_embeddings.weight", 2, V, H);
    add("bert.embeddings.position_embeddings.weight", 2, S, H);
    add("bert.embeddings.token_type_embeddings.weight", 2, 2, H);
    if (bert) {
        add("bert.embeddings.LayerNorm.weight", 1, H, 0);
        add("bert.embeddings.LayerNorm.bias", 1, H, 0);
    }
    for (int l = 0; l < L; l++) {
        static const char *qkv[3] = {"query", "key", "value"};
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "bert.encoder.layer.%d.attention.self.%s.weight", l, qkv[k]);
            add(n, 2, H, H);
            snprintf(n, sizeof n, "bert.encoder.layer.%d.attention.self.%s.bias", l, qkv[k]);
            add(n, 1, H, 0);
        }
        const char *lns[2][2] = {{"attention.ln", "ln"}, {"attention.output.LayerNorm", "output.LayerNorm"}};
        for (int k = 0; k < 2; k++) {
            snprintf(n, sizeof n, "bert.encoder.layer.%d.%s.weight", l, lns[bert][k]);
            add(n, 1, H, 0);
            snprintf(n, sizeof n, "bert.encoder.layer.%d.%s.bias", l, lns[bert][k]);
            add(n, 1, H, 0);
        }
        snprintf(n, sizeof n, "bert.encoder.layer.%d.attention.output.dense.weight", l); add(n, 2, H, H);
        snprintf(n, sizeof n, "bert.encoder.layer.%d.attention.output.dense.bias", l); add(n, 1, H, 0);
        snprintf(n, sizeof n, "bert.encoder.layer.%d.intermediate.dense.weight", l); add(n, 2, F, H);
        snprintf(n, sizeof n, "bert.encoder.layer.%d.intermediate.dense.bias", l); add(n, 1, F, 0);
        snprintf(n, sizeof n, "bert.encoder.layer.%d.output.dense.weight", l); add(n, 2, H, F);
        snprintf(n, sizeof n, "bert.encoder.layer.%d.output.dense.bias", l); add(n, 1, H, 0);
    }
    if (!bert) {
        add("bert.encoder.ln.weight", 1, H, 0);
        add("bert.encoder.ln.bias", 1, H, 0);
    }
    add("bert.pooler.dense.weight", 2, H, H);
    add("cls.predictions.bias", 1, V, 0);
    add("cls.predictions.decoder.weight", 2, V, H); // tied: ignored
}

// Expected value of param p's local element (r, c) at TP rank `rank`.
static float want(const mt_param *p, int rank, int64_t r, int64_t c, int bert) {
    int64_t gr = r, gc = c;
    if (p->split == MT_SPLIT_COLUMN || p->split == MT_SPLIT_VOCAB) gr += rank * p->shape[0];
    if (p->split == MT_SPLIT_ROW) gc += rank * p->shape[1];
    char n[200];
    const char *leaf = strrchr(p->name, '.') + 1;
    int l = p->layer;
    int64_t cols = p->ndim == 2 ? p->global_shape[1] : 1;
    switch (p->role) {
    case MT_ROLE_WORD_EMB: if (gr >= V) return 0; snprintf(n, sizeof n, "bert.embeddings.word_embeddings.weight"); break;
    case MT_ROLE_POS_EMB: snprintf(n, sizeof n, "bert.embeddings.position_embeddings.weight"); break;
    case MT_ROLE_TYPE_EMB: snprintf(n, sizeof n, "bert.embeddings.token_type_embeddings.weight"); break;
    case MT_ROLE_EMB_LN_W: case MT_ROLE_EMB_LN_B: snprintf(n, sizeof n, "bert.embeddings.LayerNorm.%s", leaf); break;
    case MT_ROLE_QKV_W: case MT_ROLE_QKV_B: {
        static const char *q[3] = {"query", "key", "value"};
        int64_t head = gr / (3 * HN), which = (gr / HN) % 3, e = gr % HN;
        snprintf(n, sizeof n, "bert.encoder.layer.%d.attention.self.%s.%s", l, q[which], leaf);
        gr = head * HN + e;
        break;
    }
    case MT_ROLE_LN1_W: case MT_ROLE_LN1_B:
        snprintf(n, sizeof n, "bert.encoder.layer.%d.%s.%s", l, bert ? "attention.output.LayerNorm" : "attention.ln", leaf); break;
    case MT_ROLE_LN2_W: case MT_ROLE_LN2_B:
        snprintf(n, sizeof n, "bert.encoder.layer.%d.%s.%s", l, bert ? "output.LayerNorm" : "ln", leaf); break;
    case MT_ROLE_ATTN_OUT_W: case MT_ROLE_ATTN_OUT_B: snprintf(n, sizeof n, "bert.encoder.layer.%d.attention.output.dense.%s", l, leaf); break;
    case MT_ROLE_FC1_W: case MT_ROLE_FC1_B: snprintf(n, sizeof n, "bert.encoder.layer.%d.intermediate.dense.%s", l, leaf); break;
    case MT_ROLE_FC2_W: case MT_ROLE_FC2_B: snprintf(n, sizeof n, "bert.encoder.layer.%d.output.dense.%s", l, leaf); break;
    case MT_ROLE_FINAL_LN_W: case MT_ROLE_FINAL_LN_B: snprintf(n, sizeof n, "bert.encoder.ln.%s", leaf); break;
    default: return -1;
    }
    const hf_t *t = get(n);
    if (!t) return -2;
    int64_t tc = t->ndim == 2 ? t->shape[1] : 1;
    (void)cols;
    return tag(t->id, gr * tc + gc);
}

int main(void) {
    char dir[] = "/tmp/mt_st_hf_XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("no temp dir");
    for (int bert = 0; bert < 2; bert++) {
        build(bert);
        mt_named_tensor nt[128];
        for (int i = 0; i < nts; i++) {
            nt[i].name = ts[i].name;
            nt[i].dtype = MT_DT_F32;
            nt[i].ndim = ts[i].ndim;
            nt[i].shape[0] = ts[i].shape[0];
            nt[i].shape[1] = ts[i].shape[1];
            nt[i].data = ts[i].data;
        }
        char path[256];
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, bert ? "bert" : "megatron_bert");
        CHECK_OK(mt_safetensors_save(path, nt, nts, NULL, NULL, 0));
        for (int tp = 1; tp <= 2; tp++)
            for (int rank = 0; rank < tp; rank++) {
                mt_model_config cfg;
                if (bert) mt_model_config_bert_defaults(&cfg);
                else mt_model_config_defaults(&cfg);
                cfg.vocab_size = V;
                cfg.hidden_size = H;
                cfg.num_layers = L;
                cfg.num_attention_heads = NH;
                cfg.max_position_embeddings = S;
                cfg.tp_size = tp;
                cfg.tp_rank = rank;
                CHECK_OK(mt_model_config_finalize(&cfg));
                mt_param_table tab;
                CHECK_OK(mt_param_table_build(&cfg, &tab));
                float *span = calloc(tab.total, sizeof(float));
                mt_megatron_info info;
                mt_status s = mt_megatron_load_params(path, &cfg, &tab, span, &info);
                CHECK_MSG(s == MT_OK, "%s tp=%d: %s", path, tp, mt_last_error());
                int bad = 0;
                for (int i = 0; s == MT_OK && i < tab.count; i++) {
                    const mt_param *p = &tab.params[i];
                    int64_t cols = p->ndim == 2 ? p->shape[1] : 1;
                    for (int64_t r = 0; r < p->shape[0]; r++)
                        for (int64_t c = 0; c < cols; c++) {
                            float w = want(p, rank, r, c, bert), g = span[p->offset + r * cols + c];
                            if (g != w && bad++ < 5)
                                fprintf(stderr, "%s tp=%d rank=%d %s[%lld,%lld] = %g want %g\n", bert ? "bert" : "megatron", tp,
                                        rank, p->name, (long long)r, (long long)c, g, w);
                        }
                }
                CHECK(bad == 0);
                if (s == MT_OK) CHECK(info.unused == 2); // pooler.dense.weight, lm_head.bias
                free(span);
                mt_param_table_free(&tab);
            }
        for (int i = 0; i < nts; i++) free(ts[i].data);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
