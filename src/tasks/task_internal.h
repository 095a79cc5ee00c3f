// Internals shared by the task sources: line reading with the bad-data checks, the feature
// store behind mt_dataset, and the per-task builders. Not part of the trainer contract.
#ifndef MT_TASKS_TASK_INTERNAL_H
#define MT_TASKS_TASK_INTERNAL_H

#include <stdio.h>
#include <stdint.h>
#include "tasks/task.h"

// Longest accepted input line. Real GLUE/ChemProt/CoNLL lines are under 4 KiB; a longer one is
// almost surely a file with no newlines (binary, or a wrong format) and is reported, not parsed.
#define MT_TASK_MAX_LINE_BYTES (1u << 20)

// A whole text file in memory, iterated line by line. Lines are NUL-terminated in place, with
// the '\n' and any '\r' before it removed, and a UTF-8 BOM at the start of the file dropped.
typedef struct {
    char name[1024];
    char *data;
    size_t len, pos;
    int lineno; // 1-based number of the line last returned
} mt_lines;

// Reads the file. An empty file (no bytes, or only whitespace) is an error naming it.
mt_status mt_lines_open(mt_lines *L, const char *path) MT_WARN_UNUSED;
mt_status mt_lines_from_stream(mt_lines *L, FILE *f, const char *name, int allow_empty) MT_WARN_UNUSED;
// Next line: 1 and *line/*len set, 0 at the end, -1 on bad data (message set: too long, bad UTF-8, NUL).
int mt_lines_next(mt_lines *L, char **line, size_t *len);
void mt_lines_close(mt_lines *L);
// Offset of the first invalid UTF-8 byte, or (size_t)-1 when s[0..n) is valid.
size_t mt_utf8_invalid_at(const char *s, size_t n);

// Splits s (modified in place) on ASCII whitespace; returns the number of fields, at most cap.
int mt_split_ws(char *s, char **fields, int cap);
// Splits on TAB (in place); returns the number of fields, at most cap.
int mt_split_tab(char *s, char **fields, int cap);
int mt_parse_int(const char *s, long *out);   // 1 if s is a whole base-10 integer
int mt_parse_double(const char *s, double *out);

// Growing token buffer for mt_tokenize.
typedef struct {
    mt_token *t;
    size_t n, cap;
} mt_tokbuf;
mt_status mt_tokbuf_run(mt_tokbuf *b, mt_tokenizer *tok, const char *text, size_t len, const char *source) MT_WARN_UNUSED;
void mt_tokbuf_free(mt_tokbuf *b);

// One feature (one model row). Token arrays live in the dataset's arenas at [off, off+len).
typedef struct {
    size_t off;
    int32_t len;
    int32_t label;   // sequence label (-1: none)
    float target;    // regression target
    int32_t example; // index of the source example (line / sentence)
} mt_feature;

enum { MT_GLUE_COLA, MT_GLUE_SST2, MT_GLUE_MRPC, MT_GLUE_STSB, MT_GLUE_QQP, MT_GLUE_MNLI, MT_GLUE_QNLI,
       MT_GLUE_RTE, MT_GLUE_WNLI, MT_GLUE_COUNT };

struct mt_dataset {
    mt_task_options opt;
    mt_head_kind head;
    int num_classes;
    int glue; // MT_GLUE_* or -1
    int has_labels;
    // features
    mt_feature *feat;
    size_t n_feat, cap_feat;
    // token arenas (same index space)
    int32_t *ids, *types, *tlabels, *word_at; // word_at: word index predicted at this position, else -1
    float *lmask;
    size_t n_tok, cap_tok;
    // label names (id order)
    char **labels;
    int n_labels;
    float *class_weights; // NULL unless class_balancing
    // examples: token classification keeps each sentence's word count and gold labels
    size_t n_examples;
    size_t *ex_word_off; // n_examples+1 offsets into ex_gold
    int32_t *ex_gold;    // gold label id per word (-1 if unlabelled)
    int too_long;        // features truncated (reported once in the log)
    int skipped;         // malformed rows skipped (QQP only, as NeMo)
    size_t cap_examples, cap_gold;
    int32_t pad_id, cls_id, sep_id, unk_id;
    struct mt_squad *squad; // question answering: examples, contexts, per-feature positions (squad.c)
    // second head (two-head tasks): token labels (same index space as tlabels), names, weights,
    // gold per word (same offsets as ex_gold)
    mt_head_kind head2;
    int num_classes2;
    int32_t *tlabels2;
    char **labels2;
    int n_labels2;
    float *class_weights2;
    int32_t *ex_gold2;
    int32_t *ex_label; // intent/slot: the intent of each example (-1 = unlabelled)
    size_t cap_ex_label;
};

mt_dataset *mt_ds_new(const mt_task_options *o);
mt_status mt_ds_add_feature(mt_dataset *d, const int32_t *ids, const int32_t *types, const int32_t *tlabels,
                            const float *lmask, const int32_t *word_at, int len, int32_t label, float target,
                            int32_t example) MT_WARN_UNUSED;
// As mt_ds_add_feature with the second head's token labels (NULL = 0).
mt_status mt_ds_add_feature2(mt_dataset *d, const int32_t *ids, const int32_t *types, const int32_t *tlabels,
                             const int32_t *tlabels2, const float *lmask, const int32_t *word_at, int len,
                             int32_t label, float target, int32_t example) MT_WARN_UNUSED;
mt_status mt_ds_add_label(mt_dataset *d, const char *name) MT_WARN_UNUSED;
mt_status mt_ds_add_label2(mt_dataset *d, const char *name) MT_WARN_UNUSED;
int mt_ds_find_label2(const mt_dataset *d, const char *name);
int mt_ds_find_label(const mt_dataset *d, const char *name);
mt_status mt_ds_set_weights(mt_dataset *d, const int64_t *counts, int n) MT_WARN_UNUSED;

// The empty dataset for `o`: label map (from label_source, label_ids_file or the task), head.
mt_status mt_task_setup_dataset(const mt_task_options *o, mt_tokenizer *tok, const mt_dataset *label_source,
                                mt_dataset **out) MT_WARN_UNUSED;

// Builders. `lines` is the open file; `labelled` = 0 for prediction input.
mt_status mt_tc_build(mt_dataset *d, mt_tokenizer *tok, mt_lines *L, int labelled) MT_WARN_UNUSED;
mt_status mt_glue_build(mt_dataset *d, mt_tokenizer *tok, mt_lines *L, int labelled) MT_WARN_UNUSED;
int mt_glue_task_id(const char *name);
const char *mt_glue_task_name(int id);
// Token classification: one sentence's words (and label ids, or NULL) into windows.
mt_status mt_ner_add_sentence(mt_dataset *d, mt_tokenizer *tok, char **words, const int32_t *label_ids, int n_words,
                              int32_t example, const char *source) MT_WARN_UNUSED;
// The same with the second head's word labels (label_ids2, or NULL) and a sequence label for
// every window (intent; -1 = none). Label ids are copied to every piece of a word, as NeMo does.
mt_status mt_ner_add_sentence2(mt_dataset *d, mt_tokenizer *tok, char **words, const int32_t *label_ids,
                               const int32_t *label_ids2, int32_t seq_label, int n_words, int32_t example,
                               const char *source) MT_WARN_UNUSED;
// Punctuation/capitalisation and intent/slot data (src/tasks/joint.c).
mt_status mt_pnc_load(mt_dataset *d, mt_tokenizer *tok, const char *dir, const char *split) MT_WARN_UNUSED;
mt_status mt_is_load(mt_dataset *d, mt_tokenizer *tok, const char *dir, const char *prefix) MT_WARN_UNUSED;
// A label map file (one name per line, line index = id) into the first (second = 0) or second map.
mt_status mt_read_label_file(mt_dataset *d, const char *path, int second) MT_WARN_UNUSED;
mt_status mt_ner_load(mt_dataset *d, mt_tokenizer *tok, const char *dir, const char *split,
                      const mt_dataset *label_source) MT_WARN_UNUSED;
mt_status mt_ner_read_label_ids(mt_dataset *d, const char *path) MT_WARN_UNUSED;

#endif
