// Model config files: Megatron's JSON with dashed keys ("hidden-size", "num-attention-heads",
// "num-layers", "max-seq-length" = max position embeddings, ...), the same keys underscored, and
// Hugging Face config.json keys (num_hidden_layers, intermediate_size, layer_norm_eps, ...).
#ifndef MT_CKPT_CONFIG_FILE_H
#define MT_CKPT_CONFIG_FILE_H

#include "core/status.h"
#include "model/config.h"

// Sets the fields the file names; the others are left as they are (call mt_model_config_defaults
// first). Unknown keys are errors naming the key and the nearest valid one; values of the wrong
// type or out of range name the key and the value.
mt_status mt_config_file_load(const char *path, mt_model_config *cfg) MT_WARN_UNUSED;
// Same over a JSON text (`what` names it in errors).
mt_status mt_config_json_parse(const char *what, const char *json, mt_model_config *cfg) MT_WARN_UNUSED;

#endif
