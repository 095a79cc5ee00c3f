// THE parameter table. Every trainable tensor of the model is one row: its NeMo state-dict
// name, its local (this tensor-parallel rank) and global shapes, its split rule, and its
// offset in the one float span that holds all parameters. Gradients and Adam moments use
// the same offsets, so zero-grad, AdamW, clipping and all-reduce each act on one span, and
// checkpoint I/O, resharding and .nemo files are written against this table alone.
#ifndef MT_MODEL_PARAMS_H
#define MT_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "model/config.h"

typedef enum {
    MT_SPLIT_REPLICATED = 0, // identical on every TP rank (LayerNorms, positions, row biases, heads)
    MT_SPLIT_COLUMN = 1,     // ColumnParallelLinear: weight/bias rows (dim 0) split, whole heads
    MT_SPLIT_ROW = 2,        // RowParallelLinear: weight columns (dim 1) split; its bias is replicated
    MT_SPLIT_VOCAB = 3,      // VocabParallelEmbedding: rows of the padded vocab split
} mt_split_rule;

typedef enum {
    MT_PARAM_ENCODER = 0, // under "bert_model." in a NeMo state dict, "model.language_model." in Megatron
    MT_PARAM_HEAD = 1,    // task head, e.g. "classifier.mlp.layer0.weight"
} mt_param_group;

// What a parameter is, so code can find it without parsing names.
typedef enum {
    MT_ROLE_WORD_EMB, MT_ROLE_POS_EMB, MT_ROLE_TYPE_EMB,
    MT_ROLE_EMB_LN_W, MT_ROLE_EMB_LN_B,           // BERT (post-LN) only
    MT_ROLE_LN1_W, MT_ROLE_LN1_B,                 // pre-LN: input_layernorm; post-LN: after attention
    MT_ROLE_QKV_W, MT_ROLE_QKV_B,
    MT_ROLE_ATTN_OUT_W, MT_ROLE_ATTN_OUT_B,
    MT_ROLE_LN2_W, MT_ROLE_LN2_B,                 // pre-LN: post_attention_layernorm; post-LN: after MLP
    MT_ROLE_FC1_W, MT_ROLE_FC1_B,                 // dense_h_to_4h
    MT_ROLE_FC2_W, MT_ROLE_FC2_B,                 // dense_4h_to_h
    MT_ROLE_FINAL_LN_W, MT_ROLE_FINAL_LN_B,       // Megatron (pre-LN) only
    MT_ROLE_HEAD_W, MT_ROLE_HEAD_B,               // head MLP layer `head_layer`
    MT_ROLE_HEAD2_W, MT_ROLE_HEAD2_B,             // second head's MLP layer (two-head tasks)
} mt_param_role;

#define MT_PARAM_NAME_MAX 128

typedef struct {
    char name[MT_PARAM_NAME_MAX]; // full NeMo state-dict key
    mt_param_role role;
    mt_param_group group;
    int layer;                    // transformer layer or head MLP layer index; -1 otherwise
    int ndim;                     // 1 or 2
    int64_t shape[2];             // local shape on this rank ([out, in] for Linear weights)
    int64_t global_shape[2];      // shape at TP=1 (vocab rows padded to Megatron's size at TP=1... see below)
    mt_split_rule split;
    int split_dim;                // 0, 1, or -1 when replicated
    int weight_decay;             // Megatron's rule: 0 for biases and LayerNorm; NeMo decays all
    size_t offset;                // float offset into the parameter span (64-byte aligned)
    size_t numel;                 // local element count
} mt_param;

typedef struct {
    mt_param *params;
    int count;
    size_t total;                 // floats in the span, including alignment gaps (kept zero)
    size_t total_numel;           // sum of numel (the parameter count on this rank)
} mt_param_table;

// Builds the table for a finalized config (mt_model_config_finalize first).
// For VOCAB-split tensors global_shape[0] is the padded vocab for cfg->tp_size.
mt_status mt_param_table_build(const mt_model_config *cfg, mt_param_table *out) MT_WARN_UNUSED;
void mt_param_table_free(mt_param_table *t);
// Lookup by full name; NULL when absent.
const mt_param *mt_param_find(const mt_param_table *t, const char *name);
// Index of the parameter with `role` in `layer` (-1 for non-layer roles); -1 when absent.
int mt_param_index(const mt_param_table *t, mt_param_role role, int layer);
// Name of a parameter inside the Megatron language model (strips the NeMo "bert_model." prefix):
// "language_model.transformer.layers.0.attention.query_key_value.weight". NULL for head params.
const char *mt_param_megatron_name(const mt_param *p);

#endif
