// Metrics: NeMo's ClassificationReport, the GLUE metrics, conlleval, and mt_metrics (task.h)
// which accumulates a model's predictions over evaluation batches.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/metrics.h"
#include "tasks/squad.h"
#include "tasks/task_internal.h"

mt_status mt_class_report_compute(const int32_t *pred, const int32_t *gold, size_t n, int num_classes,
                                  mt_class_report *r) {
    memset(r, 0, sizeof *r);
    if (num_classes <= 0) return mt_fail(MT_ERR_INVALID, "classification report: num_classes is %d", num_classes);
    size_t C = (size_t)num_classes;
    r->num_classes = num_classes;
    r->tp = mt_calloc(C, sizeof(int64_t));
    r->fp = mt_calloc(C, sizeof(int64_t));
    r->fn = mt_calloc(C, sizeof(int64_t));
    r->support = mt_calloc(C, sizeof(int64_t));
    r->precision = mt_calloc(C, sizeof(double));
    r->recall = mt_calloc(C, sizeof(double));
    r->f1 = mt_calloc(C, sizeof(double));
    if (!r->tp || !r->fp || !r->fn || !r->support || !r->precision || !r->recall || !r->f1) {
        mt_class_report_free(r);
        return MT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int g = gold[i], p = pred[i];
        if (g < 0 || g >= num_classes) continue;
        r->support[g]++;
        r->total++;
        if (p == g) r->tp[g]++;
        else {
            r->fn[g]++;
            if (p >= 0 && p < num_classes) r->fp[p]++;
        }
    }
    int64_t stp = 0, sfp = 0, sfn = 0;
    int nonempty = 0;
    double sp = 0, sr = 0, sf = 0, wp = 0, wr = 0, wf = 0;
    for (size_t c = 0; c < C; c++) {
        double tp = (double)r->tp[c];
        r->precision[c] = r->tp[c] + r->fp[c] ? 100.0 * tp / (double)(r->tp[c] + r->fp[c]) : 0.0;
        r->recall[c] = r->tp[c] + r->fn[c] ? 100.0 * tp / (double)(r->tp[c] + r->fn[c]) : 0.0;
        double pr = r->precision[c] + r->recall[c];
        r->f1[c] = pr > 0 ? 2.0 * r->precision[c] * r->recall[c] / pr : 0.0;
        stp += r->tp[c];
        sfp += r->fp[c];
        sfn += r->fn[c];
        nonempty += r->support[c] > 0;
        sp += r->precision[c];
        sr += r->recall[c];
        sf += r->f1[c];
        wp += r->precision[c] * (double)r->support[c];
        wr += r->recall[c] * (double)r->support[c];
        wf += r->f1[c] * (double)r->support[c];
    }
    r->micro.precision = stp + sfp ? 100.0 * (double)stp / (double)(stp + sfp) : 0.0;
    r->micro.recall = stp + sfn ? 100.0 * (double)stp / (double)(stp + sfn) : 0.0;
    double mpr = r->micro.precision + r->micro.recall;
    r->micro.f1 = mpr > 0 ? 2.0 * r->micro.precision * r->micro.recall / mpr : 0.0;
    if (nonempty) {
        r->macro.precision = sp / nonempty;
        r->macro.recall = sr / nonempty;
        r->macro.f1 = sf / nonempty;
    }
    if (r->total) {
        r->weighted.precision = wp / (double)r->total;
        r->weighted.recall = wr / (double)r->total;
        r->weighted.f1 = wf / (double)r->total;
    }
    return MT_OK;
}

void mt_class_report_free(mt_class_report *r) {
    free(r->tp);
    free(r->fp);
    free(r->fn);
    free(r->support);
    free(r->precision);
    free(r->recall);
    free(r->f1);
    memset(r, 0, sizeof *r);
}

void mt_class_report_print(const mt_class_report *r, const char *const *names, FILE *out) {
    fprintf(out, "%-50s   %-10s   %-10s   %-10s   %-10s\n", "label", "precision", "recall", "f1", "support");
    char label[128];
    for (int c = 0; c < r->num_classes; c++) {
        if (names && names[c]) snprintf(label, sizeof label, "%.60s (label_id: %d)", names[c], c);
        else snprintf(label, sizeof label, "label_id: %d", c);
        fprintf(out, "%-50s   %8.2f   %8.2f   %8.2f   %8lld\n", label, r->precision[c], r->recall[c], r->f1[c],
                (long long)r->support[c]);
    }
    fprintf(out, "-------------------\n");
    const mt_prf *rows[3] = {&r->micro, &r->macro, &r->weighted};
    const char *rn[3] = {"micro avg", "macro avg", "weighted avg"};
    for (int i = 0; i < 3; i++)
        fprintf(out, "%-50s   %8.2f   %8.2f   %8.2f   %8lld\n", rn[i], rows[i]->precision, rows[i]->recall, rows[i]->f1,
                (long long)r->total);
}

double mt_metric_accuracy(const int32_t *pred, const int32_t *gold, size_t n) {
    if (!n) return 0.0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == gold[i];
    return (double)ok / (double)n;
}

// sklearn's multiclass MCC from the confusion matrix:
// (c*s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), 0 when a factor is 0.
double mt_metric_mcc(const int32_t *pred, const int32_t *gold, size_t n, int num_classes) {
    if (num_classes <= 0 || !n) return 0.0;
    double *t = calloc((size_t)num_classes, sizeof *t), *p = calloc((size_t)num_classes, sizeof *p);
    if (!t || !p) { free(t); free(p); return 0.0; }
    double c = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        if (gold[i] < 0 || gold[i] >= num_classes || pred[i] < 0 || pred[i] >= num_classes) continue;
        t[gold[i]] += 1;
        p[pred[i]] += 1;
        c += pred[i] == gold[i];
        s += 1;
    }
    double pt = 0, pp = 0, tt = 0;
    for (int k = 0; k < num_classes; k++) {
        pt += p[k] * t[k];
        pp += p[k] * p[k];
        tt += t[k] * t[k];
    }
    free(t);
    free(p);
    double cov_ytyp = c * s - pt, cov_ypyp = s * s - pp, cov_ytyt = s * s - tt;
    if (cov_ypyp * cov_ytyt == 0) return 0.0;
    return cov_ytyp / sqrt(cov_ytyt * cov_ypyp);
}

double mt_metric_f1_binary(const int32_t *pred, const int32_t *gold, size_t n) {
    double tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        if (pred[i] == 1 && gold[i] == 1) tp++;
        else if (pred[i] == 1) fp++;
        else if (gold[i] == 1) fn++;
    }
    return tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
}

double mt_metric_pearson(const double *x, const double *y, size_t n) {
    if (n < 2) return 0.0;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double a = x[i] - mx, b = y[i] - my;
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if (sxx == 0 || syy == 0) return 0.0;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

typedef struct {
    double v;
    size_t i;
} mt_ranked;

static int cmp_ranked(const void *a, const void *b) {
    double x = ((const mt_ranked *)a)->v, y = ((const mt_ranked *)b)->v;
    return x < y ? -1 : x > y ? 1 : 0;
}

// Average ranks (1-based), ties sharing the mean of their positions, as scipy.stats.rankdata.
static int average_ranks(const double *v, size_t n, double *rank) {
    mt_ranked *r = malloc(n * sizeof *r);
    if (!r) return 0;
    for (size_t i = 0; i < n; i++) {
        r[i].v = v[i];
        r[i].i = i;
    }
    qsort(r, n, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && r[j + 1].v == r[i].v) j++;
        double rk = (double)(i + j) / 2.0 + 1.0;
        for (size_t k = i; k <= j; k++) rank[r[k].i] = rk;
        i = j + 1;
    }
    free(r);
    return 1;
}

double mt_metric_spearman(const double *x, const double *y, size_t n) {
    if (n < 2) return 0.0;
    double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
    double r = 0.0;
    if (rx && ry && average_ranks(x, n, rx) && average_ranks(y, n, ry)) r = mt_metric_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

// ---------------------------------------------------------------------------------------------
// conlleval

typedef struct {
    char tag[16];
    char type[64];
} mt_ctag;

static void split_tag(const char *s, mt_ctag *t) {
    const char *d = strchr(s, '-');
    size_t n = d ? (size_t)(d - s) : strlen(s);
    if (n >= sizeof t->tag) n = sizeof t->tag - 1;
    memcpy(t->tag, s, n);
    t->tag[n] = '\0';
    t->type[0] = '\0';
    if (d) {
        const char *e = strchr(d + 1, '-');
        size_t m = e ? (size_t)(e - d - 1) : strlen(d + 1);
        if (m >= sizeof t->type) m = sizeof t->type - 1;
        memcpy(t->type, d + 1, m);
        t->type[m] = '\0';
        if (!strcmp(t->type, "0")) t->type[0] = '\0'; // perl: $type ? $type : ""
    }
}

#define EQ(a, b) (!strcmp((a), (b)))

static int end_of_chunk(const mt_ctag *prev, const mt_ctag *cur) {
    const char *p = prev->tag, *t = cur->tag;
    int e = 0;
    if (EQ(p, "B") && EQ(t, "B")) e = 1;
    if (EQ(p, "B") && EQ(t, "O")) e = 1;
    if (EQ(p, "I") && EQ(t, "B")) e = 1;
    if (EQ(p, "I") && EQ(t, "O")) e = 1;
    if (EQ(p, "E") && EQ(t, "E")) e = 1;
    if (EQ(p, "E") && EQ(t, "I")) e = 1;
    if (EQ(p, "E") && EQ(t, "O")) e = 1;
    if (!EQ(p, "O") && !EQ(p, ".") && !EQ(prev->type, cur->type)) e = 1;
    if (EQ(p, "]") || EQ(p, "[")) e = 1;
    return e;
}

static int start_of_chunk(const mt_ctag *prev, const mt_ctag *cur) {
    const char *p = prev->tag, *t = cur->tag;
    int s = 0;
    if (EQ(p, "B") && EQ(t, "B")) s = 1;
    if (EQ(p, "I") && EQ(t, "B")) s = 1;
    if (EQ(p, "O") && EQ(t, "B")) s = 1;
    if (EQ(p, "O") && EQ(t, "I")) s = 1;
    if (EQ(p, "E") && EQ(t, "E")) s = 1;
    if (EQ(p, "E") && EQ(t, "I")) s = 1;
    if (EQ(p, "O") && EQ(t, "E")) s = 1;
    if (!EQ(t, "O") && !EQ(t, ".") && !EQ(prev->type, cur->type)) s = 1;
    if (EQ(t, "[") || EQ(t, "]")) s = 1;
    return s;
}

void mt_conlleval(const char *const *gold, const char *const *guess, const uint8_t *boundary, size_t n,
                  mt_conll_result *r) {
    memset(r, 0, sizeof *r);
    mt_ctag lc = {"O", ""}, lg = {"O", ""}, c, g;
    int in_correct = 0;
    for (size_t i = 0; i < n; i++) {
        if (boundary && boundary[i]) {
            c = (mt_ctag){"O", ""};
            g = (mt_ctag){"O", ""};
        } else {
            split_tag(gold[i], &c);
            split_tag(guess[i], &g);
        }
        int ec = end_of_chunk(&lc, &c), eg = end_of_chunk(&lg, &g);
        int sc = start_of_chunk(&lc, &c), sg = start_of_chunk(&lg, &g);
        if (in_correct) {
            if (ec && eg && EQ(lg.type, lc.type)) {
                in_correct = 0;
                r->correct_chunks++;
            } else if (ec != eg || !EQ(g.type, c.type)) {
                in_correct = 0;
            }
        }
        if (sc && sg && EQ(g.type, c.type)) in_correct = 1;
        if (sc) r->found_correct++;
        if (sg) r->found_guessed++;
        if (!(boundary && boundary[i])) {
            if (EQ(c.tag, g.tag) && EQ(c.type, g.type)) r->correct_tags++;
            r->tokens++;
        }
        lc = c;
        lg = g;
    }
    if (in_correct) r->correct_chunks++;
    r->precision = r->found_guessed ? 100.0 * (double)r->correct_chunks / (double)r->found_guessed : 0.0;
    r->recall = r->found_correct ? 100.0 * (double)r->correct_chunks / (double)r->found_correct : 0.0;
    r->f1 = r->precision + r->recall > 0 ? 2 * r->precision * r->recall / (r->precision + r->recall) : 0.0;
    r->accuracy = r->tokens ? 100.0 * (double)r->correct_tags / (double)r->tokens : 0.0;
}

// ---------------------------------------------------------------------------------------------
// mt_metrics

struct mt_metrics {
    const mt_dataset *d;
    int32_t *pred, *gold; // sequence classification
    double *xp, *xg;      // regression
    size_t n, cap;
    int32_t *word_pred;   // token classification: one slot per word of the dataset, -1 = not yet seen
    size_t n_words;
    mt_squad_results *qa; // question answering: logits per feature, post-processed at compute
    int32_t *word_pred2;  // two-head tasks: the second head's word predictions (capit / slot)
    int32_t *ex_pred;     // intent/slot: intent prediction per example (its first window), -1 = not seen
};

mt_status mt_metrics_create(const mt_dataset *d, mt_metrics **out) {
    *out = NULL;
    mt_metrics *m = mt_calloc(1, sizeof *m);
    if (!m) return MT_ERR_NOMEM;
    m->d = d;
    if (d->head == MT_HEAD_QA) {
        mt_status s = mt_squad_results_create(d, &m->qa);
        if (s) { free(m); return s; }
    }
    if (d->head == MT_HEAD_TOKEN_CLASSIFIER || d->head2 != MT_HEAD_NONE) {
        m->n_words = d->n_examples ? d->ex_word_off[d->n_examples] : 0;
        m->word_pred = mt_malloc((m->n_words ? m->n_words : 1) * sizeof *m->word_pred);
        if (!m->word_pred) { free(m); return MT_ERR_NOMEM; }
        for (size_t i = 0; i < m->n_words; i++) m->word_pred[i] = -1;
    }
    if (d->head2 != MT_HEAD_NONE) {
        m->word_pred2 = mt_malloc((m->n_words ? m->n_words : 1) * sizeof *m->word_pred2);
        m->ex_pred = mt_malloc((d->n_examples ? d->n_examples : 1) * sizeof *m->ex_pred);
        if (!m->word_pred2 || !m->ex_pred) { mt_metrics_free(m); return MT_ERR_NOMEM; }
        for (size_t i = 0; i < m->n_words; i++) m->word_pred2[i] = -1;
        for (size_t i = 0; i < d->n_examples; i++) m->ex_pred[i] = -1;
    }
    *out = m;
    return MT_OK;
}

void mt_metrics_free(mt_metrics *m) {
    if (!m) return;
    free(m->pred);
    free(m->gold);
    free(m->xp);
    free(m->xg);
    free(m->word_pred);
    mt_squad_results_free(m->qa);
    free(m->word_pred2);
    free(m->ex_pred);
    free(m);
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

// Two-head tasks: logits are the first head's ((B,T,C1) P&C, (B,C1) intent) then (B,T,C2).
static mt_status joint_add(mt_metrics *m, const size_t *indices, int n, const mt_batch *batch, const float *logits) {
    const mt_dataset *d = m->d;
    const int T = batch->T, C1 = d->num_classes, C2 = d->num_classes2, tok1 = d->head == MT_HEAD_TOKEN_CLASSIFIER;
    const float *l2 = logits + (size_t)(tok1 ? n * T : n) * (size_t)C1;
    for (int i = 0; i < n; i++) {
        if (indices[i] >= d->n_feat) return mt_fail(MT_ERR_INVALID, "metrics: feature index %zu out of range", indices[i]);
        const mt_feature *f = &d->feat[indices[i]];
        if (f->len > T) return mt_fail(MT_ERR_INVALID, "metrics: batch T=%d shorter than feature (%d tokens)", T, f->len);
        size_t base = d->ex_word_off[f->example];
        if (!tok1 && m->ex_pred[f->example] < 0) m->ex_pred[f->example] = argmax(logits + (size_t)i * (size_t)C1, C1);
        for (int t = 0; t < f->len; t++) {
            int w = d->word_at[f->off + t];
            if (w < 0) continue;
            size_t pos = (size_t)i * (size_t)T + (size_t)t;
            if (tok1) m->word_pred[base + (size_t)w] = argmax(logits + pos * (size_t)C1, C1);
            m->word_pred2[base + (size_t)w] = argmax(l2 + pos * (size_t)C2, C2);
        }
    }
    return MT_OK;
}

// Word-level (pred, gold) pairs of the words seen so far; `second` selects the second head.
static size_t word_pairs(const mt_metrics *m, int second, int32_t *pred, int32_t *gold) {
    const int32_t *wp = second ? m->word_pred2 : m->word_pred, *wg = second ? m->d->ex_gold2 : m->d->ex_gold;
    size_t k = 0;
    for (size_t i = 0; i < m->n_words; i++)
        if (wp[i] >= 0 && wg[i] >= 0) {
            pred[k] = wp[i];
            gold[k] = wg[i];
            k++;
        }
    return k;
}

// The two reports of a two-head task: 0 = punct / intent, 1 = capit / slot. NeMo: P&C macro,
// intent/slot micro.
static mt_status joint_report(const mt_metrics *m, int which, mt_class_report *r) {
    const mt_dataset *d = m->d;
    size_t cap = (m->n_words > d->n_examples ? m->n_words : d->n_examples) + 1;
    int32_t *p = malloc(cap * sizeof *p), *g = malloc(cap * sizeof *g);
    if (!p || !g) { free(p); free(g); return MT_ERR_NOMEM; }
    size_t n = 0;
    if (which == 0 && d->head == MT_HEAD_SEQUENCE_CLASSIFIER) {
        for (size_t e = 0; e < d->n_examples; e++)
            if (m->ex_pred[e] >= 0 && d->ex_label[e] >= 0) {
                p[n] = m->ex_pred[e];
                g[n++] = d->ex_label[e];
            }
    } else {
        n = word_pairs(m, which, p, g);
    }
    mt_status s = mt_class_report_compute(p, g, n, which ? d->num_classes2 : d->num_classes, r);
    free(p);
    free(g);
    return s;
}

static int put(mt_metric_value *out, int cap, int k, const char *name, double v);

static int joint_compute(mt_metrics *m, mt_metric_value *out, int cap) {
    const int pnc = m->d->opt.kind == MT_TASK_PUNCT_CAPIT;
    static const char *const names[2][2] = {{"intent", "slot"}, {"punct", "capit"}};
    int k = 0;
    char key[48];
    for (int h = 0; h < 2; h++) {
        mt_class_report r;
        if (joint_report(m, h, &r) != MT_OK) continue;
        const mt_prf *v = pnc ? &r.macro : &r.micro;
        snprintf(key, sizeof key, "%s_f1", names[pnc][h]);
        k = put(out, cap, k, key, v->f1);
        snprintf(key, sizeof key, "%s_precision", names[pnc][h]);
        k = put(out, cap, k, key, v->precision);
        snprintf(key, sizeof key, "%s_recall", names[pnc][h]);
        k = put(out, cap, k, key, v->recall);
        mt_class_report_free(&r);
    }
    return k < cap ? k : cap;
}

static void joint_print(const mt_metrics *m, FILE *out) {
    const mt_dataset *d = m->d;
    const int pnc = d->opt.kind == MT_TASK_PUNCT_CAPIT;
    static const char *const titles[2][2] = {{"Intent report", "Slot report"},
                                             {"Punctuation report", "Capitalization report"}};
    for (int h = 0; h < 2; h++) {
        mt_class_report r;
        if (joint_report(m, h, &r) != MT_OK) continue;
        fprintf(out, "%s:\n", titles[pnc][h]);
        mt_class_report_print(&r, (const char *const *)(h ? d->labels2 : d->labels), out);
        mt_class_report_free(&r);
    }
}

mt_status mt_metrics_add(mt_metrics *m, const size_t *indices, int n, const mt_batch *batch, const float *logits) {
    const mt_dataset *d = m->d;
    int C = d->num_classes;
    if (m->qa) return mt_squad_results_add(m->qa, indices, n, batch->T, logits);
    if (d->head2 != MT_HEAD_NONE) return joint_add(m, indices, n, batch, logits);
    if (d->head == MT_HEAD_TOKEN_CLASSIFIER) {
        int T = batch->T;
        for (int i = 0; i < n; i++) {
            if (indices[i] >= d->n_feat) return mt_fail(MT_ERR_INVALID, "metrics: feature index %zu out of range", indices[i]);
            const mt_feature *f = &d->feat[indices[i]];
            if (f->len > T) return mt_fail(MT_ERR_INVALID, "metrics: batch T=%d shorter than feature (%d tokens)", T, f->len);
            size_t base = d->ex_word_off[f->example];
            for (int t = 0; t < f->len; t++) {
                int w = d->word_at[f->off + t];
                if (w < 0) continue;
                m->word_pred[base + (size_t)w] = argmax(logits + ((size_t)i * (size_t)T + (size_t)t) * (size_t)C, C);
            }
        }
        return MT_OK;
    }
    if (m->n + (size_t)n > m->cap) {
        size_t nc = (m->n + (size_t)n) * 2;
        void *a = mt_realloc(m->pred, nc * sizeof(int32_t));
        if (!a) return MT_ERR_NOMEM;
        m->pred = a;
        if (!(a = mt_realloc(m->gold, nc * sizeof(int32_t)))) return MT_ERR_NOMEM;
        m->gold = a;
        if (!(a = mt_realloc(m->xp, nc * sizeof(double)))) return MT_ERR_NOMEM;
        m->xp = a;
        if (!(a = mt_realloc(m->xg, nc * sizeof(double)))) return MT_ERR_NOMEM;
        m->xg = a;
        m->cap = nc;
    }
    for (int i = 0; i < n; i++) {
        if (indices[i] >= d->n_feat) return mt_fail(MT_ERR_INVALID, "metrics: feature index %zu out of range", indices[i]);
        const mt_feature *f = &d->feat[indices[i]];
        if (d->head == MT_HEAD_SEQUENCE_REGRESSION) {
            m->xp[m->n] = logits[i];
            m->xg[m->n] = f->target;
            m->pred[m->n] = m->gold[m->n] = 0;
        } else {
            m->pred[m->n] = argmax(logits + (size_t)i * (size_t)C, C);
            m->gold[m->n] = f->label;
        }
        m->n++;
    }
    return MT_OK;
}

static int put(mt_metric_value *out, int cap, int k, const char *name, double v) {
    if (k < cap) {
        snprintf(out[k].name, sizeof out[k].name, "%s", name);
        out[k].value = v;
    }
    return k + 1;
}

// Word-level predictions and golds of the words seen so far (token classification).
static size_t ner_pairs(const mt_metrics *m, int32_t *pred, int32_t *gold) {
    size_t k = 0;
    for (size_t i = 0; i < m->n_words; i++)
        if (m->word_pred[i] >= 0 && m->d->ex_gold[i] >= 0) {
            pred[k] = m->word_pred[i];
            gold[k] = m->d->ex_gold[i];
            k++;
        }
    return k;
}

static int ner_conll(const mt_metrics *m, mt_conll_result *cr) {
    const mt_dataset *d = m->d;
    size_t n = m->n_words + d->n_examples;
    const char **g = malloc((n ? n : 1) * sizeof *g), **p = malloc((n ? n : 1) * sizeof *p);
    uint8_t *b = malloc(n ? n : 1);
    if (!g || !p || !b) { free(g); free(p); free(b); return 0; }
    size_t k = 0;
    for (size_t e = 0; e < d->n_examples; e++) {
        int any = 0;
        for (size_t w = d->ex_word_off[e]; w < d->ex_word_off[e + 1]; w++) {
            if (m->word_pred[w] < 0 || d->ex_gold[w] < 0) continue;
            g[k] = d->labels[d->ex_gold[w]];
            p[k] = d->labels[m->word_pred[w]];
            b[k++] = 0;
            any = 1;
        }
        if (any) { g[k] = p[k] = ""; b[k++] = 1; }
    }
    mt_conlleval(g, p, b, k, cr);
    free(g);
    free(p);
    free(b);
    return 1;
}

mt_status mt_metrics_write_squad(mt_metrics *m, const char *dir, mt_squad_scores *sc) {
    if (!m->qa) return mt_fail(MT_ERR_INVALID, "not a question answering evaluation");
    char p1[4096], p2[4096], p3[4096];
    if (dir) {
        snprintf(p1, sizeof p1, "%s/predictions.json", dir);
        snprintf(p2, sizeof p2, "%s/nbest_predictions.json", dir);
        snprintf(p3, sizeof p3, "%s/null_odds.json", dir);
    }
    return mt_squad_write_predictions(m->d, mt_squad_vocab(m->d), m->qa, dir ? p1 : NULL, dir ? p2 : NULL,
                                      dir ? p3 : NULL, sc);
}

int mt_metrics_compute(mt_metrics *m, mt_metric_value *out, int cap) {
    const mt_dataset *d = m->d;
    int k = 0;
    if (m->qa) {
        // exact_match / f1: the official scores of the predictions (what eval-squad prints for
        // predictions.json); v2 adds the splits and NeMo's best_exact / best_f1 (null odds all 0).
        mt_squad_scores sc;
        if (mt_metrics_write_squad(m, NULL, &sc) != MT_OK) return 0;
        k = put(out, cap, k, "exact_match", sc.exact);
        k = put(out, cap, k, "f1", sc.f1);
        if (sc.version2) {
            k = put(out, cap, k, "best_exact", sc.best_exact);
            k = put(out, cap, k, "best_f1", sc.best_f1);
            k = put(out, cap, k, "HasAns_exact", sc.has_exact);
            k = put(out, cap, k, "HasAns_f1", sc.has_f1);
            k = put(out, cap, k, "NoAns_exact", sc.no_exact);
            k = put(out, cap, k, "NoAns_f1", sc.no_f1);
        }
        return k < cap ? k : cap;
    }
    if (d->head2 != MT_HEAD_NONE) return joint_compute(m, out, cap);
    if (d->head == MT_HEAD_TOKEN_CLASSIFIER) {
        int32_t *p = malloc((m->n_words ? m->n_words : 1) * sizeof *p), *g = malloc((m->n_words ? m->n_words : 1) * sizeof *g);
        if (!p || !g) { free(p); free(g); return 0; }
        size_t n = ner_pairs(m, p, g);
        mt_class_report r;
        if (mt_class_report_compute(p, g, n, d->num_classes, &r) == MT_OK) {
            // NeMo logs the macro report for token classification
            k = put(out, cap, k, "f1", r.macro.f1);
            k = put(out, cap, k, "precision", r.macro.precision);
            k = put(out, cap, k, "recall", r.macro.recall);
            mt_class_report_free(&r);
        }
        mt_conll_result cr;
        if (ner_conll(m, &cr)) {
            k = put(out, cap, k, "entity_f1", cr.f1);
            k = put(out, cap, k, "entity_precision", cr.precision);
            k = put(out, cap, k, "entity_recall", cr.recall);
        }
        k = put(out, cap, k, "acc", 100.0 * mt_metric_accuracy(p, g, n));
        free(p);
        free(g);
        return k < cap ? k : cap;
    }
    if (d->glue < 0) {
        mt_class_report r;
        if (mt_class_report_compute(m->pred, m->gold, m->n, d->num_classes, &r) == MT_OK) {
            // NeMo text classification: ClassificationReport in micro mode
            k = put(out, cap, k, "f1", r.micro.f1);
            k = put(out, cap, k, "precision", r.micro.precision);
            k = put(out, cap, k, "recall", r.micro.recall);
            mt_class_report_free(&r);
        }
        k = put(out, cap, k, "acc", 100.0 * mt_metric_accuracy(m->pred, m->gold, m->n));
        return k < cap ? k : cap;
    }
    switch (d->glue) {
    case MT_GLUE_COLA: k = put(out, cap, k, "mcc", mt_metric_mcc(m->pred, m->gold, m->n, d->num_classes)); break;
    case MT_GLUE_MRPC:
    case MT_GLUE_QQP: {
        double acc = mt_metric_accuracy(m->pred, m->gold, m->n), f1 = mt_metric_f1_binary(m->pred, m->gold, m->n);
        k = put(out, cap, k, "acc", acc);
        k = put(out, cap, k, "f1", f1);
        k = put(out, cap, k, "acc_and_f1", (acc + f1) / 2);
        break;
    }
    case MT_GLUE_STSB: {
        double p = mt_metric_pearson(m->xp, m->xg, m->n), s = mt_metric_spearman(m->xp, m->xg, m->n);
        k = put(out, cap, k, "pearson", p);
        k = put(out, cap, k, "spearmanr", s);
        k = put(out, cap, k, "corr", (p + s) / 2);
        break;
    }
    default: k = put(out, cap, k, "acc", mt_metric_accuracy(m->pred, m->gold, m->n)); break;
    }
    return k < cap ? k : cap;
}

void mt_metrics_print_report(mt_metrics *m, FILE *out) {
    const mt_dataset *d = m->d;
    if (m->qa) {
        mt_metric_value v[16];
        int n = mt_metrics_compute(m, v, 16);
        fprintf(out, "SQuAD %s (%zu questions):", d->opt.version_2_with_negative ? "v2.0" : "v1.1", d->n_examples);
        for (int i = 0; i < n; i++) fprintf(out, " %s=%.6f", v[i].name, v[i].value);
        fputc('\n', out);
        return;
    }
    if (d->head2 != MT_HEAD_NONE) {
        joint_print(m, out);
        return;
    }
    if (d->head == MT_HEAD_SEQUENCE_REGRESSION || (d->glue >= 0 && d->head != MT_HEAD_TOKEN_CLASSIFIER)) {
        mt_metric_value v[8];
        int n = mt_metrics_compute(m, v, 8);
        fprintf(out, "GLUE %s (%zu examples):", mt_glue_task_name(d->glue), m->n);
        for (int i = 0; i < n; i++) fprintf(out, " %s=%.6f", v[i].name, v[i].value);
        fputc('\n', out);
        if (d->head == MT_HEAD_SEQUENCE_REGRESSION) return;
    }
    mt_class_report r;
    if (d->head == MT_HEAD_TOKEN_CLASSIFIER) {
        int32_t *p = malloc((m->n_words ? m->n_words : 1) * sizeof *p), *g = malloc((m->n_words ? m->n_words : 1) * sizeof *g);
        if (!p || !g) { free(p); free(g); return; }
        size_t n = ner_pairs(m, p, g);
        if (mt_class_report_compute(p, g, n, d->num_classes, &r) == MT_OK) {
            mt_class_report_print(&r, (const char *const *)d->labels, out);
            mt_class_report_free(&r);
        }
        free(p);
        free(g);
        mt_conll_result cr;
        if (ner_conll(m, &cr)) {
            fprintf(out, "conlleval: processed %lld tokens with %lld phrases; found: %lld phrases; correct: %lld.\n",
                    (long long)cr.tokens, (long long)cr.found_correct, (long long)cr.found_guessed,
                    (long long)cr.correct_chunks);
            fprintf(out, "accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n", cr.accuracy,
                    cr.precision, cr.recall, cr.f1);
        }
        return;
    }
    if (mt_class_report_compute(m->pred, m->gold, m->n, d->num_classes, &r) == MT_OK) {
        mt_class_report_print(&r, (const char *const *)d->labels, out);
        mt_class_report_free(&r);
    }
}
