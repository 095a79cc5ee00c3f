// BERT basic tokenizer + WordPiece in one pass over the text (see tokenizer.h for the exact
// behaviour and the reference it matches). Characters are decoded once; each normalized character
// keeps the byte span and word index of the original character it came from, so offsets need no
// second alignment pass. Scratch space is sized once from max_input_chars_per_word, so tokenizing
// never allocates.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/tokenizer.h"
#include "text/utf8_internal.h"
#include "text/vocab_internal.h"

enum {
    C_DROP = 1,   // removed by cleaning (NUL, controls)
    C_SPACE = 2,  // HF whitespace: separates words
    C_PUNCT = 4,  // isolated as its own word
    C_PYSPACE = 8 // Python str.isspace(): separates the "words" of token.word
};

typedef struct {
    int32_t cp;
    uint32_t ostart, oend; // byte span of the original character
    int32_t word;
    uint8_t ccc;           // canonical combining class (for NFD ordering)
} mt_tok_char;

typedef struct {
    int32_t id;
    uint32_t cs, ce; // chars [cs, ce) of the current word
} mt_tok_piece;

#define MT_TOK_NSPECIAL 5

struct mt_tokenizer {
    mt_vocab *vocab;
    mt_tokenizer_options opt;
    int lower, strip, max_chars;
    int32_t cls, sep, pad, unk, mask;
    int n_special;
    int32_t special_id[MT_TOK_NSPECIAL];
    const char *special_str[MT_TOK_NSPECIAL];
    size_t special_len[MT_TOK_NSPECIAL];
    uint8_t ascii[128];
    // the word being built (a pre-token: no whitespace, no punctuation inside)
    mt_tok_char *wc;   // [store_cap]
    size_t store_cap;  // chars stored at most (max_chars + 1: one more proves "too long")
    char *wb;          // its UTF-8 bytes, built at flush
    uint32_t *woff;    // [store_cap + 1] byte offset of each char in wb
    uint64_t *poly;    // [store_cap + 1] hash prefix of the piece being matched, per char
    mt_tok_piece *pieces;
    size_t nc;         // chars stored
    size_t total;      // chars seen (> nc when the word is too long to store)
    size_t run_start;  // first char of the current run of non-starters (NFD canonical order)
    uint32_t last_oend;
    // output of the current call
    mt_token *out;
    size_t cap, count;
};

void mt_tokenizer_options_default(mt_tokenizer_options *o, int lowercase) {
    memset(o, 0, sizeof *o);
    o->lowercase = lowercase != 0;
    o->tokenize_chinese_chars = 1;
    o->utf8 = MT_UTF8_STRICT;
    o->max_input_chars_per_word = 100;
    o->accents = MT_ACCENTS_AUTO;
}

const mt_vocab *mt_tokenizer_vocab(const mt_tokenizer *t) { return t ? t->vocab : NULL; }
const mt_tokenizer_options *mt_tokenizer_get_options(const mt_tokenizer *t) { return t ? &t->opt : NULL; }
int32_t mt_tokenizer_cls_id(const mt_tokenizer *t) { return t->cls; }
int32_t mt_tokenizer_sep_id(const mt_tokenizer *t) { return t->sep; }
int32_t mt_tokenizer_pad_id(const mt_tokenizer *t) { return t->pad; }
int32_t mt_tokenizer_unk_id(const mt_tokenizer *t) { return t->unk; }
int32_t mt_tokenizer_mask_id(const mt_tokenizer *t) { return t->mask; }

void mt_tokenizer_free(mt_tokenizer *t) {
    if (!t) return;
    mt_vocab_free(t->vocab);
    free(t->wc);
    free(t->wb);
    free(t->woff);
    free(t->poly);
    free(t->pieces);
    free(t);
}

mt_status mt_tokenizer_create(mt_vocab *vocab, const mt_tokenizer_options *o, mt_tokenizer **out) {
    if (!out) {
        mt_vocab_free(vocab);
        return mt_fail(MT_ERR_INVALID, "mt_tokenizer_create: out is NULL");
    }
    *out = NULL;
    if (!vocab) return mt_fail(MT_ERR_INVALID, "mt_tokenizer_create: no vocab");
    mt_tokenizer *t = mt_calloc(1, sizeof *t);
    if (!t) {
        mt_vocab_free(vocab);
        return MT_ERR_NOMEM;
    }
    t->vocab = vocab;
    if (o)
        t->opt = *o;
    else
        mt_tokenizer_options_default(&t->opt, 1);
    if (t->opt.max_input_chars_per_word <= 0) t->opt.max_input_chars_per_word = 100;
    if (t->opt.max_input_chars_per_word > 1 << 20) {
        mt_tokenizer_free(t);
        return mt_fail(MT_ERR_INVALID, "max_input_chars_per_word %d is too large (at most %d)",
                       o->max_input_chars_per_word, 1 << 20);
    }
    if (t->opt.utf8 != MT_UTF8_STRICT && t->opt.utf8 != MT_UTF8_REPLACE) {
        mt_tokenizer_free(t);
        return mt_fail(MT_ERR_INVALID, "unknown invalid-UTF-8 policy %d (use MT_UTF8_STRICT or MT_UTF8_REPLACE)",
                       (int)o->utf8);
    }
    t->lower = t->opt.lowercase != 0;
    t->strip = t->opt.accents == MT_ACCENTS_STRIP || (t->opt.accents == MT_ACCENTS_AUTO && t->lower);
    t->max_chars = t->opt.max_input_chars_per_word;

    static const char *names[MT_TOK_NSPECIAL] = {"[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"};
    int32_t ids[MT_TOK_NSPECIAL];
    for (int i = 0; i < MT_TOK_NSPECIAL; i++) {
        ids[i] = mt_vocab_id(vocab, names[i], strlen(names[i]));
        // Like BertWordPieceTokenizer, only the special tokens present in the vocab are matched.
        if (ids[i] >= 0) {
            t->special_id[t->n_special] = ids[i];
            t->special_str[t->n_special] = names[i];
            t->special_len[t->n_special] = strlen(names[i]);
            t->n_special++;
        }
    }
    t->cls = ids[0];
    t->sep = ids[1];
    t->unk = ids[2];
    t->pad = ids[3];
    t->mask = ids[4];
    if (t->unk < 0) {
        mt_status s = mt_fail(MT_ERR_FORMAT, "%s: the vocab has no [UNK] line; WordPiece needs it for unknown words "
                              "(is this a BERT WordPiece vocab.txt?)", mt_vocab_name(vocab));
        mt_tokenizer_free(t);
        return s;
    }

    for (int c = 0; c < 128; c++) {
        uint8_t k = 0;
        if (c == 0 || ((c < 0x20 || c == 0x7F) && c != '\t' && c != '\n' && c != '\r')) k |= C_DROP;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') k |= C_SPACE;
        if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
            k |= C_PUNCT;
        if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) k |= C_PYSPACE;
        t->ascii[c] = k;
    }

    t->store_cap = (size_t)t->max_chars + 1;
    t->wc = mt_malloc(t->store_cap * sizeof *t->wc);
    t->wb = mt_malloc(t->store_cap * 4 + 1);
    t->woff = mt_malloc((t->store_cap + 1) * sizeof *t->woff);
    t->pieces = mt_malloc(t->store_cap * sizeof *t->pieces);
    t->poly = mt_malloc((t->store_cap + 1) * sizeof *t->poly);
    if (!t->wc || !t->wb || !t->woff || !t->pieces || !t->poly) {
        mt_tokenizer_free(t);
        return MT_ERR_NOMEM;
    }
    *out = t;
    return MT_OK;
}

mt_status mt_tokenizer_create_from_file(const char *vocab_path, const mt_tokenizer_options *o, mt_tokenizer **out) {
    if (out) *out = NULL;
    mt_vocab *v = NULL;
    MT_TRY(mt_vocab_load(vocab_path, &v));
    return mt_tokenizer_create(v, o, out);
}

// ---- character classes (non-ASCII) ----

// HF's is_chinese_char ranges (tokenizers/src/normalizers/bert.rs). Python's BertTokenizer has
// 0x2B820 where Rust has 0x2B920.
static inline int is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static inline int is_punct_cat(int cat) { return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO; }

static inline int is_py_space(int32_t cp) {
    if (cp < 0x80) return 0; // ASCII handled by the table
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

// ---- output ----

static inline void emit(mt_tokenizer *t, int32_t id, uint32_t start, uint32_t end, int32_t word) {
    if (t->count < t->cap) {
        mt_token *o = &t->out[t->count];
        o->id = id;
        o->word = word;
        o->start = start;
        o->end = end < start ? start : end;
    }
    t->count++;
}

// ---- the word being built ----

static inline void append(mt_tokenizer *t, int32_t cp, uint32_t ostart, uint32_t oend, int32_t word, int ccc) {
    t->total++;
    t->last_oend = oend;
    if (t->nc >= t->store_cap) return; // already too long: only counted
    size_t j = t->nc++;
    mt_tok_char ch = {cp, ostart, oend, word, (uint8_t)ccc};
    if (ccc == 0) {
        t->run_start = t->nc;
    } else {
        // NFD canonical ordering: a non-starter moves before earlier non-starters of higher class
        // (stable). Only reached for marks kept after stripping Mn (e.g. Mc with a class).
        while (j > t->run_start && t->wc[j - 1].ccc > ccc) {
            t->wc[j] = t->wc[j - 1];
            j--;
        }
    }
    t->wc[j] = ch;
}

static inline int encode_utf8(int32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// WordPiece on the finished word, then reset it.
static void flush(mt_tokenizer *t) {
    size_t nc = t->nc;
    if (t->total == 0) return;
    const mt_tok_char *wc = t->wc;
    if (t->total > (size_t)t->max_chars) {
        emit(t, t->unk, wc[0].ostart, t->last_oend, wc[0].word);
        goto done;
    }
    {
        uint32_t nb = 0;
        for (size_t i = 0; i < nc; i++) {
            t->woff[i] = nb;
            nb += (uint32_t)encode_utf8(wc[i].cp, t->wb + nb);
        }
        t->woff[nc] = nb;
        const uint32_t *off = t->woff;
        const mt_vocab *v = t->vocab;
        size_t np = 0, cs = 0;
        while (cs < nc) {
            int cont = cs > 0;
            uint32_t bs = off[cs];
            // Hash every candidate piece [cs, ce) in one pass; pieces longer than any vocab key
            // cannot match and are not tried.
            uint32_t maxk = v->max_key[cont];
            uint64_t poly = 0;
            size_t cmax = cs;
            const unsigned char *wb = (const unsigned char *)t->wb;
            while (cmax < nc && off[cmax + 1] - bs <= maxk) {
                for (uint32_t b = off[cmax]; b < off[cmax + 1]; b++) poly = mt_vocab_poly_step(poly, wb[b]);
                t->poly[++cmax] = poly;
            }
            int32_t id = -1;
            size_t ce = cmax;
            for (; ce > cs; ce--) {
                uint32_t plen = off[ce] - bs;
                id = mt_vocab_lookup_hashed(v, cont, t->wb + bs, plen, mt_vocab_hash_finish(t->poly[ce], plen, cont));
                if (id >= 0) break;
            }
            if (id < 0) { // no piece matches here: the whole word is [UNK]
                emit(t, t->unk, wc[0].ostart, wc[nc - 1].oend, wc[0].word);
                goto done;
            }
            t->pieces[np].id = id;
            t->pieces[np].cs = (uint32_t)cs;
            t->pieces[np].ce = (uint32_t)ce;
            np++;
            cs = ce;
        }
        for (size_t k = 0; k < np; k++) {
            const mt_tok_piece *p = &t->pieces[k];
            emit(t, p->id, wc[p->cs].ostart, wc[p->ce - 1].oend, wc[p->cs].word);
        }
    }
done:
    t->nc = 0;
    t->total = 0;
    t->run_start = 0;
}

// Appends one character that survived cleaning and is not whitespace: accent stripping and
// lower-casing, then punctuation isolation.
static void add_normalized(mt_tokenizer *t, int32_t cp, uint32_t s, uint32_t e, int32_t word) {
    int32_t buf[16];
    int n = 1;
    buf[0] = cp;
    if (t->strip) {
        int bc = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(cp, buf, 16, UTF8PROC_DECOMPOSE, &bc);
        if (k < 1 || k > 16) {
            buf[0] = cp;
            k = 1;
        }
        n = (int)k;
    }
    for (int i = 0; i < n; i++) {
        int32_t d = buf[i];
        const utf8proc_property_t *p = utf8proc_get_property(d);
        int ccc = t->strip ? p->combining_class : 0;
        if (t->strip && p->category == UTF8PROC_CATEGORY_MN) {
            if (ccc == 0) t->run_start = t->nc; // a starter (dropped) still ends the run
            continue;
        }
        if (t->lower) {
            if (d == 0x130) { // Rust's full lowercase mapping: "i" + combining dot above
                append(t, 'i', s, e, word, 0);
                append(t, 0x307, s, e, word, 0); // not reordered: no NFD here
                continue;
            }
            d = utf8proc_tolower(d);
            if (d != buf[i]) p = utf8proc_get_property(d);
        }
        if (d < 0x80 ? (t->ascii[d] & C_PUNCT) : is_punct_cat(p->category)) {
            flush(t);
            append(t, d, s, e, word, 0);
            flush(t);
        } else if (mt_text_is_white_space(d)) {
            flush(t);
        } else {
            append(t, d, s, e, word, ccc);
        }
    }
}

mt_status mt_tokenize(mt_tokenizer *t, const char *text, size_t len, mt_token *out, size_t cap, size_t *n,
                      const char *source) {
    if (n) *n = 0;
    if (!t || !n || (!text && len) || (!out && cap))
        return mt_fail(MT_ERR_INVALID, "mt_tokenize: NULL argument");
    if (len > 0xFFFFFFFFu)
        return mt_fail(MT_ERR_INVALID, "%s: text of %zu bytes is too long to tokenize (offsets are 32-bit)",
                       source ? source : "<text>", len);
    t->out = out;
    t->cap = cap;
    t->count = 0;
    t->nc = t->total = t->run_start = 0;
    const unsigned char *p = (const unsigned char *)text;
    int in_word = 0;
    int32_t word = -1;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c == '[' && t->n_special) {
            int best = -1;
            for (int k = 0; k < t->n_special; k++)
                if (t->special_len[k] <= len - i && memcmp(p + i, t->special_str[k], t->special_len[k]) == 0 &&
                    (best < 0 || t->special_len[k] > t->special_len[best]))
                    best = k;
            if (best >= 0) {
                flush(t);
                if (!in_word) {
                    word++;
                    in_word = 1;
                }
                emit(t, t->special_id[best], (uint32_t)i, (uint32_t)(i + t->special_len[best]), word);
                i += t->special_len[best];
                continue;
            }
        }
        if (c < 0x80) {
            uint8_t k = t->ascii[c];
            if (k & C_PYSPACE)
                in_word = 0;
            else if (!in_word) {
                word++;
                in_word = 1;
            }
            if (k & C_DROP) {
            } else if (k & C_SPACE) {
                flush(t);
            } else if (k & C_PUNCT) {
                flush(t);
                append(t, (int32_t)c, (uint32_t)i, (uint32_t)i + 1, word, 0);
                flush(t);
            } else {
                int32_t d = (int32_t)c;
                if (t->lower && d >= 'A' && d <= 'Z') d += 32;
                append(t, d, (uint32_t)i, (uint32_t)i + 1, word, 0);
            }
            i++;
            continue;
        }
        int32_t cp;
        int k = mt_text_utf8_decode(p + i, len - i, &cp);
        if (k < 0) {
            if (t->opt.utf8 == MT_UTF8_STRICT) {
                *n = 0;
                return mt_fail(MT_ERR_FORMAT,
                               "%s: invalid UTF-8 at byte offset %zu (byte 0x%02X); the text must be UTF-8: "
                               "re-encode it (e.g. iconv -f latin1 -t utf-8) or choose the replace policy "
                               "(--invalid-utf8=replace), which drops invalid bytes like U+FFFD",
                               source ? source : "<text>", i, c);
            }
            cp = 0xFFFD;
            k = -k;
        }
        uint32_t s = (uint32_t)i, e = (uint32_t)(i + (size_t)k);
        i += (size_t)k;
        if (is_py_space(cp))
            in_word = 0;
        else if (!in_word) {
            word++;
            in_word = 1;
        }
        if (cp == 0xFFFD) continue;
        int cat = utf8proc_get_property(cp)->category;
        // HF's is_control: Cc, Cf, Co (the unicode_categories crate's is_other), not Cn or Cs.
        if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO) continue;
        if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP) {
            flush(t);
            continue;
        }
        if (t->opt.tokenize_chinese_chars && is_cjk(cp)) {
            flush(t);
            add_normalized(t, cp, s, e, word);
            flush(t);
            continue;
        }
        if (!t->strip && !t->lower) { // cased: no normalization
            if (is_punct_cat(cat)) {
                flush(t);
                append(t, cp, s, e, word, 0);
                flush(t);
            } else {
                append(t, cp, s, e, word, 0);
            }
            continue;
        }
        add_normalized(t, cp, s, e, word);
    }
    flush(t);
    *n = t->count;
    t->out = NULL;
    if (t->count > cap)
        return mt_fail(MT_ERR_INVALID, "%s: %zu tokens do not fit in the output array of %zu; grow it and retry",
                       source ? source : "<text>", t->count, cap);
    return MT_OK;
}

mt_status mt_tokenize_grow(mt_tokenizer *t, const char *text, size_t len, mt_token **buf, size_t *cap,
                           size_t *n, const char *source) {
    if (!buf || !cap || !n) return mt_fail(MT_ERR_INVALID, "mt_tokenize_grow: NULL argument");
    if (!*buf) *cap = 0;
    mt_status s = mt_tokenize(t, text, len, *buf, *cap, n, source);
    if (s == MT_ERR_INVALID && *n > *cap) {
        size_t want = *n + *n / 4 + 16;
        mt_token *nb = mt_realloc(*buf, want * sizeof *nb);
        if (!nb) return MT_ERR_NOMEM;
        *buf = nb;
        *cap = want;
        s = mt_tokenize(t, text, len, *buf, *cap, n, source);
    }
    return s;
}
