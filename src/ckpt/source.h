// A checkpoint seen as a set of GLOBAL (TP=1) tensors under canonical Megatron names
// ("language_model.embedding.word_embeddings.weight", "language_model.transformer.layers.0.
// attention.query_key_value.weight", "lm_head.bias", ...), whatever it was on disk: a Megatron
// folder with N tensor-parallel rank files, a single .pt (nested Megatron tree or flat state
// dict), or a Hugging Face safetensors file. Nothing is merged up front: a virtual tensor
// remembers its shards and reads any [rows x cols] window of the merged tensor on demand,
// applying the QKV row order of the checkpoint's version, so loading into any TP size copies
// each weight once, straight from the memory map into the destination.
//
// The merged QKV row order is [heads, 3, head_dim] (Megatron version >= 2 at TP=1), which is
// the layout the model uses (each TP rank holds a contiguous slice of whole heads).
#ifndef MT_CKPT_SOURCE_H
#define MT_CKPT_SOURCE_H

#include "ckpt/tensor.h"
#include "ckpt/torchfile.h"
#include "core/status.h"
#include "model/params.h"

#define MT_CKPT_MAX_TP 64

typedef enum {
    MT_QKV_NONE = 0,   // not a QKV tensor
    MT_QKV_V0 = 1,     // per rank [3, np, hn] (strided slices of the global [3, n, hn])
    MT_QKV_V1 = 2,     // per rank [np, hn, 3]
    MT_QKV_V2 = 3,     // per rank [np, 3, hn] (versions 2.0 and 3.0)
    MT_QKV_SPLIT = 4,  // three global tensors q, k, v (Hugging Face)
} mt_qkv_order;

typedef struct {
    char name[MT_PARAM_NAME_MAX + 32]; // canonical Megatron name
    mt_split_rule split;               // Megatron's rule for this name
    int split_dim;
    mt_qkv_order qkv;
    int nshards;
    const mt_ckpt_tensor *shard[MT_CKPT_MAX_TP]; // rank r's tensor (or q, k, v)
    int ndim;
    int64_t rows, cols; // merged shape as [rows, cols] (1-D: [n, 1])
    mt_dtype dtype;
} mt_vtensor;

typedef struct {
    int num_layers, hidden_size, num_attention_heads, max_position_embeddings, padded_vocab_size, tp_size;
    int found; // 1 when the checkpoint carried args
} mt_ckpt_args;

typedef enum { MT_SRC_MEGATRON = 0, MT_SRC_FLAT = 1, MT_SRC_SAFETENSORS = 2 } mt_src_kind;

typedef struct mt_ckpt_src {
    char path[1024];
    mt_src_kind kind;
    int tp;                  // rank files merged
    double version;          // checkpoint_version (0 when absent)
    int has_version;
    int iteration;           // -1 when absent
    int heads;               // attention heads used for QKV reordering (0 = unknown)
    int arch_bert;           // 1 when the names are post-LN BERT (embedding LayerNorm present)
    mt_ckpt_args args;
    mt_vtensor *v;
    int n;
    // owned resources
    mt_torch_file *files[MT_CKPT_MAX_TP];
    mt_flat flats[MT_CKPT_MAX_TP];
    void *st;                // safetensors file
    char rank_paths[MT_CKPT_MAX_TP][1100];
} mt_ckpt_src;

typedef struct {
    int heads;             // attention heads when the checkpoint's args lack them (0 = from args)
    double force_version;  // < 0: use the checkpoint's checkpoint_version
} mt_ckpt_src_opts;

// path: a Megatron root (latest_checkpointed_iteration.txt), an iter_XXXXXXX/ or release/ folder,
// a folder with mp_rank_XX/, a single .pt/.ckpt file, or a .safetensors file.
mt_status mt_ckpt_src_open(const char *path, const mt_ckpt_src_opts *opts, mt_ckpt_src **out) MT_WARN_UNUSED;
void mt_ckpt_src_free(mt_ckpt_src *s);
const mt_vtensor *mt_ckpt_src_find(const mt_ckpt_src *s, const char *canonical_name);
// Copies merged rows [row0, row0+nrows) x cols [col0, col0+ncols) to dst (row-major, ncols per
// row) as fp32. Rows past the merged end (vocab padding of a smaller checkpoint) are zeroed.
mt_status mt_vtensor_read(const mt_ckpt_src *s, const mt_vtensor *v, int64_t row0, int64_t nrows, int64_t col0,
                          int64_t ncols, float *dst) MT_WARN_UNUSED;
// Megatron's split rule for a canonical name.
mt_split_rule mt_megatron_split_rule(const char *canonical, int *split_dim);
// Maps any accepted spelling (NeMo "bert_model." keys, "encoder"/"self_attention", flat old
// forms) to the canonical name; writes "" when the key is not a model weight.
void mt_ckpt_canonical_name(const char *key, char *out, size_t cap);
// Builds the virtual-tensor list from flat shard maps (used by safetensors too).
mt_status mt_ckpt_src_add(mt_ckpt_src *s, const char *canonical, mt_qkv_order qkv, int nshards,
                          const mt_ckpt_tensor *const *shards) MT_WARN_UNUSED;
// Rows [row0, row0+nrows) of a QKV weight or bias held as `nshards` tensor-parallel shards in
// `order` (a checkpoint version's per-rank layout), merged and reordered to [heads, 3, head_dim]
// (all columns, fp32). `what` names the source in errors. For .nemo members, which are not
// Megatron folders but carry the same layouts (megatron_checkpoint_version.json).
mt_status mt_ckpt_qkv_rows(const char *what, const char *name, const mt_ckpt_tensor *const *shards, int nshards,
                           mt_qkv_order order, int heads, double version, int64_t row0, int64_t nrows,
                           float *dst) MT_WARN_UNUSED;
// The per-rank QKV layout of a Megatron checkpoint_version (0: absent).
static inline mt_qkv_order mt_qkv_order_of_version(double v) {
    return v < 1.0 ? MT_QKV_V0 : v < 2.0 ? MT_QKV_V1 : MT_QKV_V2;
}

#endif
