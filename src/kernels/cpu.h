// The CPU and libraries a run executes on, as text for logs and `megatune version`.
#ifndef MT_KERNELS_CPU_H
#define MT_KERNELS_CPU_H
#include <stddef.h>

#include "kernels/kernels.h"

// /proc/cpuinfo's model name ("AMD EPYC 9R14 96-Core Processor"), with cpuid's brand string after it
// where the two differ ("AMD EPYC (cpuid brand: ...)"), either alone where the other is missing;
// "unknown x86-64 CPU" without both.
void mt_cpu_name(char *buf, size_t n);
// Vendor, family and model as /proc/cpuinfo numbers them, with the AMD core generation where known:
// "AuthenticAMD family 26 model 2, Zen 5".
void mt_cpu_family(char *buf, size_t n);
// The vector extensions megatune's kernels use that this CPU has: "AVX2 FMA AVX-512 AVX512-BF16";
// never empty (without AVX2 it says so).
void mt_cpu_isa(char *buf, size_t n);
// The library behind a kernel table's matrix products, with its version ("oneDNN 2.6.3 f32 matmul ...").
void mt_kernels_describe(const mt_kernels *k, char *buf, size_t n);
// The OpenMP threads the kernels run on (OMP_NUM_THREADS, else one per core).
int mt_cpu_threads(void);
// One line: name (family; ISA), OpenMP threads; products: mt_kernels_describe(k).
void mt_cpu_summary(const mt_kernels *k, char *buf, size_t n);

#endif
