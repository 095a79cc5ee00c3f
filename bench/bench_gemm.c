// Linear-layer GEMM speed on a training step's shapes: fp32 (opt kernels: OpenBLAS per OpenMP
// thread, and oneDNN's f32 matmul where built with it, the default), bf16 emulated (rounded inputs,
// sgemm) and bf16 hardware (oneDNN), forward and backward: which fp32 library wins on this CPU
// (MEGATUNE_KERNELS=blas picks OpenBLAS). Where built beside Debian's libblis-openmp-dev, BLIS's
// own sgemm (bli_sgemm, OpenMP) on the same products, for comparison only: megatune has no BLIS path.
//   bench_gemm [--tokens 1024] [--hidden 768] [--reps 5] [--blis-arch auto|haswell|zen|zen2|zen3|skx]
// Prints GFLOP/s per shape and path (best of reps).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/bf16.h"

#ifdef BENCH_HAVE_BLIS
#include <dlfcn.h>
#include <omp.h>
#include <blis.h>
// libblis also exports the BLAS and CBLAS names (sgemm_, cblas_sgemm), so it is opened RTLD_LOCAL at
// run time, never linked: linked, it would stand in for OpenBLAS under megatune's own products.
static struct {
    void (*sgemm)(trans_t, trans_t, dim_t, dim_t, dim_t, float *, float *, inc_t, inc_t, float *, inc_t, inc_t,
                  float *, float *, inc_t, inc_t);
    void (*init)(void);
    arch_t (*arch_query_id)(void);
    const char *(*arch_string)(arch_t);
    const char *(*version)(void);
    void (*set_threads)(dim_t);
} blis_fn;
static int blis_open(const char **why) {
    void *h = dlopen(BENCH_BLIS_SO, RTLD_NOW | RTLD_LOCAL);
    if (!h) return *why = dlerror(), 0;
    *(void **)&blis_fn.sgemm = dlsym(h, "bli_sgemm");
    *(void **)&blis_fn.init = dlsym(h, "bli_init");
    *(void **)&blis_fn.arch_query_id = dlsym(h, "bli_arch_query_id");
    *(void **)&blis_fn.arch_string = dlsym(h, "bli_arch_string");
    *(void **)&blis_fn.version = dlsym(h, "bli_info_get_version_str");
    *(void **)&blis_fn.set_threads = dlsym(h, "bli_thread_set_num_threads");
    if (!blis_fn.sgemm || !blis_fn.init || !blis_fn.arch_query_id || !blis_fn.arch_string || !blis_fn.version || !blis_fn.set_threads)
        return *why = "a BLIS function is missing from " BENCH_BLIS_SO, 0;
    blis_fn.init(); // (before the arch query, which with BLIS_ARCH_TYPE set would abort uninitialised)
    return 1;
}
// --blis-arch: BLIS 0.9 reads BLIS_ARCH_TYPE as the number of an arch_t (a name reads as 0, skx), and
// on this Zen 5 its own cpuid choice is its generic C kernels
static int blis_arch_from(const char *name) {
    static const struct { const char *n; arch_t a; } t[] = {{"haswell", BLIS_ARCH_HASWELL}, {"zen", BLIS_ARCH_ZEN},
        {"zen2", BLIS_ARCH_ZEN2}, {"zen3", BLIS_ARCH_ZEN3}, {"skx", BLIS_ARCH_SKX}};
    if (!strcmp(name, "auto")) return -1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(name, t[i].n)) return (int)t[i].a;
    fprintf(stderr, "bench_gemm: --blis-arch %s: use auto, haswell, zen, zen2, zen3 or skx\n", name);
    exit(2);
}
// row-major C (m,n) = beta*C + op(A) op(B) through BLIS's typed API (general strides)
static void blis_gemm(int ta, int tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc) {
    float one = 1.0f;
    blis_fn.sgemm(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &one,
                  (float *)A, lda, 1, (float *)B, ldb, 1, &beta, C, ldc, 1);
}
// the kernels-table contract of linear_fwd / linear_bwd (kernels.h) but for the bias, left out (zero here)
static void blis_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    (void)b;
    blis_gemm(0, 1, N, OUT, IN, inp, IN, w, IN, 0.0f, out, OUT);
}
static void blis_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                            int N, int IN, int OUT) {
    (void)db;
    blis_gemm(0, 0, N, IN, OUT, dout, OUT, w, IN, 0.0f, dinp, IN);
    blis_gemm(1, 0, OUT, IN, N, dout, OUT, inp, IN, 1.0f, dw, IN);
}
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int N = 1024, H = 768, reps = 5, blis_arch = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) H = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
#ifdef BENCH_HAVE_BLIS
        else if (!strcmp(argv[i], "--blis-arch")) blis_arch = blis_arch_from(argv[i + 1]);
#endif
        else {
            fprintf(stderr, "bench_gemm: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const char *why = NULL;
    mt_kernels blis = {0};
    const mt_kernels *tabs[5] = {mt_kernels_opt(), mt_kernels_opt_dnnl(), mt_kernels_bf16emu(), mt_kernels_bf16(), NULL};
    if (!tabs[3]) { mt_bf16_available(&why); printf("bf16 hardware path unavailable: %s\n", why); }
#ifdef BENCH_HAVE_BLIS
    const char *bwhy = NULL;
    if (blis_arch >= 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", blis_arch);
        setenv("BLIS_ARCH_TYPE", v, 1);
    }
    if (blis_open(&bwhy)) {
        blis_fn.set_threads(omp_get_max_threads());
        blis.name = "blis", blis.linear_fwd = blis_linear_fwd, blis.linear_bwd = blis_linear_bwd;
        tabs[4] = &blis;
        printf("blis: BLIS %s, kernels for %s%s, %d threads (comparison only; megatune has no BLIS path)\n",
               blis_fn.version(), blis_fn.arch_string(blis_fn.arch_query_id()), blis_arch >= 0 ? " (--blis-arch)" : "",
               omp_get_max_threads());
    } else {
        printf("blis: not opened: %s\n", bwhy);
    }
#else
    (void)blis, (void)blis_arch;
    printf("blis: not in this build (it needs libblis-openmp-dev, and no sanitizer)\n");
#endif
    int shapes[4][2] = {{H, 3 * H}, {H, H}, {H, 4 * H}, {4 * H, H}};
    size_t mx = (size_t)16 * H * H;
    float *x = malloc((size_t)N * 4 * H * 4), *w = malloc(mx * 4), *y = malloc((size_t)N * 4 * H * 4),
          *dx = malloc((size_t)N * 4 * H * 4), *dw = calloc(mx, 4), *b = calloc(4 * (size_t)H, 4), *db = calloc(4 * (size_t)H, 4);
    for (size_t i = 0; i < (size_t)N * 4 * H; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < mx; i++) w[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    // every path's last forward output and input gradient against the first path's (OpenBLAS), as a
    // share of the largest reference value: a wrong transpose or stride shows as ~1, bf16 as ~1e-3
    float *y_ref = malloc((size_t)N * 4 * H * 4), *dx_ref = malloc((size_t)N * 4 * H * 4);
    printf("%-12s %10s %10s %10s %12s\n", "shape", "path", "fwd GF/s", "bwd GF/s", "diff vs opt");
    for (int s = 0; s < 4; s++) {
        int IN = shapes[s][0], OUT = shapes[s][1];
        for (int t = 0; t < 5; t++) {
            if (!tabs[t]) continue;
            double bf = 1e9, bb = 1e9;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                tabs[t]->linear_fwd(y, x, w, b, N, IN, OUT);
                double t1 = now();
                tabs[t]->linear_bwd(dx, dw, db, y, x, w, N, IN, OUT);
                double t2 = now();
                if (t1 - t0 < bf) bf = t1 - t0;
                if (t2 - t1 < bb) bb = t2 - t1;
            }
            double fl = 2.0 * N * IN * OUT;
            char sh[32];
            snprintf(sh, sizeof sh, "%dx%d", IN, OUT);
            size_t ny = (size_t)N * OUT, nx = (size_t)N * IN;
            if (t == 0) {
                memcpy(y_ref, y, ny * sizeof *y);
                memcpy(dx_ref, dx, nx * sizeof *dx);
            }
            double big = 0, diff = 0;
            for (size_t i = 0; i < ny; i++) {
                big = fmax(big, fabs(y_ref[i]));
                diff = fmax(diff, fabs((double)y[i] - y_ref[i]));
            }
            double bigx = 0, diffx = 0;
            for (size_t i = 0; i < nx; i++) {
                bigx = fmax(bigx, fabs(dx_ref[i]));
                diffx = fmax(diffx, fabs((double)dx[i] - dx_ref[i]));
            }
            printf("%-12s %10s %10.1f %10.1f %12.1e\n", sh, tabs[t]->name, fl / bf / 1e9, 2 * fl / bb / 1e9,
                   fmax(diff / big, diffx / bigx));
        }
    }
    free(x); free(w); free(y); free(dx); free(dw); free(b); free(db); free(y_ref); free(dx_ref);
    return 0;
}
