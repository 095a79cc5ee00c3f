// The SQuAD store behind an mt_dataset of kind MT_TASK_QUESTION_ANSWERING (squad.c, squad_post.c).
#ifndef MT_TASKS_SQUAD_INTERNAL_H
#define MT_TASKS_SQUAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "tasks/squad.h"

typedef struct {
    char *id, *question;
    int32_t para;
    int impossible; // v2 "is_impossible" (only read with version_2_with_negative)
    int n_ans;
    char **ans_text;
    int *ans_start; // code points
} squad_q;

typedef struct {
    char *ctx;
    size_t len;
    int n_words;
    uint32_t *wb, *we;  // byte span of each BERT word
    int32_t *word_tok;  // orig_to_tok_index
    int n_tok;
    int32_t *tok_id, *tok_word; // doc pieces and their word (tok_to_orig_index)
    int32_t first_q;            // first question on this paragraph (messages)
} squad_p;

struct mt_squad {
    char path[1024];
    int data_version2; // "version" says 2.x
    squad_q *q;
    size_t n_q, cap_q;
    squad_p *p;
    size_t n_p, cap_p;
    int32_t *f_start, *f_end; // per feature
    size_t cap_fs, cap_fe;
    int skipped;
    const mt_vocab *vocab; // the tokenizer's (it outlives the dataset)
};

int mt_squad_py_space(uint32_t c);
uint32_t mt_squad_utf8_next(const char *s, size_t n, size_t *i);
char *mt_squad_py_join_split(const char *s, size_t n);

#endif
