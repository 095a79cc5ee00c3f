#include "net/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int env_int(const char *name, int def, int lo, int hi) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) {
        mt_warn("%s=%s is not a number from %d to %d; using %d", name, v, lo, hi, def);
        return def;
    }
    return (int)x;
}

void mt_http_opts_default(mt_http_opts *o, const char *label) {
    o->label = label;
    o->retries = env_int("MEGATUNE_DOWNLOAD_RETRIES", 4, 0, 100);
    o->stall_seconds = env_int("MEGATUNE_DOWNLOAD_STALL_SECONDS", 60, 1, 86400);
    o->progress = 1;
}

// One attempt's view of the response. Headers of every response in a redirect chain arrive
// here; a status line starts a new response, so only the last one's fields survive.
typedef struct {
    int fd;
    int64_t have;         // bytes in the file
    int64_t attempt_start; // bytes in the file when this attempt began
    long status;
    char reason[64];      // the status line's words ("Not Found")
    int64_t content_length; // -1: not announced
    int64_t range_first, range_total; // Content-Range: bytes first-last/total; -1 when absent
    int html;
    int decided;          // the body's first byte has been seen
    int64_t expect_total; // -1: unknown
    int fatal;            // 1: do not retry
    char why[512];        // what went wrong, when this side stopped the transfer
    // progress
    const mt_http_opts *o;
    int tty;
    double t0, last_draw;
    int last_decile;
    int64_t last_plain;
} xfer;

static int64_t parse_i64(const char *s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || end == s || v < 0 ? -1 : (int64_t)v;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
    xfer *x = ud;
    size_t len = size * n;
    char line[512];
    size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, buf, l);
    line[l] = 0;
    while (l && (line[l - 1] == '\r' || line[l - 1] == '\n')) line[--l] = 0;
    if (!strncmp(line, "HTTP/", 5)) {
        const char *sp = strchr(line, ' ');
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        const char *r = sp ? strchr(sp + 1, ' ') : NULL;
        snprintf(x->reason, sizeof x->reason, "%s%s", r ? " " : "", r ? r + 1 : "");
        x->content_length = x->range_first = x->range_total = -1;
        x->html = 0;
    } else if (!strncasecmp(line, "Content-Length:", 15)) {
        x->content_length = parse_i64(line + 15 + strspn(line + 15, " \t"));
    } else if (!strncasecmp(line, "Content-Range:", 14)) {
        const char *v = line + 14 + strspn(line + 14, " \t");
        if (!strncasecmp(v, "bytes ", 6)) {
            v += 6;
            x->range_first = *v == '*' ? -1 : parse_i64(v);
            const char *slash = strchr(v, '/');
            x->range_total = slash && slash[1] != '*' ? parse_i64(slash + 1) : -1;
        }
    } else if (!strncasecmp(line, "Content-Type:", 13)) {
        x->html = strstr(line + 13, "text/html") != NULL;
    }
    return len;
}

static void human(double b, char *out, size_t cap) {
    if (b >= 1024.0 * 1024 * 1024) snprintf(out, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024) snprintf(out, cap, "%.1f MiB", b / (1024.0 * 1024));
    else if (b >= 1024.0) snprintf(out, cap, "%.1f KiB", b / 1024.0);
    else snprintf(out, cap, "%.0f B", b);
}

static void draw(xfer *x, int final) {
    if (!x->o->progress) return;
    double t = now_s();
    double el = t - x->t0;
    double rate = el > 0 ? (double)(x->have - x->attempt_start) / el : 0;
    int64_t total = x->expect_total;
    char got[32], tot[32], r[32], left[32] = "";
    human((double)x->have, got, sizeof got);
    human(total > 0 ? (double)total : 0, tot, sizeof tot);
    human(rate, r, sizeof r);
    if (total > 0 && rate > 0 && x->have < total) {
        double s = (double)(total - x->have) / rate;
        snprintf(left, sizeof left, "  %d:%02d left", (int)(s / 60), (int)s % 60);
    }
    if (x->tty) {
        if (!final && t - x->last_draw < 0.2) return;
        x->last_draw = t;
        int w = 24, fill = total > 0 ? (int)((double)x->have / (double)total * w) : 0;
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        if (total > 0)
            fprintf(stderr, "\r%s [%s] %3d%% %s / %s  %s/s%s\033[K", x->o->label, bar,
                    (int)((double)x->have * 100.0 / (double)total), got, tot, r, left);
        else fprintf(stderr, "\r%s %s  %s/s\033[K", x->o->label, got, r);
        if (final) fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    // Not a terminal (a log file, CI): one line per tenth, or per 64 MiB when the size is unknown.
    if (total > 0) {
        int dec = (int)((double)x->have * 10.0 / (double)total);
        if (!final && dec <= x->last_decile) return;
        x->last_decile = dec;
        mt_info("download %s: %s of %s (%d%%), %s/s%s", x->o->label, got, tot,
                (int)((double)x->have * 100.0 / (double)total), r, left);
    } else {
        if (!final && x->have - x->last_plain < (64 << 20)) return;
        x->last_plain = x->have;
        mt_info("download %s: %s, %s/s", x->o->label, got, r);
    }
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    xfer *x = ud;
    if (x->decided) draw(x, 0);
    return 0;
}

// The first body byte of the final response decides what to do with the file.
static int decide(xfer *x) {
    x->decided = 1;
    if (x->status == 206) {
        if (x->range_first != x->have) {
            // A range other than the one asked for: start over rather than splice.
            snprintf(x->why, sizeof x->why, "the server answered a resume request with bytes from %" PRId64
                     " instead of %" PRId64 "; starting over", x->range_first, x->have);
            if (ftruncate(x->fd, 0) == 0) x->have = 0;
            return 0;
        }
        x->expect_total = x->range_total >= 0 ? x->range_total
                          : x->content_length >= 0 ? x->have + x->content_length : -1;
    } else if (x->status == 200) {
        if (x->have > 0) {
            mt_info("download %s: the server does not resume (answered 200 to a range request); starting over",
                    x->o->label);
            if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
                snprintf(x->why, sizeof x->why, "cannot truncate the partial file: %s", strerror(errno));
                x->fatal = 1;
                return 0;
            }
            x->have = x->attempt_start = 0;
        }
        x->expect_total = x->content_length;
    } else if (x->status == 416) {
        return 0; // handled after the transfer
    } else {
        snprintf(x->why, sizeof x->why, "HTTP status %ld%s", x->status, x->reason);
        // 408 Request Timeout, 429 Too Many Requests and 5xx may pass; the rest will not.
        x->fatal = !(x->status == 408 || x->status == 429 || x->status >= 500);
        return 0;
    }
    if (x->html) {
        snprintf(x->why, sizeof x->why, "the server sent an HTML page (Content-Type text/html, HTTP %ld) instead of "
                 "the file: the address may need a login or may have moved", x->status);
        x->fatal = 1;
        return 0;
    }
    if (lseek(x->fd, x->have, SEEK_SET) != x->have) {
        snprintf(x->why, sizeof x->why, "cannot seek in the partial file: %s", strerror(errno));
        x->fatal = 1;
        return 0;
    }
    x->t0 = now_s();
    return 1;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud) {
    xfer *x = ud;
    size_t len = size * n;
    if (!x->decided && !decide(x)) return 0; // CURLE_WRITE_ERROR; x->why says why
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(x->why, sizeof x->why, "cannot write the partial file: %s", strerror(errno));
            x->fatal = 1;
            return 0;
        }
        off += (size_t)w;
        x->have += w;
    }
    return len;
}

static void global_init(void) {
    static int done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

mt_status mt_http_download(const char *url, const char *part_path, const mt_http_opts *o, int64_t *bytes) {
    global_init();
    int fd = open(part_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return mt_fail(MT_ERR_IO, "%s: cannot create: %s", part_path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mt_fail(MT_ERR_IO, "%s: %s", part_path, strerror(e));
    }
    CURL *c = curl_easy_init();
    if (!c) {
        close(fd);
        return mt_fail(MT_ERR_NOMEM, "libcurl could not start a transfer");
    }
    xfer x;
    memset(&x, 0, sizeof x);
    x.fd = fd;
    x.have = st.st_size;
    x.o = o;
    x.tty = isatty(STDERR_FILENO);
    char ua[64], errbuf[CURL_ERROR_SIZE];
    snprintf(ua, sizeof ua, "megatune libcurl/%s", curl_version_info(CURLVERSION_NOW)->version);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)o->stall_seconds);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

    mt_status result = MT_ERR_IO;
    char last[768] = "";
    double backoff = 1.0;
    int restarted = 0;
    for (int attempt = 0; attempt <= o->retries; attempt++) {
        if (attempt > 0) {
            mt_warn("download %s: %s; retrying in %.0f s (attempt %d of %d)", o->label, last, backoff, attempt + 1,
                    o->retries + 1);
            struct timespec ts = {(time_t)backoff, 0};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
            backoff = backoff * 2 > 30 ? 30 : backoff * 2;
        }
        x.attempt_start = x.have;
        x.decided = 0;
        x.status = 0;
        x.fatal = 0;
        x.why[0] = 0;
        x.expect_total = -1;
        x.last_decile = -1;
        x.last_plain = 0;
        x.t0 = x.last_draw = now_s();
        errbuf[0] = 0;
        char range[48];
        snprintf(range, sizeof range, "%" PRId64 "-", x.have);
        curl_easy_setopt(c, CURLOPT_RANGE, x.have > 0 ? range : NULL);
        if (x.have > 0) mt_info("download %s: resuming after %" PRId64 " bytes", o->label, x.have);
        CURLcode rc = curl_easy_perform(c);
        if (x.decided && x.tty && o->progress) draw(&x, 1);
        if (x.status == 416) { // Range Not Satisfiable: the partial file is whole, or is not this file
            if (x.range_total == x.have && x.have > 0) {
                result = MT_OK;
                break;
            }
            snprintf(last, sizeof last, "%s: the server refused to resume (HTTP 416); starting over", url);
            if (ftruncate(fd, 0) == 0) x.have = 0;
            if (!restarted++) attempt--; // a stale partial file is not the server's failure
            continue;
        }
        if (rc == CURLE_OK && !x.decided) {
            // No body at all: an empty 200/206, or a status without one.
            if (x.status == 200 || x.status == 206) {
                if (!decide(&x)) { rc = CURLE_WRITE_ERROR; }
            } else {
                snprintf(x.why, sizeof x.why, "HTTP status %ld%s", x.status, x.reason);
                x.fatal = !(x.status == 408 || x.status == 429 || x.status >= 500);
                rc = CURLE_WRITE_ERROR;
            }
        }
        if (rc == CURLE_OK) {
            if (x.expect_total >= 0 && x.have != x.expect_total) {
                snprintf(last, sizeof last, "%s: the server announced %" PRId64 " bytes but the file has %" PRId64,
                         url, x.expect_total, x.have);
                if (x.have > x.expect_total && ftruncate(fd, 0) == 0) x.have = 0;
                continue;
            }
            if (x.expect_total < 0)
                mt_warn("download %s: the server announced no size; %" PRId64 " bytes received (the contents are "
                        "checked next)", o->label, x.have);
            result = MT_OK;
            break;
        }
        if (rc == CURLE_WRITE_ERROR && x.why[0]) {
            snprintf(last, sizeof last, "%s: %s", url, x.why);
            if (x.fatal) break;
        } else if (rc == CURLE_PARTIAL_FILE) {
            snprintf(last, sizeof last, "%s: the connection ended after %" PRId64 " of the %" PRId64
                     " bytes the server announced", url, x.have, x.expect_total);
        } else {
            snprintf(last, sizeof last, "%s: %s (%s)", url, curl_easy_strerror(rc), errbuf[0] ? errbuf : "no detail");
        }
    }
    curl_easy_cleanup(c);
    int fe = 0;
    if (result == MT_OK && fsync(fd) != 0) fe = errno;
    if (close(fd) != 0 && !fe) fe = errno;
    if (result != MT_OK) return mt_fail(MT_ERR_IO, "%s", last);
    if (fe) return mt_fail(MT_ERR_IO, "%s: cannot write: %s", part_path, strerror(fe));
    if (bytes) *bytes = x.have;
    return MT_OK;
}
