// libFuzzer target: random bytes as text (and as a vocab file) must never crash the tokenizer, and
// its output must keep its invariants: ids inside the vocab, spans inside the text and in order,
// word indices non-decreasing, the same tokens whatever the output capacity, REPLACE never fails.
// The first input byte picks the options (casing, accents, CJK, UTF-8 policy).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"
#include "fuzz_env.h"

static const char VOCAB[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
    "a\nb\nab\n##a\n##b\n##ab\nthe\n##s\nhello\nworld\n,\n.\n!\n[\n]\n#\n##\n"
    "\xC3\xA9\n##\xC3\xA9\ncaf\xC3\xA9\ncafe\n\xE4\xB8\xAD\n\xE1\x84\x92\n##\xE1\x85\xA1\n##\xE1\x86\xAB\n"
    "i\n##\xCC\x87\n\xCF\x83\n\xF0\x9F\x98\x80\n"
    "Hello\nA\n##B\n";

static mt_tokenizer *tok[16];

static mt_tokenizer *get(unsigned sel) {
    sel &= 15;
    if (!tok[sel]) {
        mt_vocab *v = NULL;
        if (mt_vocab_load_buffer(VOCAB, sizeof VOCAB - 1, "fuzz-vocab", &v) != MT_OK) abort();
        mt_tokenizer_options o;
        mt_tokenizer_options_default(&o, sel & 1);
        o.utf8 = (sel & 2) ? MT_UTF8_REPLACE : MT_UTF8_STRICT;
        o.accents = (mt_accent_policy)((sel >> 2) % 3);
        o.tokenize_chinese_chars = !(sel & 8);
        o.max_input_chars_per_word = (sel & 8) ? 5 : 100;
        if (mt_tokenizer_create(v, &o, &tok[sel]) != MT_OK) abort();
    }
    return tok[sel];
}

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    mt_tokenizer *t = get(sel);
    int nvocab = mt_vocab_size(mt_tokenizer_vocab(t));
    int replace = (sel & 2) != 0;

    size_t cap = 4 * len + 16, n = 0;
    mt_token *out = malloc(cap * sizeof *out);
    if (!out) return 0;
    mt_status s = mt_tokenize(t, text, len, out, cap, &n, "fuzz");
    check(s == MT_OK || (!replace && s == MT_ERR_FORMAT), "status");
    if (s == MT_OK) {
        check(n <= cap, "count within capacity");
        for (size_t i = 0; i < n; i++) {
            check(out[i].id >= 0 && out[i].id < nvocab, "id in vocab");
            check(out[i].start < out[i].end && out[i].end <= len, "span inside the text");
            check(out[i].word >= 0, "word index");
            if (i) {
                check(out[i].start >= out[i - 1].start, "spans in order");
                check(out[i].word >= out[i - 1].word, "words in order");
            }
        }
        // Counting with no room gives the same count, and a small array the same first tokens.
        size_t n2 = 0;
        mt_status s2 = mt_tokenize(t, text, len, NULL, 0, &n2, "fuzz");
        check(n2 == n && (n == 0 ? s2 == MT_OK : s2 == MT_ERR_INVALID), "count-only call");
        if (n > 1) {
            mt_token small[1];
            mt_status s3 = mt_tokenize(t, text, len, small, 1, &n2, "fuzz");
            check(s3 == MT_ERR_INVALID && n2 == n && !memcmp(&small[0], &out[0], sizeof small[0]), "truncated call");
        }
    }
    free(out);

    // The same bytes as a vocab file: any outcome but a crash; a vocab that loads must answer
    // lookups of its own tokens.
    mt_vocab *v = NULL;
    if (mt_vocab_load_buffer(text, len, "fuzz-as-vocab", &v) == MT_OK) {
        int has_nul = memchr(text, 0, len) != NULL; // a NUL inside a line cuts the C string
        for (int i = 0; i < mt_vocab_size(v) && i < 64; i++) {
            const char *tk = mt_vocab_token(v, i);
            check(tk != NULL, "token string");
            int32_t id = mt_vocab_id(v, tk, strlen(tk));
            check(has_nul || id >= i, "lookup of own token (a later duplicate may win)");
        }
        mt_tokenizer *t2 = NULL;
        if (mt_tokenizer_create(v, NULL, &t2) == MT_OK) {
            mt_token o2[64];
            size_t n3;
            (void)mt_tokenize(t2, "Hello, world! [CLS] caf\xC3\xA9", 24, o2, 64, &n3, "fixed");
            mt_tokenizer_free(t2);
        }
    }
    return 0;
}
