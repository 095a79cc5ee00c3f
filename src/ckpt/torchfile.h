// PyTorch checkpoint files: reading (zip container with ZIP64 and any folder prefix, and the
// legacy pre-1.6 container) into a pickle value tree whose tensors are views into a read-only
// memory map, and writing the zip container that torch.load reads back.
#ifndef MT_CKPT_TORCHFILE_H
#define MT_CKPT_TORCHFILE_H

#include <stddef.h>
#include <stdint.h>
#include "ckpt/pickle.h"
#include "ckpt/tensor.h"
#include "core/status.h"

// ---- zip container ----
typedef struct {
    char *name;
    uint64_t offset; // of the member's data in the file
    uint64_t size;   // uncompressed == compressed (stored members only are readable)
    int method;      // 0 = stored
    uint32_t crc;    // CRC-32 from the central directory
} mt_zip_entry;

typedef struct {
    mt_zip_entry *entries;
    size_t count;
} mt_zip;

// Parses the central directory of buf[0..len). `what` names the file in errors.
mt_status mt_zip_open(const uint8_t *buf, size_t len, const char *what, mt_zip *out) MT_WARN_UNUSED;
void mt_zip_free(mt_zip *z);
const mt_zip_entry *mt_zip_find(const mt_zip *z, const char *name);

// ---- reading torch files ----
typedef struct mt_torch_file mt_torch_file;

// Opens `path` (memory-mapped, read-only), parses the pickle and resolves + bounds-checks every
// tensor. Never executes anything from the file.
mt_status mt_torch_open(const char *path, mt_torch_file **out) MT_WARN_UNUSED;
// Same over a caller-owned buffer that must outlive the result (e.g. a .nemo member in memory).
mt_status mt_torch_open_mem(const char *what, const uint8_t *buf, size_t len, mt_torch_file **out) MT_WARN_UNUSED;
void mt_torch_close(mt_torch_file *f);
mt_pv *mt_torch_root(const mt_torch_file *f);
int mt_torch_is_legacy(const mt_torch_file *f);
const char *mt_torch_path(const mt_torch_file *f);
uint64_t mt_torch_file_size(const mt_torch_file *f);
// Checks every zip member against its CRC-32 (a read of the whole file; legacy files pass).
mt_status mt_torch_verify_crc(const mt_torch_file *f) MT_WARN_UNUSED;

// Flattens nested dicts into "a.b.c" -> tensor pairs (depth-first, insertion order). Non-tensor
// leaves are skipped. The pointers stay valid while f is open.
typedef struct {
    char *name;
    const mt_ckpt_tensor *t;
} mt_flat_entry;
typedef struct {
    mt_flat_entry *e;
    size_t n, cap;
} mt_flat;
mt_status mt_flatten(const mt_pv *root, const char *prefix, mt_flat *out) MT_WARN_UNUSED;
void mt_flat_free(mt_flat *f);
const mt_ckpt_tensor *mt_flat_find(const mt_flat *f, const char *name);

// ---- writing ----
// A tensor to write: row-major contiguous data of `dtype`.
typedef struct {
    const char *name;
    mt_dtype dtype;
    int ndim; // 0..8
    int64_t shape[MT_CKPT_MAX_DIMS];
    const void *data;
} mt_named_tensor;

// Flat OrderedDict name -> tensor, torch zip format, 64-byte aligned stored members, folder
// prefix = basename(path) without extension. Atomic: path.tmp, fsync, rename, fsync dir.
mt_status mt_torch_save(const char *path, const mt_named_tensor *t, int n) MT_WARN_UNUSED;

// General writer over a small value tree. Build nodes with the helpers below (they live in the
// writer object and are freed with it). Supported: dict (plain or ordered), str, int, float,
// bool, None, tensor, list, tuple.
typedef struct mt_torch_writer mt_torch_writer;
typedef struct mt_wv mt_wv;
mt_torch_writer *mt_torch_writer_new(void);
void mt_torch_writer_free(mt_torch_writer *w);
mt_wv *mt_wv_dict(mt_torch_writer *w, int ordered);
mt_wv *mt_wv_list(mt_torch_writer *w, int tuple);
mt_wv *mt_wv_str(mt_torch_writer *w, const char *s);
mt_wv *mt_wv_int(mt_torch_writer *w, int64_t v);
mt_wv *mt_wv_float(mt_torch_writer *w, double v);
mt_wv *mt_wv_bool(mt_torch_writer *w, int v);
mt_wv *mt_wv_none(mt_torch_writer *w);
// An instance of module.name rebuilt as cls.__new__(cls) + BUILD(state), e.g. argparse.Namespace
// with a dict state. torch.load needs the class to be importable.
mt_wv *mt_wv_object(mt_torch_writer *w, const char *module, const char *name, mt_wv *state);
// `data` is not copied: it must live until mt_torch_writer_save returns.
mt_wv *mt_wv_tensor(mt_torch_writer *w, mt_dtype dtype, int ndim, const int64_t *shape, const void *data);
mt_status mt_wv_set(mt_torch_writer *w, mt_wv *dict, const char *key, mt_wv *value) MT_WARN_UNUSED;
mt_status mt_wv_append(mt_torch_writer *w, mt_wv *list, mt_wv *value) MT_WARN_UNUSED;
// A dict entry under any key value (e.g. torch.optim's int parameter ids).
mt_status mt_wv_set_key(mt_torch_writer *w, mt_wv *dict, mt_wv *key, mt_wv *value) MT_WARN_UNUSED;
mt_status mt_torch_writer_save(mt_torch_writer *w, mt_wv *root, const char *path) MT_WARN_UNUSED;

// Testing aid: write every member, size and offset in ZIP64 form (as files over 4 GiB need),
// so small test files exercise the ZIP64 reader and torch.load's ZIP64 support.
void mt_torch_writer_force_zip64(int on);

// Atomic file helpers shared with the safetensors writer.
mt_status mt_ckpt_atomic_commit(const char *tmp, const char *path) MT_WARN_UNUSED;
uint32_t mt_crc32(uint32_t crc, const void *data, size_t n);

#endif
