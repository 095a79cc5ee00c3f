// Hugging Face safetensors: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data.
// Reading maps the file and bounds-checks every entry; names of transformers' MegatronBertModel
// and BertModel are mapped to canonical Megatron names (query/key/value are fused back into one
// QKV tensor in the [heads, 3, head_dim] row order).
#ifndef MT_CKPT_SAFETENSORS_H
#define MT_CKPT_SAFETENSORS_H

#include "ckpt/tensor.h"
#include "ckpt/torchfile.h"
#include "core/status.h"

struct mt_ckpt_src;

typedef struct mt_safetensors mt_safetensors;
typedef struct {
    char *name;
    mt_ckpt_tensor t;
} mt_st_entry;

mt_status mt_safetensors_open(const char *path, mt_safetensors **out) MT_WARN_UNUSED;
// Over caller-owned memory (fuzzing, archives).
mt_status mt_safetensors_open_mem(const char *what, const uint8_t *buf, size_t len, mt_safetensors **out) MT_WARN_UNUSED;
void mt_safetensors_close(void *st);
size_t mt_safetensors_count(const mt_safetensors *st);
const mt_st_entry *mt_safetensors_entry(const mt_safetensors *st, size_t i);
// "__metadata__" value for key, or NULL.
const char *mt_safetensors_meta(const mt_safetensors *st, const char *key);

// Writes tensors (row-major data) with optional string metadata; atomic like mt_torch_save.
mt_status mt_safetensors_save(const char *path, const mt_named_tensor *t, int n, const char *const *meta_keys,
                              const char *const *meta_vals, int nmeta) MT_WARN_UNUSED;

// Hugging Face name -> canonical Megatron name; *qkv_part = 0/1/2 for query/key/value
// (canonical then names the fused QKV tensor), -1 otherwise. Returns 0 when `hf` is not a
// BERT/MegatronBert weight name we map (the name is then canonicalised as a Megatron key).
int mt_hf_to_canonical(const char *hf, char *out, size_t cap, int *qkv_part);
// Canonical -> Hugging Face name for writing. `bert_arch`: BertModel post-LN names, else
// MegatronBert names. part = 0/1/2 selects query/key/value for QKV tensors. Returns 0 when
// the canonical name has no HF equivalent (kept under its canonical name).
int mt_canonical_to_hf(const char *canonical, int bert_arch, int part, char *out, size_t cap);

// Fills a checkpoint source from a safetensors file (used by mt_ckpt_src_open).
mt_status mt_safetensors_src_load(struct mt_ckpt_src *s, const char *path, const void *opts /* const mt_ckpt_src_opts * */) MT_WARN_UNUSED;

#endif
