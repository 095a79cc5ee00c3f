#include "ckpt/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/source.h"

struct mt_safetensors {
    char *path;
    const uint8_t *buf;
    size_t len;
    int mapped;
    mt_st_entry *e;
    size_t n;
    cJSON *meta; // owned copy of __metadata__
};

void mt_safetensors_close(void *p) {
    mt_safetensors *st = p;
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->e[i].name);
    free(st->e);
    cJSON_Delete(st->meta);
    if (st->mapped) munmap((void *)st->buf, st->len);
    free(st->path);
    free(st);
}

size_t mt_safetensors_count(const mt_safetensors *st) { return st->n; }
const mt_st_entry *mt_safetensors_entry(const mt_safetensors *st, size_t i) { return i < st->n ? &st->e[i] : NULL; }
const char *mt_safetensors_meta(const mt_safetensors *st, const char *key) {
    const cJSON *v = st->meta ? cJSON_GetObjectItemCaseSensitive(st->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static mt_status parse(mt_safetensors *st) {
    const char *p = st->path;
    if (st->len < 8) return mt_fail(MT_ERR_FORMAT, "%s: %zu bytes is too short for safetensors (truncated?)", p, st->len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | st->buf[i];
    if (hl > st->len - 8 || hl > (100u << 20))
        return mt_fail(MT_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes) or 100 MiB", p, (unsigned long long)hl, st->len);
    cJSON *root = cJSON_ParseWithLength((const char *)st->buf + 8, (size_t)hl);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mt_fail(MT_ERR_FORMAT, "%s: header is not a JSON object", p);
    }
    const uint8_t *data = st->buf + 8 + hl;
    uint64_t dlen = st->len - 8 - hl;
    int count = cJSON_GetArraySize(root);
    st->e = mt_calloc((size_t)(count > 0 ? count : 1), sizeof *st->e);
    if (!st->e) {
        cJSON_Delete(root);
        return MT_ERR_NOMEM;
    }
    mt_status s = MT_OK;
    for (cJSON *it = root->child; it && s == MT_OK; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (st->meta) { // cJSON keeps duplicate keys; a second one would leak the first
                s = mt_fail(MT_ERR_FORMAT, "%s: the header holds __metadata__ twice: a safetensors header has one", p);
                break;
            }
            st->meta = cJSON_Duplicate(it, 1);
            continue;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(it, "shape"),
                    *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
            s = mt_fail(MT_ERR_FORMAT, "%s: header entry '%s' needs dtype, shape and data_offsets [begin, end]", p, it->string);
            break;
        }
        mt_st_entry *e = &st->e[st->n];
        if (!mt_dtype_from_safetensors(dt->valuestring, &e->t.dtype)) {
            s = mt_fail(MT_ERR_UNSUPPORTED, "%s: '%s' has unsupported dtype %s", p, it->string, dt->valuestring);
            break;
        }
        int nd = cJSON_GetArraySize(sh);
        if (nd > MT_CKPT_MAX_DIMS) {
            s = mt_fail(MT_ERR_UNSUPPORTED, "%s: '%s' has %d dimensions", p, it->string, nd);
            break;
        }
        e->t.ndim = nd;
        // extent (the product of the non-zero sizes) bounds every stride below as well as numel:
        // a zero size makes numel 0 but not the strides of the dimensions after it.
        int64_t numel = 1, extent = 1;
        for (int d = 0; d < nd; d++) {
            const cJSON *x = cJSON_GetArrayItem(sh, d);
            if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 4e18 || x->valuedouble != (double)(int64_t)x->valuedouble) {
                s = mt_fail(MT_ERR_FORMAT, "%s: '%s' shape[%d] is not a non-negative integer", p, it->string, d);
                break;
            }
            e->t.shape[d] = (int64_t)x->valuedouble;
            if (e->t.shape[d] && extent > ((int64_t)1 << 62) / e->t.shape[d]) {
                s = mt_fail(MT_ERR_FORMAT, "%s: '%s' shape overflows 2^62 elements", p, it->string);
                break;
            }
            numel *= e->t.shape[d];
            if (e->t.shape[d]) extent *= e->t.shape[d];
        }
        if (s != MT_OK) break;
        int64_t stride = 1;
        for (int d = nd - 1; d >= 0; d--) {
            e->t.stride[d] = stride;
            stride *= e->t.shape[d];
        }
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
        if (!(b >= 0 && en >= b && en <= (double)dlen)) {
            s = mt_fail(MT_ERR_FORMAT, "%s: '%s' data_offsets [%.0f, %.0f] outside the %llu-byte data section (truncated?)", p,
                        it->string, b, en, (unsigned long long)dlen);
            break;
        }
        uint64_t ub = (uint64_t)b, ue = (uint64_t)en, es = mt_dtype_size(e->t.dtype);
        if ((uint64_t)numel > (ue - ub) / es || ue - ub != (uint64_t)numel * es) {
            s = mt_fail(MT_ERR_FORMAT, "%s: '%s' needs %lld x %llu bytes but data_offsets give %llu", p, it->string, (long long)numel,
                        (unsigned long long)es, (unsigned long long)(ue - ub));
            break;
        }
        e->t.data = data + ub;
        e->t.storage_numel = numel;
        e->t.offset = 0;
        e->name = mt_strdup(it->string);
        if (!e->name) {
            s = MT_ERR_NOMEM;
            break;
        }
        e->t.storage_key = e->name;
        st->n++;
    }
    cJSON_Delete(root);
    return s;
}

mt_status mt_safetensors_open_mem(const char *what, const uint8_t *buf, size_t len, mt_safetensors **out) {
    *out = NULL;
    mt_safetensors *st = mt_calloc(1, sizeof *st);
    if (!st) return MT_ERR_NOMEM;
    st->path = mt_strdup(what ? what : "<memory>");
    st->buf = buf;
    st->len = len;
    mt_status s = parse(st);
    if (s != MT_OK) {
        mt_safetensors_close(st);
        return s;
    }
    *out = st;
    return MT_OK;
}

mt_status mt_safetensors_open(const char *path, mt_safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        return mt_fail(MT_ERR_FORMAT, "%s: not a regular non-empty file", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return mt_fail(MT_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    mt_safetensors *st = mt_calloc(1, sizeof *st);
    if (!st) {
        munmap(map, (size_t)sb.st_size);
        return MT_ERR_NOMEM;
    }
    st->path = mt_strdup(path);
    st->buf = map;
    st->len = (size_t)sb.st_size;
    st->mapped = 1;
    mt_status s = parse(st);
    if (s != MT_OK) {
        mt_safetensors_close(st);
        return s;
    }
    *out = st;
    return MT_OK;
}

// ---- name mapping ---------------------------------------------------------------------------

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static const struct {
    const char *hf, *meg;
} layer_map[] = {
    {"attention.ln.", "input_layernorm."},
    {"attention.output.dense.", "attention.dense."},
    {"attention.output.LayerNorm.", "post_attention_layernorm."}, // BERT post-LN
    {"intermediate.dense.", "mlp.dense_h_to_4h."},
    {"output.dense.", "mlp.dense_4h_to_h."},
    {"output.LayerNorm.", "post_mlp_layernorm."}, // BERT post-LN
    {"ln.", "post_attention_layernorm."},         // MegatronBert pre-LN
}, top_map[] = {
    {"embeddings.word_embeddings.", "language_model.embedding.word_embeddings."},
    {"embeddings.position_embeddings.", "language_model.embedding.position_embeddings."},
    {"embeddings.token_type_embeddings.", "language_model.embedding.tokentype_embeddings."},
    {"embeddings.LayerNorm.", "language_model.embedding.layernorm."},
    {"encoder.ln.", "language_model.transformer.final_layernorm."},
    {"pooler.dense.", "language_model.pooler.dense."},
    {"cls.predictions.transform.dense.", "lm_head.dense."},
    {"cls.predictions.transform.LayerNorm.", "lm_head.layernorm."},
    {"cls.seq_relationship.", "binary_head."},
};

static const char *fix_leaf(const char *leaf) {
    if (!strcmp(leaf, "gamma")) return "weight";
    if (!strcmp(leaf, "beta")) return "bias";
    return leaf;
}

int mt_hf_to_canonical(const char *hf, char *out, size_t cap, int *qkv_part) {
    *qkv_part = -1;
    const char *n = hf;
    if (starts(n, "bert.")) n += 5;
    else if (starts(n, "megatron_bert.")) n += 14;
    if (!strcmp(n, "cls.predictions.bias")) {
        snprintf(out, cap, "lm_head.bias");
        return 1;
    }
    for (size_t i = 0; i < sizeof top_map / sizeof *top_map; i++)
        if (starts(n, top_map[i].hf)) {
            snprintf(out, cap, "%s%s", top_map[i].meg, fix_leaf(n + strlen(top_map[i].hf)));
            return 1;
        }
    int layer, used = 0;
    if (sscanf(n, "encoder.layer.%d.%n", &layer, &used) == 1 && used > 0) {
        const char *rest = n + used;
        static const char *qkv[3] = {"attention.self.query.", "attention.self.key.", "attention.self.value."};
        for (int k = 0; k < 3; k++)
            if (starts(rest, qkv[k])) {
                *qkv_part = k;
                snprintf(out, cap, "language_model.transformer.layers.%d.attention.query_key_value.%s", layer,
                         fix_leaf(rest + strlen(qkv[k])));
                return 1;
            }
        for (size_t i = 0; i < sizeof layer_map / sizeof *layer_map; i++)
            if (starts(rest, layer_map[i].hf)) {
                snprintf(out, cap, "language_model.transformer.layers.%d.%s%s", layer, layer_map[i].meg,
                         fix_leaf(rest + strlen(layer_map[i].hf)));
                return 1;
            }
    }
    mt_ckpt_canonical_name(hf, out, cap);
    return 0;
}

int mt_canonical_to_hf(const char *c, int bert_arch, int part, char *out, size_t cap) {
    if (!strcmp(c, "lm_head.bias")) {
        snprintf(out, cap, "cls.predictions.bias");
        return 1;
    }
    for (size_t i = 0; i < sizeof top_map / sizeof *top_map; i++)
        if (starts(c, top_map[i].meg)) {
            const char *pre = starts(top_map[i].hf, "cls.") ? "" : "bert.";
            snprintf(out, cap, "%s%s%s", pre, top_map[i].hf, c + strlen(top_map[i].meg));
            return 1;
        }
    int layer, used = 0;
    if (sscanf(c, "language_model.transformer.layers.%d.%n", &layer, &used) == 1 && used > 0) {
        const char *rest = c + used;
        if (starts(rest, "attention.query_key_value.")) {
            static const char *q[3] = {"query", "key", "value"};
            snprintf(out, cap, "bert.encoder.layer.%d.attention.self.%s.%s", layer, q[part < 0 ? 0 : part % 3],
                     rest + strlen("attention.query_key_value."));
            return 1;
        }
        for (size_t i = 0; i < sizeof layer_map / sizeof *layer_map; i++) {
            // post_attention_layernorm means "attention.output.LayerNorm" in BERT, "ln" in MegatronBert
            if (bert_arch && !strcmp(layer_map[i].hf, "ln.")) continue;
            if (!bert_arch && !strcmp(layer_map[i].hf, "attention.output.LayerNorm.")) continue;
            if (starts(rest, layer_map[i].meg)) {
                snprintf(out, cap, "bert.encoder.layer.%d.%s%s", layer, layer_map[i].hf, rest + strlen(layer_map[i].meg));
                return 1;
            }
        }
    }
    snprintf(out, cap, "%s", c);
    return 0;
}

mt_status mt_safetensors_src_load(mt_ckpt_src *s, const char *path, const void *opts_) {
    const mt_ckpt_src_opts *o = opts_;
    mt_safetensors *st;
    MT_TRY(mt_safetensors_open(path, &st));
    s->st = st;
    s->version = 3.0;
    s->has_version = 0;
    const char *h = mt_safetensors_meta(st, "num_attention_heads");
    s->heads = o && o->heads > 0 ? o->heads : h ? atoi(h) : 0;
    s->args.num_layers = s->args.hidden_size = s->args.num_attention_heads = s->args.max_position_embeddings =
        s->args.padded_vocab_size = s->args.tp_size = -1;
    if (h) s->args.num_attention_heads = atoi(h);
    // QKV parts are gathered per fused name.
    for (size_t i = 0; i < st->n; i++) {
        char canon[512];
        int part;
        int hf = mt_hf_to_canonical(st->e[i].name, canon, sizeof canon, &part);
        (void)hf;
        if (!strncmp(st->e[i].name, "cls.predictions.decoder.", 24)) continue; // tied to the word embeddings
        if (strstr(canon, "embedding.layernorm.")) s->arch_bert = 1;
        if (part < 0) {
            const mt_ckpt_tensor *t = &st->e[i].t;
            int qkv = strstr(canon, ".query_key_value.") != NULL;
            MT_TRY(mt_ckpt_src_add(s, canon, qkv ? MT_QKV_V2 : MT_QKV_NONE, 1, &t));
            continue;
        }
        if (part != 0) continue;
        const mt_ckpt_tensor *qkv[3] = {&st->e[i].t, NULL, NULL};
        for (int k = 1; k < 3; k++)
            for (size_t j = 0; j < st->n && !qkv[k]; j++) {
                char c2[512];
                int p2;
                mt_hf_to_canonical(st->e[j].name, c2, sizeof c2, &p2);
                if (p2 == k && !strcmp(c2, canon)) qkv[k] = &st->e[j].t;
            }
        if (!qkv[1] || !qkv[2])
            return mt_fail(MT_ERR_FORMAT, "%s: '%s' has no matching key/value tensors", path, st->e[i].name);
        MT_TRY(mt_ckpt_src_add(s, canon, MT_QKV_SPLIT, 3, qkv));
    }
    return MT_OK;
}

// Appends a number to a JSON array; 0 when out of memory.
static int json_push_number(cJSON *arr, double v) {
    cJSON *x = cJSON_CreateNumber(v);
    if (!x) return 0;
    if (!cJSON_AddItemToArray(arr, x)) {
        cJSON_Delete(x);
        return 0;
    }
    return 1;
}

mt_status mt_safetensors_save(const char *path, const mt_named_tensor *t, int n, const char *const *mk,
                              const char *const *mv, int nmeta) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return mt_fail(MT_ERR_NOMEM, "%s: out of memory", path);
    // Every cJSON call may fail for want of memory: a header missing an entry must never be
    // written, so any NULL here is out of memory before the temporary file is created.
    int ok = 1;
    if (nmeta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; i < nmeta && ok; i++) ok = cJSON_AddStringToObject(m, mk[i], mv[i]) != NULL;
    }
    uint64_t off = 0;
    for (int i = 0; i < n && ok; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        ok = e && cJSON_AddStringToObject(e, "dtype", mt_dtype_safetensors(t[i].dtype));
        cJSON *sh = ok ? cJSON_AddArrayToObject(e, "shape") : NULL;
        ok = sh != NULL;
        uint64_t bytes = mt_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim && ok; d++) {
            ok = json_push_number(sh, (double)t[i].shape[d]);
            bytes *= (uint64_t)t[i].shape[d];
        }
        cJSON *o = ok ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        ok = o && json_push_number(o, (double)off) && json_push_number(o, (double)(off + bytes));
        off += bytes;
    }
    if (!ok) {
        cJSON_Delete(root);
        return mt_fail(MT_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    char *hdr = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!hdr) return mt_fail(MT_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    size_t plen = strlen(path);
    char *tmp = mt_malloc(plen + 8);
    if (!tmp) {
        free(hdr);
        return MT_ERR_NOMEM;
    }
    snprintf(tmp, plen + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        mt_status s = mt_fail(MT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(hdr);
        free(tmp);
        return s;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hl, f) == hl;
    for (size_t i = hl; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
    free(hdr);
    for (int i = 0; i < n && ok; i++) {
        uint64_t bytes = mt_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) bytes *= (uint64_t)t[i].shape[d];
        if (bytes) ok = fwrite(t[i].data, 1, bytes, f) == bytes;
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        mt_status s = mt_fail(MT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return s;
    }
    mt_status s = mt_ckpt_atomic_commit(tmp, path);
    free(tmp);
    return s;
}
