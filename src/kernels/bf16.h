// bf16 mixed precision for the linear layers (PyTorch CPU autocast's split: matrix products take
// bf16 inputs and accumulate in fp32; weights, gradients, optimizer state, LayerNorm, softmax and
// the loss stay fp32). Two tables share the opt kernels except for linear_fwd/linear_bwd:
//   hardware: inputs converted to bf16, products by oneDNN's matmul (AVX512-BF16 or AMX-BF16 JIT);
//   emulated: inputs rounded to bf16 values held in fp32, products by sgemm. The product of two
//             bf16 values is exact in fp32, so the two differ only in fp32 summation order.
// The emulated path runs anywhere and is what the parity tests compare with PyTorch's autocast.
#ifndef MT_KERNELS_BF16_H
#define MT_KERNELS_BF16_H
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

// fp32 -> bf16 by round-to-nearest-even (NaN stays NaN), as torch's .to(torch.bfloat16).
static inline uint16_t mt_bf16_from_f32(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t u = v.u;
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float mt_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
void mt_bf16_convert(uint16_t *dst, const float *src, size_t n);
// dst = src rounded to the nearest bf16 value (kept as fp32); dst may equal src.
void mt_bf16_round(float *dst, const float *src, size_t n);

// What this CPU offers, from cpuid at run time (never from the build flags).
typedef struct {
    int avx512_bf16, amx_bf16;
    int have_dnnl; // megatune was built with oneDNN
} mt_bf16_caps;
mt_bf16_caps mt_bf16_detect(void);
// 1 when bf16 products run in hardware here (CPU feature and oneDNN); else 0 and *why (if given)
// says what is missing, for the run's one message.
int mt_bf16_available(const char **why);

// C (M,N) = beta*C + op(A) @ op(B) with bf16-rounded inputs and fp32 accumulation, row-major;
// ta/tb: 0 = as stored, 1 = transposed. `hw` picks the oneDNN path (only when available).
void mt_gemm_bf16(int hw, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);

// How many products wrote their output into, and read an operand from, a bf16 hand-off (kernels.h),
// and how many weights were packed for forward-only passes (mt_kernels_set_packing), since the
// process started: for tests, which must see both run, not only agree.
void mt_bf16_handoff_counts(unsigned long *writes, unsigned long *reads, unsigned long *packed);

// Kernel tables: the hardware one is NULL where mt_bf16_available() is 0.
const mt_kernels *mt_kernels_bf16(void);
const mt_kernels *mt_kernels_bf16emu(void);
#endif
