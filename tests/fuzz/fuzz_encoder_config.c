// libFuzzer target: model.language_model.config_file, as JSON (Megatron dashed keys, underscored
// keys or Hugging Face config.json keys) or as NeMo YAML (first byte odd), converted and parsed by
// the one checker; a config it accepts must also pass (or be refused by) the model's finalize
// without overflow. Never a crash or a leak.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/config_file.h"
#include "model/config.h"
#include "train/encoder_yaml.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int yaml = data[0] & 1;
    data++, size--;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *json = NULL;
    mt_status s = MT_OK;
    if (yaml) s = mt_encoder_yaml_to_json("fuzz.yaml", text, size, &json);
    if (s == MT_OK) {
        mt_model_config cfg;
        mt_model_config_defaults(&cfg);
        if (mt_config_json_parse("fuzz.json", yaml ? json : text, &cfg) == MT_OK) (void)mt_model_config_finalize(&cfg);
    }
    free(json);
    free(text);
    return 0;
}
