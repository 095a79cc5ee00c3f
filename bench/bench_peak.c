// The machine's FMA ceiling, measured: independent FMA chains on every OpenMP thread, AVX-512 where
// the CPU has it (checked at run time), else AVX2; and the bf16 dot-product ceiling (vdpbf16ps,
// 2 products per fp32 lane) where the CPU has AVX512-BF16. Prints "PEAK fp32_gflops=... bf16_gflops=..."
// (bf16 0 when absent) and the CPU model and ISA.   bench_peak [seconds per measurement, default 0.3]
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/bf16.h"
#include "kernels/cpu.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define CHAINS 12 // enough independent accumulators to cover FMA latency x throughput

__attribute__((target("avx512f"))) static float fma512(long iters) {
    __m512 acc[CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static float fma256(long iters) {
    __m256 acc[CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    float out[8];
    __m256 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
__attribute__((target("avx512f,avx512bf16"))) static float dpbf16(long iters) {
    __m512 acc[CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
}

// GFLOP/s over all threads of kernel k (0 fma512, 1 fma256, 2 dpbf16)
static double measure(int k, double secs) {
    const double flops_per_iter[3] = {CHAINS * 16 * 2, CHAINS * 8 * 2, CHAINS * 32 * 2};
    long iters = 1 << 16;
    double best = 0;
    volatile float sink = 0;
    for (;;) { // grow until one run takes long enough, then keep the best of 3
        double t0 = now();
#pragma omp parallel
        {
            float r = k == 0 ? fma512(iters) : k == 1 ? fma256(iters) : dpbf16(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = now() - t0;
        if (dt < secs / 3) {
            iters *= 2;
            continue;
        }
        for (int rep = 0; rep < 3; rep++) {
            t0 = now();
#pragma omp parallel
            {
                float r = k == 0 ? fma512(iters) : k == 1 ? fma256(iters) : dpbf16(iters);
#pragma omp atomic
                sink += r;
            }
            dt = now() - t0;
            double g = flops_per_iter[k] * (double)iters * omp_get_max_threads() / dt / 1e9;
            if (g > best) best = g;
        }
        return best;
    }
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    __builtin_cpu_init();
    char model[192];
    mt_cpu_name(model, sizeof model);
    mt_bf16_caps caps = mt_bf16_detect();
    int avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    // an AVX2-only proxy on a bigger CPU (bench_compare.py --isa avx2): measure and print what the
    // libraries are limited to, after the CPU's own ISA
    const char *lim = getenv("ONEDNN_MAX_CPU_ISA");
    int proxy = lim && !strcmp(lim, "AVX2");
    char fam[64];
    mt_cpu_family(fam, sizeof fam);
    printf("CPU %s (%s), %d threads, ISA:%s%s%s%s%s\n", model, fam, omp_get_max_threads(), avx2 ? " AVX2+FMA" : "",
           avx512 ? " AVX-512" : "", caps.avx512_bf16 ? " AVX512-BF16" : "", caps.amx_bf16 ? " AMX-BF16" : "",
           proxy ? "; limited to AVX2 (OPENBLAS_CORETYPE=Haswell, ONEDNN_MAX_CPU_ISA=AVX2): a proxy, not an "
                   "AVX2-only CPU" : "");
    if (proxy) avx512 = 0, caps.avx512_bf16 = caps.amx_bf16 = 0;
    double fp32 = avx512 ? measure(0, secs) : avx2 ? measure(1, secs) : 0;
    double bf16 = caps.avx512_bf16 ? measure(2, secs) : 0;
    printf("PEAK fp32_gflops=%.1f bf16_gflops=%.1f\n", fp32, bf16);
    return 0;
}
