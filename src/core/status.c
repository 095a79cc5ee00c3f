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
    size_t lead;  // bytes of the mapping before the block (the header's page)
} mt_alloc_hdr;

// Blocks of 2 MiB and more are 2 MiB-aligned and advised MADV_HUGEPAGE, so that where the kernel's
// transparent huge pages are in "madvise" mode (Debian's default) the weights, moments and
// activations sit in 2 MiB pages: one page fault instead of 512 when a block is first written, and
// far fewer TLB misses when AdamW and the GEMMs stream through gigabytes (2-8% of a training step
// on a Zen 5, README "Speed"). MEGATUNE_HUGE_PAGES=0 turns it off. Two things keep the RSS what 4 KiB pages
// would give: the header sits in a 4 KiB page of its own before the block, so writing it does not
// fault in the block's first 2 MiB (a gradient buffer that is never written stays absent), and the
// mapping ends at the block's last 4 KiB page, so a partial last 2 MiB is never faulted in whole.
// Inside a block, unwritten 4 KiB pages that share a 2 MiB page with written ones do become resident
// (a few MiB of a training run's activation arena).
#define MT_HUGE ((size_t)2 << 20)
static int mt_huge_pages_on(void) { // read at each large allocation (few per run), so a test can flip it
    const char *e = getenv("MEGATUNE_HUGE_PAGES");
    return !(e && !strcmp(e, "0"));
}

// A mapping for `bytes` (a multiple of 64) with the header before it; NULL if mmap fails.
static char *map_block(size_t bytes, int huge, mt_alloc_hdr *hdr) {
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
#ifndef MADV_HUGEPAGE
    huge = 0;
#endif
    if (!huge) {
        hdr->total = bytes + MT_ALLOC_HDR;
        hdr->lead = MT_ALLOC_HDR;
        char *m = mmap(NULL, hdr->total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return m == MAP_FAILED ? NULL : m + MT_ALLOC_HDR;
    }
    const size_t len = pg + (bytes + pg - 1) / pg * pg; // header page + the block to its last page
    char *raw = mmap(NULL, len + MT_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *blk = (char *)(((uintptr_t)raw + pg + MT_HUGE - 1) / MT_HUGE * MT_HUGE), *start = blk - pg;
    if (start > raw) munmap(raw, (size_t)(start - raw));
    munmap(start + len, (size_t)(raw + MT_HUGE - start)); // start < raw + MT_HUGE: never empty
#ifdef MADV_HUGEPAGE
    madvise(blk, len - pg, MADV_HUGEPAGE); // advice only: a kernel without THP ignores it
#endif
    hdr->total = len;
    hdr->lead = pg;
    return blk;
}

void *mt_alloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    if (rounded > SIZE_MAX - 2 * MT_HUGE) {
        mt_fail(MT_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    char *p = NULL;
    mt_alloc_hdr hdr = {0, MT_ALLOC_HDR};
    if (rounded >= MT_ALLOC_MMAP_MIN) {
        if (rounded >= MT_HUGE && mt_huge_pages_on()) p = map_block(rounded, 1, &hdr);
        if (!p) p = map_block(rounded, 0, &hdr);
    } else {
        char *base = aligned_alloc(64, rounded + MT_ALLOC_HDR);
        if (base) {
            p = base + MT_ALLOC_HDR;
            memset(p, 0, rounded);
        }
    }
    if (!p) {
        mt_fail(MT_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memcpy(p - MT_ALLOC_HDR, &hdr, sizeof hdr);
    return p;
}

void mt_free_aligned(void *p) {
    if (!p) return;
    mt_alloc_hdr hdr;
    memcpy(&hdr, (char *)p - MT_ALLOC_HDR, sizeof hdr);
    if (hdr.total) munmap((char *)p - hdr.lead, hdr.total);
    else free((char *)p - MT_ALLOC_HDR);
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
