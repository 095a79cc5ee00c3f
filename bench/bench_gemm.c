// Linear-layer GEMM speed on a training step's shapes: fp32 (opt kernels: OpenBLAS per OpenMP
// thread, and oneDNN's f32 matmul where built with it, the default), bf16 emulated (rounded inputs,
// sgemm) and bf16 hardware (oneDNN), forward and backward: which fp32 library wins on this CPU
// (MEGATUNE_KERNELS=blas picks OpenBLAS).
//   bench_gemm [--tokens 1024] [--hidden 768] [--reps 5]
// Prints GFLOP/s per shape and path (best of reps).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/bf16.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int N = 1024, H = 768, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) H = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_gemm: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const char *why = NULL;
    const mt_kernels *tabs[4] = {mt_kernels_opt(), mt_kernels_opt_dnnl(), mt_kernels_bf16emu(), mt_kernels_bf16()};
    if (!tabs[3]) { mt_bf16_available(&why); printf("bf16 hardware path unavailable: %s\n", why); }
    int shapes[4][2] = {{H, 3 * H}, {H, H}, {H, 4 * H}, {4 * H, H}};
    size_t mx = (size_t)16 * H * H;
    float *x = malloc((size_t)N * 4 * H * 4), *w = malloc(mx * 4), *y = malloc((size_t)N * 4 * H * 4),
          *dx = malloc((size_t)N * 4 * H * 4), *dw = calloc(mx, 4), *b = calloc(4 * (size_t)H, 4), *db = calloc(4 * (size_t)H, 4);
    for (size_t i = 0; i < (size_t)N * 4 * H; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < mx; i++) w[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    printf("%-12s %10s %10s %10s\n", "shape", "path", "fwd GF/s", "bwd GF/s");
    for (int s = 0; s < 4; s++) {
        int IN = shapes[s][0], OUT = shapes[s][1];
        for (int t = 0; t < 4; t++) {
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
            printf("%-12s %10s %10.1f %10.1f\n", sh, tabs[t]->name, fl / bf / 1e9, 2 * fl / bb / 1e9);
        }
    }
    free(x); free(w); free(y); free(dx); free(dw); free(b); free(db);
    return 0;
}
