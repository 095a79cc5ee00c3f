// The pretrained-name table. Shapes and files follow NeMo v1.0.0's MEGATRON_CONFIG_MAP
// (modules/common/megatron/megatron_utils.py) and Hugging Face's bert-* model pages; see
// /work/shared/reference/nemo.md section 2 and megatron.md section 6.
#include "text/pretrained.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NGC_345M "https://api.ngc.nvidia.com/v2/models/nvidia/megatron_bert_345m/versions/"
#define NGC_345M_PAGE "https://catalog.ngc.nvidia.com/orgs/nvidia/models/megatron_bert_345m"
#define HF_VOCAB(m) "https://huggingface.co/" m "/resolve/main/vocab.txt (model page https://huggingface.co/" m ")"
#define HF_WEIGHTS(m) "https://huggingface.co/" m "/resolve/main/pytorch_model.bin (model page https://huggingface.co/" m ")"

static const mt_pretrained_info table[] = {
    {"megatron-bert-345m-uncased", 1, 1024, 24, 16, 512, 4096, 2, 1, 1, 30522, "vocab.txt", "model_optim_rng.pt",
     "the bert-large-uncased vocab, which NeMo uses for this model: " HF_VOCAB("bert-large-uncased"),
     NGC_345M "v0.1_uncased/zip (NGC page " NGC_345M_PAGE "; take release/mp_rank_00/model_optim_rng.pt from the "
     "zip; NeMo v1.0 downloads " NGC_345M "v0.0/files/release/mp_rank_00/model_optim_rng.pt)",
     "Megatron-BERT 345M, uncased (NGC)",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-uncased-vocab.txt",
     "https://huggingface.co/bert-large-uncased/resolve/main/vocab.txt",
     "https://api.ngc.nvidia.com/v2/models/nvidia/megatron_bert_345m/versions/v0.0/files/release/mp_rank_00/model_optim_rng.pt", 231508, 640, 1},
    {"megatron-bert-345m-cased", 1, 1024, 24, 16, 512, 4096, 2, 1, 0, 28996, "vocab.txt", "model_optim_rng.pt",
     "the bert-large-cased vocab, which NeMo uses for this model: " HF_VOCAB("bert-large-cased"),
     NGC_345M "v0.1_cased/files/release/mp_rank_00/model_optim_rng.pt (NGC page " NGC_345M_PAGE ")",
     "Megatron-BERT 345M, cased (NGC)",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-cased-vocab.txt",
     "https://huggingface.co/bert-large-cased/resolve/main/vocab.txt",
     "https://api.ngc.nvidia.com/v2/models/nvidia/megatron_bert_345m/versions/v0.1_cased/files/release/mp_rank_00/model_optim_rng.pt", 213450, 640, 1},
    {"biomegatron-bert-345m-uncased", 1, 1024, 24, 16, 512, 4096, 2, 1, 1, 0, "vocab.txt", "MegatronBERT.pt",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345muncased/versions/0/files/vocab.txt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345muncased)",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345muncased/versions/0/files/MegatronBERT.pt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345muncased)",
     "BioMegatron 345M, uncased, PubMed-trained (NGC)",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345muncased/versions/0/files/vocab.txt",
     NULL,
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345muncased/versions/0/files/MegatronBERT.pt", 0, 637, 1},
    {"biomegatron-bert-345m-cased", 1, 1024, 24, 16, 512, 4096, 2, 1, 0, 0, "vocab.txt", "MegatronBERT.pt",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/vocab.txt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345mcased)",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/MegatronBERT.pt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345mcased)",
     "BioMegatron 345M, cased, PubMed-trained (NGC)",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/vocab.txt",
     NULL,
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/MegatronBERT.pt", 0, 637, 1},
    {"megatron-bert-uncased", 0, 0, 0, 0, 0, 0, 2, 1, 1, 30522, "vocab.txt", NULL,
     "the bert-large-uncased vocab (NeMo's default for this name): " HF_VOCAB("bert-large-uncased"), NULL,
     "Megatron-BERT of your own shape, uncased: give a model config and a checkpoint",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-uncased-vocab.txt",
     "https://huggingface.co/bert-large-uncased/resolve/main/vocab.txt",
     NULL, 231508, 0, 1},
    {"megatron-bert-cased", 0, 0, 0, 0, 0, 0, 2, 1, 0, 28996, "vocab.txt", NULL,
     "the bert-large-cased vocab (NeMo's default for this name): " HF_VOCAB("bert-large-cased"), NULL,
     "Megatron-BERT of your own shape, cased: give a model config and a checkpoint",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-cased-vocab.txt",
     "https://huggingface.co/bert-large-cased/resolve/main/vocab.txt",
     NULL, 213450, 0, 1},
    {"bert-base-uncased", 1, 768, 12, 12, 512, 3072, 2, 0, 1, 30522, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-base-uncased"), HF_WEIGHTS("bert-base-uncased"), "Google BERT-Base, uncased (Hugging Face)",
     "https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-base-uncased-vocab.txt",
     NULL, 231508, 420, 0},
    {"bert-base-cased", 1, 768, 12, 12, 512, 3072, 2, 0, 0, 28996, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-base-cased"), HF_WEIGHTS("bert-base-cased"), "Google BERT-Base, cased (Hugging Face)",
     "https://huggingface.co/bert-base-cased/resolve/main/vocab.txt",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-base-cased-vocab.txt",
     NULL, 213450, 416, 0},
    {"bert-large-uncased", 1, 1024, 24, 16, 512, 4096, 2, 0, 1, 30522, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-large-uncased"), HF_WEIGHTS("bert-large-uncased"), "Google BERT-Large, uncased (Hugging Face)",
     "https://huggingface.co/bert-large-uncased/resolve/main/vocab.txt",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-uncased-vocab.txt",
     NULL, 231508, 1283, 0},
    {"bert-large-cased", 1, 1024, 24, 16, 512, 4096, 2, 0, 0, 28996, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-large-cased"), HF_WEIGHTS("bert-large-cased"), "Google BERT-Large, cased (Hugging Face)",
     "https://huggingface.co/bert-large-cased/resolve/main/vocab.txt",
     "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-cased-vocab.txt",
     NULL, 213450, 1277, 0},
};

#define NTABLE (sizeof table / sizeof table[0])

const mt_pretrained_info *mt_pretrained_all(size_t *n) {
    if (n) *n = NTABLE;
    return table;
}

const char *mt_pretrained_names(void) {
    static char names[512];
    if (!names[0]) {
        size_t used = 0;
        for (size_t i = 0; i < NTABLE; i++)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", table[i].name);
    }
    return names;
}

const mt_pretrained_info *mt_pretrained_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < NTABLE; i++)
        if (!strcmp(table[i].name, name)) return &table[i];
    return NULL;
}

mt_status mt_pretrained_lookup(const char *name, const mt_pretrained_info **out) {
    if (out) *out = NULL;
    const mt_pretrained_info *p = mt_pretrained_find(name);
    if (!p)
        return mt_fail(MT_ERR_NOT_FOUND, "unknown pretrained model name '%s'; known names: %s", name ? name : "(null)",
                       mt_pretrained_names());
    if (out) *out = p;
    return MT_OK;
}

mt_status mt_pretrained_model_dir(char *buf, size_t size) {
    const char *env = getenv("MEGATUNE_MODEL_DIR");
    int n;
    if (env && *env)
        n = snprintf(buf, size, "%s", env);
    else {
        const char *home = getenv("HOME");
        n = home && *home ? snprintf(buf, size, "%s/.cache/megatune", home) : snprintf(buf, size, "./.megatune");
    }
    if (n < 0 || (size_t)n >= size) return mt_fail(MT_ERR_INVALID, "model directory path is too long (over %zu bytes)", size);
    return MT_OK;
}

mt_status mt_pretrained_nemo_cache_dir(char *buf, size_t size) {
    const char *th = getenv("TORCH_HOME"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (th && *th) n = snprintf(buf, size, "%s/megatron", th);
    else if (xdg && *xdg) n = snprintf(buf, size, "%s/torch/megatron", xdg);
    else if (home && *home) n = snprintf(buf, size, "%s/.cache/torch/megatron", home);
    else n = snprintf(buf, size, "./megatron"); // NeMo falls back to the working directory
    if (n < 0 || (size_t)n >= size) return mt_fail(MT_ERR_INVALID, "NeMo cache path is too long (over %zu bytes)", size);
    return MT_OK;
}

static int is_regular(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int mt_pretrained_locate(const mt_pretrained_info *p, mt_pretrained_file which, char *path, size_t size,
                         char *nemo_path, size_t nsize) {
    if (nemo_path && nsize) nemo_path[0] = 0;
    const char *file = which == MT_PRETRAINED_VOCAB ? p->vocab_file : p->checkpoint_file;
    if (!file) {
        mt_fail(MT_ERR_NOT_FOUND, "pretrained name '%s' has no %s", p->name,
                which == MT_PRETRAINED_VOCAB ? "vocab file" : "checkpoint");
        return -1;
    }
    char dir[4096];
    if (mt_pretrained_model_dir(dir, sizeof dir) != MT_OK) return -1;
    int n = snprintf(path, size, "%s/%s/%s", dir, p->name, file);
    if (n < 0 || (size_t)n >= size) {
        mt_fail(MT_ERR_INVALID, "%s path for %s is too long", file, p->name);
        return -1;
    }
    if (is_regular(path)) return 1;
    if (!p->nemo_cached) return 0;
    char nemo[4200], cache[4096];
    if (mt_pretrained_nemo_cache_dir(cache, sizeof cache) != MT_OK) return -1;
    snprintf(nemo, sizeof nemo, "%s/%s%s", cache, p->name, which == MT_PRETRAINED_VOCAB ? "_vocab" : "");
    if (is_regular(nemo)) {
        if ((size_t)snprintf(path, size, "%s", nemo) >= size) {
            mt_fail(MT_ERR_INVALID, "%s: path too long", nemo);
            return -1;
        }
        return 2;
    }
    if (nemo_path && nsize) snprintf(nemo_path, nsize, "%s", nemo);
    return 0;
}

int mt_pretrained_describe_missing(const mt_pretrained_info *p, unsigned which_mask, char *msg, size_t size) {
    int missing = 0;
    for (int w = 0; w < 2; w++) {
        if (!(which_mask & (1u << w))) continue;
        mt_pretrained_file which = (mt_pretrained_file)w;
        if (which == MT_PRETRAINED_CHECKPOINT && !p->checkpoint_file) continue;
        char path[4200], nemo[4200];
        if (mt_pretrained_locate(p, which, path, sizeof path, nemo, sizeof nemo) != 0) continue;
        const char *url = which == MT_PRETRAINED_VOCAB ? p->vocab_url : p->checkpoint_url;
        const char *src = which == MT_PRETRAINED_VOCAB ? p->vocab_source : p->checkpoint_source;
        size_t used = strlen(msg);
        if (used + 1 >= size) break;
        const char *alt = which == MT_PRETRAINED_VOCAB ? p->vocab_url_alt : NULL;
        snprintf(msg + used, size - used, "\n  %s: the %s of pretrained model '%s' is missing%s%s%s; %s %s%s%s%s", path,
                 which == MT_PRETRAINED_VOCAB ? "vocab file" : "checkpoint", p->name,
                 nemo[0] ? " (also looked in NeMo's cache: " : "", nemo, nemo[0] ? ")" : "",
                 url ? "download" : "get it from", url ? url : src, alt ? " (or " : "", alt ? alt : "", alt ? ")" : "");
        missing++;
    }
    return missing;
}

static mt_status file_in_dir(const mt_pretrained_info *p, mt_pretrained_file which, const char *what,
                             char *buf, size_t size) {
    char nemo[4200];
    int r = mt_pretrained_locate(p, which, buf, size, nemo, sizeof nemo);
    if (r < 0) return MT_ERR_INVALID;
    if (r > 0) return MT_OK;
    const char *source = which == MT_PRETRAINED_VOCAB ? p->vocab_source : p->checkpoint_source;
    const char *url = which == MT_PRETRAINED_VOCAB ? p->vocab_url : p->checkpoint_url;
    return mt_fail(MT_ERR_NOT_FOUND,
                   "%s: the %s of pretrained model '%s' is missing (looked for this exact path; the model "
                   "directory is $MEGATUNE_MODEL_DIR, else ~/.cache/megatune%s%s). %s%s%s get it from %s and save it as %s",
                   buf, what, p->name, nemo[0] ? "; also looked in NeMo's cache: " : "", nemo,
                   url ? "`megatune download " : "", url ? p->name : "", url ? "` fetches it, or" : "There is no download:",
                   source, buf);
}

mt_status mt_pretrained_vocab_path(const mt_pretrained_info *p, char *buf, size_t size) {
    if (!p || !buf || !size) return mt_fail(MT_ERR_INVALID, "mt_pretrained_vocab_path: NULL argument");
    return file_in_dir(p, MT_PRETRAINED_VOCAB, "vocab file", buf, size);
}

mt_status mt_pretrained_checkpoint_path(const mt_pretrained_info *p, char *buf, size_t size) {
    if (!p || !buf || !size) return mt_fail(MT_ERR_INVALID, "mt_pretrained_checkpoint_path: NULL argument");
    if (!p->checkpoint_file)
        return mt_fail(MT_ERR_NOT_FOUND,
                       "pretrained name '%s' has no checkpoint (NeMo defines neither a shape nor weights for it): "
                       "give your own Megatron checkpoint and a model config (hidden size, layers, heads, positions)",
                       p->name);
    return file_in_dir(p, MT_PRETRAINED_CHECKPOINT, "checkpoint", buf, size);
}
