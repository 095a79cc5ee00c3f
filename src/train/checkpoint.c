#include "train/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/torchfile.h"
#include "core/log.h"

#include <yaml.h>

// The old flat megatune layout (read only) and the Lightning layout's megatune key
#define CKPT_VERSION 1
#define CKPT_FORMAT 2
#define PL_VERSION "1.3.8"

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

static mt_status load_v1(const char *path, mt_model *m, mt_optimizer *o, mt_train_state *st) {
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
    st->group_by_length = -1; // this format predates it
    if (s == MT_OK && (st->global_step < 0 || st->epoch < 0 || st->batch_in_epoch < 0 || st->micro_batches < 0 ||
                       opt_steps < 0))
        s = mt_fail(MT_ERR_FORMAT, "%s: negative counters: the checkpoint is corrupt", path);
    if (s == MT_OK) mt_optimizer_set_steps(o, opt_steps);
    mt_flat_free(&f);
    mt_torch_close(tf);
    return s;
}

// ---------------------------------------------------------------------------------------------
// PyTorch Lightning 1.x layout

// hyper_parameters: the model config's YAML as plain dicts, lists and scalars (typed as YAML's
// core schema would: null, bool, int, float, else str), so torch.load needs no OmegaConf.
static mt_wv *yaml_node_wv(mt_torch_writer *w, yaml_document_t *d, yaml_node_t *n, int depth) {
    if (!n || depth > 64) return mt_wv_none(w);
    if (n->type == YAML_MAPPING_NODE) {
        mt_wv *dict = mt_wv_dict(w, 0);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; dict && p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key);
            const char *ks = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
            if (mt_wv_set(w, dict, ks, yaml_node_wv(w, d, yaml_document_get_node(d, p->value), depth + 1)) != MT_OK)
                return NULL;
        }
        return dict;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        mt_wv *list = mt_wv_list(w, 0);
        for (yaml_node_item_t *i = n->data.sequence.items.start; list && i < n->data.sequence.items.top; i++)
            if (mt_wv_append(w, list, yaml_node_wv(w, d, yaml_document_get_node(d, *i), depth + 1)) != MT_OK) return NULL;
        return list;
    }
    const char *v = (const char *)n->data.scalar.value;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return mt_wv_str(w, v);
    if (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")) return mt_wv_none(w);
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) return mt_wv_bool(w, 1);
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) return mt_wv_bool(w, 0);
    char *end;
    errno = 0;
    long long iv = strtoll(v, &end, 10);
    if (!*end && errno == 0) return mt_wv_int(w, iv);
    double dv = strtod(v, &end);
    if (!*end && strpbrk(v, "0123456789")) return mt_wv_float(w, dv);
    if (!strcmp(v, ".inf") || !strcmp(v, ".Inf")) return mt_wv_float(w, INFINITY);
    if (!strcmp(v, "-.inf") || !strcmp(v, "-.Inf")) return mt_wv_float(w, -INFINITY);
    if (!strcmp(v, ".nan") || !strcmp(v, ".NaN")) return mt_wv_float(w, NAN);
    return mt_wv_str(w, v);
}

static mt_wv *yaml_text_wv(mt_torch_writer *w, const char *text) {
    yaml_parser_t p;
    yaml_document_t d;
    if (!yaml_parser_initialize(&p)) return NULL;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    mt_wv *out = NULL;
    if (yaml_parser_load(&p, &d)) {
        yaml_node_t *root = yaml_document_get_root_node(&d);
        out = root ? yaml_node_wv(w, &d, root, 0) : mt_wv_dict(w, 0);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    return out;
}

#define WV_TRY(x)                                  \
    do {                                           \
        if ((s = (x)) != MT_OK) goto done;         \
    } while (0)
#define WV_NN(x) ((x) ? (x) : NULL)

mt_status mt_train_ckpt_save(const char *path, mt_model *m, mt_optimizer *o, const mt_train_state *st,
                             const mt_train_ckpt_meta *meta) {
    static const mt_train_ckpt_meta none = {0};
    if (!meta) meta = &none;
    const mt_param_table *tab = mt_model_params(m);
    float *p = mt_model_param_data(m), *ea = mt_optimizer_exp_avg(o), *es = mt_optimizer_exp_avg_sq(o);
    const int64_t opt_steps = mt_optimizer_steps(o);
    mt_torch_writer *w = mt_torch_writer_new();
    if (!w) return MT_ERR_NOMEM;
    mt_status s = MT_OK;
    mt_wv *root = mt_wv_dict(w, 0);
    const double lr = meta->lr_now, base_lr = meta->base_lr;
    // PyTorch Lightning's dump_checkpoint keys, in its order
    WV_TRY(mt_wv_set(w, root, "epoch", mt_wv_int(w, st->epoch)));
    WV_TRY(mt_wv_set(w, root, "global_step", mt_wv_int(w, st->global_step)));
    WV_TRY(mt_wv_set(w, root, "pytorch-lightning_version", mt_wv_str(w, PL_VERSION)));
    mt_wv *sd = mt_wv_dict(w, 1);
    for (int i = 0; i < tab->count; i++) {
        const mt_param *q = &tab->params[i];
        WV_TRY(mt_wv_set(w, sd, q->name, mt_wv_tensor(w, MT_DT_F32, q->ndim, q->shape, p + q->offset)));
    }
    WV_TRY(mt_wv_set(w, root, "state_dict", sd));
    // optimizer_states: [torch.optim.Adam/AdamW.state_dict()]; parameters are numbered in the
    // model's order; torch keeps no state for a parameter before its first step
    mt_wv *ostate = mt_wv_dict(w, 0), *ops = mt_wv_dict(w, 0), *pg = mt_wv_dict(w, 0), *ids = mt_wv_list(w, 0);
    for (int i = 0; i < tab->count && opt_steps > 0; i++) {
        const mt_param *q = &tab->params[i];
        mt_wv *e = mt_wv_dict(w, 0);
        WV_TRY(mt_wv_set(w, e, "step", mt_wv_int(w, opt_steps)));
        WV_TRY(mt_wv_set(w, e, "exp_avg", mt_wv_tensor(w, MT_DT_F32, q->ndim, q->shape, ea + q->offset)));
        WV_TRY(mt_wv_set(w, e, "exp_avg_sq", mt_wv_tensor(w, MT_DT_F32, q->ndim, q->shape, es + q->offset)));
        WV_TRY(mt_wv_set_key(w, ostate, mt_wv_int(w, i), e));
    }
    for (int i = 0; i < tab->count; i++) WV_TRY(mt_wv_append(w, ids, mt_wv_int(w, i)));
    mt_wv *betas = mt_wv_list(w, 1);
    WV_TRY(mt_wv_append(w, betas, mt_wv_float(w, meta->beta1 > 0 ? meta->beta1 : 0.9)));
    WV_TRY(mt_wv_append(w, betas, mt_wv_float(w, meta->beta2 > 0 ? meta->beta2 : 0.999)));
    WV_TRY(mt_wv_set(w, pg, "lr", mt_wv_float(w, lr)));
    WV_TRY(mt_wv_set(w, pg, "betas", betas));
    WV_TRY(mt_wv_set(w, pg, "eps", mt_wv_float(w, meta->eps > 0 ? meta->eps : 1e-8)));
    WV_TRY(mt_wv_set(w, pg, "weight_decay", mt_wv_float(w, meta->weight_decay)));
    WV_TRY(mt_wv_set(w, pg, "amsgrad", mt_wv_bool(w, 0)));
    WV_TRY(mt_wv_set(w, pg, "initial_lr", mt_wv_float(w, base_lr)));
    WV_TRY(mt_wv_set(w, pg, "params", ids));
    mt_wv *pgs = mt_wv_list(w, 0);
    WV_TRY(mt_wv_append(w, pgs, pg));
    WV_TRY(mt_wv_set(w, ops, "state", ostate));
    WV_TRY(mt_wv_set(w, ops, "param_groups", pgs));
    mt_wv *olist = mt_wv_list(w, 0);
    WV_TRY(mt_wv_append(w, olist, ops));
    WV_TRY(mt_wv_set(w, root, "optimizer_states", olist));
    // lr_schedulers: NeMo's scheduler state_dict (its __dict__ but the optimizer)
    mt_wv *sch = mt_wv_dict(w, 0), *bl = mt_wv_list(w, 0), *ll = mt_wv_list(w, 0);
    WV_TRY(mt_wv_append(w, bl, mt_wv_float(w, base_lr)));
    WV_TRY(mt_wv_append(w, ll, mt_wv_float(w, lr)));
    WV_TRY(mt_wv_set(w, sch, "warmup_steps", mt_wv_int(w, meta->warmup_steps)));
    WV_TRY(mt_wv_set(w, sch, "max_steps", mt_wv_int(w, meta->max_steps)));
    WV_TRY(mt_wv_set(w, sch, "min_lr", mt_wv_float(w, meta->min_lr)));
    WV_TRY(mt_wv_set(w, sch, "base_lrs", bl));
    WV_TRY(mt_wv_set(w, sch, "last_epoch", mt_wv_int(w, st->global_step)));
    WV_TRY(mt_wv_set(w, sch, "_step_count", mt_wv_int(w, st->global_step + 1)));
    WV_TRY(mt_wv_set(w, sch, "verbose", mt_wv_bool(w, 0)));
    WV_TRY(mt_wv_set(w, sch, "_get_lr_called_within_step", mt_wv_bool(w, 0)));
    WV_TRY(mt_wv_set(w, sch, "_last_lr", ll));
    mt_wv *sl = mt_wv_list(w, 0);
    WV_TRY(mt_wv_append(w, sl, sch));
    WV_TRY(mt_wv_set(w, root, "lr_schedulers", sl));
    // callbacks: ModelCheckpoint's on_save_checkpoint state (PTL 1.x); keyed by the class name
    // rather than the class object, so torch.load needs no pytorch_lightning import
    mt_wv *cb = mt_wv_dict(w, 0), *mc = mt_wv_dict(w, 0);
    float best_score = (float)meta->best_model_score, cur_score = (float)st->last_monitor;
    WV_TRY(mt_wv_set(w, mc, "monitor", meta->monitor ? mt_wv_str(w, meta->monitor) : mt_wv_none(w)));
    WV_TRY(mt_wv_set(w, mc, "best_model_score", meta->best_model_path && !isnan(best_score)
                                                     ? mt_wv_tensor(w, MT_DT_F32, 0, NULL, &best_score)
                                                     : mt_wv_none(w)));
    WV_TRY(mt_wv_set(w, mc, "best_model_path", mt_wv_str(w, meta->best_model_path ? meta->best_model_path : "")));
    WV_TRY(mt_wv_set(w, mc, "current_score", !isnan(cur_score) ? mt_wv_tensor(w, MT_DT_F32, 0, NULL, &cur_score)
                                                                : mt_wv_none(w)));
    WV_TRY(mt_wv_set(w, mc, "dirpath", meta->dirpath ? mt_wv_str(w, meta->dirpath) : mt_wv_none(w)));
    WV_TRY(mt_wv_set(w, cb, "ModelCheckpoint", mc));
    WV_TRY(mt_wv_set(w, root, "callbacks", cb));
    // hyper_parameters: NeMo's ModelPT hparams {'cfg': model config}
    mt_wv *hp = mt_wv_dict(w, 0), *cfg = meta->hparams_yaml ? yaml_text_wv(w, meta->hparams_yaml) : mt_wv_dict(w, 0);
    if (!cfg) cfg = mt_wv_dict(w, 0);
    WV_TRY(mt_wv_set(w, hp, "cfg", cfg));
    WV_TRY(mt_wv_set(w, root, "hyper_parameters", hp));
    // NeMo's on_save_checkpoint for a Megatron encoder: the QKV layout ([heads, 3, head_dim])
    WV_TRY(mt_wv_set(w, root, "checkpoint_version", mt_wv_float(w, 3.0)));
    // what an exact resume needs beyond Lightning's keys
    mt_wv *mg = mt_wv_dict(w, 0);
    const int64_t checksum = (int64_t)crc_params(tab, p, ea, es);
    WV_TRY(mt_wv_set(w, mg, "format_version", mt_wv_int(w, CKPT_FORMAT)));
    WV_TRY(mt_wv_set(w, mg, "optimizer_steps", mt_wv_int(w, opt_steps)));
    WV_TRY(mt_wv_set(w, mg, "batch_in_epoch", mt_wv_int(w, st->batch_in_epoch)));
    WV_TRY(mt_wv_set(w, mg, "micro_batches", mt_wv_int(w, st->micro_batches)));
    WV_TRY(mt_wv_set(w, mg, "seed", mt_wv_int(w, st->seed)));
    WV_TRY(mt_wv_set(w, mg, "train_examples", mt_wv_int(w, st->train_examples)));
    WV_TRY(mt_wv_set(w, mg, "batch_size", mt_wv_int(w, st->batch_size)));
    WV_TRY(mt_wv_set(w, mg, "accumulate_grad_batches", mt_wv_int(w, st->accumulate)));
    WV_TRY(mt_wv_set(w, mg, "group_by_length", mt_wv_int(w, st->group_by_length)));
    WV_TRY(mt_wv_set(w, mg, "last_monitor", mt_wv_float(w, st->last_monitor)));
    WV_TRY(mt_wv_set(w, mg, "checksum", mt_wv_int(w, checksum)));
    WV_TRY(mt_wv_set(w, root, "megatune", mg));
    s = mt_torch_writer_save(w, root, path);
done:
    mt_torch_writer_free(w);
    return s;
}

static const mt_pv *pv_int_key(const mt_pv *d, int64_t k) {
    if (!d || d->kind != MT_PV_DICT) return NULL;
    for (size_t i = 0; i < d->n; i++)
        if (d->items[2 * i]->kind == MT_PV_INT && d->items[2 * i]->i == k) return d->items[2 * i + 1];
    return NULL;
}

static mt_status pv_get_int(const mt_pv *d, const char *what, const char *key, int64_t *out) {
    const mt_pv *v = mt_pv_get(d, key);
    if (!v || v->kind != MT_PV_INT)
        return mt_fail(MT_ERR_FORMAT, "%s: '%s' is missing or not an int (the checkpoint is damaged)", what, key);
    *out = v->i;
    return MT_OK;
}

// Copies a f32 tensor of exactly q's shape (a pickle value) into dst.
static mt_status copy_tensor(const mt_pv *v, const char *what, const char *key, const mt_param *q, float *dst) {
    const mt_ckpt_tensor *t = v && v->kind == MT_PV_TENSOR ? v->t : NULL;
    if (!t) return mt_fail(MT_ERR_FORMAT, "%s: missing tensor %s (a checkpoint of a different model?)", what, key);
    int same = t->ndim == q->ndim && t->dtype == MT_DT_F32;
    for (int d = 0; same && d < q->ndim; d++) same = t->shape[d] == q->shape[d];
    if (!same)
        return mt_fail(MT_ERR_FORMAT, "%s: tensor %s is %s with %d dims (%lld x %lld), the model needs float32 "
                       "%lld x %lld", what, key, mt_dtype_name(t->dtype), t->ndim, (long long)(t->ndim ? t->shape[0] : 1),
                       (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)q->shape[0],
                       (long long)(q->ndim > 1 ? q->shape[1] : 1));
    MT_TRY(mt_ckpt_tensor_check(t, key));
    int64_t rows = mt_ckpt_tensor_rows(t), cols = (int64_t)q->numel / (rows > 0 ? rows : 1);
    for (int64_t r = 0; r < rows; r++) mt_ckpt_tensor_row_f32(t, r, 0, cols, dst + r * cols);
    return MT_OK;
}

static mt_status load_pl(const char *path, const mt_pv *root, mt_model *m, mt_optimizer *o, mt_train_state *st) {
    const mt_pv *mg = mt_pv_get(root, "megatune");
    if (!mg || mg->kind != MT_PV_DICT)
        return mt_fail(MT_ERR_FORMAT, "%s: a PyTorch Lightning checkpoint without megatune's resume state (the "
                       "'megatune' key: data order, seed): it cannot resume exactly; start from its weights with "
                       "init_from_ptl_ckpt=%s", path, path);
    int64_t fmt = 0, checksum = 0, opt_steps = 0;
    MT_TRY(pv_get_int(mg, path, "format_version", &fmt));
    if (fmt != CKPT_FORMAT)
        return mt_fail(MT_ERR_UNSUPPORTED, "%s: megatune checkpoint format %lld, this build reads %d", path,
                       (long long)fmt, CKPT_FORMAT);
    const mt_pv *sd = mt_pv_get(root, "state_dict"), *ol = mt_pv_get(root, "optimizer_states");
    const mt_pv *os = ol && ol->kind == MT_PV_LIST && ol->n == 1 ? mt_pv_get(ol->items[0], "state") : NULL;
    if (!sd || sd->kind != MT_PV_DICT || !os || os->kind != MT_PV_DICT)
        return mt_fail(MT_ERR_FORMAT, "%s: no state_dict or no optimizer_states[0]['state'] dict", path);
    MT_TRY(pv_get_int(mg, path, "optimizer_steps", &opt_steps));
    const mt_param_table *tab = mt_model_params(m);
    float *p = mt_model_param_data(m), *ea = mt_optimizer_exp_avg(o), *es = mt_optimizer_exp_avg_sq(o);
    for (int i = 0; i < tab->count; i++) {
        const mt_param *q = &tab->params[i];
        char key[MT_PARAM_NAME_MAX + 64];
        snprintf(key, sizeof key, "state_dict['%s']", q->name);
        MT_TRY(copy_tensor(mt_pv_get(sd, q->name), path, key, q, p + q->offset));
        const mt_pv *ps = pv_int_key(os, i);
        if (!ps && opt_steps == 0) { // torch's state before the first step: zero moments
            memset(ea + q->offset, 0, q->numel * sizeof *ea);
            memset(es + q->offset, 0, q->numel * sizeof *es);
            continue;
        }
        snprintf(key, sizeof key, "optimizer_states[0]['state'][%d]['exp_avg'] (%s)", i, q->name);
        MT_TRY(copy_tensor(mt_pv_get(ps, "exp_avg"), path, key, q, ea + q->offset));
        snprintf(key, sizeof key, "optimizer_states[0]['state'][%d]['exp_avg_sq'] (%s)", i, q->name);
        MT_TRY(copy_tensor(mt_pv_get(ps, "exp_avg_sq"), path, key, q, es + q->offset));
    }
    MT_TRY(pv_get_int(mg, path, "checksum", &checksum));
    if ((uint32_t)checksum != crc_params(tab, p, ea, es))
        return mt_fail(MT_ERR_FORMAT, "%s: checksum mismatch: the checkpoint is corrupt", path);
    MT_TRY(pv_get_int(root, path, "global_step", &st->global_step));
    MT_TRY(pv_get_int(root, path, "epoch", &st->epoch));
    MT_TRY(pv_get_int(mg, path, "batch_in_epoch", &st->batch_in_epoch));
    MT_TRY(pv_get_int(mg, path, "micro_batches", &st->micro_batches));
    MT_TRY(pv_get_int(mg, path, "seed", &st->seed));
    MT_TRY(pv_get_int(mg, path, "train_examples", &st->train_examples));
    MT_TRY(pv_get_int(mg, path, "batch_size", &st->batch_size));
    MT_TRY(pv_get_int(mg, path, "accumulate_grad_batches", &st->accumulate));
    st->group_by_length = -1; // checkpoints written before it was recorded lack the key
    if (mt_pv_get(mg, "group_by_length")) MT_TRY(pv_get_int(mg, path, "group_by_length", &st->group_by_length));
    const mt_pv *lm = mt_pv_get(mg, "last_monitor");
    if (!lm || lm->kind != MT_PV_FLOAT) return mt_fail(MT_ERR_FORMAT, "%s: 'last_monitor' is missing or not a float", path);
    st->last_monitor = lm->f;
    if (st->global_step < 0 || st->epoch < 0 || st->batch_in_epoch < 0 || st->micro_batches < 0 || opt_steps < 0)
        return mt_fail(MT_ERR_FORMAT, "%s: negative counters: the checkpoint is corrupt", path);
    mt_optimizer_set_steps(o, opt_steps);
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
    s = mt_torch_verify_crc(tf);
    const mt_pv *root = mt_torch_root(tf);
    int v1 = s == MT_OK && mt_pv_get(root, "megatune_checkpoint_version") != NULL;
    if (s == MT_OK && !v1) s = load_pl(path, root, m, o, st);
    mt_torch_close(tf);
    if (s == MT_OK && v1) s = load_v1(path, m, o, st); // megatune's flat layout before the Lightning one
    return s;
}
