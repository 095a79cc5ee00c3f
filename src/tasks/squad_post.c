// SQuAD post-processing (Google BERT's write_predictions + get_final_text) and the official
// evaluate-v1.1.py / evaluate-v2.0.py scores, with Python's JSON output byte for byte
// (json.dumps: ensure_ascii escapes, float repr = shortest round-trip digits).
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "core/file.h"
#include "core/log.h"
#include "tasks/outfile.h"
#include "tasks/squad_internal.h"
#include "tasks/task_internal.h"

// ---- Python-compatible output ------------------------------------------------------------------

// repr(float): the shortest digits that round-trip, fixed notation unless the decimal exponent is
// below -4 or at least 16 (Python's float_repr_style 'short').
void mt_squad_fmt_double(char *out, size_t cap, double v) {
    if (isnan(v)) { snprintf(out, cap, "NaN"); return; }
    if (isinf(v)) { snprintf(out, cap, v > 0 ? "Infinity" : "-Infinity"); return; }
    if (v == 0) { snprintf(out, cap, signbit(v) ? "-0.0" : "0.0"); return; }
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    // e = [-]d[.ddd]e[+-]XX
    const char *s = e;
    int neg = *s == '-';
    if (neg) s++;
    char dig[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') dig[nd++] = *s;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    dig[nd] = 0;
    int exp10 = atoi(s + 1); // value = d.ddd * 10^exp10
    int decpt = exp10 + 1;
    char *o = out;
    size_t left = cap;
#define PUT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); if (w_ < 0 || (size_t)w_ >= left) return; o += w_; left -= (size_t)w_; } while (0)
    if (neg) PUT("-");
    if (decpt > 16 || decpt < -3) {
        PUT("%c", dig[0]);
        if (nd > 1) PUT(".%s", dig + 1);
        PUT("e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        PUT("0.");
        for (int i = 0; i < -decpt; i++) PUT("0");
        PUT("%s", dig);
    } else if (decpt >= nd) {
        PUT("%s", dig);
        for (int i = nd; i < decpt; i++) PUT("0");
        PUT(".0");
    } else {
        PUT("%.*s.%s", decpt, dig, dig + decpt);
    }
#undef PUT
}

// json.dumps string with ensure_ascii.
static void squad_json_str(FILE *f, const char *s) {
    fputc('"', f);
    size_t n = strlen(s), i = 0;
    while (i < n) {
        uint32_t c = mt_squad_utf8_next(s, n, &i);
        if (c == '"') fputs("\\\"", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\b') fputs("\\b", f);
        else if (c == '\f') fputs("\\f", f);
        else if (c >= 0x20 && c < 0x7F) fputc((int)c, f);
        else if (c < 0x10000) fprintf(f, "\\u%04x", c);
        else {
            c -= 0x10000;
            fprintf(f, "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
        }
    }
    fputc('"', f);
}

static void squad_json_num(FILE *f, double v) {
    char b[64];
    mt_squad_fmt_double(b, sizeof b, v);
    fputs(b, f);
}

// ---- results ---------------------------------------------------------------------------------

struct mt_squad_results {
    const mt_dataset *d;
    int T;          // logits per feature (max_seq_length)
    float *start, *end; // (n_feat, T)
    unsigned char *have;
};

mt_status mt_squad_results_create(const mt_dataset *d, mt_squad_results **out) {
    *out = NULL;
    if (!d->squad) return mt_fail(MT_ERR_INVALID, "not a SQuAD dataset");
    mt_squad_results *r = mt_calloc(1, sizeof *r);
    if (!r) return MT_ERR_NOMEM;
    r->d = d;
    r->T = d->opt.max_seq_length;
    size_t n = d->n_feat ? d->n_feat : 1;
    r->start = mt_calloc(n * (size_t)r->T, sizeof(float));
    r->end = mt_calloc(n * (size_t)r->T, sizeof(float));
    r->have = mt_calloc(n, 1);
    if (!r->start || !r->end || !r->have) { mt_squad_results_free(r); return MT_ERR_NOMEM; }
    *out = r;
    return MT_OK;
}

void mt_squad_results_free(mt_squad_results *r) {
    if (!r) return;
    free(r->start);
    free(r->end);
    free(r->have);
    free(r);
}

mt_status mt_squad_results_add(mt_squad_results *r, const size_t *indices, int n, int T, const float *logits) {
    for (int b = 0; b < n; b++) {
        size_t f = indices[b];
        if (f >= r->d->n_feat) return mt_fail(MT_ERR_INVALID, "SQuAD results: feature %zu out of range", f);
        for (int t = 0; t < r->T; t++) {
            int in = t < T;
            r->start[f * (size_t)r->T + (size_t)t] = in ? logits[((size_t)b * (size_t)T + (size_t)t) * 2] : -INFINITY;
            r->end[f * (size_t)r->T + (size_t)t] = in ? logits[((size_t)b * (size_t)T + (size_t)t) * 2 + 1] : -INFINITY;
        }
        r->have[f] = 1;
    }
    return MT_OK;
}

mt_status mt_squad_results_read(mt_squad_results *r, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    mt_status s = MT_OK;
    int lineno = 0;
    while (getline(&line, &cap, f) > 0 && !s) {
        lineno++;
        char *p = line, *e;
        long fi = strtol(p, &e, 10);
        if (e == p || fi < 0 || (size_t)fi >= r->d->n_feat) { s = mt_fail(MT_ERR_FORMAT, "%s:%d: bad feature index", path, lineno); break; }
        p = e;
        for (int which = 0; which < 2 && !s; which++) {
            float *dst = (which ? r->end : r->start) + (size_t)fi * (size_t)r->T;
            for (int t = 0; t < r->T; t++) {
                double v = strtod(p, &e);
                if (e == p) { s = mt_fail(MT_ERR_FORMAT, "%s:%d: want %d logits per row", path, lineno, r->T); break; }
                dst[t] = (float)v;
                p = e;
            }
        }
        r->have[fi] = 1;
    }
    free(line);
    fclose(f);
    return s;
}

// ---- BERT's BasicTokenizer (for get_final_text) ------------------------------------------------

typedef struct {
    uint32_t *c;
    size_t n, cap;
} squad_cps;

static int cps_push(squad_cps *v, uint32_t c) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        uint32_t *nv = realloc(v->c, nc * sizeof *nv);
        if (!nv) return -1;
        v->c = nv;
        v->cap = nc;
    }
    v->c[v->n++] = c;
    return 0;
}

static int squad_is_punct(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static int squad_is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// " ".join(BasicTokenizer(do_lower_case).tokenize(text)) as code points.
static int squad_basic_tokenize(const uint32_t *in, size_t n, int lower, squad_cps *out) {
    int in_word = 0, err = 0;
#define SEP() do { if (in_word) { in_word = 0; } } while (0)
#define PUTC(c) do { if (!in_word && out->n) err |= cps_push(out, ' '); in_word = 1; err |= cps_push(out, (c)); } while (0)
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0 || c == 0xFFFD) continue;
        utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
        int ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || k == UTF8PROC_CATEGORY_ZS;
        if (ws) { SEP(); continue; }
        if (k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CN ||
            k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS)
            continue;
        if (squad_is_cjk(c)) { SEP(); PUTC(c); SEP(); continue; }
        uint32_t buf[32];
        int nb = 1;
        buf[0] = c;
        if (lower) {
            utf8proc_int32_t lc = utf8proc_tolower((utf8proc_int32_t)c);
            utf8proc_int32_t dec[16];
            int last = 0;
            utf8proc_ssize_t nd = utf8proc_decompose_char(lc, dec, 16, UTF8PROC_DECOMPOSE, &last);
            nb = 0;
            for (utf8proc_ssize_t j = 0; j < nd && j < 16; j++)
                if (utf8proc_category(dec[j]) != UTF8PROC_CATEGORY_MN) buf[nb++] = (uint32_t)dec[j];
        }
        for (int j = 0; j < nb; j++) {
            if (squad_is_punct(buf[j])) { SEP(); PUTC(buf[j]); SEP(); }
            else PUTC(buf[j]);
        }
    }
#undef SEP
#undef PUTC
    return err;
}

static int utf8_to_cps(const char *s, size_t n, squad_cps *v) {
    size_t i = 0;
    while (i < n)
        if (cps_push(v, mt_squad_utf8_next(s, n, &i))) return -1;
    return 0;
}

static char *cps_to_utf8(const uint32_t *c, size_t n) {
    char *o = mt_malloc(n * 4 + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)utf8proc_encode_char((utf8proc_int32_t)c[i], (utf8proc_uint8_t *)o + k);
    o[k] = 0;
    return o;
}

// get_final_text: project the WordPiece answer back onto the original words.
static char *squad_final_text(const char *pred, const char *orig, int lower) {
    squad_cps P = {0}, O = {0}, Tk = {0};
    char *res = NULL;
    if (utf8_to_cps(pred, strlen(pred), &P) || utf8_to_cps(orig, strlen(orig), &O) ||
        squad_basic_tokenize(O.c, O.n, lower, &Tk))
        goto out;
    // tok_text.find(pred_text); the first code point is compared before the rest (for an answer
    // inside a word of thousands of characters a memcmp at every position was the whole cost)
    long start = -1;
    if (P.n <= Tk.n)
        for (size_t i = 0; i + P.n <= Tk.n; i++)
            if ((P.n == 0 || Tk.c[i] == P.c[0]) && !memcmp(Tk.c + i, P.c, P.n * sizeof(uint32_t))) {
                start = (long)i;
                break;
            }
    if (start < 0) goto whole;
    long endp = start + (long)P.n - 1;
    // non-space character counts must agree; then map through the space-free positions
    size_t ons = 0, tns = 0;
    for (size_t i = 0; i < O.n; i++) ons += O.c[i] != ' ';
    for (size_t i = 0; i < Tk.n; i++) tns += Tk.c[i] != ' ';
    if (ons != tns) goto whole;
    long ns_start = -1, ns_end = -1, k = 0;
    for (size_t i = 0; i < Tk.n; i++) {
        if (Tk.c[i] == ' ') continue;
        if ((long)i == start) ns_start = k;
        if ((long)i == endp) ns_end = k;
        k++;
    }
    if (ns_start < 0 || ns_end < 0) goto whole;
    long os = -1, oe = -1;
    k = 0;
    for (size_t i = 0; i < O.n; i++) {
        if (O.c[i] == ' ') continue;
        if (k == ns_start) os = (long)i;
        if (k == ns_end) oe = (long)i;
        k++;
    }
    if (os < 0 || oe < 0) goto whole;
    res = oe >= os ? cps_to_utf8(O.c + os, (size_t)(oe - os + 1)) : mt_strdup("");
    goto out;
whole:
    res = mt_strdup(orig);
out:
    free(P.c);
    free(O.c);
    free(Tk.c);
    return res;
}

// ---- write_predictions -----------------------------------------------------------------------

typedef struct {
    int feat, s, e;
    float sl, el;
} squad_prelim;

typedef struct {
    char *text;
    float sl, el;
} squad_nbest;

static int prelim_cmp(const void *a, const void *b) {
    const squad_prelim *x = a, *y = b;
    double sx = (double)x->sl + (double)x->el, sy = (double)y->sl + (double)y->el;
    if (sx != sy) return sx > sy ? -1 : 1;
    return 0;
}

// sorted(..., reverse=True) keeps equal items in order: a stable descending sort.
static void stable_sort_prelim(squad_prelim *p, size_t n) {
    for (size_t i = 1; i < n; i++) {
        squad_prelim x = p[i];
        size_t j = i;
        while (j > 0 && prelim_cmp(&p[j - 1], &x) > 0) { p[j] = p[j - 1]; j--; }
        p[j] = x;
    }
}

// _get_best_indexes: the n largest (stable: lower index first on ties).
static int best_indexes(const float *v, int T, int n, int *out) {
    int k = 0;
    for (int t = 0; t < T; t++) {
        // insert t into out[0..k) sorted by v desc, after equals
        int j = k < n ? k : n;
        if (k >= n && !(v[t] > v[out[n - 1]])) continue;
        if (j == n) j = n - 1;
        while (j > 0 && v[out[j - 1]] < v[t]) { out[j] = out[j - 1]; j--; }
        out[j] = t;
        if (k < n) k++;
    }
    return k;
}

// The answer text of feature f's piece span [s, e] (tok_text cleaned as BERT does).
static char *squad_span_text(const mt_dataset *d, const mt_vocab *v, size_t f, int s, int e, char **orig_out) {
    const mt_feature *F = &d->feat[f];
    const squad_q *E = &d->squad->q[F->example];
    const squad_p *P = &d->squad->p[E->para];
    size_t cap = 16;
    for (int t = s; t <= e; t++) {
        const char *tk = mt_vocab_token(v, d->ids[F->off + (size_t)t]);
        cap += (tk ? strlen(tk) : 5) + 1;
    }
    char *tok = mt_malloc(cap);
    if (!tok) return NULL;
    size_t k = 0;
    for (int t = s; t <= e; t++) {
        const char *tk = mt_vocab_token(v, d->ids[F->off + (size_t)t]);
        if (!tk) tk = "[UNK]";
        if (t > s) tok[k++] = ' ';
        memcpy(tok + k, tk, strlen(tk));
        k += strlen(tk);
    }
    tok[k] = 0;
    // tok_text.replace(" ##", "").replace("##", ""), then strip and collapse whitespace
    char *w = tok;
    for (char *r = tok; *r;) {
        if (!strncmp(r, " ##", 3)) { r += 3; continue; }
        *w++ = *r++;
    }
    *w = 0;
    w = tok;
    for (char *r = tok; *r;) {
        if (!strncmp(r, "##", 2)) { r += 2; continue; }
        *w++ = *r++;
    }
    *w = 0;
    char *clean = mt_squad_py_join_split(tok, strlen(tok));
    free(tok);
    int ws = d->word_at[F->off + (size_t)s], we = d->word_at[F->off + (size_t)e];
    size_t ocap = 1;
    for (int x = ws; x <= we; x++) ocap += P->we[x] - P->wb[x] + 1;
    char *orig = mt_malloc(ocap);
    if (!orig || !clean) { free(orig); free(clean); return NULL; }
    k = 0;
    for (int x = ws; x <= we; x++) {
        if (x > ws) orig[k++] = ' ';
        memcpy(orig + k, P->ctx + P->wb[x], P->we[x] - P->wb[x]);
        k += P->we[x] - P->wb[x];
    }
    orig[k] = 0;
    *orig_out = orig;
    return clean;
}

// Per-question scoring (official rules) lives below; declared here for write_predictions.
static double squad_em(const char *pred, const char *gold);
static double squad_f1(const char *pred, const char *gold, int v2);

mt_status mt_squad_write_predictions(const mt_dataset *d, const mt_vocab *vocab, const mt_squad_results *r,
                                     const char *pred_path, const char *nbest_path, const char *odds_path,
                                     mt_squad_scores *sc) {
    const mt_squad *q = d->squad;
    const mt_task_options *o = &d->opt;
    int v2 = o->version_2_with_negative, nbs = o->n_best_size > 0 ? o->n_best_size : 1, T = r->T;
    mt_outfile po = {0}, no = {0}, oo = {0};
    mt_status s = MT_OK;
    if (pred_path && (s = mt_outfile_open(&po, pred_path))) return s;
    if (nbest_path && (s = mt_outfile_open(&no, nbest_path))) { mt_outfile_abort(&po); return s; }
    if (v2 && odds_path && (s = mt_outfile_open(&oo, odds_path))) { mt_outfile_abort(&po); mt_outfile_abort(&no); return s; }
    if (po.f) fputs("{", po.f);
    if (no.f) fputs("{", no.f);
    if (oo.f) fputs("{", oo.f);
    int *si = mt_malloc((size_t)nbs * sizeof *si), *ei = mt_malloc((size_t)nbs * sizeof *ei);
    size_t pcap = (size_t)nbs * (size_t)nbs + 2;
    squad_prelim *pre = mt_malloc(pcap * sizeof *pre);
    squad_nbest *nb = mt_calloc((size_t)nbs + 2, sizeof *nb);
    double *probs = mt_malloc(((size_t)nbs + 2) * sizeof *probs);
    if (!si || !ei || !pre || !nb || !probs) s = MT_ERR_NOMEM;
    double em_sum = 0, f1_sum = 0, h_em = 0, h_f1 = 0, n_em = 0, n_f1 = 0;
    double *qe = mt_malloc((q->n_q + 1) * sizeof *qe), *qf = mt_malloc((q->n_q + 1) * sizeof *qf);
    unsigned char *qh = mt_malloc(q->n_q + 1), *qp = mt_malloc(q->n_q + 1);
    if (!qe || !qf || !qh || !qp) s = MT_ERR_NOMEM;
    int total = 0, h_tot = 0, n_tot = 0, first = 1;
    size_t f0 = 0;
    for (size_t ex = 0; ex < q->n_q && !s; ex++) {
        size_t f1i = f0;
        while (f1i < d->n_feat && d->feat[f1i].example == (int32_t)ex) f1i++;
        if (f1i == f0) continue; // skipped (training mismatch) or cut by num_samples
        const squad_q *E = &q->q[ex];
        size_t np = 0;
        double score_null = 1000000.0;
        size_t null_feat = f0;
        float null_sl = 0, null_el = 0;
        for (size_t f = f0; f < f1i; f++) {
            size_t need = np + (size_t)nbs * (size_t)nbs + 2;
            if (need > pcap) {
                pcap = need * 2;
                squad_prelim *np2 = mt_realloc(pre, pcap * sizeof *pre);
                if (!np2) { s = MT_ERR_NOMEM; break; }
                pre = np2;
            }
            const float *sl = r->start + f * (size_t)T, *el = r->end + f * (size_t)T;
            int ns = best_indexes(sl, T, nbs, si), ne = best_indexes(el, T, nbs, ei);
            if (v2) {
                double fn = (double)sl[0] + (double)el[0];
                if (fn < score_null) { score_null = fn; null_feat = f; null_sl = sl[0]; null_el = el[0]; }
            }
            const mt_feature *F = &d->feat[f];
            for (int a = 0; a < ns; a++)
                for (int b = 0; b < ne; b++) {
                    int st = si[a], en = ei[b];
                    if (st >= F->len || en >= F->len) continue;
                    if (d->word_at[F->off + (size_t)st] < 0 || d->word_at[F->off + (size_t)en] < 0) continue;
                    if (!d->tlabels[F->off + (size_t)st]) continue;
                    if (en < st || en - st + 1 > o->max_answer_length) continue;
                    pre[np++] = (squad_prelim){(int)f, st, en, sl[st], el[en]};
                }
        }
        if (s) break;
        if (v2) pre[np++] = (squad_prelim){(int)null_feat, 0, 0, null_sl, null_el};
        stable_sort_prelim(pre, np);
        int nn = 0, seen_empty = 0;
        for (size_t i = 0; i < np && nn < nbs && !s; i++) {
            char *text;
            if (pre[i].s > 0) {
                char *orig = NULL;
                char *tok = squad_span_text(d, vocab, (size_t)pre[i].feat, pre[i].s, pre[i].e, &orig);
                if (!tok) { s = MT_ERR_NOMEM; break; }
                text = squad_final_text(tok, orig, o->do_lower_case);
                free(tok);
                free(orig);
                if (!text) { s = MT_ERR_NOMEM; break; }
                int dup = 0;
                for (int j = 0; j < nn && !dup; j++) dup = !strcmp(nb[j].text, text);
                if (dup || (!*text && seen_empty)) { free(text); continue; }
                if (!*text) seen_empty = 1;
            } else {
                text = mt_strdup("");
                if (!text) { s = MT_ERR_NOMEM; break; }
                seen_empty = 1; // BERT appends the null entry without looking at `seen`
            }
            nb[nn++] = (squad_nbest){text, pre[i].sl, pre[i].el};
        }
        if (s) break;
        if (v2 && !seen_empty) nb[nn++] = (squad_nbest){mt_strdup(""), null_sl, null_el};
        // A lone null prediction gets a nonce non-null entry first (as HF's version does).
        if (v2 && nn == 1 && !*nb[0].text) {
            nb[1] = nb[0];
            nb[0] = (squad_nbest){mt_strdup("empty"), 0.0f, 0.0f};
            nn = 2;
        }
        if (nn == 0) nb[nn++] = (squad_nbest){mt_strdup("empty"), 0.0f, 0.0f};
        for (int j = 0; j < nn; j++)
            if (!nb[j].text) s = MT_ERR_NOMEM;
        if (s) break;
        // _compute_softmax over start+end
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < nn; j++) {
            double sc2 = (double)nb[j].sl + (double)nb[j].el;
            if (sc2 > mx) mx = sc2;
        }
        for (int j = 0; j < nn; j++) { probs[j] = exp((double)nb[j].sl + (double)nb[j].el - mx); sum += probs[j]; }
        for (int j = 0; j < nn; j++) probs[j] /= sum;
        int best_nn = -1;
        for (int j = 0; j < nn && best_nn < 0; j++)
            if (*nb[j].text) best_nn = j;
        const char *answer = nb[0].text;
        double diff = 0;
        if (v2) {
            diff = score_null - (double)nb[best_nn].sl - (double)nb[best_nn].el;
            answer = diff > o->null_score_diff_threshold ? "" : nb[best_nn].text;
        }
        const char *sep = first ? "\n    " : ",\n    ";
        if (po.f) { fputs(sep, po.f); squad_json_str(po.f, E->id); fputs(": ", po.f); squad_json_str(po.f, answer); }
        if (oo.f) { fputs(sep, oo.f); squad_json_str(oo.f, E->id); fputs(": ", oo.f); squad_json_num(oo.f, diff); }
        if (no.f) {
            fputs(sep, no.f);
            squad_json_str(no.f, E->id);
            fputs(": [", no.f);
            for (int j = 0; j < nn; j++) {
                fputs(j ? ",\n        {\n            \"text\": " : "\n        {\n            \"text\": ", no.f);
                squad_json_str(no.f, nb[j].text);
                fputs(",\n            \"probability\": ", no.f);
                squad_json_num(no.f, probs[j]);
                fputs(",\n            \"start_logit\": ", no.f);
                squad_json_num(no.f, (double)nb[j].sl);
                fputs(",\n            \"end_logit\": ", no.f);
                squad_json_num(no.f, (double)nb[j].el);
                fputs("\n        }", no.f);
            }
            fputs("\n    ]", no.f);
        }
        first = 0;
        if (sc && E->n_ans + (v2 ? 1 : 0) > 0) {
            // official scoring of this prediction: max over gold answers (v2: non-empty normalized
            // golds, or [""] when none)
            double bem = 0, bf1 = 0;
            int any = 0;
            for (int a = 0; a < E->n_ans; a++) {
                if (v2 && squad_em("", E->ans_text[a]) == 1.0) continue; // normalizes to "": not a gold
                double e1 = squad_em(answer, E->ans_text[a]), f1v = squad_f1(answer, E->ans_text[a], v2);
                if (!any || e1 > bem) bem = e1;
                if (!any || f1v > bf1) bf1 = f1v;
                any = 1;
            }
            if (!any) { bem = squad_em(answer, ""); bf1 = squad_f1(answer, "", v2); }
            em_sum += bem;
            f1_sum += bf1;
            qe[total] = bem;
            qf[total] = bf1;
            qh[total] = E->n_ans > 0;
            qp[total] = *answer != 0;
            total++;
            if (v2 && E->n_ans > 0) { h_em += bem; h_f1 += bf1; h_tot++; }
            else if (v2) { n_em += bem; n_f1 += bf1; n_tot++; }
        }
        for (int j = 0; j < nn; j++) free(nb[j].text);
        f0 = f1i;
    }
    if (po.f) fputs(first ? "}\n" : "\n}\n", po.f);
    if (no.f) fputs(first ? "}\n" : "\n}\n", no.f);
    if (oo.f) fputs(first ? "}\n" : "\n}\n", oo.f);
    free(si);
    free(ei);
    free(pre);
    free(nb);
    free(probs);
    if (!s) s = mt_outfile_commit_all((mt_outfile *const[]){&po, &no, &oo}, 3);
    if (s) {
        mt_outfile_abort(&po); mt_outfile_abort(&no); mt_outfile_abort(&oo);
        free(qe); free(qf); free(qh); free(qp);
        return s;
    }
    if (sc) {
        memset(sc, 0, sizeof *sc);
        sc->version2 = v2;
        sc->total = total;
        sc->exact = total ? 100.0 * em_sum / total : 0;
        sc->f1 = total ? 100.0 * f1_sum / total : 0;
        sc->has_total = h_tot;
        sc->no_total = n_tot;
        sc->has_exact = h_tot ? 100.0 * h_em / h_tot : 0;
        sc->has_f1 = h_tot ? 100.0 * h_f1 / h_tot : 0;
        sc->no_exact = n_tot ? 100.0 * n_em / n_tot : 0;
        sc->no_f1 = n_tot ? 100.0 * n_f1 / n_tot : 0;
        // find_best_thresh with every null odds 0: data order, best prefix
        int no_ans = 0;
        for (int i = 0; i < total; i++) no_ans += !qh[i];
        for (int which = 0; which < 2; which++) {
            double cur = no_ans, best = cur;
            for (int i = 0; i < total; i++) {
                cur += qh[i] ? (which ? qf[i] : qe[i]) : (qp[i] ? -1 : 0);
                if (cur > best) best = cur;
            }
            *(which ? &sc->best_f1 : &sc->best_exact) = total ? 100.0 * best / total : 0;
        }
    }
    free(qe);
    free(qf);
    free(qh);
    free(qp);
    return MT_OK;
}

// ---- official scoring ------------------------------------------------------------------------

static int squad_is_word(uint32_t c) { // Python re \w (Unicode): alphanumeric or underscore
    if (c == '_') return 1;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

// normalize_answer -> tokens (code points with 0 between tokens); returns the token count.
// Separates the tokens of a normalized answer: not a code point, so no text (a decoded NUL or an
// invalid byte included) can forge a token boundary (found by fuzz_squad: U+0000 overflowed tok_offsets).
#define SQUAD_TOKEN_SEP 0xFFFFFFFEu

static size_t squad_normalize(const char *s, squad_cps *out) {
    squad_cps a = {0};
    size_t n = strlen(s), i = 0;
    while (i < n) {
        uint32_t c = mt_squad_utf8_next(s, n, &i);
        uint32_t l = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        if (c == 0x130) { cps_push(&a, 'i'); cps_push(&a, 0x307); continue; }
        if (l < 128 && ((l >= 33 && l <= 47) || (l >= 58 && l <= 64) || (l >= 91 && l <= 96) || (l >= 123 && l <= 126)))
            continue;
        cps_push(&a, l);
    }
    // \b(a|an|the)\b -> " "
    for (size_t k = 0; k < a.n; k++) {
        int lenw = 0;
        if (a.c[k] == 'a') lenw = (k + 1 < a.n && a.c[k + 1] == 'n') ? 2 : 1;
        else if (a.c[k] == 't' && k + 2 < a.n && a.c[k + 1] == 'h' && a.c[k + 2] == 'e') lenw = 3;
        if (!lenw) continue;
        int before = k == 0 || !squad_is_word(a.c[k - 1]);
        if (!before) continue;
        // regex alternation tries 'a' before 'an': 'a' matches if followed by a boundary
        int lens[2] = {lenw == 2 ? 1 : lenw, lenw == 2 ? 2 : 0};
        for (int j = 0; j < 2 && lens[j]; j++) {
            size_t e = k + (size_t)lens[j];
            if (e == a.n || !squad_is_word(a.c[e])) {
                a.c[k] = ' ';
                for (size_t m = k + 1; m < e; m++) a.c[m] = 0xFFFFFFFFu; // deleted
                k = e - 1;
                break;
            }
        }
    }
    size_t ntok = 0;
    int in = 0;
    out->n = 0;
    for (size_t k = 0; k < a.n; k++) {
        uint32_t c = a.c[k];
        if (c == 0xFFFFFFFFu) continue;
        if (mt_squad_py_space(c)) { in = 0; continue; }
        if (!in) { if (ntok) cps_push(out, SQUAD_TOKEN_SEP); ntok++; in = 1; }
        cps_push(out, c);
    }
    free(a.c);
    return ntok;
}

static double squad_em(const char *pred, const char *gold) {
    squad_cps a = {0}, b = {0};
    squad_normalize(pred, &a);
    squad_normalize(gold, &b);
    int eq = a.n == b.n && (a.n == 0 || !memcmp(a.c, b.c, a.n * sizeof(uint32_t)));
    free(a.c);
    free(b.c);
    return eq ? 1.0 : 0.0;
}

// token k of a normalized list: [off[k], off[k+1]-1)
static size_t tok_offsets(const squad_cps *v, size_t ntok, size_t *off) {
    size_t k = 0;
    off[k++] = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->c[i] == SQUAD_TOKEN_SEP) off[k++] = i + 1;
    off[ntok] = v->n + 1;
    return k;
}

static double squad_f1(const char *pred, const char *gold, int v2) {
    squad_cps a = {0}, b = {0};
    size_t na = squad_normalize(pred, &a), nb = squad_normalize(gold, &b);
    double f1 = 0;
    if (v2 && (na == 0 || nb == 0)) {
        f1 = na == nb ? 1.0 : 0.0;
    } else if (na && nb) {
        size_t *oa = malloc((na + 1) * sizeof *oa), *ob = malloc((nb + 1) * sizeof *ob);
        unsigned char *used = calloc(nb, 1);
        size_t same = 0;
        if (oa && ob && used) {
            tok_offsets(&a, na, oa);
            tok_offsets(&b, nb, ob);
            for (size_t i = 0; i < na; i++) {
                size_t li = oa[i + 1] - 1 - oa[i];
                for (size_t j = 0; j < nb; j++) {
                    size_t lj = ob[j + 1] - 1 - ob[j];
                    if (!used[j] && li == lj && !memcmp(a.c + oa[i], b.c + ob[j], li * sizeof(uint32_t))) {
                        used[j] = 1;
                        same++;
                        break;
                    }
                }
            }
        }
        if (same) {
            double p = 1.0 * (double)same / (double)na, r = 1.0 * (double)same / (double)nb;
            f1 = (2 * p * r) / (p + r);
        }
        free(oa);
        free(ob);
        free(used);
    }
    free(a.c);
    free(b.c);
    return f1;
}

// ---- eval-squad ------------------------------------------------------------------------------

static cJSON *squad_read_json_file(const char *path, const char *what, mt_status *st) {
    FILE *f = fopen(path, "rb");
    *st = MT_OK;
    if (!f) { *st = mt_fail(MT_ERR_IO, "%s: cannot open the %s: %s", path, what, strerror(errno)); return NULL; }
    char *buf = NULL;
    size_t n = 0;
    mt_status rs = mt_read_all(f, 0, &buf, &n);
    int err = errno;
    fclose(f);
    if (rs) {
        *st = rs == MT_ERR_IO ? mt_fail(rs, "%s: cannot read the %s: %s", path, what, strerror(err)) : rs;
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!j) *st = mt_fail(MT_ERR_FORMAT, "%s: the %s is not valid JSON", path, what);
    return j;
}

typedef struct {
    const char *id;
    int has_ans;
    double em, f1;
    int predicted;
    const char *pred;
    double na;
} squad_eval_q;


mt_status mt_squad_eval_files(const char *data_path, const char *pred_path, const char *na_path, FILE *out) {
    mt_status st;
    cJSON *data = squad_read_json_file(data_path, "SQuAD data file", &st), *pred = NULL, *na = NULL;
    if (!data) return st;
    pred = squad_read_json_file(pred_path, "predictions file", &st);
    if (!pred) { cJSON_Delete(data); return st; }
    if (na_path) {
        na = squad_read_json_file(na_path, "no-answer probability file", &st);
        if (!na) { cJSON_Delete(data); cJSON_Delete(pred); return st; }
    }
    const char *ver = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(data, "version"))
                          ? cJSON_GetObjectItemCaseSensitive(data, "version")->valuestring : "";
    int v2 = strstr(ver, "2.") != NULL;
    const cJSON *arts = cJSON_GetObjectItemCaseSensitive(data, "data");
    squad_eval_q *qs = NULL;
    size_t nq = 0, cap = 0;
    st = MT_OK;
    if (!cJSON_IsArray(arts)) st = mt_fail(MT_ERR_FORMAT, "%s: no \"data\" array: not a SQuAD data file", data_path);
    if (!st && !cJSON_IsObject(pred))
        st = mt_fail(MT_ERR_FORMAT, "%s: predictions must be one JSON object {\"question id\": \"answer text\", ...}", pred_path);
    if (!st && na && !cJSON_IsObject(na))
        st = mt_fail(MT_ERR_FORMAT, "%s: no-answer probabilities must be one JSON object {\"question id\": number}", na_path);
    const cJSON *art, *para, *qa, *a;
    if (!st) cJSON_ArrayForEach(art, arts) {
        cJSON_ArrayForEach(para, cJSON_GetObjectItemCaseSensitive(art, "paragraphs")) {
            cJSON_ArrayForEach(qa, cJSON_GetObjectItemCaseSensitive(para, "qas")) {
                const cJSON *idv = cJSON_GetObjectItemCaseSensitive(qa, "id");
                if (!cJSON_IsString(idv)) { st = mt_fail(MT_ERR_FORMAT, "%s: a question has no \"id\" string", data_path); goto scan_done; }
                if (nq == cap) {
                    cap = cap ? cap * 2 : 1024;
                    squad_eval_q *nqv = realloc(qs, cap * sizeof *qs);
                    if (!nqv) { st = MT_ERR_NOMEM; goto scan_done; }
                    qs = nqv;
                }
                squad_eval_q *Q = &qs[nq++];
                memset(Q, 0, sizeof *Q);
                Q->id = idv->valuestring;
                const cJSON *answers = cJSON_GetObjectItemCaseSensitive(qa, "answers");
                Q->has_ans = cJSON_GetArraySize(answers) > 0;
                const cJSON *pv = cJSON_GetObjectItemCaseSensitive(pred, Q->id);
                if (pv && !cJSON_IsString(pv)) {
                    st = mt_fail(MT_ERR_FORMAT, "%s: question id %s: the prediction must be a string (the answer text)",
                                 pred_path, Q->id);
                    goto scan_done;
                }
                if (!pv) {
                    if (v2) {
                        st = mt_fail(MT_ERR_FORMAT, "%s: no prediction for question id %s; SQuAD v2.0 scoring needs one "
                                     "per question (\"\" = no answer)", pred_path, Q->id);
                        goto scan_done;
                    }
                    fprintf(stderr, "Unanswered question %s will receive score 0.\n", Q->id);
                    continue;
                }
                Q->predicted = 1;
                Q->pred = pv->valuestring;
                if (na) {
                    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(na, Q->id);
                    if (!cJSON_IsNumber(nv)) {
                        st = mt_fail(MT_ERR_FORMAT, "%s: question id %s: missing or non-numeric no-answer probability",
                                     na_path, Q->id);
                        goto scan_done;
                    }
                    Q->na = nv->valuedouble;
                }
                int any = 0;
                cJSON_ArrayForEach(a, answers) {
                    const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "text");
                    if (!cJSON_IsString(t)) continue;
                    if (v2 && squad_em("", t->valuestring) == 1.0) continue;
                    double e = squad_em(Q->pred, t->valuestring), f = squad_f1(Q->pred, t->valuestring, v2);
                    if (!any || e > Q->em) Q->em = e;
                    if (!any || f > Q->f1) Q->f1 = f;
                    any = 1;
                }
                if (!any && v2) { Q->em = squad_em(Q->pred, ""); Q->f1 = squad_f1(Q->pred, "", v2); }
            }
        }
    }
scan_done:
    if (!st && !v2) {
        double em = 0, f1 = 0;
        for (size_t i = 0; i < nq; i++) { em += qs[i].em; f1 += qs[i].f1; }
        fputs("{\"exact_match\": ", out);
        squad_json_num(out, nq ? 100.0 * em / (double)nq : 0);
        fputs(", \"f1\": ", out);
        squad_json_num(out, nq ? 100.0 * f1 / (double)nq : 0);
        fputs("}\n", out);
    } else if (!st) {
        // apply_no_ans_threshold (na_prob_thresh 1.0)
        double em = 0, f1 = 0, he = 0, hf = 0, ne = 0, nf = 0;
        int ht = 0, nt = 0;
        for (size_t i = 0; i < nq; i++) {
            double e = qs[i].em, f = qs[i].f1;
            if (qs[i].na > 1.0) e = f = qs[i].has_ans ? 0.0 : 1.0;
            em += e; f1 += f;
            if (qs[i].has_ans) { he += e; hf += f; ht++; } else { ne += e; nf += f; nt++; }
        }
        fprintf(out, "{\n  \"exact\": ");
        squad_json_num(out, 100.0 * em / (double)nq);
        fprintf(out, ",\n  \"f1\": ");
        squad_json_num(out, 100.0 * f1 / (double)nq);
        fprintf(out, ",\n  \"total\": %zu", nq);
        if (ht) {
            fprintf(out, ",\n  \"HasAns_exact\": "); squad_json_num(out, 100.0 * he / ht);
            fprintf(out, ",\n  \"HasAns_f1\": "); squad_json_num(out, 100.0 * hf / ht);
            fprintf(out, ",\n  \"HasAns_total\": %d", ht);
        }
        if (nt) {
            fprintf(out, ",\n  \"NoAns_exact\": "); squad_json_num(out, 100.0 * ne / nt);
            fprintf(out, ",\n  \"NoAns_f1\": "); squad_json_num(out, 100.0 * nf / nt);
            fprintf(out, ",\n  \"NoAns_total\": %d", nt);
        }
        if (na) {
            // find_best_thresh: questions in na-file order, stably sorted by probability
            size_t nn = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, na) nn++;
            size_t *ord = mt_malloc((nn + 1) * sizeof *ord);
            double *pv = mt_malloc((nn + 1) * sizeof *pv);
            squad_eval_q **qq = mt_calloc(nn + 1, sizeof *qq);
            if (!ord || !pv || !qq) st = MT_ERR_NOMEM;
            size_t k = 0;
            if (!st) cJSON_ArrayForEach(it, na) {
                pv[k] = cJSON_IsNumber(it) ? it->valuedouble : 0;
                for (size_t i = 0; i < nq; i++)
                    if (!strcmp(qs[i].id, it->string)) { qq[k] = &qs[i]; break; }
                ord[k] = k;
                k++;
            }
            if (!st) {
                for (size_t i = 1; i < nn; i++) { // stable insertion sort by probability
                    size_t x = ord[i], j = i;
                    while (j > 0 && pv[ord[j - 1]] > pv[x]) { ord[j] = ord[j - 1]; j--; }
                    ord[j] = x;
                }
                for (int which = 0; which < 2; which++) {
                    double cur = nt, best = cur, thr = 0.0;
                    for (size_t i = 0; i < nn; i++) {
                        squad_eval_q *Q = qq[ord[i]];
                        if (!Q || !Q->predicted) continue;
                        double diff = Q->has_ans ? (which ? Q->f1 : Q->em) : (Q->pred[0] ? -1 : 0);
                        cur += diff;
                        if (cur > best) { best = cur; thr = pv[ord[i]]; }
                    }
                    fprintf(out, which ? ",\n  \"best_f1\": " : ",\n  \"best_exact\": ");
                    squad_json_num(out, 100.0 * best / (double)nq);
                    fprintf(out, which ? ",\n  \"best_f1_thresh\": " : ",\n  \"best_exact_thresh\": ");
                    squad_json_num(out, thr);
                }
            }
            free(ord);
            free(pv);
            free(qq);
        }
        fprintf(out, "\n}\n");
    }
    free(qs);
    cJSON_Delete(data);
    cJSON_Delete(pred);
    cJSON_Delete(na);
    return st;
}

