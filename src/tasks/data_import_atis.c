// `megatune data import-atis`: the ATIS release that NeMo's import_datasets.py (process_atis)
// reads — Microsoft's CNTK files as shared on Kaggle (siddhadev/atis-dataset-from-ms-cntk) —
// into NeMo's intent/slot layout:
//   in:  atis.dict.vocab.csv, atis.dict.intent.csv, atis.dict.slots.csv (line index = id);
//        atis.<mode>.query.csv (word ids, first and last = BOS/EOS), atis.<mode>.intent.csv (one id),
//        atis.<mode>.slots.csv (slot ids, first and last = BOS/EOS slots), mode = train, test
//   out: <mode>.tsv ("sentence<TAB>label" header, then "words<TAB>intent id"), <mode>_slots.tsv,
//        dict.intents.csv, dict.slots.csv (copies of the two dictionaries)
// As NeMo, the words are joined by single spaces and lower-cased only on request. The six files
// appear together or not at all: a failed import leaves OUT as it was.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "tasks/data_tools.h"
#include "tasks/outfile.h"
#include "tasks/task_internal.h"

typedef struct {
    char **s;
    int n;
    mt_lines L;
} atis_list;

// Non-blank lines, stripped (NeMo's get_vocab / label2idx).
static mt_status atis_read_list(atis_list *v, const char *path) {
    memset(v, 0, sizeof *v);
    MT_TRY(mt_lines_open(&v->L, path));
    char *line;
    size_t len;
    int r, cap = 0;
    mt_status s = MT_OK;
    while ((r = mt_lines_next(&v->L, &line, &len)) == 1) {
        char *f[2];
        if (mt_split_ws(line, f, 2) == 0) continue;
        if (v->n == cap) {
            cap = cap ? cap * 2 : 256;
            char **ns = mt_realloc(v->s, (size_t)cap * sizeof *ns);
            if (!ns) { s = MT_ERR_NOMEM; break; }
            v->s = ns;
        }
        v->s[v->n++] = f[0];
    }
    if (!s && r < 0) s = MT_ERR_FORMAT;
    if (!s && v->n == 0) s = mt_fail(MT_ERR_FORMAT, "%s: empty", path);
    if (s) {
        free(v->s);
        mt_lines_close(&v->L);
        memset(v, 0, sizeof *v);
    }
    return s;
}

static void atis_list_free(atis_list *v) {
    free(v->s);
    mt_lines_close(&v->L);
}

// One split: atis.<mode>.*.csv -> o1 (<mode>.tsv) and o2 (<mode>_slots.tsv), open and not yet
// committed (the caller commits the whole data set at once).
static mt_status atis_mode(const char *in, const char *mode, const atis_list *vocab, int n_intents, int n_slots,
                           int lower, mt_outfile *o1, mt_outfile *o2, size_t *count) {
    char qp[2048], ip[2048], sp[2048];
    MT_TRY(mt_path_fmt(qp, sizeof qp, "%s/atis.%s.query.csv", in, mode));
    MT_TRY(mt_path_fmt(ip, sizeof ip, "%s/atis.%s.intent.csv", in, mode));
    MT_TRY(mt_path_fmt(sp, sizeof sp, "%s/atis.%s.slots.csv", in, mode));
    mt_lines Q, I, S;
    MT_TRY(mt_lines_open(&Q, qp));
    mt_status s = mt_lines_open(&I, ip);
    if (s) { mt_lines_close(&Q); return s; }
    if ((s = mt_lines_open(&S, sp))) { mt_lines_close(&Q); mt_lines_close(&I); return s; }
    fputs("sentence\tlabel\n", o1->f);
    char *q, *it, *sl, **fq = NULL, **fs = NULL;
    size_t lq, li, ls, cap = 0;
    size_t n = 0;
    while (!s) {
        int rq = mt_lines_next(&Q, &q, &lq), ri = mt_lines_next(&I, &it, &li), rs = mt_lines_next(&S, &sl, &ls);
        if (rq < 0 || ri < 0 || rs < 0) { s = MT_ERR_FORMAT; break; }
        if (!rq && !ri && !rs) break;
        if (!rq || !ri || !rs) {
            s = mt_fail(MT_ERR_FORMAT, "%s, %s and %s must have the same number of lines (one per query); they differ "
                        "after line %zu", qp, ip, sp, n);
            break;
        }
        size_t need = (lq > ls ? lq : ls) / 2 + 2;
        if (need > cap) {
            cap = need;
            char **a = mt_realloc(fq, cap * sizeof *a);
            if (a) fq = a;
            char **b = a ? mt_realloc(fs, cap * sizeof *b) : NULL;
            if (!b) { s = MT_ERR_NOMEM; break; }
            fs = b;
        }
        int nq = mt_split_ws(q, fq, (int)cap), ns = mt_split_ws(sl, fs, (int)cap);
        long iv;
        char *fi[2];
        if (mt_split_ws(it, fi, 2) != 1 || !mt_parse_int(fi[0], &iv) || iv < 0 || iv >= n_intents) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: expected one intent id in [0, %d) (atis.dict.intent.csv)", ip, I.lineno,
                        n_intents);
            break;
        }
        if (nq < 3 || nq != ns) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d has %d ids but %s:%d has %d; each query needs BOS, its words, EOS and "
                        "one slot id per id", qp, Q.lineno, nq, sp, S.lineno, ns);
            break;
        }
        for (int j = 1; j < nq - 1 && !s; j++) { // BOS and EOS dropped, as process_atis does
            long w, y;
            if (!mt_parse_int(fq[j], &w) || w < 0 || w >= vocab->n)
                s = mt_fail(MT_ERR_FORMAT, "%s:%d: word id '%.20s' is not in atis.dict.vocab.csv (%d words)", qp,
                            Q.lineno, fq[j], vocab->n);
            else if (!mt_parse_int(fs[j], &y) || y < 0 || y >= n_slots)
                s = mt_fail(MT_ERR_FORMAT, "%s:%d: slot id '%.20s' is not in atis.dict.slots.csv (%d slots)", sp,
                            S.lineno, fs[j], n_slots);
            else {
                const char *word = vocab->s[w];
                if (j > 1) fputc(' ', o1->f);
                for (const char *c = word; *c; c++) fputc(lower ? tolower((unsigned char)*c) : *c, o1->f);
                fprintf(o2->f, "%s%ld", j > 1 ? " " : "", y);
            }
        }
        if (s) break;
        fprintf(o1->f, "\t%ld\n", iv);
        fputc('\n', o2->f);
        n++;
    }
    if (!s && n == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no query", qp);
    free(fq);
    free(fs);
    mt_lines_close(&Q);
    mt_lines_close(&I);
    mt_lines_close(&S);
    if (count) *count = n;
    return s;
}

static void atis_copy_list(const atis_list *v, FILE *f) {
    for (int i = 0; i < v->n; i++) fprintf(f, "%s\n", v->s[i]);
}

mt_status mt_data_import_atis(const char *in_dir, const char *out_dir, int lower, size_t *n_train, size_t *n_test) {
    atis_list vocab, intents, slots;
    char p[2048];
    memset(&vocab, 0, sizeof vocab);
    memset(&intents, 0, sizeof intents);
    memset(&slots, 0, sizeof slots);
    mt_status s = mt_path_join(p, sizeof p, in_dir, "atis.dict.vocab.csv");
    if (!s) s = atis_read_list(&vocab, p);
    if (!s) s = mt_path_join(p, sizeof p, in_dir, "atis.dict.intent.csv");
    if (!s) s = atis_read_list(&intents, p);
    if (!s) s = mt_path_join(p, sizeof p, in_dir, "atis.dict.slots.csv");
    if (!s) s = atis_read_list(&slots, p);
    // The six files are one data set: each is written to a temporary file beside its target and
    // all are renamed into place together at the end, so a failure anywhere leaves OUT_DIR as it
    // was (a user's earlier data set included), never a mix of old and new files.
    enum { N_OUT = 6 };
    static const char *const names[N_OUT] = {"train.tsv",      "train_slots.tsv",  "test.tsv",
                                             "test_slots.tsv", "dict.intents.csv", "dict.slots.csv"};
    mt_outfile o[N_OUT];
    memset(o, 0, sizeof o);
    for (int i = 0; i < N_OUT && !s; i++) {
        s = mt_path_join(p, sizeof p, out_dir, names[i]);
        if (!s) s = mt_outfile_open(&o[i], p);
    }
    if (!s) s = atis_mode(in_dir, "train", &vocab, intents.n, slots.n, lower, &o[0], &o[1], n_train);
    if (!s) s = atis_mode(in_dir, "test", &vocab, intents.n, slots.n, lower, &o[2], &o[3], n_test);
    if (!s) {
        atis_copy_list(&intents, o[4].f);
        atis_copy_list(&slots, o[5].f);
        s = mt_outfile_commit_all((mt_outfile *const[]){&o[0], &o[1], &o[2], &o[3], &o[4], &o[5]}, N_OUT);
    }
    for (int i = 0; i < N_OUT; i++) mt_outfile_abort(&o[i]); // (temporary files of a failed run)
    atis_list_free(&vocab);
    atis_list_free(&intents);
    atis_list_free(&slots);
    return s;
}
