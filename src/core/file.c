#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

mt_status mt_write_synced(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return mt_fail(MT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            return mt_fail(MT_ERR_IO, "%s: write failed: %s", path, strerror(err));
        }
        p += w;
        len -= (size_t)w;
    }
    // the descriptor is closed whatever fsync says, and the error reported is fsync's or close's
    int err = fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !err) err = errno;
    if (!err) return MT_OK;
    unlink(path);
    return mt_fail(MT_ERR_IO, "%s: fsync/close failed: %s", path, strerror(err));
}

void mt_fsync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : NULL;
    if (slash && !dir) return; // (out of memory: best effort)
    int fd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
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

mt_status mt_path_fmt(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < cap) return MT_OK;
    if (n < 0) {
        if (cap) out[0] = 0;
        return mt_fail(MT_ERR_INVALID, "cannot format a path from '%s'", fmt);
    }
    // The message shows the path's start (the folder the user chose) and its end (the file).
    char head[61], tail[61];
    snprintf(head, sizeof head, "%s", out);
    va_start(ap, fmt);
    char *full = malloc((size_t)n + 1);
    if (full) vsnprintf(full, (size_t)n + 1, fmt, ap);
    va_end(ap);
    snprintf(tail, sizeof tail, "%s", full ? full + (n > 60 ? n - 60 : 0) : "");
    free(full);
    if (cap) out[0] = 0; // never leave a cut path behind: it would name another file
    return mt_fail(MT_ERR_INVALID, "path too long: '%s...%s' is %d bytes, the limit here is %zu; use a shorter folder or name",
                   head, tail, n, cap ? cap - 1 : 0);
}

mt_status mt_path_join(char *out, size_t cap, const char *dir, const char *name) {
    return mt_path_fmt(out, cap, "%s/%s", dir, name);
}
