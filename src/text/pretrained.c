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
     "Megatron-BERT 345M, uncased (NGC)"},
    {"megatron-bert-345m-cased", 1, 1024, 24, 16, 512, 4096, 2, 1, 0, 28996, "vocab.txt", "model_optim_rng.pt",
     "the bert-large-cased vocab, which NeMo uses for this model: " HF_VOCAB("bert-large-cased"),
     NGC_345M "v0.1_cased/files/release/mp_rank_00/model_optim_rng.pt (NGC page " NGC_345M_PAGE ")",
     "Megatron-BERT 345M, cased (NGC)"},
    {"biomegatron-bert-345m-uncased", 1, 1024, 24, 16, 512, 4096, 2, 1, 1, 0, "vocab.txt", "MegatronBERT.pt",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345muncased/versions/0/files/vocab.txt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345muncased)",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345muncased/versions/0/files/MegatronBERT.pt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345muncased)",
     "BioMegatron 345M, uncased, PubMed-trained (NGC)"},
    {"biomegatron-bert-345m-cased", 1, 1024, 24, 16, 512, 4096, 2, 1, 0, 0, "vocab.txt", "MegatronBERT.pt",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/vocab.txt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345mcased)",
     "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/MegatronBERT.pt (NGC page "
     "https://catalog.ngc.nvidia.com/orgs/nvidia/models/biomegatron345mcased)",
     "BioMegatron 345M, cased, PubMed-trained (NGC)"},
    {"megatron-bert-uncased", 0, 0, 0, 0, 0, 0, 2, 1, 1, 30522, "vocab.txt", NULL,
     "the bert-large-uncased vocab (NeMo's default for this name): " HF_VOCAB("bert-large-uncased"), NULL,
     "Megatron-BERT of your own shape, uncased: give a model config and a checkpoint"},
    {"megatron-bert-cased", 0, 0, 0, 0, 0, 0, 2, 1, 0, 28996, "vocab.txt", NULL,
     "the bert-large-cased vocab (NeMo's default for this name): " HF_VOCAB("bert-large-cased"), NULL,
     "Megatron-BERT of your own shape, cased: give a model config and a checkpoint"},
    {"bert-base-uncased", 1, 768, 12, 12, 512, 3072, 2, 0, 1, 30522, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-base-uncased"), HF_WEIGHTS("bert-base-uncased"), "Google BERT-Base, uncased (Hugging Face)"},
    {"bert-base-cased", 1, 768, 12, 12, 512, 3072, 2, 0, 0, 28996, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-base-cased"), HF_WEIGHTS("bert-base-cased"), "Google BERT-Base, cased (Hugging Face)"},
    {"bert-large-uncased", 1, 1024, 24, 16, 512, 4096, 2, 0, 1, 30522, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-large-uncased"), HF_WEIGHTS("bert-large-uncased"), "Google BERT-Large, uncased (Hugging Face)"},
    {"bert-large-cased", 1, 1024, 24, 16, 512, 4096, 2, 0, 0, 28996, "vocab.txt", "pytorch_model.bin",
     HF_VOCAB("bert-large-cased"), HF_WEIGHTS("bert-large-cased"), "Google BERT-Large, cased (Hugging Face)"},
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

static mt_status file_in_dir(const mt_pretrained_info *p, const char *file, const char *what, const char *source,
                             char *buf, size_t size) {
    char dir[4096];
    MT_TRY(mt_pretrained_model_dir(dir, sizeof dir));
    int n = snprintf(buf, size, "%s/%s/%s", dir, p->name, file);
    if (n < 0 || (size_t)n >= size) return mt_fail(MT_ERR_INVALID, "%s path for %s is too long", what, p->name);
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISREG(st.st_mode))
        return mt_fail(MT_ERR_NOT_FOUND,
                       "%s: the %s of pretrained model '%s' is missing (looked for this exact path; the model "
                       "directory is $MEGATUNE_MODEL_DIR, else ~/.cache/megatune). There is no download: get it "
                       "from %s and save it as %s",
                       buf, what, p->name, source, buf);
    return MT_OK;
}

mt_status mt_pretrained_vocab_path(const mt_pretrained_info *p, char *buf, size_t size) {
    if (!p || !buf || !size) return mt_fail(MT_ERR_INVALID, "mt_pretrained_vocab_path: NULL argument");
    return file_in_dir(p, p->vocab_file, "vocab file", p->vocab_source, buf, size);
}

mt_status mt_pretrained_checkpoint_path(const mt_pretrained_info *p, char *buf, size_t size) {
    if (!p || !buf || !size) return mt_fail(MT_ERR_INVALID, "mt_pretrained_checkpoint_path: NULL argument");
    if (!p->checkpoint_file)
        return mt_fail(MT_ERR_NOT_FOUND,
                       "pretrained name '%s' has no checkpoint (NeMo defines neither a shape nor weights for it): "
                       "give your own Megatron checkpoint and a model config (hidden size, layers, heads, positions)",
                       p->name);
    return file_in_dir(p, p->checkpoint_file, "checkpoint", p->checkpoint_source, buf, size);
}
