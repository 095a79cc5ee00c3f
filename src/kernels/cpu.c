// What a run executes on, for its log and `megatune version`: every speed figure is only
// meaningful beside the CPU and the library that produced it, and the CPU changes from machine to
// machine while the binary does not. Everything here is read at run time (cpuid), never from the
// build flags.
#include "kernels/cpu.h"

#include <cblas.h>
#include <cpuid.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/bf16.h"

#ifdef MEGATUNE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

void mt_cpu_name(char *buf, size_t n) {
    unsigned r[12] = {0};
    if (n == 0) return;
    buf[0] = '\0';
    if (__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) {
        snprintf(buf, n, "unknown x86-64 CPU");
        return;
    }
    for (unsigned i = 0; i < 3; i++) // leaves 0x80000002..4: 48 bytes of brand string
        __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    char brand[49];
    memcpy(brand, r, 48);
    brand[48] = '\0';
    // the brand string is padded with spaces (and NULs) on either side, and some repeat spaces
    const char *s = brand;
    while (*s == ' ') s++;
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        if (!(*s == ' ' && (k == 0 || buf[k - 1] == ' '))) buf[k++] = *s;
    while (k > 0 && buf[k - 1] == ' ') k--;
    buf[k] = '\0';
    if (k == 0) snprintf(buf, n, "unknown x86-64 CPU");
}

void mt_cpu_isa(char *buf, size_t n) {
    __builtin_cpu_init();
    mt_bf16_caps c = mt_bf16_detect();
    snprintf(buf, n, "%s%s%s%s%s%s", __builtin_cpu_supports("avx2") ? "AVX2 " : "",
             __builtin_cpu_supports("fma") ? "FMA " : "", __builtin_cpu_supports("avx512f") ? "AVX-512 " : "",
             c.avx512_bf16 ? "AVX512-BF16 " : "", c.amx_bf16 ? "AMX-BF16 " : "",
             __builtin_cpu_supports("avx2") ? "" : "(no AVX2: the slowest kernels) ");
    size_t k = strlen(buf);
    if (k > 0 && buf[k - 1] == ' ') buf[k - 1] = '\0';
}

void mt_kernels_describe(const mt_kernels *k, char *buf, size_t n) {
    if (!k || !strcmp(k->name, "ref")) {
        snprintf(buf, n, "megatune's reference loops (MEGATUNE_KERNELS=ref: for testing, slow)");
        return;
    }
    char dnnl[96] = "oneDNN";
#ifdef MEGATUNE_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    const char *lim = getenv("ONEDNN_MAX_CPU_ISA");
    if (!lim || !*lim) lim = getenv("DNNL_MAX_CPU_ISA");
    snprintf(dnnl, sizeof dnnl, "oneDNN %d.%d.%d%s%s", v->major, v->minor, v->patch, lim && *lim ? " limited to " : "",
             lim && *lim ? lim : "");
#endif
    char blas[96];
    snprintf(blas, sizeof blas, "%s", openblas_get_config());
    char *sp = strchr(blas, ' '); // "OpenBLAS 0.3.21 DYNAMIC_ARCH ...": name and version only
    if (sp && (sp = strchr(sp + 1, ' '))) *sp = '\0';
    if (!strcmp(k->name, "opt-dnnl"))
        snprintf(buf, n, "%s f32 matmul (attention: %s sgemm per head, core %s)", dnnl, blas, openblas_get_corename());
    else if (!strcmp(k->name, "bf16"))
        snprintf(buf, n, "%s bf16 matmul, fp32 accumulation", dnnl);
    else if (!strcmp(k->name, "bf16emu"))
        snprintf(buf, n, "%s sgemm on bf16-rounded inputs (emulated bf16, core %s)", blas, openblas_get_corename());
    else
        snprintf(buf, n, "%s sgemm (core %s)", blas, openblas_get_corename());
}

int mt_cpu_threads(void) { return omp_get_max_threads(); }

void mt_cpu_summary(const mt_kernels *k, char *buf, size_t n) {
    char name[64], isa[96], kern[192];
    mt_cpu_name(name, sizeof name);
    mt_cpu_isa(isa, sizeof isa);
    mt_kernels_describe(k, kern, sizeof kern);
    snprintf(buf, n, "%s (%s), %d OpenMP threads; products: %s", name, isa, mt_cpu_threads(), kern);
}
