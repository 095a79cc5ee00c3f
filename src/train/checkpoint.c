#include "train/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/torchfile.h"

#define CKPT_VERSION 1

typedef struct {
    mt_named_tensor *t;
    char **names;
    int n, cap;
} tlist;

static mt_status tl_add(tlist *l, const char *prefix, const char *name, mt_dtype dt, int ndim, const int64_t *shape,
                        const void *data) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        mt_named_tensor *nt = mt_realloc(l->t, (size_t)cap * sizeof *nt);
        if (!nt) return MT_ERR_NOMEM;
        l->t = nt;
        char **nn = mt_realloc(l->names, (size_t)cap * sizeof *nn);
        if (!nn) return MT_ERR_NOMEM;
        l->names = nn;
        l->cap = cap;
    }
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *s = mt_malloc(len);
    if (!s) return MT_ERR_NOMEM;
    snprintf(s, len, "%s%s", prefix, name);
    mt_named_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = s;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    l->names[l->n] = s;
    l->n++;
    return MT_OK;
}

static void tl_free(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->t);
}

static uint32_t crc_params(const mt_param_table *tab, const float *a, const float *b, const float *c) {
    uint32_t crc = 0;
    const float *spans[3] = {a, b, c};
    for (int s = 0; s < 3; s++) {
        if (!spans[s]) continue;
        for (int i = 0; i < tab->count; i++)
            crc = mt_crc32(crc, spans[s] + tab->params[i].offset, tab->params[i].numel * sizeof(float));
    }
    return crc;
}

mt_status mt_train_ckpt_save(const char *path, mt_model *m, mt_optimizer *o, const mt_train_state *st) {
    const mt_param_table *tab = mt_model_params(m);
    float *p = mt_model_param_data(m), *ea = mt_optimizer_exp_avg(o), *es = mt_optimizer_exp_avg_sq(o);
    tlist l = {0};
    mt_status s = MT_OK;
    for (int i = 0; i < tab->count && s == MT_OK; i++) {
        const mt_param *q = &tab->params[i];
        s = tl_add(&l, "state_dict.", q->name, MT_DT_F32, q->ndim, q->shape, p + q->offset);
        if (s == MT_OK) s = tl_add(&l, "optimizer_states.exp_avg.", q->name, MT_DT_F32, q->ndim, q->shape, ea + q->offset);
        if (s == MT_OK)
            s = tl_add(&l, "optimizer_states.exp_avg_sq.", q->name, MT_DT_F32, q->ndim, q->shape, es + q->offset);
    }
    int64_t opt_steps = mt_optimizer_steps(o);
    int64_t version = CKPT_VERSION;
    int64_t checksum = (int64_t)crc_params(tab, p, ea, es);
    int64_t last_epoch = st->global_step;
    const int64_t *ints[] = {&opt_steps, &st->global_step, &st->epoch, &st->batch_in_epoch, &st->micro_batches,
                             &st->seed, &st->train_examples, &st->batch_size, &st->accumulate, &last_epoch,
                             &version, &checksum};
    const char *int_names[] = {"optimizer_states.step", "global_step", "epoch", "batch_in_epoch", "micro_batches",
                               "seed", "train_examples", "batch_size", "accumulate_grad_batches",
                               "lr_scheduler.last_epoch", "megatune_checkpoint_version", "checksum"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && s == MT_OK; i++)
        s = tl_add(&l, "", int_names[i], MT_DT_I64, 0, NULL, ints[i]);
    if (s == MT_OK) s = tl_add(&l, "", "last_monitor", MT_DT_F64, 0, NULL, &st->last_monitor);
    if (s == MT_OK) s = mt_torch_save(path, l.t, l.n);
    tl_free(&l);
    return s;
}

// Copies a f32 tensor of exactly `q`'s shape into dst.
static mt_status copy_param(const mt_flat *f, const char *what, const char *prefix, const mt_param *q, float *dst) {
    char key[MT_PARAM_NAME_MAX + 64];
    snprintf(key, sizeof key, "%s%s", prefix, q->name);
    const mt_ckpt_tensor *t = mt_flat_find(f, key);
    if (!t) return mt_fail(MT_ERR_FORMAT, "%s: missing tensor '%s' (a checkpoint of a different model?)", what, key);
    int same = t->ndim == q->ndim && t->dtype == MT_DT_F32;
    for (int d = 0; same && d < q->ndim; d++) same = t->shape[d] == q->shape[d];
    if (!same)
        return mt_fail(MT_ERR_FORMAT, "%s: tensor '%s' is %s with %d dims (%lld x %lld), the model needs float32 "
                       "%lld x %lld", what, key, mt_dtype_name(t->dtype), t->ndim, (long long)t->shape[0],
                       (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)q->shape[0],
                       (long long)(q->ndim > 1 ? q->shape[1] : 1));
    MT_TRY(mt_ckpt_tensor_check(t, key));
    if (mt_ckpt_tensor_contiguous(t)) {
        memcpy(dst, t->data + (size_t)t->offset * 4, q->numel * sizeof(float));
    } else {
        int64_t rows = mt_ckpt_tensor_rows(t), cols = (int64_t)q->numel / (rows > 0 ? rows : 1);
        for (int64_t r = 0; r < rows; r++) mt_ckpt_tensor_row_f32(t, r, 0, cols, dst + r * cols);
    }
    return MT_OK;
}

static mt_status read_scalar(const mt_flat *f, const char *what, const char *key, int64_t *iv, double *dv) {
    const mt_ckpt_tensor *t = mt_flat_find(f, key);
    if (!t) return mt_fail(MT_ERR_FORMAT, "%s: missing '%s' (not a megatune training checkpoint?)", what, key);
    if (mt_ckpt_tensor_numel(t) != 1 || (iv && t->dtype != MT_DT_I64) || (dv && t->dtype != MT_DT_F64))
        return mt_fail(MT_ERR_FORMAT, "%s: '%s' is not a %s scalar", what, key, iv ? "int64" : "float64");
    MT_TRY(mt_ckpt_tensor_check(t, key));
    if (iv) memcpy(iv, t->data + (size_t)t->offset * 8, 8);
    if (dv) memcpy(dv, t->data + (size_t)t->offset * 8, 8);
    return MT_OK;
}

mt_status mt_train_ckpt_load(const char *path, mt_model *m, mt_optimizer *o, mt_train_state *st) {
    // A .nemo (gzip) given where a training checkpoint belongs is a common mix-up (NeMo issue 1759).
    FILE *probe = fopen(path, "rb");
    if (probe) {
        unsigned char magic[2] = {0, 0};
        size_t got = fread(magic, 1, 2, probe);
        fclose(probe);
        if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
            return mt_fail(MT_ERR_FORMAT, "%s is a .nemo (model only, no optimizer state), not a training checkpoint: "
                           "start from it with init_from_nemo_model=%s", path, path);
    }
    mt_torch_file *tf = NULL;
    mt_status s = mt_torch_open(path, &tf);
    if (s != MT_OK) return mt_fail_context(s, "cannot read checkpoint %s", path);
    mt_flat f = {0};
    s = mt_flatten(mt_torch_root(tf), "", &f);
    int64_t version = 0, checksum = 0, opt_steps = 0;
    if (s == MT_OK) s = read_scalar(&f, path, "megatune_checkpoint_version", &version, NULL);
    if (s == MT_OK && version != CKPT_VERSION)
        s = mt_fail(MT_ERR_UNSUPPORTED, "%s: checkpoint format version %lld, this build reads %d", path,
                    (long long)version, CKPT_VERSION);
    const mt_param_table *tab = mt_model_params(m);
    float *p = mt_model_param_data(m), *ea = mt_optimizer_exp_avg(o), *es = mt_optimizer_exp_avg_sq(o);
    for (int i = 0; i < tab->count && s == MT_OK; i++) {
        const mt_param *q = &tab->params[i];
        s = copy_param(&f, path, "state_dict.", q, p + q->offset);
        if (s == MT_OK) s = copy_param(&f, path, "optimizer_states.exp_avg.", q, ea + q->offset);
        if (s == MT_OK) s = copy_param(&f, path, "optimizer_states.exp_avg_sq.", q, es + q->offset);
    }
    if (s == MT_OK) s = read_scalar(&f, path, "checksum", &checksum, NULL);
    if (s == MT_OK && (uint32_t)checksum != crc_params(tab, p, ea, es))
        s = mt_fail(MT_ERR_FORMAT, "%s: checksum mismatch: the checkpoint is corrupt", path);
    if (s == MT_OK) s = read_scalar(&f, path, "optimizer_states.step", &opt_steps, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "global_step", &st->global_step, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "epoch", &st->epoch, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "batch_in_epoch", &st->batch_in_epoch, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "micro_batches", &st->micro_batches, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "seed", &st->seed, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "last_monitor", NULL, &st->last_monitor);
    if (s == MT_OK) s = read_scalar(&f, path, "train_examples", &st->train_examples, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "batch_size", &st->batch_size, NULL);
    if (s == MT_OK) s = read_scalar(&f, path, "accumulate_grad_batches", &st->accumulate, NULL);
    if (s == MT_OK && (st->global_step < 0 || st->epoch < 0 || st->batch_in_epoch < 0 || st->micro_batches < 0 ||
                       opt_steps < 0))
        s = mt_fail(MT_ERR_FORMAT, "%s: negative counters: the checkpoint is corrupt", path);
    if (s == MT_OK) mt_optimizer_set_steps(o, opt_steps);
    mt_flat_free(&f);
    mt_torch_close(tf);
    return s;
}
