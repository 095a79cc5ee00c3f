// model.language_model.config_file may be YAML with NeMo's underscored keys (hidden_size: 1024,
// num_attention_heads: 16, ...) as well as Megatron's JSON. The YAML is turned into the same JSON
// object so one parser (ckpt/config_file.h) checks every key either way.
#ifndef MT_TRAIN_ENCODER_YAML_H
#define MT_TRAIN_ENCODER_YAML_H

#include <stddef.h>
#include "core/status.h"

// 1 when `path` names a YAML file (.yaml / .yml).
int mt_encoder_config_is_yaml(const char *path);
// Converts a flat YAML mapping (key: scalar) to a JSON object text (free with free()).
// `name` labels errors ("config.yaml:3:5: ...").
mt_status mt_encoder_yaml_to_json(const char *name, const char *text, size_t len, char **json) MT_WARN_UNUSED;

#endif
