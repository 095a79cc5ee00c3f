// BERT WordPiece tokenizer with Hugging Face BertTokenizer's exact behaviour (basic tokenizer:
// cleaning, CJK split, lower-casing + accent stripping when uncased, punctuation split; then
// greedy longest-match WordPiece with "##"). Offsets map every token back to the text.
//
// Reference. The behaviour matched (and tested, tests/e2e/test_tokenizer_hf.sh) is the Rust
// `tokenizers` library as shipped in the npm package `tokenizers`, configured like
// BertWordPieceTokenizer(vocab, lowercase, strip_accents, clean_text=true,
// handle_chinese_chars=true) with [CLS] [SEP] [UNK] [PAD] [MASK] registered as special tokens
// (only those present in the vocab) and no special tokens added around the text. Per input:
//   1. Special tokens: every exact, case-sensitive occurrence of a special token string in the
//      ORIGINAL text (anywhere, even inside a word: "a[SEP]b" -> a [SEP] b) is one token and splits
//      the text there; the rest of the pipeline runs on the pieces between them.
//   2. Cleaning: U+0000, U+FFFD and "control" characters are removed. Control = general category
//      Cc, Cf or Co, except \t \n \r. Whitespace (\t \n \r and the Unicode White_Space property:
//      Zs, Zl, Zp) becomes a separator.
//   3. CJK: each code point in HF's CJK ranges (4E00-9FFF, 3400-4DBF, 20000-2A6DF, 2A700-2B73F,
//      2B740-2B81F, 2B920-2CEAF, F900-FAFF, 2F800-2FA1F) is a word on its own.
//   4. Accents (when stripping, the uncased default): canonical decomposition (NFD) and removal of
//      Mn (non-spacing mark) characters. Then lower-casing (uncased): per code point, Unicode
//      simple lowercase, except U+0130 -> "i" U+0307 (Rust's char::to_lowercase).
//   5. Pre-tokenization: split on whitespace (dropped) and isolate each punctuation character
//      (ASCII ! to /, : to @, [ to `, { to ~, and general categories Pc Pd Ps Pe Pi Pf Po).
//   6. WordPiece per word: a word of more than max_input_chars_per_word (100) code points is one
//      [UNK]; else greedy longest-match-first from the left, continuation pieces looked up with a
//      "##" prefix; if some position has no match the whole word is one [UNK].
// Unicode data come from utf8proc (Unicode 13 for libutf8proc 2.6).
//
// Known differences to HF (Rust), all in characters absent from normal text: HF's categories
// (is_other / is_punctuation / is_mark_nonspacing) come from the unicode_categories crate 0.1.1
// (Unicode 9.0 tables), while ours come from utf8proc; code points assigned or re-categorised
// after Unicode 9 (e.g. punctuation U+2E45..U+2E4F, newer combining marks, U+0890/0891 format
// characters) can be treated differently. HF lower-cases with Rust's std tables (newer Unicode).
// Known differences to Python's slow transformers.BertTokenizer (which NeMo uses), for the notes:
// Python treats unassigned (Cn) and surrogate code points as control (removed) where Rust keeps
// them; Python lower-cases before stripping accents and uses str.lower() (final sigma: word-final
// capital Σ becomes ς in Python, σ here and in Rust); Python's CJK range starts at U+2B820 (Rust
// U+2B920); Python's vocab loader strips only "\n" from each line, Rust (and we) strip all trailing
// whitespace. None of these occur in the test corpora (CoNLL, SQuAD, GLUE, ChemProt, NCBI).
//
// Offsets. Each token carries [start, end): the byte span of the ORIGINAL text it came from: the
// first byte of the original character that produced its first normalized character, to the end
// of the original character that produced its last. Removed characters (controls, accents stripped
// as separate combining marks) are not part of any token's span, except inside it. A special token
// spans its exact bytes; an [UNK] spans its whole word.
//
// Words. token.word is the index (0-based) of the whitespace-separated word of the ORIGINAL text
// that contains the token's first byte, where words are what Python's str.split() with no argument
// returns (NeMo's NER data: one label per text.split() word). Whitespace for this purpose is
// Python's str.isspace(): \t \n \v \f \r, U+001C..U+001F, U+0085 and the Unicode Zs/Zl/Zp
// characters. So every word gets consecutive tokens, and a word made only of removed characters
// (e.g. a lone U+200B) gets no token at all. In rare cases a token spans two Python words: U+000B,
// U+000C and U+001C..U+001F split Python words but are control characters that HF removes
// ("a\x1cb" -> one token "ab", word 0).
//
// Threads: an mt_tokenizer holds scratch space, so use one per thread. tokenizing allocates nothing.
#ifndef MT_TEXT_TOKENIZER_H
#define MT_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct mt_vocab mt_vocab;
typedef struct mt_tokenizer mt_tokenizer;

typedef enum {
    MT_UTF8_STRICT = 0,  // invalid UTF-8 is an error naming the byte offset
    MT_UTF8_REPLACE = 1, // invalid bytes become U+FFFD (which cleaning then removes, as HF does)
} mt_utf8_policy;

typedef enum {
    MT_ACCENTS_AUTO = 0,  // strip accents iff lowercase (HF default: strip_accents=None)
    MT_ACCENTS_STRIP = 1,
    MT_ACCENTS_KEEP = 2,
} mt_accent_policy;

typedef struct {
    int lowercase;          // uncased: lower-case + strip accents
    int tokenize_chinese_chars; // 1 (HF default)
    mt_utf8_policy utf8;
    int max_input_chars_per_word; // 100 (<= 0 means 100)
    mt_accent_policy accents;     // MT_ACCENTS_AUTO (zero) follows `lowercase`
} mt_tokenizer_options;

// One token of output.
typedef struct {
    int32_t id;
    int32_t word;        // index of the whitespace-separated word it came from (for NER labels)
    uint32_t start, end; // byte span [start, end) in the original text
} mt_token;

void mt_tokenizer_options_default(mt_tokenizer_options *o, int lowercase);

// Vocab: one token per line, line number (0-based) = id. Lines end with "\n" or "\r\n"; trailing
// whitespace of each line is stripped (as HF's WordPiece.from_file does); a last line without a
// newline counts. A token that appears twice maps to its LATER line (HF and Python both keep the
// last id in their dict); mt_vocab_size still counts every line, so ids stay the line numbers.
// Invalid UTF-8 or an empty file is an error naming the path, line and byte.
mt_status mt_vocab_load(const char *path, mt_vocab **out) MT_WARN_UNUSED;
// The same from memory (`name` is used in messages); the bytes are copied.
mt_status mt_vocab_load_buffer(const char *data, size_t len, const char *name, mt_vocab **out) MT_WARN_UNUSED;
void mt_vocab_free(mt_vocab *v);
int mt_vocab_size(const mt_vocab *v); // number of lines = ids 0..size-1
// Number of lines whose token also appeared on an earlier line.
int mt_vocab_duplicates(const mt_vocab *v);
int32_t mt_vocab_id(const mt_vocab *v, const char *token, size_t len); // -1 if absent
const char *mt_vocab_token(const mt_vocab *v, int32_t id);          // NULL if out of range
const char *mt_vocab_name(const mt_vocab *v);                        // path or buffer name

// The tokenizer borrows nothing: it takes ownership of `vocab` (also when it fails).
// Fails when the vocab has no [UNK] (WordPiece needs it).
mt_status mt_tokenizer_create(mt_vocab *vocab, const mt_tokenizer_options *o, mt_tokenizer **out) MT_WARN_UNUSED;
// mt_vocab_load + mt_tokenizer_create.
mt_status mt_tokenizer_create_from_file(const char *vocab_path, const mt_tokenizer_options *o,
                                        mt_tokenizer **out) MT_WARN_UNUSED;
void mt_tokenizer_free(mt_tokenizer *t);
const mt_vocab *mt_tokenizer_vocab(const mt_tokenizer *t);
const mt_tokenizer_options *mt_tokenizer_get_options(const mt_tokenizer *t);
// Special-token ids looked up by name ([CLS], [SEP], [PAD], [UNK], [MASK]); -1 if absent.
int32_t mt_tokenizer_cls_id(const mt_tokenizer *t);
int32_t mt_tokenizer_sep_id(const mt_tokenizer *t);
int32_t mt_tokenizer_pad_id(const mt_tokenizer *t);
int32_t mt_tokenizer_unk_id(const mt_tokenizer *t);
int32_t mt_tokenizer_mask_id(const mt_tokenizer *t);

// Tokenizes `text` (len bytes, no [CLS]/[SEP] added) into `out` (capacity `cap`).
// *n receives the number of tokens produced; if it exceeds cap, the call returns MT_ERR_INVALID
// after writing the first cap tokens, so the caller can grow and retry. `source` names the text
// ("train.tsv:12") in error messages. Invalid UTF-8 under MT_UTF8_STRICT fails with
// MT_ERR_FORMAT and a message naming `source` and the byte offset in `text`.
mt_status mt_tokenize(mt_tokenizer *t, const char *text, size_t len, mt_token *out, size_t cap, size_t *n,
                      const char *source) MT_WARN_UNUSED;

// mt_tokenize into a growable array: *buf (may be NULL) of *cap tokens is enlarged with realloc
// as needed (free it with free()). *n receives the token count.
mt_status mt_tokenize_grow(mt_tokenizer *t, const char *text, size_t len, mt_token **buf, size_t *cap,
                           size_t *n, const char *source) MT_WARN_UNUSED;

#endif
