// The two-head tasks' data (NeMo v1.0-1.4):
//   punctuation_capitalization: text_<split>.txt (lower-cased words) + labels_<split>.txt with one
//     two-character label per word: the punctuation that follows the word (O , . ?) then its
//     capitalisation (U or O). Two label maps, each pad_label ('O') = 0 then the others sorted
//     (punct_label_ids.csv, capit_label_ids.csv); the labels of a word go to all its pieces,
//     [CLS]/[SEP] take id 0 (punctuation_capitalization_dataset.py).
//   intent_slot_classification: <prefix>.tsv (a header line, then "sentence<TAB>intent id"),
//     <prefix>_slots.tsv (one slot id per word, no header), dict.intents.csv and dict.slots.csv
//     (line index = id). [CLS]/[SEP] and padding take the pad slot: model.pad_label, or 'O' when
//     it is -1 (intent_slot_classification_descriptor.py). Class weights come from the train split.
// Long sentences use token classification's windows (src/tasks/ner.c) instead of NeMo's
// truncation, so every word is trained on and predicted.
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/log.h"
#include "tasks/task_internal.h"
#include "text/utf8_internal.h"

// Splits a P&C label into its two characters (code points, not bytes: '¿' is two bytes, one
// character); 1 when it has exactly two. a and b get each character NUL-terminated (5 bytes each).
// The text is valid UTF-8 (mt_lines_next checks it).
static int pnc_label_halves(const char *label, char *a, char *b) {
    const unsigned char *u = (const unsigned char *)label;
    size_t n = strlen(label), i = 0;
    char *out[2] = {a, b};
    int k = 0;
    while (i < n) {
        int32_t cp;
        int len = mt_text_utf8_decode(u + i, n - i, &cp);
        if (len < 0 || k == 2) return 0;
        memcpy(out[k], label + i, (size_t)len);
        out[k++][len] = 0;
        i += (size_t)len;
    }
    return k == 2;
}

// Whether s is exactly one character (pad_label is one half of a label).
static int one_char(const char *s) {
    int32_t cp;
    size_t n = strlen(s);
    return n > 0 && mt_text_utf8_decode((const unsigned char *)s, n, &cp) == (int)n;
}

mt_status mt_read_label_file(mt_dataset *d, const char *path, int second) {
    mt_lines L;
    MT_TRY(mt_lines_open(&L, path));
    char *line;
    size_t len;
    int r;
    mt_status s = MT_OK;
    while ((r = mt_lines_next(&L, &line, &len)) == 1) {
        char *f[2];
        int nf = mt_split_ws(line, f, 2);
        if (nf == 0) continue; // NeMo's label2idx drops blank lines
        if (nf != 1) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: a label map line must hold exactly one label (line index = id)", path,
                        L.lineno);
            break;
        }
        if ((second ? mt_ds_find_label2(d, f[0]) : mt_ds_find_label(d, f[0])) >= 0) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: label '%s' appears twice", path, L.lineno, f[0]);
            break;
        }
        if ((s = second ? mt_ds_add_label2(d, f[0]) : mt_ds_add_label(d, f[0]))) break;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    mt_lines_close(&L);
    if (!s && (second ? d->n_labels2 : d->n_labels) == 0)
        s = mt_fail(MT_ERR_FORMAT, "%s: the label map is empty", path);
    if (second) d->num_classes2 = d->n_labels2;
    else d->num_classes = d->n_labels;
    return s;
}

// All lines of a file, split in place into whitespace-separated fields.
typedef struct {
    mt_lines L;
    char ***f;
    int *nf;
    int *lineno;
    size_t n, cap;
} field_lines;

static void fl_free(field_lines *F) {
    for (size_t i = 0; i < F->n; i++) free(F->f[i]);
    free(F->f);
    free(F->nf);
    free(F->lineno);
    mt_lines_close(&F->L);
}

// tab_last: split off the text after the last TAB as a final field (intent .tsv lines).
static mt_status fl_read(field_lines *F, const char *path, int skip_header) {
    memset(F, 0, sizeof *F);
    MT_TRY(mt_lines_open(&F->L, path));
    char *line;
    size_t len;
    int r;
    mt_status s = MT_OK;
    while ((r = mt_lines_next(&F->L, &line, &len)) == 1) {
        if (skip_header && F->L.lineno == 1) continue;
        if (F->n == F->cap) {
            size_t nc = F->cap ? F->cap * 2 : 1024;
            char ***a = mt_realloc(F->f, nc * sizeof *a);
            if (a) F->f = a;
            int *b = a ? mt_realloc(F->nf, nc * sizeof *b) : NULL;
            if (b) F->nf = b;
            int *c = b ? mt_realloc(F->lineno, nc * sizeof *c) : NULL;
            if (!c) { s = MT_ERR_NOMEM; break; }
            F->lineno = c;
            F->cap = nc;
        }
        int cap = (int)(len / 2 + 2);
        F->f[F->n] = mt_malloc((size_t)cap * sizeof(char *));
        if (!F->f[F->n]) { s = MT_ERR_NOMEM; break; }
        F->nf[F->n] = mt_split_ws(line, F->f[F->n], cap);
        F->lineno[F->n] = F->L.lineno;
        F->n++;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    if (s) fl_free(F);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// pad_label = 0, then the other labels sorted (NeMo's label maps for both P&C heads).
static mt_status build_map(mt_dataset *d, char **all, size_t n, int second) {
    qsort(all, n, sizeof *all, cmp_str);
    mt_status s = second ? mt_ds_add_label2(d, d->opt.pad_label) : mt_ds_add_label(d, d->opt.pad_label);
    for (size_t i = 0; i < n && !s; i++)
        if ((i == 0 || strcmp(all[i], all[i - 1])) && strcmp(all[i], d->opt.pad_label))
            s = second ? mt_ds_add_label2(d, all[i]) : mt_ds_add_label(d, all[i]);
    return s;
}

mt_status mt_pnc_load(mt_dataset *d, mt_tokenizer *tok, const char *dir, const char *split) {
    char tpath[2048], lpath[2048];
    MT_TRY(mt_path_fmt(tpath, sizeof tpath, "%s/text_%s.txt", dir, split));
    MT_TRY(mt_path_fmt(lpath, sizeof lpath, "%s/labels_%s.txt", dir, split));
    if (!one_char(d->opt.pad_label))
        return mt_fail(MT_ERR_INVALID, "model.dataset.pad_label '%s': punctuation/capitalisation labels are one "
                       "character each (use 'O')", d->opt.pad_label);
    field_lines T, Lb;
    MT_TRY(fl_read(&T, tpath, 0));
    mt_status s = fl_read(&Lb, lpath, 0);
    if (s) { fl_free(&T); return s; }
    if (T.n != Lb.n)
        s = mt_fail(MT_ERR_FORMAT, "%s has %zu lines but %s has %zu; the two files must have one line per sentence each",
                    tpath, T.n, lpath, Lb.n);
    size_t total = 0;
    for (size_t i = 0; i < T.n && !s; i++) {
        if (T.nf[i] != Lb.nf[i]) { // a blank line in both files (NeMo's importer writes them) is skipped
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: %d words but %s:%d has %d labels; give one label per word", tpath,
                        T.lineno[i], T.nf[i], lpath, Lb.lineno[i], Lb.nf[i]);
            break;
        }
        char h1[5], h2[5];
        for (int j = 0; j < Lb.nf[i] && !s; j++)
            if (!pnc_label_halves(Lb.f[i][j], h1, h2))
                s = mt_fail(MT_ERR_FORMAT, "%s:%d: label %d '%.20s' is not two characters (punctuation mark or O, then "
                            "U or O for capitalisation, e.g. ',U' or 'OO')", lpath, Lb.lineno[i], j + 1, Lb.f[i][j]);
        total += (size_t)T.nf[i];
    }
    // The two one-character halves of every label, as separate strings: label k's at HALF(k, 0)
    // and HALF(k, 1), up to 4 bytes and a NUL each.
#define HALF(k, h) (halves + 10 * (k) + 5 * (h))
    char *halves = !s ? mt_malloc(total * 10 + 1) : NULL;
    if (!s && !halves) s = MT_ERR_NOMEM;
    if (!s) {
        size_t k = 0;
        for (size_t i = 0; i < Lb.n; i++)
            for (int j = 0; j < Lb.nf[i]; j++, k++) (void)pnc_label_halves(Lb.f[i][j], HALF(k, 0), HALF(k, 1));
    }
    if (!s && d->n_labels == 0 && d->n_labels2 == 0) {
        char **all = mt_malloc((total ? total : 1) * sizeof *all);
        if (!all) s = MT_ERR_NOMEM;
        for (int h = 0; h < 2 && !s; h++) {
            for (size_t k = 0; k < total; k++) all[k] = HALF(k, h);
            s = build_map(d, all, total, h);
        }
        free(all);
        d->num_classes = d->n_labels;
        d->num_classes2 = d->n_labels2;
    } else if (!s && (mt_ds_find_label(d, d->opt.pad_label) != 0 || mt_ds_find_label2(d, d->opt.pad_label) != 0)) {
        s = mt_fail(MT_ERR_FORMAT, "the punct/capit label maps do not both have pad_label '%s' at id 0; set "
                    "model.dataset.pad_label or fix punct_label_ids.csv / capit_label_ids.csv", d->opt.pad_label);
    }
    int32_t *p = NULL, *c = NULL;
    size_t cap = 0, k = 0;
    int32_t example = 0;
    char source[2100];
    for (size_t i = 0; i < T.n && !s; i++) {
        int n = T.nf[i];
        if (n == 0) continue;
        if ((size_t)n > cap) {
            cap = (size_t)n * 2;
            int32_t *a = mt_realloc(p, cap * sizeof *a);
            if (a) p = a;
            int32_t *b = a ? mt_realloc(c, cap * sizeof *b) : NULL;
            if (!b) { s = MT_ERR_NOMEM; break; }
            c = b;
        }
        for (int j = 0; j < n && !s; j++, k++) {
            p[j] = mt_ds_find_label(d, HALF(k, 0));
            c[j] = mt_ds_find_label2(d, HALF(k, 1));
            if (p[j] < 0 || c[j] < 0)
                s = mt_fail(MT_ERR_FORMAT, "%s:%d: label '%s' (word %d): '%s' is not in the training %s label map; add "
                            "it to the train split or to %s", lpath, Lb.lineno[i], Lb.f[i][j], j + 1,
                            p[j] < 0 ? HALF(k, 0) : HALF(k, 1), p[j] < 0 ? "punctuation" : "capitalisation",
                            p[j] < 0 ? "punct_label_ids.csv" : "capit_label_ids.csv");
        }
        if (s) break;
        snprintf(source, sizeof source, "%s:%d", tpath, T.lineno[i]);
        s = mt_ner_add_sentence2(d, tok, T.f[i], p, c, -1, n, example++, source);
    }
    if (!s && example == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no sentence found", tpath);
    if (!s && d->too_long)
        mt_info("%s: %d sentence(s) longer than max_seq_length=%d split into windows", tpath, d->too_long,
                d->opt.max_seq_length);
    free(p);
    free(c);
    free(halves);
#undef HALF
    fl_free(&T);
    fl_free(&Lb);
    return s;
}

mt_status mt_is_load(mt_dataset *d, mt_tokenizer *tok, const char *dir, const char *prefix) {
    char ipath[2048], spath[2048], dpath[2048];
    mt_status s = MT_OK;
    if (d->n_labels == 0) {
        MT_TRY(mt_path_join(dpath, sizeof dpath, dir, "dict.intents.csv"));
        MT_TRY(mt_read_label_file(d, dpath, 0));
    }
    if (d->n_labels2 == 0) {
        MT_TRY(mt_path_join(dpath, sizeof dpath, dir, "dict.slots.csv"));
        MT_TRY(mt_read_label_file(d, dpath, 1));
    }
    if (d->opt.slot_pad_label < 0) {
        int o = mt_ds_find_label2(d, "O");
        if (o < 0)
            return mt_fail(MT_ERR_FORMAT, "%s/dict.slots.csv has no 'O' slot, which model.pad_label=-1 uses for [CLS], "
                           "[SEP] and padding; add it or set model.pad_label to a slot id", dir);
        d->opt.slot_pad_label = o;
    } else if (d->opt.slot_pad_label >= d->n_labels2) {
        return mt_fail(MT_ERR_INVALID, "model.pad_label=%d is not a slot id (the slot map has %d slots)",
                       d->opt.slot_pad_label, d->n_labels2);
    }
    MT_TRY(mt_path_fmt(ipath, sizeof ipath, "%s/%s.tsv", dir, prefix));
    MT_TRY(mt_path_fmt(spath, sizeof spath, "%s/%s_slots.tsv", dir, prefix));
    field_lines I, S;
    MT_TRY(fl_read(&I, ipath, 1)); // NeMo skips the first line: the "sentence<TAB>label" header
    s = fl_read(&S, spath, 0);
    if (s) { fl_free(&I); return s; }
    if (I.n != S.n)
        s = mt_fail(MT_ERR_FORMAT, "%s has %zu sentences (after its header line) but %s has %zu lines; give one slot line "
                    "per sentence", ipath, I.n, spath, S.n);
    int64_t *ic = mt_calloc((size_t)d->n_labels + 1, sizeof *ic), *sc = mt_calloc((size_t)d->n_labels2 + 1, sizeof *sc);
    int32_t *slots = NULL;
    size_t cap = 0;
    char source[2100];
    if (!s && (!ic || !sc)) s = MT_ERR_NOMEM;
    for (size_t i = 0; i < I.n && !s; i++) {
        int n = I.nf[i] - 1; // the last field is the intent id
        long intent;
        if (n < 1 || !mt_parse_int(I.f[i][n], &intent)) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: expected 'sentence<TAB>intent id' (an integer last)", ipath, I.lineno[i]);
            break;
        }
        if (intent < 0 || intent >= d->n_labels) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: intent %ld is not in dict.intents.csv (%d intents)", ipath, I.lineno[i],
                        intent, d->n_labels);
            break;
        }
        if (S.nf[i] != n) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: %d words but %s:%d has %d slot ids; give one slot id per word", ipath,
                        I.lineno[i], n, spath, S.lineno[i], S.nf[i]);
            break;
        }
        if ((size_t)n > cap) {
            cap = (size_t)n * 2;
            int32_t *a = mt_realloc(slots, cap * sizeof *a);
            if (!a) { s = MT_ERR_NOMEM; break; }
            slots = a;
        }
        for (int j = 0; j < n && !s; j++) {
            long v;
            if (!mt_parse_int(S.f[i][j], &v) || v < 0 || v >= d->n_labels2)
                s = mt_fail(MT_ERR_FORMAT, "%s:%d: slot %d '%.20s' is not a slot id of dict.slots.csv (0..%d)", spath,
                            S.lineno[i], j + 1, S.f[i][j], d->n_labels2 - 1);
            else {
                slots[j] = (int32_t)v;
                sc[v]++;
            }
        }
        if (s) break;
        ic[intent]++;
        snprintf(source, sizeof source, "%s:%d", ipath, I.lineno[i]);
        s = mt_ner_add_sentence2(d, tok, I.f[i], NULL, slots, (int32_t)intent, n, (int32_t)i, source);
    }
    if (!s && I.n == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no sentence after the header line", ipath);
    if (!s && d->opt.class_balancing) {
        s = mt_ds_set_weights(d, ic, d->n_labels);
        if (!s) {
            float *w1 = d->class_weights;
            d->class_weights = NULL;
            s = mt_ds_set_weights(d, sc, d->n_labels2);
            d->class_weights2 = d->class_weights;
            d->class_weights = w1;
        }
    }
    if (!s && d->too_long)
        mt_info("%s: %d sentence(s) longer than max_seq_length=%d split into windows", ipath, d->too_long,
                d->opt.max_seq_length);
    free(ic);
    free(sc);
    free(slots);
    fl_free(&I);
    fl_free(&S);
    return s;
}
