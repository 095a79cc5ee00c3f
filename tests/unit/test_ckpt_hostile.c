// Hostile and malformed checkpoint files: pickles naming os.system / builtins.eval / subprocess
// (their payload would create a marker file; it must stay absent), storages shorter than their
// tensors, offsets and sizes past the data, huge counts, bad memo indices, truncations at many
// points and random byte corruption. Each gets a clear error naming the file, or an inert object;
// never a crash (run under ASan in the sanitizer build).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ckpt/safetensors.h"
#include "ckpt/source.h"
#include "ckpt/torchfile.h"
#include "test_util.h"

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

// Opens buf[0..n) from an exact-size heap copy (ASan sees any over-read); returns the status. A
// refusal's message is its own (the last one is cleared first), so the caller can check it.
static mt_status open_copy(const uint8_t *buf, size_t n, int walk) {
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, buf, n);
    mt_torch_file *f = NULL;
    mt_clear_error();
    mt_status s = mt_torch_open_mem("mem.pt", c, n, &f);
    if (s == MT_OK) {
        if (walk) {
            mt_flat fl = {0};
            if (mt_flatten(mt_torch_root(f), "", &fl) == MT_OK) {
                float tmp[64];
                for (size_t i = 0; i < fl.n; i++) {
                    const mt_ckpt_tensor *t = fl.e[i].t;
                    if (mt_ckpt_tensor_rows(t) > 0 && mt_ckpt_tensor_cols(t) > 0) {
                        int64_t k = mt_ckpt_tensor_cols(t) < 64 ? mt_ckpt_tensor_cols(t) : 64;
                        mt_ckpt_tensor_row_f32(t, mt_ckpt_tensor_rows(t) - 1, 0, k, tmp);
                    }
                }
                mt_flat_free(&fl);
            }
        }
        mt_torch_close(f);
    }
    free(c);
    return s;
}

// A refusal of open_copy's "mem.pt" must say which file it is about; counts those that do not.
static void check_named(const char *label, const char *what, int *unnamed) {
    if (strstr(mt_last_error(), "mem.pt")) return;
    if (!(*unnamed)++) fprintf(stderr, "%s: %s: error does not name the file: %s\n", label, what, mt_last_error());
}

static void corrupt_and_truncate(const char *label, const uint8_t *buf, size_t n) {
    int trunc_fail = 0, cuts = 0, unnamed = 0;
    size_t step = n / 97 + 1;
    for (size_t cut = 0; cut < n; cut += step) {
        cuts++;
        mt_status s = open_copy(buf, cut, 1);
        if (s != MT_OK) {
            trunc_fail++;
            check_named(label, "truncated", &unnamed);
        } else {
            fprintf(stderr, "%s: truncated to %zu of %zu bytes still opened\n", label, cut, n);
        }
    }
    CHECK_MSG(trunc_fail == cuts, "%s: %d of %d truncations were rejected", label, trunc_fail, cuts);
    uint8_t *c = malloc(n);
    uint32_t x = 2463534242u;
    int opened = 0, runs = getenv("MEGATUNE_SANITIZED") ? 150 : 400;
    for (int it = 0; it < runs; it++) {
        memcpy(c, buf, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            size_t pos = x % n;
            // bias corruption towards the pickle and the zip directory (the start and the end)
            if (it % 3 == 0) pos = x % (n < 2048 ? n : 2048);
            if (it % 3 == 1) pos = n - 1 - x % (n < 2048 ? n : 2048);
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            c[pos] = (uint8_t)x;
        }
        if (open_copy(c, n, 1) == MT_OK) opened++;
        else check_named(label, "corrupted", &unnamed);
    }
    CHECK_MSG(!unnamed, "%s: %d refusals of truncated or corrupted copies do not name the file", label, unnamed);
    fprintf(stderr, "%s: %d truncations rejected; %d of %d corrupted copies still opened (inert), none crashed\n", label,
            trunc_fail, opened, runs);
    free(c);
}

// cJSON's allocator for the test below: allocation number `json_fail_at` (from 0) fails, the
// others succeed (so that a caller that ignores one failure goes on to write what it has).
static long json_fail_at = -1, json_count;
static void *json_malloc(size_t n) { return json_count++ == json_fail_at ? NULL : malloc(n); }

// mt_safetensors_save when any one allocation of its JSON header fails: out of memory and no file,
// never a file whose header lacks entries (the loop used to stop early and write what it had).
// Past the header's last allocation, the save goes through with every tensor.
static void test_safetensors_header_oom(const char *dir) {
    float w[6] = {1, 2, 3, 4, 5, 6};
    mt_named_tensor t[3] = {{"a", MT_DT_F32, 2, {2, 3}, w}, {"b", MT_DT_F32, 1, {6}, w}, {"c", MT_DT_F32, 0, {0}, w}};
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    char path[1200], tmp[1220];
    snprintf(path, sizeof path, "%s/oom.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int refused = 0, saved = 0;
    for (long k = 0; k < 400 && !saved; k++) {
        unlink(path);
        json_fail_at = k;
        json_count = 0;
        cJSON_Hooks hooks = {json_malloc, free};
        cJSON_InitHooks(&hooks);
        mt_clear_error();
        mt_status s = mt_safetensors_save(path, t, 3, mk, mv, 1);
        cJSON_InitHooks(NULL);
        json_fail_at = -1;
        if (s != MT_OK) {
            refused++;
            CHECK_MSG(s == MT_ERR_NOMEM && strstr(mt_last_error(), path), "allocation %ld failing: status %d: %s", k, s,
                      mt_last_error());
            CHECK_MSG(access(path, F_OK) != 0 && access(tmp, F_OK) != 0, "allocation %ld failing: a file was left", k);
            continue;
        }
        saved = 1;
        mt_safetensors *st = NULL;
        CHECK_OK(mt_safetensors_open(path, &st));
        CHECK_MSG(st && mt_safetensors_count(st) == 3 && json_count <= k, "allocation %ld failing: saved (%zu of 3 tensors) though an allocation failed", k,
                  st ? mt_safetensors_count(st) : (size_t)0);
        mt_safetensors_close(st);
    }
    CHECK_MSG(saved && refused > 5, "%d refusals before the save went through (saved: %d)", refused, saved);
    fprintf(stderr, "safetensors header: each of its %d cJSON allocations failing was refused, no file left\n", refused);
    unlink(path);
}

int main(void) {
    char dir[] = "/tmp/mt_ckpt_hostile_XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("no temp dir");
    char marker[1100], cmd[4096], path[1200];
    snprintf(marker, sizeof marker, "%s/PWNED", dir);
    const char *py = mt_test_env("MEGATUNE_PYTHON", "/usr/bin/python3");
    const char *src = mt_test_env("MEGATUNE_SOURCE_DIR", ".");
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' 2>/dev/null", py);
    int have_torch = system(cmd) == 0;

    // Always: a file we wrote ourselves, truncated and corrupted.
    {
        float w[64];
        for (int i = 0; i < 64; i++) w[i] = (float)i;
        mt_named_tensor t[2] = {{"a", MT_DT_F32, 2, {8, 8}, w}, {"b", MT_DT_F16, 1, {16}, w}};
        snprintf(path, sizeof path, "%s/own.pt", dir);
        CHECK_OK(mt_torch_save(path, t, 2));
        size_t n;
        uint8_t *b = read_all(path, &n);
        CHECK(b && open_copy(b, n, 1) == MT_OK);
        if (b) corrupt_and_truncate("own.pt", b, n);
        free(b);
        snprintf(path, sizeof path, "%s/own.safetensors", dir);
        CHECK_OK(mt_safetensors_save(path, t, 2, NULL, NULL, 0));
        b = read_all(path, &n);
        int rejected = 0;
        for (size_t cut = 0; b && cut < n; cut++) {
            uint8_t *c = malloc(cut ? cut : 1);
            memcpy(c, b, cut);
            mt_safetensors *st = NULL;
            if (mt_safetensors_open_mem("mem.safetensors", c, cut, &st) != MT_OK) rejected++;
            mt_safetensors_close(st);
            free(c);
        }
        CHECK_MSG(b && rejected == (int)n, "safetensors: %d of %zu truncations rejected", rejected, n);
        free(b);
    }
    // A leading zero size makes the element count 0, but the sizes after it still multiply into
    // the strides: found by fuzz_safetensors (a signed overflow under UBSan). An empty tensor
    // whose other sizes are small stays valid.
    {
        struct { const char *shape; int ok; } cases[] = {
            {"[0, 66, 666666666, 66666, 6666664]", 0},
            {"[3, 0, 2000000000000000000]", 0},
            {"[0, 4]", 1},
        };
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            char hdr[256];
            int hl = snprintf(hdr, sizeof hdr, "{\"a\": {\"dtype\": \"F32\", \"shape\": %s, \"data_offsets\": [0, 0]}}",
                              cases[k].shape);
            uint8_t *c = malloc(8 + (size_t)hl);
            for (int i = 0; i < 8; i++) c[i] = (uint8_t)((uint64_t)hl >> (8 * i));
            memcpy(c + 8, hdr, (size_t)hl);
            mt_safetensors *st = NULL;
            mt_status rs = mt_safetensors_open_mem("zero.safetensors", c, 8 + (size_t)hl, &st);
            if (cases[k].ok) CHECK_MSG(rs == MT_OK, "shape %s: %s", cases[k].shape, mt_last_error());
            else
                CHECK_MSG(rs != MT_OK && strstr(mt_last_error(), "zero.safetensors") && strstr(mt_last_error(), "overflows"),
                          "shape %s: %s", cases[k].shape, rs == MT_OK ? "accepted" : mt_last_error());
            mt_safetensors_close(st);
            free(c);
        }
    }
    test_safetensors_header_oom(dir);
    // A garbage file and an empty file through the path API: errors name the file.
    snprintf(path, sizeof path, "%s/empty.pt", dir);
    FILE *ef = fopen(path, "wb");
    fclose(ef);
    mt_torch_file *f = NULL;
    CHECK(mt_torch_open(path, &f) != MT_OK && strstr(mt_last_error(), "empty.pt"));
    CHECK(mt_torch_open("/nonexistent/x.pt", &f) != MT_OK && strstr(mt_last_error(), "/nonexistent/x.pt"));

    if (!have_torch) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
        if (!mt_test_failures) TEST_SKIP("%s cannot import torch: the python-made hostile files did not run (the rest passed)", py);
        TEST_DONE();
    }
    snprintf(cmd, sizeof cmd, "%s %s/tools/make_hostile_ckpt.py %s %s", py, src, dir, marker);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/hostile.txt", dir);
    FILE *lf = fopen(path, "r");
    CHECK(lf != NULL);
    char line[512];
    int ncases = 0;
    while (lf && fgets(line, sizeof line, lf)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        char *expect = tab + 1;
        expect[strcspn(expect, "\n")] = 0;
        snprintf(path, sizeof path, "%s/%s", dir, line);
        mt_status s = mt_torch_open(path, &f);
        ncases++;
        if (!strcmp(expect, "OK")) {
            CHECK_MSG(s == MT_OK, "%s should open: %s", line, mt_last_error());
            if (s == MT_OK) {
                // the payload (make_hostile_ckpt.py: "x", or model.language_model in evil_exec_in_model.pt)
                // must be there, read as an inert object: a reader that dropped it would pass unseen
                const int in_model = !strcmp(line, "evil_exec_in_model.pt");
                const mt_pv *root = mt_torch_root(f);
                const mt_pv *x = in_model ? mt_pv_get(mt_pv_get(root, "model"), "language_model") : mt_pv_get(root, "x");
                if (!strncmp(line, "evil_", 5)) {
                    CHECK_MSG(x && x->kind == MT_PV_OBJECT, "%s: the payload is %s", line,
                              x ? mt_pv_kind_name(x->kind) : "missing");
                    if (in_model)
                        CHECK_MSG(x && x->s && strstr(x->s, "exec"), "%s: payload named %s", line, x && x->s ? x->s : "-");
                    if (x && x->kind == MT_PV_OBJECT) fprintf(stderr, "  %s: the payload is an inert object named %s\n", line, x->s);
                }
                mt_flat fl = {0};
                mt_status fs = mt_flatten(mt_torch_root(f), "", &fl);
                if (!strcmp(line, "deep_dicts.pt")) CHECK(fs != MT_OK && strstr(mt_last_error(), "deeper than 64"));
                mt_flat_free(&fl);
                mt_torch_close(f);
            }
            mt_ckpt_src *cs = NULL;
            if (mt_ckpt_src_open(path, NULL, &cs) == MT_OK) mt_ckpt_src_free(cs);
        } else {
            CHECK_MSG(s != MT_OK, "%s should fail (%s)", line, expect);
            if (s != MT_OK) {
                CHECK_MSG(strstr(mt_last_error(), expect) && strstr(mt_last_error(), line), "%s: error '%s' lacks '%s' or the file name",
                          line, mt_last_error(), expect);
                fprintf(stderr, "  %-26s -> %s\n", line, mt_last_error());
            }
        }
    }
    if (lf) fclose(lf);
    CHECK(ncases >= 20);
    CHECK_MSG(access(marker, F_OK) != 0, "the hostile payload ran: %s exists", marker);

    // Real Megatron files (zip and legacy) truncated and corrupted.
    snprintf(cmd, sizeof cmd, "%s %s/tools/make_megatron_ckpt.py %s/mz --layers 1 --hidden 16 --heads 2 --vocab 50 --seq 8 && "
             "%s %s/tools/make_megatron_ckpt.py %s/ml --legacy --version 0 --layers 1 --hidden 16 --heads 2 --vocab 50 --seq 8",
             py, src, dir, py, src, dir);
    CHECK(system(cmd) == 0);
    const char *files[] = {"mz/release/mp_rank_00/model_optim_rng.pt", "ml/release/mp_rank_00/model_optim_rng.pt"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        size_t n;
        uint8_t *b = read_all(path, &n);
        CHECK(b && open_copy(b, n, 1) == MT_OK);
        if (b) corrupt_and_truncate(files[i], b, n);
        free(b);
    }
    CHECK_MSG(access(marker, F_OK) != 0, "the hostile payload ran: %s exists", marker);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
