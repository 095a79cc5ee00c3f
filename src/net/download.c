#include "net/download.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/source.h"
#include "core/file.h"
#include "core/log.h"
#include "model/config.h"
#include "model/params.h"
#include "net/http.h"

int mt_download_offline(void) {
    const char *v = getenv("MEGATUNE_OFFLINE");
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

mt_status mt_download_address(const char *url, char *out, size_t cap) {
    const char *m = getenv("MEGATUNE_DOWNLOAD_MIRROR");
    if (!m || !*m) {
        if ((size_t)snprintf(out, cap, "%s", url) >= cap) return mt_fail(MT_ERR_INVALID, "%s: address too long", url);
        return MT_OK;
    }
    int scheme_ok = !strncmp(m, "http://", 7) || !strncmp(m, "https://", 8);
    const char *host = scheme_ok ? strstr(m, "://") + 3 : NULL;
    const char *slash = host ? strchr(host, '/') : NULL;
    if (!scheme_ok || !*host || *host == '/' || (slash && slash[strspn(slash, "/")]))
        return mt_fail(MT_ERR_INVALID, "MEGATUNE_DOWNLOAD_MIRROR=%s: give only a scheme and a host, e.g. "
                       "http://mirror.example:8080 (every address keeps its path)", m);
    size_t ml = strlen(m);
    while (ml && m[ml - 1] == '/') ml--;
    const char *us = strstr(url, "://");
    const char *path = us ? strchr(us + 3, '/') : NULL;
    if ((size_t)snprintf(out, cap, "%.*s%s", (int)ml, m, path ? path : "/") >= cap)
        return mt_fail(MT_ERR_INVALID, "%s: address too long", url);
    return MT_OK;
}

mt_status mt_download_check_vocab(const mt_pretrained_info *p, const char *path, const char *what) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    mt_status st = mt_read_all(f, 64u << 20, &buf, &len);
    fclose(f);
    if (st == MT_ERR_FORMAT) return mt_fail(MT_ERR_FORMAT, "%s: over 64 MiB, which no vocab file is", what);
    if (st != MT_OK) return st == MT_ERR_NOMEM ? st : mt_fail(MT_ERR_IO, "%s: read error", path);
    char first[64];
    size_t fl = strcspn(buf, "\r\n");
    snprintf(first, sizeof first, "%.*s", (int)(fl < 60 ? fl : 60), buf);
    size_t lines = 0;
    int nul = memchr(buf, 0, len) != NULL;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    if (len && buf[len - 1] != '\n') lines++;
    static const char *special[] = {"[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    const char *absent = NULL;
    for (size_t i = 0; i < 4 && !absent; i++) {
        char want[16];
        int n = snprintf(want, sizeof want, "\n%s\n", special[i]);
        // a token on the first line has no newline before it
        if (!strstr(buf, want) && strncmp(buf, want + 1, (size_t)n - 1)) absent = special[i];
    }
    free(buf);
    const char *s = first + strspn(first, " \t");
    if (!len) return mt_fail(MT_ERR_FORMAT, "%s: the file received is empty, not a vocab", what);
    if (*s == '<')
        return mt_fail(MT_ERR_FORMAT, "%s: the file received is an HTML/XML page, not a vocab (first line '%s')", what,
                       first);
    if (nul) return mt_fail(MT_ERR_FORMAT, "%s: the file received holds NUL bytes: binary data, not a vocab", what);
    if (p->vocab_size > 0 && lines != (size_t)p->vocab_size)
        return mt_fail(MT_ERR_FORMAT, "%s: the file received has %zu lines; the vocab of '%s' has %d (first line '%s')",
                       what, lines, p->name, p->vocab_size, first);
    if (absent)
        return mt_fail(MT_ERR_FORMAT, "%s: the file received has no '%s' line, so it is not a BERT vocab (first line '%s')",
                       what, absent, first);
    return MT_OK;
}

mt_status mt_download_check_checkpoint(const mt_pretrained_info *p, const char *path, const char *what) {
    if (!p->has_architecture) return MT_OK;
    mt_model_config cfg;
    if (p->megatron) mt_model_config_defaults(&cfg);
    else mt_model_config_bert_defaults(&cfg);
    cfg.hidden_size = p->hidden_size;
    cfg.num_layers = p->num_layers;
    cfg.num_attention_heads = p->num_attention_heads;
    cfg.max_position_embeddings = p->max_position_embeddings;
    cfg.ffn_hidden_size = p->ffn_hidden_size;
    cfg.num_tokentypes = p->num_tokentypes;
    cfg.vocab_size = p->vocab_size > 0 ? p->vocab_size : 128;
    cfg.tp_size = 1;
    cfg.tp_rank = 0;
    MT_TRY(mt_model_config_finalize(&cfg));
    mt_param_table tab;
    MT_TRY(mt_param_table_build(&cfg, &tab));
    mt_ckpt_src *src = NULL;
    mt_status st = mt_ckpt_src_open(path, NULL, &src);
    if (st != MT_OK) {
        mt_param_table_free(&tab);
        return mt_fail_context(MT_ERR_FORMAT, "%s: the file received does not open as a torch checkpoint", what);
    }
    for (int i = 0; i < tab.count && st == MT_OK; i++) {
        const mt_param *pp = &tab.params[i];
        const char *name = mt_param_megatron_name(pp);
        if (!name) continue;
        const mt_vtensor *v = mt_ckpt_src_find(src, name);
        if (!v) {
            st = mt_fail(MT_ERR_FORMAT, "%s: the checkpoint received has no tensor '%s', so it is not the %s model",
                         what, name, p->name);
            break;
        }
        int ok;
        if (pp->role == MT_ROLE_WORD_EMB)
            ok = v->cols == pp->global_shape[1] && v->rows >= (p->vocab_size > 0 ? p->vocab_size : 1);
        else ok = v->rows == pp->global_shape[0] && (pp->ndim == 1 || v->cols == pp->global_shape[1]);
        if (!ok)
            st = mt_fail(MT_ERR_FORMAT, "%s: tensor '%s' is [%lld, %lld] in the checkpoint received; %s has [%lld, %lld]",
                         what, name, (long long)v->rows, (long long)v->cols, p->name,
                         (long long)(pp->role == MT_ROLE_WORD_EMB ? p->vocab_size : pp->global_shape[0]),
                         (long long)pp->global_shape[1]);
    }
    mt_ckpt_src_free(src);
    mt_param_table_free(&tab);
    return st;
}

// mkdir -p for the model directory and <dir>/<name>; *made_leaf says whether the last one is new.
static mt_status make_dirs(const char *file, int *made_leaf) {
    char d[4200];
    snprintf(d, sizeof d, "%s", file);
    char *slash = strrchr(d, '/');
    if (!slash) return MT_OK;
    *slash = 0;
    *made_leaf = 0;
    for (char *q = d + 1;; q++) {
        int end = *q == 0;
        if (*q == '/' || end) {
            char c = *q;
            *q = 0;
            if (mkdir(d, 0755) == 0) {
                if (end) *made_leaf = 1;
            } else if (errno != EEXIST) {
                return mt_fail(MT_ERR_IO, "%s: cannot create the folder: %s (set MEGATUNE_MODEL_DIR to a writable "
                               "folder)", d, strerror(errno));
            }
            *q = c;
            if (end) break;
        }
    }
    return MT_OK;
}

// An exclusive flock on <target>.lock. The holder unlinks the file before closing it, so a waiter
// that wakes up holding a lock on an unlinked inode tries again on the new file.
static mt_status lock_acquire(const char *lock, const char *label, int *fd_out) {
    for (int waited = 0;;) {
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return mt_fail(MT_ERR_IO, "%s: cannot create the lock file: %s", lock, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK) {
                int e = errno;
                close(fd);
                return mt_fail(MT_ERR_IO, "%s: cannot lock: %s", lock, strerror(e));
            }
            if (!waited++) mt_info("download %s: another megatune process is fetching it; waiting", label);
            while (flock(fd, LOCK_EX) != 0) {
                if (errno != EINTR) {
                    int e = errno;
                    close(fd);
                    return mt_fail(MT_ERR_IO, "%s: cannot lock: %s", lock, strerror(e));
                }
            }
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lock, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            *fd_out = fd;
            return MT_OK;
        }
        close(fd);
    }
}

static void lock_release(const char *lock, int fd) {
    unlink(lock);
    close(fd);
}

static int is_regular(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}


// One file: lock, look again, try each address, check, rename.
static mt_status fetch_one(const mt_pretrained_info *p, mt_pretrained_file which, const char *path) {
    const char *file = which == MT_PRETRAINED_VOCAB ? p->vocab_file : p->checkpoint_file;
    const char *urls[2] = {which == MT_PRETRAINED_VOCAB ? p->vocab_url : p->checkpoint_url,
                           which == MT_PRETRAINED_VOCAB ? p->vocab_url_alt : NULL};
    char label[256], lock[4300], part[4300];
    snprintf(label, sizeof label, "%s/%s", p->name, file);
    MT_TRY(mt_path_fmt(lock, sizeof lock, "%s.lock", path));
    MT_TRY(mt_path_fmt(part, sizeof part, "%s.part", path));
    int made_dir = 0, fd = -1;
    MT_TRY(make_dirs(path, &made_dir));
    mt_status st = lock_acquire(lock, label, &fd);
    if (st != MT_OK) return st;
    if (is_regular(path)) { // another process finished it while this one waited
        lock_release(lock, fd);
        return MT_OK;
    }
    char errs[2048] = "";
    st = MT_ERR_IO;
    for (int u = 0; u < 2 && urls[u] && st != MT_OK; u++) {
        char addr[2048];
        st = mt_download_address(urls[u], addr, sizeof addr);
        if (st != MT_OK) break;
        mt_info("download %s from %s", label, addr);
        mt_http_opts ho;
        mt_http_opts_default(&ho, label);
        int64_t bytes = 0;
        st = mt_http_download(addr, part, &ho, &bytes);
        if (st == MT_OK)
            st = which == MT_PRETRAINED_VOCAB ? mt_download_check_vocab(p, part, addr)
                                               : mt_download_check_checkpoint(p, part, addr);
        if (st == MT_OK && rename(part, path) != 0)
            st = mt_fail(MT_ERR_IO, "%s: cannot rename the finished download into place: %s", path, strerror(errno));
        if (st == MT_OK) {
            mt_fsync_dir_of(path);
            mt_info("download %s: %lld bytes checked and saved as %s", label, (long long)bytes, path);
            break;
        }
        size_t used = strlen(errs);
        snprintf(errs + used, sizeof errs - used, "%s%s", used ? "; then " : "", mt_last_error());
        unlink(part);
    }
    lock_release(lock, fd);
    if (st != MT_OK) {
        if (made_dir) {
            char d[4200];
            snprintf(d, sizeof d, "%s", path);
            char *slash = strrchr(d, '/');
            if (slash) *slash = 0;
            rmdir(d); // only when empty: another file may have arrived meanwhile
        }
        return mt_fail(MT_ERR_IO, "%s", errs[0] ? errs : mt_last_error());
    }
    return MT_OK;
}

mt_status mt_download_preset(const mt_pretrained_info *p, unsigned which, int offline) {
    char msg[8192] = "";
    int problems = 0, no_source = 0;
    for (int w = 0; w < 2; w++) {
        if (!(which & (1u << w))) continue;
        mt_pretrained_file f = (mt_pretrained_file)w;
        if (f == MT_PRETRAINED_CHECKPOINT && !p->checkpoint_file) continue;
        char path[4200], nemo[4200];
        int r = mt_pretrained_locate(p, f, path, sizeof path, nemo, sizeof nemo);
        if (r < 0) return MT_ERR_INVALID;
        if (r > 0) continue;
        const char *url = f == MT_PRETRAINED_VOCAB ? p->vocab_url : p->checkpoint_url;
        if (offline || !url) {
            problems += mt_pretrained_describe_missing(p, 1u << w, msg, sizeof msg);
            no_source += !url;
            continue;
        }
        if (fetch_one(p, f, path) != MT_OK) {
            size_t used = strlen(msg);
            snprintf(msg + used, sizeof msg - used, "\n  %s: %s", path, mt_last_error());
            problems++;
        }
    }
    if (!problems) return MT_OK;
    if (offline)
        return mt_fail(MT_ERR_NOT_FOUND, "pretrained model '%s': %d file%s missing and offline mode (--offline or "
                       "MEGATUNE_OFFLINE=1) forbids downloading:%s\nRun again without offline mode, or save each file "
                       "at the path shown.", p->name, problems, problems > 1 ? "s are" : " is", msg);
    return mt_fail(no_source == problems ? MT_ERR_NOT_FOUND : MT_ERR_IO,
                   "pretrained model '%s': %d file%s could not be fetched (nothing was left in the model directory):%s\n"
                   "Run again to retry (an interrupted transfer resumes), point MEGATUNE_DOWNLOAD_MIRROR=http://host:port "
                   "at a mirror, or save each file at the path shown.", p->name, problems, problems > 1 ? "s" : "", msg);
}
