// Token classification (NER): NeMo's text_<split>.txt / labels_<split>.txt pair, its label map
// (pad_label = 0, the others sorted) and its features, plus sliding windows for long sentences.
//
// Long sentences (a deliberate difference from NeMo): NeMo keeps [CLS] + the LAST
// max_seq_length-1 tokens of a too-long sentence, so the words at its head get no label and no
// prediction. Here a sentence whose WordPiece count exceeds L = max_seq_length-2 is split into
// windows instead:
//   - words are grouped greedily, in order, into "cores" of at most max(1, L/2) pieces (a word
//     with more pieces forms a core by itself);
//   - each window is [CLS] + its core + as many whole neighbouring words as fit in L pieces, added
//     alternately one on the left then one on the right, + [SEP];
//   - only core words carry the loss and the prediction (subtoken/loss masks are 0 on context).
// So every word is trained on and predicted exactly once, with context on both sides. A single
// word of more than L pieces keeps its first L pieces (its label sits on the first one). A sentence
// that fits (pieces <= L) gives exactly NeMo's feature.
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/file.h"
#include "tasks/task_internal.h"

mt_status mt_ner_read_label_ids(mt_dataset *d, const char *path) {
    mt_lines L;
    MT_TRY(mt_lines_open(&L, path));
    char *line;
    size_t len;
    int r;
    mt_status s = MT_OK;
    while ((r = mt_lines_next(&L, &line, &len)) == 1) {
        char *f[2];
        int nf = mt_split_ws(line, f, 2);
        if (nf != 1) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: a label map line must hold exactly one label (line index = id)", path,
                        L.lineno);
            break;
        }
        if (mt_ds_find_label(d, f[0]) >= 0) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: label '%s' appears twice", path, L.lineno, f[0]);
            break;
        }
        if ((s = mt_ds_add_label(d, f[0]))) break;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    mt_lines_close(&L);
    return s;
}

typedef struct {
    int32_t *ids, *types, *labels, *labels2, *word_at;
    float *lmask;
    size_t cap;
} mt_win;

static mt_status win_reserve(mt_win *w, size_t n) {
    if (n <= w->cap) return MT_OK;
    size_t nc = n + 64;
    int32_t *a = mt_realloc(w->ids, nc * 4);
    if (!a) return MT_ERR_NOMEM;
    w->ids = a;
    if (!(a = mt_realloc(w->types, nc * 4))) return MT_ERR_NOMEM;
    w->types = a;
    if (!(a = mt_realloc(w->labels, nc * 4))) return MT_ERR_NOMEM;
    w->labels = a;
    if (!(a = mt_realloc(w->labels2, nc * 4))) return MT_ERR_NOMEM;
    w->labels2 = a;
    if (!(a = mt_realloc(w->word_at, nc * 4))) return MT_ERR_NOMEM;
    w->word_at = a;
    float *f = mt_realloc(w->lmask, nc * sizeof(float));
    if (!f) return MT_ERR_NOMEM;
    w->lmask = f;
    w->cap = nc;
    return MT_OK;
}

static void win_free(mt_win *w) {
    free(w->ids);
    free(w->types);
    free(w->labels);
    free(w->labels2);
    free(w->word_at);
    free(w->lmask);
}

// Intent/slot: the slot id of [CLS]/[SEP] (model.pad_label, resolved to 'O' when -1 at load).
static int32_t is_pad_slot(const mt_dataset *d) {
    int p = d->opt.slot_pad_label;
    return p >= 0 && p < d->n_labels2 ? p : 0;
}

mt_status mt_ner_add_sentence(mt_dataset *d, mt_tokenizer *tok, char **words, const int32_t *label_ids, int n_words,
                              int32_t example, const char *source) {
    return mt_ner_add_sentence2(d, tok, words, label_ids, NULL, -1, n_words, example, source);
}

mt_status mt_ner_add_sentence2(mt_dataset *d, mt_tokenizer *tok, char **words, const int32_t *label_ids,
                               const int32_t *label_ids2, int32_t seq_label, int n_words, int32_t example,
                               const char *source) {
    mt_status s = MT_OK;
    mt_tokbuf tb = {0};
    mt_win w = {0};
    // pieces of every word, concatenated
    size_t *woff = mt_malloc(((size_t)n_words + 1) * sizeof *woff);
    int32_t *pieces = NULL;
    size_t np = 0, pcap = 0;
    if (!woff) return MT_ERR_NOMEM;
    for (int i = 0; i < n_words && !s; i++) {
        woff[i] = np;
        // NeMo tokenizes word by word (tokenizer.text_to_tokens(word)); so do we.
        s = mt_tokbuf_run(&tb, tok, words[i], strlen(words[i]), source);
        if (s) break;
        size_t k = tb.n ? tb.n : 1; // a word that yields no piece (only control characters) becomes [UNK]
        if (np + k > pcap) {
            size_t nc = (np + k) * 2 + 64;
            int32_t *nps = mt_realloc(pieces, nc * sizeof *nps);
            if (!nps) { s = MT_ERR_NOMEM; break; }
            pieces = nps;
            pcap = nc;
        }
        if (tb.n == 0) pieces[np++] = d->unk_id;
        else
            for (size_t j = 0; j < tb.n; j++) pieces[np++] = tb.t[j].id;
    }
    woff[n_words] = np;
    mt_tokbuf_free(&tb);
    // gold labels of the sentence (for word-level metrics)
    if (!s) {
        size_t base = d->n_examples ? d->ex_word_off[d->n_examples] : 0;
        if (d->n_examples + 2 > d->cap_examples) {
            size_t nc = (d->n_examples + 2) * 2;
            size_t *no = mt_realloc(d->ex_word_off, nc * sizeof *no);
            if (!no) s = MT_ERR_NOMEM;
            else { d->ex_word_off = no; d->cap_examples = nc; }
        }
        if (!s && base + (size_t)n_words + 1 > d->cap_gold) {
            size_t nc = (base + (size_t)n_words + 1) * 2;
            int32_t *ng = mt_realloc(d->ex_gold, nc * sizeof *ng);
            if (!ng) s = MT_ERR_NOMEM;
            else d->ex_gold = ng;
            if (!s && d->head2 != MT_HEAD_NONE) {
                ng = mt_realloc(d->ex_gold2, nc * sizeof *ng);
                if (!ng) s = MT_ERR_NOMEM;
                else d->ex_gold2 = ng;
            }
            if (!s) d->cap_gold = nc;
        }
        if (!s && d->head2 != MT_HEAD_NONE && d->n_examples + 1 > d->cap_ex_label) {
            size_t nc = (d->n_examples + 1) * 2;
            int32_t *nl = mt_realloc(d->ex_label, nc * sizeof *nl);
            if (!nl) s = MT_ERR_NOMEM;
            else { d->ex_label = nl; d->cap_ex_label = nc; }
        }
        if (!s) {
            if (d->n_examples == 0) d->ex_word_off[0] = 0;
            for (int i = 0; i < n_words; i++) d->ex_gold[base + i] = label_ids ? label_ids[i] : -1;
            if (d->ex_gold2)
                for (int i = 0; i < n_words; i++) d->ex_gold2[base + i] = label_ids2 ? label_ids2[i] : -1;
            if (d->ex_label) d->ex_label[d->n_examples] = seq_label;
            d->ex_word_off[d->n_examples + 1] = base + (size_t)n_words;
            d->n_examples++;
        }
    }
    const size_t L = (size_t)d->opt.max_seq_length - 2;
    const size_t C = L / 2 > 0 ? L / 2 : 1;
    const float edge = d->opt.ignore_start_end ? 0.0f : 1.0f;
    const float extra = d->opt.ignore_extra_tokens ? 0.0f : 1.0f;
    // the second head's label at [CLS]/[SEP] (P&C: the pad label, id 0; intent/slot: the pad slot)
    const int32_t pad2 = d->opt.kind == MT_TASK_INTENT_SLOT ? is_pad_slot(d) : 0;
    int cs = 0;
    if (np > L) d->too_long++;
    while (!s && cs < n_words) {
        int ce, left, right;
        size_t used;
        if (np <= L) {
            ce = n_words;
            left = 0;
            right = n_words;
            used = np;
        } else {
            size_t cp = woff[cs + 1] - woff[cs];
            if (cp > L) cp = L;
            ce = cs + 1;
            while (ce < n_words && cp + (woff[ce + 1] - woff[ce]) <= C) {
                cp += woff[ce + 1] - woff[ce];
                ce++;
            }
            left = cs;
            right = ce;
            used = cp;
            for (int progress = 1; progress;) {
                progress = 0;
                if (left > 0 && used + (woff[left] - woff[left - 1]) <= L) {
                    used += woff[left] - woff[left - 1];
                    left--;
                    progress = 1;
                }
                if (right < n_words && used + (woff[right + 1] - woff[right]) <= L) {
                    used += woff[right + 1] - woff[right];
                    right++;
                    progress = 1;
                }
            }
        }
        if ((s = win_reserve(&w, used + 2))) break;
        size_t k = 0;
        w.ids[k] = d->cls_id; w.types[k] = 0; w.labels[k] = 0; w.labels2[k] = pad2; w.word_at[k] = -1; w.lmask[k] = edge; k++;
        for (int wi = left; wi < right; wi++) {
            size_t n = woff[wi + 1] - woff[wi];
            if (n > L) n = L;
            int core = wi >= cs && wi < ce;
            int32_t lab = label_ids ? label_ids[wi] : 0, lab2 = label_ids2 ? label_ids2[wi] : pad2;
            for (size_t j = 0; j < n; j++) {
                w.ids[k] = pieces[woff[wi] + j];
                w.types[k] = 0;
                w.labels[k] = lab;
                w.labels2[k] = lab2;
                w.word_at[k] = core && j == 0 ? wi : -1;
                w.lmask[k] = !core ? 0.0f : j == 0 ? 1.0f : extra;
                k++;
            }
        }
        w.ids[k] = d->sep_id; w.types[k] = 0; w.labels[k] = 0; w.labels2[k] = pad2; w.word_at[k] = -1; w.lmask[k] = edge; k++;
        s = mt_ds_add_feature2(d, w.ids, w.types, w.labels, w.labels2, w.lmask, w.word_at, (int)k, seq_label, 0.0f,
                               example);
        cs = ce;
    }
    win_free(&w);
    free(woff);
    free(pieces);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

mt_status mt_ner_load(mt_dataset *d, mt_tokenizer *tok, const char *dir, const char *split,
                      const mt_dataset *label_source) {
    char tpath[2048], lpath[2048];
    MT_TRY(mt_path_fmt(tpath, sizeof tpath, "%s/text_%s.txt", dir, split));
    MT_TRY(mt_path_fmt(lpath, sizeof lpath, "%s/labels_%s.txt", dir, split));
    mt_lines T, Lb;
    MT_TRY(mt_lines_open(&T, tpath));
    mt_status s = mt_lines_open(&Lb, lpath);
    if (s) { mt_lines_close(&T); return s; }
    char **tl = NULL, **ll = NULL;
    size_t nt = 0, nl = 0, ct = 0, cl = 0;
    char *line;
    size_t len;
    int r;
    while (!s && (r = mt_lines_next(&T, &line, &len)) != 0) {
        if (r < 0) { s = MT_ERR_FORMAT; break; }
        if (nt == ct) {
            ct = ct ? ct * 2 : 1024;
            char **n2 = mt_realloc(tl, ct * sizeof *n2);
            if (!n2) { s = MT_ERR_NOMEM; break; }
            tl = n2;
        }
        tl[nt++] = line;
    }
    while (!s && (r = mt_lines_next(&Lb, &line, &len)) != 0) {
        if (r < 0) { s = MT_ERR_FORMAT; break; }
        if (nl == cl) {
            cl = cl ? cl * 2 : 1024;
            char **n2 = mt_realloc(ll, cl * sizeof *n2);
            if (!n2) { s = MT_ERR_NOMEM; break; }
            ll = n2;
        }
        ll[nl++] = line;
    }
    if (!s && nt != nl)
        s = mt_fail(MT_ERR_FORMAT,
                    "%s has %zu lines but %s has %zu; the two files must have one line per sentence each",
                    tpath, nt, lpath, nl);
    // Split every line into words / labels (in place) and check the counts line by line.
    char ***tw = NULL, ***lw = NULL;
    int *nw = NULL;
    if (!s) {
        tw = mt_calloc(nt ? nt : 1, sizeof *tw);
        lw = mt_calloc(nt ? nt : 1, sizeof *lw);
        nw = mt_calloc(nt ? nt : 1, sizeof *nw);
        if (!tw || !lw || !nw) s = MT_ERR_NOMEM;
    }
    for (size_t i = 0; i < nt && !s; i++) {
        size_t cap = strlen(tl[i]) / 2 + 2;
        tw[i] = mt_malloc(cap * sizeof(char *));
        lw[i] = mt_malloc((strlen(ll[i]) / 2 + 2) * sizeof(char *));
        if (!tw[i] || !lw[i]) { s = MT_ERR_NOMEM; break; }
        int a = mt_split_ws(tl[i], tw[i], (int)cap);
        int b = mt_split_ws(ll[i], lw[i], (int)(strlen(ll[i]) / 2 + 2));
        if (a == 0) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%zu: empty sentence; remove the blank line (and the matching line of %s)", tpath,
                        i + 1, lpath);
            break;
        }
        if (a != b) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%zu: %d words but %s:%zu has %d labels; give one label per word", tpath, i + 1, a,
                        lpath, i + 1, b);
            break;
        }
        nw[i] = a;
    }
    // Label map: pad_label = 0, then the other labels sorted (NeMo's get_label_ids).
    if (!s && d->n_labels == 0) {
        size_t total = 0;
        for (size_t i = 0; i < nt; i++) total += (size_t)nw[i];
        char **all = mt_malloc((total ? total : 1) * sizeof *all);
        if (!all) s = MT_ERR_NOMEM;
        else {
            size_t k = 0;
            for (size_t i = 0; i < nt; i++)
                for (int j = 0; j < nw[i]; j++) all[k++] = lw[i][j];
            qsort(all, total, sizeof *all, cmp_str);
            s = mt_ds_add_label(d, d->opt.pad_label);
            for (size_t i = 0; i < total && !s; i++)
                if ((i == 0 || strcmp(all[i], all[i - 1])) && strcmp(all[i], d->opt.pad_label))
                    s = mt_ds_add_label(d, all[i]);
            free(all);
        }
        d->num_classes = d->n_labels;
    } else if (!s && mt_ds_find_label(d, d->opt.pad_label) != 0) {
        s = mt_fail(MT_ERR_FORMAT, "the label map does not have pad_label '%s' at id 0; set model.dataset.pad_label",
                    d->opt.pad_label);
    }
    int64_t *counts = NULL;
    int32_t *ids = NULL;
    size_t idcap = 0;
    if (!s) {
        counts = mt_calloc((size_t)d->n_labels, sizeof *counts);
        if (!counts) s = MT_ERR_NOMEM;
    }
    char source[2100];
    for (size_t i = 0; i < nt && !s; i++) {
        if ((size_t)nw[i] > idcap) {
            idcap = (size_t)nw[i] * 2;
            int32_t *n2 = mt_realloc(ids, idcap * sizeof *n2);
            if (!n2) { s = MT_ERR_NOMEM; break; }
            ids = n2;
        }
        for (int j = 0; j < nw[i]; j++) {
            int id = mt_ds_find_label(d, lw[i][j]);
            if (id < 0) {
                s = mt_fail(MT_ERR_FORMAT,
                            "%s:%zu: label '%.40s' (word %d) is not in the training label map; add it to the train "
                            "split or to label_ids.csv",
                            lpath, i + 1, lw[i][j], j + 1);
                break;
            }
            ids[j] = id;
            counts[id]++;
        }
        if (s) break;
        snprintf(source, sizeof source, "%s:%zu", tpath, i + 1);
        s = mt_ner_add_sentence(d, tok, tw[i], ids, nw[i], (int32_t)i, source);
    }
    if (!s && d->opt.class_balancing) s = mt_ds_set_weights(d, counts, d->n_labels);
    if (!s && d->too_long)
        mt_info("%s: %d sentence(s) longer than max_seq_length=%d split into windows", tpath, d->too_long,
                d->opt.max_seq_length);
    free(counts);
    free(ids);
    for (size_t i = 0; i < nt; i++) {
        if (tw) free(tw[i]);
        if (lw) free(lw[i]);
    }
    free(tw);
    free(lw);
    free(nw);
    free(tl);
    free(ll);
    mt_lines_close(&T);
    mt_lines_close(&Lb);
    return s;
}
