// WordPiece vocab: one token per line, loaded the way HF's WordPiece::read_file does.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/utf8_internal.h"
#include "core/file.h"
#include "text/vocab_internal.h"

void mt_vocab_free(mt_vocab *v) {
    if (!v) return;
    free(v->name);
    free(v->arena);
    free(v->tok_off);
    free(v->slots);
    free(v);
}

int mt_vocab_size(const mt_vocab *v) { return v ? v->n : 0; }
int mt_vocab_duplicates(const mt_vocab *v) { return v ? v->duplicates : 0; }
const char *mt_vocab_name(const mt_vocab *v) { return v ? v->name : ""; }

const char *mt_vocab_token(const mt_vocab *v, int32_t id) {
    if (!v || id < 0 || id >= v->n) return NULL;
    return v->arena + v->tok_off[id];
}

int32_t mt_vocab_id(const mt_vocab *v, const char *token, size_t len) {
    if (!v || !token) return -1;
    if (len >= 2 && token[0] == '#' && token[1] == '#') return mt_vocab_lookup(v, 1, token + 2, len - 2);
    return mt_vocab_lookup(v, 0, token, len);
}

// Length of s[0..n) without trailing White_Space characters (Rust's str::trim_end).
static size_t trim_end_len(const char *s, size_t n) {
    while (n > 0) {
        unsigned char c = (unsigned char)s[n - 1];
        if (c < 0x80) {
            if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
                n--;
                continue;
            }
            return n;
        }
        size_t b = n - 1; // the last character's lead byte
        while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80 && n - b < 4) b--;
        utf8proc_int32_t cp;
        if (utf8proc_iterate((const utf8proc_uint8_t *)s + b, (utf8proc_ssize_t)(n - b), &cp) != (utf8proc_ssize_t)(n - b) ||
            !mt_text_is_white_space(cp))
            return n;
        n = b;
    }
    return 0;
}

static mt_status insert_key(mt_vocab *v, int32_t id, uint32_t off, uint32_t len, int cont) {
    uint32_t lenc = len << 1 | (cont ? 1u : 0u);
    uint64_t h64 = mt_vocab_hash((const unsigned char *)v->arena + off, len, cont);
    uint32_t h = (uint32_t)(h64 >> 32);
    mt_vocab_bloom_add(v, h64);
    for (uint32_t i = (uint32_t)h64 & v->mask;; i = (i + 1) & v->mask) {
        mt_vocab_slot *s = &v->slots[i];
        if (s->id < 0) {
            s->hash = h;
            s->lenc = lenc;
            s->off = off;
            s->id = id;
            if (len > v->max_key[cont]) v->max_key[cont] = len;
            return MT_OK;
        }
        if (s->hash == h && s->lenc == lenc && memcmp(v->arena + s->off, v->arena + off, len) == 0) {
            s->id = id; // a duplicate: the later line wins, as in HF's and Python's dicts
            v->duplicates++;
            return MT_OK;
        }
    }
}

// Takes ownership of `buf` (len bytes + 1 spare byte for a final NUL).
static mt_status build(char *buf, size_t len, const char *name, mt_vocab **out) {
    *out = NULL;
    mt_vocab *v = mt_calloc(1, sizeof *v);
    if (!v) {
        free(buf);
        return MT_ERR_NOMEM;
    }
    v->arena = buf;
    v->name = mt_strdup(name ? name : "<vocab>");
    if (!v->name) {
        mt_vocab_free(v);
        return MT_ERR_NOMEM;
    }
    if (len > 0xFFFFFFF0u) {
        mt_vocab_free(v);
        return mt_fail(MT_ERR_FORMAT, "%s: vocab file is %zu bytes, more than the 4 GiB supported", name, len);
    }
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    if (len > 0 && buf[len - 1] != '\n') lines++; // a last line without newline counts
    if (lines == 0) {
        mt_vocab_free(v);
        return mt_fail(MT_ERR_FORMAT, "%s: the vocab file is empty; it needs one WordPiece token per line "
                       "(e.g. bert-base-uncased's vocab.txt)", name);
    }
    if (lines > 0x7FFFFFF0u) {
        mt_vocab_free(v);
        return mt_fail(MT_ERR_FORMAT, "%s: too many lines (%zu)", name, lines);
    }
    v->n = (int32_t)lines;
    v->tok_off = mt_malloc(lines * sizeof *v->tok_off);
    size_t slots = 16;
    while (slots < lines * 2) slots *= 2;
    v->slots = mt_malloc(slots * sizeof *v->slots);
    if (!v->tok_off || !v->slots) {
        mt_vocab_free(v);
        return MT_ERR_NOMEM;
    }
    for (size_t i = 0; i < slots; i++) v->slots[i].id = -1;
    v->mask = (uint32_t)(slots - 1);

    size_t pos = 0;
    for (int32_t id = 0; id < v->n; id++) {
        size_t end = pos;
        while (end < len && buf[end] != '\n') end++;
        size_t bad = mt_text_utf8_invalid_at(buf + pos, end - pos);
        if (bad != (size_t)-1) {
            mt_status s = mt_fail(MT_ERR_FORMAT, "%s:%d: invalid UTF-8 at byte %zu of the line (byte offset %zu in "
                                  "the file); a vocab file must be UTF-8 text", name, id + 1, bad, pos + bad);
            mt_vocab_free(v);
            return s;
        }
        size_t tl = trim_end_len(buf + pos, end - pos);
        buf[pos + tl] = 0; // overwrites the newline or trailing whitespace (the spare byte at EOF)
        v->tok_off[id] = (uint32_t)pos;
        mt_status s;
        if (tl >= 2 && buf[pos] == '#' && buf[pos + 1] == '#')
            s = insert_key(v, id, (uint32_t)(pos + 2), (uint32_t)(tl - 2), 1);
        else
            s = insert_key(v, id, (uint32_t)pos, (uint32_t)tl, 0);
        if (s != MT_OK) {
            mt_vocab_free(v);
            return s;
        }
        pos = end + 1;
    }
    *out = v;
    return MT_OK;
}

mt_status mt_vocab_load_buffer(const char *data, size_t len, const char *name, mt_vocab **out) {
    if (!out) return mt_fail(MT_ERR_INVALID, "mt_vocab_load_buffer: out is NULL");
    *out = NULL;
    if (!data && len) return mt_fail(MT_ERR_INVALID, "mt_vocab_load_buffer: data is NULL");
    char *buf = mt_malloc(len + 1);
    if (!buf) return MT_ERR_NOMEM;
    if (len) memcpy(buf, data, len);
    buf[len] = 0;
    return build(buf, len, name, out);
}

mt_status mt_vocab_load(const char *path, mt_vocab **out) {
    if (!out) return mt_fail(MT_ERR_INVALID, "mt_vocab_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return mt_fail(MT_ERR_INVALID, "no vocab file given: pass the path of a WordPiece vocab.txt");
    FILE *f = fopen(path, "rb");
    if (!f)
        return mt_fail(errno == ENOENT ? MT_ERR_NOT_FOUND : MT_ERR_IO,
                       "%s: cannot open the vocab file: %s", path, strerror(errno));
    char *buf;
    size_t len;
    mt_status s = mt_read_all(f, 0, &buf, &len);
    int err = errno;
    fclose(f);
    if (s == MT_ERR_IO)
        return mt_fail(MT_ERR_IO, "%s: read error in the vocab file: %s%s", path, strerror(err),
                       err == EISDIR ? " (give the vocab.txt file inside it)" : "");
    if (s != MT_OK) return s;
    return build(buf, len, path, out);
}
