// Task loaders on small temp files with a tiny vocab whose ids are known: feature layout
// ([CLS]/[SEP], segment ids, loss masks, labels), NeMo's truncation rules, label maps, class
// weights, dynamic-padding batches, NER windows (every word predicted exactly once),
// mt_metrics and mt_task_predict with a fake forward.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "tasks/task.h"
#include "tasks/task_internal.h"
#include "test_util.h"

static char dir[256];
static const char *vocab_words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
                                    "dog", "##s", "good", "bad", "movie", ".", "john", "lives", "in", "paris",
                                    "a", "run", "##ning", ","};
enum { PAD, UNK, CLS, SEP, MASK, THE, CAT, SAT, ON, MAT, DOG, S_, GOOD, BAD, MOVIE, DOT, JOHN, LIVES, IN, PARIS, A, RUN, NING };

static void write_file(const char *name, const char *content) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(content, f);
    fclose(f);
}

static char *path_of(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static int feat_eq(const mt_dataset *d, size_t i, const int32_t *ids, int n) {
    const mt_feature *f = &d->feat[i];
    if (f->len != n) {
        fprintf(stderr, "  feature %zu: len %d want %d\n", i, f->len, n);
        return 0;
    }
    for (int t = 0; t < n; t++)
        if (d->ids[f->off + t] != ids[t]) {
            fprintf(stderr, "  feature %zu: id[%d] = %d want %d\n", i, t, d->ids[f->off + t], ids[t]);
            return 0;
        }
    return 1;
}

static void test_text_classification(mt_tokenizer *tok) {
    write_file("tc.tsv", "sentence\tlabel\nthe cat sat\t0\ngood movie .\t2\n\nthe dogs\t1\nbad\t1\n");
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
    CHECK(o.max_seq_length == 256);
    o.num_classes = 4;
    o.class_balancing = 1;
    mt_dataset *d = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("tc.tsv"), "train", NULL, &d));
    if (!d) return;
    CHECK(mt_dataset_size(d) == 4);
    CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SAT, SEP}, 5));
    CHECK(feat_eq(d, 2, (int32_t[]){CLS, THE, DOG, S_, SEP}, 5));
    CHECK(d->feat[0].label == 0 && d->feat[1].label == 2 && d->feat[2].label == 1);
    mt_head_kind h;
    int nc;
    mt_dataset_head(d, &h, &nc);
    CHECK(h == MT_HEAD_SEQUENCE_CLASSIFIER && nc == 4);
    // weights: counts 1,2,1,0 -> total 4, 3 classes present: 4/(3*1), 4/(3*2), 4/(3*1), 1
    const float *w = mt_dataset_class_weights(d);
    CHECK(w && fabsf(w[0] - 4.0f / 3) < 1e-6f && fabsf(w[1] - 2.0f / 3) < 1e-6f && fabsf(w[3] - 1.0f) < 1e-6f);
    // dynamic padding to the longest feature of the batch
    mt_batch_buffer buf = {0};
    mt_batch b;
    size_t idx[2] = {3, 0};
    CHECK_OK(mt_dataset_make_batch(d, idx, 2, &buf, &b));
    CHECK(b.B == 2 && b.T == 5);
    int32_t want_ids[10] = {CLS, BAD, SEP, PAD, PAD, CLS, THE, CAT, SAT, SEP};
    int32_t want_mask[10] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
    CHECK(!memcmp(b.input_ids, want_ids, sizeof want_ids));
    CHECK(!memcmp(b.attention_mask, want_mask, sizeof want_mask));
    CHECK(b.labels[0] == 1 && b.labels[1] == 0);
    CHECK(b.class_weights == w);
    // metrics: perfect logits -> 100
    mt_metrics *m = NULL;
    CHECK_OK(mt_metrics_create(d, &m));
    float logits[8] = {0, 5, 0, 0, 5, 0, 0, 0};
    CHECK_OK(mt_metrics_add(m, idx, 2, &b, logits));
    mt_metric_value v[8];
    int nv = mt_metrics_compute(m, v, 8);
    CHECK(nv >= 3 && !strcmp(v[0].name, "f1") && fabs(v[0].value - 100.0) < 1e-9);
    mt_metrics_free(m);
    mt_batch_buffer_free(&buf);
    mt_dataset_free(d);
    // NeMo's off-by-one: [CLS] + pieces cut to max_seq_length, then [SEP]: 4 tokens for max 3
    o.max_seq_length = 3;
    o.class_balancing = 0;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("tc.tsv"), "train", NULL, &d));
    if (d) {
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SEP}, 4));
        CHECK(mt_dataset_max_len(d) == 4);
        CHECK(mt_dataset_class_weights(d) == NULL);
        mt_dataset_free(d);
    }
    // no header: the first line is data when its last token is an int
    write_file("tc2.tsv", "the mat 1\r\n"); // CRLF line ends (ChemProt's raw files have them)
    o.max_seq_length = 256;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("tc2.tsv"), "train", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 1 && d->feat[0].label == 1);
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, MAT, SEP}, 4));
        mt_dataset_free(d);
    }
}

static void test_glue(mt_tokenizer *tok) {
    mkdir(path_of("mrpc"), 0755);
    write_file("mrpc/dev.tsv", "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                               "1\t11\t12\tthe cat sat on the mat\tthe dog\n"
                               "0\t13\t14\tthe dog\tthe cat sat on the mat\n"
                               "0\t15\t16\ta cat\ta dog\n");
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_GLUE);
    snprintf(o.glue_task, sizeof o.glue_task, "mrpc");
    o.max_seq_length = 8;
    mt_dataset *d = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("mrpc"), "dev", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 3);
        // 6 + 2 pieces over the 5 allowed: the longer side loses its tail first
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SAT, SEP, THE, DOG, SEP}, 8));
        CHECK(feat_eq(d, 1, (int32_t[]){CLS, THE, DOG, SEP, THE, CAT, SAT, SEP}, 8));
        CHECK(feat_eq(d, 2, (int32_t[]){CLS, A, CAT, SEP, A, DOG, SEP}, 7));
        const mt_feature *f = &d->feat[0];
        int32_t types[8] = {0, 0, 0, 0, 0, 1, 1, 1};
        CHECK(!memcmp(d->types + f->off, types, sizeof types));
        CHECK(d->feat[0].label == 1 && d->feat[1].label == 0);
        CHECK(mt_dataset_num_labels(d) == 2 && !strcmp(mt_dataset_label_name(d, 1), "1"));
        mt_batch_buffer buf = {0};
        mt_batch b;
        size_t idx[2] = {2, 0};
        CHECK_OK(mt_dataset_make_batch(d, idx, 2, &buf, &b));
        CHECK(b.T == 8 && b.token_type_ids[4] == 1 && b.token_type_ids[7] == 0 && b.attention_mask[7] == 0);
        // metrics: acc, f1, acc_and_f1 for MRPC
        mt_metrics *m = NULL;
        CHECK_OK(mt_metrics_create(d, &m));
        float logits[4] = {1, 0, 1, 0}; // predicts 0,0; gold 0,1
        CHECK_OK(mt_metrics_add(m, idx, 2, &b, logits));
        mt_metric_value v[8];
        int nv = mt_metrics_compute(m, v, 8);
        CHECK(nv == 3 && !strcmp(v[0].name, "acc") && fabs(v[0].value - 0.5) < 1e-12);
        CHECK(!strcmp(v[1].name, "f1") && v[1].value == 0.0);
        mt_metrics_free(m);
        mt_batch_buffer_free(&buf);
        mt_dataset_free(d);
    }
    // STS-B: regression, label = last column
    mkdir(path_of("stsb"), 0755);
    write_file("stsb/train.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                                 "0\tg\tf\ty\t0\tn\tn\tthe cat\tthe dog\t4.750\n");
    snprintf(o.glue_task, sizeof o.glue_task, "sts-b");
    o.max_seq_length = 128;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("stsb"), "train", NULL, &d));
    if (d) {
        mt_head_kind h;
        int nc;
        mt_dataset_head(d, &h, &nc);
        CHECK(h == MT_HEAD_SEQUENCE_REGRESSION && nc == 1);
        CHECK(fabsf(d->feat[0].target - 4.75f) < 1e-6f);
        mt_batch_buffer buf = {0};
        mt_batch b;
        size_t idx[1] = {0};
        CHECK_OK(mt_dataset_make_batch(d, idx, 1, &buf, &b));
        CHECK(b.targets && b.targets[0] == d->feat[0].target && b.labels == NULL);
        mt_batch_buffer_free(&buf);
        mt_dataset_free(d);
    }
    // CoLA: no header, sentence in column 3, label in column 1
    mkdir(path_of("cola"), 0755);
    write_file("cola/dev.tsv", "gj04\t1\t\tthe cat sat .\ngj04\t0\t*\tcat the sat");
    snprintf(o.glue_task, sizeof o.glue_task, "cola");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("cola"), "dev", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 2);
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SAT, DOT, SEP}, 6));
        CHECK(d->feat[0].label == 1 && d->feat[1].label == 0);
        mt_dataset_free(d);
    }
    // MNLI: text_a col 8, text_b col 9, label last; dev = dev_matched, mnli-mm = dev_mismatched
    mkdir(path_of("mnli"), 0755);
    const char *mh = "index\tpromptID\tpairID\tgenre\ts1bp\ts2bp\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label\n";
    char mbuf[512];
    snprintf(mbuf, sizeof mbuf, "%s0\t1\t1\tg\tx\tx\tx\tx\tthe cat\tthe dog\tneutral\tneutral\n", mh);
    write_file("mnli/dev_matched.tsv", mbuf);
    snprintf(mbuf, sizeof mbuf, "%s0\t1\t1\tg\tx\tx\tx\tx\ta cat\ta dog\tcontradiction\tcontradiction\n"
                                "1\t1\t1\tg\tx\tx\tx\tx\ta\tthe\tentailment\tentailment\n", mh);
    write_file("mnli/dev_mismatched.tsv", mbuf);
    snprintf(o.glue_task, sizeof o.glue_task, "mnli");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("mnli"), "dev", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 1 && d->feat[0].label == 2 && mt_dataset_num_classes(d) == 3);
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SEP, THE, DOG, SEP}, 7));
        mt_dataset_free(d);
    }
    snprintf(o.glue_task, sizeof o.glue_task, "mnli-mm");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("mnli"), "dev", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 2 && d->feat[0].label == 0 && d->feat[1].label == 1);
        mt_dataset_free(d);
    }
    // QQP: text 3/4, label 5; rows with missing fields are skipped as NeMo does
    mkdir(path_of("qqp"), 0755);
    write_file("qqp/train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                "0\t1\t2\tthe cat\ta cat\t1\n1\t3\t4\tbroken row\n2\t5\t6\tthe\ta\t0\n");
    snprintf(o.glue_task, sizeof o.glue_task, "qqp");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("qqp"), "train", NULL, &d));
    if (d) {
        CHECK(mt_dataset_size(d) == 2 && d->feat[0].label == 1 && d->feat[1].label == 0);
        CHECK(feat_eq(d, 1, (int32_t[]){CLS, THE, SEP, A, SEP}, 5));
        mt_dataset_free(d);
    }
    // QNLI: text 1/2, label last; SST-2: text 0, label 1, header
    mkdir(path_of("qnli"), 0755);
    write_file("qnli/dev.tsv", "index\tquestion\tsentence\tlabel\n0\tthe cat\tthe mat\tentailment\n");
    snprintf(o.glue_task, sizeof o.glue_task, "qnli");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("qnli"), "dev", NULL, &d));
    if (d) {
        CHECK(d->feat[0].label == 0 && feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SEP, THE, MAT, SEP}, 7));
        mt_dataset_free(d);
    }
    mkdir(path_of("sst"), 0755);
    write_file("sst/dev.tsv", "sentence\tlabel\ngood movie . \t1\n");
    snprintf(o.glue_task, sizeof o.glue_task, "sst-2");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("sst"), "dev", NULL, &d));
    if (d) {
        CHECK(d->feat[0].label == 1 && feat_eq(d, 0, (int32_t[]){CLS, GOOD, MOVIE, DOT, SEP}, 5));
        mt_dataset_free(d);
    }
    // single sentence truncation: [CLS] + max-2 pieces + [SEP]
    o.max_seq_length = 4;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("sst"), "dev", NULL, &d));
    if (d) {
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, GOOD, MOVIE, SEP}, 4));
        mt_dataset_free(d);
    }
    o.max_seq_length = 128;
    // pair truncation ties: b loses first ([CLS] a a a [SEP] b b b [SEP] with max 7 -> 2 + 2)
    mkdir(path_of("wnli"), 0755);
    write_file("wnli/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tthe cat sat\ta dog sat\t1\n");
    snprintf(o.glue_task, sizeof o.glue_task, "wnli");
    o.max_seq_length = 7;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("wnli"), "dev", NULL, &d));
    if (d) {
        CHECK(feat_eq(d, 0, (int32_t[]){CLS, THE, CAT, SEP, A, DOG, SEP}, 7));
        mt_dataset_free(d);
    }
    o.max_seq_length = 128;
    // CoLA metric through mt_metrics: MCC of preds 1,0,1,1 vs gold 1,0,0,1 = 2/sqrt(12)
    write_file("cola/train.tsv", "a\t1\t\tthe\nb\t0\t*\tcat\nc\t0\t*\tsat\nd\t1\t\tmat\n");
    snprintf(o.glue_task, sizeof o.glue_task, "cola");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("cola"), "train", NULL, &d));
    if (d) {
        mt_batch_buffer buf = {0};
        mt_batch b;
        size_t idx[4] = {0, 1, 2, 3};
        CHECK_OK(mt_dataset_make_batch(d, idx, 4, &buf, &b));
        mt_metrics *m = NULL;
        CHECK_OK(mt_metrics_create(d, &m));
        float logits[8] = {0, 1, 1, 0, 0, 1, 0, 1};
        CHECK_OK(mt_metrics_add(m, idx, 4, &b, logits));
        mt_metric_value v[4];
        int nv = mt_metrics_compute(m, v, 4);
        CHECK(nv == 1 && !strcmp(v[0].name, "mcc") && fabs(v[0].value - 2.0 / sqrt(12.0)) < 1e-12);
        mt_metrics_free(m);
        mt_batch_buffer_free(&buf);
        mt_dataset_free(d);
    }
    // RTE: string labels
    mkdir(path_of("rte"), 0755);
    write_file("rte/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tthe cat\tthe dog\tnot_entailment\n");
    snprintf(o.glue_task, sizeof o.glue_task, "rte");
    CHECK_OK(mt_dataset_load(&o, tok, path_of("rte"), "dev", NULL, &d));
    if (d) {
        CHECK(d->feat[0].label == 1 && !strcmp(mt_dataset_label_name(d, 0), "entailment"));
        mt_dataset_free(d);
    }
}

static void test_ner(mt_tokenizer *tok) {
    mkdir(path_of("ner"), 0755);
    write_file("ner/text_train.txt", "john lives in paris\nthe cats sat\n");
    write_file("ner/labels_train.txt", "B-PER O O B-LOC\nO B-ANIMAL O\n");
    write_file("ner/text_dev.txt", "the dogs sat on the mat\n");
    write_file("ner/labels_dev.txt", "O B-ANIMAL O O O O\r\n");
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
    CHECK(!strcmp(o.pad_label, "O") && o.max_seq_length == 128);
    o.class_balancing = 1;
    mt_dataset *d = NULL, *dev = NULL;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("ner"), "train", NULL, &d));
    if (!d) return;
    // pad_label first, then sorted
    CHECK(mt_dataset_num_labels(d) == 4);
    CHECK(!strcmp(mt_dataset_label_name(d, 0), "O") && !strcmp(mt_dataset_label_name(d, 1), "B-ANIMAL") &&
          !strcmp(mt_dataset_label_name(d, 2), "B-LOC") && !strcmp(mt_dataset_label_name(d, 3), "B-PER"));
    mt_head_kind h;
    int nc;
    mt_dataset_head(d, &h, &nc);
    CHECK(h == MT_HEAD_TOKEN_CLASSIFIER && nc == 4);
    CHECK(feat_eq(d, 0, (int32_t[]){CLS, JOHN, LIVES, IN, PARIS, SEP}, 6));
    const mt_feature *f = &d->feat[0];
    int32_t lab0[6] = {0, 3, 0, 0, 2, 0}, wat0[6] = {-1, 0, 1, 2, 3, -1};
    CHECK(!memcmp(d->tlabels + f->off, lab0, sizeof lab0));
    CHECK(!memcmp(d->word_at + f->off, wat0, sizeof wat0));
    for (int t = 0; t < 6; t++) CHECK(d->lmask[f->off + t] == 1.0f);
    // "cats" -> cat ##s: the label is copied to both pieces; only the first is predicted
    CHECK(feat_eq(d, 1, (int32_t[]){CLS, THE, CAT, S_, SAT, SEP}, 6));
    f = &d->feat[1];
    CHECK(d->tlabels[f->off + 2] == 1 && d->tlabels[f->off + 3] == 1 && d->word_at[f->off + 3] == -1);
    // weights over words: O 4, B-ANIMAL 1, B-LOC 1, B-PER 1 -> total 7, 4 present
    const float *w = mt_dataset_class_weights(d);
    CHECK(w && fabsf(w[0] - 7.0f / 16) < 1e-6f && fabsf(w[1] - 7.0f / 4) < 1e-6f);
    CHECK_OK(mt_dataset_write_label_ids(d, path_of("ner/label_ids.csv")));
    FILE *lf = fopen(path_of("ner/label_ids.csv"), "r");
    char buf[128] = {0};
    if (lf) {
        size_t got = fread(buf, 1, sizeof buf - 1, lf);
        buf[got] = '\0';
        fclose(lf);
    }
    CHECK(!strcmp(buf, "O\nB-ANIMAL\nB-LOC\nB-PER\n"));
    {
        // written to a temporary file and renamed over the target (tasks/outfile.h), never rewritten in
        // place: a second name for the old file (a hard link) keeps the old content, the target gets
        // the new one, and no temporary file is left beside it
        write_file("ner/old_ids.csv", "old\n");
        (void)unlink(path_of("ner/old_ids_link.csv"));
        CHECK(link(path_of("ner/old_ids.csv"), path_of("ner/old_ids_link.csv")) == 0);
        CHECK_OK(mt_dataset_write_label_ids(d, path_of("ner/old_ids.csv")));
        char nb[128] = {0}, ob[128] = {0};
        FILE *nf = fopen(path_of("ner/old_ids.csv"), "r"), *of = fopen(path_of("ner/old_ids_link.csv"), "r");
        if (nf) { nb[fread(nb, 1, sizeof nb - 1, nf)] = 0; fclose(nf); }
        if (of) { ob[fread(ob, 1, sizeof ob - 1, of)] = 0; fclose(of); }
        CHECK_MSG(!strcmp(nb, "O\nB-ANIMAL\nB-LOC\nB-PER\n"), "label map after rewrite: '%s'", nb);
        CHECK_MSG(!strcmp(ob, "old\n"), "the old label map file was rewritten in place: '%s'", ob);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '\\.tmp\\.'", path_of("ner"));
        CHECK_MSG(system(cmd) != 0, "a temporary file was left in %s", path_of("ner"));
        // a folder or a missing folder: one message naming the path, nothing created
        mt_status ws = mt_dataset_write_label_ids(d, path_of("ner"));
        CHECK_MSG(ws != MT_OK && strstr(mt_last_error(), path_of("ner")) && strstr(mt_last_error(), "is a folder"),
                  "label map onto a folder: %d '%s'", ws, mt_last_error());
        mt_clear_error();
        ws = mt_dataset_write_label_ids(d, path_of("no_such_folder/ids.csv"));
        CHECK_MSG(ws != MT_OK && strstr(mt_last_error(), "no_such_folder/ids.csv") &&
                      strstr(mt_last_error(), "cannot create"),
                  "label map into a missing folder: %d '%s'", ws, mt_last_error());
        mt_clear_error();
        struct stat sb;
        CHECK(stat(path_of("no_such_folder"), &sb) != 0);
    }
    // dev shares the train map; ignore_extra_tokens / ignore_start_end zero the masks
    o.ignore_extra_tokens = 1;
    o.ignore_start_end = 1;
    CHECK_OK(mt_dataset_load(&o, tok, path_of("ner"), "dev", d, &dev));
    if (dev) {
        CHECK(mt_dataset_num_labels(dev) == 4);
        f = &dev->feat[0];
        CHECK(feat_eq(dev, 0, (int32_t[]){CLS, THE, DOG, S_, SAT, ON, THE, MAT, SEP}, 9));
        float lm[9] = {0, 1, 1, 0, 1, 1, 1, 1, 0};
        CHECK(!memcmp(dev->lmask + f->off, lm, sizeof lm));
        // batch: token labels and loss mask (B,T), padding masked
        mt_batch_buffer bb = {0};
        mt_batch b;
        size_t idx[1] = {0};
        CHECK_OK(mt_dataset_make_batch(dev, idx, 1, &bb, &b));
        CHECK(b.loss_mask && b.labels[2] == 1 && b.loss_mask[3] == 0.0f);
        // metrics: perfect prediction -> entity F1 100
        mt_metrics *m = NULL;
        CHECK_OK(mt_metrics_create(dev, &m));
        float *logits = calloc((size_t)b.T * 4, sizeof *logits);
        for (int t = 0; t < b.T; t++) logits[t * 4 + b.labels[t]] = 1.0f;
        CHECK_OK(mt_metrics_add(m, idx, 1, &b, logits));
        mt_metric_value v[10];
        int nv = mt_metrics_compute(m, v, 10);
        int found = 0;
        for (int i = 0; i < nv; i++)
            if (!strcmp(v[i].name, "entity_f1")) found = fabs(v[i].value - 100.0) < 1e-9;
        CHECK(found);
        free(logits);
        mt_metrics_free(m);
        mt_batch_buffer_free(&bb);
        mt_dataset_free(dev);
    }
    // the map from label_ids.csv (restore / predict)
    o.ignore_extra_tokens = o.ignore_start_end = 0;
    snprintf(o.label_ids_file, sizeof o.label_ids_file, "%s", path_of("ner/label_ids.csv"));
    CHECK_OK(mt_dataset_load(&o, tok, path_of("ner"), "dev", NULL, &dev));
    if (dev) {
        CHECK(mt_dataset_num_labels(dev) == 4 && !strcmp(mt_dataset_label_name(dev, 3), "B-PER"));
        mt_dataset_free(dev);
    }
    mt_dataset_free(d);
}

// Every word of every sentence gets exactly one prediction slot, features fit max_seq_length+0,
// and each predicted position holds the word's first piece.
static void test_windows(mt_tokenizer *tok) {
    const char *wordset[] = {"the", "cats", "dogs", "running", "mat", "a", "xyz", "john", "runnings"};
    const int npieces[] = {1, 2, 2, 2, 1, 1, 1, 1, 3};
    const int32_t first[] = {THE, CAT, DOG, RUN, MAT, A, UNK, JOHN, RUN};
    uint64_t st = 12345;
    int checked = 0;
    for (int msl = 3; msl <= 20; msl++) {
        mt_task_options o;
        mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
        o.max_seq_length = msl;
        mt_dataset *d = mt_ds_new(&o);
        d->cls_id = CLS;
        d->sep_id = SEP;
        d->unk_id = UNK;
        for (int s = 0; s < 20; s++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            int n = 1 + (int)((st >> 33) % 50);
            char *words[64];
            int kinds[64];
            int32_t labels[64];
            for (int i = 0; i < n; i++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                kinds[i] = (int)((st >> 33) % 9);
                words[i] = (char *)wordset[kinds[i]];
                labels[i] = i % 3;
            }
            size_t f0 = d->n_feat;
            CHECK_OK(mt_ner_add_sentence(d, tok, words, labels, n, s, "windows"));
            int count[64] = {0};
            int total_pieces = 0;
            for (int i = 0; i < n; i++) total_pieces += npieces[kinds[i]];
            for (size_t fi = f0; fi < d->n_feat; fi++) {
                const mt_feature *f = &d->feat[fi];
                CHECK(f->len <= msl && f->example == s);
                CHECK(d->ids[f->off] == CLS && d->ids[f->off + f->len - 1] == SEP);
                for (int t = 0; t < f->len; t++) {
                    int w = d->word_at[f->off + t];
                    if (w < 0) continue;
                    CHECK(w < n);
                    count[w]++;
                    CHECK(d->ids[f->off + t] == first[kinds[w]]);
                    CHECK(d->tlabels[f->off + t] == labels[w]);
                    CHECK(d->lmask[f->off + t] == 1.0f);
                }
            }
            for (int i = 0; i < n; i++) CHECK_MSG(count[i] == 1, "msl %d sentence %d word %d predicted %d times", msl, s, i, count[i]);
            if (total_pieces <= msl - 2) CHECK(d->n_feat - f0 == 1); // fits: NeMo's single feature
            checked++;
        }
        mt_dataset_free(d);
    }
    fprintf(stderr, "  windows: %d sentences checked over max_seq_length 3..20\n", checked);
}

// Fake forward: sequence heads predict class input_ids[1] % C; token heads predict id % C.
typedef struct {
    int C;
    float *logits;
} fake_ctx;
static mt_status fake_forward(void *vctx, const mt_batch *b, const float **logits) {
    fake_ctx *c = vctx;
    free(c->logits);
    c->logits = calloc((size_t)b->B * (size_t)b->T * (size_t)c->C, sizeof(float));
    for (int i = 0; i < b->B; i++)
        for (int t = 0; t < b->T; t++) c->logits[((size_t)i * b->T + t) * c->C + b->input_ids[i * b->T + t] % c->C] = 2.0f;
    // sequence heads read the first B*C values: put the class of token 1 there
    if (c->C > 0 && b->labels && !b->loss_mask) {
        float *seq = calloc((size_t)b->B * c->C, sizeof(float));
        for (int i = 0; i < b->B; i++) seq[i * c->C + b->input_ids[i * b->T + 1] % c->C] = 2.0f;
        memcpy(c->logits, seq, (size_t)b->B * c->C * sizeof(float));
        free(seq);
    }
    *logits = c->logits;
    return MT_OK;
}

static char *run_predict(const mt_task_options *o, mt_tokenizer *tok, const mt_dataset *src, const char *input, int C) {
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *outbuf = NULL;
    size_t outlen = 0;
    FILE *out = open_memstream(&outbuf, &outlen);
    fake_ctx c = {C, NULL};
    CHECK_OK(mt_task_predict(o, tok, src, in, "input", out, 2, fake_forward, &c));
    fclose(in);
    fclose(out);
    free(c.logits);
    return outbuf;
}

static void test_predict(mt_tokenizer *tok) {
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
    o.num_classes = 3;
    // class = input_ids[1] % 3: the=5 -> 2, good=12 -> 0, bad=13 -> 1; exp(2)/(exp(2)+2)
    char *out = run_predict(&o, tok, NULL, "the cat\ngood movie\t1\n\nbad\n", 3);
    char want[256];
    double p = exp(2.0) / (exp(2.0) + 2.0);
    snprintf(want, sizeof want, "2\t%.6f\n0\t%.6f\n\n1\t%.6f\n", p, p, p);
    CHECK_MSG(out && !strcmp(out, want), "got '%s' want '%s'", out ? out : "(null)", want);
    free(out);
    // NER: label = first piece id % 4 with the map O, B-ANIMAL, B-LOC, B-PER; a long line is windowed
    mt_task_options on;
    mt_task_options_default(&on, MT_TASK_TOKEN_CLASSIFICATION);
    on.max_seq_length = 5;
    snprintf(on.label_ids_file, sizeof on.label_ids_file, "%s", path_of("ner/label_ids.csv"));
    // default: NeMo's add_predictions line (pad_label O untagged)
    out = run_predict(&on, tok, NULL, "john lives\nthe cats sat on the mat\n", 4);
    CHECK_MSG(out && !strcmp(out, "john lives[B-ANIMAL]\nthe[B-ANIMAL] cats[B-LOC] sat[B-PER] on the[B-ANIMAL] mat[B-ANIMAL]\n"),
              "got '%s'", out ? out : "(null)");
    free(out);
    on.ner_all_words = 1;
    out = run_predict(&on, tok, NULL, "john lives\nthe cats sat on the mat\n", 4);
    // john=16%4=0 O, lives=17->1 B-ANIMAL; the=5->1, cats(cat=6)->2 B-LOC, sat=7->3 B-PER, on=8->0, mat=9->1
    CHECK_MSG(out && !strcmp(out, "john[O] lives[B-ANIMAL]\nthe[B-ANIMAL] cats[B-LOC] sat[B-PER] on[O] the[B-ANIMAL] mat[B-ANIMAL]\n"),
              "got '%s'", out ? out : "(null)");
    free(out);
    // GLUE pair input
    mt_task_options og;
    mt_task_options_default(&og, MT_TASK_GLUE);
    snprintf(og.glue_task, sizeof og.glue_task, "rte");
    out = run_predict(&og, tok, NULL, "the cat\tthe dog\ngood\tbad\n", 2);
    snprintf(want, sizeof want, "not_entailment\t%.6f\nentailment\t%.6f\n", exp(2.0) / (exp(2.0) + 1),
             exp(2.0) / (exp(2.0) + 1));
    CHECK_MSG(out && !strcmp(out, want), "got '%s'", out ? out : "(null)");
    free(out);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/mt_test_tasks_XXXXXX");
    if (!mkdtemp(dir)) TEST_SKIP("cannot create a temp dir");
    char vocab[4096] = "";
    for (size_t i = 0; i < sizeof vocab_words / sizeof *vocab_words; i++) {
        strcat(vocab, vocab_words[i]);
        strcat(vocab, "\n");
    }
    write_file("vocab.txt", vocab);
    mt_vocab *v = NULL;
    mt_tokenizer *tok = NULL;
    CHECK_OK(mt_vocab_load(path_of("vocab.txt"), &v));
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    if (!tok) TEST_DONE();
    test_text_classification(tok);
    test_glue(tok);
    test_ner(tok);
    test_windows(tok);
    test_predict(tok);
    mt_tokenizer_free(tok);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
