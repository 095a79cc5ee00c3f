// A tensor inside a checkpoint file: a view (dtype, shape, strides, element offset) into bytes
// that the file owns (usually a read-only memory map). Nothing is converted until a caller copies
// rows out as fp32.
#ifndef MT_CKPT_TENSOR_H
#define MT_CKPT_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef enum {
    MT_DT_F32 = 0,
    MT_DT_F16,
    MT_DT_BF16,
    MT_DT_F64,
    MT_DT_I64,
    MT_DT_I32,
    MT_DT_I16,
    MT_DT_I8,
    MT_DT_U8,
    MT_DT_BOOL,
    MT_DT_COUNT
} mt_dtype;

#define MT_CKPT_MAX_DIMS 8
// Most elements one tensor may address (2^34: 64 GiB as fp32). The largest tensor of a
// Megatron-BERT checkpoint holds ~31 M; a view with zero strides can claim far more than its file
// holds, and every reader sizes buffers from the element count.
#define MT_CKPT_MAX_ELEMS ((int64_t)1 << 34)

typedef struct {
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_CKPT_MAX_DIMS];
    int64_t stride[MT_CKPT_MAX_DIMS]; // in elements
    int64_t offset;                   // in elements, from data
    const uint8_t *data;              // start of the storage (NULL until resolved)
    int64_t storage_numel;            // elements available at data
    const char *storage_key;
} mt_ckpt_tensor;

size_t mt_dtype_size(mt_dtype d);
const char *mt_dtype_name(mt_dtype d);          // "float32", "float16", ...
const char *mt_dtype_torch_storage(mt_dtype d); // "FloatStorage", ...
const char *mt_dtype_safetensors(mt_dtype d);   // "F32", "F16", ...
int mt_dtype_from_torch_storage(const char *name, mt_dtype *out); // 1 when known
int mt_dtype_from_safetensors(const char *name, mt_dtype *out);

int64_t mt_ckpt_tensor_numel(const mt_ckpt_tensor *t);
// 1 when row-major contiguous.
int mt_ckpt_tensor_contiguous(const mt_ckpt_tensor *t);
// Checks that every element the view can address lies inside the storage and that the view has at
// most MT_CKPT_MAX_ELEMS elements; the error names `what`.
mt_status mt_ckpt_tensor_check(const mt_ckpt_tensor *t, const char *what) MT_WARN_UNUSED;
// Views the tensor as [rows, cols] (1-D: [n, 1]; 0-D: [1, 1]; >2-D: [shape0, product of the
// rest]) so that dim-0 splits act on rows, and converts elements [col0, col0+n) of `row` to fp32.
void mt_ckpt_tensor_row_f32(const mt_ckpt_tensor *t, int64_t row, int64_t col0, int64_t n, float *dst);
int64_t mt_ckpt_tensor_rows(const mt_ckpt_tensor *t);
int64_t mt_ckpt_tensor_cols(const mt_ckpt_tensor *t);
// Whole tensor to fp32 (row-major), dst holds numel floats.
void mt_ckpt_tensor_to_f32(const mt_ckpt_tensor *t, float *dst);

float mt_half_to_float(uint16_t h);
uint16_t mt_float_to_half(float f);
float mt_bf16_to_float(uint16_t h);
uint16_t mt_float_to_bf16(float f);

#endif
