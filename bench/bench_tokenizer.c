// Tokenizer throughput, in process (no I/O in the timed part): every line of a text file is
// tokenized with offsets, like a data loader does.
//   bench_tokenizer --vocab FILE --file TEXT [--cased] [--repeat N]
// prints "megatune_mb_per_s X bytes B seconds S tokens T lines L".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *vocab = NULL, *file = NULL;
    int lower = 1, repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--cased")) lower = 0;
        else if (!strcmp(argv[i], "--uncased")) lower = 1;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_tokenizer --vocab FILE --file TEXT [--cased] [--repeat N]\n");
            return 2;
        }
    }
    if (!vocab || !file || repeat < 1) {
        fprintf(stderr, "usage: bench_tokenizer --vocab FILE --file TEXT [--cased] [--repeat N]\n");
        return 2;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)sz + 1);
    if (!text || fread(text, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "%s: read error\n", file);
        return 1;
    }
    fclose(f);
    mt_tokenizer_options o;
    mt_tokenizer_options_default(&o, lower);
    o.utf8 = MT_UTF8_REPLACE;
    mt_tokenizer *t = NULL;
    if (mt_tokenizer_create_from_file(vocab, &o, &t) != MT_OK) {
        fprintf(stderr, "error: %s\n", mt_last_error());
        return 1;
    }
    size_t cap = 1 << 16, n = 0, tokens = 0, lines = 0;
    mt_token *out = malloc(cap * sizeof *out);
    double t0 = now();
    for (int r = 0; r < repeat; r++) {
        size_t pos = 0;
        while (pos < (size_t)sz) {
            char *nl = memchr(text + pos, '\n', (size_t)sz - pos);
            size_t end = nl ? (size_t)(nl - text) : (size_t)sz;
            if (mt_tokenize_grow(t, text + pos, end - pos, &out, &cap, &n, file) != MT_OK) {
                fprintf(stderr, "error: %s\n", mt_last_error());
                return 1;
            }
            tokens += n;
            lines++;
            pos = end + 1;
        }
    }
    double sec = now() - t0;
    double bytes = (double)sz * repeat;
    printf("megatune_mb_per_s %.2f bytes %.0f seconds %.3f tokens %zu lines %zu\n", bytes / 1e6 / sec, bytes, sec,
           tokens, lines);
    free(out);
    free(text);
    mt_tokenizer_free(t);
    return 0;
}
