#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MT_ENCODER_PREFIX "bert_model."
#define MT_ALIGN_FLOATS 16

typedef struct {
    mt_param_table *t;
    int cap;
    mt_status status;
} builder;

static void add(builder *b, const char *name, mt_param_role role, mt_param_group group, int layer,
                int ndim, int64_t g0, int64_t g1, mt_split_rule split, int tp, int decay) {
    if (b->status != MT_OK) return;
    if (b->t->count == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        mt_param *p = mt_realloc(b->t->params, (size_t)cap * sizeof *p);
        if (!p) {
            b->status = MT_ERR_NOMEM;
            return;
        }
        b->t->params = p;
        b->cap = cap;
    }
    mt_param *p = &b->t->params[b->t->count++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->role = role;
    p->group = group;
    p->layer = layer;
    p->ndim = ndim;
    p->global_shape[0] = g0;
    p->global_shape[1] = ndim == 2 ? g1 : 1;
    p->shape[0] = p->global_shape[0];
    p->shape[1] = p->global_shape[1];
    p->split = split;
    p->split_dim = -1;
    if (split == MT_SPLIT_COLUMN || split == MT_SPLIT_VOCAB) {
        p->split_dim = 0;
        p->shape[0] = g0 / tp;
    } else if (split == MT_SPLIT_ROW) {
        p->split_dim = 1;
        p->shape[1] = g1 / tp;
    }
    p->weight_decay = decay;
    p->numel = (size_t)(p->shape[0] * p->shape[1]);
    p->offset = b->t->total;
    b->t->total += (p->numel + MT_ALIGN_FLOATS - 1) / MT_ALIGN_FLOATS * MT_ALIGN_FLOATS;
    b->t->total_numel += p->numel;
}

mt_status mt_param_table_build(const mt_model_config *c, mt_param_table *out) {
    memset(out, 0, sizeof *out);
    if (c->padded_vocab_size <= 0 || c->ffn_hidden_size <= 0)
        return mt_fail(MT_ERR_INVALID, "parameter table: config not finalized "
                       "(call mt_model_config_finalize first)");
    builder b = {out, 0, MT_OK};
    const int tp = c->tp_size, h = c->hidden_size, f = c->ffn_hidden_size;
    const char *lm = MT_ENCODER_PREFIX "language_model.";
    char name[MT_PARAM_NAME_MAX];
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)
    add(&b, NAME("%sembedding.word_embeddings.weight", lm), MT_ROLE_WORD_EMB, MT_PARAM_ENCODER, -1, 2,
        c->padded_vocab_size, h, MT_SPLIT_VOCAB, tp, 1);
    add(&b, NAME("%sembedding.position_embeddings.weight", lm), MT_ROLE_POS_EMB, MT_PARAM_ENCODER, -1, 2,
        c->max_position_embeddings, h, MT_SPLIT_REPLICATED, tp, 1);
    add(&b, NAME("%sembedding.tokentype_embeddings.weight", lm), MT_ROLE_TYPE_EMB, MT_PARAM_ENCODER, -1,
        2, c->num_tokentypes, h, MT_SPLIT_REPLICATED, tp, 1);
    if (c->arch == MT_ARCH_BERT) {
        add(&b, NAME("%sembedding.layernorm.weight", lm), MT_ROLE_EMB_LN_W, MT_PARAM_ENCODER, -1, 1, h, 0,
            MT_SPLIT_REPLICATED, tp, 0);
        add(&b, NAME("%sembedding.layernorm.bias", lm), MT_ROLE_EMB_LN_B, MT_PARAM_ENCODER, -1, 1, h, 0,
            MT_SPLIT_REPLICATED, tp, 0);
    }
    // Pre-LN names are Megatron's. Post-LN BERT has one LayerNorm after each residual; we keep the
    // same two slots and name them by position: post_attention_layernorm after attention,
    // post_mlp_layernorm after the MLP (Hugging Face: attention.output.LayerNorm, output.LayerNorm).
    const char *ln1 = c->arch == MT_ARCH_BERT ? "post_attention_layernorm" : "input_layernorm";
    const char *ln2 = c->arch == MT_ARCH_BERT ? "post_mlp_layernorm" : "post_attention_layernorm";
    for (int l = 0; l < c->num_layers; l++) {
        const char *pre = NAME("%stransformer.layers.%d.", lm, l);
        char pfx[MT_PARAM_NAME_MAX];
        snprintf(pfx, sizeof pfx, "%s", pre);
#define LNAME(...) (snprintf(name, sizeof name, "%s", pfx), \
                    snprintf(name + strlen(name), sizeof name - strlen(name), __VA_ARGS__), name)
        add(&b, LNAME("%s.weight", ln1), MT_ROLE_LN1_W, MT_PARAM_ENCODER, l, 1, h, 0, MT_SPLIT_REPLICATED, tp, 0);
        add(&b, LNAME("%s.bias", ln1), MT_ROLE_LN1_B, MT_PARAM_ENCODER, l, 1, h, 0, MT_SPLIT_REPLICATED, tp, 0);
        add(&b, LNAME("attention.query_key_value.weight"), MT_ROLE_QKV_W, MT_PARAM_ENCODER, l, 2, 3 * h, h,
            MT_SPLIT_COLUMN, tp, 1);
        add(&b, LNAME("attention.query_key_value.bias"), MT_ROLE_QKV_B, MT_PARAM_ENCODER, l, 1, 3 * h, 0,
            MT_SPLIT_COLUMN, tp, 0);
        add(&b, LNAME("attention.dense.weight"), MT_ROLE_ATTN_OUT_W, MT_PARAM_ENCODER, l, 2, h, h,
            MT_SPLIT_ROW, tp, 1);
        add(&b, LNAME("attention.dense.bias"), MT_ROLE_ATTN_OUT_B, MT_PARAM_ENCODER, l, 1, h, 0,
            MT_SPLIT_REPLICATED, tp, 0);
        add(&b, LNAME("%s.weight", ln2), MT_ROLE_LN2_W, MT_PARAM_ENCODER, l, 1, h, 0, MT_SPLIT_REPLICATED, tp, 0);
        add(&b, LNAME("%s.bias", ln2), MT_ROLE_LN2_B, MT_PARAM_ENCODER, l, 1, h, 0, MT_SPLIT_REPLICATED, tp, 0);
        add(&b, LNAME("mlp.dense_h_to_4h.weight"), MT_ROLE_FC1_W, MT_PARAM_ENCODER, l, 2, f, h,
            MT_SPLIT_COLUMN, tp, 1);
        add(&b, LNAME("mlp.dense_h_to_4h.bias"), MT_ROLE_FC1_B, MT_PARAM_ENCODER, l, 1, f, 0,
            MT_SPLIT_COLUMN, tp, 0);
        add(&b, LNAME("mlp.dense_4h_to_h.weight"), MT_ROLE_FC2_W, MT_PARAM_ENCODER, l, 2, h, f,
            MT_SPLIT_ROW, tp, 1);
        add(&b, LNAME("mlp.dense_4h_to_h.bias"), MT_ROLE_FC2_B, MT_PARAM_ENCODER, l, 1, h, 0,
            MT_SPLIT_REPLICATED, tp, 0);
#undef LNAME
    }
    if (c->arch == MT_ARCH_MEGATRON) {
        add(&b, NAME("%stransformer.final_layernorm.weight", lm), MT_ROLE_FINAL_LN_W, MT_PARAM_ENCODER, -1,
            1, h, 0, MT_SPLIT_REPLICATED, tp, 0);
        add(&b, NAME("%stransformer.final_layernorm.bias", lm), MT_ROLE_FINAL_LN_B, MT_PARAM_ENCODER, -1,
            1, h, 0, MT_SPLIT_REPLICATED, tp, 0);
    }
    if (c->head != MT_HEAD_NONE) {
        // NeMo MultiLayerPerceptron: Linear modules at layer0, layer2, ... (odd slots are activations).
        for (int i = 0; i < c->head_num_layers; i++) {
            int64_t out_dim = i == c->head_num_layers - 1 ? c->num_classes : h;
            add(&b, NAME("%s.%s.layer%d.weight", c->head_prefix, c->head_mlp, 2 * i), MT_ROLE_HEAD_W,
                MT_PARAM_HEAD, i, 2, out_dim, h, MT_SPLIT_REPLICATED, tp, 1);
            add(&b, NAME("%s.%s.layer%d.bias", c->head_prefix, c->head_mlp, 2 * i), MT_ROLE_HEAD_B,
                MT_PARAM_HEAD, i, 1, out_dim, 0, MT_SPLIT_REPLICATED, tp, 0);
        }
    }
    if (c->head != MT_HEAD_NONE && c->head2 != MT_HEAD_NONE) {
        for (int i = 0; i < c->head2_num_layers; i++) {
            int64_t out_dim = i == c->head2_num_layers - 1 ? c->num_classes2 : h;
            add(&b, NAME("%s.%s.layer%d.weight", c->head2_prefix, c->head2_mlp, 2 * i), MT_ROLE_HEAD2_W,
                MT_PARAM_HEAD, i, 2, out_dim, h, MT_SPLIT_REPLICATED, tp, 1);
            add(&b, NAME("%s.%s.layer%d.bias", c->head2_prefix, c->head2_mlp, 2 * i), MT_ROLE_HEAD2_B,
                MT_PARAM_HEAD, i, 1, out_dim, 0, MT_SPLIT_REPLICATED, tp, 0);
        }
    }
#undef NAME
    if (b.status != MT_OK) {
        mt_param_table_free(out);
        return b.status;
    }
    return MT_OK;
}

void mt_param_table_free(mt_param_table *t) {
    free(t->params);
    memset(t, 0, sizeof *t);
}

const mt_param *mt_param_find(const mt_param_table *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->params[i].name, name) == 0) return &t->params[i];
    return NULL;
}

int mt_param_index(const mt_param_table *t, mt_param_role role, int layer) {
    for (int i = 0; i < t->count; i++)
        if (t->params[i].role == role && t->params[i].layer == layer) return i;
    return -1;
}

const char *mt_param_megatron_name(const mt_param *p) {
    size_t n = strlen(MT_ENCODER_PREFIX);
    if (p->group != MT_PARAM_ENCODER || strncmp(p->name, MT_ENCODER_PREFIX, n) != 0) return NULL;
    return p->name + n;
}
