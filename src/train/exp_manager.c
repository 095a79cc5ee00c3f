#include "train/exp_manager.h"
#include "core/file.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "train/tensorboard.h"

#define PATH_CAP 4096

typedef struct {
    char *path;
    double score;
} topk_entry;

struct mt_exp_manager {
    char log_dir[PATH_CAP], ckpt_dir[PATH_CAP];
    char name[256], monitor[128];
    char *resume_path;
    char *resume_older; // the second newest *last.ckpt of find_resume (a kill left two), or NULL
    int resume_found;   // resume_path was found in ckpt_dir (not given by resume_from_checkpoint)
    mt_comm *ckpt_sync; // the tensor-parallel writers of one checkpoint (TP > 1), else NULL
    int rank0;
    FILE *log_file;
    FILE *csv;
    int n_metrics;
    mt_tb_writer *tb;
    char **metric_tags; // "val_<name>"
    topk_entry *topk;
    int ntopk;
    char *last_path;
    int64_t save_top_k;
    int mode_max, save_last, checkpoints_on, tensorboard_on;
    // checkpoint_callback_params.filename (Lightning's template) and the .nemo's prefix + postfix
    char filename[512], nemo_name[512];
    // the metrics of the last validation, for {name} fields of the template
    struct { char name[64]; double value; } metric[20];
    int nmetric;
    int64_t step;
    int new_best; // the last save ranked first among the kept checkpoints
    FILE *err_file, *pl_file; // nemo_error_log.txt, lightning_logs.txt (global rank 0)
    // What a failed setup removes: the log folder when this run created it, and the empty
    // parents it created (up to created_top).
    int probed, log_dir_existed, ckpt_dir_existed;
    char created_top[PATH_CAP];
};

// lightning_logs.txt: what PyTorch Lightning's logger writes (device summary, ModelCheckpoint).
static void pl_log(mt_exp_manager *e, const char *fmt, ...) MT_PRINTF(2, 3);
static void pl_log(mt_exp_manager *e, const char *fmt, ...) {
    if (!e->pl_file) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->pl_file, fmt, ap);
    va_end(ap);
    fputc('\n', e->pl_file);
    fflush(e->pl_file);
}

static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// Records which part of `log_dir` does not exist yet (so a failed setup can take it back).
static void probe_created(mt_exp_manager *e) {
    if (e->probed) return;
    e->probed = 1;
    e->log_dir_existed = path_exists(e->log_dir);
    e->created_top[0] = 0;
    if (e->log_dir_existed) return;
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s", e->log_dir);
    snprintf(e->created_top, sizeof e->created_top, "%s", p);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) break;
        *slash = 0;
        if (!*p || path_exists(p)) break;
        snprintf(e->created_top, sizeof e->created_top, "%s", p);
    }
}

// ---------------------------------------------------------------------------------------------
// files

mt_status mt_mkdirs(const char *path) {
    char buf[PATH_CAP];
    if (strlen(path) >= sizeof buf) return mt_fail(MT_ERR_INVALID, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mt_fail(MT_ERR_IO, "%s: cannot create the folder: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return mt_fail(MT_ERR_IO, "%s: cannot create the folder: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return mt_fail(MT_ERR_IO, "%s: exists and is not a folder", buf);
    return MT_OK;
}

mt_status mt_write_file_atomic(const char *path, const void *data, size_t len) {
    char tmp[PATH_CAP + 16];
    MT_TRY(mt_path_fmt(tmp, sizeof tmp, "%s.tmp", path));
    MT_TRY(mt_write_synced(tmp, data, len));
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return mt_fail(MT_ERR_IO, "%s: cannot rename into place: %s", path, strerror(err));
    }
    mt_fsync_dir_of(path);
    return MT_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// ---------------------------------------------------------------------------------------------
// names

void mt_exp_checkpoint_stem(const char *name, const char *monitor, double value, int64_t epoch, char *buf,
                            size_t cap) {
    snprintf(buf, cap, "%s--%s=%.4f-epoch=%lld", name, monitor, value, (long long)epoch);
}

// One {field[:spec]} of a Lightning filename template, Python's format spec in a C printf:
// [0][width][.precision][type], type f/e/g/d or none. Returns snprintf's count: the text's whole
// length, which can exceed `cap` ({val_loss:.4f} of a diverged 1e300 is 306 characters).
static int format_field(char *out, size_t cap, const char *spec, double v, int is_int) {
    char fmt[32];
    int zero = 0, width = 0, prec = -1;
    char type = 0;
    const char *p = spec;
    if (*p == '0') { zero = 1; p++; }
    while (isdigit((unsigned char)*p)) width = width * 10 + (*p++ - '0');
    if (*p == '.') {
        prec = 0;
        for (p++; isdigit((unsigned char)*p); p++) prec = prec * 10 + (*p - '0');
    }
    if (*p && strchr("fFeEgGd", *p)) type = *p;
    if (width > 64) width = 64;
    if (prec > 17) prec = 17;
    if ((type == 'd' || (!type && is_int)) && is_int) {
        snprintf(fmt, sizeof fmt, "%%%s%dlld", zero ? "0" : "", width);
        return snprintf(out, cap, fmt, (long long)v);
    }
    if (!type) { // Python's str(float): the shortest text that reads back
        int n = 0;
        for (int pr = 1; pr <= 17; pr++) {
            n = snprintf(out, cap, "%.*g", pr, v);
            if (n < 0 || (size_t)n >= cap || strtod(out, NULL) == v) break;
        }
        return n;
    }
    if (type == 'd') type = 'f', prec = 0;
    if (prec < 0) prec = 6;
    snprintf(fmt, sizeof fmt, "%%%s%d.%d%c", zero ? "0" : "", width, prec, type);
    return snprintf(out, cap, fmt, v);
}

// Lightning's ModelCheckpoint.format_checkpoint_name: "{val_loss:.2f}-{epoch}" becomes
// "val_loss=0.35-epoch=2"; a metric that was not logged reads 0, as in Lightning.
// A name that does not fit `cap` is an error, not a shorter name (another file).
static mt_status format_template(const mt_exp_manager *e, const char *tmpl, double monitor_value, int64_t epoch,
                                 char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            if (n + 1 >= cap) break;
            buf[n++] = *p++;
            buf[n] = 0;
            continue;
        }
        char field[128], spec[32] = "";
        size_t fl = (size_t)(close - p - 1);
        if (fl >= sizeof field) fl = sizeof field - 1;
        memcpy(field, p + 1, fl);
        field[fl] = 0;
        char *colon = strchr(field, ':');
        if (colon) {
            snprintf(spec, sizeof spec, "%s", colon + 1);
            *colon = 0;
        }
        double v = 0;
        int is_int = 0;
        if (!strcmp(field, "epoch")) v = (double)epoch, is_int = 1;
        else if (!strcmp(field, "step")) v = (double)(e->step >= 0 ? e->step : 0), is_int = 1;
        else if (!strcmp(field, e->monitor)) v = monitor_value;
        else
            for (int i = 0; i < e->nmetric; i++) // {val_f1} names the metric f1 as well as val_f1
                if (!strcmp(field, e->metric[i].name) ||
                    (!strncmp(field, "val_", 4) && !strcmp(field + 4, e->metric[i].name)))
                    v = e->metric[i].value;
        // a field is part of one file name: one longer than the file system takes is an error, not a
        // cut value (another name, which resume and top-k would misread)
        char val[NAME_MAX + 1];
        int fw = format_field(val, sizeof val, spec, v, is_int);
        if (fw < 0 || (size_t)fw >= sizeof val) {
            buf[0] = 0;
            return mt_fail(MT_ERR_INVALID, "exp_manager.checkpoint_callback_params.filename: {%s%s%s} of %g is %d "
                           "characters, more than a file name holds (%d): a diverged value? use an exponent format "
                           "such as {%s:.4e}", field, spec[0] ? ":" : "", spec, v, fw, NAME_MAX, field);
        }
        int w = snprintf(buf + n, cap - n, "%s=%s", field, val);
        if (w < 0 || (size_t)w >= cap - n) { n = cap; break; }
        n += (size_t)w;
        p = close + 1;
        if (!*p) return MT_OK;
    }
    if (n + 1 < cap) return MT_OK;
    buf[0] = 0;
    return mt_fail(MT_ERR_INVALID, "exp_manager.checkpoint_callback_params.filename '%.60s...' gives a checkpoint name "
                   "longer than %zu bytes: use a shorter template or exp_manager.name", tmpl, cap - 1);
}

// A ranked checkpoint of this run's template: "<literal start>...<monitor>=<value>..." ending in
// .ckpt, not -last (NeMo v1.4's nemo_topk_check_previous_run reads the value the same way).
static int parse_topk_name(const char *file, const char *tmpl, const char *monitor, double *value) {
    size_t lit = strcspn(tmpl, "{");
    if (strncmp(file, tmpl, lit) || !ends_with(file, ".ckpt") || ends_with(file, "-last.ckpt")) return 0;
    char key[160];
    snprintf(key, sizeof key, "%s=", monitor);
    const char *at = strstr(file + lit, key);
    if (!at) return 0;
    char *end;
    double v = strtod(at + strlen(key), &end);
    if (end == at + strlen(key)) return 0;
    *value = v;
    return 1;
}

void mt_exp_note_metrics(mt_exp_manager *e, int64_t step, double val_loss, const char *const *names,
                         const double *values, int n) {
    e->step = step;
    e->nmetric = 0;
    snprintf(e->metric[e->nmetric].name, sizeof e->metric[0].name, "val_loss");
    e->metric[e->nmetric++].value = val_loss;
    for (int i = 0; i < n && e->nmetric < (int)(sizeof e->metric / sizeof e->metric[0]); i++) {
        snprintf(e->metric[e->nmetric].name, sizeof e->metric[0].name, "%s", names[i]);
        e->metric[e->nmetric++].value = values[i];
    }
}

const char *mt_exp_nemo_name(const mt_exp_manager *e) { return e->nemo_name; }
int mt_exp_new_best(const mt_exp_manager *e) { return e->new_best; }

// ---------------------------------------------------------------------------------------------
// create

static mt_status next_version(const char *base, char *out, size_t cap) {
    int best = -1;
    DIR *d = opendir(base);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            int v;
            char tail;
            if (sscanf(e->d_name, "version_%d%c", &v, &tail) == 1 && v > best) best = v;
        }
        closedir(d);
    }
    snprintf(out, cap, "version_%d", best + 1);
    return MT_OK;
}

// NeMo check_resume: exactly one *last.ckpt (we take the newest when a kill left two, see below).
static mt_status find_resume(mt_exp_manager *e, const mt_train_config *cfg) {
    DIR *d = opendir(e->ckpt_dir);
    if (!d) {
        if (cfg->exp_manager.resume_ignore_no_checkpoint) {
            mt_warn("resume_if_exists: there is no checkpoint folder %s; training from scratch "
                    "(resume_ignore_no_checkpoint is true)", e->ckpt_dir);
            return MT_OK;
        }
        return mt_fail(MT_ERR_NOT_FOUND, "resume_if_exists is true but there is no checkpoint folder %s: set "
                       "exp_manager.resume_ignore_no_checkpoint=true to start fresh, or check exp_dir/name",
                       e->ckpt_dir);
    }
    struct dirent *de;
    char *best = NULL, *second = NULL;
    time_t best_t = 0, second_t = 0;
    long best_ns = 0, second_ns = 0;
    int nlast = 0, nend = 0;
    mt_status st = MT_OK;
    while ((de = readdir(d))) {
        if (ends_with(de->d_name, "end.ckpt")) nend++;
        if (!ends_with(de->d_name, "last.ckpt")) continue;
        char p[PATH_CAP * 2];
        if ((st = mt_path_join(p, sizeof p, e->ckpt_dir, de->d_name)) != MT_OK) break;
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        nlast++;
        if (!best || sb.st_mtim.tv_sec > best_t || (sb.st_mtim.tv_sec == best_t && sb.st_mtim.tv_nsec > best_ns)) {
            free(second);
            second = best;
            second_t = best_t;
            second_ns = best_ns;
            best = mt_strdup(p);
            best_t = sb.st_mtim.tv_sec;
            best_ns = sb.st_mtim.tv_nsec;
            if (!best) { st = MT_ERR_NOMEM; break; }
        } else if (!second || sb.st_mtim.tv_sec > second_t ||
                   (sb.st_mtim.tv_sec == second_t && sb.st_mtim.tv_nsec > second_ns)) {
            free(second);
            second = mt_strdup(p);
            second_t = sb.st_mtim.tv_sec;
            second_ns = sb.st_mtim.tv_nsec;
            if (!second) { st = MT_ERR_NOMEM; break; }
        }
    }
    closedir(d);
    if (st != MT_OK) {
        free(best);
        free(second);
        return st;
    }
    if (nend && !cfg->exp_manager.resume_past_end) {
        free(best);
        free(second);
        return mt_fail(MT_ERR_INVALID, "%s holds an *end.ckpt: that run finished; set "
                       "exp_manager.resume_past_end=true to continue it", e->ckpt_dir);
    }
    if (!best) {
        if (cfg->exp_manager.resume_ignore_no_checkpoint) {
            mt_warn("resume_if_exists: no *last.ckpt in %s; training from scratch", e->ckpt_dir);
            return MT_OK;
        }
        return mt_fail(MT_ERR_NOT_FOUND, "resume_if_exists is true but %s has no *last.ckpt: set "
                       "exp_manager.resume_ignore_no_checkpoint=true to start fresh", e->ckpt_dir);
    }
    // Two -last files only exist when a run was killed between writing the new one and
    // deleting the old one; the newer is complete (it was renamed into place).
    if (nlast > 1) mt_warn("%s holds %d *last.ckpt files; resuming from the newest, %s", e->ckpt_dir, nlast, best);
    e->resume_path = best;
    e->resume_older = second;
    e->resume_found = 1;
    return MT_OK;
}

static mt_status rebuild_topk(mt_exp_manager *e) {
    DIR *d = opendir(e->ckpt_dir);
    if (!d) return MT_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        double v;
        if (!parse_topk_name(de->d_name, e->filename, e->monitor, &v)) continue;
        topk_entry *nt = mt_realloc(e->topk, (size_t)(e->ntopk + 1) * sizeof *nt);
        if (!nt) { closedir(d); return MT_ERR_NOMEM; }
        e->topk = nt;
        char p[PATH_CAP * 2];
        mt_status ps = mt_path_join(p, sizeof p, e->ckpt_dir, de->d_name);
        if (ps != MT_OK) { closedir(d); return ps; }
        e->topk[e->ntopk].path = mt_strdup(p);
        e->topk[e->ntopk].score = v;
        if (!e->topk[e->ntopk].path) { closedir(d); return MT_ERR_NOMEM; }
        e->ntopk++;
    }
    closedir(d);
    // Remember the newest -last file so the next save replaces it. Not a file given by
    // trainer.resume_from_checkpoint: that may be another run's, and is not ours to delete.
    if (e->resume_path && e->resume_found && !e->last_path) {
        e->last_path = mt_strdup(e->resume_path);
        if (!e->last_path) return MT_ERR_NOMEM;
    }
    return MT_OK;
}

// A kill -9 during a write leaves its temporary file (<name>.ckpt.tmp, <name>.nemo.tmp; never a
// partial file under the final name, see mt_write_file_atomic). Nothing reads them; they are
// removed when the folder is next used so they do not pile up.
static void remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".ckpt.tmp") && !ends_with(de->d_name, ".nemo.tmp")) continue;
        char p[PATH_CAP * 2];
        if (mt_path_join(p, sizeof p, dir, de->d_name) != MT_OK) continue;
        if (unlink(p) == 0) mt_info("removed %s, left by an interrupted write", p);
    }
    closedir(d);
}

// NeMo moves the previous run's loose files into run_<k>/ when resuming.
static mt_status move_previous_run(mt_exp_manager *e) {
    int k = 0;
    char dst[PATH_CAP + 32];
    for (;; k++) {
        MT_TRY(mt_path_fmt(dst, sizeof dst, "%s/run_%d", e->log_dir, k));
        if (!is_dir(dst)) break;
    }
    DIR *d = opendir(e->log_dir);
    if (!d) return MT_OK;
    struct dirent *de;
    int made = 0;
    mt_status st = MT_OK;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, "metrics.csv") || de->d_name[0] == '.') continue;
        char src[PATH_CAP * 2];
        if ((st = mt_path_join(src, sizeof src, e->log_dir, de->d_name)) != MT_OK) break;
        struct stat sb;
        if (lstat(src, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (!made) {
            st = mt_mkdirs(dst);
            if (st != MT_OK) break;
            made = 1;
        }
        char to[PATH_CAP * 3];
        if ((st = mt_path_join(to, sizeof to, dst, de->d_name)) != MT_OK) break;
        if (rename(src, to) != 0) {
            st = mt_fail(MT_ERR_IO, "%s: cannot move to %s: %s", src, to, strerror(errno));
            break;
        }
    }
    closedir(d);
    return st;
}

// Output of a git command run in the working directory (NULL when git or the repository is absent).
static char *run_git(const char *args) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "git %s 2>/dev/null", args);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) {
        pclose(p);
        return NULL;
    }
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, p)) > 0) fwrite(chunk, 1, r, m);
    fclose(m);
    int rc = pclose(p);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

// NeMo's git-info.log: "commit hash: <git rev-parse HEAD>" then `git diff`, when the working
// directory is inside a git repository.
static mt_status write_git_info(mt_exp_manager *e) {
    char *hash = run_git("rev-parse HEAD");
    if (!hash) return MT_OK;
    char *diff = run_git("diff");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    mt_status st = MT_ERR_NOMEM;
    if (m) {
        fprintf(m, "commit hash: %s%s", hash, diff ? diff : "");
        fclose(m);
        char path[PATH_CAP + 32];
        st = mt_path_join(path, sizeof path, e->log_dir, "git-info.log");
        if (st == MT_OK) st = mt_write_file_atomic(path, buf, len);
    }
    free(buf);
    free(hash);
    free(diff);
    return st;
}

mt_status mt_exp_create(const mt_train_config *cfg, int argc, char **argv, int tp_rank, int tp_size,
                        mt_exp_manager **out) {
    mt_parallel p;
    memset(&p, 0, sizeof p);
    p.world_rank = p.local_rank = p.tp_rank = tp_rank;
    p.world_size = p.tp_size = tp_size;
    p.dp_size = 1;
    return mt_exp_create_par(cfg, argc, argv, &p, out);
}

mt_status mt_exp_create_par(const mt_train_config *cfg, int argc, char **argv, const mt_parallel *par,
                            mt_exp_manager **out) {
    *out = NULL;
    const int tp_rank = par->tp_rank, tp_size = par->tp_size;
    mt_comm *world = par->world;
    mt_exp_manager *e = mt_calloc(1, sizeof *e);
    if (!e) return MT_ERR_NOMEM;
    e->rank0 = par->world_rank == 0;
    const char *name = cfg->exp_manager.name ? cfg->exp_manager.name : "default";
    mt_status st = mt_path_fmt(e->name, sizeof e->name, "%s", name);
    if (st == MT_OK) st = mt_path_fmt(e->monitor, sizeof e->monitor, "%s", cfg->exp_manager.checkpoint_callback_params.monitor);
    e->save_top_k = cfg->exp_manager.checkpoint_callback_params.save_top_k;
    e->mode_max = !strcmp(cfg->exp_manager.checkpoint_callback_params.mode, "max");
    e->save_last = cfg->exp_manager.checkpoint_callback_params.save_last;
    e->checkpoints_on = cfg->exp_manager.create_checkpoint_callback;
    e->tensorboard_on = cfg->exp_manager.create_tensorboard_logger;
    e->step = -1;
    {
        const mt_train_config *c = cfg;
        const char *fn = c->exp_manager.checkpoint_callback_params.filename;
        // NeMo's default template (exp_manager.configure_checkpointing, v1.4's :.4f)
        if (st == MT_OK && fn) st = mt_path_fmt(e->filename, sizeof e->filename, "%s", fn);
        else if (st == MT_OK) st = mt_path_fmt(e->filename, sizeof e->filename, "%s--{%s:.4f}-{epoch}", e->name, e->monitor);
        const char *pre = c->exp_manager.checkpoint_callback_params.prefix;
        if (st == MT_OK)
            st = mt_path_fmt(e->nemo_name, sizeof e->nemo_name, "%s%s", pre ? pre : e->name,
                             c->exp_manager.checkpoint_callback_params.postfix);
    }
    if (st != MT_OK) {
        st = mt_fail_context(st, "exp_manager.name / checkpoint_callback_params (monitor, filename, prefix, postfix)");
        goto fail;
    }
    if (strchr(e->name, '/')) {
        st = mt_fail(MT_ERR_INVALID, "exp_manager.name '%s' must not contain '/'", e->name);
        goto fail;
    }
    const char *exp_dir = cfg->exp_manager.exp_dir ? cfg->exp_manager.exp_dir : "./nemo_experiments";
    int resume = cfg->exp_manager.resume_if_exists;
    if (cfg->exp_manager.explicit_log_dir) {
        if ((st = mt_path_fmt(e->log_dir, sizeof e->log_dir, "%s", cfg->exp_manager.explicit_log_dir)) != MT_OK) goto fail;
    } else if (resume) {
        if ((st = mt_path_join(e->log_dir, sizeof e->log_dir, exp_dir, e->name)) != MT_OK) goto fail;
    } else {
        char version[256], base[PATH_CAP];
        if ((st = mt_path_join(base, sizeof base, exp_dir, e->name)) != MT_OK) goto fail;
        if (cfg->exp_manager.version) {
            if ((st = mt_path_fmt(version, sizeof version, "%s", cfg->exp_manager.version)) != MT_OK) goto fail;
        } else if (cfg->exp_manager.use_datetime_version) {
            time_t now = time(NULL);
            struct tm tmv;
            localtime_r(&now, &tmv);
            strftime(version, sizeof version, "%Y-%m-%d_%H-%M-%S", &tmv);
        } else {
            next_version(base, version, sizeof version);
        }
        if (snprintf(e->log_dir, sizeof e->log_dir, "%s/%s", base, version) >= (int)sizeof e->log_dir) {
            st = mt_fail(MT_ERR_INVALID, "%s/%s: path too long", base, version);
            goto fail;
        }
        // A generated version folder is claimed with mkdir, which only one process wins: two runs
        // started in the same second (a scripted sweep) would otherwise share one folder and
        // overwrite each other's metrics, checkpoints and .nemo. The loser takes _1, _2, ...
        probe_created(e);
        if (!cfg->exp_manager.version && e->rank0) {
            st = mt_mkdirs(base);
            if (st != MT_OK) goto fail;
            for (int k = 1;; k++) {
                if (mkdir(e->log_dir, 0777) == 0) break;
                if (errno != EEXIST || k > 1000) {
                    st = mt_fail(MT_ERR_IO, "%s: cannot create the experiment folder: %s", e->log_dir, strerror(errno));
                    goto fail;
                }
                int n;
                if (cfg->exp_manager.use_datetime_version) {
                    n = snprintf(e->log_dir, sizeof e->log_dir, "%s/%s_%d", base, version, k);
                } else {
                    next_version(base, version, sizeof version);
                    n = snprintf(e->log_dir, sizeof e->log_dir, "%s/%s", base, version);
                }
                if (n < 0 || n >= (int)sizeof e->log_dir) {
                    st = mt_fail(MT_ERR_INVALID, "%s/%s: path too long", base, version);
                    goto fail;
                }
            }
        }
    }
    // Every rank logs into the folder global rank 0 chose (a generated version name could differ).
    if (world && world->size > 1) {
        st = mt_broadcast(world, e->log_dir, sizeof e->log_dir, 0);
        if (st != MT_OK) goto fail;
    }
    const char *dirpath = cfg->exp_manager.checkpoint_callback_params.dirpath;
    st = dirpath ? mt_path_fmt(e->ckpt_dir, sizeof e->ckpt_dir, "%s", dirpath)
                 : mt_path_join(e->ckpt_dir, sizeof e->ckpt_dir, e->log_dir, "checkpoints");
    if (st != MT_OK) goto fail;
    if (tp_size > 1) {
        char base[sizeof e->ckpt_dir];
        memcpy(base, e->ckpt_dir, sizeof base);
        if ((st = mt_path_fmt(e->ckpt_dir, sizeof e->ckpt_dir, "%s/mp_rank_%02d", base, tp_rank)) != MT_OK) goto fail;
    }
    probe_created(e);
    e->ckpt_dir_existed = path_exists(e->ckpt_dir);
    st = mt_mkdirs(e->log_dir);
    if (st != MT_OK) goto fail;

    if (cfg->trainer.resume_from_checkpoint) {
        struct stat sb;
        char rpath[PATH_CAP];
        if (snprintf(rpath, sizeof rpath, "%s", cfg->trainer.resume_from_checkpoint) >= (int)sizeof rpath) {
            st = mt_fail(MT_ERR_INVALID, "trainer.resume_from_checkpoint: path too long");
            goto fail;
        }
        if (tp_size > 1) {
            // NeMo: each tensor-parallel rank resumes from its own file, .../mp_rank_XX/<basename>
            char *m = NULL;
            for (char *q = strstr(rpath, "mp_rank_"); q; q = strstr(q + 1, "mp_rank_"))
                if (isdigit((unsigned char)q[8]) && isdigit((unsigned char)q[9]) && q[10] == '/') m = q;
            if (m) {
                char d[3];
                snprintf(d, sizeof d, "%02u", (unsigned)tp_rank % 100u);
                m[8] = d[0];
                m[9] = d[1];
            } else {
                const char *slash = strrchr(cfg->trainer.resume_from_checkpoint, '/');
                const char *base = slash ? slash + 1 : cfg->trainer.resume_from_checkpoint;
                int dl = slash ? (int)(slash - cfg->trainer.resume_from_checkpoint) : 1;
                st = mt_path_fmt(rpath, sizeof rpath, "%.*s/mp_rank_%02d/%s", dl,
                                 slash ? cfg->trainer.resume_from_checkpoint : ".", tp_rank, base);
                if (st != MT_OK) goto fail;
            }
        }
        if (stat(rpath, &sb) != 0) {
            st = mt_fail(MT_ERR_NOT_FOUND, "trainer.resume_from_checkpoint: %s: %s", rpath, strerror(errno));
            goto fail;
        }
        e->resume_path = mt_strdup(rpath);
        if (!e->resume_path) { st = MT_ERR_NOMEM; goto fail; }
    } else if (resume) {
        st = find_resume(e, cfg);
        if (st != MT_OK) goto fail;
    }
    if (e->resume_path && e->rank0) {
        st = move_previous_run(e);
        if (st != MT_OK) goto fail;
    }
    // The others open their log files once rank 0 has moved the previous run's away.
    if (world && world->size > 1) {
        st = mt_barrier(world);
        if (st != MT_OK) goto fail;
    }
    // NeMo: only data-parallel rank 0 of each tensor-parallel rank writes checkpoints.
    if (par->dp_rank != 0) e->checkpoints_on = 0;
    if (e->checkpoints_on && tp_size > 1) e->ckpt_sync = par->tp;
    if (e->checkpoints_on) {
        st = mt_mkdirs(e->ckpt_dir);
        if (st != MT_OK) goto fail;
        st = rebuild_topk(e);
        if (st != MT_OK) goto fail;
        remove_stale_tmp(e->ckpt_dir);
        if (tp_size > 1) { // the .nemo is written beside the mp_rank_XX folders
            char parent[PATH_CAP];
            snprintf(parent, sizeof parent, "%s", e->ckpt_dir);
            char *slash = strrchr(parent, '/');
            if (slash) {
                *slash = 0;
                if (tp_rank == 0) remove_stale_tmp(parent);
            }
        }
    }

    char path[PATH_CAP + 64];
    if ((st = mt_path_fmt(path, sizeof path, "%s/nemo_log_globalrank-%d_localrank-%d.txt", e->log_dir,
                          par->world_rank, par->local_rank)) != MT_OK)
        goto fail;
    e->log_file = fopen(path, "a");
    if (!e->log_file) {
        st = mt_fail(MT_ERR_IO, "%s: cannot open the log file: %s", path, strerror(errno));
        goto fail;
    }
    mt_log_set_file(e->log_file);
    if (e->rank0) {
        char *args = NULL;
        size_t alen = 0;
        FILE *m = open_memstream(&args, &alen);
        if (!m) { st = MT_ERR_NOMEM; goto fail; }
        for (int i = 0; i < argc; i++) fprintf(m, "%s%s", i ? " " : "", argv[i]);
        fclose(m);
        st = mt_path_join(path, sizeof path, e->log_dir, "cmd-args.log");
        if (st == MT_OK) st = mt_write_file_atomic(path, args, alen);
        free(args);
        if (st != MT_OK) goto fail;
        char *y = NULL;
        size_t ylen = 0;
        m = open_memstream(&y, &ylen);
        if (!m) { st = MT_ERR_NOMEM; goto fail; }
        st = mt_config_dump(cfg, m, NULL);
        fclose(m);
        if (st == MT_OK) {
            st = mt_path_join(path, sizeof path, e->log_dir, "hparams.yaml");
            if (st == MT_OK) st = mt_write_file_atomic(path, y, ylen);
        }
        free(y);
        if (st != MT_OK) goto fail;
        st = write_git_info(e);
        if (st != MT_OK) goto fail;
        if ((st = mt_path_join(path, sizeof path, e->log_dir, "nemo_error_log.txt")) != MT_OK) goto fail;
        e->err_file = fopen(path, "a");
        if (!e->err_file) {
            st = mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        mt_log_set_error_file(e->err_file);
        if ((st = mt_path_join(path, sizeof path, e->log_dir, "lightning_logs.txt")) != MT_OK) goto fail;
        e->pl_file = fopen(path, "a");
        if (!e->pl_file) {
            st = mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        // what Lightning's Trainer logs when it starts
        pl_log(e, "GPU available: False, used: False");
        pl_log(e, "TPU available: False, using: 0 TPU cores");
        if (par->world_size > 1)
            pl_log(e, "initializing ddp: GLOBAL_RANK: 0, MEMBER: 1/%d (tensor parallel %d, data parallel %d)",
                   par->world_size, par->tp_size, par->dp_size);
        mt_config_log_noops(cfg);
    }
    mt_info("experiment folder: %s", e->log_dir);
    if (e->resume_path) mt_info("resuming from %s", e->resume_path);
    *out = e;
    return MT_OK;
fail:
    mt_exp_free(e);
    return st;
}

void mt_exp_log_failure(mt_exp_manager *e, const char *message) {
    if (!e || !e->log_file) return;
    fprintf(e->log_file, "megatune: error: %s\n", message);
    fflush(e->log_file);
    if (e->err_file) {
        fprintf(e->err_file, "megatune: error: %s\n", message);
        fflush(e->err_file);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int mt_exp_discard(mt_exp_manager *e) {
    if (!e || !e->probed || e->log_dir_existed || !e->created_top[0]) return 0;
    // Stop writing into the folder before it goes.
    if (e->log_file) {
        mt_log_set_file(NULL);
        fclose(e->log_file);
        e->log_file = NULL;
    }
    if (e->err_file) {
        mt_log_set_error_file(NULL);
        fclose(e->err_file);
        e->err_file = NULL;
    }
    if (e->pl_file) fclose(e->pl_file);
    e->pl_file = NULL;
    if (e->csv) fclose(e->csv);
    e->csv = NULL;
    if (e->tb) mt_tb_close(e->tb);
    e->tb = NULL;
    if (!e->rank0) return 0;
    // A checkpoint folder outside log_dir that this run created, if still empty.
    if (!e->ckpt_dir_existed) {
        char p[PATH_CAP];
        snprintf(p, sizeof p, "%s", e->ckpt_dir);
        while (rmdir(p) == 0) {
            char *slash = strrchr(p, '/');
            if (!slash || slash == p) break;
            *slash = 0;
            if (!strcmp(p, e->log_dir)) break;
        }
    }
    // This run made log_dir: everything in it is this run's.
    if (nftw(e->log_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && path_exists(e->log_dir)) return 0;
    // Then the parents it made, while empty (another run may have started in exp_dir/name meanwhile).
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s", e->log_dir);
    size_t top = strlen(e->created_top);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash || slash == p || strlen(p) <= top) break;
        *slash = 0;
        if (strlen(p) < top || rmdir(p) != 0) break;
    }
    return 1;
}

void mt_exp_free(mt_exp_manager *e) {
    if (!e) return;
    if (e->csv) fclose(e->csv);
    if (e->tb) mt_tb_close(e->tb);
    if (e->log_file) {
        mt_log_set_file(NULL);
        fclose(e->log_file);
    }
    if (e->err_file) {
        mt_log_set_error_file(NULL);
        fclose(e->err_file);
    }
    if (e->pl_file) fclose(e->pl_file);
    for (int i = 0; i < e->n_metrics; i++) free(e->metric_tags[i]);
    free(e->metric_tags);
    for (int i = 0; i < e->ntopk; i++) free(e->topk[i].path);
    free(e->topk);
    free(e->last_path);
    free(e->resume_path);
    free(e->resume_older);
    free(e);
}

const char *mt_exp_log_dir(const mt_exp_manager *e) { return e->log_dir; }
const char *mt_exp_ckpt_dir(const mt_exp_manager *e) { return e->ckpt_dir; }
const char *mt_exp_name(const mt_exp_manager *e) { return e->name; }
struct mt_tb_writer *mt_exp_tensorboard(mt_exp_manager *e) { return e->rank0 ? e->tb : NULL; }
const char *mt_exp_resume_path(const mt_exp_manager *e) { return e->resume_path; }
const char *mt_exp_resume_older(const mt_exp_manager *e) { return e->resume_older; }

void mt_exp_resumed_from(mt_exp_manager *e, const char *path) {
    if (!e->resume_found || !path) return;
    // The other -last file (a kill between writing the new one and deleting the old) is not
    // the one training continues from: remove it, and replace `path` at the next save.
    const char *other = !strcmp(path, e->resume_path) ? e->resume_older : e->resume_path;
    if (other && e->checkpoints_on && strcmp(other, path)) {
        if (unlink(other) == 0) mt_info("removed %s (training continues from %s)", other, path);
    }
    if (e->checkpoints_on) {
        char *lp = mt_strdup(path);
        if (lp) {
            free(e->last_path);
            e->last_path = lp;
        }
    }
}
const char *mt_exp_last_checkpoint(const mt_exp_manager *e) { return e->last_path; }

const char *mt_exp_best_checkpoint(const mt_exp_manager *e) {
    int best = -1;
    for (int i = 0; i < e->ntopk; i++)
        if (best < 0 || (e->mode_max ? e->topk[i].score > e->topk[best].score : e->topk[i].score < e->topk[best].score))
            best = i;
    return best >= 0 ? e->topk[best].path : NULL;
}

// ---------------------------------------------------------------------------------------------
// metrics.csv + TensorBoard

static void csv_header(FILE *f, char **tags, int n) {
    fprintf(f, "step,epoch,train_loss,lr,val_loss");
    for (int i = 0; i < n; i++) fprintf(f, ",%s", tags[i]);
    fputc('\n', f);
}

mt_status mt_exp_metrics_begin(mt_exp_manager *e, const char *const *metric_names, int n_metrics,
                               int64_t resume_step) {
    if (!e->rank0) return MT_OK;
    char path[PATH_CAP + 32];
    MT_TRY(mt_path_join(path, sizeof path, e->log_dir, "metrics.csv"));
    // Names unknown (no validation ran in this session): keep the existing file's columns.
    char *adopted[16];
    int nadopted = 0;
    if (n_metrics < 0) {
        n_metrics = 0;
        FILE *old = resume_step >= 0 ? fopen(path, "r") : NULL;
        char *line = NULL;
        size_t cap = 0;
        if (old && getline(&line, &cap, old) > 0 && !strncmp(line, "step,epoch,train_loss,lr,val_loss", 33)) {
            line[strcspn(line, "\r\n")] = 0;
            for (char *tok = strtok(line + 33, ","); tok && nadopted < 16; tok = strtok(NULL, ","))
                if ((adopted[nadopted] = mt_strdup(tok))) nadopted++;
        }
        free(line);
        if (old) fclose(old);
        metric_names = (const char *const *)adopted;
        n_metrics = nadopted;
    }
    mt_status st0 = MT_OK;
    e->metric_tags = mt_calloc((size_t)(n_metrics > 0 ? n_metrics : 1), sizeof(char *));
    if (!e->metric_tags) return MT_ERR_NOMEM;
    e->n_metrics = n_metrics;
    for (int i = 0; i < n_metrics && e->metric_tags; i++) {
        e->metric_tags[i] = mt_strdup(metric_names[i]);
        if (!e->metric_tags[i]) { st0 = MT_ERR_NOMEM; break; }
    }
    for (int i = 0; i < nadopted; i++) free(adopted[i]);
    if (!e->metric_tags) return MT_ERR_NOMEM;
    if (st0 != MT_OK) return st0;
    // The header and the rows kept from a previous run, rewritten atomically.
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return MT_ERR_NOMEM;
    csv_header(m, e->metric_tags, n_metrics);
    fflush(m);
    size_t header_len = len;
    if (resume_step >= 0) {
        FILE *old = fopen(path, "r");
        if (old) {
            char *line = NULL;
            size_t cap = 0;
            ssize_t r;
            int first = 1;
            while ((r = getline(&line, &cap, old)) > 0) {
                if (first) {
                    first = 0;
                    if ((size_t)r != header_len || memcmp(line, buf, header_len)) {
                        mt_warn("%s: its columns differ from this run's; starting a new file", path);
                        break;
                    }
                    continue;
                }
                char *end;
                long long s = strtoll(line, &end, 10);
                if (end == line || *end != ',' || line[r - 1] != '\n') break; // a torn last line
                if (s > resume_step) break;
                fputs(line, m);
            }
            free(line);
            fclose(old);
        }
    }
    fclose(m);
    mt_status st = mt_write_file_atomic(path, buf, len);
    free(buf);
    if (st != MT_OK) return st;
    e->csv = fopen(path, "a");
    if (!e->csv) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (e->tensorboard_on) MT_TRY(mt_tb_open(e->log_dir, &e->tb, NULL));
    return MT_OK;
}

static void csv_cell(FILE *f, double v) {
    if (isnan(v)) fputc(',', f);
    else fprintf(f, ",%.9g", v);
}

mt_status mt_exp_log_row(mt_exp_manager *e, int64_t step, int64_t epoch, double train_loss, double lr,
                         double val_loss, const double *metrics) {
    if (!e->rank0 || !e->csv) return MT_OK;
    fprintf(e->csv, "%lld,%lld", (long long)step, (long long)epoch);
    csv_cell(e->csv, train_loss);
    csv_cell(e->csv, lr);
    csv_cell(e->csv, val_loss);
    for (int i = 0; i < e->n_metrics; i++) csv_cell(e->csv, metrics ? metrics[i] : NAN);
    fputc('\n', e->csv);
    if (fflush(e->csv) != 0) return mt_fail(MT_ERR_IO, "%s/metrics.csv: write failed: %s", e->log_dir, strerror(errno));
    if (e->tb) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double wt = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
        if (!isnan(train_loss)) MT_TRY(mt_tb_scalar(e->tb, "train_loss", (float)train_loss, step, wt));
        if (!isnan(lr)) MT_TRY(mt_tb_scalar(e->tb, "lr", (float)lr, step, wt));
        MT_TRY(mt_tb_scalar(e->tb, "epoch", (float)epoch, step, wt));
        if (!isnan(val_loss)) MT_TRY(mt_tb_scalar(e->tb, "val_loss", (float)val_loss, step, wt));
        for (int i = 0; i < e->n_metrics && metrics; i++)
            if (!isnan(metrics[i])) MT_TRY(mt_tb_scalar(e->tb, e->metric_tags[i], (float)metrics[i], step, wt));
    }
    return MT_OK;
}

// ---------------------------------------------------------------------------------------------
// checkpoints

static int better(const mt_exp_manager *e, double a, double b) { return e->mode_max ? a > b : a < b; }

// Full disk, read-only or vanished folder: the temporary is gone and the previous checkpoint
// untouched; the message says which one a resume would start from.
static mt_status save_failed(const mt_exp_manager *e, mt_status ws) {
    if (!is_dir(e->ckpt_dir))
        return mt_fail_context(ws, "the checkpoint folder %s no longer exists (deleted during training?): the run "
                               "stops", e->ckpt_dir);
    if (e->last_path && access(e->last_path, R_OK) == 0)
        return mt_fail_context(ws, "checkpoint not saved (the previous one, %s, is intact: free the space or fix the "
                               "folder, then resume with exp_manager.resume_if_exists=true)", e->last_path);
    if (e->last_path)
        return mt_fail_context(ws, "checkpoint not saved, and the previous one, %s, was removed meanwhile (files "
                               "deleted from the checkpoint folder during training?): the run stops", e->last_path);
    return mt_fail_context(ws, "checkpoint not saved");
}

mt_status mt_exp_save_checkpoint(mt_exp_manager *e, mt_ckpt_write_fn write, void *ctx, double monitor_value,
                                 int64_t epoch, int rank) {
    e->new_best = 0;
    if (!e->checkpoints_on) return MT_OK;
    char stem[1024], last[PATH_CAP * 2];
    MT_TRY(format_template(e, e->filename, monitor_value, epoch, stem, sizeof stem));
    MT_TRY(mt_path_fmt(last, sizeof last, "%s/%s-last.ckpt", e->ckpt_dir, stem));
    // With tensor parallelism each rank writes its own file, and a kill can stop some ranks
    // before theirs is in place: every rank keeps its previous -last until all have written the
    // new one, so that a resume finds a step common to all (trainer.c). The new file must not
    // replace the previous one by name either: a clash takes the alternate name -v1-last.
    if (e->ckpt_sync && e->last_path && !strcmp(e->last_path, last))
        MT_TRY(mt_path_fmt(last, sizeof last, "%s/%s-v1-last.ckpt", e->ckpt_dir, stem));
    // 1. The new -last (write() is atomic), then drop the previous one.
    mt_status ws = write(ctx, last);
    if (e->ckpt_sync) ws = mt_comm_agree(e->ckpt_sync, ws);
    if (ws != MT_OK) return save_failed(e, ws);
    if (e->last_path && strcmp(e->last_path, last)) {
        if (unlink(e->last_path) != 0 && errno != ENOENT)
            mt_warn("%s: cannot remove the previous last checkpoint: %s", e->last_path, strerror(errno));
    }
    free(e->last_path);
    e->last_path = mt_strdup(last);
    if (!e->last_path) return MT_ERR_NOMEM;
    mt_fsync_dir_of(last);
    // 2. Top-k: a hard link to the -last file under the ranked name (no second write).
    if (!rank || isnan(monitor_value) || e->save_top_k == 0) goto done;
    int worst = -1;
    for (int i = 0; i < e->ntopk; i++)
        if (worst < 0 || better(e, e->topk[worst].score, e->topk[i].score)) worst = i;
    int keep_all = e->save_top_k < 0;
    if (!keep_all && e->ntopk >= e->save_top_k && !better(e, monitor_value, e->topk[worst].score)) {
        pl_log(e, "Epoch %lld, step %lld: %s was not in top %lld", (long long)epoch, (long long)e->step, e->monitor,
               (long long)e->save_top_k);
        goto done;
    }
    char path[PATH_CAP * 2], tmp[PATH_CAP * 2 + 8];
    MT_TRY(mt_path_fmt(path, sizeof path, "%s/%s.ckpt", e->ckpt_dir, stem));
    // Same name as an existing top-k entry (same value and epoch): PTL adds -v1, -v2, ...
    int same = -1;
    for (int v = 1;; v++) {
        int clash = 0;
        for (int i = 0; i < e->ntopk; i++)
            if (!strcmp(e->topk[i].path, path)) clash = 1;
        if (!clash) break;
        MT_TRY(mt_path_fmt(path, sizeof path, "%s/%s-v%d.ckpt", e->ckpt_dir, stem, v));
        same = v;
    }
    (void)same;
    MT_TRY(mt_path_fmt(tmp, sizeof tmp, "%s.tmp", path));
    unlink(tmp);
    if (link(last, tmp) != 0) {
        int err = errno;
        // No hard links on this filesystem: write a second copy. Any other failure is an error.
        if (err != EPERM && err != EXDEV && err != ENOTSUP && err != EOPNOTSUPP && err != EMLINK)
            return save_failed(e, mt_fail(MT_ERR_IO, "%s: cannot link %s: %s", tmp, last, strerror(err)));
        ws = write(ctx, path);
        if (ws != MT_OK) return save_failed(e, ws);
    } else if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return save_failed(e, mt_fail(MT_ERR_IO, "%s: cannot rename into place: %s", path, strerror(err)));
    }
    mt_fsync_dir_of(path);
    topk_entry *nt = mt_realloc(e->topk, (size_t)(e->ntopk + 1) * sizeof *nt);
    if (!nt) return MT_ERR_NOMEM;
    e->topk = nt;
    e->topk[e->ntopk].path = mt_strdup(path);
    if (!e->topk[e->ntopk].path) return MT_ERR_NOMEM;
    e->topk[e->ntopk].score = monitor_value;
    e->ntopk++;
    {
        int b = 0;
        for (int i = 1; i < e->ntopk; i++)
            if (better(e, e->topk[i].score, e->topk[b].score)) b = i;
        e->new_best = b == e->ntopk - 1;
        pl_log(e, "Epoch %lld, global step %lld: %s reached %0.5f (best %0.5f), saving model to \"%s\" as top %lld",
               (long long)epoch, (long long)e->step, e->monitor, monitor_value, e->topk[b].score, path,
               (long long)e->save_top_k);
    }
    while (!keep_all && e->ntopk > e->save_top_k) {
        worst = 0;
        for (int i = 1; i < e->ntopk; i++)
            if (better(e, e->topk[worst].score, e->topk[i].score)) worst = i;
        if (unlink(e->topk[worst].path) != 0 && errno != ENOENT)
            mt_warn("%s: cannot remove: %s", e->topk[worst].path, strerror(errno));
        free(e->topk[worst].path);
        e->topk[worst] = e->topk[e->ntopk - 1];
        e->ntopk--;
    }
done:
    if (!e->save_last && rank) {
        // The -last file was only the source of the top-k link.
        unlink(last);
        free(e->last_path);
        e->last_path = NULL;
        return MT_OK;
    }
    mt_info("saved checkpoint %s", last);
    return MT_OK;
}
