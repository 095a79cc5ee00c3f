// Bad data: every malformed input is a clear error naming the file and the line (never a crash):
// missing label, label out of range, text/labels line-count mismatch, word/label count mismatch,
// empty file, over-long line, bad UTF-8, NUL bytes, GLUE column/label errors, converter errors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void write_bytes(const char *name, const char *content, size_t n) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(content, 1, n, f);
    fclose(f);
}
static void write_file(const char *name, const char *content) { write_bytes(name, content, strlen(content)); }

// The load must fail and the message must contain every one of the given fragments.
static void expect_fail(const char *what, mt_status s, const char *f1, const char *f2, const char *f3) {
    const char *msg = mt_last_error();
    CHECK_MSG(s != MT_OK, "%s: loaded without error", what);
    if (s == MT_OK) return;
    int ok = (!f1 || strstr(msg, f1)) && (!f2 || strstr(msg, f2)) && (!f3 || strstr(msg, f3));
    CHECK_MSG(ok, "%s: message '%s' lacks '%s' / '%s' / '%s'", what, msg, f1 ? f1 : "", f2 ? f2 : "", f3 ? f3 : "");
    fprintf(stderr, "  %-28s -> %s\n", what, msg);
    mt_clear_error();
}

static mt_status load_tc(const char *name, int num_classes) {
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
    o.num_classes = num_classes;
    mt_dataset *d = NULL;
    mt_status s = mt_dataset_load(&o, tok, path_of(name), "train", NULL, &d);
    mt_dataset_free(d);
    return s;
}

static mt_status load_glue(const char *task, const char *name) {
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_GLUE);
    snprintf(o.glue_task, sizeof o.glue_task, "%s", task);
    mt_dataset *d = NULL;
    mt_status s = mt_dataset_load(&o, tok, path_of(name), "train", NULL, &d);
    mt_dataset_free(d);
    return s;
}

// One split of a task's data under the test folder, loaded with the task's default options.
static mt_status load_split(mt_task_kind kind, const char *name, const char *split) {
    mt_task_options o;
    mt_task_options_default(&o, kind);
    mt_dataset *d = NULL;
    mt_status s = mt_dataset_load(&o, tok, path_of(name), split, NULL, &d);
    mt_dataset_free(d);
    return s;
}

static mt_status load_ner(const char *sub, const char *split) { return load_split(MT_TASK_TOKEN_CLASSIFICATION, sub, split); }

// SQuAD JSON (split "train": answers checked against the context; "dev": kept as given).
static mt_status load_squad(const char *name, const char *split) {
    return load_split(MT_TASK_QUESTION_ANSWERING, name, split);
}

// One paragraph with context ctx (JSON text) and one question id qid (JSON text).
static void write_squad(const char *name, const char *ctx, const char *qid) {
    char b[1024];
    int n = snprintf(b, sizeof b, "{\"version\": \"1.1\", \"data\": [{\"title\": \"t\", \"paragraphs\": "
                     "[{\"context\": \"%s\", "
                     "\"qas\": [{\"id\": \"%s\", \"question\": \"the cat\", \"answers\": [{\"text\": \"the\", "
                     "\"answer_start\": 0}]}]}]}]}", ctx, qid);
    write_bytes(name, b, (size_t)n);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/mt_test_baddata_XXXXXX");
    if (!mkdtemp(dir)) TEST_SKIP("cannot create a temp dir");
    write_file("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\n");
    mt_vocab *v = NULL;
    CHECK_OK(mt_vocab_load(path_of("vocab.txt"), &v));
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, 1);
    CHECK_OK(mt_tokenizer_create(v, &to, &tok));
    if (!tok) TEST_DONE();

    // text classification
    write_file("missing.tsv", "sentence\tlabel\nthe cat\t1\nthe cat sat\n");
    expect_fail("missing label", load_tc("missing.tsv", 2), "missing.tsv:3", "missing label", NULL);
    write_file("range.tsv", "the cat\t1\nthe cat\t7\n");
    expect_fail("label out of range", load_tc("range.tsv", 2), "range.tsv:2", "out of range", NULL);
    write_file("neg.tsv", "the cat\t-1\n");
    expect_fail("negative label", load_tc("neg.tsv", 2), "neg.tsv:1", "out of range", NULL);
    write_file("empty.tsv", "");
    expect_fail("empty file", load_tc("empty.tsv", 2), "empty.tsv", "empty", NULL);
    write_file("blank.tsv", "\n \n\t\n");
    expect_fail("whitespace-only file", load_tc("blank.tsv", 2), "blank.tsv", "empty", NULL);
    write_file("header_only.tsv", "sentence\tlabel\n");
    expect_fail("header only", load_tc("header_only.tsv", 2), "header_only.tsv", "no example", NULL);
    write_file("utf8.tsv", "the cat\t1\nthe \xff cat\t0\n");
    expect_fail("bad UTF-8", load_tc("utf8.tsv", 2), "utf8.tsv:2", "UTF-8", "byte 4");
    write_file("utf8b.tsv", "the \xe2\x82\t1\n"); // truncated 3-byte sequence
    expect_fail("truncated UTF-8", load_tc("utf8b.tsv", 2), "utf8b.tsv:1", "UTF-8", NULL);
    write_file("surrogate.tsv", "the \xed\xa0\x80 cat\t1\n"); // UTF-16 surrogate in UTF-8
    expect_fail("surrogate UTF-8", load_tc("surrogate.tsv", 2), "surrogate.tsv:1", "UTF-8", NULL);
    write_bytes("nul.tsv", "the cat\t1\nthe\0cat\t1\n", 20);
    expect_fail("NUL byte", load_tc("nul.tsv", 2), "nul.tsv:2", "NUL", NULL);
    {
        size_t n = (1u << 20) + 100;
        char *big = malloc(n + 4);
        memset(big, 'a', n);
        memcpy(big + n, "\t1\n", 3);
        write_bytes("long.tsv", big, n + 3);
        free(big);
        expect_fail("over-long line", load_tc("long.tsv", 2), "long.tsv:1", "limit", NULL);
    }
    expect_fail("missing file", load_tc("nope.tsv", 2), "nope.tsv", "cannot open", NULL);
    expect_fail("num_classes unset", load_tc("range.tsv", 0), "num_classes", NULL, NULL);

    // GLUE
    write_file("mrpc.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tthe cat\n");
    expect_fail("GLUE missing column", load_glue("mrpc", "mrpc.tsv"), "mrpc.tsv:2", "column", NULL);
    write_file("rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\tthe\tcat\tmaybe\n");
    expect_fail("GLUE unknown label", load_glue("rte", "rte.tsv"), "rte.tsv:2", "maybe", "entailment");
    write_file("stsb.tsv", "h\n0\tg\tf\ty\t0\tn\tn\tthe\tcat\tfive\n");
    expect_fail("STS-B bad score", load_glue("sts-b", "stsb.tsv"), "stsb.tsv:2", "not a number", NULL);
    write_file("rte_empty_label.tsv", "index\tsentence1\tsentence2\tlabel\n0\tthe\tcat\t\n");
    expect_fail("GLUE empty label", load_glue("rte", "rte_empty_label.tsv"), "rte_empty_label.tsv:2", "missing label", NULL);
    expect_fail("GLUE unknown task", load_glue("squad", "rte.tsv"), "squad", "cola", NULL);

    // token classification
    mkdir(path_of("n1"), 0755);
    write_file("n1/text_train.txt", "the cat\nthe\n");
    write_file("n1/labels_train.txt", "O O\n");
    expect_fail("line-count mismatch", load_ner("n1", "train"), "text_train.txt has 2 lines", "labels_train.txt has 1", NULL);
    mkdir(path_of("n2"), 0755);
    write_file("n2/text_train.txt", "the cat\nthe cat the\n");
    write_file("n2/labels_train.txt", "O O\nO O\n");
    expect_fail("word/label mismatch", load_ner("n2", "train"), "text_train.txt:2", "3 words", "2 labels");
    mkdir(path_of("n3"), 0755);
    write_file("n3/text_train.txt", "the cat\n\n");
    write_file("n3/labels_train.txt", "O O\n\n");
    expect_fail("empty sentence", load_ner("n3", "train"), "text_train.txt:2", "empty sentence", NULL);
    mkdir(path_of("n4"), 0755);
    write_file("n4/text_train.txt", "");
    write_file("n4/labels_train.txt", "");
    expect_fail("empty NER files", load_ner("n4", "train"), "text_train.txt", "empty", NULL);
    expect_fail("missing NER files", load_ner("n4", "dev"), "text_dev.txt", "cannot open", NULL);
    mkdir(path_of("n5"), 0755);
    write_file("n5/text_train.txt", "the cat\n");
    write_file("n5/labels_train.txt", "O B-X\n");
    write_file("n5/text_dev.txt", "the cat\n");
    write_file("n5/labels_dev.txt", "O B-Y\n");
    {
        mt_task_options o;
        mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
        mt_dataset *tr = NULL, *dv = NULL;
        CHECK_OK(mt_dataset_load(&o, tok, path_of("n5"), "train", NULL, &tr));
        if (tr) expect_fail("unknown dev label", mt_dataset_load(&o, tok, path_of("n5"), "dev", tr, &dv),
                            "labels_dev.txt:1", "B-Y", NULL);
        mt_dataset_free(dv);
        mt_dataset_free(tr);
        write_file("n5/bad_ids.csv", "O\nB-X\nB-X\n");
        snprintf(o.label_ids_file, sizeof o.label_ids_file, "%s", path_of("n5/bad_ids.csv"));
        expect_fail("duplicate label_ids", mt_dataset_load(&o, tok, path_of("n5"), "train", NULL, &tr), "bad_ids.csv:3",
                    "twice", NULL);
        mt_dataset_free(tr);
    }
    mkdir(path_of("n6"), 0755);
    write_file("n6/text_train.txt", "the cat\n");
    write_file("n6/labels_train.txt", "O \xc3\x28\n");
    expect_fail("NER bad UTF-8 label", load_ner("n6", "train"), "labels_train.txt:1", "UTF-8", NULL);

    // SQuAD: a context with no BERT word (U+202F is BERT whitespace) or no piece would leave the
    // answer span reading unset word/piece positions; refused in train and dev, with the question id
    static const char *const splits[2] = {"train", "dev"};
    for (int k = 0; k < 2; k++) {
        char what[64];
        write_squad("sq_nnbsp.json", "\\u202f", "w1");
        snprintf(what, sizeof what, "SQuAD U+202F context (%s)", splits[k]);
        expect_fail(what, load_squad("sq_nnbsp.json", splits[k]), "sq_nnbsp.json", "w1", "empty context");
        write_squad("sq_nnbsp2.json", " \\u202f\\t\xe2\x80\xaf ", "w2"); // raw U+202F too
        snprintf(what, sizeof what, "SQuAD U+202F raw (%s)", splits[k]);
        expect_fail(what, load_squad("sq_nnbsp2.json", splits[k]), "sq_nnbsp2.json", "w2", "empty context");
        write_squad("sq_zw.json", "\\u200b", "z1"); // a word, but the tokenizer drops it: no piece
        snprintf(what, sizeof what, "SQuAD no-piece context (%s)", splits[k]);
        expect_fail(what, load_squad("sq_zw.json", splits[k]), "sq_zw.json", "z1", "no token");
        // NUL characters: cJSON's strings end at a NUL, so it would cut the text short silently
        write_squad("sq_nul_ctx.json", "the\\u0000 cat", "n1");
        snprintf(what, sizeof what, "SQuAD \\u0000 in context (%s)", splits[k]);
        expect_fail(what, load_squad("sq_nul_ctx.json", splits[k]), "sq_nul_ctx.json", "byte 74", "\\u0000");
        write_squad("sq_nul_id.json", "the cat", "n\\u0000x");
        snprintf(what, sizeof what, "SQuAD \\u0000 in id (%s)", splits[k]);
        expect_fail(what, load_squad("sq_nul_id.json", splits[k]), "sq_nul_id.json", "byte 98", "\\u0000");
        write_squad("sq_nul_esc.json", "the cat", "n\\\\\\u0000x"); // \\ then \u0000: a NUL
        snprintf(what, sizeof what, "SQuAD \\\\\\u0000 (%s)", splits[k]);
        // (byte 100: the second backslash pair, not the first)
        expect_fail(what, load_squad("sq_nul_esc.json", splits[k]), "sq_nul_esc.json", "byte 100", "NUL");
        write_squad("sq_nul_raw.json", "the cat", "n1");
        {
            char b[1024];
            FILE *f = fopen(path_of("sq_nul_raw.json"), "rb");
            size_t n = f ? fread(b, 1, sizeof b - 1, f) : 0;
            if (f) fclose(f);
            b[n] = 0;
            char *c = strstr(b, "the cat"); // -> "the \0at"
            if (c) c[4] = 0;
            write_bytes("sq_nul_raw.json", b, n);
        }
        snprintf(what, sizeof what, "SQuAD raw NUL byte (%s)", splits[k]);
        expect_fail(what, load_squad("sq_nul_raw.json", splits[k]), "sq_nul_raw.json", "NUL byte", "byte 75");
        // an escaped backslash then "u0000" is the text \u0000, not a NUL: loads
        write_squad("sq_lit.json", "the cat", "n\\\\u0000x");
        CHECK_OK(load_squad("sq_lit.json", splits[k]));
        write_squad("sq_ok.json", "the\\u202fcat", "ok1");
        CHECK_OK(load_squad("sq_ok.json", splits[k]));
    }

    // converters
    write_file("bad.iob", "EU B-ORG\nrejects\n");
    expect_fail("IOB one-field line", mt_data_import_iob(path_of("bad.iob"), dir, "x", NULL, NULL), "bad.iob:2", "2 fields",
                NULL);
    {
        // a token line has at most 64 fields: the 65th was once dropped and field 64 taken as the label
        char line[512];
        size_t k = 0;
        for (int i = 0; i < 64; i++) k += (size_t)snprintf(line + k, sizeof line - k, i ? " f%d" : "w%d", i);
        char content[1200];
        snprintf(content, sizeof content, "EU B-ORG\n%s\n", line); // 64 fields: the label is f63
        write_file("wide64.iob", content);
        mkdir(path_of("iob64"), 0755);
        CHECK_OK(mt_data_import_iob(path_of("wide64.iob"), path_of("iob64"), "x", NULL, NULL));
        FILE *f = fopen(path_of("iob64/labels_x.txt"), "rb");
        char got[64] = {0};
        if (f) { got[fread(got, 1, sizeof got - 1, f)] = 0; fclose(f); }
        CHECK_MSG(!strcmp(got, "B-ORG f63\n"), "64-field line: labels '%s'", got);
        snprintf(content, sizeof content, "EU B-ORG\n%s f64\n", line); // 65 fields
        write_file("wide65.iob", content);
        mkdir(path_of("iob65"), 0755);
        expect_fail("IOB 65-field line", mt_data_import_iob(path_of("wide65.iob"), path_of("iob65"), "x", NULL, NULL),
                    "wide65.iob:2", "more than 64 fields", NULL);
        struct stat sb;
        CHECK_MSG(stat(path_of("iob65/text_x.txt"), &sb) != 0 && stat(path_of("iob65/labels_x.txt"), &sb) != 0,
                  "a refused IOB file left output");
    }
    write_file("cp.tsv", "sentence\tlabel\nthe cat\tCPR:3\nno label here\n");
    expect_fail("ChemProt missing label", mt_data_import_chemprot(path_of("cp.tsv"), path_of("cp.out"), NULL, NULL, NULL),
                "cp.tsv:3", "missing label", NULL);
    write_file("map.tsv", "False\t0\n");
    write_file("cp2.tsv", "the cat\tCPR:3\n");
    expect_fail("ChemProt label not in map",
                mt_data_import_chemprot(path_of("cp2.tsv"), path_of("cp.out"), path_of("map.tsv"), NULL, NULL), "cp2.tsv:1",
                "CPR:3", NULL);

    mt_tokenizer_free(tok);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
