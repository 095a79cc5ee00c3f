// libFuzzer target: arbitrary bytes as a legacy (pre-1.6, non-zip) torch file: magic number,
// protocol and sys_info pickles, the object pickle, the storage key list, then raw storages with
// 8-byte element counts. Must open with every tensor inside its storage or fail with an error,
// never a crash or over-read (exact-size copy under ASan); tensors' first and last rows are read.
// (The corpus holds legacy files; mutations into zip form are fuzzed too.)
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/torchfile.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    mt_torch_file *f = NULL;
    if (mt_torch_open_mem("fuzz-legacy.pt", buf, size, &f) == MT_OK) {
        mt_flat fl = {0};
        if (mt_flatten(mt_torch_root(f), "", &fl) == MT_OK) {
            for (size_t i = 0; i < fl.n; i++) {
                const mt_ckpt_tensor *t = fl.e[i].t;
                int64_t rows = mt_ckpt_tensor_rows(t), cols = mt_ckpt_tensor_cols(t);
                if (rows <= 0 || cols <= 0) continue;
                float tmp[16];
                int64_t n = cols < 16 ? cols : 16;
                mt_ckpt_tensor_row_f32(t, 0, 0, n, tmp);
                mt_ckpt_tensor_row_f32(t, rows - 1, cols - n, n, tmp);
            }
            mt_flat_free(&fl);
        }
        mt_torch_close(f);
    }
    free(buf);
    return 0;
}
