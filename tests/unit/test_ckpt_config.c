// Model config JSON: Megatron dashed keys, underscored keys, Hugging Face config.json keys;
// unknown keys name the nearest valid one; bad values name the key.
#include <stdio.h>
#include <string.h>

#include "ckpt/config_file.h"
#include "test_util.h"

int main(void) {
    mt_model_config c;
    mt_model_config_defaults(&c);
    CHECK_OK(mt_config_json_parse("a.json", "{\"hidden-size\": 1024, \"num-attention-heads\": 16, \"num-layers\": 24,"
                                            " \"max-seq-length\": 512, \"tokenizer-type\": \"BertWordPieceLowerCase\"}", &c));
    CHECK(c.hidden_size == 1024 && c.num_attention_heads == 16 && c.num_layers == 24 && c.max_position_embeddings == 512);
    CHECK(c.arch == MT_ARCH_MEGATRON && c.layernorm_eps == 1e-5f);

    mt_model_config_defaults(&c);
    CHECK_OK(mt_config_json_parse("b.json", "{\"hidden_size\": 768, \"num_attention_heads\": 12, \"num_layers\": 12,"
                                            " \"max_position_embeddings\": 256, \"ffn_hidden_size\": 3000}", &c));
    CHECK(c.hidden_size == 768 && c.num_layers == 12 && c.max_position_embeddings == 256 && c.ffn_hidden_size == 3000);

    mt_model_config_defaults(&c);
    CHECK_OK(mt_config_json_parse("config.json", "{\"architectures\": [\"BertForMaskedLM\"], \"model_type\": \"bert\","
                                                 " \"hidden_size\": 768, \"num_hidden_layers\": 12, \"intermediate_size\": 3072,"
                                                 " \"vocab_size\": 28996, \"hidden_act\": \"gelu\", \"type_vocab_size\": 2}", &c));
    CHECK(c.arch == MT_ARCH_BERT && c.layernorm_eps == 1e-12f && c.num_layers == 12 && c.ffn_hidden_size == 3072 &&
          c.vocab_size == 28996 && c.gelu == MT_GELU_ERF);

    mt_model_config_defaults(&c);
    CHECK(mt_config_json_parse("c.json", "{\"hiden-size\": 1024}", &c) != MT_OK);
    CHECK(strstr(mt_last_error(), "unknown key 'hiden-size'") && strstr(mt_last_error(), "did you mean 'hidden-size'"));
    CHECK(mt_config_json_parse("c.json", "{\"num_layer\": 3}", &c) != MT_OK);
    CHECK(strstr(mt_last_error(), "did you mean 'num_layers'") != NULL);
    CHECK(mt_config_json_parse("c.json", "{\"num-layers\": 2.5}", &c) != MT_OK);
    CHECK(strstr(mt_last_error(), "'num-layers' must be an integer") != NULL);
    CHECK(mt_config_json_parse("c.json", "{\"hidden_act\": \"swish\"}", &c) != MT_OK);
    CHECK(strstr(mt_last_error(), "swish") != NULL);
    CHECK(mt_config_json_parse("c.json", "[1,2]", &c) != MT_OK);
    CHECK(mt_config_json_parse("c.json", "{\"num-layers\": ", &c) != MT_OK);
    CHECK(mt_config_file_load("/nonexistent/cfg.json", &c) != MT_OK && strstr(mt_last_error(), "/nonexistent/cfg.json"));
    TEST_DONE();
}
