// Task loaders on the real data in $MEGATUNE_DATA with the bert-base-uncased vocab: example
// counts against the published figures (SOURCES.md), label maps, feature layout, window
// coverage on CoNLL-2003, and the import-iob / import-chemprot converters.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "tasks/data_tools.h"
#include "tasks/task.h"
#include "tasks/task_internal.h"
#include "test_util.h"

static const char *data;
static char tmp[256];

static void check_pair_layout(const mt_dataset *d, int pair, int max_len) {
    int bad = 0;
    for (size_t i = 0; i < d->n_feat; i++) {
        const mt_feature *f = &d->feat[i];
        const int32_t *ids = d->ids + f->off, *ty = d->types + f->off;
        if (f->len > max_len || ids[0] != 101 || ids[f->len - 1] != 102) { bad++; continue; }
        int seps = 0, seg = 0;
        for (int t = 0; t < f->len; t++) {
            if (ty[t] != seg) bad++;
            if (ids[t] == 102) {
                seps++;
                seg = 1; // tokens after the first [SEP] are segment 1
            }
        }
        if (seps != (pair ? 2 : 1)) bad++;
    }
    CHECK_MSG(bad == 0, "%d layout errors", bad);
}

static mt_dataset *load_glue(mt_tokenizer *tok, const char *task, const char *folder, const char *split, size_t want) {
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_GLUE);
    snprintf(o.glue_task, sizeof o.glue_task, "%s", task);
    char p[1024];
    snprintf(p, sizeof p, "%s/glue/%s", data, folder);
    mt_dataset *d = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, p, split, NULL, &d));
    if (d) {
        CHECK_MSG(mt_dataset_size(d) == want, "%s %s: %zu examples, want %zu", task, split, mt_dataset_size(d), want);
        fprintf(stderr, "  GLUE %-5s %s: %zu examples\n", task, split, mt_dataset_size(d));
    }
    return d;
}

static void count_labels(const mt_dataset *d, int64_t *c, int n) {
    memset(c, 0, (size_t)n * sizeof *c);
    for (size_t i = 0; i < d->n_feat; i++)
        if (d->feat[i].label >= 0 && d->feat[i].label < n) c[d->feat[i].label]++;
}

static void test_glue(mt_tokenizer *tok) {
    int64_t c[8];
    mt_dataset *d = load_glue(tok, "sst-2", "SST-2", "dev", 872);
    if (d) {
        count_labels(d, c, 2);
        CHECK(c[0] == 428 && c[1] == 444);
        check_pair_layout(d, 0, 128);
        mt_dataset_free(d);
    }
    if ((d = load_glue(tok, "mrpc", "MRPC", "dev", 408))) {
        check_pair_layout(d, 1, 128);
        mt_dataset_free(d);
    }
    if ((d = load_glue(tok, "sts-b", "STS-B", "dev", 1500))) {
        int bad = 0;
        for (size_t i = 0; i < d->n_feat; i++) bad += d->feat[i].target < 0 || d->feat[i].target > 5;
        CHECK(bad == 0);
        CHECK(fabsf(d->feat[0].target - 5.0f) < 1e-6f && fabsf(d->feat[1].target - 4.75f) < 1e-6f);
        check_pair_layout(d, 1, 128);
        mt_dataset_free(d);
    }
    if ((d = load_glue(tok, "cola", "CoLA", "dev", 1043))) {
        check_pair_layout(d, 0, 128);
        mt_dataset_free(d);
    }
    if ((d = load_glue(tok, "rte", "RTE", "dev", 277))) {
        check_pair_layout(d, 1, 128);
        mt_dataset_free(d);
    }
    if ((d = load_glue(tok, "wnli", "WNLI", "dev", 71))) {
        check_pair_layout(d, 1, 128);
        mt_dataset_free(d);
    }
    if (!getenv("MEGATUNE_SANITIZED") && (d = load_glue(tok, "rte", "RTE", "train", 2490))) {
        count_labels(d, c, 2);
        CHECK(c[0] == 1249 && c[1] == 1241);
        mt_dataset_free(d);
    }
    // SST-2 dev through the text-classification loader too (sentence<TAB>int label with a header)
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
    o.num_classes = 2;
    char p[1024];
    snprintf(p, sizeof p, "%s/glue/SST-2/dev.tsv", data);
    CHECK_OK(mt_dataset_load(&o, tok, p, "dev", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 872);
        mt_dataset_free(d);
    }
}

// Every word of the split predicted exactly once; returns the number of words.
static size_t coverage(const mt_dataset *d) {
    size_t nw = d->ex_word_off[d->n_examples];
    int *cnt = calloc(nw, sizeof *cnt);
    for (size_t i = 0; i < d->n_feat; i++) {
        const mt_feature *f = &d->feat[i];
        if (f->len > d->opt.max_seq_length) mt_test_failures++;
        for (int t = 0; t < f->len; t++)
            if (d->word_at[f->off + t] >= 0) cnt[d->ex_word_off[f->example] + (size_t)d->word_at[f->off + t]]++;
    }
    size_t bad = 0;
    for (size_t i = 0; i < nw; i++) bad += cnt[i] != 1;
    CHECK_MSG(bad == 0, "%zu words not predicted exactly once", bad);
    free(cnt);
    return nw;
}

static void test_conll(mt_tokenizer *tok) {
    char in[1024];
    size_t ns = 0, nw = 0;
    snprintf(in, sizeof in, "%s/conll2003/eng.testa", data);
    CHECK_OK(mt_data_import_iob(in, tmp, NULL, &ns, &nw));
    CHECK_MSG(ns == 3250 && nw == 51362, "eng.testa: %zu sentences %zu words", ns, nw);
    int full = !getenv("MEGATUNE_SANITIZED");
    if (full) {
        snprintf(in, sizeof in, "%s/conll2003/eng.train", data);
        CHECK_OK(mt_data_import_iob(in, tmp, NULL, &ns, &nw));
        CHECK_MSG(ns == 14041 && nw == 203621, "eng.train: %zu sentences %zu words", ns, nw);
    }
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
    mt_dataset *train = NULL, *dev = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, tmp, full ? "train" : "dev", NULL, &train));
    if (!train) return;
    if (full) {
        const char *want[] = {"O", "B-LOC", "B-MISC", "B-ORG", "I-LOC", "I-MISC", "I-ORG", "I-PER"};
        CHECK(mt_dataset_num_labels(train) == 8);
        for (int i = 0; i < 8 && i < mt_dataset_num_labels(train); i++) CHECK(!strcmp(mt_dataset_label_name(train, i), want[i]));
        CHECK(train->n_examples == 14041);
    }
    // dev with the train map, small windows: every word exactly once
    o.max_seq_length = 16;
    CHECK_OK(mt_dataset_load(&o, tok, tmp, "dev", train, &dev));
    if (dev) {
        size_t n = coverage(dev);
        CHECK(n == 51362 && dev->n_examples == 3250);
        fprintf(stderr, "  CoNLL-2003 dev, max_seq_length 16: %zu words in %zu windows, each predicted once\n", n,
                mt_dataset_size(dev));
        mt_dataset_free(dev);
    }
    o.max_seq_length = 128;
    CHECK_OK(mt_dataset_load(&o, tok, tmp, "dev", train, &dev));
    if (dev) {
        CHECK(coverage(dev) == 51362);
        // most sentences fit: exactly one NeMo-style feature per sentence except the long ones
        CHECK(mt_dataset_size(dev) >= 3250 && mt_dataset_size(dev) < 3300);
        fprintf(stderr, "  CoNLL-2003 dev, max_seq_length 128: %zu features for 3250 sentences\n", mt_dataset_size(dev));
        mt_dataset_free(dev);
    }
    mt_dataset_free(train);
}

static void test_ncbi(mt_tokenizer *tok) {
    char in[1024];
    size_t ns = 0, nw = 0;
    snprintf(in, sizeof in, "%s/ncbi-disease/devel.tsv", data);
    CHECK_OK(mt_data_import_iob(in, tmp, NULL, &ns, &nw)); // devel.tsv -> dev
    CHECK_MSG(ns == 923 && nw == 23969, "NCBI devel: %zu sentences %zu words", ns, nw);
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
    mt_dataset *d = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, tmp, "dev", NULL, &d));
    if (d) {
        CHECK(mt_dataset_num_labels(d) == 3 && !strcmp(mt_dataset_label_name(d, 0), "O") &&
              !strcmp(mt_dataset_label_name(d, 1), "B-Disease") && !strcmp(mt_dataset_label_name(d, 2), "I-Disease"));
        CHECK(coverage(d) == 23969);
        mt_dataset_free(d);
    }
}

static void test_chemprot(mt_tokenizer *tok) {
    char in[1024], out[1024], map[1024];
    snprintf(in, sizeof in, "%s/chemprot/train.tsv", data);
    snprintf(out, sizeof out, "%s/chemprot_train.tsv", tmp);
    snprintf(map, sizeof map, "%s/label_mapping.tsv", tmp);
    unlink(map);
    size_t n = 0;
    int nl = 0;
    CHECK_OK(mt_data_import_chemprot(in, out, map, &n, &nl));
    CHECK_MSG(n == 16521 && nl == 6, "chemprot train: %zu examples %d labels", n, nl);
    // NeMo's importer order over train: CPR:5, False, CPR:6, CPR:9, CPR:4, CPR:3
    FILE *f = fopen(map, "r");
    char buf[256] = {0};
    if (f) {
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        buf[got] = '\0';
        fclose(f);
    }
    CHECK_MSG(!strcmp(buf, "CPR:5\t0\nFalse\t1\nCPR:6\t2\nCPR:9\t3\nCPR:4\t4\nCPR:3\t5\n"), "map: %s", buf);
    // dev with the saved map
    char din[1024], dout[1024];
    snprintf(din, sizeof din, "%s/chemprot/dev.tsv", data);
    snprintf(dout, sizeof dout, "%s/chemprot_dev.tsv", tmp);
    CHECK_OK(mt_data_import_chemprot(din, dout, map, &n, &nl));
    CHECK(n == 10361 && nl == 6);
    if (getenv("MEGATUNE_SANITIZED")) return;
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
    o.num_classes = 6;
    o.max_seq_length = 128;
    mt_dataset *d = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, out, "train", NULL, &d));
    if (d) {
        int64_t c[6];
        count_labels(d, c, 6);
        // SOURCES.md: False 12389, CPR:3 761, CPR:4 2251, CPR:5 172, CPR:6 235, CPR:9 713
        CHECK(c[0] == 172 && c[1] == 12389 && c[2] == 235 && c[3] == 713 && c[4] == 2251 && c[5] == 761);
        fprintf(stderr, "  ChemProt train: %zu examples, 6 classes, counts match SOURCES.md\n", mt_dataset_size(d));
        mt_dataset_free(d);
    }
}

int main(void) {
    data = getenv("MEGATUNE_DATA");
    if (!data || !*data) TEST_SKIP("MEGATUNE_DATA not set");
    char vp[1024];
    snprintf(vp, sizeof vp, "%s/bert-base-uncased/vocab.txt", data);
    if (access(vp, R_OK) != 0) TEST_SKIP("%s not found", vp);
    snprintf(tmp, sizeof tmp, "/tmp/mt_test_tasks_real_XXXXXX");
    if (!mkdtemp(tmp)) TEST_SKIP("cannot create a temp dir");
    mt_vocab *v = NULL;
    mt_tokenizer *tok = NULL;
    CHECK_OK(mt_vocab_load(vp, &v));
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    if (!tok) TEST_DONE();
    test_glue(tok);
    test_conll(tok);
    test_ncbi(tok);
    test_chemprot(tok);
    mt_tokenizer_free(tok);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    TEST_DONE();
}
