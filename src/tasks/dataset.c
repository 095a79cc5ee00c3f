// mt_dataset: the feature store, batches with dynamic padding, and the text-classification and
// GLUE builders (NeMo's text_classification_dataset.py and glue_benchmark data_processors.py).
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "tasks/squad.h"
#include "core/file.h"
#include "tasks/outfile.h"
#include "tasks/task_internal.h"

void mt_task_options_default(mt_task_options *o, mt_task_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    switch (kind) {
    case MT_TASK_TEXT_CLASSIFICATION: o->max_seq_length = 256; break;
    case MT_TASK_GLUE: o->max_seq_length = 128; snprintf(o->glue_task, sizeof o->glue_task, "mrpc"); break;
    case MT_TASK_TOKEN_CLASSIFICATION: o->max_seq_length = 128; break;
    case MT_TASK_QUESTION_ANSWERING: o->max_seq_length = 384; break;
    case MT_TASK_PUNCT_CAPIT: o->max_seq_length = 128; break;
    case MT_TASK_INTENT_SLOT: o->max_seq_length = 50; o->slot_pad_label = -1; break;
    }
    o->doc_stride = 128;
    o->max_query_length = 64;
    o->max_answer_length = 30;
    o->n_best_size = 20;
    o->do_lower_case = 1;
    snprintf(o->pad_label, sizeof o->pad_label, "O");
}

mt_dataset *mt_ds_new(const mt_task_options *o) {
    mt_dataset *d = mt_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->opt = *o;
    d->glue = -1;
    return d;
}

void mt_dataset_free(mt_dataset *d) {
    if (!d) return;
    free(d->feat);
    free(d->ids);
    free(d->types);
    free(d->tlabels);
    free(d->word_at);
    free(d->lmask);
    for (int i = 0; i < d->n_labels; i++) free(d->labels[i]);
    free(d->labels);
    free(d->class_weights);
    free(d->ex_word_off);
    free(d->ex_gold);
    mt_squad_free(d->squad);
    free(d->tlabels2);
    for (int i = 0; i < d->n_labels2; i++) free(d->labels2[i]);
    free(d->labels2);
    free(d->class_weights2);
    free(d->ex_gold2);
    free(d->ex_label);
    free(d);
}

static mt_status resize(void **p, size_t n, size_t elem) {
    void *np = mt_realloc(*p, n * elem);
    if (!np) return MT_ERR_NOMEM;
    *p = np;
    return MT_OK;
}

mt_status mt_ds_add_feature(mt_dataset *d, const int32_t *ids, const int32_t *types, const int32_t *tlabels,
                            const float *lmask, const int32_t *word_at, int len, int32_t label, float target,
                            int32_t example) {
    return mt_ds_add_feature2(d, ids, types, tlabels, NULL, lmask, word_at, len, label, target, example);
}

mt_status mt_ds_add_feature2(mt_dataset *d, const int32_t *ids, const int32_t *types, const int32_t *tlabels,
                             const int32_t *tlabels2, const float *lmask, const int32_t *word_at, int len,
                             int32_t label, float target, int32_t example) {
    if (d->n_tok + (size_t)len > d->cap_tok) {
        size_t nc = d->cap_tok ? d->cap_tok : 4096;
        while (nc < d->n_tok + (size_t)len) nc *= 2;
        MT_TRY(resize((void **)&d->ids, nc, sizeof(int32_t)));
        MT_TRY(resize((void **)&d->types, nc, sizeof(int32_t)));
        MT_TRY(resize((void **)&d->tlabels, nc, sizeof(int32_t)));
        MT_TRY(resize((void **)&d->word_at, nc, sizeof(int32_t)));
        MT_TRY(resize((void **)&d->lmask, nc, sizeof(float)));
        if (d->head2 != MT_HEAD_NONE) MT_TRY(resize((void **)&d->tlabels2, nc, sizeof(int32_t)));
        d->cap_tok = nc;
    }
    if (d->n_feat + 1 > d->cap_feat) {
        size_t nc = d->cap_feat ? d->cap_feat * 2 : 1024;
        MT_TRY(resize((void **)&d->feat, nc, sizeof(mt_feature)));
        d->cap_feat = nc;
    }
    size_t off = d->n_tok;
    memcpy(d->ids + off, ids, (size_t)len * sizeof(int32_t));
    for (int i = 0; i < len; i++) {
        d->types[off + i] = types ? types[i] : 0;
        d->tlabels[off + i] = tlabels ? tlabels[i] : 0;
        d->word_at[off + i] = word_at ? word_at[i] : -1;
        d->lmask[off + i] = lmask ? lmask[i] : 1.0f;
        if (d->tlabels2) d->tlabels2[off + i] = tlabels2 ? tlabels2[i] : 0;
    }
    d->n_tok += (size_t)len;
    mt_feature *f = &d->feat[d->n_feat++];
    f->off = off;
    f->len = len;
    f->label = label;
    f->target = target;
    f->example = example;
    return MT_OK;
}

mt_status mt_ds_add_label(mt_dataset *d, const char *name) {
    char **nl = mt_realloc(d->labels, (size_t)(d->n_labels + 1) * sizeof *nl);
    if (!nl) return MT_ERR_NOMEM;
    d->labels = nl;
    d->labels[d->n_labels] = mt_strdup(name);
    if (!d->labels[d->n_labels]) return MT_ERR_NOMEM;
    d->n_labels++;
    return MT_OK;
}

mt_status mt_ds_add_label2(mt_dataset *d, const char *name) {
    char **nl = mt_realloc(d->labels2, (size_t)(d->n_labels2 + 1) * sizeof *nl);
    if (!nl) return MT_ERR_NOMEM;
    d->labels2 = nl;
    d->labels2[d->n_labels2] = mt_strdup(name);
    if (!d->labels2[d->n_labels2]) return MT_ERR_NOMEM;
    d->n_labels2++;
    return MT_OK;
}

int mt_ds_find_label2(const mt_dataset *d, const char *name) {
    for (int i = 0; i < d->n_labels2; i++)
        if (!strcmp(d->labels2[i], name)) return i;
    return -1;
}

int mt_ds_find_label(const mt_dataset *d, const char *name) {
    for (int i = 0; i < d->n_labels; i++)
        if (!strcmp(d->labels[i], name)) return i;
    return -1;
}

// NeMo's get_freq_weights + fill_class_weights: weight = total / (n_present * count) for the
// classes that occur (n_present = how many classes occur), 1 for the ones that do not.
mt_status mt_ds_set_weights(mt_dataset *d, const int64_t *counts, int n) {
    free(d->class_weights);
    d->class_weights = mt_malloc((size_t)n * sizeof(float));
    if (!d->class_weights) return MT_ERR_NOMEM;
    int64_t total = 0;
    int present = 0;
    for (int i = 0; i < n; i++) {
        total += counts[i];
        present += counts[i] > 0;
    }
    for (int i = 0; i < n; i++)
        d->class_weights[i] = counts[i] > 0 ? (float)((double)total / ((double)present * (double)counts[i])) : 1.0f;
    return MT_OK;
}

size_t mt_dataset_size(const mt_dataset *d) { return d->n_feat; }

void mt_dataset_keep_examples(mt_dataset *d, size_t n) {
    size_t k = 0;
    while (k < d->n_feat && d->feat[k].example >= 0 && (size_t)d->feat[k].example < n) k++;
    d->n_feat = k;
    if (d->n_examples > n) d->n_examples = n;
}
int mt_dataset_max_len(const mt_dataset *d) {
    int m = 0;
    for (size_t i = 0; i < d->n_feat; i++)
        if (d->feat[i].len > m) m = d->feat[i].len;
    return m;
}
int mt_dataset_feature_len(const mt_dataset *d, size_t i) { return i < d->n_feat ? d->feat[i].len : 0; }
int mt_dataset_num_classes(const mt_dataset *d) { return d->num_classes; }
int mt_dataset_num_labels(const mt_dataset *d) { return d->n_labels; }
const char *mt_dataset_label_name(const mt_dataset *d, int id) {
    return id >= 0 && id < d->n_labels ? d->labels[id] : NULL;
}
const float *mt_dataset_class_weights(const mt_dataset *d) { return d->class_weights; }
void mt_dataset_head(const mt_dataset *d, mt_head_kind *head, int *num_classes) {
    if (head) *head = d->head;
    if (num_classes) *num_classes = d->num_classes;
}

void mt_dataset_head2(const mt_dataset *d, mt_head_kind *head, int *num_classes) {
    if (head) *head = d->head2;
    if (num_classes) *num_classes = d->num_classes2;
}
int mt_dataset_num_labels2(const mt_dataset *d) { return d->n_labels2; }
const char *mt_dataset_label_name2(const mt_dataset *d, int id) {
    return id >= 0 && id < d->n_labels2 ? d->labels2[id] : NULL;
}

// Written whole or not at all (tasks/outfile.h): a failed write keeps the previous map, if any.
mt_status mt_dataset_write_label_ids(const mt_dataset *d, const char *path) {
    mt_outfile o;
    MT_TRY(mt_outfile_open(&o, path));
    for (int i = 0; i < d->n_labels; i++) fprintf(o.f, "%s\n", d->labels[i]);
    mt_status s = mt_outfile_commit(&o); // (a write error is reported here, naming path)
    mt_outfile_abort(&o);
    return s;
}

// ---------------------------------------------------------------------------------------------
// Text classification

static int last_token(char *line, size_t len, char **tok_start) {
    size_t e = len;
    while (e > 0 && (line[e - 1] == ' ' || line[e - 1] == '\t')) e--;
    if (e == 0) return 0;
    size_t b = e;
    while (b > 0 && line[b - 1] != ' ' && line[b - 1] != '\t') b--;
    line[e] = '\0';
    *tok_start = line + b;
    return 1;
}

// One example: [CLS] + pieces truncated so that the list is at most max_seq_length long, then
// [SEP] appended. This copies NeMo's off-by-one: a feature can have max_seq_length+1 tokens.
static mt_status tc_add(mt_dataset *d, mt_tokenizer *tok, mt_tokbuf *tb, int32_t **ids, size_t *cap, const char *text,
                        size_t len, int32_t label, int32_t example, const char *source) {
    MT_TRY(mt_tokbuf_run(tb, tok, text, len, source));
    size_t n = tb->n + 1;
    if (d->opt.max_seq_length > 0 && n > (size_t)d->opt.max_seq_length) {
        n = (size_t)d->opt.max_seq_length;
        d->too_long++;
    }
    if (n + 1 > *cap) {
        int32_t *ni = mt_realloc(*ids, (n + 1) * sizeof *ni);
        if (!ni) return MT_ERR_NOMEM;
        *ids = ni;
        *cap = n + 1;
    }
    (*ids)[0] = d->cls_id;
    for (size_t i = 1; i < n; i++) (*ids)[i] = tb->t[i - 1].id;
    (*ids)[n] = d->sep_id;
    return mt_ds_add_feature(d, *ids, NULL, NULL, NULL, NULL, (int)(n + 1), label, 0.0f, example);
}

mt_status mt_tc_build(mt_dataset *d, mt_tokenizer *tok, mt_lines *L, int labelled) {
    mt_tokbuf tb = {0};
    int32_t *ids = NULL;
    size_t cap = 0;
    mt_status s = MT_OK;
    char *line;
    size_t len;
    int r, example = 0, seen_nonblank = 0;
    char source[1100];
    while ((r = mt_lines_next(L, &line, &len)) == 1) {
        snprintf(source, sizeof source, "%s:%d", L->name, L->lineno);
        char *lab;
        if (!labelled) {
            // Prediction input: the whole line is the text; a trailing "<TAB>int" label is dropped.
            char *tab = strrchr(line, '\t');
            long v;
            size_t k = 0;
            while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
            if (k == len) continue; // blank line: blank output line
            if (tab && mt_parse_int(tab + 1, &v)) { *tab = '\0'; len = (size_t)(tab - line); }
            s = tc_add(d, tok, &tb, &ids, &cap, line, len, -1, L->lineno - 1, source);
            if (s) break;
            continue;
        }
        if (!last_token(line, len, &lab)) continue; // blank line
        long v;
        int first = !seen_nonblank;
        seen_nonblank = 1;
        if (!mt_parse_int(lab, &v)) {
            if (first) continue; // NeMo skips lines whose last token is not an int: an optional header
            s = mt_fail(MT_ERR_FORMAT,
                        "%s: missing label: the last token '%.40s' is not an integer; each line must be "
                        "'text<TAB>label' with label in [0,%d) (string labels: convert them with "
                        "'megatune data import-chemprot')",
                        source, lab, d->num_classes);
            break;
        }
        if (v < 0 || v >= d->num_classes) {
            s = mt_fail(MT_ERR_FORMAT, "%s: label %ld is out of range [0,%d); fix the line or set model.dataset.num_classes",
                        source, v, d->num_classes);
            break;
        }
        size_t tlen = (size_t)(lab - line);
        while (tlen > 0 && (line[tlen - 1] == ' ' || line[tlen - 1] == '\t')) tlen--;
        s = tc_add(d, tok, &tb, &ids, &cap, line, tlen, (int32_t)v, example++, source);
        if (s) break;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    d->n_examples = labelled ? (size_t)example : (size_t)L->lineno;
    if (s == MT_OK && labelled && d->n_feat == 0)
        s = mt_fail(MT_ERR_FORMAT, "%s: no example found (each line must be 'text<TAB>label' with an integer label)", L->name);
    mt_tokbuf_free(&tb);
    free(ids);
    return s;
}

// ---------------------------------------------------------------------------------------------
// GLUE: column positions, header and labels as NeMo's data_processors.py (from Hugging Face's
// glue processors) hard-code them. label_col -1 = the last column.

typedef struct {
    const char *name;
    int header;        // skip the first line
    int a, b, label;   // columns; b = -1 for single sentences, label = -1 for the last column
    const char *labels[3];
    int n_labels;      // 0 = regression
    const char *dev_file;
} mt_glue_spec;

static const mt_glue_spec glue_specs[MT_GLUE_COUNT] = {
    [MT_GLUE_COLA] = {"cola", 0, 3, -1, 1, {"0", "1"}, 2, "dev.tsv"},
    [MT_GLUE_SST2] = {"sst-2", 1, 0, -1, 1, {"0", "1"}, 2, "dev.tsv"},
    [MT_GLUE_MRPC] = {"mrpc", 1, 3, 4, 0, {"0", "1"}, 2, "dev.tsv"},
    [MT_GLUE_STSB] = {"sts-b", 1, 7, 8, -1, {0}, 0, "dev.tsv"},
    [MT_GLUE_QQP] = {"qqp", 1, 3, 4, 5, {"0", "1"}, 2, "dev.tsv"},
    [MT_GLUE_MNLI] = {"mnli", 1, 8, 9, -1, {"contradiction", "entailment", "neutral"}, 3, "dev_matched.tsv"},
    [MT_GLUE_QNLI] = {"qnli", 1, 1, 2, -1, {"entailment", "not_entailment"}, 2, "dev.tsv"},
    [MT_GLUE_RTE] = {"rte", 1, 1, 2, -1, {"entailment", "not_entailment"}, 2, "dev.tsv"},
    [MT_GLUE_WNLI] = {"wnli", 1, 1, 2, -1, {"0", "1"}, 2, "dev.tsv"},
};

int mt_glue_task_id(const char *name) {
    for (int i = 0; i < MT_GLUE_COUNT; i++)
        if (!strcmp(glue_specs[i].name, name)) return i;
    if (!strcmp(name, "sst2")) return MT_GLUE_SST2;
    if (!strcmp(name, "stsb") || !strcmp(name, "sts_b")) return MT_GLUE_STSB;
    if (!strcmp(name, "mnli-mm") || !strcmp(name, "mnli_mismatched")) return MT_GLUE_MNLI;
    return -1;
}
const char *mt_glue_task_name(int id) { return id >= 0 && id < MT_GLUE_COUNT ? glue_specs[id].name : "?"; }

static mt_status glue_add(mt_dataset *d, mt_tokenizer *tok, mt_tokbuf *ta, mt_tokbuf *tbb, const char *a,
                          const char *b, int32_t label, float target, int32_t example, const char *source) {
    MT_TRY(mt_tokbuf_run(ta, tok, a, strlen(a), source));
    size_t na = ta->n, nb = 0;
    int max = d->opt.max_seq_length;
    if (b) {
        MT_TRY(mt_tokbuf_run(tbb, tok, b, strlen(b), source));
        nb = tbb->n;
        // BERT's _truncate_seq_pair: drop the last token of the longer side (b on ties)
        // until [CLS] a [SEP] b [SEP] fits.
        size_t lim = max > 3 ? (size_t)max - 3 : 0;
        if (na + nb > lim) d->too_long++;
        while (na + nb > lim) {
            if (na > nb) na--;
            else nb--;
        }
    } else {
        size_t lim = max > 2 ? (size_t)max - 2 : 0;
        if (na > lim) { na = lim; d->too_long++; }
    }
    size_t n = na + nb + (b ? 3 : 2);
    int32_t *ids = mt_malloc(n * sizeof *ids), *types = mt_malloc(n * sizeof *types);
    mt_status s = MT_OK;
    if (!ids || !types) s = MT_ERR_NOMEM;
    else {
        size_t k = 0;
        ids[k] = d->cls_id; types[k++] = 0;
        for (size_t i = 0; i < na; i++) { ids[k] = ta->t[i].id; types[k++] = 0; }
        ids[k] = d->sep_id; types[k++] = 0;
        if (b) {
            for (size_t i = 0; i < nb; i++) { ids[k] = tbb->t[i].id; types[k++] = 1; }
            ids[k] = d->sep_id; types[k++] = 1;
        }
        s = mt_ds_add_feature(d, ids, types, NULL, NULL, NULL, (int)n, label, target, example);
    }
    free(ids);
    free(types);
    return s;
}

mt_status mt_glue_build(mt_dataset *d, mt_tokenizer *tok, mt_lines *L, int labelled) {
    const mt_glue_spec *g = &glue_specs[d->glue];
    mt_tokbuf ta = {0}, tbb = {0};
    mt_status s = MT_OK;
    char *line;
    size_t len;
    int r, example = 0;
    char source[1100];
    int need = g->a > g->b ? g->a : g->b;
    if (g->label > need) need = g->label;
    while ((r = mt_lines_next(L, &line, &len)) == 1) {
        snprintf(source, sizeof source, "%s:%d", L->name, L->lineno);
        if (labelled && g->header && L->lineno == 1) continue;
        int blank = 1;
        for (size_t i = 0; i < len; i++)
            if (line[i] != ' ' && line[i] != '\t') { blank = 0; break; }
        if (blank) continue;
        char *f[64];
        int nf = mt_split_tab(line, f, 64);
        const char *a, *b = NULL;
        int32_t label = -1;
        float target = 0.0f;
        if (!labelled) {
            // Prediction input: "sentence" or "sentence_a<TAB>sentence_b"; further columns ignored.
            a = f[0];
            if (g->b >= 0) {
                if (nf < 2) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: %s is a sentence-pair task: give 'sentence_a<TAB>sentence_b' per line",
                                source, g->name);
                    break;
                }
                b = f[1];
            }
        } else {
            int lcol = g->label < 0 ? nf - 1 : g->label;
            if ((nf <= need || (g->label < 0 && nf < 2)) && d->glue == MT_GLUE_QQP) {
                d->skipped++; // NeMo's (Hugging Face's) QQP processor skips rows with missing fields
                continue;
            }
            if (nf <= need || (g->label < 0 && nf < 2)) {
                s = mt_fail(MT_ERR_FORMAT,
                            "%s: %d tab-separated column(s), but GLUE %s needs column %d (0-based); is this the "
                            "standard GLUE %s file?",
                            source, nf, g->name, need, g->name);
                break;
            }
            a = f[g->a];
            if (g->b >= 0) b = f[g->b];
            const char *lab = f[lcol];
            if (!*lab) {
                s = mt_fail(MT_ERR_FORMAT, "%s: missing label in column %d", source, lcol);
                break;
            }
            if (g->n_labels == 0) {
                double v;
                if (!mt_parse_double(lab, &v)) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: the STS-B score '%.40s' (column %d) is not a number", source, lab, lcol);
                    break;
                }
                target = (float)v;
            } else {
                label = mt_ds_find_label(d, lab);
                if (label < 0) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: label '%.40s' (column %d) is not one of GLUE %s's labels (%s%s%s%s%s)",
                                source, lab, lcol, g->name, g->labels[0], g->n_labels > 1 ? ", " : "",
                                g->n_labels > 1 ? g->labels[1] : "", g->n_labels > 2 ? ", " : "",
                                g->n_labels > 2 ? g->labels[2] : "");
                    break;
                }
            }
        }
        s = glue_add(d, tok, &ta, &tbb, a, b, label, target, labelled ? example : L->lineno - 1, source);
        if (s) break;
        example++;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    d->n_examples = labelled ? (size_t)example : (size_t)L->lineno;
    if (s == MT_OK && d->skipped) mt_warn("%s: skipped %d line(s) with missing fields, as NeMo does for QQP", L->name, d->skipped);
    if (s == MT_OK && labelled && d->n_feat == 0)
        s = mt_fail(MT_ERR_FORMAT, "%s: no example found for GLUE %s", L->name, g->name);
    mt_tokbuf_free(&ta);
    mt_tokbuf_free(&tbb);
    return s;
}

// ---------------------------------------------------------------------------------------------

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static mt_status ds_setup(mt_dataset *d, mt_tokenizer *tok) {
    d->pad_id = mt_tokenizer_pad_id(tok);
    d->cls_id = mt_tokenizer_cls_id(tok);
    d->sep_id = mt_tokenizer_sep_id(tok);
    d->unk_id = mt_tokenizer_unk_id(tok);
    if (d->cls_id < 0 || d->sep_id < 0)
        return mt_fail(MT_ERR_NOT_FOUND, "the vocab has no [CLS] or [SEP] token; use a BERT WordPiece vocab");
    if (d->pad_id < 0) d->pad_id = 0;
    return MT_OK;
}

// Creates the empty dataset with its label map and head (shared by loading and prediction).
mt_status mt_task_setup_dataset(const mt_task_options *o, mt_tokenizer *tok, const mt_dataset *label_source,
                                mt_dataset **out) {
    *out = NULL;
    if (o->max_seq_length < 3)
        return mt_fail(MT_ERR_INVALID, "model.dataset.max_seq_length is %d; it must be at least 3", o->max_seq_length);
    mt_dataset *d = mt_ds_new(o);
    if (!d) return MT_ERR_NOMEM;
    mt_status s = ds_setup(d, tok);
    if (s) { mt_dataset_free(d); return s; }
    char buf[32];
    switch (o->kind) {
    case MT_TASK_TEXT_CLASSIFICATION: {
        int nc = o->num_classes;
        if (nc <= 0 && label_source) nc = label_source->num_classes;
        if (nc <= 0) {
            mt_dataset_free(d);
            return mt_fail(MT_ERR_INVALID, "text classification needs model.dataset.num_classes (got %d)", o->num_classes);
        }
        d->head = MT_HEAD_SEQUENCE_CLASSIFIER;
        d->num_classes = nc;
        for (int i = 0; i < nc && !s; i++) {
            snprintf(buf, sizeof buf, "%d", i);
            s = mt_ds_add_label(d, buf);
        }
        break;
    }
    case MT_TASK_GLUE: {
        d->glue = mt_glue_task_id(o->glue_task);
        if (d->glue < 0) {
            mt_dataset_free(d);
            return mt_fail(MT_ERR_INVALID,
                           "unknown GLUE task '%s'; use one of cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli",
                           o->glue_task);
        }
        const mt_glue_spec *g = &glue_specs[d->glue];
        d->head = g->n_labels ? MT_HEAD_SEQUENCE_CLASSIFIER : MT_HEAD_SEQUENCE_REGRESSION;
        d->num_classes = g->n_labels ? g->n_labels : 1;
        for (int i = 0; i < g->n_labels && !s; i++) s = mt_ds_add_label(d, g->labels[i]);
        break;
    }
    case MT_TASK_TOKEN_CLASSIFICATION:
        d->head = MT_HEAD_TOKEN_CLASSIFIER;
        if (label_source) {
            for (int i = 0; i < label_source->n_labels && !s; i++) s = mt_ds_add_label(d, label_source->labels[i]);
        } else if (o->label_ids_file[0]) {
            s = mt_ner_read_label_ids(d, o->label_ids_file);
        }
        d->num_classes = d->n_labels;
        break;
    case MT_TASK_QUESTION_ANSWERING:
        d->head = MT_HEAD_QA;
        d->num_classes = 2;
        break;
    case MT_TASK_PUNCT_CAPIT:
    case MT_TASK_INTENT_SLOT:
        // P&C: punct map + capit map; intent/slot: intent map + slot map. Maps come from the train
        // split (label_source), the given files, or (left empty here) the data being loaded.
        d->head = o->kind == MT_TASK_PUNCT_CAPIT ? MT_HEAD_TOKEN_CLASSIFIER : MT_HEAD_SEQUENCE_CLASSIFIER;
        d->head2 = MT_HEAD_TOKEN_CLASSIFIER;
        if (label_source) {
            for (int i = 0; i < label_source->n_labels && !s; i++) s = mt_ds_add_label(d, label_source->labels[i]);
            for (int i = 0; i < label_source->n_labels2 && !s; i++) s = mt_ds_add_label2(d, label_source->labels2[i]);
        } else {
            if (o->label_ids_file[0]) s = mt_read_label_file(d, o->label_ids_file, 0);
            if (!s && o->label_ids_file2[0]) s = mt_read_label_file(d, o->label_ids_file2, 1);
        }
        d->num_classes = d->n_labels;
        d->num_classes2 = d->n_labels2;
        if (!s && o->kind == MT_TASK_INTENT_SLOT && d->opt.slot_pad_label < 0 && d->n_labels2 > 0) {
            int pad = mt_ds_find_label2(d, "O"); // NeMo: pad_label -1 = the 'O' slot
            d->opt.slot_pad_label = pad >= 0 ? pad : d->n_labels2 - 1;
        }
        break;
    default:
        mt_dataset_free(d);
        return mt_fail(MT_ERR_UNSUPPORTED, "task kind %d has no loader in this build", (int)o->kind);
    }
    if (s) { mt_dataset_free(d); return s; }
    *out = d;
    return MT_OK;
}

static mt_status class_weights_from_labels(mt_dataset *d) {
    int64_t *counts = mt_calloc((size_t)d->num_classes, sizeof *counts);
    if (!counts) return MT_ERR_NOMEM;
    for (size_t i = 0; i < d->n_feat; i++)
        if (d->feat[i].label >= 0 && d->feat[i].label < d->num_classes) counts[d->feat[i].label]++;
    mt_status s = mt_ds_set_weights(d, counts, d->num_classes);
    free(counts);
    return s;
}

mt_status mt_dataset_load(const mt_task_options *o, mt_tokenizer *tok, const char *path, const char *split,
                          const mt_dataset *label_source, mt_dataset **out) {
    *out = NULL;
    mt_dataset *d;
    MT_TRY(mt_task_setup_dataset(o, tok, label_source, &d));
    d->has_labels = 1;
    mt_status s = MT_OK;
    if (o->kind == MT_TASK_TOKEN_CLASSIFICATION) {
        s = mt_ner_load(d, tok, path, split, label_source);
    } else if (o->kind == MT_TASK_QUESTION_ANSWERING) {
        s = mt_squad_load(d, tok, path, !strcmp(split, "train"), 1);
    } else if (o->kind == MT_TASK_PUNCT_CAPIT) {
        s = mt_pnc_load(d, tok, path, split);
    } else if (o->kind == MT_TASK_INTENT_SLOT) {
        s = mt_is_load(d, tok, path, split);
    } else {
        char file[2048];
        if (is_dir(path)) {
            const char *name = split;
            if (o->kind == MT_TASK_GLUE && d->glue == MT_GLUE_MNLI) {
                if (!strcmp(split, "dev") || !strcmp(split, "validation")) name = "dev_matched";
                if (!strcmp(o->glue_task, "mnli-mm") && (!strcmp(split, "dev") || !strcmp(split, "validation")))
                    name = "dev_mismatched";
            }
            s = mt_path_fmt(file, sizeof file, "%s/%s.tsv", path, name);
        } else {
            s = mt_path_fmt(file, sizeof file, "%s", path);
        }
        mt_lines L;
        if (!s) s = mt_lines_open(&L, file);
        if (!s) {
            s = o->kind == MT_TASK_GLUE ? mt_glue_build(d, tok, &L, 1) : mt_tc_build(d, tok, &L, 1);
            mt_lines_close(&L);
        }
        if (!s && d->too_long)
            mt_info("%s: %d of %zu examples truncated to max_seq_length=%d", file, d->too_long, d->n_feat,
                        o->max_seq_length);
        if (!s && o->class_balancing && d->head == MT_HEAD_SEQUENCE_CLASSIFIER) s = class_weights_from_labels(d);
    }
    if (s) {
        mt_dataset_free(d);
        return s;
    }
    *out = d;
    return MT_OK;
}

// ---------------------------------------------------------------------------------------------
// Batches

static mt_status ensure(void **p, size_t need, size_t elem) {
    void *np = mt_realloc(*p, need * elem);
    if (!np) return MT_ERR_NOMEM;
    *p = np;
    return MT_OK;
}

mt_status mt_dataset_make_batch(const mt_dataset *d, const size_t *indices, int n, mt_batch_buffer *buf,
                                mt_batch *batch) {
    if (n <= 0) return mt_fail(MT_ERR_INVALID, "mt_dataset_make_batch: empty batch (n=%d)", n);
    int T = 0;
    // QA: NeMo and BERT pad every feature to max_seq_length and SpanningLoss softmaxes over all
    // positions, padding included; padding to the batch's longest would change the loss.
    if (d->head == MT_HEAD_QA) T = d->opt.max_seq_length;
    for (int i = 0; i < n; i++) {
        if (indices[i] >= d->n_feat)
            return mt_fail(MT_ERR_INVALID, "mt_dataset_make_batch: feature index %zu out of range (%zu features)",
                           indices[i], d->n_feat);
        if (d->feat[indices[i]].len > T) T = d->feat[indices[i]].len;
    }
    size_t nt = (size_t)n * (size_t)T;
    if (nt > buf->cap_tokens) {
        MT_TRY(ensure((void **)&buf->input_ids, nt, sizeof(int32_t)));
        MT_TRY(ensure((void **)&buf->token_type_ids, nt, sizeof(int32_t)));
        MT_TRY(ensure((void **)&buf->attention_mask, nt, sizeof(int32_t)));
        MT_TRY(ensure((void **)&buf->loss_mask, nt, sizeof(float)));
        // labels hold (B,T) for token heads and (B) for sequence heads: size them for the larger
        MT_TRY(ensure((void **)&buf->labels, nt, sizeof(int32_t)));
        MT_TRY(ensure((void **)&buf->labels2, nt, sizeof(int32_t)));
        buf->cap_tokens = nt;
    }
    if ((size_t)n > buf->cap_rows) {
        MT_TRY(ensure((void **)&buf->targets, (size_t)n, sizeof(float)));
        MT_TRY(ensure((void **)&buf->start_positions, (size_t)n, sizeof(int32_t)));
        MT_TRY(ensure((void **)&buf->end_positions, (size_t)n, sizeof(int32_t)));
        buf->cap_rows = (size_t)n;
    }
    int token_head = d->head == MT_HEAD_TOKEN_CLASSIFIER;
    for (int i = 0; i < n; i++) {
        const mt_feature *f = &d->feat[indices[i]];
        size_t row = (size_t)i * (size_t)T;
        for (int t = 0; t < T; t++) {
            int in = t < f->len;
            buf->input_ids[row + t] = in ? d->ids[f->off + t] : d->pad_id;
            buf->token_type_ids[row + t] = in ? d->types[f->off + t] : 0;
            buf->attention_mask[row + t] = in;
            buf->loss_mask[row + t] = in ? d->lmask[f->off + t] : 0.0f;
            if (token_head) buf->labels[row + t] = in ? d->tlabels[f->off + t] : 0; // pad label id 0
            // second head: padding takes the pad label id the features use at [CLS]/[SEP]
            if (d->tlabels2) buf->labels2[row + t] = d->tlabels2[f->off + (in ? t : 0)];
        }
        if (!token_head) buf->labels[i] = f->label < 0 ? 0 : f->label;
        buf->targets[i] = f->target;
        buf->start_positions[i] = d->head == MT_HEAD_QA ? mt_squad_feature_start(d, indices[i]) : 0;
        buf->end_positions[i] = d->head == MT_HEAD_QA ? mt_squad_feature_end(d, indices[i]) : 0;
    }
    memset(batch, 0, sizeof *batch);
    batch->B = n;
    batch->T = T;
    batch->input_ids = buf->input_ids;
    batch->token_type_ids = buf->token_type_ids;
    batch->attention_mask = buf->attention_mask;
    batch->class_weights = d->class_weights;
    if (d->head == MT_HEAD_SEQUENCE_REGRESSION) {
        batch->targets = buf->targets;
    } else if (d->head == MT_HEAD_QA) {
        batch->start_positions = buf->start_positions;
        batch->end_positions = buf->end_positions;
    } else {
        batch->labels = buf->labels;
        if (token_head || d->tlabels2) batch->loss_mask = buf->loss_mask;
    }
    if (d->tlabels2) {
        batch->labels2 = buf->labels2;
        batch->class_weights2 = d->class_weights2;
    }
    return MT_OK;
}

void mt_batch_buffer_free(mt_batch_buffer *buf) {
    free(buf->input_ids);
    free(buf->token_type_ids);
    free(buf->attention_mask);
    free(buf->labels);
    free(buf->loss_mask);
    free(buf->targets);
    free(buf->start_positions);
    free(buf->end_positions);
    free(buf->labels2);
    memset(buf, 0, sizeof *buf);
}
