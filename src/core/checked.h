// Overflow-checked arithmetic for numbers read from files (shapes, head counts, sizes, offsets):
// a product that wraps would size a buffer too small and index past it. Each returns 1 and
// stores the result, or returns 0 (nothing stored) when the exact result does not fit.
#ifndef MT_CORE_CHECKED_H
#define MT_CORE_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int mt_mul_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline int mt_add_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline int mt_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

#endif
