#include "train/trainer.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/state_dict.h"
#include "core/log.h"
#include "core/rng.h"
#include "model/optim.h"
#include "model/sched.h"
#include "parallel/parallel.h"
#include "text/pretrained.h"
#include "train/checkpoint.h"
#include "train/exp_manager.h"
#include "train/fetch.h"
#include "train/nemo.h"
#include "train/session.h"
#include "train/tensorboard.h"

// ---------------------------------------------------------------------------------------------
// steps, order

int64_t mt_compute_max_steps(int64_t max_epochs, int64_t accumulate, const mt_cfg_num *limit_train_batches,
                             int64_t num_samples, int64_t batch_size, int drop_last) {
    int64_t per_epoch = drop_last ? num_samples / batch_size : (num_samples + batch_size - 1) / batch_size;
    per_epoch = mt_limit_batches(per_epoch, limit_train_batches);
    return (per_epoch + accumulate - 1) / accumulate * max_epochs;
}

void mt_epoch_order(size_t *order, size_t n, uint64_t seed, int64_t epoch, int shuffle) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    // Fisher-Yates; draw i uses Philox block i of stream 0x5348 ("SH") at step = epoch.
    for (size_t i = n; i > 1; i--) {
        uint32_t w[4];
        mt_rng_block(seed, (uint64_t)epoch, 0x5348u, (uint64_t)i, w);
        uint64_t r = ((uint64_t)w[0] << 32 | w[1]) % (uint64_t)i;
        size_t t = order[i - 1];
        order[i - 1] = order[r];
        order[r] = t;
    }
}

typedef struct {
    int len;
    size_t pos, idx; // pos: place in the shuffled order, the tie-break that makes qsort stable
} grouped_key;

static int grouped_key_cmp(const void *a, const void *b) {
    const grouped_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

mt_status mt_length_grouped_order(size_t *order, const int *len, size_t n, size_t batch, uint64_t seed,
                                  int64_t epoch, int shuffle) {
    mt_epoch_order(order, n, seed, epoch, shuffle);
    if (n < 2) return MT_OK;
    if (batch < 1) batch = 1;
    size_t mult = n / (4 * batch);
    if (mult > 50) mult = 50;
    if (mult < 1) mult = 1;
    const size_t mb = mult * batch;
    grouped_key *k = mt_malloc((mb < n ? mb : n) * sizeof *k);
    if (!k) return MT_ERR_NOMEM;
    size_t best = 0; // the megabatch whose head (its longest) is longest, the first such
    for (size_t start = 0; start < n; start += mb) {
        size_t m = n - start < mb ? n - start : mb;
        for (size_t i = 0; i < m; i++) k[i] = (grouped_key){len[order[start + i]], i, order[start + i]};
        qsort(k, m, sizeof *k, grouped_key_cmp);
        for (size_t i = 0; i < m; i++) order[start + i] = k[i].idx;
        if (len[order[start]] > len[order[best]]) best = start;
    }
    free(k);
    size_t t = order[0];
    order[0] = order[best];
    order[best] = t;
    return MT_OK;
}

// ---------------------------------------------------------------------------------------------
// signals: finish the step, save -last, exit

static volatile sig_atomic_t g_stop_signal = 0;
static volatile sig_atomic_t g_unblock_output = 0;

// Under mpirun a rank's stdout and stderr are pipes that mpirun stops reading while it waits out
// odls_base_sigkill_timeout after a Ctrl-C or SIGTERM: a rank that fills a pipe (64 KiB of lines)
// blocks in write() and is SIGKILLed before it can save. Once asked to stop, the rank's own pipes no
// longer block (lines that do not fit are dropped; the log file keeps every line). Only pipes and
// sockets: a terminal's O_NONBLOCK would outlive the process in the shell that shares it.
static void unblock_pipe(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return;
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// The first signal asks for a clean stop; a second one stops at once (the default action).
// Checkpoint writes are atomic either way. (fstat and fcntl are async-signal-safe.)
static void on_signal(int sig) {
    if (g_stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop_signal = sig;
    if (g_unblock_output) {
        unblock_pipe(STDOUT_FILENO);
        unblock_pipe(STDERR_FILENO);
    }
}

// ---------------------------------------------------------------------------------------------
// progress

typedef struct {
    int bar;
    int bar_open; // a bar line without its newline is on the terminal
    int quiet;    // not global rank 0: the progress is rank 0's to print
    double t0;
    int64_t start_step, max_steps, every;
    int64_t last_printed;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress_update(progress *p, int64_t step, int64_t epoch, double loss, double lr, int force) {
    if (p->quiet) return;
    double el = now_s() - p->t0;
    int64_t done = step - p->start_step;
    double rate = el > 0 ? done / el : 0;
    double eta = rate > 0 ? (p->max_steps - step) / rate : 0;
    if (p->bar) {
        int width = 24, fill = p->max_steps > 0 ? (int)(width * step / p->max_steps) : width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        printf("\r[%s] step %lld/%lld  epoch %lld  loss %.4f  lr %.3e  %.2f it/s  ETA %02d:%02d ", bar, (long long)step,
               (long long)p->max_steps, (long long)epoch, loss, lr, rate, (int)(eta / 60), (int)fmod(eta, 60));
        fflush(stdout);
        p->bar_open = 1;
    } else if (force || step - p->last_printed >= p->every || step == p->max_steps) {
        printf("step %lld/%lld epoch %lld loss %.4f lr %.3e %.2f it/s ETA %.0fs\n", (long long)step,
               (long long)p->max_steps, (long long)epoch, loss, lr, rate, eta);
        fflush(stdout);
        p->last_printed = step;
    }
}

// Ends the bar's line before anything else (log lines on stderr) reaches the terminal.
static void progress_newline(progress *p) {
    if (p->bar && p->bar_open) {
        printf("\n");
        fflush(stdout);
        p->bar_open = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// the run

typedef struct {
    mt_train_config *cfg;
    mt_session s;
    mt_dataset *train, *val;
    mt_dataset *test; // question answering: model.test_ds, tested after training or instead of it
    mt_optimizer *opt;
    mt_sched_config sched;
    mt_exp_manager *exp;
    mt_train_state st;
    mt_parallel *par; // tensor x data parallel groups (groups of one without mpirun)
    // metrics.csv rows wait until the metric names are known (first validation)
    int csv_open;
    int started; // setup done, training began
    double best_monitor; // always_save_nemo with save_best_model: the best value so far
    int64_t resume_step;
    struct pending_row { int64_t step, epoch; double loss, lr; } *pending;
    int npending, cappending;
} run;

typedef struct {
    mt_model *m;
    mt_optimizer *o;
    const mt_train_state *st;
    const run *r;
} ckpt_ctx;

// Best top-k score from its file name (<name>--<monitor>=<value>-epoch=...), NeMo v1.4's way.
static double name_score(const char *path, const char *monitor) {
    char key[160];
    snprintf(key, sizeof key, "--%s=", monitor);
    const char *at = path ? strstr(path, key) : NULL;
    return at ? strtod(at + strlen(key), NULL) : NAN;
}

static mt_status write_ckpt(void *vctx, const char *path) {
    ckpt_ctx *c = vctx;
    const run *r = c->r;
    const mt_train_config *cfg = r->cfg;
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *f = open_memstream(&yaml, &ylen);
    if (!f) return MT_ERR_NOMEM;
    mt_status s = mt_config_dump(cfg, f, "model");
    fclose(f);
    const char *best = mt_exp_best_checkpoint(r->exp);
    const char *mon = cfg->exp_manager.checkpoint_callback_params.monitor;
    mt_train_ckpt_meta meta = {
        .hparams_yaml = yaml, .lr_now = r->sched.max_steps > 0 ? mt_sched_lr(&r->sched, c->st->global_step) : r->sched.lr,
        .base_lr = r->sched.lr, .beta1 = cfg->model.optim.betas.v[0], .beta2 = cfg->model.optim.betas.v[1],
        .eps = cfg->model.optim.eps, .weight_decay = cfg->model.optim.weight_decay,
        .warmup_steps = r->sched.max_steps > 0 ? mt_sched_warmup(&r->sched) : 0, .max_steps = r->sched.max_steps,
        .min_lr = r->sched.min_lr, .monitor = mon, .dirpath = mt_exp_ckpt_dir(r->exp), .best_model_path = best,
        .best_model_score = name_score(best, mon)};
    if (s == MT_OK) s = mt_train_ckpt_save(path, c->m, c->o, c->st, &meta);
    free(yaml);
    return s;
}

// The name a validation metric is logged under, as NeMo logs it: token classification's
// precision / recall / f1 bare (NeMo's TokenClassificationModel logs them so; configs monitor
// 'f1'), every other metric val_<name> (megatune's extras for NER included).
static void metric_tag(const run *r, const char *name, char *buf, size_t cap) {
    int bare = r->s.topt.kind == MT_TASK_TOKEN_CLASSIFICATION &&
               (!strcmp(name, "f1") || !strcmp(name, "precision") || !strcmp(name, "recall"));
    snprintf(buf, cap, "%s%s", bare ? "" : "val_", name);
}

static mt_status open_csv(run *r, const mt_eval_result *ev) {
    const char *names[16];
    char tags[16][64];
    int n = ev ? ev->n_metrics : r->val ? -1 : 0;
    for (int i = 0; i < n && i < 16 && ev; i++) {
        metric_tag(r, ev->metrics[i].name, tags[i], sizeof tags[i]);
        names[i] = tags[i];
    }
    MT_TRY(mt_exp_metrics_begin(r->exp, names, n, r->resume_step));
    r->csv_open = 1;
    for (int i = 0; i < r->npending; i++)
        MT_TRY(mt_exp_log_row(r->exp, r->pending[i].step, r->pending[i].epoch, r->pending[i].loss, r->pending[i].lr,
                              NAN, NULL));
    r->npending = 0;
    return MT_OK;
}

static mt_status log_row(run *r, int64_t step, int64_t epoch, double loss, double lr, const mt_eval_result *ev) {
    if (!r->csv_open && (ev || !r->val)) MT_TRY(open_csv(r, ev));
    if (!r->csv_open) {
        if (r->npending == r->cappending) {
            int cap = r->cappending ? 2 * r->cappending : 64;
            struct pending_row *np = mt_realloc(r->pending, (size_t)cap * sizeof *np);
            if (!np) return MT_ERR_NOMEM;
            r->pending = np;
            r->cappending = cap;
        }
        r->pending[r->npending++] = (struct pending_row){step, epoch, loss, lr};
        return MT_OK;
    }
    double m[16];
    for (int i = 0; i < 16; i++) m[i] = ev && i < ev->n_metrics ? ev->metrics[i].value : NAN;
    return mt_exp_log_row(r->exp, step, epoch, loss, lr, ev ? ev->loss : NAN, ev ? m : NULL);
}

static mt_status validate(run *r, mt_eval_result *ev) {
    int64_t vb = (int64_t)((mt_dataset_size(r->val) + (size_t)r->cfg->model.validation_ds.batch_size - 1) /
                           (size_t)r->cfg->model.validation_ds.batch_size);
    int64_t lim = mt_limit_batches(vb, &r->cfg->trainer.limit_val_batches);
    // each data-parallel rank evaluates its share of the batches; the metrics are those of one process
    MT_TRY(mt_evaluate_dp(r->s.model, r->val, (int)r->cfg->model.validation_ds.batch_size, lim, NULL, r->par->dp, ev));
    char line[1024];
    int k = snprintf(line, sizeof line, "validation at step %lld: val_loss %.4f", (long long)r->st.global_step, ev->loss);
    for (int i = 0; i < ev->n_metrics && k < (int)sizeof line; i++) {
        char tag[64];
        metric_tag(r, ev->metrics[i].name, tag, sizeof tag);
        k += snprintf(line + k, sizeof line - (size_t)k, ", %s %.4f", tag, ev->metrics[i].value);
    }
    if (r->par->dp_size > 1 && k < (int)sizeof line)
        snprintf(line + k, sizeof line - (size_t)k, " (this data-parallel rank evaluated %lld of the %lld batches)",
                 (long long)ev->local_batches, (long long)ev->batches);
    mt_info("%s", line);
    return MT_OK;
}

static mt_status monitor_value(run *r, const mt_eval_result *ev, double *out) {
    const char *mon = r->cfg->exp_manager.checkpoint_callback_params.monitor;
    *out = NAN;
    if (!ev) return MT_OK;
    if (!strcmp(mon, "val_loss")) { *out = ev->loss; return MT_OK; }
    char known[512] = "val_loss";
    size_t kl = strlen(known);
    for (int i = 0; i < ev->n_metrics; i++) {
        char tag[64], alias[80];
        metric_tag(r, ev->metrics[i].name, tag, sizeof tag);
        snprintf(alias, sizeof alias, "val_%s", ev->metrics[i].name); // megatune's earlier name, still accepted
        if (!strcmp(tag, mon) || !strcmp(alias, mon)) { *out = ev->metrics[i].value; return MT_OK; }
        kl += (size_t)snprintf(known + kl, kl < sizeof known ? sizeof known - kl : 0, ", %s", tag);
        if (kl >= sizeof known) kl = sizeof known - 1;
    }
    return mt_fail(MT_ERR_INVALID, "exp_manager.checkpoint_callback_params.monitor '%s' is not a logged metric of this "
                   "task: use one of %s", mon, known);
}

// DDP's gradient average: sum over the data-parallel group, then times 1/R (the same two fp32
// operations per element whether on the whole span or, with step_in_backward, span by span)
typedef struct {
    mt_comm *dp;
    int R;
} dp_mean_ctx;
static mt_status dp_mean(void *ctx, float *g, size_t n) {
    const dp_mean_ctx *d = ctx;
    MT_TRY(mt_all_reduce(d->dp, g, n, MT_REDUCE_SUM));
    const float inv = 1.0f / (float)d->R;
    for (size_t i = 0; i < n; i++) g[i] *= inv;
    return MT_OK;
}

// The precision itself is applied where the model is built (mt_session_precision_kernels).
static mt_status precision_check(const mt_train_config *cfg) {
    const char *p = cfg->trainer.precision;
    if (!strcmp(p, "32") || !strcmp(p, "32-true") || !strcmp(p, "16") || !strcmp(p, "bf16") ||
        !strcmp(p, "16-mixed") || !strcmp(p, "bf16-mixed"))
        return MT_OK;
    return mt_fail(MT_ERR_UNSUPPORTED, "trainer.precision=%s is not supported: use 32, bf16 or 16", p);
}

static mt_status setup_optim(run *r, int64_t max_steps) {
    const mt_train_config *c = r->cfg;
    mt_optim_kind kind;
    MT_TRY(mt_optim_kind_parse(c->model.optim.name, &kind));
    mt_optim_config oc;
    mt_optim_config_default(&oc, kind);
    oc.beta1 = (float)c->model.optim.betas.v[0];
    oc.beta2 = (float)c->model.optim.betas.v[1];
    oc.eps = (float)c->model.optim.eps;
    oc.weight_decay = (float)c->model.optim.weight_decay;
    oc.decay_all = c->model.optim.decay_all;
    MT_TRY(mt_optimizer_create(&oc, mt_model_params(r->s.model), &r->opt));
    memset(&r->sched, 0, sizeof r->sched);
    if (c->model.optim.sched.name) MT_TRY(mt_sched_kind_parse(c->model.optim.sched.name, &r->sched.kind));
    else r->sched.kind = MT_SCHED_CONSTANT;
    r->sched.lr = c->model.optim.lr;
    r->sched.min_lr = c->model.optim.sched.min_lr;
    r->sched.max_steps = max_steps;
    r->sched.warmup_steps = c->model.optim.sched.warmup_steps; // -1 (null) = use the ratio
    r->sched.warmup_ratio = c->model.optim.sched.warmup_ratio >= 0 ? c->model.optim.sched.warmup_ratio : 0.0;
    if (!c->model.optim.sched.name) { r->sched.warmup_steps = 0; r->sched.warmup_ratio = 0; }
    if (max_steps > 0) MT_TRY(mt_sched_validate(&r->sched));
    return MT_OK;
}

// Where the initial weights come from: a .nemo (every weight), else the Megatron/BERT checkpoint
// (encoder only; the preset's file in the model directory when lm_checkpoint is null), else none.
// Resolved before the model is built so a missing file fails fast.
static mt_status resolve_initial_weights(const mt_train_config *c, char *path, size_t cap, int *is_nemo) {
    path[0] = 0;
    *is_nemo = 0;
    // NeMo refuses more than one of its initialisation keys; pretrained_model is the scripts' own
    const char *keys[] = {"init_from_nemo_model", "init_from_ptl_ckpt", "init_from_pretrained_model",
                          "pretrained_model"};
    const char *vals[] = {c->init_from_nemo_model, c->init_from_ptl_ckpt, c->init_from_pretrained_model,
                          c->pretrained_model};
    int which = -1;
    for (int i = 0; i < 4; i++) {
        if (!vals[i]) continue;
        if (which >= 0)
            return mt_fail(MT_ERR_INVALID, "%s and %s are both set: give one model initialisation (NeMo refuses more "
                           "than one too)", keys[which], keys[i]);
        which = i;
    }
    if (which >= 0) {
        const char *f = vals[which];
        struct stat sb;
        if (stat(f, &sb) != 0) {
            if (which == 2 && !strchr(f, '/'))
                return mt_fail(MT_ERR_NOT_FOUND, "init_from_pretrained_model=%s: megatune does not download NeMo's NGC "
                               "models; download the .nemo and give its path (init_from_pretrained_model=PATH.nemo)", f);
            return mt_fail(MT_ERR_NOT_FOUND, "%s: %s: %s", keys[which], f, strerror(errno));
        }
        MT_TRY(mt_path_fmt(path, cap, "%s", f));
        *is_nemo = which == 1 ? 2 : 1; // 2: a Lightning .ckpt's state_dict
        return MT_OK;
    }
    const char *ck = c->model.language_model.lm_checkpoint;
    if (ck) return mt_path_fmt(path, cap, "%s", ck);
    const mt_pretrained_info *p = mt_pretrained_find(c->model.language_model.pretrained_model_name);
    if (p && p->checkpoint_file) MT_TRY(mt_pretrained_checkpoint_path(p, path, cap));
    return MT_OK;
}

static mt_status load_initial_weights(run *r, const char *path, int is_nemo) {
    const mt_train_config *c = r->cfg;
    if (is_nemo == 2) { // init_from_ptl_ckpt: NeMo's load_state_dict(ckpt['state_dict'], strict=False)
        mt_status s = mt_state_dict_load_model(path, r->s.model, 0);
        if (s != MT_OK) return mt_fail_context(s, "init_from_ptl_ckpt %s", path);
        mt_info("initialised from the state_dict of %s", path);
        return MT_OK;
    }
    if (is_nemo) {
        MT_TRY(mt_nemo_load_weights(path, r->s.model));
        mt_info("initialised every weight from %s", path);
        return MT_OK;
    }
    if (!path[0]) {
        mt_warn("no encoder checkpoint (model.language_model.lm_checkpoint is null and '%s' has none): the encoder "
                "starts from random weights (seed %lld)", c->model.language_model.pretrained_model_name,
                (long long)c->trainer.seed);
        return MT_OK;
    }
    mt_megatron_info info;
    mt_status s = mt_megatron_load(path, r->s.model, &info);
    if (s != MT_OK) return mt_fail_context(s, "model.language_model.lm_checkpoint %s", path);
    mt_info("encoder weights from %s: %d tensors loaded, %d absent from the checkpoint (task head), %d unused",
            path, info.loaded, info.missing, info.unused);
    return MT_OK;
}

static void run_free(run *r) {
    mt_optimizer_free(r->opt);
    mt_dataset_free(r->train);
    mt_dataset_free(r->val);
    mt_dataset_free(r->test);
    mt_session_free(&r->s);
    mt_exp_free(r->exp);
    free(r->pending);
    mt_parallel_free(r->par);
}

// Writes the .nemo of a finished run (checkpoints/<name>.nemo and/or model.nemo_path). With tensor
// parallelism, NeMo's layout: data-parallel rank 0 of each tensor-parallel rank saves its weights
// shard, and after a barrier global rank 0 archives them as mp_rank_XX/model_weights.ckpt.
// `during`: always_save_nemo's save after a checkpoint, of the current weights, to the checkpoint
// folder's .nemo only.
static mt_status write_nemo(run *r, mt_train_result *res, int during) {
    const mt_train_config *c = r->cfg;
    const mt_parallel *p = r->par;
    if (!c->exp_manager.create_checkpoint_callback && (during || !mt_config_is_set(c, "model.nemo_path"))) return MT_OK;
    const char *best = mt_exp_best_checkpoint(r->exp);
    if (!during && c->exp_manager.checkpoint_callback_params.save_best_model && best) {
        mt_train_state tmp;
        MT_TRY(mt_train_ckpt_load(best, r->s.model, r->opt, &tmp));
        mt_info("the .nemo holds the best checkpoint's weights: %s", best);
    }
    char ckdir[4096];
    MT_TRY(mt_path_fmt(ckdir, sizeof ckdir, "%s", mt_exp_ckpt_dir(r->exp)));
    if (p->tp_size > 1) { // the .nemo goes to checkpoints/, beside the mp_rank_XX folders
        char *slash = strrchr(ckdir, '/');
        if (slash && !strncmp(slash, "/mp_rank_", 9)) *slash = 0;
    }
    const char *paths[2] = {NULL, NULL};
    char path[4200];
    if (c->exp_manager.create_checkpoint_callback) {
        MT_TRY(mt_path_join(path, sizeof path, ckdir, mt_exp_nemo_name(r->exp)));
        paths[0] = path;
    }
    if (!during && mt_config_is_set(c, "model.nemo_path") && c->model.nemo_path) paths[1] = c->model.nemo_path;
    char shard[4200] = "";
    char **shards = NULL;
    mt_status st = MT_OK;
    if (p->tp_size > 1) {
        st = mt_path_fmt(shard, sizeof shard, "%s/.mp_rank_%02d_model_weights.ckpt", mt_exp_log_dir(r->exp), p->tp_rank);
        if (st == MT_OK && p->dp_rank == 0) st = mt_state_dict_save_model(shard, r->s.model);
        if (st == MT_OK) st = mt_barrier(p->world);
        if (st == MT_OK && p->world_rank == 0) {
            shards = mt_calloc((size_t)p->tp_size, sizeof *shards);
            if (!shards) st = MT_ERR_NOMEM;
            for (int t = 0; t < p->tp_size && st == MT_OK; t++) {
                shards[t] = mt_malloc(4200);
                if (!shards[t]) st = MT_ERR_NOMEM;
                else st = mt_path_fmt(shards[t], 4200, "%s/.mp_rank_%02d_model_weights.ckpt", mt_exp_log_dir(r->exp), t);
            }
        }
    }
    for (int k = 0; k < 2 && st == MT_OK; k++) {
        if (!paths[k]) continue;
        if (p->world_rank == 0) {
            st = shards ? mt_nemo_save_tp(paths[k], c, &r->s, r->train, (const char *const *)shards, p->tp_size)
                        : mt_nemo_save(paths[k], c, &r->s, r->train);
            if (st != MT_OK) break;
            mt_info("wrote %s%s", paths[k], during ? " (always_save_nemo)" : "");
        }
        if (res && (st = mt_path_fmt(res->nemo_path, sizeof res->nemo_path, "%s", paths[k])) != MT_OK) break;
    }
    if (shards)
        for (int t = 0; t < p->tp_size; t++) free(shards[t]);
    free(shards);
    // every rank returns once the archive exists (a caller may read it next)
    if (st == MT_OK && p->world_size > 1) st = mt_barrier(p->world);
    if (shard[0] && p->dp_rank == 0) unlink(shard);
    return st;
}

static mt_status train_loop(run *r, mt_train_result *res);

// The resolved config (as hparams.yaml has it) must be the same text on every rank. pretrained_model's
// vocab and label map are extracted into each rank's own temporary folder `adopt_dir` ("" when none):
// its name stands as one placeholder in the compared text, so only what the ranks were given differs.
static mt_status same_config(const mt_train_config *cfg, mt_comm *world, const char *adopt_dir) {
    char *y = NULL;
    size_t ylen = 0;
    FILE *m = open_memstream(&y, &ylen);
    mt_status st = m ? mt_config_dump(cfg, m, NULL) : MT_ERR_NOMEM;
    if (m) fclose(m);
    if (st != MT_OK) ylen = 0;
    size_t al = strlen(adopt_dir);
    if (y && al) { // in place: the placeholder is shorter than a mkdtemp name
        static const char ph[] = "<pretrained_model>";
        size_t w = 0;
        for (size_t i = 0; i < ylen;) {
            if (al >= sizeof ph - 1 && ylen - i >= al && !memcmp(y + i, adopt_dir, al)) {
                memcpy(y + w, ph, sizeof ph - 1);
                w += sizeof ph - 1;
                i += al;
            } else {
                y[w++] = y[i++];
            }
        }
        ylen = w;
    }
    // (a rank whose dump failed sends or compares an empty text, so the mismatch is agreed on)
    mt_status s2 = mt_comm_same_text(world, y ? y : "", ylen, "the resolved config",
                                     "launch every rank with the same config file and overrides (mpirun -np N "
                                     "megatune train CONFIG KEY=VALUE...), and the same files at the same paths");
    free(y);
    return s2;
}

// NeMo's always_save_nemo: the .nemo follows every checkpoint save; with save_best_model only the
// saves that set a new best (then the current weights are the best ones). Every rank decides
// alike from the monitored value, so the tensor-parallel archive's barriers match.
static mt_status always_save_nemo(run *r, double mon) {
    const mt_train_config *c = r->cfg;
    if (!c->exp_manager.checkpoint_callback_params.always_save_nemo || !c->exp_manager.create_checkpoint_callback)
        return MT_OK;
    if (c->exp_manager.checkpoint_callback_params.save_best_model) {
        int max = !strcmp(c->exp_manager.checkpoint_callback_params.mode, "max");
        if (isnan(mon)) return MT_OK;
        if (!isnan(r->best_monitor) && !(max ? mon > r->best_monitor : mon < r->best_monitor)) return MT_OK;
        r->best_monitor = mon;
    }
    return write_nemo(r, NULL, 1);
}

// model.nemo_path is written only after the last step: a path that cannot be written must fail
// now, not after hours of training.
static mt_status check_nemo_path(const mt_train_config *c) {
    if (!mt_config_is_set(c, "model.nemo_path") || !c->model.nemo_path) return MT_OK;
    const char *p = c->model.nemo_path;
    struct stat sb;
    if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
        return mt_fail(MT_ERR_INVALID, "model.nemo_path=%s is a folder; give a file name such as %s/model.nemo", p, p);
    char dir[4096];
    const char *slash = strrchr(p, '/');
    mt_status ds = slash == p ? mt_path_fmt(dir, sizeof dir, "/")
                   : slash    ? mt_path_fmt(dir, sizeof dir, "%.*s", (int)(slash - p), p)
                              : mt_path_fmt(dir, sizeof dir, ".");
    // the save needs "<path>.tmp.d" (its staging folder) to fit its buffer and the file system's
    // name limit: a name that cannot be written fails now, not after training
    char staging[MT_NEMO_PATH_CAP];
    if (ds == MT_OK) ds = mt_path_fmt(staging, sizeof staging, "%s.tmp.d", p);
    if (ds != MT_OK) return mt_fail_context(ds, "model.nemo_path");
    const char *base = slash ? slash + 1 : p;
    if (strlen(base) + strlen(".tmp.d") > NAME_MAX)
        return mt_fail(MT_ERR_INVALID, "model.nemo_path=%.60s...: the file name is %zu bytes; the file system takes %d "
                       "(less 6 for the '.tmp.d' of the save): use a shorter name", p, strlen(base), NAME_MAX);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return mt_fail(MT_ERR_NOT_FOUND, "model.nemo_path=%s: the folder %s does not exist; create it first (the .nemo "
                       "is written after training)", p, dir);
    if (access(dir, W_OK) != 0)
        return mt_fail(MT_ERR_IO, "model.nemo_path=%s: the folder %s is not writable", p, dir);
    return MT_OK;
}

// NeMo's question_answering_squad.py with do_training=false skips trainer.fit (and the .nemo) and,
// when model.test_ds.file is set, runs trainer.test on the model of pretrained_model. Without a
// test file NeMo's script would test nothing (it only prints 5 answers of the validation file):
// megatune refuses that instead of making an empty experiment folder. A model built from the
// config alone (no pretrained_model) would be tested with an untrained head: refused too.
static mt_status test_only_check(const mt_train_config *c) {
    if (!c->pretrained_model)
        return mt_fail(MT_ERR_INVALID, "do_training=false tests a trained model but pretrained_model is not set: give "
                       "pretrained_model=MODEL.nemo (and model.test_ds.file=DATA.json)");
    if (!c->model.test_ds.file)
        return mt_fail(MT_ERR_INVALID, "do_training=false with pretrained_model=%s but model.test_ds.file is not set: "
                       "nothing to do (NeMo's script would only print a few answers); set model.test_ds.file=DATA.json, "
                       "or use `megatune predict %s QUESTIONS.json OUT_DIR`", c->pretrained_model, c->pretrained_model);
    return MT_OK;
}

// trainer.test of the model as it is now (NeMo's script passes the model, so Lightning restores no
// checkpoint): the test metrics go to stdout (test_loss: ..., as `megatune test` prints them), the
// log file and TensorBoard at `step` (Lightning's trainer.global_step: 0 for a test-only run, the last
// step after training). QA also writes predictions.json / nbest_predictions.json (v2: null_odds.json)
// into the log folder, where the comment in NeMo's script suggests writing them (os.path.join(exp_dir,
// ...)); the other tasks' test_epoch_end only logs (the report and the test_* metrics).
static mt_status test_report(run *r, int64_t step, mt_train_result *res) {
    mt_train_config *c = r->cfg;
    // every rank computes (tensor parallelism needs them all); global rank 0 writes and reports
    int rank0 = r->par->world_rank == 0;
    int64_t bs = c->model.test_ds.batch_size;
    int64_t nb = (int64_t)((mt_dataset_size(r->test) + (size_t)bs - 1) / (size_t)bs);
    int qa = r->s.topt.kind == MT_TASK_QUESTION_ANSWERING;
    mt_eval_result ev;
    MT_TRY(mt_evaluate_ex(r->s.model, r->test, (int)bs, mt_limit_batches(nb, &c->trainer.limit_test_batches),
                          rank0 ? stdout : NULL, rank0 && qa ? mt_exp_log_dir(r->exp) : NULL, &ev));
    res->tested = 1;
    res->tested_predictions = qa;
    if (!rank0) return MT_OK;
    char line[1024];
    int k = snprintf(line, sizeof line, "test: test_loss %.9g", ev.loss);
    printf("test_loss: %.9g\n", ev.loss);
    for (int i = 0; i < ev.n_metrics; i++) {
        printf("test_%s: %.9g\n", ev.metrics[i].name, ev.metrics[i].value);
        if (k < (int)sizeof line)
            k += snprintf(line + k, sizeof line - (size_t)k, ", test_%s %.9g", ev.metrics[i].name, ev.metrics[i].value);
    }
    fflush(stdout);
    if (qa) mt_info("%s (predictions in %s)", line, mt_exp_log_dir(r->exp));
    else mt_info("%s", line);
    if (!c->exp_manager.create_tensorboard_logger) return MT_OK;
    // after training, the run's own events file (Lightning's one logger); test-only runs open one
    mt_tb_writer *tb = mt_exp_tensorboard(r->exp), *own = NULL;
    if (!tb) MT_TRY(mt_tb_open(mt_exp_log_dir(r->exp), &own, NULL));
    if (own) tb = own;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wt = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    mt_status s = mt_tb_scalar(tb, "test_loss", (float)ev.loss, step, wt);
    for (int i = 0; i < ev.n_metrics && s == MT_OK; i++) {
        char tag[80];
        snprintf(tag, sizeof tag, "test_%s", ev.metrics[i].name);
        s = mt_tb_scalar(tb, tag, (float)ev.metrics[i].value, step, wt);
    }
    // Lightning 1.2-1.4's log_metrics adds `epoch` (trainer.current_epoch) after the test metrics: after
    // fit the epoch of the last step (its fit loop leaves current_epoch there), 0 for a test-only run
    int64_t epoch = r->st.epoch > 0 && r->st.batch_in_epoch == 0 ? r->st.epoch - 1 : r->st.epoch;
    if (s == MT_OK) s = mt_tb_scalar(tb, "epoch", (float)epoch, step, wt);
    mt_status s2 = own ? mt_tb_close(own) : MT_OK;
    return s != MT_OK ? s : s2;
}

// Intent/slot always tests after training, so its test file is required: NeMo's script would fail
// on a missing one only after training; this names it and the way out before.
static mt_status intent_slot_test_check(const mt_train_config *c) {
    char dir[4096], prefix[512], tsv[4700];
    int present;
    MT_TRY(mt_session_split_path(c, MT_SPLIT_TEST, dir, sizeof dir, prefix, sizeof prefix, &present));
    if (!present) return MT_OK;
    MT_TRY(mt_path_fmt(tsv, sizeof tsv, "%s/%s.tsv", dir, prefix));
    if (access(tsv, R_OK) == 0) return MT_OK;
    return mt_fail(MT_ERR_NOT_FOUND, "model.test_ds: %s: %s; intent/slot classification tests the trained model on "
                   "model.data_dir/<model.test_ds.prefix>.tsv after training (as NeMo's intent_slot_classification.py): "
                   "add the file, or point model.test_ds.prefix at another split (e.g. model.test_ds.prefix=dev)",
                   tsv, strerror(errno));
}

// do_training=false: trainer.test in the experiment folder on pretrained_model's weights; no
// checkpoint, no .nemo.
static mt_status test_only(run *r, mt_train_result *res) {
    mt_train_config *c = r->cfg;
    char path[4096];
    int is_nemo = 0;
    MT_TRY(mt_session_open_tokenizer(c, &r->s));
    MT_TRY(mt_session_load_split(c, &r->s, MT_SPLIT_TEST, NULL, &r->test));
    if (!r->test) return mt_fail(MT_ERR_INVALID, "do_training=false: model.test_ds.file gave no test data");
    MT_TRY(resolve_initial_weights(c, path, sizeof path, &is_nemo));
    mt_head_kind head;
    int ncls;
    mt_dataset_head(r->test, &head, &ncls);
    mt_dataset_head2(r->test, NULL, &r->s.num_classes2);
    MT_TRY(mt_session_build_model(c, &r->s, head, ncls));
    MT_TRY(mt_session_check_fits(c, &r->s, MT_SPLIT_TEST, r->test));
    MT_TRY(load_initial_weights(r, path, is_nemo));
    return test_report(r, 0, res);
}

mt_status mt_train_run(mt_train_config *cfg, int argc, char **argv, mt_train_result *res) {
    memset(res, 0, sizeof *res);
    run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.resume_step = -1;
    r.st.last_monitor = NAN;
    r.best_monitor = NAN;
    r.st.seed = cfg->trainer.seed;
    char adopt_dir[512] = "", adopt_labels[700] = ""; // pretrained_model's vocab, label map, encoder config
    mt_status s = precision_check(cfg);
    if (s == MT_OK && cfg->model.tensor_model_parallel_size > 1024)
        s = mt_fail(MT_ERR_INVALID, "model.tensor_model_parallel_size=%lld is too large",
                    (long long)cfg->model.tensor_model_parallel_size);
    if (s == MT_OK) s = mt_parallel_create((int)cfg->model.tensor_model_parallel_size, &r.par);
    if (s == MT_OK && r.par->world_size > 1) mt_log_set_rank(r.par->world_rank);
    if (s == MT_OK) {
        res->world_rank = r.par->world_rank;
        res->world_size = r.par->world_size;
        r.s.tp = r.par->tp;
    }
    if (s == MT_OK && !cfg->do_training) s = test_only_check(cfg);
    if (s == MT_OK) s = check_nemo_path(cfg);
    // what can fail on the config alone fails before exp_manager makes any folder
    if (s == MT_OK && cfg->pretrained_model)
        s = mt_nemo_adopt_model(cfg->pretrained_model, cfg, adopt_dir, sizeof adopt_dir, adopt_labels,
                                sizeof adopt_labels);
    if (s == MT_OK) s = mt_session_task_options(cfg, &r.s.topt);
    if (s == MT_OK && adopt_labels[0]) // the .nemo's label map, as its restored model has it
        s = mt_path_fmt(r.s.topt.label_ids_file, sizeof r.s.topt.label_ids_file, "%s", adopt_labels);
    // Every rank must train the same config (a rank launched with other overrides or another
    // config file would silently diverge) and stop together on a failure only one rank sees.
    if (r.par && r.par->world_size > 1) {
        s = mt_comm_agree(r.par->world, s);
        if (s == MT_OK) s = same_config(cfg, r.par->world, adopt_dir);
        if (s != MT_OK) res->agreed_failure = 1;
    }
    if (s == MT_OK) s = mt_exp_create_par(cfg, argc, argv, r.par, &r.exp);
    if (s != MT_OK) goto out;
    if (r.par->world_size > 1)
        mt_info("parallel: global rank %d of %d, tensor-parallel rank %d of %d, data-parallel rank %d of %d",
                r.par->world_rank, r.par->world_size, r.par->tp_rank, r.par->tp_size, r.par->dp_rank, r.par->dp_size);
    s = mt_path_fmt(res->log_dir, sizeof res->log_dir, "%s", mt_exp_log_dir(r.exp));
    if (s == MT_OK) s = mt_path_fmt(res->ckpt_dir, sizeof res->ckpt_dir, "%s", mt_exp_ckpt_dir(r.exp));
    if (s == MT_OK && !cfg->do_training) {
        s = test_only(&r, res);
        goto out;
    }
    // First use of a pretrained name: fetch what the preset lacks before anything reads it.
    if (s == MT_OK) s = mt_train_fetch_pretrained(cfg, r.par, mt_exp_resume_path(r.exp) != NULL);
    if (s == MT_OK) s = mt_session_open_tokenizer(cfg, &r.s);
    if (s == MT_OK) s = mt_session_load_split(cfg, &r.s, MT_SPLIT_TRAIN, NULL, &r.train);
    if (s == MT_OK && !r.train)
        s = mt_fail(MT_ERR_INVALID, "no training data: set model.train_ds.%s",
                    r.s.topt.kind == MT_TASK_TEXT_CLASSIFICATION ? "file_path=FILE.tsv"
                    : r.s.topt.kind == MT_TASK_QUESTION_ANSWERING ? "file=train-v1.1.json (a SQuAD .json)"
                    : r.s.topt.kind == MT_TASK_GLUE ? "ds_item (and model.dataset.data_dir)"
                                                    : "text_file (and model.dataset.data_dir)");
    if (s == MT_OK) s = mt_session_load_split(cfg, &r.s, MT_SPLIT_VALIDATION, r.train, &r.val);
    if (s == MT_OK && r.val && cfg->trainer.limit_val_batches.value == 0) {
        mt_warn("trainer.limit_val_batches=0: validation is off (no val_loss, checkpoints are not ranked)");
        mt_dataset_free(r.val);
        r.val = NULL;
    }
    if (s == MT_OK && !r.val) mt_warn("no validation data (model.validation_ds): val_loss is not computed");
    // NeMo's scripts that test the trained model (trainer.test after trainer.fit): QA
    // (question_answering_squad.py) and text classification (text_classification_with_bert.py) when
    // the test file is set, intent/slot (intent_slot_classification.py) always, on <data_dir>/<prefix>.tsv,
    // except under fast_dev_run. The token-classification, punctuation/capitalization and GLUE scripts
    // test nothing. The file is read now, as NeMo's model does when it is built, so a bad one fails
    // before training, not after it.
    if (s == MT_OK && r.s.topt.kind == MT_TASK_INTENT_SLOT && !cfg->trainer.fast_dev_run) s = intent_slot_test_check(cfg);
    if (s == MT_OK && (r.s.topt.kind == MT_TASK_QUESTION_ANSWERING || r.s.topt.kind == MT_TASK_TEXT_CLASSIFICATION ||
                       (r.s.topt.kind == MT_TASK_INTENT_SLOT && !cfg->trainer.fast_dev_run)))
        s = mt_session_load_split(cfg, &r.s, MT_SPLIT_TEST, NULL, &r.test);
    char init_path[4096];
    int init_nemo = 0;
    // As NeMo: the encoder checkpoint / .nemo initialise a fresh run only; a resumed run takes every
    // weight from its training checkpoint (no needless read, no warning about random weights).
    int resuming = s == MT_OK && mt_exp_resume_path(r.exp) != NULL;
    init_path[0] = 0;
    if (s == MT_OK && !resuming) s = resolve_initial_weights(cfg, init_path, sizeof init_path, &init_nemo);
    if (s == MT_OK) {
        mt_head_kind head;
        int ncls;
        mt_dataset_head(r.train, &head, &ncls);
        mt_dataset_head2(r.train, NULL, &r.s.num_classes2);
        r.s.encoder_from_checkpoint = !resuming && init_path[0] && !init_nemo; // load_initial_weights: Megatron
        // a resumed run's checkpoint load is strict (every weight, checksummed) or the run stops
        if (resuming) r.s.weights_from_checkpoint = 1;
        s = mt_session_build_model(cfg, &r.s, head, ncls);
    }
    if (s == MT_OK) s = mt_session_check_fits(cfg, &r.s, MT_SPLIT_TRAIN, r.train);
    if (s == MT_OK && r.val) s = mt_session_check_fits(cfg, &r.s, MT_SPLIT_VALIDATION, r.val);
    if (s == MT_OK && r.test) s = mt_session_check_fits(cfg, &r.s, MT_SPLIT_TEST, r.test);
    if (s == MT_OK && !resuming) s = load_initial_weights(&r, init_path, init_nemo);
    // a data file, tokenizer or checkpoint one rank cannot read stops all ranks with its message
    if (r.par->world_size > 1) {
        s = mt_comm_agree(r.par->world, s);
        if (s != MT_OK) res->agreed_failure = 1;
    }
    if (s == MT_OK) r.started = 1;
    if (s == MT_OK) s = train_loop(&r, res);
    if (s == MT_OK || s == MT_ERR_INTERRUPTED) {
        mt_status s2 = res->interrupted ? MT_OK : write_nemo(&r, res, 0);
        if (s2 != MT_OK) s = s2;
    }
    // the weights tested are the .nemo's: the last step's, or with save_best_model the best
    // checkpoint's, which write_nemo loaded (as NeMo's on_train_end restores it before trainer.test).
    // An interrupted run saves no .nemo and tests nothing either.
    if (s == MT_OK && r.test) s = test_report(&r, r.st.global_step, res);
out:
    mt_nemo_adopt_cleanup(adopt_dir);
    res->global_step = r.st.global_step;
    // A run that failed in setup (bad config or data) leaves no experiment folder behind; one that
    // trained keeps its log with the error.
    if (s != MT_OK && s != MT_ERR_INTERRUPTED && !r.started && r.exp && mt_exp_discard(r.exp)) {
        res->log_dir[0] = 0;
        res->ckpt_dir[0] = 0;
    } else if (s != MT_OK && s != MT_ERR_INTERRUPTED) {
        mt_exp_log_failure(r.exp, mt_last_error());
    }
    run_free(&r);
    return s;
}

// The ranks of a tensor-parallel job resume from their own files (mp_rank_XX/); a job killed
// while they were writing can leave them at different steps (or one with none). They agree on
// one step: a rank ahead falls back to its older -last file (kept when a kill came between
// writing the new one and deleting the old); without a common step every rank stops, saying so.
// Loads into the model on every rank; *resume is the file used (NULL: a fresh start).
static mt_status resume_same_step(run *r, const char **resume) {
    mt_comm *w = r->par->world;
    mt_status s = *resume ? mt_train_ckpt_load(*resume, r->s.model, r->opt, &r->st) : MT_OK;
    if (s != MT_OK) s = mt_fail_context(s, "cannot resume");
    MT_TRY(mt_comm_agree(w, s));
    float hi = (float)r->st.global_step, lo = -hi; // steps < 2^24 are exact
    MT_TRY(mt_all_reduce(w, &hi, 1, MT_REDUCE_MAX));
    MT_TRY(mt_all_reduce(w, &lo, 1, MT_REDUCE_MAX));
    if (hi == -lo) return MT_OK;
    const int64_t target = (int64_t)-lo, mine = r->st.global_step;
    s = MT_OK;
    if (mine != target) {
        const char *older = mt_exp_resume_older(r->exp);
        mt_train_state st2 = r->st;
        if (older && mt_train_ckpt_load(older, r->s.model, r->opt, &st2) == MT_OK && st2.global_step == target) {
            mt_warn("the ranks' checkpoints differ in step (%lld here, %lld on another rank: a run killed while "
                    "writing them); resuming all from step %lld, here from %s", (long long)mine, (long long)target,
                    (long long)target, older);
            r->st = st2;
            *resume = older;
        } else {
            s = mt_fail(MT_ERR_INVALID, "%s is at step %lld but another rank's checkpoint is at step %lld (a run "
                        "killed while its ranks were writing checkpoints), and there is no common step to resume from: "
                        "start afresh (exp_manager.resume_if_exists=false or another exp_manager.name)",
                        *resume ? *resume : "(no checkpoint)", (long long)mine, (long long)target);
        }
    }
    return mt_comm_agree(w, s);
}

// Tokens of one epoch as batched: real ones and padded (B x the batch's longest), over this
// rank's share (every R-th example of `order`, as the loop takes them).
static void epoch_tokens(const int *lens, const size_t *order, size_t N, int R, int rr, size_t B, int64_t bpe,
                         long long *real, long long *padded) {
    *real = *padded = 0;
    const size_t NR = (N + (size_t)R - 1) / (size_t)R;
    for (int64_t b = 0; b < bpe; b++) {
        int longest = 0, k = 0;
        for (size_t i = (size_t)b * B; i < NR && (size_t)k < B; i++, k++) {
            int l = lens[order[(i * (size_t)R + (size_t)rr) % N]];
            *real += l;
            if (l > longest) longest = l;
        }
        *padded += (long long)k * longest;
    }
}

// model.train_ds.group_by_length: the feature lengths the order is grouped by, and one line saying
// what it saves in the first (whole) epoch.
static mt_status group_by_length_setup(run *r, size_t *order, size_t N, size_t B, int **lens) {
    int *l = mt_malloc((N ? N : 1) * sizeof *l);
    if (!l) return MT_ERR_NOMEM;
    for (size_t i = 0; i < N; i++) l[i] = mt_dataset_feature_len(r->train, i);
    const int R = r->par->dp_size, rr = r->par->dp_rank;
    const mt_train_config *c = r->cfg;
    // the whole epoch, whatever trainer.limit_train_batches keeps of it
    const size_t NR = (N + (size_t)R - 1) / (size_t)R;
    const int64_t bpe = c->model.train_ds.drop_last ? (int64_t)(NR / B) : (int64_t)((NR + B - 1) / B);
    long long real, plain, grouped;
    mt_epoch_order(order, N, (uint64_t)r->st.seed, 0, c->model.train_ds.shuffle);
    epoch_tokens(l, order, N, R, rr, B, bpe, &real, &plain);
    mt_status s = mt_length_grouped_order(order, l, N, B * (size_t)R, (uint64_t)r->st.seed, 0, c->model.train_ds.shuffle);
    if (s != MT_OK) {
        free(l);
        return s;
    }
    epoch_tokens(l, order, N, R, rr, B, bpe, &real, &grouped);
    mt_info("model.train_ds.group_by_length: epoch 0 feeds %lld padded tokens for %lld real ones (%lld without "
            "grouping, %.2fx) in %lld batches%s", grouped, real, plain, grouped > 0 ? (double)plain / (double)grouped : 0.0,
            (long long)bpe, R > 1 ? " on this rank" : "");
    *lens = l;
    return MT_OK;
}

// After the first update: each state span's resident MiB (its untouched pages cost nothing, so
// this shows what step_in_backward and the memory switches save) and the peak RSS so far.
static void log_memory(mt_model *m, mt_optimizer *opt, int in_bwd) {
    const size_t bytes = mt_model_params(m)->total * sizeof(float);
    const double mib = 1048576.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double w = mt_resident_bytes(mt_model_param_data(m), bytes) / mib;
    const double g = mt_resident_bytes(mt_model_grad_data(m), bytes) / mib;
    const double mv = (mt_resident_bytes(mt_optimizer_exp_avg(opt), bytes) +
                       mt_resident_bytes(mt_optimizer_exp_avg_sq(opt), bytes)) / mib;
    mt_info("memory after the first step: weights %.1f MiB, gradients %.1f MiB resident of %.1f%s, AdamW moments "
            "%.1f MiB, activations %.1f MiB; peak RSS %.0f MiB", w, g, bytes / mib,
            in_bwd ? " (step_in_backward: the span is never written)" : "", mv,
            (double)mt_model_activation_bytes(m) / mib, ru.ru_maxrss / 1024.0);
}

static mt_status train_loop(run *r, mt_train_result *res) {
    mt_train_config *c = r->cfg;
    const int64_t B = c->model.train_ds.batch_size, A = c->trainer.accumulate_grad_batches;
    size_t N = mt_dataset_size(r->train); // num_samples already applied by mt_session_load_split
    int drop_last = c->model.train_ds.drop_last;
    // Data parallel: as torch's DistributedSampler (num_replicas = dp_size, rank = dp_rank), each
    // rank takes every dp_size-th example of the epoch's order, the order padded by wrapping to a
    // multiple of dp_size; batch_size is per rank. One tensor-parallel group shares one shard.
    const int R = r->par->dp_size, rr = r->par->dp_rank;
    const size_t NR = (N + (size_t)R - 1) / (size_t)R; // examples per rank and epoch
    int64_t bpe = drop_last ? (int64_t)NR / B : ((int64_t)NR + B - 1) / B;
    bpe = mt_limit_batches(bpe, &c->trainer.limit_train_batches);
    if (bpe <= 0)
        return mt_fail(MT_ERR_INVALID, "model.train_ds: %zu examples make no batch of %lld (drop_last is true)", N,
                       (long long)B);
    // PTL stops at whichever of max_steps / max_epochs comes first; an explicit max_steps with
    // max_epochs left at its default, or null, means "train max_steps steps"; both null is PTL 1.x's
    // max_epochs = 1000.
    int64_t max_epochs = c->trainer.max_epochs;
    if (c->trainer.max_steps >= 0 && (max_epochs < 0 || !mt_config_is_set(c, "trainer.max_epochs")))
        max_epochs = INT64_MAX;
    else if (max_epochs < 0)
        max_epochs = 1000;
    int64_t max_steps = c->trainer.max_steps >= 0
                            ? c->trainer.max_steps
                            : mt_compute_max_steps(max_epochs, A, &c->trainer.limit_train_batches, (int64_t)NR, B,
                                                   drop_last);
    int64_t vcb = c->trainer.val_check_interval.is_int ? (int64_t)c->trainer.val_check_interval.value
                                                       : (int64_t)(bpe * c->trainer.val_check_interval.value);
    if (vcb < 1) vcb = 1;
    if (vcb > bpe) {
        mt_warn("trainer.val_check_interval=%lld batches exceeds the %lld batches of an epoch; validating at "
                "each epoch's end", (long long)vcb, (long long)bpe);
        vcb = bpe;
    }
    MT_TRY(setup_optim(r, max_steps));
    mt_info("training: %zu examples, batch %lld x %lld accumulated, %lld batches/epoch, %lld optimizer steps, "
            "validation every %lld batches, schedule %s (warmup %lld)", N, (long long)B, (long long)A, (long long)bpe,
            (long long)max_steps, (long long)vcb, mt_sched_kind_name(r->sched.kind),
            (long long)(max_steps > 0 ? mt_sched_warmup(&r->sched) : 0));

    // the order's kind, which checkpoints record; question answering keeps the plain order
    mt_head_kind head;
    int nc;
    mt_dataset_head(r->train, &head, &nc);
    const int64_t grouped = c->model.train_ds.group_by_length && head != MT_HEAD_QA;
    if (c->model.train_ds.group_by_length && !grouped)
        mt_warn("model.train_ds.group_by_length=true is ignored for question answering: every window is padded to "
                "model.dataset.max_seq_length (as NeMo), so grouping by length saves nothing");
    const char *resume = mt_exp_resume_path(r->exp);
    if (r->par->world_size > 1) {
        mt_status s = resume_same_step(r, &resume);
        if (s != MT_OK) {
            res->agreed_failure = 1; // every rank failed alike
            return s;
        }
    } else if (resume) {
        mt_status s = mt_train_ckpt_load(resume, r->s.model, r->opt, &r->st);
        if (s != MT_OK) return mt_fail_context(s, "cannot resume");
    }
    if (resume) {
        mt_exp_resumed_from(r->exp, resume);
        // batch_size is the global batch (per-rank batch x data-parallel size): a resume on another
        // number of processes changes the data position's meaning, and is warned about
        if (r->st.train_examples != (int64_t)N || r->st.batch_size != B * R || r->st.accumulate != A)
            mt_warn("the checkpoint was written with %lld training examples, batch %lld, accumulation %lld; this run "
                    "has %zu, %lld, %lld: training continues from epoch %lld batch %lld, but not as the original "
                    "run would have", (long long)r->st.train_examples, (long long)r->st.batch_size,
                    (long long)r->st.accumulate, N, (long long)(B * R), (long long)A, (long long)r->st.epoch,
                    (long long)r->st.batch_in_epoch);
        if (r->st.batch_in_epoch >= bpe) {
            r->st.epoch++;
            r->st.batch_in_epoch = 0;
        }
        if (r->st.group_by_length >= 0 && r->st.group_by_length != grouped)
            mt_warn("the checkpoint was trained with model.train_ds.group_by_length=%s, this run has %s: training "
                    "continues from epoch %lld batch %lld in the other order, not as the original run would have",
                    r->st.group_by_length ? "true" : "false", grouped ? "true" : "false", (long long)r->st.epoch,
                    (long long)r->st.batch_in_epoch);
        if (r->st.seed != c->trainer.seed)
            mt_warn("the checkpoint was trained with trainer.seed=%lld; keeping it (data order and dropout continue)",
                    (long long)r->st.seed);
        r->resume_step = r->st.global_step;
        mt_info("resumed at step %lld (epoch %lld, batch %lld)", (long long)r->st.global_step, (long long)r->st.epoch,
                (long long)r->st.batch_in_epoch);
    }

    r->st.train_examples = (int64_t)N;
    r->st.batch_size = B * R;
    r->st.accumulate = A;
    r->st.group_by_length = grouped;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_signal = 0;
    g_unblock_output = r->par->world_size > 1;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    progress pg = {0};
    const char *pb = c->trainer.progress_bar;
    pg.bar = !strcmp(pb, "bar") || (!strcmp(pb, "auto") && isatty(STDOUT_FILENO));
    pg.quiet = r->par->world_rank != 0;
    pg.start_step = r->st.global_step;
    pg.max_steps = max_steps;
    pg.every = max_steps / 20 > c->trainer.log_every_n_steps ? max_steps / 20 : c->trainer.log_every_n_steps;
    pg.last_printed = r->st.global_step;
    pg.t0 = now_s();

    size_t *order = mt_malloc((N ? N : 1) * sizeof *order);
    size_t *rorder = R > 1 ? mt_malloc((NR ? NR : 1) * sizeof *rorder) : order;
    size_t *idx = mt_malloc((size_t)B * sizeof *idx);
    mt_batch_buffer buf;
    memset(&buf, 0, sizeof buf);
    mt_status s = order && rorder && idx ? MT_OK : MT_ERR_NOMEM;
    int *lens = NULL; // feature lengths when group_by_length is on
    if (s == MT_OK && grouped) s = group_by_length_setup(r, order, N, (size_t)B, &lens);
    // what this session fed the model, for the closing throughput line (validation excluded)
    long long fed_real = 0, fed_padded = 0, fed_batches = 0;
    int said_memory = 0;
    double fed_s = 0;
    mt_model *m = r->s.model;
    const mt_param_table *tab = mt_model_params(m);
    ckpt_ctx cc = {m, r->opt, &r->st, r};
    int64_t last_val_step = -1;
    // model.optim.step_in_backward: backward updates each span itself and the gradient span is
    // never touched (not even cleared: its pages stay out of the resident set)
    const char *sib = c->model.optim.step_in_backward;
    const int in_bwd = mt_config_step_in_backward(c);
    dp_mean_ctx dpm = {r->par->dp, R};
    if (in_bwd && R > 1) mt_model_set_grad_reduce(m, dp_mean, &dpm); // each span averaged before its update
    // the bf16 copies of the weights would go stale during every backward anyway; memory is the point
    if (s == MT_OK && in_bwd) mt_model_set_weight_copies(m, 0);
    if (s == MT_OK && in_bwd)
        mt_info("model.optim.step_in_backward%s: each layer's weights are updated as soon as backward has its "
                "gradients (no gradient span kept)", sib && !strcmp(sib, "true") ? "" : "=auto (no clipping, no accumulation)");
    if (s == MT_OK && !in_bwd) mt_model_zero_grad(m);
    while (s == MT_OK && r->st.global_step < max_steps && r->st.epoch < max_epochs) {
        if (lens)
            s = mt_length_grouped_order(order, lens, N, (size_t)(B * R), (uint64_t)r->st.seed, r->st.epoch,
                                        c->model.train_ds.shuffle);
        else
            mt_epoch_order(order, N, (uint64_t)r->st.seed, r->st.epoch, c->model.train_ds.shuffle);
        if (s != MT_OK) break;
        if (R > 1)
            for (size_t i = 0; i < NR; i++) rorder[i] = order[(i * (size_t)R + (size_t)rr) % N];
        double group_loss = 0;
        int in_group = 0;
        for (int64_t b = r->st.batch_in_epoch; b < bpe && s == MT_OK; b++) {
            int k = 0;
            for (size_t i = (size_t)(b * B); i < NR && k < B; i++) idx[k++] = rorder[i];
            mt_batch batch;
            double t_batch = now_s();
            s = mt_dataset_make_batch(r->train, idx, k, &buf, &batch);
            float loss = 0;
            if (s == MT_OK) s = mt_model_forward(m, &batch, 1, (uint64_t)r->st.seed, (uint64_t)r->st.micro_batches, &loss);
            // (before backward: with step_in_backward, backward updates the weights)
            if (s == MT_OK && !isfinite(loss)) {
                s = mt_fail(MT_ERR_INVALID, "the training loss is %f at step %lld (epoch %lld, batch %lld): lower "
                            "model.optim.lr or set trainer.gradient_clip_val", (double)loss,
                            (long long)r->st.global_step, (long long)r->st.epoch, (long long)b);
                break;
            }
            if (s == MT_OK)
                s = in_bwd ? mt_model_backward_step(m, r->opt, (float)mt_sched_lr(&r->sched, r->st.global_step))
                           : mt_model_backward(m, 1.0f / (float)A);
            if (s != MT_OK) break;
            if (!fed_batches) // what activation checkpointing and the batch shape cost, once
                mt_info("activations: %.1f MiB for the first %dx%d batch (with backward scratch)",
                        (double)mt_model_activation_bytes(m) / 1048576.0, batch.B, batch.T);
            for (size_t i = 0; i < (size_t)batch.B * (size_t)batch.T; i++) fed_real += batch.attention_mask[i] != 0;
            fed_padded += (long long)batch.B * batch.T;
            fed_batches++;
            fed_s += now_s() - t_batch;
            r->st.micro_batches++;
            group_loss += loss;
            in_group++;
            if ((b + 1) % A != 0 && b + 1 != bpe) continue;
            // one optimizer step
            double lr = mt_sched_lr(&r->sched, r->st.global_step);
            double step_loss = group_loss / in_group;
            if (R > 1) {
                // DDP: the mean gradient over the data-parallel group, one all-reduce of the whole span
                // (step_in_backward: done span by span in backward)
                if (!in_bwd) s = dp_mean(&dpm, mt_model_grad_data(m), tab->total);
                if (s != MT_OK) break;
                float lv = (float)step_loss; // the logged loss is the mean over data-parallel ranks
                s = mt_all_reduce(r->par->dp, &lv, 1, MT_REDUCE_SUM);
                if (s != MT_OK) break;
                step_loss = (double)lv / R;
            }
            // clipping's scale, the update and the clear in one pass (bitwise clip + step + zero_grad)
            float gscale = 1.0f;
            if (c->trainer.gradient_clip_val > 0)
                gscale = mt_clip_coef(mt_grad_norm(mt_model_grad_data(m), tab, r->par->tp),
                                      (float)c->trainer.gradient_clip_val);
            double t_step = now_s();
            if (!in_bwd) // (with step_in_backward the update was made in backward, at this lr)
                mt_optimizer_step_fused(r->opt, mt_model_param_data(m), mt_model_grad_data(m), (float)lr, gscale);
            fed_s += now_s() - t_step;
            if (!said_memory) { // where the memory went, measured (resident pages), once
                said_memory = 1;
                log_memory(m, r->opt, in_bwd);
            }
            r->st.global_step++;
            int64_t batches_before = b + 1 - in_group;
            group_loss = 0;
            in_group = 0;
            r->st.batch_in_epoch = b + 1;
            int64_t epoch_now = r->st.epoch;
            if (r->st.batch_in_epoch == bpe) {
                r->st.epoch++;
                r->st.batch_in_epoch = 0;
            }
            int stop = r->st.global_step >= max_steps || r->st.epoch >= max_epochs;
            // Lightning's check_val_every_n_epoch: validation runs in every N-th epoch only
            int val_epoch = (epoch_now + 1) % c->trainer.check_val_every_n_epoch == 0;
            int val_now = ((b + 1) / vcb > batches_before / vcb && val_epoch) || stop;
            mt_eval_result ev;
            int have_ev = 0;
            if (val_now && r->val) {
                progress_newline(&pg);
                s = validate(r, &ev);
                if (s != MT_OK) break;
                have_ev = 1;
            }
            if (r->st.global_step % c->trainer.log_every_n_steps == 0 || have_ev) {
                s = log_row(r, r->st.global_step, epoch_now, step_loss, lr, have_ev ? &ev : NULL);
                if (s != MT_OK) break;
            }
            progress_update(&pg, r->st.global_step, epoch_now, step_loss, lr, have_ev);
            if (val_now) {
                progress_newline(&pg);
                double mon;
                s = monitor_value(r, have_ev ? &ev : NULL, &mon);
                if (s != MT_OK) break;
                if (have_ev) {
                    r->st.last_monitor = mon;
                    const char *names[16];
                    double vals[16];
                    for (int i = 0; i < ev.n_metrics && i < 16; i++) names[i] = ev.metrics[i].name, vals[i] = ev.metrics[i].value;
                    mt_exp_note_metrics(r->exp, r->st.global_step, ev.loss, names, vals, ev.n_metrics < 16 ? ev.n_metrics : 16);
                }
                s = mt_exp_save_checkpoint(r->exp, write_ckpt, &cc, mon, epoch_now, 1);
                if (s != MT_OK) break;
                s = always_save_nemo(r, mon);
                if (s != MT_OK) break;
                last_val_step = r->st.global_step;
            }
            if (r->par->world_size > 1) {
                // A signal may reach some ranks only (or at different steps): all stop at the same step.
                float sig = (float)g_stop_signal;
                s = mt_all_reduce(r->par->world, &sig, 1, MT_REDUCE_MAX);
                if (s != MT_OK) break;
                if (sig > 0 && !g_stop_signal) g_stop_signal = (int)sig;
            }
            if (g_stop_signal) break;
            if (stop) break;
            if (r->st.batch_in_epoch == 0) break; // the epoch ended
        }
        if (s != MT_OK || g_stop_signal) break;
        if (r->st.global_step >= max_steps) break;
    }
    progress_newline(&pg);
    if (fed_batches > 0 && fed_s > 0)
        mt_info("trained %lld batches in %.1f s (forward, backward, optimizer%s): %.0f tokens/s, %.0f padded tokens/s "
                "(%lld tokens, %lld with padding)", fed_batches, fed_s, R > 1 ? ", all-reduce excluded" : "",
                (double)fed_real / fed_s, (double)fed_padded / fed_s, fed_real, fed_padded);
    if (s == MT_OK && g_stop_signal) {
        int sig = g_stop_signal;
        if (last_val_step != r->st.global_step) {
            // named by the last validated value (as PTL's ModelCheckpoint), not ranked
            s = mt_exp_save_checkpoint(r->exp, write_ckpt, &cc, r->st.last_monitor, r->st.epoch, 0);
        }
        if (s == MT_OK) {
            mt_warn("stopped by signal %d after step %lld; saved %s", sig, (long long)r->st.global_step,
                    mt_exp_last_checkpoint(r->exp) ? mt_exp_last_checkpoint(r->exp) : "(no checkpoint)");
            res->interrupted = sig;
            s = MT_ERR_INTERRUPTED;
            mt_fail(s, "interrupted by signal %d at step %lld; resume with exp_manager.resume_if_exists=true or "
                    "trainer.resume_from_checkpoint=%s", sig, (long long)r->st.global_step,
                    mt_exp_last_checkpoint(r->exp) ? mt_exp_last_checkpoint(r->exp) : "CKPT");
        }
    }
    if (s == MT_OK && !r->csv_open) s = open_csv(r, NULL); // no validation ever ran: flush pending rows
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    mt_batch_buffer_free(&buf);
    free(lens);
    if (rorder != order) free(rorder);
    mt_model_set_grad_reduce(m, NULL, NULL); // (dpm lives on this stack)
    free(order);
    free(idx);
    return s;
}
