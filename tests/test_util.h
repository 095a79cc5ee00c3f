// Tiny test harness: CHECK records a failure and goes on; the test's exit code is the verdict
// (0 pass, 1 fail, 77 skipped), which ctest reads.
#ifndef MT_TEST_UTIL_H
#define MT_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int mt_test_failures = 0;

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            mt_test_failures++;                                                   \
        }                                                                         \
    } while (0)

#define CHECK_MSG(cond, ...)                                                      \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            mt_test_failures++;                                                   \
        }                                                                         \
    } while (0)

// A status-returning call that must succeed; prints the library's message otherwise.
#define CHECK_OK(expr)                                                            \
    do {                                                                          \
        mt_status s_ = (expr);                                                    \
        if (s_ != MT_OK) {                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, mt_last_error()); \
            mt_test_failures++;                                                   \
        }                                                                         \
    } while (0)

// A skip after a failed CHECK is a failure: the skip must not hide what already went wrong.
#define TEST_SKIP(...)                                                            \
    do {                                                                          \
        fprintf(stderr, "SKIP: ");                                                \
        fprintf(stderr, __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                      \
        if (mt_test_failures) {                                                   \
            fprintf(stderr, "FAILED: %d check(s) before the skip\n", mt_test_failures); \
            exit(1);                                                              \
        }                                                                         \
        exit(77);                                                                 \
    } while (0)

#define TEST_DONE()                                                               \
    do {                                                                          \
        if (mt_test_failures) {                                                   \
            fprintf(stderr, "FAILED: %d check(s)\n", mt_test_failures);          \
            return 1;                                                             \
        }                                                                         \
        fprintf(stderr, "PASSED\n");                                              \
        return 0;                                                                 \
    } while (0)

// Compares two float tensors; prints max abs and max relative error; fails when any element
// differs by more than atol + rtol*|expected|.
static inline int mt_check_close(const char *what, const float *got, const float *want, size_t n,
                                 double atol, double rtol) {
    double max_abs = 0, max_rel = 0;
    size_t worst = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double r = d / (fabs((double)want[i]) + 1e-12);
        if (!(d <= atol + rtol * fabs((double)want[i]))) bad++;
        if (d > max_abs || d != d) { max_abs = d; worst = i; }
        if (r > max_rel && fabs((double)want[i]) > atol) max_rel = r;
    }
    fprintf(stderr, "  %-70s n=%-9zu max_abs=%.3e max_rel=%.3e %s\n", what, n, max_abs, max_rel,
            bad ? "MISMATCH" : "ok");
    if (bad) {
        fprintf(stderr, "    %zu elements out of tolerance; worst [%zu] got %.8g want %.8g\n", bad, worst,
                (double)got[worst], (double)want[worst]);
        mt_test_failures++;
    }
    return bad == 0;
}

static inline const char *mt_test_env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

// MEGATUNE_REQUIRE_BF16_HW / MEGATUNE_REQUIRE_DNNL set (not "0"): scripts/test.sh sets them where the
// machine has the hardware bf16 path / oneDNN, so a path that is missing there fails instead of a note.
static inline int mt_test_required(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

// The running worst of a set of differences. A NaN sticks: fmax drops it, and a check of
// "worst < tol" would then pass on a NaN result.
static inline double mt_test_worst(double worst, double d) {
    return isnan(worst) || isnan(d) ? NAN : d > worst ? d : worst;
}
// max |a - b| over n floats, NaN-sticky as mt_test_worst (an infinite element gives INFINITY)
static inline double mt_test_maxdiff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = mt_test_worst(m, fabs((double)a[i] - b[i]));
    return m;
}

static inline int mt_test_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// The first 64 KiB of a small text file, NUL-terminated, in a static buffer (overwritten by the next
// call); NULL if it cannot be opened.
static inline char *mt_test_slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

#endif
