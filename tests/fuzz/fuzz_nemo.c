// libFuzzer target: arbitrary bytes as a .nemo archive (tar, gzip or plain) given to the training
// restore (members read through the shared tar reader, model_config.yaml, vocab, label map,
// weights) and to `megatune inspect -v`. Must restore or fail with an error; never a crash, a write
// outside the private temporary folder, or a leak. Checked after every input: the restore unpacks
// into $TMPDIR/megatune-nemo-XXXXXX, and TMPDIR is this target's own empty folder (tmp/ beside
// in.nemo), which must be empty again once the restore failed or its model was freed; the folder of
// in.nemo must hold nothing else (no staging folder or file beside the archive).
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/convert.h"
#include "train/nemo.h"
#include "fuzz_env.h"

static char dir[256], path[300], tmp[300];
static FILE *devnull;

static void cleanup(void) {
    unlink(path);
    rmdir(tmp);
    rmdir(dir);
}

// Names every entry of `d` other than those in `allowed` (NULL-terminated) on stderr; their count.
static int unexpected_entries(const char *d, const char *const *allowed) {
    DIR *h = opendir(d);
    if (!h) abort();
    int bad = 0;
    for (struct dirent *e; (e = readdir(h));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(e->d_name, *a);
        if (!ok) {
            fprintf(stderr, "fuzz_nemo: %s/%s was left behind\n", d, e->d_name);
            bad++;
        }
    }
    closedir(h);
    return bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) {
        if ((size_t)snprintf(dir, sizeof dir, "%s/megatune-fuzz-nemo-XXXXXX", fuzz_tmp_base()) >= sizeof dir) abort();
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/in.nemo", dir);
        snprintf(tmp, sizeof tmp, "%s/tmp", dir);
        if (mkdir(tmp, 0700) != 0) abort();
        // the restore's folder goes here, whatever TMPDIR the fuzzer was started with
        if (setenv("TMPDIR", tmp, 1) != 0) abort();
        atexit(cleanup);
        devnull = fopen("/dev/null", "w");
        if (!devnull) abort();
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    (void)mt_ckpt_inspect(path, devnull, 1);
    mt_nemo *n = NULL;
    if (mt_nemo_restore(path, NULL, 0, &n) == MT_OK) mt_nemo_free(n);
    else if (n) abort(); // a failed restore must not hand back a half-built model
    static const char *const in_tmp[] = {NULL}, *const in_dir[] = {"in.nemo", "tmp", NULL};
    if (unexpected_entries(tmp, in_tmp) || unexpected_entries(dir, in_dir)) abort();
    return 0;
}
