// Shared by the task fuzz targets: a scratch folder removed at exit, a whole-file writer, and a
// tokenizer over a tiny vocab (strict UTF-8, uncased).
#ifndef MT_FUZZ_TASK_UTIL_H
#define MT_FUZZ_TASK_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text/tokenizer.h"
#include "fuzz_env.h"

static mt_tokenizer *tok;
static char dir[256];

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
}

static void fuzz_cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

// `name` tells the scratch folders of different targets apart (on a tmpfs: fuzz_env.h). The
// folder, the vocab and the tokenizer are made once; each input only writes its own files.
static void fuzz_setup(const char *name, const char *vocab, size_t vocab_len) {
    if ((size_t)snprintf(dir, sizeof dir, "%s/megatune-fuzz-%s-XXXXXX", fuzz_tmp_base(), name) >= sizeof dir) abort();
    if (!mkdtemp(dir)) abort();
    atexit(fuzz_cleanup);
    mt_vocab *v = NULL;
    if (mt_vocab_load_buffer(vocab, vocab_len, "fuzz-vocab", &v) != MT_OK) abort();
    mt_tokenizer_options o;
    mt_tokenizer_options_default(&o, 1);
    o.utf8 = MT_UTF8_STRICT;
    if (mt_tokenizer_create(v, &o, &tok) != MT_OK) abort();
}

#endif
