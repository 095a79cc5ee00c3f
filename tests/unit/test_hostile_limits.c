// Hostile input beyond crashes: what a file may make megatune allocate or touch.
//  - a pickle of two-byte list opcodes is refused by the memory budget (64 MiB + 8 B per input
//    byte) with a clear message, and the process grows by about the budget, not by ~10 GB;
//  - a bit flipped in a zip member's data is caught by the CRC-32 check, which names the member;
//  - a path that does not fit its buffer is an error naming the path, never a cut path;
//  - sizes read from files whose products would wrap are refused;
//  - .nemo members other than weights are capped at 256 MiB by the one tar reader that both
//    `inspect -v` and the training restore use; a restore also caps the members' totals and count,
//    skips .pt/.ckpt/.pth members it never loads, and bounds a restored head's classes;
//  - a zero-stride tensor claiming 2^62 elements in a tiny .pt is refused (it sized a buffer that
//    wrapped to 0 bytes in `convert`), and so is a --vocab-size whose rows would overflow the buffer;
//  - fsync/rename failures (injected by the fsync/rename/renameat2 defined below) close what was
//    opened, and a `convert` into an existing folder keeps the previous ranks and tracker whole.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include <archive.h>
#include <archive_entry.h>

#include "ckpt/config_file.h"
#include "ckpt/convert.h"
#include "ckpt/pickle.h"
#include "ckpt/tar.h"
#include "ckpt/torchfile.h"
#include "core/checked.h"
#include "core/file.h"
#include "model/config.h"
#include "tasks/data_tools.h"
#include "tasks/task.h"
#include "train/exp_manager.h"
#include "train/nemo.h"
#include "test_util.h"

static char dir[64];

static long maxrss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static int sanitized(void) {
    const char *s = getenv("MEGATUNE_SANITIZED");
    return s && *s && strcmp(s, "0");
}

static void test_pickle_budget(void) {
    // ']' then (']' 'a')*: one new list per two bytes, each appended to the first.
    size_t mb = sanitized() ? 32 : 128, n = mb << 20;
    uint8_t *buf = malloc(n);
    buf[0] = ']';
    for (size_t i = 1; i + 1 < n; i += 2) buf[i] = ']', buf[i + 1] = 'a';
    buf[n - 1] = '.';
    long before = maxrss_mb();
    mt_pickle *pk = mt_pickle_new();
    mt_pv *root = NULL;
    mt_status s = mt_pickle_parse(pk, buf, n, 0, "lists.pkl", &root, NULL);
    long grew = maxrss_mb() - before;
    mt_pickle_free(pk);
    free(buf);
    CHECK_MSG(s == MT_ERR_FORMAT, "status %d: %s", s, mt_last_error());
    CHECK_MSG(strstr(mt_last_error(), "lists.pkl") && strstr(mt_last_error(), "MiB of memory"), "%s", mt_last_error());
    // the budget for the input, plus allocator slack (ASan's redzones double it)
    long limit = (long)(64 + 8 * mb) * (sanitized() ? 3 : 1) + 256;
    CHECK_MSG(grew < limit, "a %zu MiB pickle grew the process by %ld MiB (limit %ld)", mb, grew, limit);
    fprintf(stderr, "pickle budget: %zu MiB of list opcodes refused after +%ld MiB RSS: %s\n", mb, grew, mt_last_error());

    // a real checkpoint's pickle stays far inside the budget: a dict of 20000 str->int items
    size_t cap = 1 << 20, k = 0;
    uint8_t *p = malloc(cap);
    p[k++] = 0x80, p[k++] = 2, p[k++] = '}', p[k++] = '(';
    for (int i = 0; i < 20000; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", i);
        p[k++] = 'X', p[k++] = (uint8_t)kl, p[k++] = 0, p[k++] = 0, p[k++] = 0;
        memcpy(p + k, key, (size_t)kl), k += (size_t)kl;
        p[k++] = 'J', memcpy(p + k, &i, 4), k += 4;
    }
    p[k++] = 'u', p[k++] = '.';
    pk = mt_pickle_new();
    CHECK_OK(mt_pickle_parse(pk, p, k, 0, "dict.pkl", &root, NULL));
    CHECK(root && root->kind == MT_PV_DICT && root->n == 20000);
    mt_pickle_free(pk);
    free(p);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    mt_status s = mt_read_all(f, 0, &b, n);
    fclose(f);
    return s == MT_OK ? (uint8_t *)b : NULL;
}

static void test_zip_crc(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/crc.pt", dir);
    float w[6] = {1.5f, -2.25f, 3.125f, 4.0625f, -5.5f, 6.75f};
    int64_t shape[2] = {2, 3};
    mt_torch_writer *wr = mt_torch_writer_new();
    mt_wv *root = mt_wv_dict(wr, 1);
    CHECK_OK(mt_wv_set(wr, root, "weight", mt_wv_tensor(wr, MT_DT_F32, 2, shape, w)));
    CHECK_OK(mt_torch_writer_save(wr, root, path));
    mt_torch_writer_free(wr);
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    CHECK(b != NULL);
    if (!b) return;
    mt_torch_file *f = NULL;
    CHECK_OK(mt_torch_open_mem("crc.pt", b, n, &f)); // intact: opens
    if (f) mt_torch_close(f);
    uint8_t *at = memmem(b, n, w, sizeof w);
    CHECK(at != NULL);
    if (at) {
        at[5] ^= 0x10; // one bit of the second float: still a valid-looking number
        f = NULL;
        mt_status s = mt_torch_open_mem("crc.pt", b, n, &f);
        CHECK_MSG(s == MT_ERR_FORMAT, "a flipped bit in a tensor was not detected (status %d)", s);
        CHECK_MSG(strstr(mt_last_error(), "crc.pt") && strstr(mt_last_error(), "crc/data/0") &&
                      strstr(mt_last_error(), "CRC-32"),
                  "%s", mt_last_error());
        fprintf(stderr, "zip CRC: %s\n", mt_last_error());
        if (f) mt_torch_close(f);
    }
    free(b);
}

static void test_paths(void) {
    char small[32];
    CHECK_OK(mt_path_join(small, sizeof small, "/tmp", "x.txt"));
    CHECK(!strcmp(small, "/tmp/x.txt"));
    mt_status s = mt_path_join(small, sizeof small, "/a/rather/long/folder/name", "file.txt");
    CHECK(s == MT_ERR_INVALID);
    CHECK_MSG(small[0] == 0, "a cut path was left behind: '%s'", small);
    CHECK_MSG(strstr(mt_last_error(), "path too long") && strstr(mt_last_error(), "/a/rather") &&
                  strstr(mt_last_error(), "file.txt"),
              "%s", mt_last_error());
    // through the loaders: a data folder whose name does not fit refuses, naming the path
    char *longdir = malloc(3001);
    memset(longdir, 'd', 3000);
    longdir[0] = '/';
    longdir[3000] = 0;
    static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n";
    mt_vocab *v = NULL;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, sizeof VOCAB - 1, "vocab", &v));
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    mt_tokenizer *tok = NULL;
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
    mt_dataset *d = NULL;
    s = mt_dataset_load(&o, tok, longdir, "train", NULL, &d);
    CHECK_MSG(s == MT_ERR_INVALID && strstr(mt_last_error(), "path too long") && strstr(mt_last_error(), "text_train.txt"),
              "status %d: %s", s, mt_last_error());
    CHECK(d == NULL);
    mt_tokenizer_free(tok); // it owns the vocab
    free(longdir);
}

static void test_overflow(void) {
    mt_ckpt_tensor t = {0};
    t.ndim = 3;
    t.shape[0] = (int64_t)1 << 31, t.shape[1] = (int64_t)1 << 31, t.shape[2] = (int64_t)1 << 31;
    CHECK_MSG(mt_ckpt_tensor_numel(&t) == -1, "a wrapping element count gave %lld", (long long)mt_ckpt_tensor_numel(&t));
    CHECK(mt_ckpt_tensor_cols(&t) == (int64_t)1 << 62);
    t.shape[1] = -4;
    CHECK(mt_ckpt_tensor_numel(&t) == -1);
    int64_t r;
    CHECK(!mt_mul_i64(INT64_MAX / 2, 3, &r) && mt_mul_i64(3, (int64_t)INT32_MAX, &r) && r == 3 * (int64_t)INT32_MAX);
    // a model config from a corrupt checkpoint: 3*hidden and 4*hidden would wrap an int
    mt_model_config c;
    mt_model_config_bert_defaults(&c);
    c.vocab_size = 30522, c.num_layers = 2, c.max_position_embeddings = 512, c.num_tokentypes = 2, c.tp_size = 1;
    c.hidden_size = 1 << 30, c.num_attention_heads = 16, c.ffn_hidden_size = 0;
    mt_status s = mt_model_config_finalize(&c);
    CHECK_MSG(s == MT_ERR_INVALID && strstr(mt_last_error(), "hidden_size 1073741824"), "%s", mt_last_error());
    // an encoder config number past int's range (found by fuzz_encoder_config: the cast was UB)
    mt_model_config_defaults(&c);
    s = mt_config_json_parse("enc.json", "{\"hidden_size\": 8888888888888888888888888, \"layer_norm_eps\": 1e300}", &c);
    CHECK_MSG(s == MT_ERR_INVALID && strstr(mt_last_error(), "'hidden_size' must be an integer"), "%s", mt_last_error());
    s = mt_config_json_parse("enc.json", "{\"layer_norm_eps\": 1e300}", &c);
    CHECK_MSG(s == MT_ERR_INVALID && strstr(mt_last_error(), "layer_norm_eps"), "%s", mt_last_error());
}

// A ustar header for a regular file of `size` bytes (the data need not follow: the claim is
// what the reader must refuse).
static void tar_header(uint8_t h[512], const char *name, uint64_t size) {
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    if (size < (uint64_t)1 << 33) snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    else { // past 11 octal digits: GNU base-256 (0x80, then the size big-endian)
        h[124] = 0x80;
        for (int i = 0; i < 8; i++) h[135 - i] = (uint8_t)(size >> (8 * i));
    }
    memcpy(h + 136, "00000000000", 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static void test_tar_caps(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/big.nemo", dir);
    FILE *f = fopen(path, "wb");
    uint8_t h[512], zero[1024] = {0};
    const char yaml[] = "trainer: {}\n";
    tar_header(h, "./small.yaml", sizeof yaml - 1);
    fwrite(h, 1, 512, f);
    uint8_t blk[512] = {0};
    memcpy(blk, yaml, sizeof yaml - 1);
    fwrite(blk, 1, 512, f);
    tar_header(h, "./model_config.yaml", (uint64_t)300 << 20); // claims 300 MiB, holds 1 KiB
    fwrite(h, 1, 512, f);
    fwrite(zero, 1, sizeof zero, f);
    fclose(f);
    char out[256];
    snprintf(out, sizeof out, "%s/inspect.txt", dir);
    FILE *o = fopen(out, "w");
    mt_status s = mt_ckpt_inspect(path, o, 1);
    fclose(o);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), "model_config.yaml") &&
                  strstr(mt_last_error(), "larger than 256 MiB"),
              "inspect -v: status %d: %s", s, mt_last_error());
    size_t n = 0;
    uint8_t *txt = slurp(out, &n);
    CHECK_MSG(txt && strstr((char *)txt, "trainer: {}"), "the small member was not shown");
    free(txt);
    // the restore unpacks into $TMPDIR/megatune-nemo-XXXXXX (make_tmpdir): point TMPDIR at an empty
    // folder of ours, so that a failed restore that leaves its folder (or a file in it) is seen
    char tdir[128];
    snprintf(tdir, sizeof tdir, "%s/tmpdir", dir);
    CHECK(mkdir(tdir, 0700) == 0);
    const char *old_tmpdir = getenv("TMPDIR");
    char *saved_tmpdir = old_tmpdir ? strdup(old_tmpdir) : NULL;
    setenv("TMPDIR", tdir, 1);
    mt_clear_error(); // the message checked below must come from this restore, not from inspect
    mt_nemo *nm = NULL;
    s = mt_nemo_restore(path, NULL, 0, &nm);
    if (saved_tmpdir) setenv("TMPDIR", saved_tmpdir, 1);
    else unsetenv("TMPDIR");
    free(saved_tmpdir);
    CHECK_MSG(s == MT_ERR_FORMAT && nm == NULL && strstr(mt_last_error(), "larger than 256 MiB") &&
                  strstr(mt_last_error(), "model_config.yaml") && strstr(mt_last_error(), path),
              "restore: status %d: %s", s, mt_last_error());
    if (nm) mt_nemo_free(nm);
    int left = 0;
    DIR *td = opendir(tdir);
    CHECK(td != NULL);
    for (struct dirent *e; td && (e = readdir(td));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            fprintf(stderr, "a failed restore left %s/%s\n", tdir, e->d_name);
            left++;
        }
    if (td) closedir(td);
    CHECK_MSG(left == 0, "a failed .nemo restore left %d entr%s in its TMPDIR %s", left, left == 1 ? "y" : "ies", tdir);
    CHECK(mt_tar_member_limit("model_weights.ckpt") == MT_TAR_WEIGHTS_MAX);
    CHECK(mt_tar_member_limit("mp_rank_01/model_weights.ckpt") == MT_TAR_WEIGHTS_MAX);
    CHECK(mt_tar_member_limit("vocab.txt") == MT_TAR_SMALL_MAX);
}

// Fuzzer findings, kept as regressions.
static void test_fuzz_regressions(void) {
    // a CoNLL line of a vertical tab only: split into no fields, f[0] was read unset (fuzz_task_loaders)
    char in[128], out[128];
    snprintf(in, sizeof in, "%s/vtab.iob", dir);
    snprintf(out, sizeof out, "%s/iob", dir);
    mkdir(out, 0700);
    FILE *f = fopen(in, "w");
    fputs("EU NNP B-NP B-ORG\n\v\nrejects VBZ B-VP O\n\f\r\n", f);
    fclose(f);
    size_t ns = 0, nw = 0;
    CHECK_OK(mt_data_import_iob(in, out, "train", &ns, &nw));
    CHECK_MSG(ns == 2 && nw == 2, "a whitespace-only line must end a sentence: %zu sentences, %zu words", ns, nw);

    // SQuAD "answer_start": 391e308 (infinite) was cast to an integer to test that it is one:
    // undefined behaviour (fuzz_squad, 2026-12-05 campaign). Refused now, as a fraction is; a huge
    // finite integer is clamped as before and refused as outside the context.
    static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nparis\nwho\n";
    mt_vocab *v = NULL;
    CHECK_OK(mt_vocab_load_buffer(VOCAB, sizeof VOCAB - 1, "vocab", &v));
    mt_tokenizer *tok = NULL;
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    const char *starts[] = {"391e308", "2.5", "-1e400", "1e300"};
    for (int i = 0; i < 4; i++) {
        snprintf(in, sizeof in, "%s/squad%d.json", dir, i);
        f = fopen(in, "w");
        fprintf(f, "{\"version\": \"1.1\", \"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"the paris\","
                   " \"qas\": [{\"id\": \"q1\", \"question\": \"who\", \"answers\": [{\"text\": \"paris\", "
                   "\"answer_start\": %s}]}]}]}]}", starts[i]);
        fclose(f);
        mt_task_options o;
        mt_task_options_default(&o, MT_TASK_QUESTION_ANSWERING);
        o.max_seq_length = 16, o.max_query_length = 4, o.doc_stride = 4;
        mt_dataset *d = NULL;
        mt_status s = mt_dataset_load(&o, tok, in, "dev", NULL, &d);
        if (i < 3)
            CHECK_MSG(s == MT_ERR_FORMAT && d == NULL && strstr(mt_last_error(), "integer \"answer_start\"") &&
                          strstr(mt_last_error(), "q1"),
                      "answer_start %s: status %d: %s", starts[i], s, mt_last_error());
        else // clamped, then refused by the context check, naming the question
            CHECK_MSG(s == MT_ERR_FORMAT && d == NULL && strstr(mt_last_error(), "outside the 9-character context") &&
                          strstr(mt_last_error(), "q1"),
                      "answer_start %s: status %d: %s", starts[i], s, mt_last_error());
        mt_dataset_free(d);
    }
    mt_tokenizer_free(tok);
}

// ---- fault injection: this executable's fsync, rename and renameat2 replace the C library's for
// the whole process (the library's static code calls them), and pass through unless a test arms them.
static const char *fsync_fail_suffix;   // fsync of a file whose path ends with this fails (EIO)
static const char *rename_fail_suffix;  // rename from a path ending with this fails (EIO)
static int rename_fail_release_tmp;     // rename of the folder DST/.release.tmp.XXXXXX itself fails (EIO)
static int renameat2_unsupported;       // renameat2 fails with EINVAL (a filesystem without RENAME_EXCHANGE)

static int ends_with(const char *s, const char *x) {
    size_t a = strlen(s), b = strlen(x);
    return a >= b && !strcmp(s + a - b, x);
}

int fsync(int fd) {
    if (fsync_fail_suffix) {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            if (ends_with(target, fsync_fail_suffix)) {
                errno = EIO;
                return -1;
            }
        }
    }
    return (int)syscall(SYS_fsync, fd);
}

int rename(const char *from, const char *to) {
    const char *base = strrchr(from, '/');
    if ((rename_fail_suffix && ends_with(from, rename_fail_suffix)) ||
        (rename_fail_release_tmp && base && !strncmp(base, "/.release.tmp.", 14) && !ends_with(from, ".old"))) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0);
}

int renameat2(int ofd, const char *from, int nfd, const char *to, unsigned int flags) {
    if (renameat2_unsupported) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_renameat2, ofd, from, nfd, to, flags);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

// A failed fsync in mt_write_file_atomic: the descriptor is closed, fsync's error is the one
// reported, and neither the temporary file nor the target is left.
static void test_atomic_fsync_failure(void) {
    char path[128], tmp[140];
    snprintf(path, sizeof path, "%s/atomic.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int before = count_fds();
    fsync_fail_suffix = "/atomic.json.tmp";
    mt_status s = mt_write_file_atomic(path, "{}", 2);
    fsync_fail_suffix = NULL;
    int after = count_fds();
    CHECK_MSG(s == MT_ERR_IO && strstr(mt_last_error(), tmp) && strstr(mt_last_error(), strerror(EIO)),
              "status %d: %s", s, mt_last_error());
    CHECK_MSG(after == before, "a failed fsync left %d file descriptor(s) open", after - before);
    CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
    CHECK_OK(mt_write_file_atomic(path, "{}", 2)); // and the same call works once fsync does
    CHECK(count_fds() == before);
}

// ---- hand-built torch zip files: tensors with any shape and strides over a one-element storage

typedef struct {
    uint8_t b[4096];
    size_t n;
} pkbuf;

static void pk_put(pkbuf *p, const void *d, size_t n) {
    if (p->n + n > sizeof p->b) abort();
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pk_op(pkbuf *p, uint8_t op) { pk_put(p, &op, 1); }
static void pk_str(pkbuf *p, const char *s) {
    uint32_t l = (uint32_t)strlen(s);
    uint8_t h[5] = {'X', (uint8_t)l, (uint8_t)(l >> 8), (uint8_t)(l >> 16), (uint8_t)(l >> 24)};
    pk_put(p, h, 5);
    pk_put(p, s, l);
}
static void pk_int(pkbuf *p, int64_t v) { // LONG1 with 8 bytes: any value
    uint8_t h[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
    pk_put(p, h, 10);
}
static void pk_global(pkbuf *p, const char *mod, const char *name) {
    pk_op(p, 'c');
    pk_put(p, mod, strlen(mod));
    pk_op(p, '\n');
    pk_put(p, name, strlen(name));
    pk_op(p, '\n');
}

// {key: tensor of `shape` with all strides 0 over storage "0" of one float}, as torch.save writes it.
static void pk_zero_stride_dict(pkbuf *p, const char *key, int ndim, const int64_t *shape) {
    p->n = 0;
    pk_put(p, "\x80\x02}", 3);
    pk_str(p, key);
    pk_global(p, "torch._utils", "_rebuild_tensor_v2");
    pk_op(p, '(');
    pk_op(p, '(');
    pk_str(p, "storage");
    pk_global(p, "torch", "FloatStorage");
    pk_str(p, "0");
    pk_str(p, "cpu");
    pk_int(p, 1);
    pk_op(p, 't');
    pk_op(p, 'Q');
    pk_int(p, 0);
    pk_op(p, '(');
    for (int i = 0; i < ndim; i++) pk_int(p, shape[i]);
    pk_op(p, 't');
    pk_op(p, '(');
    for (int i = 0; i < ndim; i++) pk_int(p, 0);
    pk_op(p, 't');
    pk_op(p, 0x89);
    pk_global(p, "collections", "OrderedDict");
    pk_op(p, ')');
    pk_op(p, 'R');
    pk_op(p, 't');
    pk_op(p, 'R');
    pk_op(p, 's');
    pk_op(p, '.');
}

static void le_put(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

// A stored (uncompressed) zip of archive/data.pkl, archive/data/0 (one float) and archive/version,
// into memory: *out (malloc'd), *len.
static void zip_pt(const pkbuf *pkl, uint8_t **out, size_t *len) {
    static const float one = 1.0f;
    const char *names[3] = {"archive/data.pkl", "archive/data/0", "archive/version"};
    const void *data[3] = {pkl->b, &one, "3\n"};
    const size_t sizes[3] = {pkl->n, sizeof one, 2};
    uint8_t *z = calloc(1, 16384), *cd = calloc(1, 1024);
    size_t n = 0, cn = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t crc = mt_crc32(0, data[i], sizes[i]);
        size_t nl = strlen(names[i]);
        uint8_t *h = z + n;
        le_put(h, 0x04034b50, 4), le_put(h + 4, 20, 2), le_put(h + 14, crc, 4);
        le_put(h + 18, sizes[i], 4), le_put(h + 22, sizes[i], 4), le_put(h + 26, nl, 2);
        memcpy(h + 30, names[i], nl);
        memcpy(h + 30 + nl, data[i], sizes[i]);
        uint8_t *c = cd + cn;
        le_put(c, 0x02014b50, 4), le_put(c + 4, 20, 2), le_put(c + 6, 20, 2), le_put(c + 16, crc, 4);
        le_put(c + 20, sizes[i], 4), le_put(c + 24, sizes[i], 4), le_put(c + 28, nl, 2);
        le_put(c + 42, n, 4);
        memcpy(c + 46, names[i], nl);
        cn += 46 + nl;
        n += 30 + nl + sizes[i];
    }
    memcpy(z + n, cd, cn);
    uint8_t *e = z + n + cn;
    le_put(e, 0x06054b50, 4), le_put(e + 8, 3, 2), le_put(e + 10, 3, 2), le_put(e + 12, cn, 4), le_put(e + 16, n, 4);
    *len = n + cn + 22;
    *out = z;
    free(cd);
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
}

static void write_zero_stride_pt(const char *path, const char *key, int ndim, const int64_t *shape) {
    pkbuf p;
    pk_zero_stride_dict(&p, key, ndim, shape);
    uint8_t *z;
    size_t n;
    zip_pt(&p, &z, &n);
    write_bytes(path, z, n);
    free(z);
}

// `convert` of a .pt whose tensor views one float with zero strides: a [2^31, 2^31] view is
// 2^62 elements, and 2^62 * sizeof(float) wrapped to a 0-byte buffer that the copy then overran.
static void test_zero_stride_convert(void) {
    char src[128], out[128];
    mt_convert_opts o = {1, 2, 0, -1.0, MT_DT_F32};
    snprintf(out, sizeof out, "%s/zs_out.pt", dir);
    // refused when the file is opened: more elements than any real tensor
    snprintf(src, sizeof src, "%s/zero_stride_huge.pt", dir);
    const int64_t huge[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
    write_zero_stride_pt(src, "word_embeddings.weight", 2, huge);
    mt_status s = mt_ckpt_convert(src, out, &o);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), src) && strstr(mt_last_error(), "corrupt") &&
                  strstr(mt_last_error(), "4611686018427387904 elements"),
              "status %d: %s", s, mt_last_error());
    fprintf(stderr, "zero-stride tensor: %s\n", mt_last_error());
    CHECK(access(out, F_OK) != 0);
    // a view within the element bound whose rows --vocab-size multiplies: [1, 2^31] padded to
    // 2^31 rows is 2^62 floats again, refused before anything is allocated
    snprintf(src, sizeof src, "%s/zero_stride_row.pt", dir);
    const int64_t row[2] = {1, (int64_t)1 << 31};
    write_zero_stride_pt(src, "word_embeddings.weight", 2, row);
    o.vocab_size = INT_MAX;
    s = mt_ckpt_convert(src, out, &o);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), src) &&
                  strstr(mt_last_error(), "language_model.embedding.word_embeddings.weight") &&
                  strstr(mt_last_error(), "overflows"),
              "--vocab-size %d: status %d: %s", o.vocab_size, s, mt_last_error());
    CHECK(access(out, F_OK) != 0);
    // 2^30 rows of 2^24: 2^56 bytes, more than any machine has: out of memory, naming file and tensor
    const int64_t row24[2] = {1, (int64_t)1 << 24};
    write_zero_stride_pt(src, "word_embeddings.weight", 2, row24);
    o.vocab_size = 1 << 30;
    s = mt_ckpt_convert(src, out, &o);
    CHECK_MSG(s == MT_ERR_NOMEM && strstr(mt_last_error(), src) &&
                  strstr(mt_last_error(), "language_model.embedding.word_embeddings.weight"),
              "--vocab-size %d: status %d: %s", o.vocab_size, s, mt_last_error());
    CHECK(access(out, F_OK) != 0);
}

// ---- .nemo archives built from the fuzz corpus's tiny_plain.tar (a real restorable .nemo)

typedef struct {
    char *name;
    char *data; // NULL: `len` zero bytes (written in pieces)
    uint64_t len;
    uint64_t claim; // the header's size (normally len)
} tmember;

typedef struct {
    FILE *f;
    gzFile g;
} twriter;

static void tw_put(twriter *w, const void *b, size_t n) {
    if (w->g) CHECK(gzwrite(w->g, b, (unsigned)n) == (int)n);
    else CHECK(fwrite(b, 1, n, w->f) == n);
}

// Writes members as a plain tar (gz 0) or a gzip tar (RLE: a long run of zeros costs little).
static void write_tar(const char *path, const tmember *m, int n, int gz) {
    twriter w = {0};
    if (gz) w.g = gzopen(path, "wb1R");
    else w.f = fopen(path, "wb");
    CHECK(w.g || w.f);
    if (!w.g && !w.f) return;
    static uint8_t zero[1 << 20];
    for (int i = 0; i < n; i++) {
        uint8_t h[512];
        tar_header(h, m[i].name, m[i].claim);
        tw_put(&w, h, 512);
        for (uint64_t off = 0; off < m[i].len;) {
            size_t k = m[i].len - off < sizeof zero ? (size_t)(m[i].len - off) : sizeof zero;
            tw_put(&w, m[i].data ? m[i].data + off : (const char *)zero, k);
            off += k;
        }
        if (m[i].len % 512) tw_put(&w, zero, 512 - m[i].len % 512);
    }
    tw_put(&w, zero, 1024);
    if (w.g) CHECK(gzclose(w.g) == Z_OK);
    else CHECK(fclose(w.f) == 0);
}

// tiny_plain.tar's members, read through the same tar reader; NULL on failure.
static tmember *tiny_members(int *n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/nemo/tiny_plain.tar", mt_test_env("MEGATUNE_SOURCE_DIR", "."));
    struct archive *a = NULL;
    *n = 0;
    if (mt_tar_open(path, &a) != MT_OK) {
        CHECK_MSG(0, "%s", mt_last_error());
        return NULL;
    }
    tmember *m = calloc(16, sizeof *m);
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK && *n < 16) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char *name = archive_entry_pathname(e);
        char *buf = NULL;
        size_t len = 0;
        CHECK_OK(mt_tar_read_member(a, path, name, archive_entry_size(e), &buf, &len));
        m[*n].name = strdup(name);
        m[*n].data = buf;
        m[*n].len = m[*n].claim = len;
        (*n)++;
    }
    archive_read_free(a);
    CHECK(*n == 5);
    return m;
}

static void tiny_free(tmember *m, int n) {
    for (int i = 0; m && i < n; i++) {
        free(m[i].name);
        free(m[i].data);
    }
    free(m);
}

static int set_member(tmember *m, int n, const char *name, const void *data, size_t len) {
    for (int i = 0; i < n; i++)
        if (ends_with(m[i].name, name)) {
            free(m[i].data);
            m[i].data = malloc(len ? len : 1);
            memcpy(m[i].data, data, len);
            m[i].len = m[i].claim = len;
            return 1;
        }
    return 0;
}

// mt_nemo_restore with TMPDIR an empty folder of ours, which must be empty again afterwards; the
// status (the model, if any, is freed).
static mt_status restore_checked(const char *path) {
    char tdir[128];
    snprintf(tdir, sizeof tdir, "%s/rtmp", dir);
    mkdir(tdir, 0700);
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", tdir, 1);
    mt_clear_error();
    mt_nemo *nm = NULL;
    mt_status s = mt_nemo_restore(path, NULL, 0, &nm);
    if (nm) mt_nemo_free(nm);
    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
    free(saved);
    int left = 0;
    DIR *td = opendir(tdir);
    for (struct dirent *e; td && (e = readdir(td));) left += e->d_name[0] != '.';
    if (td) closedir(td);
    CHECK_MSG(left == 0, "restoring %s left %d entries in TMPDIR", path, left);
    return s;
}

static void test_nemo_limits(void) {
    int n = 0;
    tmember *m = tiny_members(&n);
    if (!m) return;
    char path[128];
    // the intact archive restores (the baseline of every case below)
    snprintf(path, sizeof path, "%s/tiny.nemo", dir);
    write_tar(path, m, n, 0);
    mt_status s = restore_checked(path);
    CHECK_MSG(s == MT_OK, "the intact tiny .nemo: %s", mt_last_error());

    // weights that are not a checkpoint: the error names the .nemo and the member, not our
    // temporary copy of it (deleted by then)
    tmember *bad = tiny_members(&n);
    const char junk[] = "this is not a torch checkpoint";
    CHECK(bad && set_member(bad, n, "model_weights.ckpt", junk, sizeof junk - 1));
    snprintf(path, sizeof path, "%s/junk_weights.nemo", dir);
    if (bad) write_tar(path, bad, n, 0);
    s = restore_checked(path);
    CHECK_MSG(s != MT_OK && strstr(mt_last_error(), path) && strstr(mt_last_error(), "member model_weights.ckpt") &&
                  !strstr(mt_last_error(), "/rtmp/"),
              "status %d: %s", s, mt_last_error());
    fprintf(stderr, "junk weights: %s\n", mt_last_error());
    tiny_free(bad, n);

    // a head whose last layer claims 2^21 classes through zero strides (8 MiB as a head of 8-wide
    // rows, 64 MiB of weights built for nothing): refused, naming the .nemo
    bad = tiny_members(&n);
    pkbuf p;
    const int64_t head[2] = {(int64_t)1 << 21, 8};
    pk_zero_stride_dict(&p, "classifier.mlp.layer2.weight", 2, head);
    uint8_t *z;
    size_t zn;
    zip_pt(&p, &z, &zn);
    CHECK(bad && set_member(bad, n, "model_weights.ckpt", z, zn));
    free(z);
    snprintf(path, sizeof path, "%s/huge_head.nemo", dir);
    if (bad) write_tar(path, bad, n, 0);
    s = restore_checked(path);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), path) && strstr(mt_last_error(), "2097152 classes"),
              "status %d: %s", s, mt_last_error());
    fprintf(stderr, "huge head: %s\n", mt_last_error());
    tiny_free(bad, n);

    // weights claiming more than the weights cap: refused before a byte is streamed to TMPDIR
    tmember w[2] = {{"./model_config.yaml", m[0].data, m[0].len, m[0].len},
                    {"./model_weights.ckpt", NULL, 0, (uint64_t)MT_TAR_WEIGHTS_MAX + 1}};
    CHECK(ends_with(m[0].name, "model_config.yaml"));
    snprintf(path, sizeof path, "%s/big_weights.nemo", dir);
    write_tar(path, w, 2, 0);
    s = restore_checked(path);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), path) && strstr(mt_last_error(), "model_weights.ckpt") &&
                  strstr(mt_last_error(), "past 16384 MiB"),
              "status %d: %s", s, mt_last_error());

    // members other than the weights: each within its 256 MiB cap, together past it
    tmember two[2] = {{"./a_vocab.txt", "abc\n", 4, 4}, {"./b_labels.csv", NULL, 0, (uint64_t)MT_TAR_SMALL_MAX}};
    snprintf(path, sizeof path, "%s/small_total.nemo", dir);
    write_tar(path, two, 2, 0);
    s = restore_checked(path);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), path) && strstr(mt_last_error(), "b_labels.csv") &&
                  strstr(mt_last_error(), "past 256 MiB"),
              "status %d: %s", s, mt_last_error());
    fprintf(stderr, "members' total: %s\n", mt_last_error());

    // thousands of members: refused by count
    int many = 5000;
    tmember *mm = calloc((size_t)many, sizeof *mm);
    char (*names)[32] = calloc((size_t)many, sizeof *names);
    for (int i = 0; i < many; i++) {
        snprintf(names[i], sizeof names[i], "./f%05d.txt", i);
        mm[i].name = names[i];
    }
    snprintf(path, sizeof path, "%s/many.nemo", dir);
    write_tar(path, mm, many, 0);
    free(mm);
    free(names);
    s = restore_checked(path);
    CHECK_MSG(s == MT_ERR_FORMAT && strstr(mt_last_error(), path) && strstr(mt_last_error(), "more than 4096 members"),
              "status %d: %s", s, mt_last_error());

    // a .pt member megatune never loads (optimizer states) is skipped, not held: 768 MiB of zeros
    // (gzip: 1 MiB on disk) beside the tiny model restores within a 384 MiB address-space margin
    tmember *big = calloc((size_t)n + 1, sizeof *big);
    memcpy(big, m, (size_t)n * sizeof *m);
    big[n] = (tmember){"./optimizer_states.pt", NULL, (uint64_t)768 << 20, (uint64_t)768 << 20};
    snprintf(path, sizeof path, "%s/optimizer.nemo", dir);
    write_tar(path, big, n + 1, 1);
    free(big);
    struct rlimit saved, rl;
    int limited = 0;
    if (!sanitized() && getrlimit(RLIMIT_AS, &saved) == 0) {
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (f && fscanf(f, "%lu", &pages) == 1) {
            rl = saved;
            rl.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)384 << 20);
            limited = rl.rlim_cur < saved.rlim_max && setrlimit(RLIMIT_AS, &rl) == 0;
        }
        if (f) fclose(f);
    }
    s = restore_checked(path);
    if (limited) setrlimit(RLIMIT_AS, &saved);
    CHECK_MSG(s == MT_OK, "a .nemo with a 768 MiB optimizer_states.pt (address space %s): %s",
              limited ? "limited" : "not limited", mt_last_error());
    unlink(path);
    tiny_free(m, n);
}

// ---- `convert` into an existing folder: the previous ranks and tracker survive every failure

static void write_src_pt(const char *path) {
    static float w[128 * 8];
    for (int i = 0; i < 128 * 8; i++) w[i] = (float)i;
    mt_named_tensor t[1] = {{"word_embeddings.weight", MT_DT_F32, 2, {128, 8}, w}};
    CHECK_OK(mt_torch_save(path, t, 1));
}

// The folder holds exactly release/ with `ranks` mp_rank_XX, and a tracker that says release.
static void check_folder(const char *label, const char *dst, int ranks) {
    char p[300];
    int entries = 0, ok_tracker = 0;
    DIR *d = opendir(dst);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        entries++;
        CHECK_MSG(!strcmp(e->d_name, "release") || !strcmp(e->d_name, "latest_checkpointed_iteration.txt"),
                  "%s: %s/%s was left behind", label, dst, e->d_name);
    }
    if (d) closedir(d);
    snprintf(p, sizeof p, "%s/latest_checkpointed_iteration.txt", dst);
    FILE *f = fopen(p, "r");
    char line[32] = "";
    if (f) {
        ok_tracker = fgets(line, sizeof line, f) && !strcmp(line, "release");
        fclose(f);
    }
    CHECK_MSG(entries == 2 && ok_tracker, "%s: %d entries, tracker '%s'", label, entries, line);
    for (int r = 0; r < ranks + 1; r++) {
        snprintf(p, sizeof p, "%s/release/mp_rank_%02d/model_optim_rng.pt", dst, r);
        CHECK_MSG((access(p, F_OK) == 0) == (r < ranks), "%s: rank %d is %s", label, r, r < ranks ? "missing" : "there");
    }
}

static void test_convert_swap(void) {
    char src[128], dst[128];
    snprintf(src, sizeof src, "%s/swap_src.pt", dir);
    snprintf(dst, sizeof dst, "%s/swap_dst", dir);
    write_src_pt(src);
    mt_convert_opts o1 = {1, 2, 0, -1.0, MT_DT_F32}, o2 = {2, 2, 0, -1.0, MT_DT_F32};
    CHECK_OK(mt_ckpt_convert(src, dst, &o1)); // a new folder
    check_folder("new folder", dst, 1);
    CHECK_OK(mt_ckpt_convert(src, dst, &o2)); // over it: RENAME_EXCHANGE
    check_folder("exchanged", dst, 2);

    // without RENAME_EXCHANGE, the new release/ cannot be moved in: the previous one is moved back
    renameat2_unsupported = rename_fail_release_tmp = 1;
    mt_status s = mt_ckpt_convert(src, dst, &o1);
    rename_fail_release_tmp = 0;
    CHECK_MSG(s == MT_ERR_IO && strstr(mt_last_error(), "cannot move the new ranks into place"), "status %d: %s", s,
              mt_last_error());
    check_folder("failed second rename", dst, 2);
    CHECK_OK(mt_ckpt_convert(src, dst, &o1)); // the same path when the renames work
    renameat2_unsupported = 0;
    check_folder("moved aside", dst, 1);

    // the tracker is written and synced before the swap: a failed fsync leaves the previous ranks
    fsync_fail_suffix = "/.latest_checkpointed_iteration.txt.tmp";
    s = mt_ckpt_convert(src, dst, &o2);
    fsync_fail_suffix = NULL;
    CHECK_MSG(s == MT_ERR_IO && strstr(mt_last_error(), ".latest_checkpointed_iteration.txt.tmp"), "status %d: %s", s,
              mt_last_error());
    check_folder("tracker fsync failed", dst, 1);
    // ... and renamed after it: a failure there swaps the previous ranks back
    for (int ex = 1; ex >= 0; ex--) {
        renameat2_unsupported = !ex;
        rename_fail_suffix = "/.latest_checkpointed_iteration.txt.tmp";
        s = mt_ckpt_convert(src, dst, &o2);
        rename_fail_suffix = NULL;
        renameat2_unsupported = 0;
        CHECK_MSG(s == MT_ERR_IO && strstr(mt_last_error(), "latest_checkpointed_iteration.txt"), "status %d: %s", s,
                  mt_last_error());
        check_folder(ex ? "tracker rename failed (exchange)" : "tracker rename failed (moved aside)", dst, 1);
    }
    CHECK_OK(mt_ckpt_convert(src, dst, &o2));
    check_folder("after the failures", dst, 2);
}

int main(void) {
    strcpy(dir, "/tmp/megatune-hostile-XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    if (!sanitized()) {
        // Without the budget the list pickle would take ~10 GB: cap the address space so that a
        // regression fails here (allocation error, wrong message) instead of swapping the machine.
        struct rlimit rl = {(rlim_t)6 << 30, (rlim_t)6 << 30};
        setrlimit(RLIMIT_AS, &rl);
    }
    test_pickle_budget();
    test_zip_crc();
    test_paths();
    test_overflow();
    test_tar_caps();
    test_fuzz_regressions();
    test_atomic_fsync_failure();
    test_zero_stride_convert();
    test_nemo_limits();
    test_convert_swap();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
