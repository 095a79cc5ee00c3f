#include "core/file.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

void mt_fault_pause(void) {
    static long ms = -1;
    if (ms < 0) {
        const char *v = getenv("MEGATUNE_FAULT_DELAY_MS");
        ms = v && *v ? strtol(v, NULL, 10) : 0;
        if (ms < 0) ms = 0;
    }
    if (ms == 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

mt_status mt_read_all(FILE *f, size_t max_bytes, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    size_t cap = 1 << 16, n = 0;
    char *b = mt_malloc(cap);
    if (!b) return MT_ERR_NOMEM;
    for (;;) {
        if (n + 1 >= cap) {
            if (max_bytes && n > max_bytes) {
                free(b);
                return MT_ERR_FORMAT;
            }
            char *nb = mt_realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return MT_ERR_NOMEM;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(b);
        errno = e;
        return MT_ERR_IO;
    }
    if (max_bytes && n > max_bytes) {
        free(b);
        return MT_ERR_FORMAT;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return MT_OK;
}
