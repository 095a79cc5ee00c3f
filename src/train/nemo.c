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

#include "ckpt/state_dict.h"
#include "ckpt/torchfile.h"
#include "core/log.h"
#include "text/pretrained.h"

#define MEMBER_MAX ((int64_t)16 << 30)
// Everything but weights (config YAML/JSON, vocab, label map) is small; a lower cap keeps a
// disguised gzip bomb from taking gigabytes of memory.
#define SMALL_MEMBER_MAX ((int64_t)256 << 20)

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
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static mt_status make_tmpdir(char *out, size_t cap) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    if (snprintf(out, cap, "%s/megatune-nemo-XXXXXX", base) >= (int)cap)
        return mt_fail(MT_ERR_INVALID, "TMPDIR path too long");
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
    snprintf(arcname, sizeof arcname, "./%s", name);
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
    struct archive_entry *e = archive_entry_new();
    if (!e) return MT_ERR_NOMEM;
    char arcname[1024];
    snprintf(arcname, sizeof arcname, "./%s", name);
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
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return mt_fail(MT_ERR_INVALID, "%s: path too long", path);
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
            snprintf(arcname, sizeof arcname, "./%.*s", (int)(nl - 1), m[i].name);
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
    char tmpdir[512];
    MT_TRY(make_tmpdir(tmpdir, sizeof tmpdir));
    char wpath[600];
    snprintf(wpath, sizeof wpath, "%s/model_weights.ckpt", tmpdir);
    char *vocab = NULL, *yaml = NULL, *json = NULL, *labtxt = NULL;
    size_t vlen = 0, ylen = 0, jlen = 0, llen = 0;
    mt_train_config c2;
    int c2_init = 0;
    member *m = mt_calloc((size_t)(5 + 2 * tp), sizeof *m);
    char (*mpnames)[40] = mt_calloc((size_t)(2 * tp), sizeof *mpnames);
    mt_status st = m && mpnames ? MT_OK : MT_ERR_NOMEM;
    if (st == MT_OK && !weight_files) st = mt_state_dict_save_model(wpath, s->model);
    if (st == MT_OK) st = read_file(s->vocab_path, &vocab, &vlen);
    char uuid[33], vname[128], lname[128], jname[512];
    uuid_hex(uuid);
    snprintf(vname, sizeof vname, "%s_vocab.txt", uuid);
    snprintf(lname, sizeof lname, "%s_label_ids.csv", uuid);
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
    if (st == MT_OK && nlabels > 0) st = set_fmt(&c2, "model.class_labels.class_labels_file", "'nemo:%s'", lname);
    if (st == MT_OK && nlabels == 0) st = mt_config_set(&c2, "model.class_labels.class_labels_file", "null");
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
        if (nlabels > 0) m[n++] = (member){lname, labtxt, llen, NULL};
        m[n++] = (member){jname, json, jlen, NULL};
        st = write_archive(path, m, n);
    }
    if (c2_init) mt_config_free(&c2);
    free(vocab);
    free(yaml);
    free(json);
    free(labtxt);
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

// Reads every regular member into memory, except the weights member `weights_member`
// (model_weights.ckpt, or mp_rank_XX/model_weights.ckpt), which is streamed into `weights_file` (a
// path in our private folder; NULL keeps it in memory too). Other ranks' weights shards
// (mp_rank_XX/model_weights.ckpt) are skipped: only their names are kept, with no data.
// weights_member NULL streams every weights member: model_weights.ckpt into weights_file and
// mp_rank_XX/model_weights.ckpt into weights_file.XX (for resharding).
static mt_status read_members_as(const char *path, const char *weights_member, const char *weights_file,
                                 nmembers *out);
static mt_status read_members_as(const char *path, const char *weights_member, const char *weights_file,
                                 nmembers *out) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) return mt_fail(MT_ERR_IO, "%s: cannot open the .nemo: %s", path, strerror(errno));
    struct archive *a = archive_read_new();
    if (!a) return MT_ERR_NOMEM;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
    mt_status st = MT_OK;
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        FILE *probe = fopen(path, "rb");
        unsigned char magic[2] = {0, 0};
        if (probe) {
            if (fread(magic, 1, 2, probe) != 2) magic[0] = 0;
            fclose(probe);
        }
        if (magic[0] == 'P' && magic[1] == 'K')
            st = mt_fail(MT_ERR_FORMAT, "%s is a torch/zip file (a training .ckpt?), not a .nemo: resume training "
                         "from a .ckpt with trainer.resume_from_checkpoint=%s", path, path);
        else
            st = mt_fail(MT_ERR_FORMAT, "%s: not a .nemo (gzip tar): %s", path, archive_error_string(a));
        archive_read_free(a);
        return st;
    }
    struct archive_entry *e;
    int r;
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
        int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        int srank = shard_rank(name);
        int other_shard = srank >= 0 && weights_member && strcmp(name, weights_member);
        int stream = weights_file && (weights_member ? !strcmp(name, weights_member)
                                                     : srank >= 0 || !strcmp(name, "model_weights.ckpt"));
        char wf[700];
        if (stream && !weights_member && srank >= 0) snprintf(wf, sizeof wf, "%s.%02d", weights_file, srank);
        else if (stream) snprintf(wf, sizeof wf, "%s", weights_file);
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
            out->m = nm;
            out->m[out->n].name = mt_strdup(name);
            out->m[out->n].data = NULL;
            out->m[out->n].len = (size_t)total;
            if (!out->m[out->n].name) { st = MT_ERR_NOMEM; break; }
            out->n++;
            continue;
        }
        if (other_shard && weights_file) { // another tensor-parallel rank's weights: name only
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
        size_t nlen = strlen(name);
        const int64_t limit = nlen >= 5 && !strcmp(name + nlen - 5, ".ckpt") ? MEMBER_MAX : SMALL_MEMBER_MAX;
        if (size > limit) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is larger than %lld MiB", path, name,
                         (long long)(limit >> 20));
            break;
        }
        // the header's size is a claim: start small and grow as bytes actually arrive, so a forged
        // size cannot make us reserve gigabytes
        size_t cap = size >= 0 && size < (1 << 26) ? (size_t)size + 1 : 1 << 16, len = 0;
        char *buf = mt_malloc(cap);
        if (!buf) { st = MT_ERR_NOMEM; break; }
        for (;;) {
            if (len == cap) {
                if (cap > (size_t)limit) {
                    st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is larger than %lld MiB", path, name,
                                 (long long)(limit >> 20));
                    break;
                }
                char *nb = mt_realloc(buf, cap * 2);
                if (!nb) { st = MT_ERR_NOMEM; break; }
                buf = nb;
                cap *= 2;
            }
            la_ssize_t got = archive_read_data(a, buf + len, cap - len);
            if (got < 0) {
                st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is corrupt or truncated: %s", path, name,
                             archive_error_string(a));
                break;
            }
            if (got == 0) break;
            len += (size_t)got;
        }
        if (st == MT_OK && size >= 0 && (int64_t)len != size)
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is truncated (%zu of %lld bytes)", path, name, len, (long long)size);
        if (st == MT_OK) {
            // members are also read as text (YAML, JSON): keep a NUL after the bytes
            char *nb = len < cap ? buf : mt_realloc(buf, len + 1);
            if (!nb) st = MT_ERR_NOMEM;
            else { buf = nb; buf[len] = 0; }
        }
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
static mt_status load_resharded(char *const *files, int T, int sharded, mt_model *m, const char *nemo) {
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
// shards are resharded when they differ); without a launcher, one process.
static mt_status restore_parallel(mt_parallel **par) {
    MT_TRY(mt_parallel_create(mt_parallel_launched_size(), par));
    if ((*par)->world_size > 1) mt_log_set_rank((*par)->world_rank);
    return MT_OK;
}

mt_status mt_nemo_load_weights(const char *path, mt_model *m) {
    char tmpdir[512] = "";
    MT_TRY(make_tmpdir(tmpdir, sizeof tmpdir));
    char wp[600];
    snprintf(wp, sizeof wp, "%s/model_weights.ckpt", tmpdir);
    nmembers ms;
    mt_status st = read_members_as(path, NULL, wp, &ms);
    if (st != MT_OK) {
        remove_tree_flat(tmpdir);
        return st;
    }
    st = check_shards(&ms, path);
    const int T = archive_tp(&ms), sharded = archive_sharded(&ms);
    const nmember *w = st == MT_OK ? find_member(&ms, sharded ? "mp_rank_00/model_weights.ckpt" : "model_weights.ckpt") : NULL;
    if (st == MT_OK && !w) st = mt_fail(MT_ERR_FORMAT, "%s: no model_weights.ckpt member", path);
    if (st == MT_OK && (sharded || mt_model_get_config(m)->tp_size > 1)) {
        // a tensor-parallel .nemo and/or model: reshard (strict; NeMo's key names)
        char **files = shard_files(wp, T, sharded);
        st = files ? load_resharded(files, T, sharded, m, path) : MT_ERR_NOMEM;
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

// Rows of the head's last layer weight = the number of classes the .nemo was trained with.
static mt_status head_classes(const char *wpath, const char *prefix, int layers, int *ncls) {
    mt_torch_file *tf = NULL;
    MT_TRY(mt_torch_open(wpath, &tf));
    mt_flat f = {0};
    mt_status st = mt_flatten(mt_torch_root(tf), "", &f);
    char key[160];
    snprintf(key, sizeof key, "%s.mlp.layer%d.weight", prefix, 2 * (layers - 1));
    const mt_ckpt_tensor *t = st == MT_OK ? mt_flat_find(&f, key) : NULL;
    if (!t) {
        snprintf(key, sizeof key, "state_dict.%s.mlp.layer%d.weight", prefix, 2 * (layers - 1));
        t = st == MT_OK ? mt_flat_find(&f, key) : NULL;
    }
    if (st == MT_OK && (!t || t->ndim != 2))
        st = mt_fail(MT_ERR_FORMAT, "model_weights.ckpt: no 2-D '%s.mlp.layer%d.weight' (the config's head has %d "
                     "layer(s))", prefix, 2 * (layers - 1), layers);
    if (st == MT_OK) *ncls = (int)t->shape[0];
    mt_flat_free(&f);
    mt_torch_close(tf);
    return st;
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
    char wp[600];
    snprintf(wp, sizeof wp, "%s/model_weights.ckpt", n->tmpdir);
    if (st == MT_OK) st = restore_parallel(&n->par);
    if (st == MT_OK) st = read_members_as(path, NULL, wp, &ms);
    if (st == MT_OK) st = check_shards(&ms, path);
    if (st == MT_OK) n->s.tp = n->par->tp;
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
    mt_session *s = &n->s;
    if (st == MT_OK) st = mt_session_task_options(&n->cfg, &s->topt);
    // vocab -> a private file, then the tokenizer with the preset's (or the config's) casing
    const nmember *mv = st == MT_OK ? artifact(&ms, n->cfg.model.tokenizer.vocab_file, path, "tokenizer.vocab_file", &st) : NULL;
    if (st == MT_OK && !mv) {
        for (int i = 0; i < ms.n; i++) {
            size_t l = strlen(ms.m[i].name);
            if (l >= 9 && !strcmp(ms.m[i].name + l - 9, "vocab.txt")) mv = &ms.m[i];
        }
        if (!mv) st = mt_fail(MT_ERR_FORMAT, "%s: no vocab member (tokenizer.vocab_file is null)", path);
    }
    if (st == MT_OK) {
        snprintf(s->vocab_path, sizeof s->vocab_path, "%s/vocab.txt", n->tmpdir);
        st = write_file(s->vocab_path, mv->data, mv->len);
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
        snprintf(lp, sizeof lp, "%s/label_ids.csv", n->tmpdir);
        st = write_file(lp, ml->data, ml->len);
        if (st == MT_OK) snprintf(s->topt.label_ids_file, sizeof s->topt.label_ids_file, "%s", lp);
    }
    if (st == MT_OK && s->topt.kind == MT_TASK_TOKEN_CLASSIFICATION && !ml)
        st = mt_fail(MT_ERR_FORMAT, "%s: a token-classification model without its label map (label_ids.csv)", path);
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
        st = head_classes(files[0], prefix, layers, &ncls); // the head is replicated: any shard has it
        // A NeMo-written .nemo describes the encoder only in its config_file member; megatune's
        // also writes the full model.language_model.config block, which then decides.
        const char *cf = n->cfg.model.language_model.config_file;
        if (st == MT_OK && cf && !mt_config_is_set(&n->cfg, "model.language_model.config.hidden_size")) {
            const nmember *mj = artifact(&ms, cf, path, "language_model.config_file", &st);
            if (mj) s->config_json = mj->data;
        }
        if (st == MT_OK) st = mt_session_build_model(&n->cfg, s, head, ncls);
        s->config_json = NULL;
        if (st == MT_OK && T == n->par->tp_size) {
            st = mt_state_dict_load_model(files[n->par->tp_rank], s->model, 1);
            if (st != MT_OK) st = member_error(st, path, files[n->par->tp_rank], sharded, n->par->tp_rank);
        } else if (st == MT_OK) {
            // written at another tensor-parallel size: merge / split the shards
            st = load_resharded(files, T, sharded, s->model, path);
            if (st == MT_OK)
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
