// Pretrained model names (NeMo's megatron-bert-* / biomegatron-* and Hugging Face's bert-*),
// resolved to a plain description and to local files. This module does no network access
// (net/download.c fetches missing files into the model directory); weights and vocab are read
// from a local model directory,
//     $MEGATUNE_MODEL_DIR, else ~/.cache/megatune (if HOME is unset: ./.megatune)
// or, for the names NeMo's MEGATRON_CONFIG_MAP knows, from where NeMo v1.0-1.4 cached them:
//     $TORCH_HOME/megatron/<name> (checkpoint) and <name>_vocab (TORCH_HOME defaults to
//     $XDG_CACHE_HOME/torch, else ~/.cache/torch; torch.hub._get_torch_home)
// laid out as
//     <dir>/<name>/vocab.txt                 (every name)
//     <dir>/<name>/<checkpoint_file>         model_optim_rng.pt for megatron-bert-345m-*,
//                                            MegatronBERT.pt for biomegatron-bert-345m-* (the NGC
//                                            file names), pytorch_model.bin for bert-*; none for
//                                            megatron-bert-uncased/-cased (the user gives one).
// e.g. ~/.cache/megatune/megatron-bert-345m-uncased/vocab.txt. When a file is missing the error
// names the exact path looked for and where to download the file.
// This module knows nothing of model/: the trainer maps the plain ints onto mt_model_config.
#ifndef MT_TEXT_PRETRAINED_H
#define MT_TEXT_PRETRAINED_H

#include <stddef.h>
#include "core/status.h"

typedef struct {
    const char *name;
    // Architecture. has_architecture == 0 (megatron-bert-uncased/-cased): NeMo defines no shape for
    // these names, so the user must give a model config (hidden size, layers, heads, positions)
    // and a checkpoint; the other fields below are then 0.
    int has_architecture;
    int hidden_size;
    int num_layers;
    int num_attention_heads;
    int max_position_embeddings;
    int ffn_hidden_size;          // 4 * hidden_size
    int num_tokentypes;           // 2
    int megatron;                 // 1: Megatron pre-LN (no embedding LayerNorm, final LayerNorm)
                                  // 0: BERT post-LN (embedding LayerNorm)
    int lowercase;                // 1 uncased, 0 cased (the tokenizer's casing)
    int vocab_size;               // lines of the expected vocab file, 0 if unknown (BioMegatron)
    const char *vocab_file;       // file name inside <dir>/<name>/: "vocab.txt"
    const char *checkpoint_file;  // file name inside <dir>/<name>/, NULL if the name has none
    const char *vocab_source;     // where to download the vocab (URL / page)
    const char *checkpoint_source; // where to download the checkpoint, NULL if none
    const char *description;
    // Download addresses: NeMo's own (megatron_utils.py MEGATRON_CONFIG_MAP, v1.0-1.4) first; the
    // second vocab address is the Hugging Face hub copy, tried when the first fails. NULL: the
    // file is not downloaded (bert-* weights: NeMo loads them through transformers, whose
    // pytorch_model.bin names megatune's loader does not read).
    const char *vocab_url;
    const char *vocab_url_alt;
    const char *checkpoint_url;
    long long vocab_bytes;        // exact size when known (0 unknown)
    double checkpoint_mib;        // approximate size, for `megatune download --list`
    int nemo_cached;              // 1: NeMo's megatron cache may hold this name's files
} mt_pretrained_info;

typedef enum { MT_PRETRAINED_VOCAB = 0, MT_PRETRAINED_CHECKPOINT = 1 } mt_pretrained_file;

// The table entry for `name`, or NULL (mt_pretrained_lookup sets an error listing all names).
const mt_pretrained_info *mt_pretrained_find(const char *name);
mt_status mt_pretrained_lookup(const char *name, const mt_pretrained_info **out) MT_WARN_UNUSED;
// All entries; *n receives their count.
const mt_pretrained_info *mt_pretrained_all(size_t *n);
// The known names, comma-separated (for help texts and errors).
const char *mt_pretrained_names(void);

// The model directory: $MEGATUNE_MODEL_DIR, else $HOME/.cache/megatune.
mt_status mt_pretrained_model_dir(char *buf, size_t size) MT_WARN_UNUSED;
// NeMo's megatron cache folder: $TORCH_HOME/megatron, else $XDG_CACHE_HOME/torch/megatron, else
// $HOME/.cache/torch/megatron.
mt_status mt_pretrained_nemo_cache_dir(char *buf, size_t size) MT_WARN_UNUSED;
// Where one file of a preset is. Returns 1 and the path when it exists in the model directory,
// 2 when it exists in NeMo's cache, 0 when missing (then `path` is the model-directory path it
// should have and `nemo_path`, if not NULL, NeMo's cache path or "" when NeMo has none), -1 when
// the preset has no such file or a path does not fit (message set).
int mt_pretrained_locate(const mt_pretrained_info *p, mt_pretrained_file which, char *path, size_t size,
                         char *nemo_path, size_t nsize);
// Appends to `msg` one line per missing file of `p` among `which_mask` (bit 1 << file): the
// path looked for, NeMo's cache path, and the address. Returns how many are missing.
int mt_pretrained_describe_missing(const mt_pretrained_info *p, unsigned which_mask, char *msg, size_t size);
// <dir>/<name>/<vocab_file>; fails with MT_ERR_NOT_FOUND and a message naming the path and the
// download source when the file does not exist.
mt_status mt_pretrained_vocab_path(const mt_pretrained_info *p, char *buf, size_t size) MT_WARN_UNUSED;
// <dir>/<name>/<checkpoint_file>; the same checks. A name without a checkpoint fails with
// MT_ERR_NOT_FOUND saying that a checkpoint must be given.
mt_status mt_pretrained_checkpoint_path(const mt_pretrained_info *p, char *buf, size_t size) MT_WARN_UNUSED;

#endif
