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

// cpuid's brand string, trimmed and with repeated spaces folded; "" without one
static void cpuid_brand(char *buf, size_t n) {
    unsigned r[12] = {0};
    buf[0] = '\0';
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) return; // int in clang, unsigned in gcc
    for (unsigned i = 0; i < 3; i++) // leaves 0x80000002..4: 48 bytes of brand string
        __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    char brand[49];
    memcpy(brand, r, 48);
    brand[48] = '\0';
    const char *s = brand;
    while (*s == ' ') s++;
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        if (!(*s == ' ' && (k == 0 || buf[k - 1] == ' '))) buf[k++] = *s;
    while (k > 0 && buf[k - 1] == ' ') k--;
    buf[k] = '\0';
}

// /proc/cpuinfo's first "model name", trimmed; "" where there is none
static void cpuinfo_model(char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(buf, n, "%s", v);
            size_t k = strlen(buf);
            while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == ' ')) buf[--k] = '\0';
            break;
        }
    fclose(f);
}

void mt_cpu_name(char *buf, size_t n) {
    if (n == 0) return;
    // What lscpu shows first; a virtual machine may give cpuid another brand than the one its kernel
    // recorded at boot (seen: "AMD EPYC" and "Oxide Virtual Turin-like Processor"), so both are named
    char model[128], brand[64];
    cpuinfo_model(model, sizeof model);
    cpuid_brand(brand, sizeof brand);
    if (*model && *brand && strcmp(model, brand)) snprintf(buf, n, "%s (cpuid brand: %s)", model, brand);
    else if (*model || *brand) snprintf(buf, n, "%s", *model ? model : brand);
    else snprintf(buf, n, "unknown x86-64 CPU");
}

void mt_cpu_family(char *buf, size_t n) {
    unsigned a, b, c, d;
    char vendor[13] = {0};
    if (n == 0) return;
    if (!__get_cpuid(0, &a, &b, &c, &d) || a < 1) {
        snprintf(buf, n, "unknown");
        return;
    }
    memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    // leaf 1 EAX: family 11:8 (+ extended family 27:20 when it is 15), model 7:4 (+ extended model
    // 19:16 << 4 for families 6 and 15 up), as the kernel's "cpu family" and "model"
    unsigned fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (fam == 0xf) fam += (a >> 20) & 0xff;
    if (fam == 0x6 || fam >= 0xf) model |= ((a >> 16) & 0xf) << 4;
    // Brand strings in virtual machines often say only "AMD EPYC": the core generation decides which
    // kernels a library has for it (OpenBLAS 0.3.21 runs Zen 5 on its Haswell kernels)
    const char *core = NULL;
    if (!strcmp(vendor, "AuthenticAMD")) {
        if (fam == 0x17) core = model < 0x30 ? "Zen/Zen+" : "Zen 2";
        else if (fam == 0x19)
            core = (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) || (model >= 0xa0 && model <= 0xaf)
                       ? "Zen 4"
                       : "Zen 3";
        else if (fam == 0x1a) core = "Zen 5";
    }
    snprintf(buf, n, "%s family %u model %u%s%s", vendor, fam, model, core ? ", " : "", core ? core : "");
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
    if (!strcmp(k->name, "opt-dnnl") && k->attention_fwd != mt_kernels_opt()->attention_fwd)
        snprintf(buf, n, "%s f32 matmul (attention: batched over heads)", dnnl);
    else if (!strcmp(k->name, "opt-dnnl"))
        snprintf(buf, n, "%s f32 matmul (attention: %s sgemm per head, core %s; MEGATUNE_ATTENTION=blas)", dnnl, blas,
                 openblas_get_corename());
    else if (!strcmp(k->name, "bf16"))
        snprintf(buf, n, "%s bf16 matmul, fp32 accumulation", dnnl);
    else if (!strcmp(k->name, "bf16emu"))
        snprintf(buf, n, "%s sgemm on bf16-rounded inputs (emulated bf16, core %s)", blas, openblas_get_corename());
    else
        snprintf(buf, n, "%s sgemm (core %s)", blas, openblas_get_corename());
}

int mt_cpu_threads(void) { return omp_get_max_threads(); }

void mt_cpu_summary(const mt_kernels *k, char *buf, size_t n) {
    char name[192], fam[64], isa[96], kern[192];
    mt_cpu_name(name, sizeof name);
    mt_cpu_family(fam, sizeof fam);
    mt_cpu_isa(isa, sizeof isa);
    mt_kernels_describe(k, kern, sizeof kern);
    // a name that already ends in a parenthesis (the cpuid brand) takes the rest inside it
    size_t len = strlen(name);
    const int inside = len > 0 && name[len - 1] == ')';
    if (inside) name[len - 1] = '\0';
    snprintf(buf, n, "%s%s%s; %s), %d OpenMP threads; products: %s", name, inside ? "; " : " (", fam, isa,
             mt_cpu_threads(), kern);
}
