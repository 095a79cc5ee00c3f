// BERT WordPiece tokenizer with Hugging Face BertTokenizer's exact behaviour (basic tokenizer:
// cleaning, CJK split, lower-casing + accent stripping when uncased, punctuation split; then
// greedy longest-match WordPiece with "##"). Offsets map every token back to the text.
#ifndef MT_TEXT_TOKENIZER_H
#define MT_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct mt_vocab mt_vocab;
typedef struct mt_tokenizer mt_tokenizer;

typedef enum {
    MT_UTF8_STRICT = 0,  // invalid UTF-8 is an error naming the byte offset
    MT_UTF8_REPLACE = 1, // invalid bytes become U+FFFD
} mt_utf8_policy;

typedef struct {
    int lowercase;          // uncased: lower-case + strip accents
    int tokenize_chinese_chars; // 1 (HF default)
    mt_utf8_policy utf8;
    int max_input_chars_per_word; // 100
} mt_tokenizer_options;

// One token of output.
typedef struct {
    int32_t id;
    int32_t word;        // index of the whitespace-separated word it came from (for NER labels)
    uint32_t start, end; // byte span [start, end) in the original text
} mt_token;

void mt_tokenizer_options_default(mt_tokenizer_options *o, int lowercase);

// Vocab: one token per line, line number = id.
mt_status mt_vocab_load(const char *path, mt_vocab **out) MT_WARN_UNUSED;
void mt_vocab_free(mt_vocab *v);
int mt_vocab_size(const mt_vocab *v);
int32_t mt_vocab_id(const mt_vocab *v, const char *token, size_t len); // -1 if absent
const char *mt_vocab_token(const mt_vocab *v, int32_t id);

// The tokenizer borrows nothing: it takes ownership of `vocab`.
mt_status mt_tokenizer_create(mt_vocab *vocab, const mt_tokenizer_options *o, mt_tokenizer **out) MT_WARN_UNUSED;
void mt_tokenizer_free(mt_tokenizer *t);
const mt_vocab *mt_tokenizer_vocab(const mt_tokenizer *t);
// Special-token ids looked up by name ([CLS], [SEP], [PAD], [UNK], [MASK]).
int32_t mt_tokenizer_cls_id(const mt_tokenizer *t);
int32_t mt_tokenizer_sep_id(const mt_tokenizer *t);
int32_t mt_tokenizer_pad_id(const mt_tokenizer *t);
int32_t mt_tokenizer_unk_id(const mt_tokenizer *t);
int32_t mt_tokenizer_mask_id(const mt_tokenizer *t);

// Tokenizes `text` (len bytes, no [CLS]/[SEP] added) into `out` (capacity `cap`).
// *n receives the number of tokens produced; if it exceeds cap, the call returns MT_ERR_INVALID
// after writing the first cap tokens, so the caller can grow and retry. `source` names the text
// ("train.tsv:12") in error messages.
mt_status mt_tokenize(mt_tokenizer *t, const char *text, size_t len, mt_token *out, size_t cap, size_t *n,
                      const char *source) MT_WARN_UNUSED;

#endif
