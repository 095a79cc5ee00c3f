#include "ckpt/tensor.h"
#include "core/checked.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static const struct {
    size_t size;
    const char *name, *storage, *st;
} dtype_info[MT_DT_COUNT] = {
    [MT_DT_F32] = {4, "float32", "FloatStorage", "F32"},
    [MT_DT_F16] = {2, "float16", "HalfStorage", "F16"},
    [MT_DT_BF16] = {2, "bfloat16", "BFloat16Storage", "BF16"},
    [MT_DT_F64] = {8, "float64", "DoubleStorage", "F64"},
    [MT_DT_I64] = {8, "int64", "LongStorage", "I64"},
    [MT_DT_I32] = {4, "int32", "IntStorage", "I32"},
    [MT_DT_I16] = {2, "int16", "ShortStorage", "I16"},
    [MT_DT_I8] = {1, "int8", "CharStorage", "I8"},
    [MT_DT_U8] = {1, "uint8", "ByteStorage", "U8"},
    [MT_DT_BOOL] = {1, "bool", "BoolStorage", "BOOL"},
};

size_t mt_dtype_size(mt_dtype d) { return (unsigned)d < MT_DT_COUNT ? dtype_info[d].size : 0; }
const char *mt_dtype_name(mt_dtype d) { return (unsigned)d < MT_DT_COUNT ? dtype_info[d].name : "?"; }
const char *mt_dtype_torch_storage(mt_dtype d) {
    return (unsigned)d < MT_DT_COUNT ? dtype_info[d].storage : "?";
}
const char *mt_dtype_safetensors(mt_dtype d) { return (unsigned)d < MT_DT_COUNT ? dtype_info[d].st : "?"; }

int mt_dtype_from_torch_storage(const char *name, mt_dtype *out) {
    for (int d = 0; d < MT_DT_COUNT; d++)
        if (!strcmp(name, dtype_info[d].storage)) {
            *out = (mt_dtype)d;
            return 1;
        }
    return 0;
}

int mt_dtype_from_safetensors(const char *name, mt_dtype *out) {
    for (int d = 0; d < MT_DT_COUNT; d++)
        if (!strcmp(name, dtype_info[d].st)) {
            *out = (mt_dtype)d;
            return 1;
        }
    return 0;
}

int64_t mt_ckpt_tensor_numel(const mt_ckpt_tensor *t) {
    // also called on tensors not yet checked: a negative size or a product that wraps gives -1
    int64_t n = 1;
    for (int i = 0; i < t->ndim && i < MT_CKPT_MAX_DIMS; i++)
        if (t->shape[i] < 0 || !mt_mul_i64(n, t->shape[i], &n)) return -1;
    return n;
}

int mt_ckpt_tensor_contiguous(const mt_ckpt_tensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect) return 0;
        if (!mt_mul_i64(expect, t->shape[i], &expect)) return 0;
    }
    return 1;
}

mt_status mt_ckpt_tensor_check(const mt_ckpt_tensor *t, const char *what) {
    if (t->ndim < 0 || t->ndim > MT_CKPT_MAX_DIMS)
        return mt_fail(MT_ERR_FORMAT, "%s: tensor has %d dimensions (at most %d supported)", what, t->ndim,
                       MT_CKPT_MAX_DIMS);
    if (t->offset < 0)
        return mt_fail(MT_ERR_FORMAT, "%s: negative storage offset %lld", what, (long long)t->offset);
    // Largest addressable element, with overflow checks: sizes are bounded by 2^62 so that
    // products of checked values cannot wrap.
    const int64_t lim = (int64_t)1 << 62;
    int64_t numel = 1, last = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || t->shape[i] > lim || t->stride[i] < 0 || t->stride[i] > lim)
            return mt_fail(MT_ERR_FORMAT, "%s: bad size %lld or stride %lld in dimension %d", what,
                           (long long)t->shape[i], (long long)t->stride[i], i);
        if (t->shape[i] == 0) numel = 0;
        else if (numel && t->shape[i] > lim / numel)
            return mt_fail(MT_ERR_FORMAT, "%s: element count overflows", what);
        else numel *= t->shape[i];
    }
    if (numel == 0) return MT_OK;
    // Zero (or overlapping) strides let a tiny storage claim any shape; readers allocate numel floats.
    if (numel > MT_CKPT_MAX_ELEMS)
        return mt_fail(MT_ERR_FORMAT,
                       "%s: tensor claims %lld elements, more than the %lld megatune accepts in one tensor (a "
                       "zero-stride view of a tiny storage?); the file is corrupt: re-export it with torch.save",
                       what, (long long)numel, (long long)MT_CKPT_MAX_ELEMS);
    for (int i = 0; i < t->ndim; i++) {
        int64_t ext = t->shape[i] - 1;
        if (ext && t->stride[i] > (lim - last) / ext)
            return mt_fail(MT_ERR_FORMAT, "%s: strides address beyond 2^62 elements", what);
        last += ext * t->stride[i];
    }
    if (!t->data || last >= t->storage_numel)
        return mt_fail(MT_ERR_FORMAT,
                       "%s: tensor needs storage element %lld but its storage '%s' holds %lld elements "
                       "(truncated file or corrupt offsets)",
                       what, (long long)last, t->storage_key ? t->storage_key : "?",
                       (long long)t->storage_numel);
    return MT_OK;
}

float mt_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mt_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; // may carry into the exponent: correct
    return (uint16_t)(sign | h);
}

float mt_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mt_float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

// fp16 -> fp32 through a 256 KiB table: loading a checkpoint is then bound by memory bandwidth.
static float half_table[65536];
static pthread_once_t half_once = PTHREAD_ONCE_INIT;
static void half_table_init(void) {
    for (uint32_t i = 0; i < 65536; i++) half_table[i] = mt_half_to_float((uint16_t)i);
}

static inline float elem_f32(mt_dtype d, const uint8_t *p) {
    switch (d) {
    case MT_DT_F32: { float v; memcpy(&v, p, 4); return v; }
    case MT_DT_F16: { uint16_t v; memcpy(&v, p, 2); return mt_half_to_float(v); }
    case MT_DT_BF16: { uint16_t v; memcpy(&v, p, 2); return mt_bf16_to_float(v); }
    case MT_DT_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case MT_DT_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case MT_DT_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case MT_DT_I16: { int16_t v; memcpy(&v, p, 2); return (float)v; }
    case MT_DT_I8: return (float)(int8_t)p[0];
    case MT_DT_U8: return (float)p[0];
    case MT_DT_BOOL: return p[0] ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

int64_t mt_ckpt_tensor_rows(const mt_ckpt_tensor *t) { return t->ndim == 0 ? 1 : t->shape[0]; }

int64_t mt_ckpt_tensor_cols(const mt_ckpt_tensor *t) {
    int64_t c = 1;
    for (int i = 1; i < t->ndim && i < MT_CKPT_MAX_DIMS; i++)
        if (t->shape[i] < 0 || !mt_mul_i64(c, t->shape[i], &c)) return -1;
    return c;
}

// Storage element index of (row, col) in the [rows, cols] view.
static int64_t elem_index(const mt_ckpt_tensor *t, int64_t row, int64_t col) {
    int64_t idx = t->offset;
    if (t->ndim == 0) return idx;
    idx += row * t->stride[0];
    for (int i = t->ndim - 1; i >= 1; i--) {
        idx += (col % t->shape[i]) * t->stride[i];
        col /= t->shape[i];
    }
    return idx;
}

void mt_ckpt_tensor_row_f32(const mt_ckpt_tensor *t, int64_t row, int64_t col0, int64_t n, float *dst) {
    const size_t es = mt_dtype_size(t->dtype);
    int inner_unit = t->ndim <= 1 || (t->ndim == 2 && t->stride[1] == 1) ||
                     (t->ndim > 2 && mt_ckpt_tensor_contiguous(t));
    if (inner_unit) {
        const uint8_t *p = t->data + (size_t)elem_index(t, row, col0) * es;
        if (t->dtype == MT_DT_F32) {
            memcpy(dst, p, (size_t)n * 4);
            return;
        }
        if (t->dtype == MT_DT_F16) {
            pthread_once(&half_once, half_table_init);
            for (int64_t j = 0; j < n; j++) {
                uint16_t v;
                memcpy(&v, p + 2 * j, 2);
                dst[j] = half_table[v];
            }
            return;
        }
        for (int64_t j = 0; j < n; j++) dst[j] = elem_f32(t->dtype, p + (size_t)j * es);
        return;
    }
    for (int64_t j = 0; j < n; j++) dst[j] = elem_f32(t->dtype, t->data + (size_t)elem_index(t, row, col0 + j) * es);
}

void mt_ckpt_tensor_to_f32(const mt_ckpt_tensor *t, float *dst) {
    int64_t rows = mt_ckpt_tensor_rows(t), cols = mt_ckpt_tensor_cols(t);
    if (mt_ckpt_tensor_numel(t) == 0) return;
    for (int64_t r = 0; r < rows; r++) mt_ckpt_tensor_row_f32(t, r, 0, cols, dst + r * cols);
}
