// Tokenizer behaviour on a small hand-made vocab with hand-computed expectations: ids, byte
// offsets, word indices (Python str.split() words), special tokens, [UNK] rules, invalid UTF-8
// policies, the output-capacity contract. Parity with Hugging Face on real text is checked by
// tests/e2e/test_tokenizer_hf.sh.
#include "test_util.h"
#include "text/tokenizer.h"

static const char *VOCAB =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n" // 0-4
    "hello\nworld\n,\n!\nun\n"             // 5-9
    "##aff\n##able\na\n##a\n##b\n"         // 10-14
    "cafe\n\xE4\xB8\xAD\n.\n##world\nb\n"   // 15-19  (U+4E2D)
    "[\n]\ncl\n##s\nHello\n";               // 20-24

static mt_tokenizer *make(int lowercase, mt_utf8_policy policy) {
    mt_vocab *v = NULL;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, strlen(VOCAB), "test-vocab", &v));
    mt_tokenizer_options o;
    mt_tokenizer_options_default(&o, lowercase);
    o.utf8 = policy;
    mt_tokenizer *t = NULL;
    CHECK_OK(mt_tokenizer_create(v, &o, &t));
    return t;
}

typedef struct {
    int id, start, end, word;
} want_tok;

#define W(...) ((const want_tok[]){__VA_ARGS__})

static void expect(mt_tokenizer *t, const char *text, size_t len, const want_tok *w, size_t nw, int line) {
    mt_token out[256];
    size_t n = 0;
    mt_status s = mt_tokenize(t, text, len, out, 256, &n, "case");
    if (s != MT_OK) {
        fprintf(stderr, "line %d: mt_tokenize failed: %s\n", line, mt_last_error());
        mt_test_failures++;
        return;
    }
    int ok = n == nw;
    for (size_t i = 0; ok && i < n; i++)
        ok = out[i].id == w[i].id && (int)out[i].start == w[i].start && (int)out[i].end == w[i].end &&
             out[i].word == w[i].word;
    if (!ok) {
        fprintf(stderr, "test_tokenizer.c:%d: tokens differ\n  got :", line);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d(%u,%u,%d)", out[i].id, out[i].start, out[i].end, out[i].word);
        fprintf(stderr, "\n  want:");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d(%d,%d,%d)", w[i].id, w[i].start, w[i].end, w[i].word);
        fprintf(stderr, "\n");
        mt_test_failures++;
    }
}

#define EXPECT(t, text, ...)                                                                         \
    expect(t, text, sizeof(text) - 1, (const want_tok[]){__VA_ARGS__},                                \
           sizeof((const want_tok[]){__VA_ARGS__}) / sizeof(want_tok), __LINE__)
#define EXPECT_NONE(t, text) expect(t, text, sizeof(text) - 1, NULL, 0, __LINE__)

static void test_basic(void) {
    mt_tokenizer *t = make(1, MT_UTF8_STRICT);
    if (!t) return;
    // Punctuation is split off; offsets are byte spans; words are whitespace words.
    EXPECT(t, "Hello, world!", {5, 0, 5, 0}, {7, 5, 6, 0}, {6, 7, 12, 1}, {8, 12, 13, 1});
    // Greedy longest match with ## continuation pieces.
    EXPECT(t, "unaffable", {9, 0, 2, 0}, {10, 2, 5, 0}, {11, 5, 9, 0});
    // Leading/trailing/multiple whitespace, tabs, CR.
    EXPECT(t, "  hello \t world\r ", {5, 2, 7, 0}, {6, 10, 15, 1});
    EXPECT_NONE(t, "");
    EXPECT_NONE(t, " \t \r ");
    // A word with no match anywhere is one [UNK] over the whole word.
    EXPECT(t, "xyz hello", {1, 0, 3, 0}, {5, 4, 9, 1});
    EXPECT(t, "helloq", {1, 0, 6, 0}); // "hello" matches but "##q" does not: the whole word is [UNK]
    // Punctuation runs: one token each.
    EXPECT(t, "!!,.", {8, 0, 1, 0}, {8, 1, 2, 0}, {7, 2, 3, 0}, {17, 3, 4, 0});
    // Uncased: "Café" (é = U+00E9, 2 bytes) -> "cafe"; the token spans the whole é.
    EXPECT(t, "Caf\xC3\xA9", {15, 0, 5, 0});
    // "cafe" + U+0301 (combining acute, a separate character): the mark is stripped and outside
    // the span.
    EXPECT(t, "cafe\xCC\x81", {15, 0, 4, 0});
    // CJK characters are words of their own, even inside a whitespace word.
    EXPECT(t, "a\xE4\xB8\xAD\xE4\xB8\xAD" "a", {12, 0, 1, 0}, {16, 1, 4, 0}, {16, 4, 7, 0}, {12, 7, 8, 0});
    mt_tokenizer_free(t);
}

static void test_words_and_spaces(void) {
    mt_tokenizer *t = make(1, MT_UTF8_STRICT);
    if (!t) return;
    // U+200B (zero-width space, Cf) is removed, and it does not split words (Python's split()
    // does not split there either): "hello" "##world", both word 0.
    EXPECT(t, "hello\xE2\x80\x8Bworld", {5, 0, 5, 0}, {18, 8, 13, 0});
    // NBSP separates words for both HF and Python.
    EXPECT(t, "hello\xC2\xA0world", {5, 0, 5, 0}, {6, 7, 12, 1});
    // U+3000 ideographic space too.
    EXPECT(t, "hello\xE3\x80\x80world", {5, 0, 5, 0}, {6, 8, 13, 1});
    // U+001C: a control character for HF (removed, "ab" stays one pre-token) but whitespace for
    // Python's split(): the "##b" piece starts in Python word 1.
    EXPECT(t, "a\x1c" "b", {12, 0, 1, 0}, {14, 2, 3, 1});
    // Control characters and NUL are removed; U+FFFD too.
    EXPECT(t, "he\x01llo\x7f w\xEF\xBF\xBDorld\x00", {5, 0, 6, 0}, {6, 8, 16, 1});
    // Vertical tab / form feed: control for HF, whitespace for Python.
    EXPECT(t, "a\x0b" "a", {12, 0, 1, 0}, {13, 2, 3, 1});
    // A word made only of removed characters produces no token but still counts as a word.
    EXPECT(t, "hello \xE2\x80\x8B world", {5, 0, 5, 0}, {6, 10, 15, 2});
    mt_tokenizer_free(t);
}

static void test_special_and_long(void) {
    mt_tokenizer *t = make(1, MT_UTF8_STRICT);
    if (!t) return;
    // Special tokens stay whole anywhere in the text, case-sensitively, before lower-casing.
    EXPECT(t, "[CLS] hello[SEP]world [MASK]", {2, 0, 5, 0}, {5, 6, 11, 1}, {3, 11, 16, 1}, {6, 16, 21, 1},
           {4, 22, 28, 2});
    EXPECT(t, "[SEP][SEP]", {3, 0, 5, 0}, {3, 5, 10, 0});
    EXPECT(t, "[cls]", {20, 0, 1, 0}, {22, 1, 3, 0}, {23, 3, 4, 0}, {21, 4, 5, 0}); // not special
    EXPECT(t, "[[UNK]]", {20, 0, 1, 0}, {1, 1, 6, 0}, {21, 6, 7, 0});
    // 100 characters: a ##a ##a ...; 101 characters: one [UNK] over the word.
    char buf[256];
    memset(buf, 'a', 101);
    mt_token out[128];
    size_t n = 0;
    CHECK_OK(mt_tokenize(t, buf, 100, out, 128, &n, "len100"));
    CHECK(n == 100 && out[0].id == 12 && out[99].id == 13 && out[99].start == 99 && out[99].end == 100);
    CHECK_OK(mt_tokenize(t, buf, 101, out, 128, &n, "len101"));
    CHECK(n == 1 && out[0].id == 1 && out[0].start == 0 && out[0].end == 101 && out[0].word == 0);
    // The limit counts characters after normalization, not bytes: 100 x "é" (200 bytes) -> not [UNK]
    // by length (but "e" is not in the vocab, so [UNK] anyway); 60 x "a" + "," + 60 x "a": two words.
    memset(buf, 'a', 60);
    buf[60] = ',';
    memset(buf + 61, 'a', 60);
    CHECK_OK(mt_tokenize(t, buf, 121, out, 128, &n, "split"));
    CHECK(n == 121 && out[60].id == 7 && out[61].id == 12 && out[61].start == 61);
    mt_tokenizer_free(t);
}

static void test_cased(void) {
    mt_tokenizer *t = make(0, MT_UTF8_STRICT);
    if (!t) return;
    EXPECT(t, "Hello hello HELLO", {24, 0, 5, 0}, {5, 6, 11, 1}, {1, 12, 17, 2});
    EXPECT(t, "Caf\xC3\xA9", {1, 0, 5, 0}); // no accent stripping when cased
    mt_tokenizer_free(t);
}

static void test_accent_options(void) {
    mt_tokenizer_options o;
    mt_vocab *v = NULL;
    mt_tokenizer *t = NULL;
    // cased + strip accents: "Hèllo" -> "Hello" (id 24); lower-case + keep accents: "Café" -> "café",
    // not in the vocab.
    mt_tokenizer_options_default(&o, 0);
    o.accents = MT_ACCENTS_STRIP;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, strlen(VOCAB), "v", &v));
    CHECK_OK(mt_tokenizer_create(v, &o, &t));
    if (t) EXPECT(t, "H\xC3\xA8llo", {24, 0, 6, 0});
    mt_tokenizer_free(t);
    mt_tokenizer_options_default(&o, 1);
    o.accents = MT_ACCENTS_KEEP;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, strlen(VOCAB), "v", &v));
    CHECK_OK(mt_tokenizer_create(v, &o, &t));
    if (t) EXPECT(t, "Caf\xC3\xA9 CAFE", {1, 0, 5, 0}, {15, 6, 10, 1});
    mt_tokenizer_free(t);
    // Bad options are errors (and the vocab is freed: ASan checks).
    o.accents = (mt_accent_policy)7;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, strlen(VOCAB), "v", &v));
    CHECK(mt_tokenizer_create(v, &o, &t) == MT_ERR_INVALID && t == NULL);
    mt_tokenizer_options_default(&o, 1);
    o.utf8 = (mt_utf8_policy)5;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, strlen(VOCAB), "v", &v));
    CHECK(mt_tokenizer_create(v, &o, &t) == MT_ERR_INVALID && t == NULL);
    CHECK_MSG(strstr(mt_last_error(), "policy"), "%s", mt_last_error());
}

static void test_utf8_policies(void) {
    mt_tokenizer *t = make(1, MT_UTF8_STRICT);
    if (!t) return;
    mt_token out[16];
    size_t n = 99;
    static const struct {
        const char *s;
        size_t len, bad;
    } bad[] = {
        {"ab\xFF" "cd", 5, 2},     // not a lead byte
        {"a\xC0\xAF", 3, 1},       // overlong
        {"ab\xED\xA0\x80", 5, 2},  // surrogate
        {"\xF4\x90\x80\x80", 4, 0}, // > U+10FFFF
        {"abc\xE4\xB8", 5, 3},     // truncated at the end
        {"a\x80", 2, 1},           // lone continuation byte
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_status s = mt_tokenize(t, bad[i].s, bad[i].len, out, 16, &n, "file.txt:7");
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].bad);
        CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), "file.txt:7") && strstr(mt_last_error(), want),
                  "case %zu: status %d, %s", i, (int)s, mt_last_error());
        CHECK(n == 0);
    }
    mt_tokenizer_free(t);

    t = make(1, MT_UTF8_REPLACE);
    if (!t) return;
    // Replaced bytes are U+FFFD, which cleaning removes without splitting the word: "a" "##b".
    EXPECT(t, "a\xFF" "b hello", {12, 0, 1, 0}, {14, 2, 3, 0}, {5, 4, 9, 1});
    EXPECT(t, "\xED\xA0\x80hello\xE4\xB8", {5, 3, 8, 0});
    mt_tokenizer_free(t);
}

static void test_capacity(void) {
    mt_tokenizer *t = make(1, MT_UTF8_STRICT);
    if (!t) return;
    mt_token out[2];
    size_t n = 0;
    mt_status s = mt_tokenize(t, "hello, world!", 13, out, 2, &n, "cap");
    CHECK(s == MT_ERR_INVALID && n == 4);
    CHECK(out[0].id == 5 && out[1].id == 7);
    CHECK(mt_tokenize(t, "hello, world!", 13, NULL, 0, &n, "count") == MT_ERR_INVALID && n == 4);
    mt_token *buf = NULL;
    size_t cap = 0;
    CHECK_OK(mt_tokenize_grow(t, "hello, world! hello", 19, &buf, &cap, &n, "grow"));
    CHECK(n == 5 && cap >= 5 && buf && buf[4].id == 5 && buf[4].word == 2);
    free(buf);
    mt_tokenizer_free(t);
}

int main(void) {
    test_basic();
    test_words_and_spaces();
    test_special_and_long();
    test_cased();
    test_accent_options();
    test_utf8_policies();
    test_capacity();
    TEST_DONE();
}
