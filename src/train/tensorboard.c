#include "train/tensorboard.h"
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct mt_tb_writer {
    FILE *f;
    char *path;
};

uint32_t mt_crc32c(uint32_t crc, const void *data, size_t n) {
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t mt_tfrecord_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

// --- protobuf encoding into a small fixed buffer ---
typedef struct {
    uint8_t b[1024];
    size_t n;
    int overflow;
} pb;

static void pb_byte(pb *p, uint8_t v) {
    if (p->n < sizeof p->b) p->b[p->n++] = v;
    else p->overflow = 1;
}
static void pb_varint(pb *p, uint64_t v) {
    while (v >= 0x80) {
        pb_byte(p, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pb_byte(p, (uint8_t)v);
}
static void pb_bytes(pb *p, const void *d, size_t n) {
    for (size_t i = 0; i < n; i++) pb_byte(p, ((const uint8_t *)d)[i]);
}
static void pb_fixed64(pb *p, uint64_t v) {
    for (int i = 0; i < 8; i++) pb_byte(p, (uint8_t)(v >> (8 * i)));
}
static void pb_fixed32(pb *p, uint32_t v) {
    for (int i = 0; i < 4; i++) pb_byte(p, (uint8_t)(v >> (8 * i)));
}
static void pb_double(pb *p, int field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    pb_varint(p, (uint64_t)field << 3 | 1);
    pb_fixed64(p, u);
}
static void pb_len(pb *p, int field, const void *d, size_t n) {
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, n);
    pb_bytes(p, d, n);
}

static mt_status write_record(mt_tb_writer *w, const pb *ev) {
    if (ev->overflow) return mt_fail(MT_ERR_INVALID, "%s: event too large (tag too long?)", w->path);
    uint8_t hdr[12];
    uint64_t len = ev->n;
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)(len >> (8 * i));
    uint32_t c1 = mt_tfrecord_mask(mt_crc32c(0, hdr, 8));
    for (int i = 0; i < 4; i++) hdr[8 + i] = (uint8_t)(c1 >> (8 * i));
    uint32_t c2 = mt_tfrecord_mask(mt_crc32c(0, ev->b, ev->n));
    uint8_t tail[4];
    for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(c2 >> (8 * i));
    if (fwrite(hdr, 1, 12, w->f) != 12 || fwrite(ev->b, 1, ev->n, w->f) != ev->n || fwrite(tail, 1, 4, w->f) != 4 ||
        fflush(w->f) != 0)
        return mt_fail(MT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return MT_OK;
}

mt_status mt_tb_open(const char *dir, mt_tb_writer **out, char **path_out) {
    *out = NULL;
    if (path_out) *path_out = NULL;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    char path[4096];
    FILE *f = NULL;
    for (int k = 0; k < 1000 && !f; k++) {
        MT_TRY(mt_path_fmt(path, sizeof path, "%s/events.out.tfevents.%010lld.%s.%d.%d", dir, (long long)time(NULL),
                           host, (int)getpid(), k));
        struct stat st;
        if (stat(path, &st) == 0) continue;
        f = fopen(path, "wb");
        if (!f) return mt_fail(MT_ERR_IO, "%s: cannot create the TensorBoard file: %s", path, strerror(errno));
    }
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot find a free TensorBoard file name", dir);
    mt_tb_writer *w = mt_calloc(1, sizeof *w);
    if (!w) { fclose(f); return MT_ERR_NOMEM; }
    w->f = f;
    w->path = mt_strdup(path);
    if (!w->path) { mt_tb_close(w); return MT_ERR_NOMEM; }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pb ev = {{0}, 0, 0};
    pb_double(&ev, 1, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    pb_len(&ev, 3, "brain.Event:2", 13);
    mt_status st = write_record(w, &ev);
    if (st != MT_OK) { mt_tb_close(w); return st; }
    if (path_out) {
        *path_out = mt_strdup(path);
        if (!*path_out) { mt_tb_close(w); return MT_ERR_NOMEM; }
    }
    *out = w;
    return MT_OK;
}

mt_status mt_tb_scalar(mt_tb_writer *w, const char *tag, float value, int64_t step, double wall_time) {
    // Summary.Value { tag = 1; simple_value = 2 (float) }
    pb val = {{0}, 0, 0};
    pb_len(&val, 1, tag, strlen(tag));
    uint32_t u;
    memcpy(&u, &value, 4);
    pb_varint(&val, 2u << 3 | 5);
    pb_fixed32(&val, u);
    // Summary { repeated Value value = 1 }
    pb sum = {{0}, 0, 0};
    pb_len(&sum, 1, val.b, val.n);
    // Event { wall_time = 1; step = 2; summary = 5 }
    pb ev = {{0}, 0, 0};
    pb_double(&ev, 1, wall_time);
    pb_varint(&ev, 2u << 3 | 0);
    pb_varint(&ev, (uint64_t)step);
    pb_len(&ev, 5, sum.b, sum.n);
    if (val.overflow || sum.overflow) ev.overflow = 1;
    return write_record(w, &ev);
}

mt_status mt_tb_close(mt_tb_writer *w) {
    if (!w) return MT_OK;
    mt_status st = MT_OK;
    if (w->f) {
        if (fsync(fileno(w->f)) != 0 && errno != EINVAL) st = mt_fail(MT_ERR_IO, "%s: fsync failed", w->path);
        if (fclose(w->f) != 0 && st == MT_OK) st = mt_fail(MT_ERR_IO, "%s: close failed", w->path);
    }
    free(w->path);
    free(w);
    return st;
}
