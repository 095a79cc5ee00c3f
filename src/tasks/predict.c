// mt_task_predict: raw input lines -> features (no labels) -> the caller's forward -> one output
// line per input line.
//   text classification: input "text" (a trailing "<TAB>int" label is ignored);
//                        output "label<TAB>probability" (softmax of the winning class)
//   GLUE:                input "sentence" or "sentence_a<TAB>sentence_b" (pair tasks);
//                        output "label<TAB>probability", STS-B "score"
//   token classification: input one sentence per line, words separated by spaces; output NeMo's
//                        TokenClassificationModel.add_predictions line: each word, its label in
//                        brackets unless it is pad_label, then the word's last character when that
//                        is not a letter: "John[B-PER] lives in Paris[B-LOC]."; with
//                        ner_all_words every word and label: "John[B-PER] lives[O] ..."
//   punctuation/capitalization: input lower-cased words; output the text with capitals and
//                        punctuation restored (NeMo's add_punctuation_capitalization)
//   intent/slot:         input a query; output "intent<TAB>slot slot ..." (one slot per word)
// A blank input line gives a blank output line, so output line i always answers input line i.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tasks/task_internal.h"

typedef struct {
    int32_t label;
    float score; // probability, or regression value
} mt_pred;

// One word as NeMo's add_predictions writes it: when the word's last character is not a letter
// (Python's str.isalpha: Unicode L* categories) it is split off and written after the tag, so the
// tag sits on the word and not on a following punctuation mark ("Paris." -> "Paris[B-LOC].";
// NeMo does the same to digits: "1996" -> "199[B-DATE]6"). pad_label words get no tag.
static void ner_add_prediction(FILE *out, int w, const char *word, const char *label, const char *pad_label) {
    size_t len = strlen(word), start = len ? len - 1 : 0; // the last character's first byte
    while (start > 0 && ((unsigned char)word[start] & 0xc0) == 0x80) start--;
    utf8proc_int32_t cp = -1;
    int alpha = 0;
    if (len && utf8proc_iterate((const utf8proc_uint8_t *)word + start, (utf8proc_ssize_t)(len - start), &cp) > 0) {
        utf8proc_category_t c = utf8proc_category(cp);
        alpha = c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
                c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_LO;
    }
    size_t keep = alpha || !len ? len : start;
    fprintf(out, "%s%.*s", w ? " " : "", (int)keep, word);
    if (strcmp(label, pad_label)) fprintf(out, "[%s]", label);
    fputs(word + keep, out);
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

// NeMo's add_punctuation_capitalization: a word whose capit label is not pad_label is written
// as Python's str.capitalize() does (first character upper case, the rest lower case), then its
// punctuation label unless that is pad_label; words joined by single spaces.
static mt_status pnc_write_line(FILE *out, const mt_dataset *d, char **words, int n, const int32_t *punct,
                                const int32_t *capit) {
    for (int w = 0; w < n; w++) {
        const char *word = words[w];
        const char *cl = capit[w] >= 0 ? d->labels2[capit[w]] : d->opt.pad_label;
        const char *pl = punct[w] >= 0 ? d->labels[punct[w]] : d->opt.pad_label;
        if (w) fputc(' ', out);
        if (strcmp(cl, d->opt.pad_label)) {
            utf8proc_uint8_t *cap = NULL;
            const utf8proc_uint8_t *src = (const utf8proc_uint8_t *)word;
            utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(word), i = 0;
            // the whole word is mapped code point by code point: upper case first, lower case rest
            cap = mt_malloc((size_t)len * 4 + 8);
            if (!cap) return MT_ERR_NOMEM;
            size_t k = 0;
            int first = 1;
            while (i < len) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t step = utf8proc_iterate(src + i, len - i, &cp);
                if (step <= 0) { // not UTF-8 (prediction input was checked): copy the byte
                    cap[k++] = src[i++];
                    first = 0;
                    continue;
                }
                cp = first ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
                k += (size_t)utf8proc_encode_char(cp, cap + k);
                i += step;
                first = 0;
            }
            fwrite(cap, 1, k, out);
            free(cap);
        } else {
            fputs(word, out);
        }
        if (strcmp(pl, d->opt.pad_label)) fputs(pl, out);
    }
    fputc('\n', out);
    return MT_OK;
}

mt_status mt_task_predict(const mt_task_options *o, mt_tokenizer *tok, const mt_dataset *label_source, FILE *in,
                          const char *in_name, FILE *out, int batch_size, mt_forward_fn forward, void *forward_ctx) {
    if (batch_size <= 0) batch_size = 32;
    if (o->kind == MT_TASK_TOKEN_CLASSIFICATION && !label_source && !o->label_ids_file[0])
        return mt_fail(MT_ERR_INVALID, "token classification prediction needs the label map (label_ids.csv from the .nemo)");
    const int joint = o->kind == MT_TASK_PUNCT_CAPIT || o->kind == MT_TASK_INTENT_SLOT;
    if (joint && !label_source && (!o->label_ids_file[0] || !o->label_ids_file2[0]))
        return mt_fail(MT_ERR_INVALID, "%s prediction needs both label maps (from the .nemo)",
                       o->kind == MT_TASK_PUNCT_CAPIT ? "punctuation/capitalisation" : "intent/slot");
    mt_lines L;
    MT_TRY(mt_lines_from_stream(&L, in, in_name, 0));
    mt_dataset *d = NULL;
    mt_status s = mt_task_setup_dataset(o, tok, label_source, &d);
    if (s) { mt_lines_close(&L); return s; }
    char ***words = NULL; // token classification: each line's words (pointing into L)
    int *nwords = NULL;
    size_t nlines = 0, capl = 0;
    if (o->kind == MT_TASK_TEXT_CLASSIFICATION) s = mt_tc_build(d, tok, &L, 0);
    else if (o->kind == MT_TASK_GLUE) s = mt_glue_build(d, tok, &L, 0);
    else {
        char *line;
        size_t len;
        int r;
        char source[1100];
        while (!s && (r = mt_lines_next(&L, &line, &len)) != 0) {
            if (r < 0) { s = MT_ERR_FORMAT; break; }
            if (nlines == capl) {
                capl = capl ? capl * 2 : 256;
                char ***nw = mt_realloc(words, capl * sizeof *nw);
                int *nn = nw ? mt_realloc(nwords, capl * sizeof *nn) : NULL;
                if (nw) words = nw;
                if (!nw || !nn) { s = MT_ERR_NOMEM; break; }
                nwords = nn;
            }
            words[nlines] = mt_malloc((len / 2 + 2) * sizeof(char *));
            if (!words[nlines]) { s = MT_ERR_NOMEM; break; }
            nwords[nlines] = mt_split_ws(line, words[nlines], (int)(len / 2 + 2));
            snprintf(source, sizeof source, "%s:%d", in_name, L.lineno);
            s = mt_ner_add_sentence2(d, tok, words[nlines], NULL, NULL, -1, nwords[nlines], (int32_t)nlines, source);
            nlines++;
        }
        d->n_examples = nlines;
    }
    size_t nex = d->n_examples;
    mt_pred *pred = NULL;
    int32_t *wpred = NULL;
    size_t nw_total = (o->kind == MT_TASK_TOKEN_CLASSIFICATION || joint) && nex ? d->ex_word_off[nex] : 0;
    int32_t *wpred2 = NULL;
    if (!s) {
        pred = mt_calloc(nex ? nex : 1, sizeof *pred);
        wpred = mt_malloc((nw_total ? nw_total : 1) * sizeof *wpred);
        wpred2 = mt_malloc((nw_total ? nw_total : 1) * sizeof *wpred2);
        if (!pred || !wpred || !wpred2) s = MT_ERR_NOMEM;
        for (size_t i = 0; !s && i < nex; i++) pred[i].label = -1;
        for (size_t i = 0; !s && i < nw_total; i++) wpred[i] = wpred2[i] = -1;
    }
    mt_batch_buffer buf = {0};
    size_t *idx = mt_malloc((size_t)batch_size * sizeof *idx);
    if (!idx && !s) s = MT_ERR_NOMEM;
    int C = d->num_classes;
    for (size_t start = 0; !s && start < d->n_feat; start += (size_t)batch_size) {
        int n = (int)(d->n_feat - start < (size_t)batch_size ? d->n_feat - start : (size_t)batch_size);
        for (int i = 0; i < n; i++) idx[i] = start + (size_t)i;
        mt_batch batch;
        if ((s = mt_dataset_make_batch(d, idx, n, &buf, &batch))) break;
        const float *logits = NULL;
        if ((s = forward(forward_ctx, &batch, &logits))) break;
        if (!logits) { s = mt_fail(MT_ERR_INVALID, "predict: the forward function returned no logits"); break; }
        if (joint) { // logits: the first head's ((B,T,C1) or (B,C1)), then the second's (B,T,C2)
            const int tok1 = d->head == MT_HEAD_TOKEN_CLASSIFIER, C2 = d->num_classes2;
            const float *l2 = logits + (size_t)(tok1 ? n * batch.T : n) * (size_t)C;
            for (int i = 0; i < n; i++) {
                const mt_feature *f = &d->feat[idx[i]];
                size_t base = d->ex_word_off[f->example];
                if (!tok1 && pred[f->example].label < 0) pred[f->example].label = argmax(logits + (size_t)i * C, C);
                for (int t = 0; t < f->len; t++) {
                    int w = d->word_at[f->off + t];
                    if (w < 0) continue;
                    size_t pos = (size_t)i * (size_t)batch.T + (size_t)t;
                    if (tok1) wpred[base + (size_t)w] = argmax(logits + pos * (size_t)C, C);
                    wpred2[base + (size_t)w] = argmax(l2 + pos * (size_t)C2, C2);
                }
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            const mt_feature *f = &d->feat[idx[i]];
            if (d->head == MT_HEAD_TOKEN_CLASSIFIER) {
                size_t base = d->ex_word_off[f->example];
                for (int t = 0; t < f->len; t++) {
                    int w = d->word_at[f->off + t];
                    if (w < 0) continue;
                    const float *v = logits + ((size_t)i * (size_t)batch.T + (size_t)t) * (size_t)C;
                    int b = 0;
                    for (int c = 1; c < C; c++)
                        if (v[c] > v[b]) b = c;
                    wpred[base + (size_t)w] = b;
                }
            } else if (d->head == MT_HEAD_SEQUENCE_REGRESSION) {
                pred[f->example].label = 0;
                pred[f->example].score = logits[i];
            } else {
                const float *v = logits + (size_t)i * (size_t)C;
                int b = 0;
                for (int c = 1; c < C; c++)
                    if (v[c] > v[b]) b = c;
                double z = 0;
                for (int c = 0; c < C; c++) z += exp((double)v[c] - (double)v[b]);
                pred[f->example].label = b;
                pred[f->example].score = (float)(1.0 / z);
            }
        }
    }
    for (size_t e = 0; !s && e < nex; e++) {
        if (joint) {
            size_t base = d->ex_word_off[e];
            if (o->kind == MT_TASK_PUNCT_CAPIT) {
                s = pnc_write_line(out, d, words[e], nwords[e], wpred + base, wpred2 + base);
            } else if (nwords[e] > 0) { // NeMo's predict_from_examples: the intent, then the slot of every word
                fprintf(out, "%s\t", pred[e].label >= 0 ? d->labels[pred[e].label] : "?");
                for (int w = 0; w < nwords[e]; w++) {
                    int l = wpred2[base + (size_t)w];
                    fprintf(out, "%s%s", w ? " " : "", l >= 0 ? d->labels2[l] : "?");
                }
                fputc('\n', out);
            } else {
                fputc('\n', out);
            }
            continue;
        }
        if (d->head == MT_HEAD_TOKEN_CLASSIFIER) {
            size_t base = d->ex_word_off[e];
            for (int w = 0; w < nwords[e]; w++) {
                int l = wpred[base + (size_t)w];
                const char *lab = l >= 0 ? d->labels[l] : "?";
                if (o->ner_all_words) fprintf(out, "%s%s[%s]", w ? " " : "", words[e][w], lab);
                else ner_add_prediction(out, w, words[e][w], lab, o->pad_label);
            }
            fputc('\n', out);
        } else if (pred[e].label < 0) {
            fputc('\n', out);
        } else if (d->head == MT_HEAD_SEQUENCE_REGRESSION) {
            fprintf(out, "%.6f\n", pred[e].score);
        } else {
            fprintf(out, "%s\t%.6f\n", d->labels[pred[e].label], pred[e].score);
        }
    }
    if (!s && ferror(out)) s = mt_fail(MT_ERR_IO, "predict: writing the output failed (disk full?)");
    mt_batch_buffer_free(&buf);
    free(idx);
    free(pred);
    free(wpred);
    free(wpred2);
    for (size_t i = 0; i < nlines; i++) free(words[i]);
    free(words);
    free(nwords);
    mt_dataset_free(d);
    mt_lines_close(&L);
    return s;
}
