#include "kernels/ref/ref.h"

static const mt_kernels ref_table = {
    .name = "ref",
    .embed_word_fwd = mt_ref_embed_word_fwd,
    .embed_word_bwd = mt_ref_embed_word_bwd,
    .embed_pos_type_fwd = mt_ref_embed_pos_type_fwd,
    .embed_pos_type_bwd = mt_ref_embed_pos_type_bwd,
    .layernorm_fwd = mt_ref_layernorm_fwd,
    .layernorm_bwd = mt_ref_layernorm_bwd,
    .linear_fwd = mt_ref_linear_fwd,
    .linear_bwd = mt_ref_linear_bwd,
    .act_fwd = mt_ref_act_fwd,
    .act_bwd = mt_ref_act_bwd,
    .attention_fwd = mt_ref_attention_fwd,
    .attention_bwd = mt_ref_attention_bwd,
    .dropout_fwd = mt_ref_dropout_fwd,
    .bias_dropout_add_fwd = mt_ref_bias_dropout_add_fwd,
    .dropout_bwd = mt_ref_dropout_bwd,
};

const mt_kernels *mt_kernels_ref(void) { return &ref_table; }
