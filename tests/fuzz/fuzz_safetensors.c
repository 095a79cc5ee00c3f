// libFuzzer target: arbitrary bytes as a .safetensors file (8-byte header length, JSON header,
// data section) must open with every tensor inside the data, or fail with an error naming the
// file (checked: out of memory aside, the message holds "fuzz.safetensors"); never a crash, an over-read (exact-size copy under ASan) or a leak. Each tensor's first and
// last rows are read.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/safetensors.h"
#include "ckpt/torchfile.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    mt_safetensors *st = NULL;
    mt_clear_error();
    mt_status s = mt_safetensors_open_mem("fuzz.safetensors", buf, size, &st);
    fuzz_expect_named(s, "fuzz.safetensors");
    if (s == MT_OK) {
        for (size_t i = 0; i < mt_safetensors_count(st); i++) {
            const mt_ckpt_tensor *t = &mt_safetensors_entry(st, i)->t;
            if (mt_ckpt_tensor_check(t, "fuzz") != MT_OK) abort(); // open promised every tensor is valid
            int64_t rows = mt_ckpt_tensor_rows(t), cols = mt_ckpt_tensor_cols(t);
            if (rows <= 0 || cols <= 0) continue;
            float tmp[16];
            int64_t n = cols < 16 ? cols : 16;
            mt_ckpt_tensor_row_f32(t, 0, 0, n, tmp);
            mt_ckpt_tensor_row_f32(t, rows - 1, cols - n, n, tmp);
        }
        mt_safetensors_close(st);
    }
    free(buf);
    return 0;
}
