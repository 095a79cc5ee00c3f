// libFuzzer target: arbitrary bytes as a .nemo archive (tar, gzip or plain) given to the training
// restore (members read through the shared tar reader, model_config.yaml, vocab, label map,
// weights) and to `megatune inspect -v`. Must restore or fail with an error; never a crash, a write
// outside the private temporary folder, or a leak.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/convert.h"
#include "train/nemo.h"
#include "fuzz_env.h"

static char dir[256], path[300];
static FILE *devnull;

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) {
        if ((size_t)snprintf(dir, sizeof dir, "%s/megatune-fuzz-nemo-XXXXXX", fuzz_tmp_base()) >= sizeof dir) abort();
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/in.nemo", dir);
        atexit(cleanup);
        devnull = fopen("/dev/null", "w");
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    (void)mt_ckpt_inspect(path, devnull, 1);
    mt_nemo *n = NULL;
    if (mt_nemo_restore(path, NULL, 0, &n) == MT_OK) mt_nemo_free(n);
    else if (n) abort(); // a failed restore must not hand back a half-built model
    return 0;
}
