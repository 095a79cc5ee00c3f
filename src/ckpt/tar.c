#include "ckpt/tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

mt_status mt_tar_open(const char *path, struct archive **out) {
    *out = NULL;
    struct archive *a = archive_read_new();
    if (!a) return mt_fail(MT_ERR_NOMEM, "%s: out of memory", path);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK) {
        *out = a;
        return MT_OK;
    }
    FILE *probe = fopen(path, "rb");
    unsigned char magic[2] = {0, 0};
    if (probe) {
        if (fread(magic, 1, 2, probe) != 2) magic[0] = 0;
        fclose(probe);
    }
    mt_status st;
    if (magic[0] == 'P' && magic[1] == 'K')
        st = mt_fail(MT_ERR_FORMAT, "%s is a torch/zip file (a training .ckpt?), not a .nemo: resume training "
                     "from a .ckpt with trainer.resume_from_checkpoint=%s", path, path);
    else
        st = mt_fail(MT_ERR_FORMAT, "%s: not a .nemo (gzip tar): %s", path, archive_error_string(a));
    archive_read_free(a);
    return st;
}

int64_t mt_tar_member_limit(const char *name) {
    return ends(name, ".ckpt") || ends(name, ".pt") || ends(name, ".pth") ? MT_TAR_WEIGHTS_MAX : MT_TAR_SMALL_MAX;
}

mt_status mt_tar_read_member(struct archive *a, const char *path, const char *name, int64_t size, char **out,
                             size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    const int64_t limit = mt_tar_member_limit(name);
    if (size > limit)
        return mt_fail(MT_ERR_FORMAT, "%s: member '%s' is larger than %lld MiB", path, name, (long long)(limit >> 20));
    size_t cap = size >= 0 && size < (1 << 26) ? (size_t)size + 1 : 1 << 16, len = 0;
    char *buf = mt_malloc(cap);
    if (!buf) return MT_ERR_NOMEM;
    mt_status st = MT_OK;
    for (;;) {
        if (len == cap) {
            if (cap > (size_t)limit) {
                st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is larger than %lld MiB", path, name, (long long)(limit >> 20));
                break;
            }
            char *nb = mt_realloc(buf, cap * 2);
            if (!nb) { st = MT_ERR_NOMEM; break; }
            buf = nb;
            cap *= 2;
        }
        la_ssize_t got = archive_read_data(a, buf + len, cap - len);
        if (got < 0) {
            st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is corrupt or truncated: %s", path, name, archive_error_string(a));
            break;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    if (st == MT_OK && size >= 0 && (int64_t)len != size)
        st = mt_fail(MT_ERR_FORMAT, "%s: member '%s' is truncated (%zu of %lld bytes)", path, name, len, (long long)size);
    if (st == MT_OK) { // members are also read as text (YAML, JSON): keep a NUL after the bytes
        char *nb = len < cap ? buf : mt_realloc(buf, len + 1);
        if (!nb) st = MT_ERR_NOMEM;
        else { buf = nb; buf[len] = 0; }
    }
    if (st != MT_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = len;
    return MT_OK;
}
