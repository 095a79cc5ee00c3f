// Pretrained names: shapes (nemo.md MEGATRON_CONFIG_MAP, BERT base/large), casing, file names,
// the model directory ($MEGATUNE_MODEL_DIR, else ~/.cache/megatune) and the missing-file errors
// (exact path + where to download).
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "text/pretrained.h"

static const mt_pretrained_info *get(const char *name) {
    const mt_pretrained_info *p = NULL;
    CHECK_OK(mt_pretrained_lookup(name, &p));
    CHECK(p && !strcmp(p->name, name));
    return p;
}

static void test_table(void) {
    static const char *m345[] = {"megatron-bert-345m-uncased", "megatron-bert-345m-cased",
                                 "biomegatron-bert-345m-uncased", "biomegatron-bert-345m-cased"};
    for (int i = 0; i < 4; i++) {
        const mt_pretrained_info *p = get(m345[i]);
        if (!p) continue;
        CHECK(p->has_architecture && p->hidden_size == 1024 && p->num_layers == 24 && p->num_attention_heads == 16 &&
              p->max_position_embeddings == 512 && p->ffn_hidden_size == 4096 && p->num_tokentypes == 2);
        CHECK(p->megatron == 1);
        CHECK(p->lowercase == (strstr(p->name, "uncased") != NULL));
        CHECK(p->checkpoint_file && p->checkpoint_source && strstr(p->checkpoint_source, "ngc.nvidia.com"));
    }
    CHECK(!strcmp(get("megatron-bert-345m-uncased")->checkpoint_file, "model_optim_rng.pt"));
    CHECK(!strcmp(get("biomegatron-bert-345m-cased")->checkpoint_file, "MegatronBERT.pt"));
    CHECK(get("megatron-bert-345m-uncased")->vocab_size == 30522);
    CHECK(get("megatron-bert-345m-cased")->vocab_size == 28996);
    CHECK(strstr(get("megatron-bert-345m-cased")->vocab_source, "bert-large-cased"));
    CHECK(strstr(get("biomegatron-bert-345m-uncased")->vocab_source, "biomegatron345muncased"));

    static const char *own[] = {"megatron-bert-uncased", "megatron-bert-cased"};
    for (int i = 0; i < 2; i++) {
        const mt_pretrained_info *p = get(own[i]);
        if (!p) continue;
        CHECK(!p->has_architecture && p->hidden_size == 0 && p->checkpoint_file == NULL && p->megatron == 1);
        CHECK(p->lowercase == (i == 0));
        CHECK(strstr(p->vocab_source, i == 0 ? "bert-large-uncased" : "bert-large-cased"));
    }
    static const struct {
        const char *name;
        int h, l, a, lower;
    } bert[] = {{"bert-base-uncased", 768, 12, 12, 1}, {"bert-base-cased", 768, 12, 12, 0},
                {"bert-large-uncased", 1024, 24, 16, 1}, {"bert-large-cased", 1024, 24, 16, 0}};
    for (int i = 0; i < 4; i++) {
        const mt_pretrained_info *p = get(bert[i].name);
        if (!p) continue;
        CHECK(p->has_architecture && p->hidden_size == bert[i].h && p->num_layers == bert[i].l &&
              p->num_attention_heads == bert[i].a && p->max_position_embeddings == 512 && p->megatron == 0 &&
              p->lowercase == bert[i].lower && p->ffn_hidden_size == 4 * bert[i].h);
        CHECK(strstr(p->vocab_source, "huggingface.co") && strstr(p->vocab_source, bert[i].name));
    }
    size_t n = 0;
    const mt_pretrained_info *all = mt_pretrained_all(&n);
    CHECK(all && n == 10);
    for (size_t i = 0; i < n; i++) {
        CHECK(mt_pretrained_find(all[i].name) == &all[i]);
        CHECK(strstr(mt_pretrained_names(), all[i].name));
        CHECK(!strcmp(all[i].vocab_file, "vocab.txt"));
    }
    const mt_pretrained_info *p = (const mt_pretrained_info *)1;
    CHECK(mt_pretrained_lookup("bert-huge", &p) == MT_ERR_NOT_FOUND && p == NULL);
    CHECK_MSG(strstr(mt_last_error(), "bert-huge") && strstr(mt_last_error(), "megatron-bert-345m-uncased"), "%s",
              mt_last_error());
}

static void test_files(void) {
    char dir[256], path[1024], want[1024];
    snprintf(dir, sizeof dir, "/tmp/megatune-test-pretrained-%d", (int)getpid());
    setenv("MEGATUNE_MODEL_DIR", dir, 1);
    char got[1024];
    CHECK_OK(mt_pretrained_model_dir(got, sizeof got));
    CHECK(!strcmp(got, dir));

    const mt_pretrained_info *p = mt_pretrained_find("megatron-bert-345m-uncased");
    snprintf(want, sizeof want, "%s/megatron-bert-345m-uncased/vocab.txt", dir);
    CHECK(mt_pretrained_vocab_path(p, path, sizeof path) == MT_ERR_NOT_FOUND);
    CHECK_MSG(strstr(mt_last_error(), want) && strstr(mt_last_error(), "huggingface.co/bert-large-uncased"), "%s",
              mt_last_error());
    snprintf(want, sizeof want, "%s/megatron-bert-345m-uncased/model_optim_rng.pt", dir);
    CHECK(mt_pretrained_checkpoint_path(p, path, sizeof path) == MT_ERR_NOT_FOUND);
    CHECK_MSG(strstr(mt_last_error(), want) && strstr(mt_last_error(), "megatron_bert_345m"), "%s", mt_last_error());

    // Once the files exist, the paths resolve.
    char sub[600];
    snprintf(sub, sizeof sub, "%s/megatron-bert-345m-uncased", dir);
    mkdir(dir, 0700);
    mkdir(sub, 0700);
    snprintf(want, sizeof want, "%s/vocab.txt", sub);
    FILE *f = fopen(want, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_OK(mt_pretrained_vocab_path(p, path, sizeof path));
    CHECK(!strcmp(path, want));
    remove(want);
    rmdir(sub);
    rmdir(dir);

    // No checkpoint for the shape-less names: the message says to give one.
    p = mt_pretrained_find("megatron-bert-cased");
    CHECK(mt_pretrained_checkpoint_path(p, path, sizeof path) == MT_ERR_NOT_FOUND);
    CHECK_MSG(strstr(mt_last_error(), "megatron-bert-cased") && strstr(mt_last_error(), "checkpoint"), "%s",
              mt_last_error());

    // Without the variable: $HOME/.cache/megatune.
    unsetenv("MEGATUNE_MODEL_DIR");
    setenv("HOME", "/tmp/megatune-home", 1);
    CHECK_OK(mt_pretrained_model_dir(got, sizeof got));
    CHECK(!strcmp(got, "/tmp/megatune-home/.cache/megatune"));
    p = mt_pretrained_find("bert-base-cased");
    CHECK(mt_pretrained_vocab_path(p, path, sizeof path) == MT_ERR_NOT_FOUND);
    CHECK_MSG(strstr(mt_last_error(), "/tmp/megatune-home/.cache/megatune/bert-base-cased/vocab.txt") &&
                  strstr(mt_last_error(), "huggingface.co/bert-base-cased"),
              "%s", mt_last_error());
}

int main(void) {
    test_table();
    test_files();
    TEST_DONE();
}
