#include "ckpt/source.h"
#include "core/checked.h"
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/safetensors.h"

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && !strcmp(s + a - b, p);
}

static void replace_all(char *s, size_t cap, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    char *p = s;
    while ((p = strstr(p, from))) {
        size_t rest = strlen(p + fl);
        if ((size_t)(p - s) + tl + rest + 1 > cap) return;
        memmove(p + tl, p + fl, rest + 1);
        memcpy(p, to, tl);
        p += tl;
    }
}

void mt_ckpt_canonical_name(const char *key, char *out, size_t cap) {
    static const char *strip[] = {"module.", "model.", "model0.", "bert_model.", "state_dict."};
    int again = 1;
    while (again) {
        again = 0;
        for (size_t i = 0; i < sizeof strip / sizeof *strip; i++)
            if (starts(key, strip[i])) {
                key += strlen(strip[i]);
                again = 1;
            }
    }
    out[0] = 0;
    if (starts(key, "transformer.") || starts(key, "encoder.") || starts(key, "embedding.") || starts(key, "pooler."))
        snprintf(out, cap, "language_model.%s", key);
    else if (starts(key, "word_embeddings.") || starts(key, "position_embeddings.") || starts(key, "tokentype_embeddings."))
        snprintf(out, cap, "language_model.embedding.%s", key);
    else if (starts(key, "language_model.word_embeddings.") || starts(key, "language_model.position_embeddings.") ||
             starts(key, "language_model.tokentype_embeddings."))
        snprintf(out, cap, "language_model.embedding.%s", key + strlen("language_model."));
    else snprintf(out, cap, "%s", key);
    if (starts(out, "language_model.encoder.")) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "language_model.transformer.%s", out + strlen("language_model.encoder."));
        snprintf(out, cap, "%s", tmp);
    }
    replace_all(out, cap, ".self_attention.", ".attention.");
}

mt_split_rule mt_megatron_split_rule(const char *n, int *dim) {
    *dim = -1;
    if ((starts(n, "language_model.") && ends(n, "embedding.word_embeddings.weight")) || !strcmp(n, "lm_head.bias") ||
        !strcmp(n, "word_embeddings_for_head.weight")) {
        *dim = 0;
        return MT_SPLIT_VOCAB;
    }
    if (starts(n, "language_model.transformer.") && (strstr(n, ".query_key_value.") || strstr(n, ".dense_h_to_4h."))) {
        *dim = 0;
        return MT_SPLIT_COLUMN;
    }
    if (starts(n, "language_model.transformer.") && (ends(n, ".attention.dense.weight") || ends(n, ".dense_4h_to_h.weight"))) {
        *dim = 1;
        return MT_SPLIT_ROW;
    }
    return MT_SPLIT_REPLICATED;
}

const mt_vtensor *mt_ckpt_src_find(const mt_ckpt_src *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i];
    return NULL;
}

void mt_ckpt_src_free(mt_ckpt_src *s) {
    if (!s) return;
    for (int i = 0; i < MT_CKPT_MAX_TP; i++) {
        mt_flat_free(&s->flats[i]);
        mt_torch_close(s->files[i]);
    }
    mt_safetensors_close(s->st);
    free(s->v);
    free(s);
}

mt_status mt_ckpt_src_add(mt_ckpt_src *s, const char *name, mt_qkv_order qkv, int nshards,
                          const mt_ckpt_tensor *const *shards) {
    if (nshards < 1 || nshards > MT_CKPT_MAX_TP) return mt_fail(MT_ERR_INVALID, "%s: bad shard count %d", s->path, nshards);
    mt_vtensor *nv = mt_realloc(s->v, (size_t)(s->n + 1) * sizeof *nv);
    if (!nv) return MT_ERR_NOMEM;
    s->v = nv;
    mt_vtensor *v = &s->v[s->n];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->split = mt_megatron_split_rule(name, &v->split_dim);
    v->qkv = qkv;
    v->nshards = nshards;
    for (int i = 0; i < nshards; i++) v->shard[i] = shards[i];
    const mt_ckpt_tensor *t0 = shards[0];
    v->ndim = t0->ndim;
    v->dtype = t0->dtype;
    v->rows = mt_ckpt_tensor_rows(t0);
    v->cols = mt_ckpt_tensor_cols(t0);
    for (int i = 1; i < nshards; i++) {
        const mt_ckpt_tensor *t = shards[i];
        int same = t->ndim == t0->ndim && mt_ckpt_tensor_rows(t) == v->rows && mt_ckpt_tensor_cols(t) == (qkv == MT_QKV_SPLIT ? v->cols : mt_ckpt_tensor_cols(t0));
        if (!same)
            return mt_fail(MT_ERR_FORMAT, "%s: '%s' has shape [%lld x %lld] in shard 0 but [%lld x %lld] in shard %d", s->path, name,
                           (long long)v->rows, (long long)v->cols, (long long)mt_ckpt_tensor_rows(t),
                           (long long)mt_ckpt_tensor_cols(t), i);
    }
    int64_t merged_rows, merged_cols; // shapes come from the file: the merged size must not wrap
    if (v->rows < 0 || v->cols < 0 ||
        !mt_mul_i64(v->rows, qkv == MT_QKV_SPLIT ? 3 : v->split_dim == 0 ? nshards : 1, &merged_rows) ||
        !mt_mul_i64(v->cols, qkv != MT_QKV_SPLIT && v->split_dim == 1 ? nshards : 1, &merged_cols))
        return mt_fail(MT_ERR_FORMAT, "%s: '%s' has shape [%lld x %lld]: merged over %d shards its size overflows", s->path,
                       name, (long long)v->rows, (long long)v->cols, nshards);
    if (qkv == MT_QKV_SPLIT) {
        v->rows *= 3;
        v->split = MT_SPLIT_COLUMN;
        v->split_dim = 0;
    } else if (nshards > 1) {
        if (v->split_dim == 0) v->rows *= nshards;
        else if (v->split_dim == 1) v->cols *= nshards;
    }
    if (v->split_dim == 1 && v->ndim != 2)
        return mt_fail(MT_ERR_FORMAT, "%s: '%s' should be a 2-D weight, has %d dimensions", s->path, name, v->ndim);
    s->n++;
    return MT_OK;
}

// Merged QKV row g -> (shard, local row).
static mt_status qkv_locate(const mt_ckpt_src *s, const mt_vtensor *v, int64_t g, int *shard, int64_t *lr) {
    if (v->qkv == MT_QKV_V2) {
        int64_t R = v->rows / v->nshards;
        *shard = (int)(g / R);
        *lr = g % R;
        return MT_OK;
    }
    int heads = s->heads;
    int groups = v->qkv == MT_QKV_SPLIT ? 1 : v->nshards; // q, k, v are three global tensors
    if (heads <= 0 || v->rows % ((int64_t)3 * heads) || heads % groups)
        return mt_fail(MT_ERR_INVALID, "%s: '%s' (%lld rows, %d shards) needs the attention head count to reorder its QKV rows "
                       "(checkpoint_version %g); the checkpoint's args do not give a usable one (got %d): pass the model's "
                       "num_attention_heads", s->path, v->name, (long long)v->rows, v->nshards, s->version, heads);
    int64_t hn = v->rows / ((int64_t)3 * heads), np = heads / groups;
    int64_t head = g / (3 * hn), which = (g / hn) % 3, e = g % hn;
    int64_t lh = head % np;
    switch (v->qkv) {
    case MT_QKV_V0: *shard = (int)(head / np); *lr = which * np * hn + lh * hn + e; break;
    case MT_QKV_V1: *shard = (int)(head / np); *lr = lh * 3 * hn + e * 3 + which; break;
    case MT_QKV_SPLIT: *shard = (int)which; *lr = head * hn + e; break;
    default: *shard = 0; *lr = g; break;
    }
    return MT_OK;
}

mt_status mt_vtensor_read(const mt_ckpt_src *s, const mt_vtensor *v, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols,
                          float *dst) {
    if (row0 < 0 || nrows < 0 || col0 < 0 || ncols < 0 || col0 + ncols > v->cols)
        return mt_fail(MT_ERR_INVALID, "%s: window rows [%lld,+%lld) cols [%lld,+%lld) outside '%s' [%lld x %lld]", s->path,
                       (long long)row0, (long long)nrows, (long long)col0, (long long)ncols, v->name, (long long)v->rows,
                       (long long)v->cols);
    for (int64_t i = 0; i < nrows; i++) {
        int64_t g = row0 + i;
        float *d = dst + i * ncols;
        if (g >= v->rows) {
            memset(d, 0, (size_t)ncols * sizeof *d);
            continue;
        }
        if (v->split_dim == 1 && v->nshards > 1) {
            int64_t C = v->cols / v->nshards;
            for (int64_t c = col0; c < col0 + ncols;) {
                int r = (int)(c / C);
                int64_t lc = c % C, len = C - lc;
                if (len > col0 + ncols - c) len = col0 + ncols - c;
                mt_ckpt_tensor_row_f32(v->shard[r], g, lc, len, d + (c - col0));
                c += len;
            }
            continue;
        }
        int r = 0;
        int64_t lr = g;
        if (v->qkv != MT_QKV_NONE) MT_TRY(qkv_locate(s, v, g, &r, &lr));
        else if (v->split_dim == 0 && v->nshards > 1) {
            int64_t R = v->rows / v->nshards;
            r = (int)(g / R);
            lr = g % R;
        }
        mt_ckpt_tensor_row_f32(v->shard[r], lr, col0, ncols, d);
    }
    return MT_OK;
}

// ---- Megatron folders -------------------------------------------------------------------------

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// Finds mp_rank_XX/<file> under dir; returns the number of ranks.
static int find_ranks(const char *dir, char paths[][1100], int max) {
    static const char *files[] = {"model_optim_rng.pt", "model_rng.pt", "model_optim_rng.ckpt"};
    int n = 0;
    for (; n < max; n++) {
        int found = 0;
        for (int sfx = 0; sfx < 2 && !found; sfx++)
            for (size_t f = 0; f < sizeof files / sizeof *files && !found; f++) {
                found = mt_path_fmt(paths[n], 1100, sfx ? "%s/mp_rank_%02d_000/%s" : "%s/mp_rank_%02d/%s", dir, n,
                                    files[f]) == MT_OK && is_file(paths[n]);
            }
        if (!found) break;
    }
    return n;
}

static mt_status resolve_folder(mt_ckpt_src *s, const char *path) {
    char dir[1024], tracker[1100];
    MT_TRY(mt_path_fmt(dir, sizeof dir, "%s", path));
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = 0;
    MT_TRY(mt_path_join(tracker, sizeof tracker, dir, "latest_checkpointed_iteration.txt"));
    if (is_file(tracker)) {
        FILE *f = fopen(tracker, "r");
        char line[64] = {0};
        if (!f || !fgets(line, sizeof line, f)) {
            if (f) fclose(f);
            return mt_fail(MT_ERR_IO, "%s: %s; it should hold an iteration number or 'release'", tracker,
                           f ? "the file is empty" : "cannot read");
        }
        fclose(f);
        // Megatron reads it with str.strip(): surrounding whitespace is not part of the value
        size_t lead = strspn(line, " \t");
        memmove(line, line + lead, strlen(line + lead) + 1);
        line[strcspn(line, " \t\r\n")] = 0;
        if (!line[0])
            return mt_fail(MT_ERR_FORMAT, "%s: blank first line; it should hold an iteration number or 'release'", tracker);
        char sub[1100];
        if (!strcmp(line, "release")) MT_TRY(mt_path_join(sub, sizeof sub, dir, "release"));
        else {
            char *end;
            errno = 0;
            long it = strtol(line, &end, 10);
            if (*end || it < 0 || errno == ERANGE || it > 9999999999L)
                return mt_fail(MT_ERR_FORMAT, "%s: holds '%s', expected an iteration number or 'release'", tracker, line);
            MT_TRY(mt_path_fmt(sub, sizeof sub, "%s/iter_%07ld", dir, it));
        }
        if (!is_dir(sub)) return mt_fail(MT_ERR_NOT_FOUND, "%s names %s, which does not exist", tracker, sub);
        MT_TRY(mt_path_fmt(dir, sizeof dir, "%s", sub));
    } else if (!find_ranks(dir, s->rank_paths, 1)) {
        char sub[1100];
        MT_TRY(mt_path_join(sub, sizeof sub, dir, "release"));
        if (is_dir(sub)) MT_TRY(mt_path_fmt(dir, sizeof dir, "%s", sub));
    }
    s->tp = find_ranks(dir, s->rank_paths, MT_CKPT_MAX_TP);
    if (!s->tp)
        return mt_fail(MT_ERR_NOT_FOUND, "%s: no Megatron checkpoint here (expected latest_checkpointed_iteration.txt, "
                       "release/ or iter_XXXXXXX/ with mp_rank_00/model_optim_rng.pt)", path);
    char extra[1100];
    MT_TRY(mt_path_fmt(extra, sizeof extra, "%s/mp_rank_%02d_001", dir, 0));
    if (is_dir(extra))
        return mt_fail(MT_ERR_UNSUPPORTED, "%s: pipeline-parallel checkpoint (mp_rank_00_001 exists); merge pipeline stages "
                       "first", dir);
    return MT_OK;
}

static int pv_int(const mt_pv *v, int dflt) {
    return v && (v->kind == MT_PV_INT || v->kind == MT_PV_BOOL) ? (int)v->i : dflt;
}

static void read_args(mt_ckpt_src *s, const mt_pv *root) {
    mt_ckpt_args *a = &s->args;
    a->num_layers = a->hidden_size = a->num_attention_heads = a->max_position_embeddings = a->padded_vocab_size = a->tp_size = -1;
    const mt_pv *args = mt_pv_get(root, "args");
    if (!args) return;
    a->found = 1;
    a->num_layers = pv_int(mt_pv_attr(args, "num_layers"), -1);
    a->hidden_size = pv_int(mt_pv_attr(args, "hidden_size"), -1);
    a->num_attention_heads = pv_int(mt_pv_attr(args, "num_attention_heads"), -1);
    a->max_position_embeddings = pv_int(mt_pv_attr(args, "max_position_embeddings"), -1);
    a->padded_vocab_size = pv_int(mt_pv_attr(args, "padded_vocab_size"), -1);
    a->tp_size = pv_int(mt_pv_attr(args, "tensor_model_parallel_size"), -1);
    if (a->tp_size < 0) a->tp_size = pv_int(mt_pv_attr(args, "model_parallel_size"), -1);
}

static const mt_pv *model_tree(const mt_pv *root, mt_src_kind *kind) {
    const mt_pv *m;
    *kind = MT_SRC_MEGATRON;
    if ((m = mt_pv_get(root, "model")) && m->kind == MT_PV_DICT) return m;
    if ((m = mt_pv_get(root, "model0")) && m->kind == MT_PV_DICT) return m;
    *kind = MT_SRC_FLAT;
    if ((m = mt_pv_get(root, "state_dict")) && m->kind == MT_PV_DICT) return m;
    return root;
}

static mt_status open_torch(mt_ckpt_src *s, const mt_ckpt_src_opts *o) {
    for (int r = 0; r < s->tp; r++) {
        MT_TRY(mt_torch_open(s->rank_paths[r], &s->files[r]));
        const mt_pv *root = mt_torch_root(s->files[r]);
        if (root->kind != MT_PV_DICT)
            return mt_fail(MT_ERR_FORMAT, "%s: top-level object is a %s, not a dict (state dict or Megatron checkpoint)",
                           s->rank_paths[r], mt_pv_kind_name(root->kind));
        mt_src_kind kind;
        const mt_pv *tree = model_tree(root, &kind);
        const mt_pv *ver = mt_pv_get(root, "checkpoint_version");
        double version = mt_pv_is_number(ver) ? mt_pv_number(ver) : 0.0;
        if (r == 0) {
            s->kind = kind;
            s->version = version;
            s->has_version = mt_pv_is_number(ver);
            s->iteration = pv_int(mt_pv_get(root, "iteration"), pv_int(mt_pv_get(root, "total_iters"), -1));
            read_args(s, root);
        } else if (version != s->version)
            return mt_fail(MT_ERR_FORMAT, "%s: checkpoint_version %g differs from rank 0's %g", s->rank_paths[r], version, s->version);
        mt_flat raw = {0};
        MT_TRY(mt_flatten(tree, "", &raw));
        // canonical names
        for (size_t i = 0; i < raw.n; i++) {
            char canon[512];
            mt_ckpt_canonical_name(raw.e[i].name, canon, sizeof canon);
            char *c = mt_strdup(canon);
            if (!c) {
                mt_flat_free(&raw);
                return MT_ERR_NOMEM;
            }
            free(raw.e[i].name);
            raw.e[i].name = c;
        }
        s->flats[r] = raw;
    }
    if (o && o->force_version >= 0) {
        s->version = o->force_version;
        s->has_version = 1;
    }
    s->heads = o && o->heads > 0 ? o->heads : s->args.num_attention_heads > 0 ? s->args.num_attention_heads : 0;
    mt_qkv_order qo = mt_qkv_order_of_version(s->version);
    const mt_flat *f0 = &s->flats[0];
    for (size_t i = 0; i < f0->n; i++) {
        const char *name = f0->e[i].name;
        const mt_ckpt_tensor *sh[MT_CKPT_MAX_TP];
        sh[0] = f0->e[i].t;
        for (int r = 1; r < s->tp; r++) {
            sh[r] = mt_flat_find(&s->flats[r], name);
            if (!sh[r]) return mt_fail(MT_ERR_FORMAT, "%s: '%s' is in rank 0 but missing from this rank", s->rank_paths[r], name);
        }
        int dim;
        mt_split_rule rule = mt_megatron_split_rule(name, &dim);
        int nsh = rule == MT_SPLIT_REPLICATED ? 1 : s->tp;
        MT_TRY(mt_ckpt_src_add(s, name, strstr(name, ".query_key_value.") ? qo : MT_QKV_NONE, nsh, sh));
        if (strstr(name, "embedding.layernorm.")) s->arch_bert = 1;
    }
    if (s->args.found && s->args.tp_size > 0 && s->args.tp_size != s->tp)
        return mt_fail(MT_ERR_FORMAT, "%s: its args say tensor_model_parallel_size=%d but %d mp_rank_XX folders were found",
                       s->path, s->args.tp_size, s->tp);
    return MT_OK;
}

mt_status mt_ckpt_src_open(const char *path, const mt_ckpt_src_opts *o, mt_ckpt_src **out) {
    *out = NULL;
    mt_ckpt_src *s = mt_calloc(1, sizeof *s);
    if (!s) return MT_ERR_NOMEM;
    mt_status st = mt_path_fmt(s->path, sizeof s->path, "%s", path);
    if (st != MT_OK) {
        free(s);
        return st;
    }
    s->iteration = -1;
    if (is_dir(path)) {
        st = resolve_folder(s, path);
        if (st == MT_OK) st = open_torch(s, o);
    } else if (!is_file(path)) {
        st = mt_fail(MT_ERR_NOT_FOUND, "%s: no such checkpoint file or folder", path);
    } else if (ends(path, ".safetensors")) {
        s->kind = MT_SRC_SAFETENSORS;
        s->tp = 1;
        st = mt_safetensors_src_load(s, path, o);
    } else {
        s->tp = 1;
        st = mt_path_fmt(s->rank_paths[0], sizeof s->rank_paths[0], "%s", path);
        if (st == MT_OK) st = open_torch(s, o);
    }
    if (st != MT_OK) {
        mt_ckpt_src_free(s);
        return st;
    }
    *out = s;
    return MT_OK;
}

mt_status mt_ckpt_qkv_rows(const char *what, const char *name, const mt_ckpt_tensor *const *shards, int nshards,
                           mt_qkv_order order, int heads, double version, int64_t row0, int64_t nrows, float *dst) {
    mt_ckpt_src *s = mt_calloc(1, sizeof *s);
    if (!s) return MT_ERR_NOMEM;
    snprintf(s->path, sizeof s->path, "%s", what);
    s->heads = heads;
    s->version = version;
    s->has_version = 1;
    char canon[512];
    mt_ckpt_canonical_name(name, canon, sizeof canon);
    mt_status st = mt_ckpt_src_add(s, canon[0] ? canon : name, order, nshards, shards);
    if (st == MT_OK) st = mt_vtensor_read(s, &s->v[0], row0, nrows, 0, s->v[0].cols, dst);
    free(s->v);
    free(s);
    return st;
}
