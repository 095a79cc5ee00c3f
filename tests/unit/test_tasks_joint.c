// Punctuation/capitalisation and intent/slot loaders on small hand-made data:
//  - features as NeMo builds them: [CLS]/[SEP] at the pad ids (P&C 0; intent/slot the 'O' slot,
//    wherever dict.slots.csv puts it), a word's labels on all its pieces, the loss mask
//    (ignore_start_end), the intent on every window, label maps (pad first, then sorted);
//  - metrics names and values from known logits (two reports: P&C macro, intent/slot micro);
//  - bad data: one message naming the file and line, never a crash.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "tasks/data_tools.h"
#include "tasks/task.h"
#include "test_util.h"

static char dir[256];
static mt_tokenizer *tok;

static char *path_of(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_file(const char *name, const char *content) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(content, 1, strlen(content), f);
    fclose(f);
}

static void expect_fail(const char *what, mt_status s, const char *f1, const char *f2);

// The whole file (up to 4 KiB), or "<missing>".
static const char *slurp(const char *name) {
    static char b[2][4096];
    static int k;
    k ^= 1;
    FILE *f = fopen(path_of(name), "rb");
    if (!f) return "<missing>";
    size_t n = fread(b[k], 1, sizeof b[k] - 1, f);
    b[k][n] = 0;
    fclose(f);
    return b[k];
}

// Whether a temporary output file (<name>.tmp.XXXXXX, tasks/outfile.c) is left in folder sub.
static int temp_left(const char *sub) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '\\.tmp\\.'", path_of(sub));
    return system(cmd) == 0;
}

static const char *const atis_out_names[6] = {"train.tsv", "train_slots.tsv", "test.tsv", "test_slots.tsv",
                                              "dict.intents.csv", "dict.slots.csv"};

// A failed import-atis must leave the files already in the output folder exactly as they were
// (it once deleted five of them, a user's earlier data set, even when it had not written them).
static void atis_expect_untouched(const char *what, mt_status s, const char *f1, const char *f2) {
    expect_fail(what, s, f1, f2);
    char name[64];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "atis_out/%s", atis_out_names[i]);
        char want[64];
        snprintf(want, sizeof want, "user's %s\n", atis_out_names[i]);
        const char *got = slurp(name);
        CHECK_MSG(!strcmp(got, want), "%s: %s is now '%s', want the user's file untouched", what, name, got);
    }
    CHECK_MSG(!temp_left("atis_out"), "%s: a temporary file was left in atis_out", what);
}

static void expect_fail(const char *what, mt_status s, const char *f1, const char *f2) {
    const char *msg = mt_last_error();
    CHECK_MSG(s != MT_OK, "%s: loaded without error", what);
    if (s == MT_OK) return;
    CHECK_MSG((!f1 || strstr(msg, f1)) && (!f2 || strstr(msg, f2)), "%s: message '%s' lacks '%s' / '%s'", what, msg,
              f1 ? f1 : "", f2 ? f2 : "");
    fprintf(stderr, "  %-32s -> %s\n", what, msg);
    mt_clear_error();
}

static mt_status load(mt_task_kind kind, const char *split, mt_dataset **out) {
    mt_task_options o;
    mt_task_options_default(&o, kind);
    if (kind == MT_TASK_INTENT_SLOT) o.ignore_start_end = 1;
    o.max_seq_length = 16;
    *out = NULL;
    return mt_dataset_load(&o, tok, dir, split, NULL, out);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/mt_test_joint_XXXXXX");
    if (!mkdtemp(dir)) TEST_SKIP("cannot create a temp dir");
    // "cats" -> cat ##s (two pieces)
    write_file("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\n##s\nsat\nplay\njazz\nin\nparis\n");
    mt_vocab *v = NULL;
    CHECK_OK(mt_vocab_load(path_of("vocab.txt"), &v));
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    if (!tok) TEST_DONE();

    // ---- P&C features ----
    write_file("text_train.txt", "the cats sat\n\nsat the cat\n");
    write_file("labels_train.txt", "OU ,O ?O\n\n.O OO OU\n");
    mt_dataset *d = NULL;
    CHECK_OK(load(MT_TASK_PUNCT_CAPIT, "train", &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 2); // the blank pair is skipped
        CHECK(mt_dataset_num_labels(d) == 4 && !strcmp(mt_dataset_label_name(d, 0), "O") &&
              !strcmp(mt_dataset_label_name(d, 1), ",") && !strcmp(mt_dataset_label_name(d, 2), ".") &&
              !strcmp(mt_dataset_label_name(d, 3), "?"));
        CHECK(mt_dataset_num_labels2(d) == 2 && !strcmp(mt_dataset_label_name2(d, 1), "U"));
        size_t idx[2] = {0, 1};
        mt_batch_buffer buf = {0};
        mt_batch b;
        CHECK_OK(mt_dataset_make_batch(d, idx, 2, &buf, &b));
        // row 0: [CLS] the cat ##s sat [SEP]; punct 0 0 1 1 3 0, capit 0 1 0 0 0 0
        const int32_t p0[6] = {0, 0, 1, 1, 3, 0}, c0[6] = {0, 1, 0, 0, 0, 0};
        CHECK(b.T == 6 && b.labels2 && b.loss_mask);
        for (int t = 0; t < 6 && b.labels2; t++)
            CHECK_MSG(b.labels[t] == p0[t] && b.labels2[t] == c0[t], "P&C position %d: %d/%d", t, b.labels[t],
                      b.labels2[t]);
        // row 1 is one token shorter: padding takes id 0 in both rows and no loss
        CHECK(b.labels[11] == 0 && b.labels2[11] == 0 && b.loss_mask[11] == 0.0f && b.loss_mask[6] == 1.0f);
        // metrics from logits that are right everywhere except capit of "the" (row 0)
        int C1 = 4, C2 = 2, T = b.T;
        float *lg = calloc((size_t)2 * T * (C1 + C2), sizeof *lg);
        float *l2 = lg + (size_t)2 * T * C1;
        for (int i = 0; i < 2 * T; i++) {
            lg[(size_t)i * C1 + b.labels[i]] = 5.0f;
            l2[(size_t)i * C2 + b.labels2[i]] = 5.0f;
        }
        l2[(size_t)1 * C2 + 1] = 0.0f; // "the" (gold U) predicted O
        l2[(size_t)1 * C2 + 0] = 5.0f;
        mt_metrics *m = NULL;
        CHECK_OK(mt_metrics_create(d, &m));
        if (m) {
            CHECK_OK(mt_metrics_add(m, idx, 2, &b, lg));
            mt_metric_value mv[8];
            int n = mt_metrics_compute(m, mv, 8);
            CHECK(n == 6 && !strcmp(mv[0].name, "punct_f1") && !strcmp(mv[3].name, "capit_f1"));
            CHECK_MSG(n == 6 && mv[0].value == 100.0, "punct_f1 %g", mv[0].value);
            // capit: O 4 gold, 5 predicted (4 right); U 2 gold, 1 predicted: macro F1 = (8/9*100 + 2/3*100)/2
            double want = (2.0 * 0.8 * 1.0 / 1.8 * 100 + 2.0 * 1.0 * 0.5 / 1.5 * 100) / 2;
            CHECK_MSG(n == 6 && fabs(mv[3].value - want) < 1e-9, "capit_f1 %.9f, want %.9f", mv[3].value, want);
            mt_metrics_free(m);
        }
        free(lg);
        mt_batch_buffer_free(&buf);
        mt_dataset_free(d);
    }
    // ---- P&C bad data ----
    write_file("text_bad1.txt", "the cat\n");
    write_file("labels_bad1.txt", "OU O\n");
    expect_fail("label not two characters", load(MT_TASK_PUNCT_CAPIT, "bad1", &d), "labels_bad1.txt:1", "two characters");
    write_file("text_bad2.txt", "the cat\nsat\n");
    write_file("labels_bad2.txt", "OU OO\nOO OO\n");
    expect_fail("word/label count", load(MT_TASK_PUNCT_CAPIT, "bad2", &d), "text_bad2.txt:2", "1 words");
    write_file("text_bad3.txt", "the cat\n");
    write_file("labels_bad3.txt", "OU OO\nOO\n");
    expect_fail("line counts", load(MT_TASK_PUNCT_CAPIT, "bad3", &d), "labels_bad3.txt has 2", NULL);
    write_file("text_bad4.txt", "the cat\n");
    write_file("labels_bad4.txt", "OU\xff OO\n");
    expect_fail("bad UTF-8", load(MT_TASK_PUNCT_CAPIT, "bad4", &d), "labels_bad4.txt:1", "UTF-8");
    // labels are two characters, not two bytes: '¿' (U+00BF, two bytes) alone is one character,
    // and '¿U' (three bytes) is a punctuation mark and a capitalisation, split between characters
    write_file("text_bad5.txt", "the cat\n");
    write_file("labels_bad5.txt", "OU \xc2\xbf\n");
    expect_fail("one 2-byte character", load(MT_TASK_PUNCT_CAPIT, "bad5", &d), "labels_bad5.txt:1", "two characters");
    write_file("text_bad6.txt", "the cat\n");
    write_file("labels_bad6.txt", "OU \xc2\xbf\xc2\xbfU\n");
    expect_fail("three characters", load(MT_TASK_PUNCT_CAPIT, "bad6", &d), "labels_bad6.txt:1", "two characters");
    write_file("text_es.txt", "the cat sat\nsat the cats\n");
    write_file("labels_es.txt", "\xc2\xbfU OO ?O\nOU \xc2\xa1O .O\n");
    CHECK_OK(load(MT_TASK_PUNCT_CAPIT, "es", &d));
    if (d) {
        // punct: O, then sorted by bytes: '.' '?' '¡' (C2 A1) '¿' (C2 BF); capit: O U
        const char *want[5] = {"O", ".", "?", "\xc2\xa1", "\xc2\xbf"};
        CHECK_MSG(mt_dataset_num_labels(d) == 5, "punct labels: %d", mt_dataset_num_labels(d));
        for (int i = 0; i < 5 && mt_dataset_num_labels(d) == 5; i++)
            CHECK_MSG(!strcmp(mt_dataset_label_name(d, i), want[i]), "punct label %d: '%s'", i,
                      mt_dataset_label_name(d, i));
        CHECK(mt_dataset_num_labels2(d) == 2 && !strcmp(mt_dataset_label_name2(d, 1), "U"));
        size_t idx[1] = {0};
        mt_batch_buffer buf = {0};
        mt_batch b;
        CHECK_OK(mt_dataset_make_batch(d, idx, 1, &buf, &b));
        // [CLS] the cat sat [SEP]: punct 0 4 0 2 0, capit 0 1 0 0 0
        const int32_t pe[5] = {0, 4, 0, 2, 0}, ce[5] = {0, 1, 0, 0, 0};
        CHECK(b.T == 5 && b.labels2);
        for (int t = 0; t < 5 && b.T == 5 && b.labels2; t++)
            CHECK_MSG(b.labels[t] == pe[t] && b.labels2[t] == ce[t], "P&C '\xc2\xbfU' position %d: %d/%d", t,
                      b.labels[t], b.labels2[t]);
        mt_batch_buffer_free(&buf);
        mt_dataset_free(d);
    }

    // ---- intent/slot features: 'O' is slot 2 of 3, not first nor last ----
    write_file("dict.intents.csv", "music\nweather\n");
    write_file("dict.slots.csv", "B-artist\nB-city\nO\n");
    write_file("train.tsv", "sentence\tlabel\nplay jazz\t0\nthe cats in paris\t1\n");
    write_file("train_slots.tsv", "2 0\n2 2 2 1\n");
    CHECK_OK(load(MT_TASK_INTENT_SLOT, "train", &d));
    if (d) {
        mt_head_kind h1, h2;
        int n1, n2;
        mt_dataset_head(d, &h1, &n1);
        mt_dataset_head2(d, &h2, &n2);
        CHECK(h1 == MT_HEAD_SEQUENCE_CLASSIFIER && n1 == 2 && h2 == MT_HEAD_TOKEN_CLASSIFIER && n2 == 3);
        size_t idx[2] = {0, 1};
        mt_batch_buffer buf = {0};
        mt_batch b;
        CHECK_OK(mt_dataset_make_batch(d, idx, 2, &buf, &b));
        CHECK(b.labels[0] == 0 && b.labels[1] == 1); // intents
        // row 1: [CLS] the cat ##s in paris [SEP] -> slots 2 2 2 2 2 1 2, loss mask 0 1 1 1 1 1 0
        const int32_t s1[7] = {2, 2, 2, 2, 2, 1, 2};
        const float m1[7] = {0, 1, 1, 1, 1, 1, 0};
        CHECK(b.T == 7);
        for (int t = 0; t < 7; t++)
            CHECK_MSG(b.labels2[7 + t] == s1[t] && b.loss_mask[7 + t] == m1[t], "slot position %d: %d %g", t,
                      b.labels2[7 + t], b.loss_mask[7 + t]);
        CHECK(b.labels2[4] == 2 && b.loss_mask[4] == 0.0f); // [SEP] of row 0, then padding: pad slot, no loss
        CHECK(b.labels2[5] == 2 && b.loss_mask[5] == 0.0f);
        mt_batch_buffer_free(&buf);
        mt_dataset_free(d);
    }
    // class_balancing=weighted_loss: NeMo's total/(present*count) over the train split's intents and
    // word slots: intents 1+1 -> 1, 1; slots O 4, B-artist 1, B-city 1 of 6 -> 0.5, 2, 2
    {
        mt_task_options o;
        mt_task_options_default(&o, MT_TASK_INTENT_SLOT);
        o.class_balancing = 1;
        CHECK_OK(mt_dataset_load(&o, tok, dir, "train", NULL, &d));
        if (d) {
            size_t idx[1] = {0};
            mt_batch_buffer buf = {0};
            mt_batch b;
            CHECK_OK(mt_dataset_make_batch(d, idx, 1, &buf, &b));
            CHECK(b.class_weights && b.class_weights2);
            if (b.class_weights && b.class_weights2) {
                CHECK(b.class_weights[0] == 1.0f && b.class_weights[1] == 1.0f);
                CHECK_MSG(b.class_weights2[0] == 2.0f && b.class_weights2[1] == 2.0f && b.class_weights2[2] == 0.5f,
                          "slot weights %g %g %g", b.class_weights2[0], b.class_weights2[1], b.class_weights2[2]);
            }
            mt_batch_buffer_free(&buf);
            mt_dataset_free(d);
        }
    }
    // ---- intent/slot bad data ----
    write_file("b1.tsv", "sentence\tlabel\nplay jazz\t5\n");
    write_file("b1_slots.tsv", "2 0\n");
    expect_fail("intent out of range", load(MT_TASK_INTENT_SLOT, "b1", &d), "b1.tsv:2", "dict.intents.csv");
    write_file("b2.tsv", "sentence\tlabel\nplay jazz\t0\n");
    write_file("b2_slots.tsv", "2\n");
    expect_fail("slot count", load(MT_TASK_INTENT_SLOT, "b2", &d), "b2.tsv:2", "slot id per word");
    write_file("b3.tsv", "sentence\tlabel\nplay jazz\t0\n");
    write_file("b3_slots.tsv", "2 9\n");
    expect_fail("slot out of range", load(MT_TASK_INTENT_SLOT, "b3", &d), "b3_slots.tsv:1", "slot 2");
    write_file("b4.tsv", "sentence\tlabel\nplay jazz\n");
    write_file("b4_slots.tsv", "2 0\n");
    expect_fail("intent missing", load(MT_TASK_INTENT_SLOT, "b4", &d), "b4.tsv:2", "intent id");
    write_file("dict.slots.csv", "B-artist\nB-city\n");
    expect_fail("no O slot", load(MT_TASK_INTENT_SLOT, "train", &d), "dict.slots.csv", "'O'");

    // ---- import-atis: all six files or none, and a failure leaves the output folder as it was ----
    mkdir(path_of("atis_in"), 0755);
    mkdir(path_of("atis_out"), 0755);
    write_file("atis_in/atis.dict.vocab.csv", "BOS\nEOS\nPlay\njazz\nin\nparis\n");
    write_file("atis_in/atis.dict.intent.csv", "music\nweather\n");
    write_file("atis_in/atis.dict.slots.csv", "B-artist\nB-city\nO\n");
    write_file("atis_in/atis.train.query.csv", "0 2 3 1\n0 4 5 1\n");
    write_file("atis_in/atis.train.intent.csv", "0\n1\n");
    write_file("atis_in/atis.train.slots.csv", "2 2 0 2\n2 2 1 2\n");
    write_file("atis_in/atis.test.query.csv", "0 3 1\n");
    write_file("atis_in/atis.test.intent.csv", "7\n"); // not an intent id: the test split fails, after train
    write_file("atis_in/atis.test.slots.csv", "2 0 2\n");
    for (int i = 0; i < 6; i++) {
        char name[64], content[64];
        snprintf(name, sizeof name, "atis_out/%s", atis_out_names[i]);
        snprintf(content, sizeof content, "user's %s\n", atis_out_names[i]);
        write_file(name, content);
    }
    size_t ntr = 0, nte = 0;
    atis_expect_untouched("import-atis bad test intent",
                          mt_data_import_atis(path_of("atis_in"), path_of("atis_out"), 0, &ntr, &nte),
                          "atis.test.intent.csv:1", "intent id");
    write_file("atis_in/atis.test.intent.csv", "1\n");
    write_file("atis_in/atis.train.query.csv", "0 2 99 1\n0 4 5 1\n"); // word id out of range in train
    atis_expect_untouched("import-atis bad train word id",
                          mt_data_import_atis(path_of("atis_in"), path_of("atis_out"), 0, &ntr, &nte),
                          "atis.train.query.csv:1", "atis.dict.vocab.csv");
    write_file("atis_in/atis.train.query.csv", "0 2 3 1\n0 4 5 1\n");
    unlink(path_of("atis_in/atis.test.slots.csv")); // a missing input
    atis_expect_untouched("import-atis missing input",
                          mt_data_import_atis(path_of("atis_in"), path_of("atis_out"), 0, &ntr, &nte),
                          "atis.test.slots.csv", NULL);
    write_file("atis_in/atis.test.slots.csv", "2 0 2\n");
    CHECK_OK(mt_data_import_atis(path_of("atis_in"), path_of("atis_out"), 1, &ntr, &nte));
    CHECK(ntr == 2 && nte == 1);
    const char *atis_want[6] = {"sentence\tlabel\nplay jazz\t0\nin paris\t1\n", "2 0\n2 1\n",
                                "sentence\tlabel\njazz\t1\n", "0\n", "music\nweather\n", "B-artist\nB-city\nO\n"};
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf(name, sizeof name, "atis_out/%s", atis_out_names[i]);
        const char *got = slurp(name);
        CHECK_MSG(!strcmp(got, atis_want[i]), "import-atis: %s is '%s', want '%s'", name, got, atis_want[i]);
    }
    CHECK(!temp_left("atis_out"));

    mt_tokenizer_free(tok);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
