// Checkpoint conversion and inspection (the library half of `megatune convert` / `inspect`).
// Conversion goes through the canonical global view (source.h), so every tensor the source
// holds is carried, including the pooler, lm_head and binary_head the fine-tuning model ignores.
#ifndef MT_CKPT_CONVERT_H
#define MT_CKPT_CONVERT_H

#include <stdio.h>
#include "ckpt/tensor.h"
#include "core/status.h"

typedef struct {
    int tp;          // output tensor-parallel size (Megatron folder output); 1 for .pt / .safetensors
    int heads;       // attention heads when the source's args lack them (0 = from the source)
    int vocab_size;  // real vocab size: output vocab rows = pad(vocab, 128*tp); 0 = keep the source's rows
                     // (padded further to a multiple of 128*tp when needed)
    double force_version; // < 0: the source's checkpoint_version
    mt_dtype dtype;       // output weights: MT_DT_F32 (default), MT_DT_F16 or MT_DT_BF16
} mt_convert_opts;

// SRC: Megatron folder / .pt / .safetensors. DST: a folder (Megatron layout
// DST/release/mp_rank_XX/model_optim_rng.pt, checkpoint_version 3.0), a .pt file (one Megatron
// tree at TP=1) or a .safetensors file (Hugging Face MegatronBert / Bert names).
mt_status mt_ckpt_convert(const char *src, const char *dst, const mt_convert_opts *o) MT_WARN_UNUSED;

// Prints a description of PATH (.pt, Megatron folder, .nemo, .safetensors) to out.
mt_status mt_ckpt_inspect(const char *path, FILE *out, int verbose) MT_WARN_UNUSED;

#endif
