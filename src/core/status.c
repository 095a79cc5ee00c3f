#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdint.h>
#include <unistd.h>

static _Thread_local char mt_error_buf[2048];

mt_status mt_fail(mt_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mt_error_buf, sizeof mt_error_buf, fmt, ap);
    va_end(ap);
    return code;
}

mt_status mt_fail_context(mt_status code, const char *fmt, ...) {
    char prefix[1024], old[sizeof mt_error_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, mt_error_buf, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof mt_error_buf - 3) n = sizeof mt_error_buf - 3;
    memcpy(mt_error_buf, prefix, n);
    memcpy(mt_error_buf + n, ": ", 2);
    size_t room = sizeof mt_error_buf - n - 3;
    size_t m = strnlen(old, room);
    memcpy(mt_error_buf + n + 2, old, m);
    mt_error_buf[n + 2 + m] = 0;
    return code;
}

const char *mt_last_error(void) { return mt_error_buf[0] ? mt_error_buf : "unknown error"; }
void mt_clear_error(void) { mt_error_buf[0] = 0; }

const char *mt_status_name(mt_status s) {
    switch (s) {
    case MT_OK: return "ok";
    case MT_ERR_INVALID: return "invalid argument";
    case MT_ERR_IO: return "I/O error";
    case MT_ERR_FORMAT: return "malformed input";
    case MT_ERR_NOMEM: return "out of memory";
    case MT_ERR_UNSUPPORTED: return "unsupported";
    case MT_ERR_NOT_FOUND: return "not found";
    case MT_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

void *mt_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) mt_fail(MT_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *mt_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) mt_fail(MT_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *mt_realloc(void *old, size_t bytes) {
    void *p = realloc(old, bytes ? bytes : 1);
    if (!p) mt_fail(MT_ERR_NOMEM, "out of memory reallocating to %zu bytes", bytes);
    return p;
}

// Every block carries a 64-byte header saying how it was obtained. Large blocks (model weights,
// gradients, optimizer moments) come from mmap: the kernel's pages are already zero and become
// resident only when touched, so memory that a run never writes (the gradients and moments of a
// prediction-only model) costs no RSS, and no memset pass touches it all up front.
#define MT_ALLOC_HDR 64
#if defined(__SANITIZE_ADDRESS__)
#define MT_ALLOC_MMAP_MIN SIZE_MAX // AddressSanitizer watches heap blocks only: keep them all there
#else
#define MT_ALLOC_MMAP_MIN ((size_t)1 << 20)
#endif
typedef struct {
    size_t total; // bytes mapped (mmap) or 0 (aligned_alloc)
} mt_alloc_hdr;

void *mt_alloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    if (rounded > SIZE_MAX - 2 * MT_ALLOC_HDR) {
        mt_fail(MT_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    char *base;
    size_t total = 0;
    if (rounded >= MT_ALLOC_MMAP_MIN) {
        total = rounded + MT_ALLOC_HDR;
        base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) base = NULL;
    } else {
        base = aligned_alloc(64, rounded + MT_ALLOC_HDR);
        if (base) memset(base + MT_ALLOC_HDR, 0, rounded);
    }
    if (!base) {
        mt_fail(MT_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    ((mt_alloc_hdr *)base)->total = total;
    return base + MT_ALLOC_HDR;
}

void mt_free_aligned(void *p) {
    if (!p) return;
    char *base = (char *)p - MT_ALLOC_HDR;
    size_t total = ((mt_alloc_hdr *)base)->total;
    if (total) munmap(base, total);
    else free(base);
}

char *mt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = mt_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

size_t mt_resident_bytes(const void *p, size_t bytes) {
    if (!p || !bytes) return 0;
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = (uintptr_t)p / pg * pg, hi = ((uintptr_t)p + bytes + pg - 1) / pg * pg;
    const size_t pages = (size_t)((hi - lo) / pg);
    unsigned char *vec = malloc(pages);
    if (!vec) return 0;
    size_t n = 0;
    if (mincore((void *)lo, hi - lo, vec) == 0)
        for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    free(vec);
    n *= pg;
    return n < bytes ? n : bytes;
}
