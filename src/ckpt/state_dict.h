// Checkpoints <-> the model. The parameter table (model/params.h) is the only thing this code
// knows about the model: names, local/global shapes, split rule and offset in the span.
#ifndef MT_CKPT_STATE_DICT_H
#define MT_CKPT_STATE_DICT_H

#include "core/status.h"
#include "model/config.h"
#include "model/model.h"
#include "model/params.h"

// What a Megatron load found (all optional for the caller).
typedef struct {
    double checkpoint_version; // 0 when absent
    int has_version;
    int tp_size;               // rank files merged
    int iteration;             // -1 when absent
    int args_found;
    int num_layers, hidden_size, num_attention_heads, max_position_embeddings, padded_vocab_size; // -1 = absent
    int loaded;                // parameters filled from the checkpoint
    int missing;               // model parameters absent from the checkpoint (e.g. the task head)
    int unused;                // checkpoint tensors the model does not use (pooler, lm_head, binary_head)
} mt_megatron_info;

// Torch zip file, NeMo key names (the parameter table's), this rank's local shapes, fp32, atomic.
mt_status mt_state_dict_save_model(const char *path, mt_model *m) MT_WARN_UNUSED;
// A torch file (zip or legacy) holding a flat NeMo state dict (or {'state_dict': {...}}) -> model.
// strict: missing / unexpected / shape-mismatched keys are errors naming them; non-strict: warn
// and skip. Keys may use the "encoder" / "self_attention" spellings.
mt_status mt_state_dict_load_model(const char *path, mt_model *m, int strict) MT_WARN_UNUSED;
// Megatron checkpoint (folder with mp_rank_XX/model_optim_rng.pt, release/, iter_XXXXXXX/, a root
// with latest_checkpointed_iteration.txt, or one .pt file; also a .safetensors file) -> the model,
// merging/splitting any TP=N into the model's tp_size/tp_rank. fp16/bf16 converted to fp32; QKV
// rows reordered per checkpoint_version; vocab rows copied up to the smaller padded size (rows the
// checkpoint lacks are zeroed). Checkpoint args are checked against the model config (a mismatch is
// an error naming both). Head parameters are left as they are. `info` may be NULL.
mt_status mt_megatron_load(const char *path, mt_model *m, mt_megatron_info *info) MT_WARN_UNUSED;

// The same two loaders over a bare parameter table + span (what the model functions call; tests
// and tools may use them without building a model).
mt_status mt_megatron_load_params(const char *path, const mt_model_config *cfg, const mt_param_table *tab, float *span,
                                  mt_megatron_info *info) MT_WARN_UNUSED;
mt_status mt_state_dict_load_params(const char *path, const mt_model_config *cfg, const mt_param_table *tab, float *span,
                                    int strict) MT_WARN_UNUSED;
mt_status mt_state_dict_save_params(const char *path, const mt_param_table *tab, const float *span) MT_WARN_UNUSED;

#endif
