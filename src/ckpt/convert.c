#include "ckpt/convert.h"
#include "ckpt/tar.h"
#include "core/checked.h"
#include "core/file.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/safetensors.h"
#include "ckpt/source.h"
#include "ckpt/torchfile.h"

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && !strcmp(s + a - b, p);
}

// ---- architecture summary -------------------------------------------------------------------

typedef struct {
    int layers, hidden, heads, vocab_rows, max_pos, ffn;
    const char *arch;
} arch_info;

static arch_info detect(const mt_ckpt_src *s) {
    arch_info a = {0, 0, s->heads, 0, 0, 0, "unknown"};
    for (int i = 0; i < s->n; i++) {
        const mt_vtensor *v = &s->v[i];
        int l;
        if (sscanf(v->name, "language_model.transformer.layers.%d.", &l) == 1 && l + 1 > a.layers) a.layers = l + 1;
        if (ends(v->name, "embedding.word_embeddings.weight")) a.vocab_rows = (int)v->rows;
        if (ends(v->name, "embedding.position_embeddings.weight")) {
            a.max_pos = (int)v->rows;
            a.hidden = (int)v->cols;
        }
        if (ends(v->name, "layers.0.mlp.dense_h_to_4h.weight")) a.ffn = (int)v->rows;
    }
    if (mt_ckpt_src_find(s, "language_model.transformer.final_layernorm.weight")) a.arch = "megatron (pre-LN)";
    else if (s->arch_bert) a.arch = "bert (post-LN)";
    return a;
}

static const char *split_name(mt_split_rule r) {
    switch (r) {
    case MT_SPLIT_COLUMN: return "column";
    case MT_SPLIT_ROW: return "row";
    case MT_SPLIT_VOCAB: return "vocab";
    default: return "replicated";
    }
}

static void print_src(const mt_ckpt_src *s, FILE *out) {
    static const char *kinds[] = {"Megatron checkpoint", "flat state dict", "safetensors"};
    fprintf(out, "format: %s, %d tensor-parallel rank file(s)\n", kinds[s->kind], s->tp);
    for (int r = 0; r < s->tp && s->kind != MT_SRC_SAFETENSORS; r++) fprintf(out, "  rank %d: %s\n", r, s->rank_paths[r]);
    if (s->has_version) fprintf(out, "checkpoint_version: %g\n", s->version);
    else if (s->kind == MT_SRC_MEGATRON) fprintf(out, "checkpoint_version: absent (version 0: QKV rows [3, heads, head_dim] per rank)\n");
    if (s->iteration >= 0) fprintf(out, "iteration: %d\n", s->iteration);
    if (s->args.found)
        fprintf(out, "args: num_layers=%d hidden_size=%d num_attention_heads=%d max_position_embeddings=%d padded_vocab_size=%d "
                "tensor_model_parallel_size=%d\n", s->args.num_layers, s->args.hidden_size, s->args.num_attention_heads,
                s->args.max_position_embeddings, s->args.padded_vocab_size, s->args.tp_size);
    arch_info a = detect(s);
    fprintf(out, "architecture: %s, layers=%d hidden=%d heads=%d ffn=%d vocab_rows=%d max_positions=%d\n", a.arch, a.layers,
            a.hidden, a.heads, a.ffn, a.vocab_rows, a.max_pos);
    fprintf(out, "tensors (merged to TP=1; %d):\n", s->n);
    for (int i = 0; i < s->n; i++) {
        const mt_vtensor *v = &s->v[i];
        if (v->ndim == 2) fprintf(out, "  %-72s %-8s [%lld, %lld]", v->name, mt_dtype_name(v->dtype), (long long)v->rows, (long long)v->cols);
        else if (v->ndim == 1) fprintf(out, "  %-72s %-8s [%lld]", v->name, mt_dtype_name(v->dtype), (long long)v->rows);
        else fprintf(out, "  %-72s %-8s (%d-D, %lld elements)", v->name, mt_dtype_name(v->dtype), v->ndim, (long long)(v->rows * v->cols));
        if (v->split != MT_SPLIT_REPLICATED) fprintf(out, "  %s-split", split_name(v->split));
        fputc('\n', out);
    }
}

// Prints the raw tree of a torch file: top-level entries and every tensor with its stored name.
static void print_torch(const char *what, mt_torch_file *f, FILE *out, int verbose) {
    const mt_pv *root = mt_torch_root(f);
    fprintf(out, "%s: torch %s container, top-level %s", what, mt_torch_is_legacy(f) ? "legacy (pre-1.6)" : "zip",
            mt_pv_kind_name(root->kind));
    if (root->kind == MT_PV_DICT) {
        fprintf(out, " with %zu keys:\n", root->n);
        for (size_t i = 0; i < root->n; i++) {
            const mt_pv *k = root->items[2 * i], *v = root->items[2 * i + 1];
            if (k->kind != MT_PV_STR) continue;
            fprintf(out, "  %-22s %s", k->s, mt_pv_kind_name(v->kind));
            if (v->kind == MT_PV_FLOAT) fprintf(out, " %g", v->f);
            if (v->kind == MT_PV_INT) fprintf(out, " %lld", (long long)v->i);
            if (v->kind == MT_PV_STR) fprintf(out, " '%.60s'", v->s);
            if (v->kind == MT_PV_OBJECT || v->kind == MT_PV_GLOBAL) fprintf(out, " %s (inert)", v->s);
            if (v->kind == MT_PV_DICT || v->kind == MT_PV_LIST || v->kind == MT_PV_TUPLE) fprintf(out, " (%zu)", v->n);
            fputc('\n', out);
        }
    } else fputc('\n', out);
    if (!verbose) return;
    mt_flat fl = {0};
    if (mt_flatten(root, "", &fl) != MT_OK) return;
    fprintf(out, "stored tensors (%zu):\n", fl.n);
    for (size_t i = 0; i < fl.n; i++) {
        const mt_ckpt_tensor *t = fl.e[i].t;
        fprintf(out, "  %-72s %-8s [", fl.e[i].name, mt_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(out, d ? ", %lld" : "%lld", (long long)t->shape[d]);
        fprintf(out, "]\n");
    }
    mt_flat_free(&fl);
}

static mt_status inspect_nemo(const char *path, FILE *out, int verbose) {
    struct archive *a = NULL;
    MT_TRY(mt_tar_open(path, &a));
    fprintf(out, "%s: .nemo archive (read in memory; nothing extracted)\nmembers:\n", path);
    struct archive_entry *e;
    mt_status st = MT_OK;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        fprintf(out, "  %-60s %12lld bytes%s\n", name ? name : "?", (long long)size,
                archive_entry_filetype(e) == AE_IFREG ? "" : " (not a regular file)");
        if (!name || archive_entry_filetype(e) != AE_IFREG) continue;
        int weights = ends(name, ".ckpt") || ends(name, ".pt") || ends(name, ".pth");
        int text = ends(name, ".yaml") || ends(name, ".json");
        if (!weights && !(text && verbose)) continue;
        char *buf = NULL;
        size_t len = 0;
        st = mt_tar_read_member(a, path, name, size, &buf, &len);
        if (st != MT_OK) break;
        if (text) {
            fprintf(out, "---- %s ----\n%s\n----\n", name, buf);
        } else {
            char what[1200];
            snprintf(what, sizeof what, "%s:%s", path, name);
            mt_torch_file *f;
            st = mt_torch_open_mem(what, (const uint8_t *)buf, len, &f);
            if (st == MT_OK) {
                print_torch(what, f, out, verbose);
                mt_torch_close(f);
            }
        }
        free(buf);
        if (st != MT_OK) break;
    }
    if (st == MT_OK && r != ARCHIVE_EOF) st = mt_fail(MT_ERR_FORMAT, "%s: corrupt archive: %s", path, archive_error_string(a));
    archive_read_free(a);
    return st;
}

mt_status mt_ckpt_inspect(const char *path, FILE *out, int verbose) {
    if (ends(path, ".nemo")) return inspect_nemo(path, out, verbose);
    struct stat sb;
    if (stat(path, &sb) != 0) return mt_fail(MT_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    if (S_ISREG(sb.st_mode) && !ends(path, ".safetensors")) {
        mt_torch_file *f;
        MT_TRY(mt_torch_open(path, &f));
        print_torch(path, f, out, verbose);
        mt_torch_close(f);
    }
    mt_ckpt_src *s;
    mt_status st = mt_ckpt_src_open(path, NULL, &s);
    if (st != MT_OK) return st;
    if (S_ISREG(sb.st_mode) && ends(path, ".safetensors") && s->st) {
        fprintf(out, "%s: safetensors, %zu tensors\n", path, mt_safetensors_count(s->st));
        if (verbose)
            for (size_t i = 0; i < mt_safetensors_count(s->st); i++) {
                const mt_st_entry *e = mt_safetensors_entry(s->st, i);
                fprintf(out, "  %-72s %-8s [", e->name, mt_dtype_name(e->t.dtype));
                for (int d = 0; d < e->t.ndim; d++) fprintf(out, d ? ", %lld" : "%lld", (long long)e->t.shape[d]);
                fprintf(out, "]\n");
            }
    }
    if (S_ISDIR(sb.st_mode) && s->files[0]) print_torch(s->rank_paths[0], s->files[0], out, 0);
    print_src(s, out);
    mt_ckpt_src_free(s);
    return MT_OK;
}

// ---- conversion -----------------------------------------------------------------------------

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Output rows of a VOCAB-split tensor.
static int64_t vocab_rows(const mt_vtensor *v, const mt_convert_opts *o, int tp) {
    if (o->vocab_size > 0) return round_up(o->vocab_size, 128 * (int64_t)tp);
    return v->rows % tp == 0 ? v->rows : round_up(v->rows, 128 * (int64_t)tp);
}

// Reads output rank r's local piece of v into a new buffer; shape in sh/ndim.
static mt_status read_local(const mt_ckpt_src *s, const mt_vtensor *v, const mt_convert_opts *o, int tp, int r, float **out,
                            int64_t sh[2]) {
    int64_t rows = v->rows, cols = v->cols, r0 = 0, c0 = 0;
    if (v->split == MT_SPLIT_VOCAB) rows = vocab_rows(v, o, tp);
    if (tp > 1 && v->split_dim == 0) {
        if (rows % tp) return mt_fail(MT_ERR_INVALID, "%s: '%s' has %lld rows, not divisible by --tp %d", s->path, v->name, (long long)rows, tp);
        if (v->qkv != MT_QKV_NONE && s->heads > 0 && s->heads % tp)
            return mt_fail(MT_ERR_INVALID, "%s: %d attention heads cannot be split over --tp %d", s->path, s->heads, tp);
        rows /= tp;
        r0 = r * rows;
    } else if (tp > 1 && v->split_dim == 1) {
        if (cols % tp) return mt_fail(MT_ERR_INVALID, "%s: '%s' has %lld columns, not divisible by --tp %d", s->path, v->name, (long long)cols, tp);
        cols /= tp;
        c0 = r * cols;
    }
    // rows may come from --vocab-size, cols from the file: the product must neither wrap nor
    // overflow the byte count
    int64_t n;
    if (rows < 0 || cols < 0 || !mt_mul_i64(rows, cols, &n) || (uint64_t)n > SIZE_MAX / sizeof(float))
        return mt_fail(MT_ERR_FORMAT, "%s: '%s' would be a [%lld x %lld] tensor, whose size overflows; the checkpoint is "
                       "corrupt or --vocab-size is wrong", s->path, v->name, (long long)rows, (long long)cols);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!buf)
        return mt_fail(MT_ERR_NOMEM, "%s: out of memory for '%s' ([%lld x %lld] as float32, %.1f GiB)", s->path, v->name,
                       (long long)rows, (long long)cols, (double)n * sizeof(float) / (1 << 30));
    mt_status st = mt_vtensor_read(s, v, r0, rows, c0, cols, buf);
    if (st != MT_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    sh[0] = rows;
    sh[1] = cols;
    return MT_OK;
}

// Narrows fp32 values to fp16/bf16 in place (element i moves from byte 4i to byte 2i).
static void narrow(float *buf, int64_t n, mt_dtype d) {
    uint16_t *h = (uint16_t *)buf;
    for (int64_t i = 0; i < n; i++) {
        float v = buf[i];
        h[i] = d == MT_DT_BF16 ? mt_float_to_bf16(v) : mt_float_to_half(v);
    }
}

static mt_wv *child(mt_torch_writer *w, mt_wv *parent, const char *key, int ordered, mt_wv ***cache, char ***names, int *n) {
    // dicts created so far, keyed by parent pointer + key
    for (int i = 0; i < *n; i++)
        if ((*cache)[2 * i] == parent && !strcmp((*names)[i], key)) return (*cache)[2 * i + 1];
    mt_wv *d = mt_wv_dict(w, ordered);
    if (!d || mt_wv_set(w, parent, key, d) != MT_OK) return NULL;
    mt_wv **c = realloc(*cache, (size_t)(*n + 1) * 2 * sizeof *c);
    char **nm = realloc(*names, (size_t)(*n + 1) * sizeof *nm);
    if (!c || !nm) {
        free(c ? c : *cache);
        *cache = NULL;
        if (nm) *names = nm;
        return NULL;
    }
    *cache = c;
    *names = nm;
    c[2 * *n] = parent;
    c[2 * *n + 1] = d;
    nm[*n] = mt_strdup(key);
    if (!nm[*n]) return NULL; // not counted: the caller fails with out of memory
    (*n)++;
    return d;
}

static mt_status write_megatron_file(const mt_ckpt_src *s, const mt_convert_opts *o, int tp, int r, const char *path) {
    mt_torch_writer *w = mt_torch_writer_new();
    if (!w) return MT_ERR_NOMEM;
    float **bufs = mt_calloc((size_t)(s->n ? s->n : 1), sizeof *bufs);
    mt_wv **cache = NULL;
    char **names = NULL;
    int ncache = 0;
    mt_status st = bufs ? MT_OK : MT_ERR_NOMEM;
    mt_wv *root = mt_wv_dict(w, 0), *model = mt_wv_dict(w, 0);
    if (st == MT_OK) st = mt_wv_set(w, root, "model", model);
    arch_info a = detect(s);
    int64_t out_vocab = 0;
    for (int i = 0; i < s->n && st == MT_OK; i++) {
        const mt_vtensor *v = &s->v[i];
        int64_t sh[2];
        st = read_local(s, v, o, tp, r, &bufs[i], sh);
        if (st != MT_OK) break;
        if (v->split == MT_SPLIT_VOCAB && starts(v->name, "language_model.")) out_vocab = sh[0] * tp;
        if (o->dtype != MT_DT_F32) narrow(bufs[i], sh[0] * sh[1], o->dtype);
        // place the tensor: language_model.{embedding.X | transformer | Y}.rest, or Z.rest
        char name[512];
        snprintf(name, sizeof name, "%s", v->name);
        mt_wv *parent = model;
        char *rest = name;
        if (starts(rest, "language_model.")) {
            parent = child(w, parent, "language_model", 0, &cache, &names, &ncache);
            rest += strlen("language_model.");
            if (starts(rest, "embedding.")) {
                parent = parent ? child(w, parent, "embedding", 0, &cache, &names, &ncache) : NULL;
                rest += strlen("embedding.");
            }
        }
        char *dot = strchr(rest, '.');
        if (dot && parent) {
            *dot = 0;
            parent = child(w, parent, rest, 1, &cache, &names, &ncache);
            rest = dot + 1;
        }
        if (!parent) {
            st = mt_fail(MT_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        int64_t shape[2] = {sh[0], sh[1]};
        mt_wv *t = mt_wv_tensor(w, o->dtype, v->ndim < 2 ? v->ndim : 2, shape, bufs[i]);
        st = mt_wv_set(w, parent, rest, t);
    }
    if (st == MT_OK) {
        mt_wv *args = mt_wv_dict(w, 0);
        st = mt_wv_set(w, args, "num_layers", mt_wv_int(w, a.layers));
        if (st == MT_OK) st = mt_wv_set(w, args, "hidden_size", mt_wv_int(w, a.hidden));
        if (st == MT_OK && a.heads > 0) st = mt_wv_set(w, args, "num_attention_heads", mt_wv_int(w, a.heads));
        if (st == MT_OK) st = mt_wv_set(w, args, "max_position_embeddings", mt_wv_int(w, a.max_pos));
        if (st == MT_OK && out_vocab) st = mt_wv_set(w, args, "padded_vocab_size", mt_wv_int(w, out_vocab));
        if (st == MT_OK) st = mt_wv_set(w, args, "tensor_model_parallel_size", mt_wv_int(w, tp));
        if (st == MT_OK) st = mt_wv_set(w, args, "pipeline_model_parallel_size", mt_wv_int(w, 1));
        if (st == MT_OK) st = mt_wv_set(w, root, "args", mt_wv_object(w, "argparse", "Namespace", args));
        if (st == MT_OK) st = mt_wv_set(w, root, "checkpoint_version", mt_wv_float(w, 3.0));
        if (st == MT_OK) st = mt_wv_set(w, root, "iteration", mt_wv_int(w, s->iteration > 0 ? s->iteration : 0));
    }
    if (st == MT_OK) st = mt_torch_writer_save(w, root, path);
    for (int i = 0; bufs && i < s->n; i++) free(bufs[i]);
    free(bufs);
    for (int i = 0; i < ncache; i++) free(names[i]);
    free(names);
    free(cache);
    mt_torch_writer_free(w);
    return st;
}

static mt_status mkdir_p(const char *p) {
    char tmp[1200];
    MT_TRY(mt_path_fmt(tmp, sizeof tmp, "%s", p));
    for (char *c = tmp + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return mt_fail(MT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
            *c = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return mt_fail(MT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    return MT_OK;
}

static mt_status write_safetensors(const mt_ckpt_src *s, const mt_convert_opts *o, const char *path) {
    int cap = s->n * 3 + 1, n = 0;
    mt_named_tensor *t = mt_calloc((size_t)cap, sizeof *t);
    char **names = mt_calloc((size_t)cap, sizeof *names);
    float **bufs = mt_calloc((size_t)cap, sizeof *bufs);
    mt_status st = t && names && bufs ? MT_OK : MT_ERR_NOMEM;
    for (int i = 0; i < s->n && st == MT_OK; i++) {
        const mt_vtensor *v = &s->v[i];
        float *full;
        int64_t sh[2];
        st = read_local(s, v, o, 1, 0, &full, sh);
        if (st != MT_OK) break;
        char hf[512];
        if (v->qkv != MT_QKV_NONE) {
            int heads = s->heads;
            if (heads <= 0 || sh[0] % ((int64_t)3 * heads)) {
                free(full);
                st = mt_fail(MT_ERR_INVALID, "%s: splitting '%s' into query/key/value needs the head count; pass --heads", s->path, v->name);
                break;
            }
            int64_t hn = sh[0] / ((int64_t)3 * heads), cols = sh[1];
            for (int part = 0; part < 3; part++) {
                float *b = mt_malloc((size_t)(sh[0] / 3 * cols) * sizeof(float));
                if (!b) { st = MT_ERR_NOMEM; break; }
                for (int64_t h = 0; h < heads; h++)
                    memcpy(b + h * hn * cols, full + (h * 3 * hn + part * hn) * cols, (size_t)(hn * cols) * sizeof(float));
                mt_canonical_to_hf(v->name, s->arch_bert, part, hf, sizeof hf);
                names[n] = mt_strdup(hf);
                if (!names[n]) { free(b); st = MT_ERR_NOMEM; break; }
                bufs[n] = b;
                t[n].name = names[n];
                if (o->dtype != MT_DT_F32) narrow(b, sh[0] / 3 * cols, o->dtype);
                t[n].dtype = o->dtype;
                t[n].ndim = v->ndim;
                t[n].shape[0] = sh[0] / 3;
                t[n].shape[1] = cols;
                t[n].data = b;
                n++;
            }
            free(full);
            continue;
        }
        mt_canonical_to_hf(v->name, s->arch_bert, -1, hf, sizeof hf);
        names[n] = mt_strdup(hf);
        if (!names[n]) {
            free(full);
            st = MT_ERR_NOMEM;
            break;
        }
        bufs[n] = full;
        t[n].name = names[n];
        if (o->dtype != MT_DT_F32) narrow(full, sh[0] * sh[1], o->dtype);
        t[n].dtype = o->dtype;
        t[n].ndim = v->ndim;
        t[n].shape[0] = sh[0];
        t[n].shape[1] = sh[1];
        t[n].data = full;
        n++;
    }
    if (st == MT_OK) {
        char heads[32];
        snprintf(heads, sizeof heads, "%d", s->heads);
        const char *mk[] = {"format", "num_attention_heads", "source"}, *mv[] = {"pt", heads, "megatune convert"};
        st = mt_safetensors_save(path, t, n, mk, mv, 3);
    }
    for (int i = 0; i < n; i++) {
        free(names[i]);
        free(bufs[i]);
    }
    free(t);
    free(names);
    free(bufs);
    return st;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    (void)remove(path);
    return 0;
}

static void remove_tree(const char *dir) { (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

// DST/release/mp_rank_XX/model_optim_rng.pt for every rank, then DST/latest_checkpointed_iteration.txt.
// The ranks are built in a hidden folder beside release/ and swapped in whole (renameat2
// RENAME_EXCHANGE; where the filesystem lacks it, the old release/ is moved aside first and moved
// back if the new one cannot follow), so a failure or a kill never leaves a mix of old and new ranks,
// and a failed conversion leaves no partial tree. The tracker's new text is written and synced
// before the swap and renamed into place right after it; a failure there swaps the previous ranks
// back. The previous ranks are deleted last, once both are in place.
static mt_status write_megatron_folder(const mt_ckpt_src *s, const mt_convert_opts *o, int tp, const char *dst) {
    struct stat sb;
    int created = stat(dst, &sb) != 0;
    if (!created && !S_ISDIR(sb.st_mode))
        return mt_fail(MT_ERR_INVALID, "%s exists and is not a folder; give a folder, a .pt or a .safetensors as DST", dst);
    MT_TRY(mkdir_p(dst));
    char tmp[1300], p[1400], final[1300], tracker[1300], ttmp[1300], old[1400] = "";
    mt_status st = mt_path_join(tmp, sizeof tmp, dst, ".release.tmp.XXXXXX");
    if (st == MT_OK) st = mt_path_join(final, sizeof final, dst, "release");
    if (st == MT_OK) st = mt_path_join(tracker, sizeof tracker, dst, "latest_checkpointed_iteration.txt");
    if (st == MT_OK) st = mt_path_join(ttmp, sizeof ttmp, dst, ".latest_checkpointed_iteration.txt.tmp");
    if (st != MT_OK) {
        if (created) (void)rmdir(dst);
        return st;
    }
    if (!mkdtemp(tmp)) {
        st = mt_fail(MT_ERR_IO, "%s: cannot create a folder in it: %s", dst, strerror(errno));
        if (created) (void)rmdir(dst);
        return st;
    }
    (void)chmod(tmp, 0755);
    for (int r = 0; r < tp && st == MT_OK; r++) {
        st = mt_path_fmt(p, sizeof p, "%s/mp_rank_%02d", tmp, r);
        if (st == MT_OK && mkdir(p, 0755) != 0) st = mt_fail(MT_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        if (st == MT_OK) st = mt_path_fmt(p, sizeof p, "%s/mp_rank_%02d/model_optim_rng.pt", tmp, r);
        if (st == MT_OK) st = write_megatron_file(s, o, tp, r, p);
    }
    if (st == MT_OK) st = mt_write_synced(ttmp, "release", strlen("release"));
    // 1: exchanged (tmp holds the previous ranks); 2: previous ranks moved aside to `old`; 3: no previous release/
    int swapped = 0;
    if (st == MT_OK) {
        if (stat(final, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode)) st = mt_fail(MT_ERR_IO, "%s exists and is not a folder; remove it", final);
            else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) swapped = 1;
            else if ((st = mt_path_fmt(old, sizeof old, "%s.old", tmp)) != MT_OK) {
            } else if (rename(final, old) != 0) {
                st = mt_fail(MT_ERR_IO, "%s: cannot move the previous ranks aside: %s", final, strerror(errno));
                old[0] = 0;
            } else if (rename(tmp, final) != 0) {
                int err = errno;
                if (rename(old, final) == 0) {
                    old[0] = 0;
                    st = mt_fail(MT_ERR_IO, "%s: cannot move the new ranks into place: %s", final, strerror(err));
                } else { // `old` is kept: it holds the only copy of the previous ranks
                    st = mt_fail(MT_ERR_IO, "%s: cannot move the new ranks into place (%s), nor the previous ranks back "
                                 "from %s (%s): rename that folder to %s", final, strerror(err), old, strerror(errno), final);
                }
            } else swapped = 2;
        } else if (rename(tmp, final) != 0) {
            st = mt_fail(MT_ERR_IO, "%s: cannot move the new ranks into place: %s", final, strerror(errno));
        } else swapped = 3;
    }
    int keep_tmp = 0; // tmp holds the only copy of the previous ranks
    if (st == MT_OK && rename(ttmp, tracker) != 0) {
        st = mt_fail(MT_ERR_IO, "%s: cannot write: %s", tracker, strerror(errno));
        // the old tracker stays: put the ranks it names back (the new ones end in tmp, removed below)
        if (swapped == 1 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) != 0) keep_tmp = 1;
        else if (swapped == 2 && rename(final, tmp) == 0 && rename(old, final) == 0) old[0] = 0;
        else if (swapped == 3) (void)rename(final, tmp);
    }
    if (st == MT_OK) mt_fsync_dir_of(tracker);
    else (void)unlink(ttmp);
    if (!keep_tmp) remove_tree(tmp); // the new ranks after a failure, the previous ones after an exchange
    if (st == MT_OK && old[0]) remove_tree(old);
    if (st != MT_OK && created) (void)rmdir(dst);
    return st;
}

mt_status mt_ckpt_convert(const char *src, const char *dst, const mt_convert_opts *o) {
    mt_convert_opts def = {1, 0, 0, -1.0, MT_DT_F32};
    if (!o) o = &def;
    int tp = o->tp > 0 ? o->tp : 1;
    if (tp > MT_CKPT_MAX_TP) return mt_fail(MT_ERR_INVALID, "--tp %d exceeds %d", tp, MT_CKPT_MAX_TP);
    mt_ckpt_src_opts so = {o->heads, o->force_version};
    mt_ckpt_src *s;
    MT_TRY(mt_ckpt_src_open(src, &so, &s));
    mt_status st = MT_OK;
    if (o->dtype != MT_DT_F32 && o->dtype != MT_DT_F16 && o->dtype != MT_DT_BF16)
        st = mt_fail(MT_ERR_INVALID, "output dtype must be float32, float16 or bfloat16");
    if (st == MT_OK && s->heads <= 0 && (tp > 1 || ends(dst, ".safetensors") || s->version < 2.0))
        st = mt_fail(MT_ERR_INVALID, "%s: the checkpoint does not record num_attention_heads; pass --heads N", src);
    // (a checkpoint whose state dict holds no tensor, e.g. an object where model.language_model
    // should be, would otherwise convert to an empty file)
    if (st == MT_OK && s->n == 0)
        st = mt_fail(MT_ERR_FORMAT, "%s: no tensors found in its state dict (megatune inspect %s shows what it holds); "
                     "give a Megatron-LM, NeMo or Hugging Face BERT checkpoint", src, src);
    if (st == MT_OK && ends(dst, ".safetensors")) {
        if (tp != 1) st = mt_fail(MT_ERR_INVALID, "safetensors output is a single TP=1 file; drop --tp %d", tp);
        else st = write_safetensors(s, o, dst);
    } else if (st == MT_OK && (ends(dst, ".pt") || ends(dst, ".ckpt"))) {
        if (tp != 1) st = mt_fail(MT_ERR_INVALID, "a single .pt holds TP=1; give a folder as DST for --tp %d", tp);
        else st = write_megatron_file(s, o, 1, 0, dst);
    } else if (st == MT_OK) {
        st = write_megatron_folder(s, o, tp, dst);
    }
    mt_ckpt_src_free(s);
    return st;
}
