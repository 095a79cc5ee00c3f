// Line reading with the checks every data loader needs: empty files, over-long lines, bad UTF-8
// and NUL bytes are errors naming the file and line, so no parser below ever sees them.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task_internal.h"
#include "core/file.h"

size_t mt_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
        else return i;
        if (i + k >= n) return i; // sequence cut by the end of the line
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        // overlong 3/4-byte forms, surrogates, beyond U+10FFFF
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return i;
        i += k + 1;
    }
    return (size_t)-1;
}

static int only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' && s[i] != '\v' && s[i] != '\f') return 0;
    return 1;
}

mt_status mt_lines_from_stream(mt_lines *L, FILE *f, const char *name, int allow_empty) {
    memset(L, 0, sizeof *L);
    snprintf(L->name, sizeof L->name, "%s", name);
    char *buf;
    size_t len;
    mt_status rs = mt_read_all(f, 0, &buf, &len);
    if (rs == MT_ERR_IO) {
        int e = errno;
        return mt_fail(MT_ERR_IO, "%s: read error: %s%s", name, strerror(e),
                       e == EISDIR ? " (give a data file, not a folder)" : "");
    }
    if (rs != MT_OK) return rs;
    if (!allow_empty && only_space(buf, len)) {
        free(buf);
        return mt_fail(MT_ERR_FORMAT, "%s: the file is empty; give a data file with at least one example", name);
    }
    L->data = buf;
    L->len = len;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        L->pos = 3; // MRPC's files start with a BOM; Python's csv would keep it in the header, which is skipped
    return MT_OK;
}

mt_status mt_lines_open(mt_lines *L, const char *path) {
    memset(L, 0, sizeof *L);
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mt_status s = mt_lines_from_stream(L, f, path, 0);
    fclose(f);
    return s;
}

int mt_lines_next(mt_lines *L, char **line, size_t *len) {
    if (!L->data || L->pos >= L->len) return 0;
    char *start = L->data + L->pos;
    char *nl = memchr(start, '\n', L->len - L->pos);
    size_t n = nl ? (size_t)(nl - start) : L->len - L->pos;
    L->pos += n + (nl ? 1 : 0);
    L->lineno++;
    if (n > MT_TASK_MAX_LINE_BYTES) {
        mt_fail(MT_ERR_FORMAT, "%s:%d: line is %zu bytes, over the %u-byte limit; split the example or check the file format",
                L->name, L->lineno, n, MT_TASK_MAX_LINE_BYTES);
        return -1;
    }
    if (n > 0 && start[n - 1] == '\r') n--;
    start[n] = '\0';
    if (memchr(start, '\0', n)) {
        mt_fail(MT_ERR_FORMAT, "%s:%d: byte %zu is NUL; this is not a text file", L->name, L->lineno,
                (size_t)((char *)memchr(start, '\0', n) - start));
        return -1;
    }
    size_t bad = mt_utf8_invalid_at(start, n);
    if (bad != (size_t)-1) {
        mt_fail(MT_ERR_FORMAT, "%s:%d: invalid UTF-8 at byte %zu of the line (0x%02x); convert the file to UTF-8",
                L->name, L->lineno, bad, (unsigned char)start[bad]);
        return -1;
    }
    *line = start;
    *len = n;
    return 1;
}

void mt_lines_close(mt_lines *L) {
    free(L->data);
    L->data = NULL;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int mt_split_ws(char *s, char **fields, int cap) {
    int n = 0;
    while (*s) {
        while (*s && is_ws(*s)) s++;
        if (!*s) break;
        if (n < cap) fields[n] = s;
        n++;
        while (*s && !is_ws(*s)) s++;
        if (*s) *s++ = '\0';
    }
    return n < cap ? n : cap;
}

int mt_split_tab(char *s, char **fields, int cap) {
    int n = 0;
    if (cap <= 0) return 0;
    fields[n++] = s;
    for (char *p = s; *p; p++)
        if (*p == '\t') {
            *p = '\0';
            if (n < cap) fields[n++] = p + 1;
            else break;
        }
    return n;
}

int mt_parse_int(const char *s, long *out) {
    if (!*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno) return 0;
    *out = v;
    return 1;
}

int mt_parse_double(const char *s, double *out) {
    if (!*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ') end++;
    if (*end || errno || v != v) return 0;
    *out = v;
    return 1;
}

mt_status mt_tokbuf_run(mt_tokbuf *b, mt_tokenizer *tok, const char *text, size_t len, const char *source) {
    if (!b->t) {
        b->cap = 256;
        b->t = mt_malloc(b->cap * sizeof *b->t);
        if (!b->t) return MT_ERR_NOMEM;
    }
    for (;;) {
        size_t n = 0;
        mt_status s = mt_tokenize(tok, text, len, b->t, b->cap, &n, source);
        if (s == MT_OK) { b->n = n; return MT_OK; }
        if (n <= b->cap) return s;
        mt_clear_error();
        size_t nc = n + 64;
        mt_token *nt = mt_realloc(b->t, nc * sizeof *nt);
        if (!nt) return MT_ERR_NOMEM;
        b->t = nt;
        b->cap = nc;
    }
}

void mt_tokbuf_free(mt_tokbuf *b) {
    free(b->t);
    b->t = NULL;
    b->n = b->cap = 0;
}
