#include "model/config.h"

#include <string.h>

void mt_model_config_defaults(mt_model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = MT_ARCH_MEGATRON;
    cfg->make_vocab_size_divisible_by = 128;
    cfg->num_tokentypes = 2;
    cfg->layernorm_eps = 1e-5f;
    cfg->gelu = MT_GELU_ERF;
    cfg->hidden_dropout = 0.1f;
    cfg->attention_dropout = 0.1f;
    cfg->init_method_std = 0.02f;
    cfg->head = MT_HEAD_NONE;
    strcpy(cfg->head_prefix, "classifier");
    cfg->head_num_layers = 1;
    cfg->head_activation = MT_ACT_RELU;
    strcpy(cfg->head_mlp, "mlp");
    cfg->head2 = MT_HEAD_NONE;
    strcpy(cfg->head2_mlp, "mlp");
    cfg->head2_num_layers = 1;
    cfg->head2_activation = MT_ACT_RELU;
    cfg->head_loss_weight = cfg->head2_loss_weight = 1.0f;
    cfg->tp_size = 1;
    cfg->tp_rank = 0;
}

void mt_model_config_bert_defaults(mt_model_config *cfg) {
    mt_model_config_defaults(cfg);
    cfg->arch = MT_ARCH_BERT;
    cfg->layernorm_eps = 1e-12f;
}

int mt_padded_vocab_size(int vocab_size, int divisible_by, int tp_size) {
    int64_t m = (int64_t)(divisible_by > 0 ? divisible_by : 1) * (tp_size > 0 ? tp_size : 1);
    return (int)(((int64_t)vocab_size + m - 1) / m * m);
}

#define MT_MODEL_DIM_MAX (1 << 22)  // 4M: 3x and 4x still fit an int, and so does vocab*hidden/hidden
#define MT_MODEL_LAYERS_MAX 4096

mt_status mt_model_config_finalize(mt_model_config *c) {
#define NEED_POSITIVE(field, key)                                                              \
    if (c->field <= 0)                                                                         \
        return mt_fail(MT_ERR_INVALID, "model config: %s must be a positive integer, got %d",  \
                       key, (int)c->field);
    NEED_POSITIVE(vocab_size, "vocab_size (the number of lines in the vocab file)");
    NEED_POSITIVE(hidden_size, "hidden_size");
    NEED_POSITIVE(num_layers, "num_layers");
    NEED_POSITIVE(num_attention_heads, "num_attention_heads");
    NEED_POSITIVE(max_position_embeddings, "max_position_embeddings");
    NEED_POSITIVE(num_tokentypes, "num_tokentypes");
    NEED_POSITIVE(tp_size, "tensor_model_parallel_size");
#undef NEED_POSITIVE
    // Sizes come from files (checkpoint args, encoder config JSON, YAML): bound them so that the
    // products the model computes in int (3*hidden, 4*hidden, vocab*hidden offsets) cannot wrap.
    if (c->hidden_size > MT_MODEL_DIM_MAX || c->ffn_hidden_size > MT_MODEL_DIM_MAX || c->vocab_size > MT_MODEL_DIM_MAX ||
        c->max_position_embeddings > MT_MODEL_DIM_MAX || c->num_tokentypes > MT_MODEL_DIM_MAX ||
        c->num_layers > MT_MODEL_LAYERS_MAX)
        return mt_fail(MT_ERR_INVALID,
                       "model config: hidden_size %d, ffn_hidden_size %d, vocab_size %d, max_position_embeddings %d, "
                       "num_tokentypes %d, num_layers %d: sizes are limited to %d (layers to %d); the config or "
                       "checkpoint is corrupt",
                       c->hidden_size, c->ffn_hidden_size, c->vocab_size, c->max_position_embeddings, c->num_tokentypes,
                       c->num_layers, MT_MODEL_DIM_MAX, MT_MODEL_LAYERS_MAX);
    if (c->hidden_size % c->num_attention_heads != 0)
        return mt_fail(MT_ERR_INVALID,
                       "model config: hidden_size %d is not divisible by num_attention_heads %d; "
                       "choose a head count that divides the hidden size",
                       c->hidden_size, c->num_attention_heads);
    if (c->num_attention_heads % c->tp_size != 0)
        return mt_fail(MT_ERR_INVALID,
                       "model config: num_attention_heads %d is not divisible by the tensor-parallel "
                       "size %d; every rank must hold whole heads",
                       c->num_attention_heads, c->tp_size);
    if (c->tp_rank < 0 || c->tp_rank >= c->tp_size)
        return mt_fail(MT_ERR_INVALID, "model config: tensor-parallel rank %d outside [0, %d)",
                       c->tp_rank, c->tp_size);
    if (c->make_vocab_size_divisible_by <= 0) c->make_vocab_size_divisible_by = 128;
    c->padded_vocab_size = mt_padded_vocab_size(c->vocab_size, c->make_vocab_size_divisible_by, c->tp_size);
    if (c->ffn_hidden_size <= 0) c->ffn_hidden_size = 4 * c->hidden_size;
    if (c->ffn_hidden_size % c->tp_size != 0)
        return mt_fail(MT_ERR_INVALID, "model config: ffn_hidden_size %d is not divisible by the "
                       "tensor-parallel size %d", c->ffn_hidden_size, c->tp_size);
    if (!(c->layernorm_eps > 0.0f))
        return mt_fail(MT_ERR_INVALID, "model config: layernorm_epsilon must be > 0");
    if (c->hidden_dropout < 0.0f || c->hidden_dropout >= 1.0f || c->attention_dropout < 0.0f ||
        c->attention_dropout >= 1.0f || c->head_dropout < 0.0f || c->head_dropout >= 1.0f)
        return mt_fail(MT_ERR_INVALID, "model config: dropout rates must be in [0, 1) "
                       "(hidden_dropout %g, attention_dropout %g, fc_dropout %g)",
                       c->hidden_dropout, c->attention_dropout, c->head_dropout);
    switch (c->head) {
    case MT_HEAD_NONE: break;
    case MT_HEAD_QA:
        c->num_classes = 2;
        c->head_num_layers = c->head_num_layers > 0 ? c->head_num_layers : 1;
        break;
    case MT_HEAD_SEQUENCE_REGRESSION:
        c->num_classes = 1;
        /* fall through */
    case MT_HEAD_TOKEN_CLASSIFIER:
    case MT_HEAD_SEQUENCE_CLASSIFIER:
        if (c->num_classes <= 0)
            return mt_fail(MT_ERR_INVALID, "model config: the head needs num_classes > 0 "
                           "(set model.dataset.num_classes or provide a label map)");
        if (c->head_num_layers <= 0)
            return mt_fail(MT_ERR_INVALID, "model config: the head needs num_fc_layers >= 1");
        break;
    default:
        return mt_fail(MT_ERR_INVALID, "model config: unknown head kind %d", (int)c->head);
    }
    if (c->head_prefix[0] == 0) strcpy(c->head_prefix, "classifier");
    if (c->head_mlp[0] == 0) strcpy(c->head_mlp, "mlp");
    if (c->head2 != MT_HEAD_NONE) {
        if (c->head2 != MT_HEAD_TOKEN_CLASSIFIER ||
            (c->head != MT_HEAD_TOKEN_CLASSIFIER && c->head != MT_HEAD_SEQUENCE_CLASSIFIER))
            return mt_fail(MT_ERR_INVALID, "model config: a second head must be a token classifier beside a "
                           "token or sequence classifier");
        if (c->num_classes2 <= 0 || c->head2_num_layers <= 0)
            return mt_fail(MT_ERR_INVALID, "model config: the second head needs num_classes > 0 and "
                           "num_fc_layers >= 1 (check its label map)");
        if (c->head2_dropout < 0.0f || c->head2_dropout >= 1.0f)
            return mt_fail(MT_ERR_INVALID, "model config: the second head's fc_dropout %g is not in [0, 1)",
                           (double)c->head2_dropout);
        if (c->head2_shares_dropout) c->head2_dropout = c->head_dropout;
        if (c->head2_prefix[0] == 0) strcpy(c->head2_prefix, c->head_prefix);
        if (c->head2_mlp[0] == 0) strcpy(c->head2_mlp, "mlp");
        if (!strcmp(c->head2_prefix, c->head_prefix) && !strcmp(c->head2_mlp, c->head_mlp))
            return mt_fail(MT_ERR_INVALID, "model config: the two heads need different parameter names");
    }
    return MT_OK;
}
