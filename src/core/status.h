// Status codes and the one error message that travels up to main().
// Library functions return mt_status; on failure they call mt_fail() once, at the
// place that knows the file, the position and the fix, and callers only pass it on.
#ifndef MT_CORE_STATUS_H
#define MT_CORE_STATUS_H

#include <stddef.h>

typedef enum {
    MT_OK = 0,
    MT_ERR_INVALID = 1,     // bad argument, shape or configuration
    MT_ERR_IO = 2,          // cannot open/read/write a file
    MT_ERR_FORMAT = 3,      // a file's contents are malformed
    MT_ERR_NOMEM = 4,       // allocation failed
    MT_ERR_UNSUPPORTED = 5, // valid input we do not handle
    MT_ERR_NOT_FOUND = 6,   // a named thing (file, key, token) is absent
    MT_ERR_INTERRUPTED = 7, // stopped by a signal
} mt_status;

#if defined(__GNUC__)
#define MT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MT_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define MT_PRINTF(a, b)
#define MT_WARN_UNUSED
#endif

// Record the error message (thread-local) and return `code`, so call sites read
//   if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
mt_status mt_fail(mt_status code, const char *fmt, ...) MT_PRINTF(2, 3);
// Prepend context to the current message ("while loading X: <old message>").
mt_status mt_fail_context(mt_status code, const char *fmt, ...) MT_PRINTF(2, 3);
const char *mt_last_error(void);
void mt_clear_error(void);
const char *mt_status_name(mt_status s);

#define MT_TRY(expr)                      \
    do {                                  \
        mt_status mt_try_s_ = (expr);     \
        if (mt_try_s_ != MT_OK)           \
            return mt_try_s_;             \
    } while (0)

// Checked allocation helpers: on failure they set the error message and return NULL.
void *mt_malloc(size_t bytes);
void *mt_calloc(size_t n, size_t size);
void *mt_realloc(void *p, size_t bytes);
// 64-byte aligned, zeroed; free with mt_free_aligned.
void *mt_alloc_aligned(size_t bytes);
void mt_free_aligned(void *p);
// Bytes of [p, p + bytes) in physical memory now (mincore, whole pages; 0 where unknown): a big
// mt_alloc_aligned span is untouched zero pages until first written, so this tells what a run uses.
size_t mt_resident_bytes(const void *p, size_t bytes);
char *mt_strdup(const char *s);

#endif
