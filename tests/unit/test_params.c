// The parameter table: names, shapes, split rules and offsets for TP=1 and TP=2.
#include "model/params.h"
#include "test_util.h"

static void check_table(int tp, int rank) {
    mt_model_config c;
    mt_model_config_defaults(&c);
    c.vocab_size = 30522;
    c.hidden_size = 64;
    c.num_layers = 2;
    c.num_attention_heads = 4;
    c.max_position_embeddings = 32;
    c.head = MT_HEAD_TOKEN_CLASSIFIER;
    c.num_classes = 9;
    c.head_num_layers = 2;
    c.tp_size = tp;
    c.tp_rank = rank;
    CHECK_OK(mt_model_config_finalize(&c));
    CHECK(c.padded_vocab_size == (tp == 1 ? 30592 : 30720));
    mt_param_table t;
    CHECK_OK(mt_param_table_build(&c, &t));
    // 3 embeddings + 12 per layer + final LN (2) + head (4)
    CHECK(t.count == 3 + 12 * 2 + 2 + 4);
    const mt_param *qkv = mt_param_find(&t, "bert_model.language_model.transformer.layers.1.attention.query_key_value.weight");
    CHECK(qkv && qkv->shape[0] == 3 * 64 / tp && qkv->shape[1] == 64 && qkv->split == MT_SPLIT_COLUMN);
    const mt_param *dense = mt_param_find(&t, "bert_model.language_model.transformer.layers.0.attention.dense.weight");
    CHECK(dense && dense->shape[0] == 64 && dense->shape[1] == 64 / tp && dense->split_dim == 1);
    const mt_param *we = &t.params[mt_param_index(&t, MT_ROLE_WORD_EMB, -1)];
    CHECK(we->shape[0] == c.padded_vocab_size / tp && we->global_shape[0] == c.padded_vocab_size);
    const mt_param *head = mt_param_find(&t, "classifier.mlp.layer2.weight");
    CHECK(head && head->shape[0] == 9 && head->shape[1] == 64 && head->split == MT_SPLIT_REPLICATED);
    CHECK(mt_param_megatron_name(qkv) && strcmp(mt_param_megatron_name(qkv),
          "language_model.transformer.layers.1.attention.query_key_value.weight") == 0);
    CHECK(mt_param_megatron_name(head) == NULL);
    size_t prev_end = 0;
    for (int i = 0; i < t.count; i++) {
        CHECK(t.params[i].offset % 16 == 0);
        CHECK(t.params[i].offset >= prev_end);
        prev_end = t.params[i].offset + t.params[i].numel;
    }
    CHECK(prev_end <= t.total);
    mt_param_table_free(&t);
}

int main(void) {
    check_table(1, 0);
    check_table(2, 1);
    mt_model_config c;
    mt_model_config_defaults(&c);
    c.vocab_size = 100; c.hidden_size = 30; c.num_layers = 1; c.num_attention_heads = 4; c.max_position_embeddings = 8;
    CHECK(mt_model_config_finalize(&c) == MT_ERR_INVALID);
    CHECK(strstr(mt_last_error(), "not divisible") != NULL);
    c.hidden_size = 32; c.tp_size = 3;
    CHECK(mt_model_config_finalize(&c) == MT_ERR_INVALID);
    TEST_DONE();
}
