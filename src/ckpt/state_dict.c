#include "ckpt/state_dict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/source.h"
#include "ckpt/torchfile.h"
#include "core/log.h"

mt_status mt_state_dict_save_params(const char *path, const mt_param_table *tab, const float *span) {
    mt_named_tensor *t = mt_calloc((size_t)(tab->count ? tab->count : 1), sizeof *t);
    if (!t) return MT_ERR_NOMEM;
    for (int i = 0; i < tab->count; i++) {
        const mt_param *p = &tab->params[i];
        t[i].name = p->name;
        t[i].dtype = MT_DT_F32;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
        t[i].data = span + p->offset;
    }
    mt_status s = mt_torch_save(path, t, tab->count);
    free(t);
    return s;
}

mt_status mt_state_dict_save_model(const char *path, mt_model *m) {
    return mt_state_dict_save_params(path, mt_model_params(m), mt_model_param_data(m));
}

static int shape_matches(const mt_param *p, const mt_ckpt_tensor *t) {
    if (t->ndim != p->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != p->shape[d]) return 0;
    return 1;
}

static void shape_str(const int64_t *s, int nd, char *out, size_t cap) {
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < nd && k < cap; d++) k += (size_t)snprintf(out + k, cap - k, d ? ", %lld" : "%lld", (long long)s[d]);
    if (k < cap) snprintf(out + k, cap - k, "]");
}

mt_status mt_state_dict_load_params(const char *path, const mt_model_config *cfg, const mt_param_table *tab, float *span,
                                    int strict) {
    (void)cfg;
    mt_torch_file *f;
    MT_TRY(mt_torch_open(path, &f));
    const mt_pv *root = mt_torch_root(f), *tree = root;
    const mt_pv *sd = mt_pv_get(root, "state_dict");
    if (sd && sd->kind == MT_PV_DICT) tree = sd;
    if (tree->kind != MT_PV_DICT) {
        mt_torch_close(f);
        return mt_fail(MT_ERR_FORMAT, "%s: holds a %s, not a state dict", path, mt_pv_kind_name(tree->kind));
    }
    mt_flat flat = {0};
    mt_status s = mt_flatten(tree, "", &flat);
    if (s != MT_OK) {
        mt_torch_close(f);
        return s;
    }
    // Accept the newer "encoder" / "self_attention" spellings.
    for (size_t i = 0; i < flat.n; i++) {
        char *n = flat.e[i].name, *p;
        if ((p = strstr(n, "language_model.encoder."))) {
            char tmp[1024];
            snprintf(tmp, sizeof tmp, "%.*slanguage_model.transformer.%s", (int)(p - n), n, p + strlen("language_model.encoder."));
            char *d = mt_strdup(tmp);
            if (!d) { s = MT_ERR_NOMEM; break; }
            free(flat.e[i].name);
            flat.e[i].name = n = d;
        }
        while ((p = strstr(n, ".self_attention."))) memmove(p + 1, p + 6, strlen(p + 6) + 1); // drop "self_"
    }
    char *used = s == MT_OK ? mt_calloc(flat.n ? flat.n : 1, 1) : NULL;
    if (s == MT_OK && !used) s = MT_ERR_NOMEM;
    int missing = 0;
    for (int i = 0; i < tab->count && s == MT_OK; i++) {
        const mt_param *p = &tab->params[i];
        size_t j = 0;
        while (j < flat.n && strcmp(flat.e[j].name, p->name)) j++;
        if (j == flat.n) {
            missing++;
            if (strict) s = mt_fail(MT_ERR_NOT_FOUND, "%s: missing key '%s' (strict load; load non-strictly to keep the "
                                    "model's current value)", path, p->name);
            else mt_warn("%s: missing key '%s'; keeping the model's current value", path, p->name);
            continue;
        }
        used[j] = 1;
        const mt_ckpt_tensor *t = flat.e[j].t;
        if (!shape_matches(p, t)) {
            char a[128], b[128];
            shape_str(t->shape, t->ndim, a, sizeof a);
            shape_str(p->shape, p->ndim, b, sizeof b);
            if (strict) s = mt_fail(MT_ERR_INVALID, "%s: '%s' has shape %s in the file but %s in the model", path, p->name, a, b);
            else mt_warn("%s: skipping '%s': shape %s in the file, %s in the model", path, p->name, a, b);
            continue;
        }
        mt_ckpt_tensor_to_f32(t, span + p->offset);
    }
    for (size_t j = 0; j < flat.n && s == MT_OK; j++) {
        if (used[j]) continue;
        if (strict) s = mt_fail(MT_ERR_INVALID, "%s: unexpected key '%s' (not a parameter of this model; load non-strictly "
                                "to ignore it)", path, flat.e[j].name);
        else mt_warn("%s: ignoring unexpected key '%s'", path, flat.e[j].name);
    }
    (void)missing;
    free(used);
    mt_flat_free(&flat);
    mt_torch_close(f);
    return s;
}

mt_status mt_state_dict_load_model(const char *path, mt_model *m, int strict) {
    return mt_state_dict_load_params(path, mt_model_get_config(m), mt_model_params(m), mt_model_param_data(m), strict);
}

static mt_status check_arg(const mt_ckpt_src *s, const char *key, int ckpt, int model) {
    if (ckpt < 0 || ckpt == model) return MT_OK;
    return mt_fail(MT_ERR_INVALID, "checkpoint %s: its args say %s=%d but the model config says %d; fix the model config "
                   "(or use a matching checkpoint)", s->path, key, ckpt, model);
}

mt_status mt_megatron_load_params(const char *path, const mt_model_config *cfg, const mt_param_table *tab, float *span,
                                  mt_megatron_info *info) {
    mt_ckpt_src_opts o = {cfg->num_attention_heads, -1.0};
    mt_ckpt_src *s;
    MT_TRY(mt_ckpt_src_open(path, &o, &s));
    mt_status st = MT_OK;
    if (s->args.num_attention_heads > 0 && s->args.num_attention_heads != cfg->num_attention_heads) s->heads = 0;
    st = check_arg(s, "num_layers", s->args.num_layers, cfg->num_layers);
    if (st == MT_OK) st = check_arg(s, "hidden_size", s->args.hidden_size, cfg->hidden_size);
    if (st == MT_OK) st = check_arg(s, "num_attention_heads", s->args.num_attention_heads, cfg->num_attention_heads);
    if (st == MT_OK) st = check_arg(s, "max_position_embeddings", s->args.max_position_embeddings, cfg->max_position_embeddings);
    if (st == MT_OK && s->heads <= 0) s->heads = cfg->num_attention_heads;
    // Shapes cannot reveal a deeper checkpoint: count its layers.
    int ck_layers = 0;
    for (int i = 0; i < s->n; i++) {
        int l;
        if (sscanf(s->v[i].name, "language_model.transformer.layers.%d.", &l) == 1 && l + 1 > ck_layers) ck_layers = l + 1;
    }
    if (st == MT_OK && ck_layers != cfg->num_layers)
        st = mt_fail(MT_ERR_INVALID, "checkpoint %s has %d transformer layers but the model config says num_layers=%d; fix "
                     "the model config", path, ck_layers, cfg->num_layers);
    const mt_vtensor *we = mt_ckpt_src_find(s, "language_model.embedding.word_embeddings.weight");
    if (st == MT_OK && we && s->args.padded_vocab_size > 0 && we->rows != s->args.padded_vocab_size)
        st = mt_fail(MT_ERR_FORMAT, "checkpoint %s: its args say padded_vocab_size=%d but the word embeddings merge to %lld rows "
                     "over %d rank file(s); is a rank folder missing?", path, s->args.padded_vocab_size, (long long)we->rows, s->tp);
    if (st == MT_OK && we) {
        // Megatron pads the vocab to a multiple of make_vocab_size_divisible_by * TP (a merged
        // checkpoint keeps its training TP's padding). Rows far beyond that mean the checkpoint
        // was trained with another, larger vocab: taking its first rows would pair our token ids
        // with other tokens' embeddings.
        int tp = s->tp > s->args.tp_size ? s->tp : s->args.tp_size;
        if (tp < 8) tp = 8;
        int64_t mult = cfg->make_vocab_size_divisible_by > 128 ? cfg->make_vocab_size_divisible_by : 128;
        if (we->rows - cfg->vocab_size >= mult * tp)
            st = mt_fail(MT_ERR_INVALID, "checkpoint %s has %lld vocab rows but the tokenizer's vocab has %d tokens: the "
                         "checkpoint was trained with another vocab; set model.tokenizer.vocab_file (or the "
                         "pretrained_model_name) to the checkpoint's vocab", path, (long long)we->rows, cfg->vocab_size);
    }
    int loaded = 0, missing = 0;
    for (int i = 0; i < tab->count && st == MT_OK; i++) {
        const mt_param *p = &tab->params[i];
        const char *mn = mt_param_megatron_name(p);
        if (!mn) {
            missing++;
            continue;
        }
        const mt_vtensor *v = mt_ckpt_src_find(s, mn);
        if (!v) {
            st = mt_fail(MT_ERR_NOT_FOUND, "checkpoint %s has no '%s', which the model (%s architecture, %d layers) needs; "
                         "is the config's arch/num_layers right?", path, mn,
                         cfg->arch == MT_ARCH_BERT ? "post-LN BERT" : "Megatron pre-LN", cfg->num_layers);
            break;
        }
        int64_t grows = p->global_shape[0], gcols = p->ndim == 2 ? p->global_shape[1] : 1;
        int rows_ok = p->split == MT_SPLIT_VOCAB ? v->rows >= cfg->vocab_size : v->rows == grows;
        if (!rows_ok || v->cols != gcols || (v->ndim != p->ndim)) {
            st = mt_fail(MT_ERR_INVALID, "checkpoint %s: '%s' is [%lld x %lld] (%d-D) merged over %d rank(s) but the model needs "
                         "[%lld x %lld]%s; check hidden_size / ffn_hidden_size / max_position_embeddings / vocab", path, mn,
                         (long long)v->rows, (long long)v->cols, v->ndim, s->tp, (long long)grows, (long long)gcols,
                         p->split == MT_SPLIT_VOCAB ? " (at least vocab_size rows)" : "");
            break;
        }
        float *dst = span + p->offset;
        int r = cfg->tp_rank;
        switch (p->split) {
        case MT_SPLIT_COLUMN:
        case MT_SPLIT_VOCAB:
            st = mt_vtensor_read(s, v, r * p->shape[0], p->shape[0], 0, gcols, dst);
            break;
        case MT_SPLIT_ROW:
            st = mt_vtensor_read(s, v, 0, p->shape[0], r * p->shape[1], p->shape[1], dst);
            break;
        default:
            st = mt_vtensor_read(s, v, 0, grows, 0, gcols, dst);
        }
        loaded++;
    }
    if (st == MT_OK && info) {
        memset(info, 0, sizeof *info);
        info->checkpoint_version = s->version;
        info->has_version = s->has_version;
        info->tp_size = s->tp;
        info->iteration = s->iteration;
        info->args_found = s->args.found;
        info->num_layers = s->args.num_layers;
        info->hidden_size = s->args.hidden_size;
        info->num_attention_heads = s->args.num_attention_heads;
        info->max_position_embeddings = s->args.max_position_embeddings;
        info->padded_vocab_size = s->args.padded_vocab_size;
        info->loaded = loaded;
        info->missing = missing;
        info->unused = s->n - loaded;
    }
    mt_ckpt_src_free(s);
    return st;
}

mt_status mt_megatron_load(const char *path, mt_model *m, mt_megatron_info *info) {
    return mt_megatron_load_params(path, mt_model_get_config(m), mt_model_params(m), mt_model_param_data(m), info);
}
