// The parts of net/download.c a server is not needed for: the mirror rewrite of every preset
// address, the content checks a finished download must pass (vocab: line count, HTML, special
// tokens; checkpoint: shapes through the ckpt loader), NeMo's cache lookup, and offline mode
// naming every missing file without touching the network. tests/e2e/test_download.sh covers the
// transfers against local HTTP servers.
#include <sys/stat.h>
#include <unistd.h>

#include "net/download.h"
#include "test_util.h"

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

// Under the mirror an address keeps its whole path: https://host/p becomes http://127.0.0.1:8080/p
// (a substring test would pass a path cut short or with a prefix dropped).
static void check_mirrored(const char *url) {
    char out[512];
    const char *path = !strncmp(url, "https://", 8) ? strchr(url + 8, '/') : NULL;
    CHECK_MSG(path != NULL, "%s: not an https address with a path", url);
    CHECK_OK(mt_download_address(url, out, sizeof out));
    CHECK_MSG(path && !strncmp(out, "http://127.0.0.1:8080/", 22) && !strcmp(out + 21, path), "%s -> %s", url, out);
}

static void test_mirror(void) {
    char out[512];
    unsetenv("MEGATUNE_DOWNLOAD_MIRROR");
    const char *ngc = "https://api.ngc.nvidia.com/v2/models/nvidia/megatron_bert_345m/versions/v0.0/files/x.pt";
    CHECK_OK(mt_download_address(ngc, out, sizeof out));
    CHECK(!strcmp(out, ngc));
    setenv("MEGATUNE_DOWNLOAD_MIRROR", "http://127.0.0.1:8080/", 1);
    CHECK_OK(mt_download_address(ngc, out, sizeof out));
    CHECK_MSG(!strcmp(out, "http://127.0.0.1:8080/v2/models/nvidia/megatron_bert_345m/versions/v0.0/files/x.pt"), "%s", out);
    // every preset address keeps its path under the mirror
    size_t n;
    const mt_pretrained_info *all = mt_pretrained_all(&n);
    for (size_t i = 0; i < n; i++) {
        CHECK(all[i].vocab_url != NULL);
        if (all[i].vocab_url) check_mirrored(all[i].vocab_url);
        if (all[i].vocab_url_alt) check_mirrored(all[i].vocab_url_alt);
        if (all[i].checkpoint_url) check_mirrored(all[i].checkpoint_url);
        if (all[i].megatron && all[i].has_architecture) CHECK(all[i].checkpoint_url && strstr(all[i].checkpoint_url, "api.ngc.nvidia.com"));
    }
    static const char *bad[] = {"ftp://host", "http://", "host:8080", "http://host/path"};
    for (int i = 0; i < 4; i++) {
        setenv("MEGATUNE_DOWNLOAD_MIRROR", bad[i], 1);
        CHECK(mt_download_address(ngc, out, sizeof out) == MT_ERR_INVALID);
        CHECK_MSG(strstr(mt_last_error(), "MEGATUNE_DOWNLOAD_MIRROR") && strstr(mt_last_error(), bad[i]), "%s", mt_last_error());
    }
    unsetenv("MEGATUNE_DOWNLOAD_MIRROR");
    // NeMo's exact addresses (megatron_utils.py, v1.0-1.4)
    const mt_pretrained_info *p = mt_pretrained_find("megatron-bert-345m-uncased");
    CHECK(!strcmp(p->checkpoint_url, "https://api.ngc.nvidia.com/v2/models/nvidia/megatron_bert_345m/versions/v0.0/files/"
                                     "release/mp_rank_00/model_optim_rng.pt"));
    CHECK(!strcmp(p->vocab_url, "https://s3.amazonaws.com/models.huggingface.co/bert/bert-large-uncased-vocab.txt"));
    p = mt_pretrained_find("biomegatron-bert-345m-cased");
    CHECK(!strcmp(p->vocab_url, "https://api.ngc.nvidia.com/v2/models/nvidia/biomegatron345mcased/versions/0/files/vocab.txt"));
}

static void test_checks(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/v.txt", dir);
    const mt_pretrained_info *own = mt_pretrained_find("megatron-bert-uncased");     // 30522 lines expected
    const mt_pretrained_info *bio = mt_pretrained_find("biomegatron-bert-345m-uncased"); // count unknown
    put(path, "<!DOCTYPE html>\n<html><body>Sign in</body></html>\n");
    CHECK(mt_download_check_vocab(bio, path, "URL") == MT_ERR_FORMAT);
    CHECK_MSG(strstr(mt_last_error(), "URL: ") && strstr(mt_last_error(), "HTML"), "%s", mt_last_error());
    put(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n");
    CHECK_OK(mt_download_check_vocab(bio, path, "URL"));
    CHECK(mt_download_check_vocab(own, path, "URL") == MT_ERR_FORMAT);
    CHECK_MSG(strstr(mt_last_error(), "6 lines") && strstr(mt_last_error(), "30522"), "%s", mt_last_error());
    put(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe");
    CHECK(mt_download_check_vocab(bio, path, "URL") == MT_ERR_FORMAT);
    CHECK_MSG(strstr(mt_last_error(), "[MASK]"), "%s", mt_last_error());
    put(path, "");
    CHECK(mt_download_check_vocab(bio, path, "URL") == MT_ERR_FORMAT);
    // a checkpoint: not a torch file
    put(path, "not a checkpoint");
    CHECK(mt_download_check_checkpoint(bio, path, "URL") == MT_ERR_FORMAT);
    CHECK_MSG(strstr(mt_last_error(), "does not open as a torch checkpoint"), "%s", mt_last_error());
    remove(path);
}

static void test_locate_offline(const char *dir) {
    char md[600], th[600], path[4200], nemo[4200];
    snprintf(md, sizeof md, "%s/models", dir);
    snprintf(th, sizeof th, "%s/torch", dir);
    setenv("MEGATUNE_MODEL_DIR", md, 1);
    setenv("TORCH_HOME", th, 1);
    char cache[4096];
    CHECK_OK(mt_pretrained_nemo_cache_dir(cache, sizeof cache));
    snprintf(path, sizeof path, "%s/megatron", th);
    CHECK(!strcmp(cache, path));
    const mt_pretrained_info *p = mt_pretrained_find("megatron-bert-345m-cased");
    CHECK(mt_pretrained_locate(p, MT_PRETRAINED_VOCAB, path, sizeof path, nemo, sizeof nemo) == 0);
    CHECK(strstr(path, "/models/megatron-bert-345m-cased/vocab.txt") && strstr(nemo, "/torch/megatron/megatron-bert-345m-cased_vocab"));
    // offline: both files named in one message, nothing created
    CHECK(mt_download_preset(p, MT_DOWNLOAD_VOCAB | MT_DOWNLOAD_CHECKPOINT, 1) == MT_ERR_NOT_FOUND);
    const char *e = mt_last_error();
    CHECK_MSG(strstr(e, "2 files are missing") && strstr(e, "megatron-bert-345m-cased/vocab.txt") &&
                  strstr(e, "megatron-bert-345m-cased/model_optim_rng.pt") && strstr(e, "v0.1_cased") &&
                  strstr(e, "megatron-bert-345m-cased_vocab"), "%s", e);
    struct stat st;
    CHECK(stat(md, &st) != 0);
    // NeMo's cache is used where it is: <cache>/<name> and <name>_vocab
    mkdir(th, 0700);
    mkdir(cache, 0700);
    char f1[4300], f2[4300];
    snprintf(f1, sizeof f1, "%s/megatron-bert-345m-cased_vocab", cache);
    snprintf(f2, sizeof f2, "%s/megatron-bert-345m-cased", cache);
    put(f1, "x\n");
    put(f2, "x");
    CHECK(mt_pretrained_locate(p, MT_PRETRAINED_VOCAB, path, sizeof path, NULL, 0) == 2 && !strcmp(path, f1));
    CHECK_OK(mt_download_preset(p, MT_DOWNLOAD_VOCAB | MT_DOWNLOAD_CHECKPOINT, 1));
    CHECK_OK(mt_pretrained_checkpoint_path(p, path, sizeof path));
    CHECK(!strcmp(path, f2));
    // bert-* names are not in NeMo's megatron cache
    CHECK(mt_pretrained_locate(mt_pretrained_find("bert-base-cased"), MT_PRETRAINED_VOCAB, path, sizeof path, nemo,
                               sizeof nemo) == 0 && nemo[0] == 0);
    remove(f1);
    remove(f2);
    rmdir(cache);
    rmdir(th);
    unsetenv("TORCH_HOME");
}

int main(void) {
    char dir[] = "/tmp/megatune-test-download-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_mirror();
    test_checks(dir);
    test_locate_offline(dir);
    rmdir(dir);
    TEST_DONE();
}
