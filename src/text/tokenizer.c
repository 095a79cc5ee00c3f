// BERT basic tokenizer + WordPiece in one pass over the text (see tokenizer.h for the exact
// behaviour and the reference it matches). Characters are decoded once; each normalized character
// keeps the byte span and word index of the original character it came from, so offsets need no
// second alignment pass. Scratch space is sized once from max_input_chars_per_word, so tokenizing
// does not allocate (except to grow the buffer for a run of more than 64 combining marks).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/hf_unicode_internal.h"
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
} mt_tok_char;

// NFD (when stripping accents) as HF's unicode-normalization-alignments does it: a run of
// non-starters (combining class > 0) is held until the next starter, then stably sorted by class.
// Each sorted item takes its span POSITIONALLY, as HF's NormalizedString::transform assigns
// alignments: the first character of a decomposition ("head") takes the span of the next input
// character in text order, an extra character of a decomposition ("tail") the span of the
// previous one. Only visible when marks that are not stripped (Mc with a class) get reordered.
typedef struct {
    int32_t cp;
    uint8_t ccc;
    uint8_t tail;
} mt_nfd_item;

typedef struct {
    uint32_t s, e;
    int32_t word;
} mt_span;

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
    mt_nfd_item *run;  // pending non-starters, [run_cap]; run_tmp: sort scratch
    mt_nfd_item *run_tmp;
    mt_span *spanq;    // spans of the heads in `run`, in text order
    size_t run_n, q_n, run_cap;
    mt_span last;      // span of the last input character consumed by NFD
    int oom;
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
    free(t->run);
    free(t->run_tmp);
    free(t->spanq);
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
        mt_status s = mt_fail(MT_ERR_INVALID, "max_input_chars_per_word %d is too large (at most %d)",
                              t->opt.max_input_chars_per_word, 1 << 20);
        mt_tokenizer_free(t);
        return s;
    }
    if (t->opt.utf8 != MT_UTF8_STRICT && t->opt.utf8 != MT_UTF8_REPLACE) {
        mt_status s = mt_fail(MT_ERR_INVALID, "unknown invalid-UTF-8 policy %d (use MT_UTF8_STRICT or "
                              "MT_UTF8_REPLACE)", (int)t->opt.utf8);
        mt_tokenizer_free(t);
        return s;
    }
    if (t->opt.accents < MT_ACCENTS_AUTO || t->opt.accents > MT_ACCENTS_KEEP) {
        mt_status s = mt_fail(MT_ERR_INVALID, "unknown accent policy %d (use MT_ACCENTS_AUTO, _STRIP or _KEEP)",
                              (int)t->opt.accents);
        mt_tokenizer_free(t);
        return s;
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

// The general category as HF sees it: utf8proc's, except where HF's Unicode 9 tables disagree.
static inline int hf_category(int32_t cp, const utf8proc_property_t *p) {
    if (cp >= mt_text_hf_first) {
        int k = mt_text_hf_class(cp);
        if (k >= 0) {
            static const int as_cat[5] = {UTF8PROC_CATEGORY_LO, UTF8PROC_CATEGORY_CC, UTF8PROC_CATEGORY_PO,
                                          UTF8PROC_CATEGORY_MN, UTF8PROC_CATEGORY_LO};
            return as_cat[k];
        }
    }
    return p->category;
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

static inline void append(mt_tokenizer *t, int32_t cp, uint32_t ostart, uint32_t oend, int32_t word) {
    t->total++;
    t->last_oend = oend;
    if (t->nc >= t->store_cap) return; // already too long: only counted
    mt_tok_char ch = {cp, ostart, oend, word};
    t->wc[t->nc++] = ch;
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
}

// One character of the normalized stream (after accent stripping), with the span it takes:
// drop it if it is a non-spacing mark (when stripping), lower-case it, then isolate punctuation.
static void put_normalized(mt_tokenizer *t, int32_t d, const utf8proc_property_t *p, mt_span sp) {
    int cat = hf_category(d, p);
    if (t->strip && cat == UTF8PROC_CATEGORY_MN) return;
    if (t->lower) {
        if (d == 0x130) { // Rust's full lowercase mapping: "i" + combining dot above
            append(t, 'i', sp.s, sp.e, sp.word);
            append(t, 0x307, sp.s, sp.e, sp.word);
            return;
        }
        int32_t l = utf8proc_tolower(d);
        if (l != d) cat = hf_category(l, utf8proc_get_property(l));
        d = l;
    }
    if (d < 0x80 ? (t->ascii[d] & C_PUNCT) : is_punct_cat(cat)) {
        flush(t);
        append(t, d, sp.s, sp.e, sp.word);
        flush(t);
    } else if (mt_text_is_white_space(d)) {
        flush(t);
    } else {
        append(t, d, sp.s, sp.e, sp.word);
    }
}

// Sorts the pending non-starters by combining class (stable) and emits them with positional spans.
static void release_run(mt_tokenizer *t) {
    size_t n = t->run_n;
    mt_nfd_item *r = t->run;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            mt_nfd_item x = r[i];
            size_t j = i;
            while (j > 0 && r[j - 1].ccc > x.ccc) {
                r[j] = r[j - 1];
                j--;
            }
            r[j] = x;
        }
    } else { // counting sort: stable and linear for long (adversarial) runs of marks
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[r[i].ccc + 1]++;
        for (int c = 0; c < 256; c++) count[c + 1] += count[c];
        for (size_t i = 0; i < n; i++) t->run_tmp[count[r[i].ccc]++] = r[i];
        memcpy(r, t->run_tmp, n * sizeof *r);
    }
    size_t qi = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r[i].tail && qi < t->q_n) t->last = t->spanq[qi++];
        put_normalized(t, r[i].cp, utf8proc_get_property(r[i].cp), t->last);
    }
    t->run_n = t->q_n = 0;
}

static int grow_run(mt_tokenizer *t) {
    size_t cap = t->run_cap ? t->run_cap * 2 : 64;
    mt_nfd_item *r = realloc(t->run, cap * sizeof *r);
    if (r) t->run = r;
    mt_nfd_item *tmp = realloc(t->run_tmp, cap * sizeof *tmp);
    if (tmp) t->run_tmp = tmp;
    mt_span *q = realloc(t->spanq, cap * sizeof *q);
    if (q) t->spanq = q;
    if (!r || !tmp || !q) return 0;
    t->run_cap = cap;
    return 1;
}

// Appends one character that survived cleaning and is not whitespace.
static void add_normalized(mt_tokenizer *t, int32_t cp, uint32_t s, uint32_t e, int32_t word) {
    mt_span sp = {s, e, word};
    if (!t->strip) {
        put_normalized(t, cp, utf8proc_get_property(cp), sp);
        return;
    }
    int32_t buf[16];
    int bc = 0;
    int is_new = cp >= mt_text_hf_first && mt_text_hf_class(cp) == MT_HF_NEW;
    utf8proc_ssize_t n = is_new ? 1 : utf8proc_decompose_char(cp, buf, 16, UTF8PROC_DECOMPOSE, &bc);
    if (n < 1 || n > 16 || is_new) {
        buf[0] = cp;
        n = 1;
    }
    for (int i = 0; i < (int)n; i++) {
        const utf8proc_property_t *p = utf8proc_get_property(buf[i]);
        if (p->combining_class == 0 || is_new) { // a starter: the pending run comes first
            if (t->run_n) release_run(t);
            if (i == 0) t->last = sp;
            put_normalized(t, buf[i], p, t->last);
        } else {
            if (t->run_n == t->run_cap && !grow_run(t)) {
                t->oom = 1;
                return;
            }
            t->run[t->run_n].cp = buf[i];
            t->run[t->run_n].ccc = (uint8_t)p->combining_class;
            t->run[t->run_n].tail = i > 0;
            t->run_n++;
            if (i == 0) t->spanq[t->q_n++] = sp;
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
    t->nc = t->total = 0;
    t->run_n = t->q_n = 0;
    t->oom = 0;
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
                if (t->run_n) release_run(t); // the text before a special token is normalized alone
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
                i++;
                continue;
            }
            if (t->run_n) release_run(t); // an ASCII character is an NFD starter
            if (k & C_SPACE) {
                flush(t);
            } else if (k & C_PUNCT) {
                flush(t);
                append(t, (int32_t)c, (uint32_t)i, (uint32_t)i + 1, word);
                flush(t);
            } else {
                int32_t d = (int32_t)c;
                if (t->lower && d >= 'A' && d <= 'Z') d += 32;
                append(t, d, (uint32_t)i, (uint32_t)i + 1, word);
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
        int cat = hf_category(cp, utf8proc_get_property(cp));
        // HF's is_control: Cc, Cf, Co (the unicode_categories crate's is_other), not Cn or Cs.
        if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO) continue;
        if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP) {
            if (t->run_n) release_run(t);
            flush(t);
            continue;
        }
        if (t->opt.tokenize_chinese_chars && is_cjk(cp)) {
            if (t->run_n) release_run(t);
            flush(t);
            add_normalized(t, cp, s, e, word);
            flush(t);
            continue;
        }
        if (!t->strip && !t->lower) { // cased: no normalization
            if (is_punct_cat(cat)) {
                flush(t);
                append(t, cp, s, e, word);
                flush(t);
            } else {
                append(t, cp, s, e, word);
            }
            continue;
        }
        add_normalized(t, cp, s, e, word);
    }
    if (t->run_n) release_run(t);
    flush(t);
    *n = t->count;
    t->out = NULL;
    if (t->oom) {
        *n = 0;
        return mt_fail(MT_ERR_NOMEM, "%s: out of memory holding a run of %zu combining marks", source ? source : "<text>",
                       t->run_cap);
    }
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
