#include "train/nemo.h"
#include "core/file.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/source.h"
#include "ckpt/state_dict.h"
#include "ckpt/tar.h"
#include <cjson/cJSON.h>
#include "ckpt/torchfile.h"
#include "core/log.h"
#include "text/pretrained.h"


// ---------------------------------------------------------------------------------------------
// small helpers

static mt_status read_file(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mt_status st = mt_read_all(f, 0, buf, len);
    fclose(f);
    if (st == MT_ERR_IO) return mt_fail(MT_ERR_IO, "%s: read error", path);
    return st;
}

static mt_status write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return mt_fail(MT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return mt_fail(MT_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0) return mt_fail(MT_ERR_IO, "%s: close failed", path);
    return MT_OK;
}

static void remove_tree_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[4400];
            if (mt_path_join(p, sizeof p, dir, e->d_name) == MT_OK) unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static mt_status make_tmpdir(char *out, size_t cap) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    MT_TRY(mt_path_join(out, cap, base, "megatune-nemo-XXXXXX"));
    if (!mkdtemp(out)) return mt_fail(MT_ERR_IO, "%s: cannot create a temporary folder: %s", out, strerror(errno));
    return MT_OK;
}

static void uuid_hex(char out[33]) {
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t t = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < 16; i++) b[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)(i * 37);
    }
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80;
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

// ---------------------------------------------------------------------------------------------
// save

typedef struct {
    const char *name;
    const void *data;
    size_t len;
    const char *file; // when set, the member's bytes are streamed from this file instead
} member;

// Streams `file` into the archive in 16 MiB pieces (a 345M model's weights are 1.3 GB).
static mt_status add_member_file(struct archive *a, const char *name, const char *file, const char *path) {
    FILE *f = fopen(file, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) { fclose(f); return mt_fail(MT_ERR_IO, "%s: cannot stat", file); }
    struct archive_entry *e = archive_entry_new();
    char *buf = mt_malloc(1u << 24);
    if (!e || !buf) { fclose(f); archive_entry_free(e); free(buf); return MT_ERR_NOMEM; }
    char arcname[1024];
    if (mt_path_fmt(arcname, sizeof arcname, "./%s", name) != MT_OK) {
        fclose(f), archive_entry_free(e), free(buf);
        return MT_ERR_INVALID;
    }
    archive_entry_set_pathname(e, arcname);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)sb.st_size);
    archive_entry_set_mtime(e, time(NULL), 0);
    mt_status st = MT_OK;
    if (archive_write_header(a, e) != ARCHIVE_OK)
        st = mt_fail(MT_ERR_IO, "%s: cannot write member %s: %s", path, name, archive_error_string(a));
    int64_t left = sb.st_size;
    while (st == MT_OK && left > 0) {
        size_t want = left > (1 << 24) ? (1u << 24) : (size_t)left;
        size_t got = fread(buf, 1, want, f);
        if (got != want) { st = mt_fail(MT_ERR_IO, "%s: short read", file); break; }
        for (size_t off = 0; off < got && st == MT_OK;) {
            la_ssize_t w = archive_write_data(a, buf + off, got - off);
            if (w <= 0) st = mt_fail(MT_ERR_IO, "%s: cannot write member %s: %s", path, name, archive_error_string(a));
            else off += (size_t)w;
        }
        left -= (int64_t)got;
    }
    free(buf);
    fclose(f);
    archive_entry_free(e);
    return st;
}

static mt_status add_member(struct archive *a, const char *name, const void *data, size_t len, const char *path) {
    char arcname[1024];
    MT_TRY(mt_path_fmt(arcname, sizeof arcname, "./%s", name));
    struct archive_entry *e = archive_entry_new();
    if (!e) return MT_ERR_NOMEM;
    archive_entry_set_pathname(e, arcname);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_mtime(e, time(NULL), 0);
    mt_status st = MT_OK;
    if (archive_write_header(a, e) != ARCHIVE_OK) {
        st = mt_fail(MT_ERR_IO, "%s: cannot write member %s: %s", path, name, archive_error_string(a));
    } else {
        const char *p = data;
        size_t left = len;
        while (left > 0 && st == MT_OK) {
            size_t chunk = left > (1u << 24) ? (1u << 24) : left;
            la_ssize_t w = archive_write_data(a, p, chunk);
            if (w <= 0) st = mt_fail(MT_ERR_IO, "%s: cannot write member %s: %s", path, name, archive_error_string(a));
            else { p += w; left -= (size_t)w; }
        }
    }
    archive_entry_free(e);
    return st;
}

static mt_status write_archive(const char *path, const member *m, int n) {
    char tmp[MT_NEMO_PATH_CAP];
    MT_TRY(mt_path_fmt(tmp, sizeof tmp, "%s.tmp", path));
    struct archive *a = archive_write_new();
    if (!a) return MT_ERR_NOMEM;
    mt_status st = MT_OK;
    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
        st = mt_fail(MT_ERR_IO, "%s: cannot create: %s", tmp, archive_error_string(a));
        archive_write_free(a);
        return st;
    }
    // the "." folder entry first, as tarfile.add(dir, arcname=".") writes it
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, ".");
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_mtime(e, time(NULL), 0);
    if (archive_write_header(a, e) != ARCHIVE_OK)
        st = mt_fail(MT_ERR_IO, "%s: %s", tmp, archive_error_string(a));
    archive_entry_free(e);
    for (int i = 0; i < n && st == MT_OK; i++) {
        size_t nl = strlen(m[i].name);
        if (nl && m[i].name[nl - 1] == '/') { // a folder entry (mp_rank_XX/, as tarfile writes it)
            char arcname[1024];
            if ((st = mt_path_fmt(arcname, sizeof arcname, "./%.*s", (int)(nl - 1), m[i].name)) != MT_OK) break;
            struct archive_entry *de = archive_entry_new();
            if (!de) { st = MT_ERR_NOMEM; break; }
            archive_entry_set_pathname(de, arcname);
            archive_entry_set_filetype(de, AE_IFDIR);
            archive_entry_set_perm(de, 0755);
            archive_entry_set_mtime(de, time(NULL), 0);
            if (archive_write_header(a, de) != ARCHIVE_OK) st = mt_fail(MT_ERR_IO, "%s: %s", tmp, archive_error_string(a));
            archive_entry_free(de);
            continue;
        }
        st = m[i].file ? add_member_file(a, m[i].name, m[i].file, tmp) : add_member(a, m[i].name, m[i].data, m[i].len, tmp);
        if (i == 0) mt_fault_pause();
    }
    if (archive_write_close(a) != ARCHIVE_OK && st == MT_OK)
        st = mt_fail(MT_ERR_IO, "%s: %s", tmp, archive_error_string(a));
    archive_write_free(a);
    if (st == MT_OK) {
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) st = mt_fail(MT_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (st == MT_OK && rename(tmp, path) != 0) st = mt_fail(MT_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st != MT_OK) unlink(tmp);
    return st;
}

static mt_status set_fmt(mt_train_config *c, const char *key, const char *fmt, ...) MT_PRINTF(3, 4);
static mt_status set_fmt(mt_train_config *c, const char *key, const char *fmt, ...) {
    char v[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return mt_config_set(c, key, v);
}

// Decodes one UTF-8 sequence at p (len > 0); invalid bytes decode as U+FFFD, one byte each.
static uint32_t utf8_next(const unsigned char *p, size_t len, size_t *used) {
    unsigned c = p[0];
    int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    *used = 1;
    if (n == 0) return c;
    if (n < 0 || (size_t)n >= len) return 0xfffd;
    uint32_t cp = c & (0x3f >> n);
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0xfffd;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    *used = (size_t)n + 1;
    return cp;
}

// A JSON string as Python's json.dumps writes it (ensure_ascii: \uXXXX, surrogate pairs).
static void json_py_string(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t c = utf8_next((const unsigned char *)s + i, len - i, &used);
        i += used;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", (int)c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\b') fputs("\\b", f);
        else if (c == '\f') fputs("\\f", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else if (c < 0x80) fputc((int)c, f);
        else if (c < 0x10000) fprintf(f, "\\u%04x", c);
        else {
            c -= 0x10000;
            fprintf(f, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
        }
    }
    fputc('"', f);
}

typedef struct {
    const char *tok;
    size_t len;
    long id;
} vocab_entry;

static int vocab_entry_cmp(const void *a, const void *b) {
    const vocab_entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->tok, y->tok, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

// tokenizer_vocab_dict.json: {token: id} as NeMo dumps the tokenizer's vocab (json.dumps with
// indent=2, sort_keys=True, then a newline). UTF-8 byte order is code-point order, Python's key
// order; a repeated token keeps its last id, as a dict built line by line does.
static mt_status nemo_vocab_dict_json(const char *vocab, size_t vlen, char **out, size_t *olen) {
    size_t cap = 1;
    for (size_t i = 0; i < vlen; i++) cap += vocab[i] == '\n';
    vocab_entry *e = mt_calloc(cap, sizeof *e);
    if (!e) return MT_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < vlen;) {
        const char *nl = memchr(vocab + i, '\n', vlen - i);
        size_t l = nl ? (size_t)(nl - (vocab + i)) : vlen - i;
        e[n] = (vocab_entry){vocab + i, l, (long)n};
        n++;
        i += l + 1;
    }
    qsort(e, n, sizeof *e, vocab_entry_cmp);
    FILE *f = open_memstream(out, olen);
    if (!f) { free(e); return MT_ERR_NOMEM; }
    fputc('{', f);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && !vocab_entry_cmp(&(vocab_entry){e[i].tok, e[i].len, 0}, &(vocab_entry){e[i + 1].tok, e[i + 1].len, 0}))
            continue; // the later id wins
        fputs(first ? "\n  " : ",\n  ", f);
        first = 0;
        json_py_string(f, e[i].tok, e[i].len);
        fprintf(f, ": %ld", e[i].id);
    }
    fputs(first ? "}\n" : "\n}\n", f);
    free(e);
    return fclose(f) == 0 ? MT_OK : MT_ERR_NOMEM;
}

static mt_status nemo_save(const char *path, const mt_train_config *cfg, const mt_session *s, const mt_dataset *labels,
                           const char *const *weight_files, int tp);

mt_status mt_nemo_save(const char *path, const mt_train_config *cfg, const mt_session *s, const mt_dataset *labels) {
    return nemo_save(path, cfg, s, labels, NULL, 1);
}

mt_status mt_nemo_save_tp(const char *path, const mt_train_config *cfg, const mt_session *s, const mt_dataset *labels,
                          const char *const *weight_files, int tp) {
    if (tp < 1 || tp > 1024 || !weight_files) return mt_fail(MT_ERR_INVALID, "%s: bad tensor-parallel size %d", path, tp);
    return nemo_save(path, cfg, s, labels, weight_files, tp);
}

static mt_status nemo_save(const char *path, const mt_train_config *cfg, const mt_session *s, const mt_dataset *labels,
                           const char *const *weight_files, int tp) {
    // The staging folder sits beside the archive under a fixed name, not in TMPDIR: a write killed
    // with -9 leaves it where the next save of the same .nemo (a resumed run) finds and removes it,
    // instead of a model-sized orphan in /tmp per kill.
    char tmpdir[MT_NEMO_PATH_CAP];
    MT_TRY(mt_path_fmt(tmpdir, sizeof tmpdir, "%s.tmp.d", path));
    remove_tree_flat(tmpdir);
    if (mkdir(tmpdir, 0700) != 0)
        return mt_fail(MT_ERR_IO, "%s: cannot create a temporary folder beside the .nemo: %s", tmpdir, strerror(errno));
    char wpath[4300];
    MT_TRY(mt_path_join(wpath, sizeof wpath, tmpdir, "model_weights.ckpt"));
    char *vocab = NULL, *yaml = NULL, *json = NULL, *labtxt = NULL, *labtxt2 = NULL;
    size_t vlen = 0, ylen = 0, jlen = 0, llen = 0, llen2 = 0;
    mt_train_config c2;
    int c2_init = 0;
    member *m = mt_calloc((size_t)(8 + 2 * tp), sizeof *m);
    char (*mpnames)[40] = mt_calloc((size_t)(2 * tp), sizeof *mpnames);
    mt_status st = m && mpnames ? MT_OK : MT_ERR_NOMEM;
    if (st == MT_OK && !weight_files) st = mt_state_dict_save_model(wpath, s->model);
    if (st == MT_OK) st = read_file(s->vocab_path, &vocab, &vlen);
    char uuid[33], lname[128], lname2[128], jname[512];
    uuid_hex(uuid);
    // NeMo's names for a Megatron tokenizer's vocab (the model-parallel listing in its docs); its
    // restore_from opens megatron_checkpoint_version.json by that plain name, so no uuid prefix.
    const char *vname = "tokenizer.vocab_file";
    char *vdict = NULL;
    size_t vdlen = 0;
    if (st == MT_OK) st = nemo_vocab_dict_json(vocab, vlen, &vdict, &vdlen);
    snprintf(lname, sizeof lname, "%s_label_ids.csv", uuid);
    // two-head tasks keep two maps, under NeMo's class_labels keys and file names
    const int pnc = s->topt.kind == MT_TASK_PUNCT_CAPIT, joint = pnc || s->topt.kind == MT_TASK_INTENT_SLOT;
    if (joint) {
        snprintf(lname, sizeof lname, "%s_%s", uuid, pnc ? "punct_label_ids.csv" : "intent_labels.csv");
        snprintf(lname2, sizeof lname2, "%s_%s", uuid, pnc ? "capit_label_ids.csv" : "slot_labels.csv");
    }
    int nlabels2 = joint && labels ? mt_dataset_num_labels2(labels) : 0;
    if (st == MT_OK && nlabels2 > 0) {
        FILE *f = open_memstream(&labtxt2, &llen2);
        if (!f) st = MT_ERR_NOMEM;
        for (int i = 0; f && i < nlabels2; i++) fprintf(f, "%s\n", mt_dataset_label_name2(labels, i));
        if (f) fclose(f);
    }
    const char *pname = cfg->model.language_model.pretrained_model_name;
    snprintf(jname, sizeof jname, "%s_%s_encoder_config.json", uuid, strchr(pname, '/') ? "encoder" : pname);
    int nlabels = labels ? mt_dataset_num_labels(labels) : 0;
    if (st == MT_OK && nlabels > 0) {
        FILE *f = open_memstream(&labtxt, &llen);
        if (!f) st = MT_ERR_NOMEM;
        for (int i = 0; f && i < nlabels; i++) fprintf(f, "%s\n", mt_dataset_label_name(labels, i));
        if (f) fclose(f);
    }
    const mt_model_config *mc = mt_model_get_config(s->model);
    if (st == MT_OK) {
        // sorted keys, indent 2 (Python json.dump(..., indent=2, sort_keys=True))
        FILE *f = open_memstream(&json, &jlen);
        if (!f) st = MT_ERR_NOMEM;
        else {
            fprintf(f, "{\n  \"hidden_size\": %d,\n  \"lazy_mpu_init\": true,\n  \"max_position_embeddings\": %d,\n"
                       "  \"num_attention_heads\": %d,\n  \"num_layers\": %d,\n  \"onnx_safe\": true,\n"
                       "  \"tokenizer_type\": \"%s\",\n  \"vocab_file\": ",
                    mc->hidden_size, mc->max_position_embeddings, mc->num_attention_heads, mc->num_layers,
                    s->lowercase ? "BertWordPieceLowerCase" : "BertWordPieceCase");
            char vref[256];
            snprintf(vref, sizeof vref, "nemo:%s", vname);
            json_string(f, vref);
            fprintf(f, "\n}");
            fclose(f);
        }
    }
    // The model section with the artifacts renamed to nemo:<member> and the encoder's actual shape.
    if (st == MT_OK) {
        char *full = NULL;
        size_t flen = 0;
        FILE *f = open_memstream(&full, &flen);
        if (!f) st = MT_ERR_NOMEM;
        else {
            st = mt_config_dump(cfg, f, NULL);
            fclose(f);
        }
        if (st == MT_OK) st = mt_config_init(&c2);
        if (st == MT_OK) c2_init = 1;
        if (st == MT_OK) st = mt_config_load_yaml_text(&c2, full, flen, "config", "", 0);
        free(full);
    }
    if (st == MT_OK) st = set_fmt(&c2, "model.tokenizer.vocab_file", "'nemo:%s'", vname);
    if (st == MT_OK) st = set_fmt(&c2, "model.tokenizer.do_lower_case", "%s", s->lowercase ? "true" : "false");
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config_file", "'nemo:%s'", jname);
    if (st == MT_OK) st = mt_config_set(&c2, "model.language_model.lm_checkpoint", "null");
    if (joint) {
        if (st == MT_OK)
            st = set_fmt(&c2, pnc ? "model.class_labels.punct_labels_file" : "model.class_labels.intent_labels_file",
                         "'nemo:%s'", lname);
        if (st == MT_OK)
            st = set_fmt(&c2, pnc ? "model.class_labels.capit_labels_file" : "model.class_labels.slot_labels_file",
                         "'nemo:%s'", lname2);
        if (st == MT_OK && !pnc) st = set_fmt(&c2, "model.pad_label", "%d", s->topt.slot_pad_label);
    } else {
        if (st == MT_OK && nlabels > 0) st = set_fmt(&c2, "model.class_labels.class_labels_file", "'nemo:%s'", lname);
        if (st == MT_OK && nlabels == 0) st = mt_config_set(&c2, "model.class_labels.class_labels_file", "null");
    }
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.arch", "%s", mc->arch == MT_ARCH_MEGATRON ? "megatron" : "bert");
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.hidden_size", "%d", mc->hidden_size);
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.num_layers", "%d", mc->num_layers);
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.num_attention_heads", "%d", mc->num_attention_heads);
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.max_position_embeddings", "%d", mc->max_position_embeddings);
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.ffn_hidden_size", "%d", mc->ffn_hidden_size);
    if (st == MT_OK) st = set_fmt(&c2, "model.language_model.config.num_tokentypes", "%d", mc->num_tokentypes);
    if (st == MT_OK) { // the float's shortest round-trip text (1e-05, not 9.99999975e-06)
        char eps[32];
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(eps, sizeof eps, "%.*g", prec, (double)mc->layernorm_eps);
            if ((float)strtod(eps, NULL) == mc->layernorm_eps) break;
        }
        st = mt_config_set(&c2, "model.language_model.config.layernorm_epsilon", eps);
    }
    if (st == MT_OK && mc->head == MT_HEAD_SEQUENCE_CLASSIFIER && s->topt.kind == MT_TASK_TEXT_CLASSIFICATION)
        st = set_fmt(&c2, "model.dataset.num_classes", "%d", mc->num_classes);
    if (st == MT_OK) st = set_fmt(&c2, "model.tensor_model_parallel_size", "%d", weight_files ? tp : 1);
    if (st == MT_OK) {
        FILE *f = open_memstream(&yaml, &ylen);
        if (!f) st = MT_ERR_NOMEM;
        else {
            st = mt_config_dump(&c2, f, "model");
            fclose(f);
        }
    }
    if (st == MT_OK) {
        int n = 0;
        m[n++] = (member){"model_config.yaml", yaml, ylen, NULL};
        if (!weight_files) {
            m[n++] = (member){"model_weights.ckpt", NULL, 0, wpath};
        } else {
            // NeMo's model-parallel layout: mp_rank_XX/model_weights.ckpt, no top-level weights
            for (int r = 0; r < tp; r++) {
                snprintf(mpnames[2 * r], sizeof mpnames[0], "mp_rank_%02d/", r);
                snprintf(mpnames[2 * r + 1], sizeof mpnames[0], "mp_rank_%02d/model_weights.ckpt", r);
                m[n++] = (member){mpnames[2 * r], NULL, 0, NULL};
                m[n++] = (member){mpnames[2 * r + 1], NULL, 0, weight_files[r]};
            }
        }
        m[n++] = (member){vname, vocab, vlen, NULL};
        m[n++] = (member){"tokenizer_vocab_dict.json", vdict, vdlen, NULL};
        // megatune's QKV rows are Megatron >= 2.0's [heads, 3, head_dim]: version 3.0
        m[n++] = (member){MT_NEMO_VERSION_MEMBER, "{\"checkpoint_version\": 3.0}", 27, NULL};
        if (nlabels > 0) m[n++] = (member){lname, labtxt, llen, NULL};
        if (nlabels2 > 0) m[n++] = (member){lname2, labtxt2, llen2, NULL};
        m[n++] = (member){jname, json, jlen, NULL};
        st = write_archive(path, m, n);
    }
    if (c2_init) mt_config_free(&c2);
    free(vocab);
    free(vdict);
    free(yaml);
    free(json);
    free(labtxt);
    free(labtxt2);
    free(m);
    free(mpnames);
    remove_tree_flat(tmpdir);
    return st;
}

// ---------------------------------------------------------------------------------------------
// restore

typedef struct {
    char *name; // normalized: no leading "./"
    char *data;
    size_t len;
} nmember;

typedef struct {
    nmember *m;
    int n;
} nmembers;

typedef struct {
    double version;   // checkpoint_version of the weights
    int present;      // megatron_checkpoint_version.json was there
    mt_qkv_order qkv; // its per-rank QKV row order
    char member[256];
} nversion;

static void members_free(nmembers *ms) {
    for (int i = 0; i < ms->n; i++) {
        free(ms->m[i].name);
        free(ms->m[i].data);
    }
    free(ms->m);
    ms->m = NULL;
    ms->n = 0;
}

static const nmember *find_member(const nmembers *ms, const char *name) {
    for (int i = 0; i < ms->n; i++)
        if (!strcmp(ms->m[i].name, name)) return &ms->m[i];
    return NULL;
}

// Rejects names that could escape a folder: absolute, '..' components, backslashes.
static int safe_name(const char *n) {
    if (!*n || n[0] == '/' || strchr(n, '\\')) return 0;
    const char *p = n;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return 1;
}

// "mp_rank_XX/model_weights.ckpt" (NeMo's %02d): its rank, else -1.
static int shard_rank(const char *name) {
    if (strncmp(name, "mp_rank_", 8) || name[8] < '0' || name[8] > '9' || name[9] < '0' || name[9] > '9' ||
        strcmp(name + 10, "/model_weights.ckpt"))
        return -1;
    return (name[8] - '0') * 10 + (name[9] - '0');
}

// What one .nemo may make a restore hold: the weights members together (streamed to TMPDIR, or in
// memory with weights_file NULL) at most MT_TAR_WEIGHTS_MAX bytes, everything else held in memory
// (config, vocab, label maps) at most MT_TAR_SMALL_MAX bytes in all, and at most MT_NEMO_MAX_MEMBERS
// members (a real .nemo has a handful; each is a lookup by name).
#define MT_NEMO_MAX_MEMBERS 4096

// Reads every regular member into memory, except the weights member `weights_member`
// (model_weights.ckpt, or mp_rank_XX/model_weights.ckpt), which is streamed into `weights_file` (a
// path in our private folder; NULL keeps it in memory too). Other ranks' weights shards
// (mp_rank_XX/model_weights.ckpt) are skipped: only their names are kept, with no data.
// weights_member NULL streams every weights member: model_weights.ckpt into weights_file and
// mp_rank_XX/model_weights.ckpt into weights_file.XX (for resharding). Other .ckpt/.pt/.pth
// members (optimizer states, a second model) are never read: skipped, their names kept with no data.
// The limits above are enforced as members arrive; a refusal names the .nemo and the member.
static mt_status read_members_as(const char *path, const char *weights_member, const char *weights_file,
                                 nmembers *out);
static mt_status read_members_as(const char *path, const char *weights_member, const char *weights_file,
                                 nmembers *out) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) return mt_fail(MT_ERR_IO, "%s: cannot open the .nemo: %s", path, strerror(errno));
    struct archive *a = NULL;
    MT_TRY(mt_tar_open(path, &a));
    mt_status st = MT_OK;
    struct archive_entry *e;
    int r;
    int64_t weights_total = 0, small_total = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *raw = archive_entry_pathname(e);
        if (!raw) { st = mt_fail(MT_ERR_FORMAT, "%s: a member has no name", path); break; }
        const char *name = raw;
        while (name[0] == '.' && name[1] == '/') name += 2;
        mode_t type = archive_entry_filetype(e);
        if (!safe_name(raw[0] == '.' && raw[1] == 0 ? "." : raw) || (!*name && type != AE_IFDIR)) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' has an unsafe name (absolute or with '..'); refusing the "
                         "archive", path, raw);
            break;
        }
        if (archive_entry_hardlink(e) || archive_entry_symlink(e) || (type != AE_IFREG && type != AE_IFDIR)) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is a link or special file; a .nemo holds only regular "
                         "files", path, raw);
            break;
        }
        if (type == AE_IFDIR) continue;
        if (find_member(out, name)) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' appears twice", path, name);
            break;
        }
        if (out->n >= MT_NEMO_MAX_MEMBERS) {
            st = mt_fail(MT_ERR_FORMAT, "%s: more than %d members (at '%s'); a .nemo holds a config, weights and a "
                         "few tokenizer and label files: the archive is corrupt or not a NeMo model", path,
                         MT_NEMO_MAX_MEMBERS, name);
            break;
        }
        int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        int srank = shard_rank(name);
        int weights = srank >= 0 || !strcmp(name, "model_weights.ckpt"); // the members megatune loads
        int other_shard = srank >= 0 && weights_member && strcmp(name, weights_member);
        int stream = weights_file && (weights_member ? !strcmp(name, weights_member) : weights);
        // a member counts against its total before it is read, by its header's claim, and again by
        // the bytes that arrive
        int64_t *sum = weights ? &weights_total : &small_total;
        const int64_t sum_max = weights ? MT_TAR_WEIGHTS_MAX : MT_TAR_SMALL_MAX;
        int never_read = !weights && mt_tar_member_limit(name) == MT_TAR_WEIGHTS_MAX;
        // (a member past its own cap gets the tar reader's message, as `inspect` does)
        if (!other_shard && !never_read && (stream || size <= mt_tar_member_limit(name)) && size > sum_max - *sum) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' (%lld bytes) takes its %s past %lld MiB; the archive is "
                         "corrupt or not a NeMo model", path, name, (long long)size,
                         weights ? "weights members" : "members other than the weights", (long long)(sum_max >> 20));
            break;
        }
        char wf[700];
        if (stream && !weights_member && srank >= 0) st = mt_path_fmt(wf, sizeof wf, "%s.%02d", weights_file, srank);
        else if (stream) st = mt_path_fmt(wf, sizeof wf, "%s", weights_file);
        if (st != MT_OK) break;
        if (stream) {
            int fd = open(wf, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0) { st = mt_fail(MT_ERR_IO, "%s: cannot create: %s", wf, strerror(errno)); break; }
            // archive_read_data_into_fd would also do; a loop keeps the error messages ours
            char *buf = mt_malloc(1u << 20);
            int64_t total = 0;
            if (!buf) st = MT_ERR_NOMEM;
            while (st == MT_OK) {
                la_ssize_t got = archive_read_data(a, buf, 1u << 20);
                if (got < 0) {
                    st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is corrupt or truncated: %s", path, name,
                                 archive_error_string(a));
                    break;
                }
                if (got == 0) break;
                if (got > sum_max - *sum - total) {
                    st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' takes its weights members past %lld MiB; the archive "
                                 "is corrupt or not a NeMo model", path, name, (long long)(sum_max >> 20));
                    break;
                }
                for (la_ssize_t off = 0; off < got;) {
                    ssize_t w = write(fd, buf + off, (size_t)(got - off));
                    if (w < 0 && errno == EINTR) continue;
                    if (w <= 0) { st = mt_fail(MT_ERR_IO, "%s: write failed: %s", wf, strerror(errno)); break; }
                    off += w;
                }
                total += got;
            }
            free(buf);
            if (close(fd) != 0 && st == MT_OK) st = mt_fail(MT_ERR_IO, "%s: close failed", wf);
            if (st == MT_OK && size >= 0 && total != size)
                st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is truncated (%lld of %lld bytes)", path, name,
                             (long long)total, (long long)size);
            nmember *nm = st == MT_OK ? mt_realloc(out->m, (size_t)(out->n + 1) * sizeof *nm) : NULL;
            if (st == MT_OK && !nm) st = MT_ERR_NOMEM;
            if (st != MT_OK) break;
            *sum += total;
            out->m = nm;
            out->m[out->n].name = mt_strdup(name);
            out->m[out->n].data = NULL;
            out->m[out->n].len = (size_t)total;
            if (!out->m[out->n].name) { st = MT_ERR_NOMEM; break; }
            out->n++;
            continue;
        }
        if ((other_shard && weights_file) || never_read) { // another rank's weights, or never used: name only
            if (archive_read_data_skip(a) != ARCHIVE_OK) {
                st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is corrupt or truncated: %s", path, name,
                             archive_error_string(a));
                break;
            }
            nmember *nm = mt_realloc(out->m, (size_t)(out->n + 1) * sizeof *nm);
            if (!nm) { st = MT_ERR_NOMEM; break; }
            out->m = nm;
            out->m[out->n].name = mt_strdup(name);
            out->m[out->n].data = NULL;
            out->m[out->n].len = 0;
            if (!out->m[out->n].name) { st = MT_ERR_NOMEM; break; }
            out->n++;
            continue;
        }
        char *buf = NULL;
        size_t len = 0;
        st = mt_tar_read_member(a, path, name, size, &buf, &len);
        if (st == MT_OK && (int64_t)len > sum_max - *sum)
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' (%zu bytes) takes its %s past %lld MiB; the archive is "
                         "corrupt or not a NeMo model", path, name, len,
                         weights ? "weights members" : "members other than the weights", (long long)(sum_max >> 20));
        if (st == MT_OK) *sum += (int64_t)len;
        nmember *nm = st == MT_OK ? mt_realloc(out->m, (size_t)(out->n + 1) * sizeof *nm) : NULL;
        if (st == MT_OK && !nm) st = MT_ERR_NOMEM;
        if (st != MT_OK) { free(buf); break; }
        out->m = nm;
        out->m[out->n].name = mt_strdup(name);
        out->m[out->n].data = buf;
        out->m[out->n].len = len;
        if (!out->m[out->n].name) { free(buf); st = MT_ERR_NOMEM; break; }
        out->n++;
    }
    if (st == MT_OK && r != ARCHIVE_EOF)
        st = mt_fail(MT_ERR_FORMAT, "%s: corrupt or truncated .nemo: %s", path, archive_error_string(a));
    archive_read_free(a);
    if (st != MT_OK) members_free(out);
    return st;
}

// "nemo:<member>" -> the member; a plain name is looked up by its basename.
static const nmember *artifact(const nmembers *ms, const char *ref, const char *nemo, const char *key, mt_status *st) {
    *st = MT_OK;
    if (!ref) return NULL;
    const char *n = !strncmp(ref, "nemo:", 5) ? ref + 5 : ref;
    const nmember *m = find_member(ms, n);
    if (!m) {
        const char *slash = strrchr(n, '/');
        if (slash) m = find_member(ms, slash + 1);
    }
    if (!m) *st = mt_fail(MT_ERR_FORMAT, "%s: %s refers to '%s', which the archive does not hold", nemo, key, ref);
    else if (!m->data) { // weights, or a .ckpt/.pt/.pth member read_members_as skipped
        *st = mt_fail(MT_ERR_FORMAT, "%s: %s refers to '%s', a weights member, not a text file", nemo, key, m->name);
        m = NULL;
    }
    return m;
}

// The tensor-parallel size of an archive: the number of mp_rank_XX/model_weights.ckpt members
// (NeMo counts mp_rank entries), 1 for a top-level model_weights.ckpt.
// 1 when the weights are mp_rank_XX/model_weights.ckpt members (NeMo's model-parallel layout,
// even with a single mp_rank_00), 0 for one top-level model_weights.ckpt.
static int archive_sharded(const nmembers *ms) {
    for (int i = 0; i < ms->n; i++)
        if (shard_rank(ms->m[i].name) >= 0) return 1;
    return 0;
}

static int archive_tp(const nmembers *ms) {
    int n = 0;
    for (int i = 0; i < ms->n; i++)
        if (shard_rank(ms->m[i].name) >= 0) n++;
    return n ? n : 1;
}

// Every shard mp_rank_00 .. mp_rank_{T-1} is present (T = archive_tp).
static mt_status check_shards(const nmembers *ms, const char *path) {
    int t = archive_tp(ms);
    if (t == 1) return MT_OK;
    for (int r = 0; r < t; r++) {
        char n[64];
        snprintf(n, sizeof n, "mp_rank_%02d/model_weights.ckpt", r);
        if (!find_member(ms, n))
            return mt_fail(MT_ERR_FORMAT, "%s: %d tensor-parallel shards but no %s (they must be mp_rank_00 .. "
                           "mp_rank_%02d)", path, t, n, t - 1);
    }
    return MT_OK;
}

// megatron_checkpoint_version.json (NeMo registers it for every Megatron encoder; a uuid prefix in
// v1.0-final naming): the per-rank QKV row order of the weights. Absent: megatune's own layout.
static mt_status nemo_version(const nmembers *ms, const char *path, nversion *out) {
    *out = (nversion){3.0, 0, MT_QKV_V2, ""};
    const nmember *m = NULL;
    for (int i = 0; i < ms->n && !m; i++) {
        const char *b = strrchr(ms->m[i].name, '/');
        b = b ? b + 1 : ms->m[i].name;
        size_t l = strlen(b), k = strlen(MT_NEMO_VERSION_MEMBER);
        if (l >= k && !strcmp(b + l - k, MT_NEMO_VERSION_MEMBER) && (l == k || b[l - k - 1] == '_')) m = &ms->m[i];
    }
    if (!m) return MT_OK;
    snprintf(out->member, sizeof out->member, "%s", m->name);
    cJSON *j = m->data ? cJSON_ParseWithLength(m->data, m->len) : NULL;
    const cJSON *v = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "checkpoint_version") : NULL;
    mt_status st = MT_OK;
    if (!cJSON_IsNumber(v)) {
        st = mt_fail(MT_ERR_FORMAT, "%s: member %s is not {\"checkpoint_version\": <number>}; NeMo writes e.g. "
                     "{\"checkpoint_version\": 3.0}", path, m->name);
    } else if (v->valuedouble != 0.0 && v->valuedouble != 1.0 && v->valuedouble != 2.0 && v->valuedouble != 3.0) {
        st = mt_fail(MT_ERR_UNSUPPORTED, "%s: member %s says checkpoint_version %g, which megatune does not know: its "
                     "attention (QKV) weights would load in the wrong order. Known versions: 0, 1.0, 2.0, 3.0 "
                     "(Megatron-LM's); convert the model with a Megatron-LM of one of those versions", path, m->name,
                     v->valuedouble);
    } else {
        out->version = v->valuedouble;
        out->present = 1;
        out->qkv = mt_qkv_order_of_version(out->version);
    }
    cJSON_Delete(j);
    return st;
}

// A member name ends with `suffix` as a whole name or after a '_' (NeMo's <uuid>_ prefix).
static int name_ends(const char *name, const char *suffix) {
    size_t l = strlen(name), k = strlen(suffix);
    return l >= k && !strcmp(name + l - k, suffix) && (l == k || name[l - k - 1] == '_' || name[l - k - 1] == '/');
}

// tokenizer_vocab_dict.json ({token: id}) -> vocab.txt text, one token per line in id order.
static mt_status vocab_from_dict(const nmember *m, const char *path, char **out, size_t *olen) {
    cJSON *j = m->data ? cJSON_ParseWithLength(m->data, m->len) : NULL;
    int n = cJSON_IsObject(j) ? cJSON_GetArraySize(j) : -1;
    const char **tok = n > 0 ? mt_calloc((size_t)n, sizeof *tok) : NULL;
    mt_status st = n > 0 ? (tok ? MT_OK : MT_ERR_NOMEM)
                         : mt_fail(MT_ERR_FORMAT, "%s: member %s is not a non-empty {token: id} JSON object", path, m->name);
    const cJSON *e;
    if (st == MT_OK) cJSON_ArrayForEach(e, j) {
        double id = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (id < 0 || id >= n || id != (int)id || tok[(int)id]) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member %s: token '%s' has id %g; the ids must be 0..%d, each once", path,
                         m->name, e->string, id, n - 1);
            break;
        }
        tok[(int)id] = e->string;
    }
    if (st == MT_OK) {
        FILE *f = open_memstream(out, olen);
        if (!f) st = MT_ERR_NOMEM;
        for (int i = 0; f && i < n; i++) fprintf(f, "%s\n", tok[i]);
        if (f && fclose(f) != 0) st = MT_ERR_NOMEM;
    }
    free(tok);
    cJSON_Delete(j);
    return st;
}

// Rewrites the last error about our temporary copy `file` of a weights member to name the member.
static mt_status member_error(mt_status st, const char *nemo, const char *file, int sharded, int k) {
    const char *e = mt_last_error(), *at = strstr(e, file);
    char msg[1024], member[64];
    snprintf(msg, sizeof msg, "%s", at ? at + strlen(file) : e);
    if (sharded) snprintf(member, sizeof member, "mp_rank_%02d/model_weights.ckpt", k);
    else snprintf(member, sizeof member, "model_weights.ckpt");
    return mt_fail(st, "%s: member %s%s%s", nemo, member, at ? "" : ": ", msg);
}

// Loads the weights of a .nemo written at tensor-parallel size T (files[k] = shard k; T = 1: the
// one model_weights.ckpt) into `m`, whatever its own tensor-parallel size and rank: a split tensor
// is the concatenation of the shards along its split dimension, and each of m's elements is taken
// from there. Vocab rows past the source's padded vocab are zero (padding rows are never looked up).
// Strict: every parameter must be present with a compatible shape.
static mt_status load_resharded(char *const *files, int T, int sharded, mt_model *m, const char *nemo,
                                const nversion *ver) {
    const mt_param_table *tab = mt_model_params(m);
    const mt_model_config *mc = mt_model_get_config(m);
    mt_torch_file **tf = mt_calloc((size_t)T, sizeof *tf);
    mt_flat *fl = mt_calloc((size_t)T, sizeof *fl);
    const mt_ckpt_tensor **t = mt_calloc((size_t)T, sizeof *t);
    mt_status st = tf && fl && t ? MT_OK : MT_ERR_NOMEM;
    for (int k = 0; k < T && st == MT_OK; k++) {
        st = mt_torch_open(files[k], &tf[k]);
        if (st == MT_OK) st = mt_flatten(mt_torch_root(tf[k]), "", &fl[k]);
        if (st != MT_OK) st = member_error(st, nemo, files[k], sharded, k);
    }
    for (int i = 0; i < tab->count && st == MT_OK; i++) {
        const mt_param *p = &tab->params[i];
        const int64_t rows = p->shape[0], cols = p->ndim == 2 ? p->shape[1] : 1;
        for (int k = 0; k < T && st == MT_OK; k++) {
            char key[MT_PARAM_NAME_MAX + 16];
            t[k] = mt_flat_find(&fl[k], p->name);
            if (!t[k]) {
                snprintf(key, sizeof key, "state_dict.%s", p->name);
                t[k] = mt_flat_find(&fl[k], key);
            }
            if (!t[k]) {
                st = mt_fail(MT_ERR_FORMAT, "%s: shard %d of %d has no '%s'", nemo, k, T, p->name);
                break;
            }
            st = mt_ckpt_tensor_check(t[k], p->name);
            if (st == MT_OK && (t[k]->ndim != p->ndim || mt_ckpt_tensor_rows(t[k]) != mt_ckpt_tensor_rows(t[0]) ||
                                mt_ckpt_tensor_cols(t[k]) != mt_ckpt_tensor_cols(t[0])))
                st = mt_fail(MT_ERR_FORMAT, "%s: '%s' has %d dimension(s) and shape %lldx%lld in shard %d (the model "
                             "wants %d dimension(s); shard 0 has %lldx%lld)", nemo, p->name, t[k]->ndim,
                             (long long)mt_ckpt_tensor_rows(t[k]), (long long)mt_ckpt_tensor_cols(t[k]), k, p->ndim,
                             (long long)mt_ckpt_tensor_rows(t[0]), (long long)mt_ckpt_tensor_cols(t[0]));
        }
        if (st != MT_OK) break;
        const int64_t srows = mt_ckpt_tensor_rows(t[0]), scols = mt_ckpt_tensor_cols(t[0]);
        float *dst = mt_model_param(m, i);
        const int d = p->split_dim, tp = mc->tp_size, rk = mc->tp_rank;
        if (d < 0) { // replicated: the same tensor in every shard; take shard 0's
            if (srows != rows || scols != cols) {
                st = mt_fail(MT_ERR_FORMAT, "%s: '%s' is %lldx%lld, the model's is %lldx%lld (another task, head or "
                             "encoder shape)", nemo, p->name, (long long)srows, (long long)scols, (long long)rows,
                             (long long)cols);
                break;
            }
            for (int64_t r = 0; r < rows; r++) mt_ckpt_tensor_row_f32(t[0], r, 0, cols, dst + r * cols);
        } else if (d == 0 && ver->qkv != MT_QKV_V2 && strstr(p->name, ".query_key_value.")) {
            // an older checkpoint version's per-rank row order: merge and reorder to [heads, 3, hn]
            if (scols != cols || srows * T != rows * tp) {
                st = mt_fail(MT_ERR_FORMAT, "%s: '%s' is %lldx%lld in each of %d shard(s); the model needs %lld rows "
                             "of %lld", nemo, p->name, (long long)srows, (long long)scols, T, (long long)(rows * tp),
                             (long long)cols);
                break;
            }
            st = mt_ckpt_qkv_rows(nemo, p->name, t, T, ver->qkv, mc->num_attention_heads, ver->version,
                                  (int64_t)rk * rows, rows, dst);
        } else if (d == 0) {
            const int64_t sglob = srows * T, glob = rows * tp;
            int vocab = p->split == MT_SPLIT_VOCAB;
            if (scols != cols || (!vocab && sglob != glob) || (vocab && sglob < mc->vocab_size)) {
                st = mt_fail(MT_ERR_FORMAT, "%s: '%s' is %lldx%lld in each of %d shard(s) (%lld rows in all); the model "
                             "needs %lld rows of %lld", nemo, p->name, (long long)srows, (long long)scols, T,
                             (long long)sglob, (long long)glob, (long long)cols);
                break;
            }
            for (int64_t r = 0; r < rows; r++) {
                int64_t g = (int64_t)rk * rows + r;
                if (g < sglob) mt_ckpt_tensor_row_f32(t[g / srows], g % srows, 0, cols, dst + r * cols);
                else memset(dst + r * cols, 0, (size_t)cols * sizeof *dst);
            }
        } else { // d == 1: columns split
            if (srows != rows || scols * T != cols * tp) {
                st = mt_fail(MT_ERR_FORMAT, "%s: '%s' is %lldx%lld in each of %d shard(s); the model needs %lld rows "
                             "of %lld columns in all", nemo, p->name, (long long)srows, (long long)scols, T,
                             (long long)rows, (long long)(cols * tp));
                break;
            }
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols;) {
                    int64_t g = (int64_t)rk * cols + c, off = g % scols, n = scols - off;
                    if (n > cols - c) n = cols - c;
                    mt_ckpt_tensor_row_f32(t[g / scols], r, off, n, dst + r * cols + c);
                    c += n;
                }
        }
    }
    for (int k = 0; k < T; k++) {
        if (fl) mt_flat_free(&fl[k]);
        if (tf && tf[k]) mt_torch_close(tf[k]);
    }
    free(tf);
    free(fl);
    free(t);
    return st;
}

// The weights files read_members_as(..., NULL, wp, ...) streamed: wp, or wp.00 .. wp.{T-1}.
static char **shard_files(const char *wp, int T, int sharded) {
    char **f = mt_calloc((size_t)T, sizeof *f);
    if (!f) return NULL;
    for (int k = 0; k < T; k++) {
        f[k] = mt_malloc(strlen(wp) + 8);
        if (!f[k]) {
            for (int j = 0; j < k; j++) free(f[j]);
            free(f);
            return NULL;
        }
        if (!sharded) strcpy(f[k], wp);
        else sprintf(f[k], "%s.%02d", wp, k);
    }
    return f;
}

static void shard_files_free(char **f, int T) {
    if (!f) return;
    for (int k = 0; k < T; k++) {
        unlink(f[k]);
        free(f[k]);
    }
    free(f);
}

// The process groups a restore runs in: under mpirun -np N every process is one tensor-parallel
// rank (data-parallel size 1) of a model split N ways, whatever N the .nemo was written with (its
// shards are resharded when they differ); without a launcher, one process. An override
// model.tensor_model_parallel_size=K on the command line (`tp_given`) asks for K-way tensor
// parallelism and N/K data-parallel replicas instead (`megatune test` then shards the test set).
static mt_status restore_parallel(int tp_given, mt_parallel **par) {
    MT_TRY(mt_parallel_create(tp_given > 0 ? tp_given : mt_parallel_launched_size(), par));
    if ((*par)->world_size > 1) mt_log_set_rank((*par)->world_rank);
    return MT_OK;
}

// Does an override set the tensor-parallel size (either spelling, with Hydra's '+' prefixes)?
static int overrides_tp(char **overrides, int n) {
    for (int i = 0; i < n; i++) {
        const char *o = overrides[i];
        while (*o == '+') o++;
        if (!strncmp(o, "model.tensor_model_parallel_size=", 33) || !strncmp(o, "trainer.tensor_model_parallel_size=", 35))
            return 1;
    }
    return 0;
}

mt_status mt_nemo_load_weights(const char *path, mt_model *m) {
    char tmpdir[512] = "";
    MT_TRY(make_tmpdir(tmpdir, sizeof tmpdir));
    char wp[600];
    mt_status st = mt_path_join(wp, sizeof wp, tmpdir, "model_weights.ckpt");
    nmembers ms;
    memset(&ms, 0, sizeof ms);
    if (st == MT_OK) st = read_members_as(path, NULL, wp, &ms);
    if (st != MT_OK) {
        remove_tree_flat(tmpdir);
        return st;
    }
    st = check_shards(&ms, path);
    nversion ver;
    if (st == MT_OK) st = nemo_version(&ms, path, &ver);
    const int T = archive_tp(&ms), sharded = archive_sharded(&ms);
    const nmember *w = st == MT_OK ? find_member(&ms, sharded ? "mp_rank_00/model_weights.ckpt" : "model_weights.ckpt") : NULL;
    if (st == MT_OK && !w) st = mt_fail(MT_ERR_FORMAT, "%s: no model_weights.ckpt member", path);
    if (st == MT_OK && (sharded || mt_model_get_config(m)->tp_size > 1 || ver.qkv != MT_QKV_V2)) {
        // a tensor-parallel .nemo and/or model, or an older QKV layout: reshard (strict; NeMo's key names)
        char **files = shard_files(wp, T, sharded);
        st = files ? load_resharded(files, T, sharded, m, path, &ver) : MT_ERR_NOMEM;
        shard_files_free(files, T);
    } else if (st == MT_OK) {
        st = mt_state_dict_load_model(wp, m, 1);
        if (st != MT_OK) {
            // Name the member, not our temporary copy (gone once we return), and say what kind of
            // model the .nemo holds: a mismatch is nearly always another task or head.
            char msg[1024], kind[160] = "";
            const char *e = mt_last_error(), *at = strstr(e, wp);
            if (at) snprintf(msg, sizeof msg, "%.*smodel_weights.ckpt%s", (int)(at - e), e, at + strlen(wp));
            else snprintf(msg, sizeof msg, "%s", e);
            const nmember *mc = find_member(&ms, "model_config.yaml");
            const char *t = mc && mc->data ? strstr(mc->data, "\ntarget:") : NULL;
            if (t) {
                t += 8;
                size_t l = strcspn(t, "\n");
                const char *dot = memchr(t, '.', l) ? t + l : NULL;
                while (dot && dot > t && dot[-1] != '.') dot--;
                if (dot) snprintf(kind, sizeof kind, " (a %.*s)", (int)strcspn(dot, "\"\n"), dot);
            }
            st = mt_fail(st, "%s%s: its weights do not fit the model this config builds: %s; initialise from a .nemo "
                         "of the same task, head, num_classes and encoder shape (model.language_model.lm_checkpoint "
                         "loads an encoder alone)", path, kind, msg);
        }
    }
    if (tmpdir[0]) remove_tree_flat(tmpdir);
    members_free(&ms);
    return st;
}

// Most classes a restored head may have: the rows of its last layer come from the file, and a
// zero-stride view there can claim any number at no cost in bytes.
#define MT_NEMO_MAX_CLASSES (1 << 20)

// Rows of the head's last layer weight = the number of classes the .nemo was trained with. `wpath`
// is our temporary copy of the weights member (shard 0 when `sharded`); errors name `nemo` and the
// member instead.
static mt_status head_classes_mlp(const char *nemo, const char *wpath, int sharded, const char *prefix, const char *mlp,
                                  int layers, int *ncls);
static mt_status head_classes(const char *nemo, const char *wpath, int sharded, const char *prefix, int layers, int *ncls) {
    return head_classes_mlp(nemo, wpath, sharded, prefix, "mlp", layers, ncls);
}

static mt_status head_classes_mlp(const char *nemo, const char *wpath, int sharded, const char *prefix, const char *mlp,
                                  int layers, int *ncls) {
    const char *member = sharded ? "mp_rank_00/model_weights.ckpt" : "model_weights.ckpt";
    mt_torch_file *tf = NULL;
    mt_status st = mt_torch_open(wpath, &tf);
    mt_flat f = {0};
    if (st == MT_OK) st = mt_flatten(mt_torch_root(tf), "", &f);
    if (st != MT_OK) st = member_error(st, nemo, wpath, sharded, 0);
    char key[160];
    snprintf(key, sizeof key, "%s.%s.layer%d.weight", prefix, mlp, 2 * (layers - 1));
    const mt_ckpt_tensor *t = st == MT_OK ? mt_flat_find(&f, key) : NULL;
    if (!t) {
        snprintf(key, sizeof key, "state_dict.%s.%s.layer%d.weight", prefix, mlp, 2 * (layers - 1));
        t = st == MT_OK ? mt_flat_find(&f, key) : NULL;
    }
    if (st == MT_OK && (!t || t->ndim != 2))
        st = mt_fail(MT_ERR_FORMAT, "%s: member %s: no 2-D '%s.%s.layer%d.weight' (the config's head has %d layer(s))",
                     nemo, member, prefix, mlp, 2 * (layers - 1), layers);
    if (st == MT_OK && (t->shape[0] < 1 || t->shape[0] > MT_NEMO_MAX_CLASSES))
        st = mt_fail(MT_ERR_FORMAT, "%s: member %s: '%s' has %lld rows, so its head would have %lld classes (1 to %d "
                     "supported); the weights are corrupt: export the model again", nemo, member, key,
                     (long long)t->shape[0], (long long)t->shape[0], MT_NEMO_MAX_CLASSES);
    if (st == MT_OK) *ncls = (int)t->shape[0];
    mt_flat_free(&f);
    mt_torch_close(tf);
    return st;
}

// The vocab a restored model uses -> `dst`: tokenizer.vocab_file's member; with that null, a
// member named like a vocab (NeMo's listing: tokenizer.vocab_file, or <uuid>_vocab.txt), else the
// tokenizer_vocab_dict.json {token: id} dump.
static mt_status extract_vocab(const nmembers *ms, const mt_train_config *cfg, const char *path, const char *dst) {
    mt_status st;
    const nmember *mv = artifact(ms, cfg->model.tokenizer.vocab_file, path, "tokenizer.vocab_file", &st);
    if (st != MT_OK) return st;
    for (int i = 0; i < ms->n && !mv; i++)
        if (name_ends(ms->m[i].name, "tokenizer.vocab_file") || name_ends(ms->m[i].name, "vocab.txt")) mv = &ms->m[i];
    if (mv) return write_file(dst, mv->data, mv->len);
    for (int i = 0; i < ms->n; i++)
        if (name_ends(ms->m[i].name, "tokenizer_vocab_dict.json") || name_ends(ms->m[i].name, "tokenizer_vocab_dict")) {
            char *text = NULL;
            size_t len = 0;
            st = vocab_from_dict(&ms->m[i], path, &text, &len);
            if (st == MT_OK) st = write_file(dst, text, len);
            free(text);
            return st;
        }
    return mt_fail(MT_ERR_FORMAT, "%s: no vocab member (tokenizer.vocab_file is null and there is no "
                   "tokenizer.vocab_file, *vocab.txt or tokenizer_vocab_dict.json member)", path);
}

// Copies key `i` of the schema from `from` to `to` (value and set flag).
static mt_status copy_key(mt_train_config *to, const mt_train_config *from, size_t i) {
    size_t n;
    const mt_cfg_key *k = &mt_config_schema(&n)[i];
    if (k->type == MT_CFG_ANY) return MT_OK;
    void *d = mt_config_field(to, k->path);
    const void *sv = mt_config_field((mt_train_config *)from, k->path);
    if (!d || !sv) return MT_OK;
    switch (k->type) {
    case MT_CFG_STR: {
        const char *v = *(char *const *)sv;
        char *c = v ? mt_strdup(v) : NULL;
        if (v && !c) return MT_ERR_NOMEM;
        free(*(char **)d);
        *(char **)d = c;
        break;
    }
    case MT_CFG_INT: memcpy(d, sv, sizeof(int64_t)); break;
    case MT_CFG_FLOAT: memcpy(d, sv, sizeof(double)); break;
    case MT_CFG_BOOL: memcpy(d, sv, sizeof(int)); break;
    case MT_CFG_NUM: memcpy(d, sv, sizeof(mt_cfg_num)); break;
    case MT_CFG_FLOAT_LIST: memcpy(d, sv, sizeof(mt_cfg_list)); break;
    default: break;
    }
    to->set[i] = from->set[i];
    return MT_OK;
}

mt_status mt_nemo_adopt_model(const char *path, mt_train_config *cfg, char *tmpdir, size_t cap, char *labels,
                              size_t lcap) {
    tmpdir[0] = labels[0] = 0;
    if (cap < 64 || lcap < 64) return mt_fail(MT_ERR_INVALID, "mt_nemo_adopt_model: buffers too small");
    MT_TRY(make_tmpdir(tmpdir, cap));
    char wp[600];
    nmembers ms;
    memset(&ms, 0, sizeof ms);
    mt_train_config nc;
    int nc_init = 0;
    // the weights are read later (mt_nemo_load_weights): stream the top-level file aside, skip shards
    mt_status st = mt_path_join(wp, sizeof wp, tmpdir, "model_weights.ckpt");
    if (st == MT_OK) st = read_members_as(path, "model_weights.ckpt", wp, &ms);
    unlink(wp);
    const nmember *mc = st == MT_OK ? find_member(&ms, "model_config.yaml") : NULL;
    if (st == MT_OK && !mc) st = mt_fail(MT_ERR_FORMAT, "%s: no model_config.yaml member", path);
    if (st == MT_OK) st = mt_config_init(&nc);
    if (st == MT_OK) nc_init = 1;
    char where[4200];
    snprintf(where, sizeof where, "%s:model_config.yaml", path);
    if (st == MT_OK) st = mt_config_load_yaml_text(&nc, mc->data, mc->len, where, "model.", 1);
    if (st == MT_OK && cfg->task) st = mt_config_set(&nc, "task", cfg->task);
    if (st == MT_OK) st = mt_config_finish(&nc);
    // NeMo's restore_from builds the model from the .nemo's own config: every key of the encoder,
    // tokenizer, head and label sections is the .nemo's, whatever the YAML says
    static const char *const sections[] = {"model.language_model.", "model.tokenizer.", "model.head.",
                                           "model.classifier_head.", "model.class_labels.",
                                           "model.dataset.num_classes"};
    size_t nk;
    const mt_cfg_key *schema = mt_config_schema(&nk);
    for (size_t i = 0; i < nk && st == MT_OK; i++)
        for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++)
            if (!strncmp(schema[i].path, sections[j], strlen(sections[j]))) {
                st = copy_key(cfg, &nc, i);
                break;
            }
    // do_training=false (QA): NeMo's trainer.test reads the features with the restored model's own
    // model.dataset (max_seq_length, doc_stride, n_best_size, ...), not the YAML's
    for (size_t i = 0; i < nk && st == MT_OK && !cfg->do_training; i++)
        if (!strncmp(schema[i].path, "model.dataset.", 14)) st = copy_key(cfg, &nc, i);
    char vp[600], jp[600];
    if (st == MT_OK) st = mt_path_join(vp, sizeof vp, tmpdir, "vocab.txt");
    if (st == MT_OK) st = extract_vocab(&ms, &nc, path, vp);
    if (st == MT_OK) st = set_fmt(cfg, "model.tokenizer.vocab_file", "'%s'", vp);
    if (st == MT_OK) st = mt_config_set(cfg, "model.language_model.lm_checkpoint", "null");
    const char *cf = st == MT_OK ? nc.model.language_model.config_file : NULL;
    if (cf && !mt_config_is_set(&nc, "model.language_model.config.hidden_size")) {
        const nmember *mj = artifact(&ms, cf, path, "language_model.config_file", &st);
        if (mj) st = mt_path_join(jp, sizeof jp, tmpdir, "encoder_config.json");
        if (mj && st == MT_OK) st = write_file(jp, mj->data, mj->len);
        if (st == MT_OK) st = set_fmt(cfg, "model.language_model.config_file", "'%s'", jp);
    } else if (st == MT_OK) {
        st = mt_config_set(cfg, "model.language_model.config_file", "null");
    }
    const nmember *ml = st == MT_OK && nc.model.class_labels.class_labels_file
                            ? artifact(&ms, nc.model.class_labels.class_labels_file, path, "class_labels.class_labels_file", &st)
                            : NULL;
    if (st == MT_OK && ml) {
        st = mt_path_join(labels, lcap, tmpdir, "label_ids.csv");
        if (st == MT_OK) st = write_file(labels, ml->data, ml->len);
        if (st == MT_OK) st = set_fmt(cfg, "model.class_labels.class_labels_file", "'%s'", labels);
    }
    if (nc_init) mt_config_free(&nc);
    members_free(&ms);
    if (st != MT_OK) {
        remove_tree_flat(tmpdir);
        tmpdir[0] = labels[0] = 0;
        return mt_fail_context(st, "pretrained_model=%s", path);
    }
    mt_info("pretrained_model=%s: the encoder, tokenizer, head and labels%s come from the .nemo's own config (the "
            "YAML's model.language_model, tokenizer and head sections%s are not used)", path,
            cfg->do_training ? "" : " and model.dataset", cfg->do_training ? "" : " and model.dataset");
    return MT_OK;
}

void mt_nemo_adopt_cleanup(char *tmpdir) {
    if (tmpdir && tmpdir[0]) remove_tree_flat(tmpdir);
}

mt_status mt_nemo_restore(const char *path, char **overrides, int n_overrides, mt_nemo **out) {
    *out = NULL;
    mt_nemo *n = mt_calloc(1, sizeof *n);
    if (!n) return MT_ERR_NOMEM;
    nmembers ms;
    memset(&ms, 0, sizeof ms);
    mt_status st = mt_config_init(&n->cfg);
    if (st != MT_OK) { free(n); return st; }
    st = make_tmpdir(n->tmpdir, sizeof n->tmpdir);
    char wp[600] = "";
    if (st == MT_OK) st = mt_path_join(wp, sizeof wp, n->tmpdir, "model_weights.ckpt");
    if (st == MT_OK) st = read_members_as(path, NULL, wp, &ms);
    if (st == MT_OK) st = check_shards(&ms, path);
    nversion ver = {3.0, 0, MT_QKV_V2, ""};
    if (st == MT_OK) st = nemo_version(&ms, path, &ver);
    const int T = st == MT_OK ? archive_tp(&ms) : 1, sharded = st == MT_OK && archive_sharded(&ms);
    char **files = st == MT_OK ? shard_files(wp, T, sharded) : NULL;
    if (st == MT_OK && !files) st = MT_ERR_NOMEM;
    const nmember *mc = st == MT_OK ? find_member(&ms, "model_config.yaml") : NULL;
    if (st == MT_OK && !mc) st = mt_fail(MT_ERR_FORMAT, "%s: no model_config.yaml member", path);
    const nmember *mw = st == MT_OK ? find_member(&ms, sharded ? "mp_rank_00/model_weights.ckpt" : "model_weights.ckpt") : NULL;
    if (st == MT_OK && !mw) st = mt_fail(MT_ERR_FORMAT, "%s: no model_weights.ckpt member", path);
    char where[4200];
    snprintf(where, sizeof where, "%s:model_config.yaml", path);
    if (st == MT_OK) st = mt_config_load_yaml_text(&n->cfg, mc->data, mc->len, where, "model.", 1);
    for (int i = 0; i < n_overrides && st == MT_OK; i++) st = mt_config_override(&n->cfg, overrides[i]);
    // the restored model's data paths are whatever the user gives now; mandatory training keys
    // left as ??? do not matter for evaluation
    if (st == MT_OK) st = mt_config_finish(&n->cfg);
    if (st == MT_OK)
        st = restore_parallel(overrides_tp(overrides, n_overrides) ? (int)n->cfg.model.tensor_model_parallel_size : 0,
                              &n->par);
    if (st == MT_OK) n->s.tp = n->par->tp;
    mt_session *s = &n->s;
    if (st == MT_OK) st = mt_session_task_options(&n->cfg, &s->topt);
    // vocab -> a private file, then the tokenizer with the preset's (or the config's) casing
    if (st == MT_OK) {
        st = mt_path_join(s->vocab_path, sizeof s->vocab_path, n->tmpdir, "vocab.txt");
        if (st == MT_OK) st = extract_vocab(&ms, &n->cfg, path, s->vocab_path);
    }
    if (st == MT_OK) {
        // casing: the tokenizer preset's, else the recorded do_lower_case
        const char *tname = n->cfg.model.tokenizer.tokenizer_name;
        const mt_pretrained_info *tp = tname ? mt_pretrained_find(tname) : NULL;
        s->lowercase = tp ? tp->lowercase : n->cfg.model.tokenizer.do_lower_case;
        if (n->cfg.model.tokenizer.do_lower_case != s->lowercase && mt_config_is_set(&n->cfg, "model.tokenizer.do_lower_case"))
            s->lowercase = n->cfg.model.tokenizer.do_lower_case; // what the model was trained with
        mt_tokenizer_options to;
        mt_tokenizer_options_default(&to, s->lowercase);
        st = mt_tokenizer_create_from_file(s->vocab_path, &to, &s->tok);
    }
    // label map
    const nmember *ml = NULL;
    if (st == MT_OK && n->cfg.model.class_labels.class_labels_file)
        ml = artifact(&ms, n->cfg.model.class_labels.class_labels_file, path, "class_labels.class_labels_file", &st);
    if (st == MT_OK && ml) {
        char lp[600];
        st = mt_path_join(lp, sizeof lp, n->tmpdir, "label_ids.csv");
        if (st == MT_OK) st = write_file(lp, ml->data, ml->len);
        if (st == MT_OK) st = mt_path_fmt(s->topt.label_ids_file, sizeof s->topt.label_ids_file, "%s", lp);
    }
    if (st == MT_OK && s->topt.kind == MT_TASK_TOKEN_CLASSIFICATION && !ml)
        st = mt_fail(MT_ERR_FORMAT, "%s: a token-classification model without its label map (label_ids.csv)", path);
    // two-head tasks: both label maps (P&C punct/capit, intent/slot intent/slot)
    const int pnc = s->topt.kind == MT_TASK_PUNCT_CAPIT, joint = pnc || s->topt.kind == MT_TASK_INTENT_SLOT;
    for (int h = 0; joint && h < 2 && st == MT_OK; h++) {
        const char *key = h == 0 ? (pnc ? "class_labels.punct_labels_file" : "class_labels.intent_labels_file")
                                 : (pnc ? "class_labels.capit_labels_file" : "class_labels.slot_labels_file");
        const char *ref = h == 0 ? (pnc ? n->cfg.model.joint.punct_labels_file : n->cfg.model.joint.intent_labels_file)
                                 : (pnc ? n->cfg.model.joint.capit_labels_file : n->cfg.model.joint.slot_labels_file);
        const nmember *mlab = ref ? artifact(&ms, ref, path, key, &st) : NULL;
        if (st == MT_OK && !mlab)
            st = mt_fail(MT_ERR_FORMAT, "%s: no label map member for model.%s", path, key);
        if (st == MT_OK) {
            char lp[600];
            st = mt_path_fmt(lp, sizeof lp, "%s/labels%d.csv", n->tmpdir, h);
            if (st == MT_OK) st = write_file(lp, mlab->data, mlab->len);
            char *dst = h == 0 ? s->topt.label_ids_file : s->topt.label_ids_file2;
            if (st == MT_OK) st = mt_path_fmt(dst, sizeof s->topt.label_ids_file, "%s", lp);
        }
    }
    // weights (already streamed into the private folder); head size from the weights
    (void)mw;
    if (st == MT_OK) {
        mt_head_kind head = MT_HEAD_SEQUENCE_CLASSIFIER;
        const char *prefix = "classifier";
        int layers = (int)n->cfg.model.classifier_head.num_output_layers;
        if (s->topt.kind == MT_TASK_TOKEN_CLASSIFICATION) {
            head = MT_HEAD_TOKEN_CLASSIFIER;
            layers = (int)n->cfg.model.head.num_fc_layers;
        } else if (s->topt.kind == MT_TASK_QUESTION_ANSWERING) {
            head = MT_HEAD_QA;
            layers = (int)n->cfg.model.token_classifier.num_layers;
        } else if (s->topt.kind == MT_TASK_GLUE) {
            prefix = "pooler";
            layers = 2;
            if (!strcmp(s->topt.glue_task, "sts-b")) head = MT_HEAD_SEQUENCE_REGRESSION;
        }
        int ncls = 0;
        if (pnc) {
            head = MT_HEAD_TOKEN_CLASSIFIER;
            st = head_classes(path, files[0], sharded, "punct_classifier",
                              (int)n->cfg.model.joint.punct_head.num_fc_layers, &ncls);
            if (st == MT_OK)
                st = head_classes(path, files[0], sharded, "capit_classifier",
                                  (int)n->cfg.model.joint.capit_head.num_fc_layers, &s->num_classes2);
        } else if (joint) {
            int nl = (int)n->cfg.model.joint.num_output_layers;
            st = head_classes_mlp(path, files[0], sharded, "classifier", "intent_mlp", nl, &ncls);
            if (st == MT_OK) st = head_classes_mlp(path, files[0], sharded, "classifier", "slot_mlp", nl, &s->num_classes2);
        } else {
            // the head is replicated: any shard has it
            st = head_classes(path, files[0], sharded, prefix, layers, &ncls);
        }
        // A NeMo-written .nemo describes the encoder only in its config_file member; megatune's
        // also writes the full model.language_model.config block, which then decides.
        const char *cf = n->cfg.model.language_model.config_file;
        if (st == MT_OK && cf && !mt_config_is_set(&n->cfg, "model.language_model.config.hidden_size")) {
            const nmember *mj = artifact(&ms, cf, path, "language_model.config_file", &st);
            if (mj) s->config_json = mj->data;
        }
        s->weights_from_checkpoint = 1; // both loads below are strict: every weight, exact shapes
        if (st == MT_OK) st = mt_session_build_model(&n->cfg, s, head, ncls);
        s->config_json = NULL;
        s->weights_from_checkpoint = 0;
        if (st == MT_OK && T == n->par->tp_size && ver.qkv == MT_QKV_V2) {
            st = mt_state_dict_load_model(files[n->par->tp_rank], s->model, 1);
            if (st != MT_OK) st = member_error(st, path, files[n->par->tp_rank], sharded, n->par->tp_rank);
        } else if (st == MT_OK) {
            // written at another tensor-parallel size: merge / split the shards
            st = load_resharded(files, T, sharded, s->model, path, &ver);
            if (st == MT_OK && T != n->par->tp_size)
                mt_info("%s: tensor-parallel size %d resharded to %d", path, T, n->par->tp_size);
        }
    }
    // The weights are in the model now: drop the copies (345M: 1.3 GB of TMPDIR, RAM on a tmpfs) rather
    // than keep them until mt_nemo_free, which a Ctrl-C during test/predict would never reach.
    if (files) shard_files_free(files, T);
    unlink(wp);
    members_free(&ms);
    if (st != MT_OK) {
        mt_nemo_free(n);
        return st;
    }
    if (ver.present)
        mt_info("%s: Megatron checkpoint_version %g (%s): QKV rows %s", path, ver.version, ver.member,
                ver.qkv == MT_QKV_V0 ? "[3, heads, head_dim] per rank, reordered" :
                ver.qkv == MT_QKV_V1 ? "[heads, head_dim, 3] per rank, reordered" : "[heads, 3, head_dim]");
    n->checkpoint_version = ver.present ? ver.version : -1;
    n->archive_tp = T;
    mt_info("restored %s (%s)", path, n->cfg.task);
    *out = n;
    return MT_OK;
}

void mt_nemo_free(mt_nemo *n) {
    if (!n) return;
    mt_session_free(&n->s);
    mt_config_free(&n->cfg);
    if (n->tmpdir[0]) remove_tree_flat(n->tmpdir);
    mt_parallel_free(n->par); // after the model, which uses its tensor-parallel group
    free(n);
}
