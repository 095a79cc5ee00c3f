// UTF-8 decoding and the few character classes the tokenizer needs (module-internal).
#ifndef MT_TEXT_UTF8_INTERNAL_H
#define MT_TEXT_UTF8_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <utf8proc.h>

// Decodes one character at p (n > 0 bytes available). Returns its length (1..4) and sets *cp, or
// returns the negated length of the maximal invalid subpart (1..3, as WHATWG/Unicode count
// replacement characters) for an ill-formed sequence (overlong, surrogate, > U+10FFFF, truncated).
static inline int mt_text_utf8_decode(const unsigned char *p, size_t n, int32_t *cp) {
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    int32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = (int32_t)(c & 0x1F);
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = (int32_t)(c & 0x0F);
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = (int32_t)(c & 0x07);
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned b = p[i];
        if (b < lo || b > hi) return -i;
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (int32_t)(b & 0x3F);
    }
    *cp = v;
    return need + 1;
}

// Offset of the first invalid byte in s[0..n), or (size_t)-1 if all of it is valid UTF-8.
static inline size_t mt_text_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        int k = mt_text_utf8_decode(p + i, n - i, &cp);
        if (k < 0) return i;
        i += (size_t)k;
    }
    return (size_t)-1;
}

// Unicode White_Space (what Rust's char::is_whitespace tests): \t..\r, space, U+0085 and the
// Zs, Zl, Zp categories.
static inline int mt_text_is_white_space(int32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    if (cp == 0x85) return 1;
    int cat = utf8proc_get_property(cp)->category;
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

#endif
