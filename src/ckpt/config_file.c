#include "ckpt/config_file.h"
#include "core/file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_FLOAT, K_GELU, K_ARCH, K_IGNORE } key_kind;

typedef struct {
    const char *name; // canonical spelling (dashes); '_' variants accepted
    key_kind kind;
    size_t off;
    int min;
} key_def;

#define OFF(f) offsetof(mt_model_config, f)
static const key_def keys[] = {
    {"hidden-size", K_INT, OFF(hidden_size), 1},
    {"num-attention-heads", K_INT, OFF(num_attention_heads), 1},
    {"num-layers", K_INT, OFF(num_layers), 1},
    {"max-seq-length", K_INT, OFF(max_position_embeddings), 1},
    {"max-position-embeddings", K_INT, OFF(max_position_embeddings), 1},
    {"ffn-hidden-size", K_INT, OFF(ffn_hidden_size), 1},
    {"vocab-size", K_INT, OFF(vocab_size), 1},
    {"make-vocab-size-divisible-by", K_INT, OFF(make_vocab_size_divisible_by), 1},
    {"num-tokentypes", K_INT, OFF(num_tokentypes), 1},
    {"tensor-model-parallel-size", K_INT, OFF(tp_size), 1},
    {"layernorm-epsilon", K_FLOAT, OFF(layernorm_eps), 0},
    {"hidden-dropout", K_FLOAT, OFF(hidden_dropout), 0},
    {"attention-dropout", K_FLOAT, OFF(attention_dropout), 0},
    {"init-method-std", K_FLOAT, OFF(init_method_std), 0},
    {"gelu", K_GELU, OFF(gelu), 0},
    {"arch", K_ARCH, OFF(arch), 0},
    // Hugging Face config.json
    {"num-hidden-layers", K_INT, OFF(num_layers), 1},
    {"intermediate-size", K_INT, OFF(ffn_hidden_size), 1},
    {"type-vocab-size", K_INT, OFF(num_tokentypes), 1},
    {"layer-norm-eps", K_FLOAT, OFF(layernorm_eps), 0},
    {"hidden-dropout-prob", K_FLOAT, OFF(hidden_dropout), 0},
    {"attention-probs-dropout-prob", K_FLOAT, OFF(attention_dropout), 0},
    {"initializer-range", K_FLOAT, OFF(init_method_std), 0},
    {"hidden-act", K_GELU, OFF(gelu), 0},
    {"model-type", K_ARCH, OFF(arch), 0},
    // known, not part of the encoder shape
    {"architectures", K_IGNORE, 0, 0}, {"pad-token-id", K_IGNORE, 0, 0}, {"position-embedding-type", K_IGNORE, 0, 0},
    {"torch-dtype", K_IGNORE, 0, 0}, {"transformers-version", K_IGNORE, 0, 0}, {"use-cache", K_IGNORE, 0, 0},
    {"gradient-checkpointing", K_IGNORE, 0, 0}, {"classifier-dropout", K_IGNORE, 0, 0}, {"tokenizer-type", K_IGNORE, 0, 0},
    {"vocab-file", K_IGNORE, 0, 0}, {"fp16", K_IGNORE, 0, 0}, {"bf16", K_IGNORE, 0, 0},
    // Megatron runtime switches that do not change the weights' meaning
    {"lazy-mpu-init", K_IGNORE, 0, 0}, {"onnx-safe", K_IGNORE, 0, 0}, {"apply-query-key-layer-scaling", K_IGNORE, 0, 0},
    {"checkpoint-activations", K_IGNORE, 0, 0}, {"bias-gelu-fusion", K_IGNORE, 0, 0}, {"masked-softmax-fusion", K_IGNORE, 0, 0},
    {"attention-softmax-in-fp32", K_IGNORE, 0, 0}, {"fp32-residual-connection", K_IGNORE, 0, 0},
};

static void normalise(const char *in, char *out, size_t cap) {
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) out[i] = in[i] == '_' ? '-' : in[i];
    out[i] = 0;
}

static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[n][m];
}

mt_status mt_config_json_parse(const char *what, const char *json, mt_model_config *cfg) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        const char *e = cJSON_GetErrorPtr();
        mt_status s = mt_fail(MT_ERR_FORMAT, "%s: not a JSON object%s%.40s", what, e ? " near: " : "", e ? e : "");
        cJSON_Delete(root);
        return s;
    }
    mt_status s = MT_OK;
    for (cJSON *it = root->child; it && s == MT_OK; it = it->next) {
        char k[128];
        normalise(it->string, k, sizeof k);
        const key_def *def = NULL;
        for (size_t i = 0; i < sizeof keys / sizeof *keys && !def; i++)
            if (!strcmp(keys[i].name, k)) def = &keys[i];
        if (!def) {
            const char *best = keys[0].name;
            int bd = 1 << 30;
            for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
                int d = edit_distance(k, keys[i].name);
                if (d < bd) bd = d, best = keys[i].name;
            }
            // Suggest in the spelling the user wrote: NeMo's underscores or Megatron's dashes.
            char suggestion[128];
            snprintf(suggestion, sizeof suggestion, "%s", best);
            if (strchr(it->string, '_') && !strchr(it->string, '-'))
                for (char *q = suggestion; *q; q++) *q = *q == '-' ? '_' : *q;
            s = mt_fail(MT_ERR_INVALID, "%s: unknown key '%s'; did you mean '%s'?", what, it->string, suggestion);
            break;
        }
        char *base = (char *)cfg;
        switch (def->kind) {
        case K_IGNORE: break;
        case K_INT:
            // range first: casting a double outside int's range is undefined (found by fuzz_encoder_config)
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= def->min && it->valuedouble <= INT_MAX) ||
                it->valuedouble != (double)(int)it->valuedouble)
                s = mt_fail(MT_ERR_INVALID, "%s: '%s' must be an integer >= %d", what, it->string, def->min);
            else *(int *)(base + def->off) = (int)it->valuedouble;
            break;
        case K_FLOAT:
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble <= FLT_MAX))
                s = mt_fail(MT_ERR_INVALID, "%s: '%s' must be a non-negative number", what, it->string);
            else *(float *)(base + def->off) = (float)it->valuedouble;
            break;
        case K_GELU:
            if (!cJSON_IsString(it)) s = mt_fail(MT_ERR_INVALID, "%s: '%s' must be a string", what, it->string);
            else if (!strcmp(it->valuestring, "gelu") || !strcmp(it->valuestring, "erf")) cfg->gelu = MT_GELU_ERF;
            else if (!strcmp(it->valuestring, "gelu_new") || !strcmp(it->valuestring, "tanh") ||
                     !strcmp(it->valuestring, "gelu_pytorch_tanh"))
                cfg->gelu = MT_GELU_TANH;
            else if (!strcmp(it->valuestring, "onnx")) cfg->gelu = MT_GELU_ONNX;
            else s = mt_fail(MT_ERR_INVALID, "%s: '%s' is '%s'; expected gelu (erf), gelu_new/tanh or onnx", what, it->string,
                             it->valuestring);
            break;
        case K_ARCH:
            if (!cJSON_IsString(it)) s = mt_fail(MT_ERR_INVALID, "%s: '%s' must be a string", what, it->string);
            else if (!strcmp(it->valuestring, "bert")) {
                cfg->arch = MT_ARCH_BERT;
                if (!cJSON_GetObjectItem(root, "layer_norm_eps") && !cJSON_GetObjectItem(root, "layernorm-epsilon"))
                    cfg->layernorm_eps = 1e-12f;
            } else if (!strcmp(it->valuestring, "megatron-bert") || !strcmp(it->valuestring, "megatron"))
                cfg->arch = MT_ARCH_MEGATRON;
            else s = mt_fail(MT_ERR_INVALID, "%s: '%s' is '%s'; expected bert or megatron-bert", what, it->string, it->valuestring);
            break;
        }
    }
    cJSON_Delete(root);
    return s;
}

mt_status mt_config_file_load(const char *path, mt_model_config *cfg) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf;
    size_t len;
    mt_status rs = mt_read_all(f, (size_t)16 << 20, &buf, &len);
    int err = errno;
    fclose(f);
    if (rs == MT_ERR_FORMAT) return mt_fail(MT_ERR_FORMAT, "%s: not a config file (larger than 16 MiB)", path);
    if (rs == MT_ERR_IO) return mt_fail(MT_ERR_IO, "%s: read error: %s", path, strerror(err));
    if (rs != MT_OK) return rs;
    mt_status s = mt_config_json_parse(path, buf, cfg);
    free(buf);
    return s;
}
