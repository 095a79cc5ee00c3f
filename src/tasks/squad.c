// SQuAD JSON -> features (see squad.h for the rules). Post-processing and scoring: squad_post.c.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/file.h"
#include "core/log.h"
#include "tasks/squad.h"
#include "tasks/squad_internal.h"
#include "tasks/task_internal.h"

// BERT's _is_whitespace (run_squad.py): the context is split on these only.
static int squad_bert_ws(uint32_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0x202F; }

// Python's str.isspace(), for str.split() with no argument.
int mt_squad_py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the UTF-8 code point at s[*i] (the text is validated before) and advances *i.
uint32_t mt_squad_utf8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    uint32_t c = u[k];
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (extra) c &= 0x3Fu >> extra;
    for (int j = 1; j <= extra && k + (size_t)j < n; j++) c = (c << 6) | (u[k + (size_t)j] & 0x3F);
    *i = k + 1 + (size_t)extra;
    if (*i > n) *i = n;
    return c;
}

void mt_squad_free(mt_squad *q) {
    if (!q) return;
    for (size_t i = 0; i < q->n_q; i++) {
        squad_q *e = &q->q[i];
        free(e->id);
        free(e->question);
        for (int a = 0; a < e->n_ans; a++) free(e->ans_text[a]);
        free(e->ans_text);
        free(e->ans_start);
    }
    free(q->q);
    for (size_t i = 0; i < q->n_p; i++) {
        squad_p *p = &q->p[i];
        free(p->ctx);
        free(p->wb);
        free(p->we);
        free(p->word_tok);
        free(p->tok_id);
        free(p->tok_word);
    }
    free(q->p);
    free(q->f_start);
    free(q->f_end);
    free(q);
}

// Words and doc pieces of one context.
static mt_status squad_para_build(squad_p *p, mt_tokenizer *tok, mt_tokbuf *tb, const char *source) {
    size_t n = p->len;
    p->wb = mt_malloc((n + 1) * sizeof *p->wb);
    p->we = mt_malloc((n + 1) * sizeof *p->we);
    int32_t *byte_word = mt_malloc((n + 1) * sizeof *byte_word);
    if (!p->wb || !p->we || !byte_word) { free(byte_word); return MT_ERR_NOMEM; }
    int prev_ws = 1, nw = 0;
    size_t i = 0;
    while (i < n) {
        size_t b = i;
        uint32_t c = mt_squad_utf8_next(p->ctx, n, &i);
        if (squad_bert_ws(c)) {
            prev_ws = 1;
        } else {
            if (prev_ws) p->wb[nw++] = (uint32_t)b;
            prev_ws = 0;
            p->we[nw - 1] = (uint32_t)i;
        }
        for (size_t k = b; k < i; k++) byte_word[k] = nw - 1;
    }
    p->n_words = nw;
    mt_status s = mt_tokbuf_run(tb, tok, p->ctx, n, source);
    if (s) { free(byte_word); return s; }
    p->tok_id = mt_malloc((tb->n + 1) * sizeof *p->tok_id);
    p->tok_word = mt_malloc((tb->n + 1) * sizeof *p->tok_word);
    p->word_tok = mt_malloc(((size_t)nw + 1) * sizeof *p->word_tok);
    if (!p->tok_id || !p->tok_word || !p->word_tok) { free(byte_word); return MT_ERR_NOMEM; }
    p->n_tok = (int)tb->n;
    for (size_t t = 0; t < tb->n; t++) {
        p->tok_id[t] = tb->t[t].id;
        // No token starts on whitespace, and tokens never cross it, so the word of its first byte
        // is the BERT word that, tokenized alone, yields it.
        p->tok_word[t] = byte_word[tb->t[t].start];
    }
    free(byte_word);
    // orig_to_tok_index: the index the word's first piece has (or would have).
    int t = 0;
    for (int w = 0; w < nw; w++) {
        while (t < p->n_tok && p->tok_word[t] < w) t++;
        p->word_tok[w] = t;
    }
    return MT_OK;
}

// Code point index -> byte offset of a context (n_cp+1 entries).
static mt_status squad_cp_offsets(const char *s, size_t n, size_t **out, size_t *n_cp) {
    size_t *o = mt_malloc((n + 2) * sizeof *o);
    if (!o) return MT_ERR_NOMEM;
    size_t i = 0, k = 0;
    while (i < n) {
        o[k++] = i;
        (void)mt_squad_utf8_next(s, n, &i);
    }
    o[k] = n;
    *out = o;
    *n_cp = k;
    return MT_OK;
}

// " ".join(s.split()) with Python's whitespace.
char *mt_squad_py_join_split(const char *s, size_t n) {
    char *out = mt_malloc(n + 1);
    if (!out) return NULL;
    size_t i = 0, k = 0;
    int need_space = 0;
    while (i < n) {
        size_t b = i;
        uint32_t c = mt_squad_utf8_next(s, n, &i);
        if (mt_squad_py_space(c)) {
            if (k > 0) need_space = 1;
            continue;
        }
        if (need_space) out[k++] = ' ';
        need_space = 0;
        memcpy(out + k, s + b, i - b);
        k += i - b;
    }
    out[k] = 0;
    return out;
}

static mt_status squad_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return MT_OK;
    size_t nc = *cap ? *cap * 2 : 256;
    while (nc < need) nc *= 2;
    void *np = mt_realloc(*p, nc * elem);
    if (!np) return MT_ERR_NOMEM;
    *p = np;
    *cap = nc;
    return MT_OK;
}

static int squad_cmp_idp(const void *a, const void *b) {
    const squad_q *x = *(const squad_q *const *)a, *y = *(const squad_q *const *)b;
    return strcmp(x->id, y->id);
}

static const char *squad_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// Offset of the first NUL character in the JSON text buf[0..n): a raw NUL byte, or a \u0000
// escape inside a string (a backslash that is itself escaped, "\\u0000", is the text \u0000 and
// not a NUL). cJSON keeps strings NUL-terminated, so either would silently cut a context, a
// question or an id short. (size_t)-1 when there is none.
static size_t squad_nul_at(const char *buf, size_t n) {
    const char *raw = memchr(buf, 0, n);
    if (raw) return (size_t)(raw - buf);
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (!in_str) {
            in_str = c == '"';
        } else if (c == '"') {
            in_str = 0;
        } else if (c == '\\') {
            if (n - i >= 6 && !memcmp(buf + i + 1, "u0000", 5)) return i;
            i++; // the escaped character (a backslash or a quote among them)
        }
    }
    return (size_t)-1;
}

// Reads the JSON into examples (no tokenization yet).
static mt_status squad_read_json(mt_squad *q, const char *path, int version2, int labelled) {
    char *buf;
    size_t len;
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open the SQuAD file: %s", path, strerror(errno));
    mt_status rs = mt_read_all(f, 0, &buf, &len);
    int err = errno;
    fclose(f);
    if (rs == MT_ERR_IO) return mt_fail(rs, "%s: read error: %s", path, strerror(err));
    if (rs) return rs;
    size_t bad = mt_utf8_invalid_at(buf, len);
    if (bad != (size_t)-1) {
        free(buf);
        return mt_fail(MT_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu; SQuAD files are UTF-8 JSON", path, bad);
    }
    if ((bad = squad_nul_at(buf, len)) != (size_t)-1) {
        int line = 1;
        for (size_t i = 0; i < bad; i++) line += buf[i] == '\n';
        int escaped = buf[bad] != 0;
        free(buf);
        return mt_fail(MT_ERR_FORMAT, "%s: line %d, byte %zu: %s; SQuAD text (context, question, answer, id) cannot "
                       "hold NUL characters: remove it", path, line, bad,
                       escaped ? "a \\u0000 escape (the NUL character)" : "a NUL byte");
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - buf) : 0;
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= buf && e <= buf + len) off = (size_t)(e - buf);
        free(buf);
        return mt_fail(MT_ERR_FORMAT, "%s: malformed JSON near byte %zu; is this a SQuAD .json file (unzipped)?",
                       path, off);
    }
    mt_status s = MT_OK;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const char *ver = squad_str(root, "version");
    q->data_version2 = ver && strstr(ver, "2.");
    if (!cJSON_IsArray(data)) {
        s = mt_fail(MT_ERR_FORMAT, "%s: no \"data\" array at the top level; SQuAD files look like "
                    "{\"version\": ..., \"data\": [{\"title\", \"paragraphs\": [...]}]}", path);
        goto done;
    }
    int ai = 0;
    const cJSON *art;
    cJSON_ArrayForEach(art, data) {
        const cJSON *paras = cJSON_GetObjectItemCaseSensitive(art, "paragraphs");
        const char *title = squad_str(art, "title");
        if (!cJSON_IsArray(paras)) {
            s = mt_fail(MT_ERR_FORMAT, "%s: article %d (%s) has no \"paragraphs\" array", path, ai,
                        title ? title : "untitled");
            goto done;
        }
        int pi = 0;
        const cJSON *para;
        cJSON_ArrayForEach(para, paras) {
            const char *ctx = squad_str(para, "context");
            const cJSON *qas = cJSON_GetObjectItemCaseSensitive(para, "qas");
            const cJSON *q0 = cJSON_IsArray(qas) ? cJSON_GetArrayItem(qas, 0) : NULL;
            const char *qid0 = q0 ? squad_str(q0, "id") : NULL;
            if (!ctx || !cJSON_IsArray(qas)) {
                s = mt_fail(MT_ERR_FORMAT, "%s: article %d (%s) paragraph %d%s%s%s: missing %s", path, ai,
                            title ? title : "untitled", pi, qid0 ? " (question id " : "", qid0 ? qid0 : "",
                            qid0 ? ")" : "", ctx ? "\"qas\" array" : "\"context\" string");
                goto done;
            }
            // no BERT word: whitespace only, by code point as squad_para_build splits (U+202F included)
            size_t k = 0, ctx_len = strlen(ctx);
            while (k < ctx_len) {
                size_t b = k;
                if (!squad_bert_ws(mt_squad_utf8_next(ctx, ctx_len, &k))) {
                    k = b;
                    break;
                }
            }
            if (k == ctx_len) {
                s = mt_fail(MT_ERR_FORMAT, "%s: article %d (%s) paragraph %d%s%s%s: empty context; remove the "
                            "paragraph or give it text", path, ai, title ? title : "untitled", pi,
                            qid0 ? " (question id " : "", qid0 ? qid0 : "", qid0 ? ")" : "");
                goto done;
            }
            if ((s = squad_grow((void **)&q->p, &q->cap_p, q->n_p + 1, sizeof *q->p))) goto done;
            squad_p *P = &q->p[q->n_p++];
            memset(P, 0, sizeof *P);
            P->ctx = mt_strdup(ctx);
            if (!P->ctx) { s = MT_ERR_NOMEM; goto done; }
            P->len = strlen(ctx);
            P->first_q = cJSON_GetArraySize(qas) > 0 ? (int32_t)q->n_q : -1;
            int qi = 0;
            const cJSON *qa;
            cJSON_ArrayForEach(qa, qas) {
                const cJSON *idv = cJSON_GetObjectItemCaseSensitive(qa, "id");
                const char *id = cJSON_IsString(idv) ? idv->valuestring : NULL;
                const char *question = squad_str(qa, "question");
                if (!id) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: article %d (%s) paragraph %d question %d: missing \"id\" string",
                                path, ai, title ? title : "untitled", pi, qi);
                    goto done;
                }
                if (!question) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: question id %s: missing \"question\" string", path, id);
                    goto done;
                }
                if ((s = squad_grow((void **)&q->q, &q->cap_q, q->n_q + 1, sizeof *q->q))) goto done;
                squad_q *E = &q->q[q->n_q++];
                memset(E, 0, sizeof *E);
                E->para = (int32_t)(q->n_p - 1);
                E->id = mt_strdup(id);
                E->question = mt_strdup(question);
                if (!E->id || !E->question) { s = MT_ERR_NOMEM; goto done; }
                const cJSON *imp = cJSON_GetObjectItemCaseSensitive(qa, "is_impossible");
                E->impossible = version2 && cJSON_IsTrue(imp);
                const cJSON *ans = cJSON_GetObjectItemCaseSensitive(qa, "answers");
                if (ans && !cJSON_IsArray(ans)) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: question id %s: \"answers\" must be an array", path, id);
                    goto done;
                }
                int na = ans ? cJSON_GetArraySize(ans) : 0;
                if (labelled && !E->impossible && na == 0) {
                    s = mt_fail(MT_ERR_FORMAT, "%s: question id %s has no answers%s", path, id,
                                version2 ? " and is not marked \"is_impossible\": true"
                                         : "; for SQuAD v2.0 data set model.dataset.version_2_with_negative=true");
                    goto done;
                }
                E->ans_text = mt_calloc((size_t)na + 1, sizeof *E->ans_text);
                E->ans_start = mt_calloc((size_t)na + 1, sizeof *E->ans_start);
                if (!E->ans_text || !E->ans_start) { s = MT_ERR_NOMEM; goto done; }
                const cJSON *a;
                cJSON_ArrayForEach(a, ans) {
                    const char *t = squad_str(a, "text");
                    const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "answer_start");
                    // integral and finite without a cast: casting 1e308 to an integer is undefined
                    // (found by fuzz_squad: "answer_start": 391e308)
                    if (!t || !cJSON_IsNumber(st) || !isfinite(st->valuedouble) || st->valuedouble != floor(st->valuedouble)) {
                        s = mt_fail(MT_ERR_FORMAT, "%s: question id %s: answer %d needs a \"text\" string and an "
                                    "integer \"answer_start\"", path, id, E->n_ans);
                        goto done;
                    }
                    E->ans_text[E->n_ans] = mt_strdup(t);
                    if (!E->ans_text[E->n_ans]) { s = MT_ERR_NOMEM; goto done; }
                    E->ans_start[E->n_ans++] = st->valuedouble < -1 ? -1 : st->valuedouble > 1e9 ? 1000000000
                                                                                              : (int)st->valuedouble;
                }
                qi++;
            }
            pi++;
        }
        ai++;
    }
    if (q->n_q > 1) {
        squad_q **ix = mt_malloc(q->n_q * sizeof *ix);
        if (!ix) { s = MT_ERR_NOMEM; goto done; }
        for (size_t i = 0; i < q->n_q; i++) ix[i] = &q->q[i];
        qsort(ix, q->n_q, sizeof *ix, squad_cmp_idp);
        for (size_t i = 1; i < q->n_q; i++)
            if (!strcmp(ix[i]->id, ix[i - 1]->id)) {
                s = mt_fail(MT_ERR_FORMAT, "%s: question id %s appears twice; ids must be unique (predictions are "
                            "keyed by id)", path, ix[i]->id);
                break;
            }
        free(ix);
    }
done:
    cJSON_Delete(root);
    free(buf);
    return s;
}

// _improve_answer_span: the smallest piece span inside [*s,*e] equal to the tokenized answer.
static void squad_improve_span(const squad_p *P, const mt_tokbuf *ans, int *s, int *e) {
    for (int ns = *s; ns <= *e; ns++)
        for (int ne = *e; ne >= ns; ne--) {
            if ((size_t)(ne - ns + 1) != ans->n) continue;
            int same = 1;
            for (int k = 0; k <= ne - ns && same; k++) same = P->tok_id[ns + k] == ans->t[k].id;
            if (same) { *s = ns; *e = ne; return; }
        }
}

// Words [a, b] joined with one space, as " ".join(doc_tokens[a:b+1]).
static char *squad_join_words(const squad_p *P, int a, int b) {
    size_t n = 1;
    for (int w = a; w <= b; w++) n += P->we[w] - P->wb[w] + 1;
    char *out = mt_malloc(n);
    if (!out) return NULL;
    size_t k = 0;
    for (int w = a; w <= b; w++) {
        if (w > a) out[k++] = ' ';
        memcpy(out + k, P->ctx + P->wb[w], P->we[w] - P->wb[w]);
        k += P->we[w] - P->wb[w];
    }
    out[k] = 0;
    return out;
}

// Answer positions (doc piece indices) of example E, or -1/-1 when impossible; 0 = use them,
// 1 = skip the example (training answer not found), <0 error.
static mt_status squad_answer_span(mt_squad *q, mt_tokenizer *tok, mt_tokbuf *tb, const squad_q *E, int training,
                                   int *ts, int *te, int *skip) {
    const squad_p *P = &q->p[E->para];
    *ts = *te = -1;
    *skip = 0;
    if (E->impossible || E->n_ans == 0) return MT_OK;
    const char *text = E->ans_text[0];
    size_t *cpo, n_cp;
    MT_TRY(squad_cp_offsets(P->ctx, P->len, &cpo, &n_cp));
    size_t tl = strlen(text), alen = 0;
    for (size_t i = 0; i < tl;) { (void)mt_squad_utf8_next(text, tl, &i); alen++; }
    long st = E->ans_start[0];
    if (alen == 0 || st < 0 || (size_t)st + alen > n_cp) {
        free(cpo);
        return mt_fail(MT_ERR_FORMAT, "%s: question id %s: answer_start %ld with a %zu-character answer is outside "
                       "the %zu-character context (answer_start counts characters from 0)", q->path, E->id, st, alen,
                       n_cp);
    }
    // char_to_word_offset of the first and last answer characters
    size_t b0 = cpo[st], b1 = cpo[(size_t)st + alen - 1];
    free(cpo);
    int sw = -1, ew = -1;
    for (int w = 0; w < P->n_words; w++) {
        if (P->wb[w] <= b0) sw = w;
        if (P->wb[w] <= b1) ew = w;
    }
    if (sw < 0) sw = 0; // leading whitespace before the first word: that word
    if (ew < sw) ew = sw;
    if (training) {
        char *actual = squad_join_words(P, sw, ew), *clean = mt_squad_py_join_split(text, tl);
        int found = actual && clean && strstr(actual, clean) != NULL;
        int oom = !actual || !clean;
        free(actual);
        free(clean);
        if (oom) return MT_ERR_NOMEM;
        if (!found) { *skip = 1; return MT_OK; }
    }
    int s = P->word_tok[sw];
    int e = ew < P->n_words - 1 ? P->word_tok[ew + 1] - 1 : P->n_tok - 1;
    MT_TRY(mt_tokbuf_run(tb, tok, text, tl, E->id));
    squad_improve_span(P, tb, &s, &e);
    *ts = s;
    *te = e;
    return MT_OK;
}

mt_status mt_squad_load(mt_dataset *d, mt_tokenizer *tok, const char *path, int training, int labelled) {
    const mt_task_options *o = &d->opt;
    if (o->max_query_length < 1 || o->doc_stride < 1)
        return mt_fail(MT_ERR_INVALID, "model.dataset.max_query_length (%d) and doc_stride (%d) must be at least 1",
                       o->max_query_length, o->doc_stride);
    if (o->max_seq_length - o->max_query_length - 3 < 1)
        return mt_fail(MT_ERR_INVALID, "model.dataset.max_seq_length (%d) leaves no room for the context after a "
                       "question of max_query_length=%d pieces and 3 special tokens; raise max_seq_length or lower "
                       "max_query_length", o->max_seq_length, o->max_query_length);
    mt_squad *q = mt_calloc(1, sizeof *q);
    if (!q) return MT_ERR_NOMEM;
    d->squad = q;
    snprintf(q->path, sizeof q->path, "%s", path);
    q->vocab = mt_tokenizer_vocab(tok);
    MT_TRY(squad_read_json(q, path, o->version_2_with_negative, labelled));
    mt_tokbuf tb = {0}, qb = {0};
    mt_status s = MT_OK;
    char source[1200];
    for (size_t i = 0; i < q->n_p && !s; i++) {
        int32_t fq = q->p[i].first_q;
        snprintf(source, sizeof source, "%s: context of question id %s", path, fq >= 0 ? q->q[fq].id : "(none)");
        s = squad_para_build(&q->p[i], tok, &tb, source);
        // a context with no word or no piece has no position an answer could take (word_tok, wb and
        // we would be read at index 0 unset); squad_read_json refuses whitespace-only contexts, this
        // also catches text the tokenizer drops whole (control and zero-width characters)
        if (!s && (q->p[i].n_words == 0 || q->p[i].n_tok == 0))
            s = mt_fail(MT_ERR_FORMAT, "%s: context of question id %s has no %s (only whitespace or characters the "
                        "tokenizer drops, such as control or zero-width characters); remove the paragraph or give it "
                        "text", path, fq >= 0 ? q->q[fq].id : "(none: a paragraph without questions)",
                        q->p[i].n_words == 0 ? "word" : "token");
    }
    int L = o->max_seq_length;
    int32_t *ids = mt_malloc((size_t)L * sizeof *ids), *types = mt_malloc((size_t)L * sizeof *types);
    int32_t *maxctx = mt_malloc((size_t)L * sizeof *maxctx), *word = mt_malloc((size_t)L * sizeof *word);
    int *span_st = NULL, *span_len = NULL;
    size_t cap_span_st = 0, cap_span_len = 0;
    if (!s && (!ids || !types || !maxctx || !word)) s = MT_ERR_NOMEM;
    for (size_t i = 0; i < q->n_q && !s; i++) {
        const squad_q *E = &q->q[i];
        const squad_p *P = &q->p[E->para];
        int ts = -1, te = -1, skip = 0;
        if (labelled) {
            s = squad_answer_span(q, tok, &tb, E, training, &ts, &te, &skip);
            if (s) break;
            if (skip) {
                if (q->skipped < 5) {
                    mt_warn("%s: question id %s: answer '%.60s' not found in the context at answer_start %d; "
                            "skipped as BERT does", path, E->id, E->ans_text[0], E->ans_start[0]);
                }
                q->skipped++;
                continue;
            }
        }
        snprintf(source, sizeof source, "%s: question id %s", path, E->id);
        if ((s = mt_tokbuf_run(&qb, tok, E->question, strlen(E->question), source))) break;
        int nq = (int)qb.n < o->max_query_length ? (int)qb.n : o->max_query_length;
        int span_max = L - nq - 3;
        int n_tok = P->n_tok;
        // the windows (doc_spans): starts and ends both increase with the window's index
        int nspans = 0;
        for (int st = 0; st < n_tok;) {
            int len = n_tok - st < span_max ? n_tok - st : span_max;
            if ((s = squad_grow((void **)&span_st, &cap_span_st, (size_t)nspans + 1, sizeof *span_st))) break;
            if ((s = squad_grow((void **)&span_len, &cap_span_len, (size_t)nspans + 1, sizeof *span_len))) break;
            span_st[nspans] = st, span_len[nspans] = len;
            nspans++;
            if (st + len == n_tok) break;
            st += len < o->doc_stride ? len : o->doc_stride;
        }
        if (s) break;
        int st = 0;
        for (int w = 0; w < nspans; w++) {
            int len = n_tok - st < span_max ? n_tok - st : span_max;
            int k = 0;
            ids[k] = d->cls_id; types[k] = 0; maxctx[k] = 0; word[k++] = -1;
            for (int j = 0; j < nq; j++) { ids[k] = qb.t[j].id; types[k] = 0; maxctx[k] = 0; word[k++] = -1; }
            ids[k] = d->sep_id; types[k] = 0; maxctx[k] = 0; word[k++] = -1;
            for (int j = 0; j < len; j++) {
                int pos = st + j;
                // _check_is_max_context over the windows of this example that hold pos, in window
                // order (the first best wins, as in BERT): those from the first whose end reaches pos
                // (a binary search) to the last that starts at or before it. Visiting every window for
                // every token was quadratic in the context: seconds for a 13 KB context at doc_stride 3.
                double best = -1.0;
                int best_w = -1, lo = 0, hi = nspans - 1;
                while (lo < hi) {
                    int mid = lo + (hi - lo) / 2;
                    if (span_st[mid] + span_len[mid] - 1 < pos) lo = mid + 1;
                    else hi = mid;
                }
                for (int w2 = lo; w2 < nspans && span_st[w2] <= pos; w2++) {
                    int s2 = span_st[w2], e2 = s2 + span_len[w2] - 1;
                    int left = pos - s2, right = e2 - pos;
                    double score = (double)(left < right ? left : right) + 0.01 * (double)span_len[w2];
                    if (best_w < 0 || score > best) { best = score; best_w = w2; }
                }
                ids[k] = P->tok_id[pos]; types[k] = 1; maxctx[k] = best_w == w; word[k++] = P->tok_word[pos];
            }
            ids[k] = d->sep_id; types[k] = 1; maxctx[k] = 0; word[k++] = -1;
            int sp = 0, ep = 0;
            if (labelled && ts >= 0) {
                if (ts >= st && te <= st + len - 1) {
                    sp = ts - st + nq + 2;
                    ep = te - st + nq + 2;
                }
            }
            size_t f = d->n_feat;
            if ((s = squad_grow((void **)&q->f_start, &q->cap_fs, f + 1, sizeof *q->f_start))) break;
            if ((s = squad_grow((void **)&q->f_end, &q->cap_fe, f + 1, sizeof *q->f_end))) break;
            q->f_start[f] = sp;
            q->f_end[f] = ep;
            if ((s = mt_ds_add_feature(d, ids, types, maxctx, NULL, word, k, -1, 0.0f, (int32_t)i))) break;
            if (st + len == n_tok) break;
            st += len < o->doc_stride ? len : o->doc_stride;
        }
    }
    d->n_examples = q->n_q;
    if (!s && q->skipped)
        mt_warn("%s: %d training question(s) skipped: the answer text does not match the context at answer_start "
                "(BERT's run_squad.py skips them too)", path, q->skipped);
    if (!s && labelled && d->n_feat == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no question produced a feature", path);
    free(span_st);
    free(span_len);
    free(ids);
    free(types);
    free(maxctx);
    free(word);
    mt_tokbuf_free(&tb);
    mt_tokbuf_free(&qb);
    return s;
}

const mt_vocab *mt_squad_vocab(const mt_dataset *d) { return d->squad ? d->squad->vocab : NULL; }

int mt_squad_feature_start(const mt_dataset *d, size_t f) { return d->squad && f < d->n_feat ? d->squad->f_start[f] : 0; }
int mt_squad_feature_end(const mt_dataset *d, size_t f) { return d->squad && f < d->n_feat ? d->squad->f_end[f] : 0; }

static void squad_dump_list(FILE *out, const int32_t *v, int n) {
    for (int i = 0; i < n; i++) fprintf(out, i ? " %d" : "%d", v[i]);
}

mt_status mt_squad_dump_features(const mt_dataset *d, FILE *out) {
    const mt_squad *q = d->squad;
    if (!q) return mt_fail(MT_ERR_INVALID, "not a SQuAD dataset");
    int prev = -1, win = 0;
    for (size_t f = 0; f < d->n_feat; f++) {
        const mt_feature *F = &d->feat[f];
        win = F->example == prev ? win + 1 : 0;
        prev = F->example;
        fprintf(out, "%s\t%d\t", q->q[F->example].id, win);
        squad_dump_list(out, d->ids + F->off, F->len);
        fputc('\t', out);
        squad_dump_list(out, d->types + F->off, F->len);
        fprintf(out, "\t%d\t%d\t", q->f_start[f], q->f_end[f]);
        squad_dump_list(out, d->tlabels + F->off, F->len);
        fputc('\t', out);
        squad_dump_list(out, d->word_at + F->off, F->len);
        fputc('\n', out);
    }
    return ferror(out) ? mt_fail(MT_ERR_IO, "write failed") : MT_OK;
}
