// Model config JSON: Megatron dashed keys, underscored keys, Hugging Face config.json keys;
// unknown keys name the nearest valid one; bad values name the key.
#include <stdio.h>
#include <string.h>

#include "ckpt/config_file.h"
#include "test_util.h"

// Parses c.json, which must be refused with a message of its own (the last one is cleared first)
// naming the file; returns the status.
static mt_status refuse(const char *text, mt_model_config *c) {
    mt_clear_error();
    mt_status s = mt_config_json_parse("c.json", text, c);
    CHECK_MSG(s != MT_OK && strstr(mt_last_error(), "c.json: "), "%s -> %d: %s", text, s, mt_last_error());
    return s;
}

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
    refuse("{\"hiden-size\": 1024}", &c);
    CHECK(strstr(mt_last_error(), "unknown key 'hiden-size'") && strstr(mt_last_error(), "did you mean 'hidden-size'"));
    refuse("{\"num_layer\": 3}", &c);
    CHECK(strstr(mt_last_error(), "did you mean 'num_layers'") != NULL);
    refuse("{\"num-layers\": 2.5}", &c);
    CHECK(strstr(mt_last_error(), "'num-layers' must be an integer") != NULL);
    refuse("{\"hidden_act\": \"swish\"}", &c);
    CHECK(strstr(mt_last_error(), "swish") != NULL);
    // valid JSON of the wrong shape and cut-off JSON: a format error, not a bad value
    CHECK(refuse("[1,2]", &c) == MT_ERR_FORMAT && strstr(mt_last_error(), "not a JSON object"));
    CHECK(refuse("{\"num-layers\": ", &c) == MT_ERR_FORMAT && strstr(mt_last_error(), "not a JSON object"));
    CHECK(mt_config_file_load("/nonexistent/cfg.json", &c) != MT_OK && strstr(mt_last_error(), "/nonexistent/cfg.json"));
    TEST_DONE();
}
