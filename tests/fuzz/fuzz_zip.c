// libFuzzer target: arbitrary bytes as a torch checkpoint (zip container with ZIP64 and any
// prefix, or the legacy container) and as a safetensors file must open with every tensor inside
// its storage, or fail with an error naming the file (checked: out of memory aside, the message
// holds "fuzz.pt" / "fuzz.safetensors"); every resolved tensor's last row is read to prove it.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/safetensors.h"
#include "ckpt/torchfile.h"
#include "fuzz_env.h"

static void touch(const mt_ckpt_tensor *t) {
    float tmp[32];
    int64_t rows = mt_ckpt_tensor_rows(t), cols = mt_ckpt_tensor_cols(t);
    if (rows <= 0 || cols <= 0) return;
    int64_t n = cols < 32 ? cols : 32;
    mt_ckpt_tensor_row_f32(t, rows - 1, cols - n, n, tmp);
    mt_ckpt_tensor_row_f32(t, 0, 0, n, tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // exact-size copy so any over-read is caught
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    mt_torch_file *f = NULL;
    mt_clear_error();
    mt_status s = mt_torch_open_mem("fuzz.pt", buf, size, &f);
    fuzz_expect_named(s, "fuzz.pt");
    if (s == MT_OK) {
        mt_flat fl = {0};
        if (mt_flatten(mt_torch_root(f), "", &fl) == MT_OK) {
            for (size_t i = 0; i < fl.n; i++) touch(fl.e[i].t);
            mt_flat_free(&fl);
        }
        mt_torch_close(f);
    }
    mt_safetensors *st = NULL;
    mt_clear_error();
    s = mt_safetensors_open_mem("fuzz.safetensors", buf, size, &st);
    fuzz_expect_named(s, "fuzz.safetensors");
    if (s == MT_OK) {
        for (size_t i = 0; i < mt_safetensors_count(st); i++) touch(&mt_safetensors_entry(st, i)->t);
        mt_safetensors_close(st);
    }
    free(buf);
    return 0;
}
