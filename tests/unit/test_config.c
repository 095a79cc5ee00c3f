// Config schema, YAML loading, overrides, errors, task defaults, interpolation, dump round trip.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/log.h"
#include "test_util.h"
#include "train/config.h"

static mt_status load_text(mt_train_config *c, const char *text) {
    mt_clear_error(); // a refusal checked below must bring its own message, not keep the last one
    return mt_config_load_yaml_text(c, text, strlen(text), "cfg.yaml", "", 0);
}

static int has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

static void test_defaults_and_types(void) {
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    CHECK(c.trainer.max_steps == -1);
    CHECK(c.trainer.accumulate_grad_batches == 1);
    CHECK(c.model.optim.betas.n == 2 && c.model.optim.betas.v[1] == 0.999);
    CHECK(c.model.language_model.pretrained_model_name && !strcmp(c.model.language_model.pretrained_model_name, "bert-base-uncased"));
    CHECK(c.model.train_ds.shuffle == 1 && c.model.validation_ds.shuffle == 0);
    const char *y =
        "trainer:\n"
        "  max_epochs: 7\n"
        "  max_steps: null\n"
        "  val_check_interval: 50\n"
        "  gradient_clip_val: 1.5\n"
        "  precision: 16\n"
        "model:\n"
        "  dataset:\n"
        "    num_classes: 3\n"
        "    max_seq_length: 64\n"
        "  train_ds:\n"
        "    file_path: data/train.tsv\n"
        "    shuffle: False\n"
        "  language_model:\n"
        "    pretrained_model_name: megatron-bert-uncased\n"
        "    config:\n"
        "      hidden_size: 96\n"
        "      hidden_dropout: 0\n"
        "  optim:\n"
        "    name: adamw\n"
        "    lr: 2e-5\n"
        "    betas: [0.8, 0.98]\n"
        "    sched:\n"
        "      name: CosineAnnealing\n"
        "      warmup_steps: 10\n"
        "hydra:\n"
        "  run:\n"
        "    dir: .\n";
    CHECK_OK(load_text(&c, y));
    CHECK(c.trainer.max_epochs == 7);
    CHECK(c.trainer.max_steps == -1);
    CHECK(c.trainer.val_check_interval.is_int && c.trainer.val_check_interval.value == 50);
    CHECK(c.trainer.gradient_clip_val == 1.5);
    CHECK(!strcmp(c.trainer.precision, "16"));
    CHECK(c.model.dataset.num_classes == 3 && c.model.dataset.max_seq_length == 64);
    CHECK(!strcmp(c.model.train_ds.file_path, "data/train.tsv") && c.model.train_ds.shuffle == 0);
    CHECK(c.model.language_model.config.hidden_size == 96 && c.model.language_model.config.hidden_dropout == 0.0);
    CHECK(!strcmp(c.model.optim.name, "adamw") && c.model.optim.lr == 2e-5);
    CHECK(c.model.optim.betas.n == 2 && c.model.optim.betas.v[0] == 0.8 && c.model.optim.betas.v[1] == 0.98);
    CHECK(c.model.optim.sched.warmup_steps == 10);
    CHECK(mt_config_is_set(&c, "trainer.max_epochs") && !mt_config_is_set(&c, "trainer.seed"));

    // overrides exactly as NeMo's docs write them
    CHECK_OK(mt_config_override(&c, "model.language_model.lm_checkpoint=/path/iter_0080000"));
    CHECK_OK(mt_config_override(&c, "trainer.max_steps=100"));
    CHECK_OK(mt_config_override(&c, "+trainer.val_check_interval=0.25"));
    CHECK_OK(mt_config_override(&c, "model.optim.betas=[0.9,0.95]"));
    CHECK_OK(mt_config_override(&c, "exp_manager.exp_dir=null"));
    CHECK_OK(mt_config_override(&c, "model.tokenizer.vocab_file='a b.txt'"));
    CHECK(!strcmp(c.model.language_model.lm_checkpoint, "/path/iter_0080000"));
    CHECK(c.trainer.max_steps == 100);
    CHECK(!c.trainer.val_check_interval.is_int && c.trainer.val_check_interval.value == 0.25);
    CHECK(c.model.optim.betas.v[1] == 0.95);
    CHECK(c.exp_manager.exp_dir == NULL);
    CHECK(!strcmp(c.model.tokenizer.vocab_file, "a b.txt"));
    // "section=null" resets the block to defaults (Hydra), e.g. model.language_model.config=null
    CHECK_OK(mt_config_override(&c, "model.language_model.config=null"));
    CHECK(c.model.language_model.config.hidden_size == -1 && c.model.language_model.config.hidden_dropout == 0.1);
    CHECK(!mt_config_is_set(&c, "model.language_model.config.hidden_size"));
    CHECK_OK(mt_config_override(&c, "model.language_model.config.hidden_size=96"));

    // finish: task inferred from the shape, text-classification defaults only where unset,
    // tokenizer_name interpolated from the pretrained name
    CHECK_OK(mt_config_finish(&c));
    CHECK(c.task && !strcmp(c.task, "text_classification"));
    CHECK(c.model.dataset.max_seq_length == 64);          // set by the file
    CHECK(c.model.train_ds.batch_size == 64);             // NeMo text-classification default
    CHECK(c.model.tokenizer.tokenizer_name && !strcmp(c.model.tokenizer.tokenizer_name, "megatron-bert-uncased"));
    CHECK(c.model.optim.lr == 2e-5);
    mt_config_free(&c);
}

static void test_errors(void) {
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    // unknown key: names the key, file:line and the nearest key
    mt_status st = load_text(&c, "trainer:\n  max_epochs: 1\n  max_stpes: 5\n");
    CHECK(st == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:3") && has(mt_last_error(), "trainer.max_stpes") &&
                  has(mt_last_error(), "did you mean 'trainer.max_steps'"),
              "%s", mt_last_error());
    // wrong type
    st = load_text(&c, "model:\n  optim:\n    lr: fast\n");
    CHECK(st == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:3") && has(mt_last_error(), "model.optim.lr") && has(mt_last_error(), "fast"),
              "%s", mt_last_error());
    st = load_text(&c, "trainer:\n  max_steps: 1.5\n");
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "cfg.yaml:2") && has(mt_last_error(), "trainer.max_steps") &&
                  has(mt_last_error(), "integer"),
              "%s", mt_last_error());
    st = load_text(&c, "trainer:\n  max_steps:\n    a: 1\n");
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "cfg.yaml:") && has(mt_last_error(), "trainer.max_steps") &&
                  has(mt_last_error(), "mapping"),
              "%s", mt_last_error());
    st = load_text(&c, "trainer:\n  accumulate_grad_batches: null\n");
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "cfg.yaml:2") &&
                  has(mt_last_error(), "trainer.accumulate_grad_batches") && has(mt_last_error(), "cannot be null"),
              "%s", mt_last_error());
    // malformed YAML: file:line:column and the parser's message
    st = load_text(&c, "trainer:\n  max_epochs: [1, 2\n  x: 3\n");
    CHECK(st == MT_ERR_FORMAT);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:") && has(mt_last_error(), "malformed YAML"), "%s", mt_last_error());
    st = load_text(&c, "a: b\n  c: d\n");
    CHECK_MSG(st == MT_ERR_FORMAT && has(mt_last_error(), "cfg.yaml:2:"), "%s", mt_last_error());
    // overrides
    st = mt_config_override(&c, "model.train_ds.file_pth=x.tsv");
    CHECK(st == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "model.train_ds.file_pth") && has(mt_last_error(), "did you mean 'model.train_ds.file_path'"),
              "%s", mt_last_error());
    // `file` is NeMo's QA spelling of a split's data file
    CHECK(mt_config_override(&c, "model.train_ds.file=train-v1.1.json") == MT_OK);
    st = mt_config_override(&c, "trainer.max_steps");
    CHECK(st == MT_ERR_INVALID && has(mt_last_error(), "key=value"));
    st = mt_config_override(&c, "trainer.max_steps=ten");
    CHECK(st == MT_ERR_INVALID && has(mt_last_error(), "trainer.max_steps"));
    mt_clear_error();
    st = mt_config_override(&c, "model.optim.betas=[0.9, x]");
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "model.optim.betas") && has(mt_last_error(), "list of numbers"),
              "%s", mt_last_error());
    st = mt_config_override(&c, "model.optimm.lr=1");
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "did you mean 'model.optim"), "%s", mt_last_error());
    // self-referencing anchors and alias bombs are refused quickly, never expanded
    st = load_text(&c, "hydra: &a\n  x: *a\n");
    CHECK(st == MT_OK); // under an ignored key nothing is walked
    st = load_text(&c, "trainer: &a\n  max_steps: 1\n  sub: *a\n");
    CHECK_MSG((st == MT_ERR_INVALID || st == MT_ERR_FORMAT) && has(mt_last_error(), "cfg.yaml:") &&
                  has(mt_last_error(), "trainer.sub"),
              "%s", mt_last_error());
    {
        char bomb[4096] = "x0: &x0 {max_steps: 1}\n";
        for (int i = 1; i < 12; i++) {
            char line[256];
            snprintf(line, sizeof line, "x%d: &x%d {a: *x%d, b: *x%d, c: *x%d, d: *x%d}\n", i, i, i - 1, i - 1, i - 1, i - 1);
            strcat(bomb, line);
        }
        strcat(bomb, "trainer: *x11\n");
        st = load_text(&c, bomb);
        CHECK_MSG((st == MT_ERR_FORMAT || st == MT_ERR_INVALID) && has(mt_last_error(), "cfg.yaml:"), "%d %s", st,
                  mt_last_error());
    }
    mt_config_free(&c);

    // mandatory ??? and range checks at finish, naming where the value came from
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(load_text(&c, "model:\n  dataset:\n    num_classes: ???\n"));
    st = mt_config_finish(&c);
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "model.dataset.num_classes") && has(mt_last_error(), "mandatory"),
              "%s", mt_last_error());
    mt_config_free(&c);
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(load_text(&c, "task: text_classification\nmodel:\n  train_ds:\n    batch_size: 0\n"));
    st = mt_config_finish(&c);
    CHECK_MSG(st == MT_ERR_INVALID && has(mt_last_error(), "cfg.yaml:4") && has(mt_last_error(), "model.train_ds.batch_size"),
              "%s", mt_last_error());
    mt_config_free(&c);
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(load_text(&c, "task: text_classification\nmodel:\n  head:\n    fc_dropout: 1.0\n"));
    st = mt_config_finish(&c);
    CHECK(st == MT_ERR_INVALID && has(mt_last_error(), "model.head.fc_dropout"));
    mt_config_free(&c);
    CHECK_OK(mt_config_init(&c));
    st = mt_config_finish(&c);
    CHECK(st == MT_ERR_INVALID && has(mt_last_error(), "task"));
    mt_config_free(&c);
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(load_text(&c, "task: summarization\n"));
    CHECK(mt_config_finish(&c) == MT_ERR_INVALID && has(mt_last_error(), "summarization"));
    mt_config_free(&c);
}

static void test_anchor_and_tasks(void) {
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    // GLUE config uses a YAML anchor for the task name (NeMo's glue_benchmark_config.yaml)
    CHECK_OK(load_text(&c, "model:\n  task_name: &task_name sst-2\n  dataset:\n    data_dir: /d\n"
                           "exp_manager:\n  name: *task_name\n"));
    CHECK_OK(mt_config_finish(&c));
    CHECK(!strcmp(c.task, "glue"));
    CHECK(!strcmp(c.exp_manager.name, "sst-2"));
    CHECK(!strcmp(c.model.train_ds.ds_item, "train.tsv") && c.model.train_ds.batch_size == 32);
    mt_config_free(&c);

    CHECK_OK(mt_config_init(&c));
    CHECK_OK(load_text(&c, "model:\n  head:\n    num_fc_layers: 1\n  dataset:\n    data_dir: d\n"));
    CHECK_OK(mt_config_finish(&c));
    CHECK(!strcmp(c.task, "token_classification"));
    CHECK(!strcmp(c.model.validation_ds.text_file, "text_dev.txt"));
    CHECK(!strcmp(c.exp_manager.name, "token_classification_model"));
    CHECK(c.model.head.num_fc_layers == 1);
    mt_config_free(&c);

    // a .nemo's model_config.yaml is read under the model. prefix; target decides the task;
    // unknown keys there are warnings only
    CHECK_OK(mt_config_init(&c));
    const char *mc =
        "target: nemo.collections.nlp.models.text_classification.text_classification_model.TextClassificationModel\n"
        "dataset:\n  num_classes: 2\nsome_future_key: 3\n";
    CHECK_OK(mt_config_load_yaml_text(&c, mc, strlen(mc), "model_config.yaml", "model.", 1));
    CHECK_OK(mt_config_finish(&c));
    CHECK(!strcmp(c.task, "text_classification") && c.model.dataset.num_classes == 2);
    mt_config_free(&c);

    // Leniency walks into sections: one anchored mapping of 8400 unknown keys aliased under twelve of
    // them is 100800 values to look at (and warn about). The visit cap refuses it, naming the file;
    // strict loads stop at the first unknown key and never get this far.
    CHECK_OK(mt_config_init(&c));
    static const char *const sections[] = {"capit_head", "class_labels", "classifier_head", "dataset", "head",
                                           "language_model", "optim", "punct_head", "test_ds", "token_classifier",
                                           "tokenizer", "train_ds"};
    size_t cap = 1024 + 8400 * 16, n = 0;
    char *bomb = malloc(cap);
    n += (size_t)snprintf(bomb + n, cap - n, "b: &b {");
    for (int i = 0; i < 8400; i++) n += (size_t)snprintf(bomb + n, cap - n, "%sk%d: 1", i ? ", " : "", i);
    n += (size_t)snprintf(bomb + n, cap - n, "}\n");
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        n += (size_t)snprintf(bomb + n, cap - n, "%s: *b\n", sections[i]);
    CHECK(n < cap);
    mt_log_set_level(MT_LOG_OFF); // (one warning per unknown key)
    mt_clear_error();
    mt_status st = mt_config_load_yaml_text(&c, bomb, n, "model_config.yaml", "model.", 1);
    mt_log_set_level(MT_LOG_INFO);
    CHECK_MSG(st == MT_ERR_FORMAT && strstr(mt_last_error(), "model_config.yaml:") &&
                  strstr(mt_last_error(), "more than 100000 values"),
              "alias-expanded lenient config: %d %s", st, mt_last_error());
    free(bomb);
    mt_config_free(&c);
}

static void test_dump_roundtrip(void) {
    mt_train_config a, b;
    CHECK_OK(mt_config_init(&a));
    CHECK_OK(load_text(&a, "task: token_classification\ntrainer:\n  val_check_interval: 0.5\n  max_steps: 20\n"
                           "model:\n  tokenizer:\n    vocab_file: \"we\\\"ird\\\\path\"\n  optim:\n    lr: 0.1\n"));
    CHECK_OK(mt_config_finish(&a));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_OK(mt_config_dump(&a, f, NULL));
    fclose(f);
    CHECK_OK(mt_config_init(&b));
    mt_status st = mt_config_load_yaml_text(&b, buf, len, "dump.yaml", "", 0);
    CHECK_MSG(st == MT_OK, "%s\n%s", mt_last_error(), buf);
    CHECK_OK(mt_config_finish(&b));
    char *buf2 = NULL;
    size_t len2 = 0;
    f = open_memstream(&buf2, &len2);
    CHECK_OK(mt_config_dump(&b, f, NULL));
    fclose(f);
    CHECK(len == len2 && !memcmp(buf, buf2, len));
    CHECK(!strcmp(b.model.tokenizer.vocab_file, "we\"ird\\path"));
    CHECK(!b.trainer.val_check_interval.is_int && b.trainer.val_check_interval.value == 0.5);
    CHECK(b.model.optim.lr == 0.1 && b.trainer.max_steps == 20);
    free(buf2);
    // the model section alone, re-read under "model."
    buf2 = NULL;
    f = open_memstream(&buf2, &len2);
    CHECK_OK(mt_config_dump(&a, f, "model"));
    fclose(f);
    CHECK(!has(buf2, "trainer:") && has(buf2, "\ndataset:\n"));
    mt_train_config m;
    CHECK_OK(mt_config_init(&m));
    CHECK_OK(mt_config_load_yaml_text(&m, buf2, len2, "model_config.yaml", "model.", 0));
    CHECK(m.model.optim.lr == 0.1);
    mt_config_free(&m);
    free(buf2);
    free(buf);
    mt_config_free(&a);
    mt_config_free(&b);
}

// The example configs of one folder that load and validate; -1 when the folder cannot be read.
static int check_example_dir(const char *dir) {
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "%s: cannot open", dir);
    if (!d) return -1;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        mt_train_config c;
        CHECK_OK(mt_config_init(&c));
        mt_status st = mt_config_load_yaml(&c, path);
        if (st == MT_OK) {
            // mandatory keys ('???': data paths, num_classes) are given on the command line
            size_t nk;
            const mt_cfg_key *keys = mt_config_schema(&nk);
            for (size_t i = 0; i < nk; i++) {
                if (!c.missing[i]) continue;
                char ov[512];
                snprintf(ov, sizeof ov, "%s=%s", keys[i].path, keys[i].type == MT_CFG_INT ? "2" : "/tmp/x");
                CHECK_OK(mt_config_override(&c, ov));
            }
            st = mt_config_finish(&c);
        }
        CHECK_MSG(st == MT_OK, "%s: %s", path, mt_last_error());
        mt_config_free(&c);
        n++;
    }
    closedir(d);
    return n;
}

// Every shipped example config loads and validates: the task configs in examples/ and the
// from-scratch settings in examples/learning/.
static void test_examples(void) {
    // ctest always sets MEGATUNE_SOURCE_DIR: without it (or the folder) nothing would be checked
    const char *src = mt_test_env("MEGATUNE_SOURCE_DIR", NULL);
    CHECK_MSG(src != NULL, "MEGATUNE_SOURCE_DIR unset: the example configs were not checked");
    if (!src) return;
    static const struct { const char *sub; int shipped; } dirs[] = {{"examples", 7}, {"examples/learning", 4}};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", src, dirs[i].sub);
        int n = check_example_dir(dir);
        fprintf(stderr, "  %s: %d example configs checked\n", dirs[i].sub, n);
        CHECK_MSG(n >= dirs[i].shipped, "only %d example configs found in %s (%d are shipped)", n, dir, dirs[i].shipped);
    }
}

// Mutated configs (truncations, flipped bytes, inserted YAML punctuation) never crash the loader:
// each is either accepted or refused with a message. ASan/UBSan builds make this a memory check.
static void test_mutations(void) {
    const char *base =
        "task: token_classification\ntrainer:\n  max_steps: 5\n  val_check_interval: 0.5\nmodel:\n"
        "  task_name: &t mrpc\n  optim:\n    betas: [0.9, 0.98]\n    sched:\n      name: CosineAnnealing\n"
        "  tokenizer:\n    tokenizer_name: ${model.language_model.pretrained_model_name}\nexp_manager:\n  name: *t\n"
        "hydra:\n  run:\n    dir: .\n";
    size_t n = strlen(base);
    char buf[1024];
    const char punct[] = ":-[]{}&*!|>'\"%@`#,?~\n\t ";
    uint64_t x = 88172645463325252ull;
    int accepted = 0, iters = getenv("MEGATUNE_SANITIZED") ? 600 : 3000;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, base, n + 1);
        size_t len = n;
        int edits = 1 + it % 4;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t pos = (size_t)(x % len);
            switch ((x >> 32) % 4) {
            case 0: len = pos; buf[len] = 0; break;                                   // truncate
            case 1: buf[pos] = (char)(x >> 40); if (!buf[pos]) buf[pos] = 'x'; break; // any byte
            default: buf[pos] = punct[(x >> 40) % (sizeof punct - 1)]; break;         // YAML syntax
            }
            if (len == 0) break;
        }
        mt_train_config c;
        CHECK_OK(mt_config_init(&c));
        mt_clear_error(); // else the previous refusal's message would pass for this one's
        mt_status st = mt_config_load_yaml_text(&c, buf, len, "m.yaml", "", it % 2);
        if (st != MT_OK) {
            CHECK_MSG(has(mt_last_error(), "m.yaml"), "refusal does not name the file: %s", mt_last_error());
        } else {
            st = mt_config_finish(&c);
            // finish names where a value came from; only a task nothing sets has no line to name
            CHECK_MSG(st == MT_OK || has(mt_last_error(), "m.yaml") || has(mt_last_error(), "cannot tell which task"),
                      "finish refusal does not name the file: %s", mt_last_error());
        }
        if (st == MT_OK) {
            accepted++;
            FILE *f = fopen("/dev/null", "w");
            CHECK_OK(mt_config_dump(&c, f, NULL));
            fclose(f);
        }
        mt_config_free(&c);
    }
    fprintf(stderr, "  %d of %d mutated configs accepted, the rest refused with a message\n", accepted, iters);
}

// The override fast path: every text it accepts, libyaml reads as one plain scalar equal to the text
// (else an override would mean something else without a parser than with one); and it turns away
// the texts YAML reads otherwise. Random strings over the accepted alphabet and YAML's indicators.
static int yaml_plain_equal(const char *v) {
    yaml_parser_t p;
    yaml_document_t d;
    if (!yaml_parser_initialize(&p)) return 0;
    yaml_parser_set_input_string(&p, (const unsigned char *)v, strlen(v));
    int ok = 0;
    if (yaml_parser_load(&p, &d)) {
        yaml_node_t *r = yaml_document_get_root_node(&d);
        ok = r && r->type == YAML_SCALAR_NODE && r->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
             !strcmp((const char *)r->data.scalar.value, v);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    return ok;
}

static void test_simple_plain_matches_yaml(void) {
    static const char *refused[] = {"", "-", "---", "...", ".", "- 1", "-a", "+", "a b", "a: b", "a:b", "#x", "x#y",
                                    "'a'", "\"a\"", "[1]", "{a: 1}", "&a", "*a", "!t", "%x", "@x", "`x", "|", ">",
                                    "?", "~x", "a,b", "caf\xc3\xa9", " a", "a "};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) CHECK(!mt_config_is_simple_plain(refused[i]));
    static const char *taken[] = {"null", "true", "0.1", "-5", "+5", ".5", "-0.5e3", "1e+5", "bert-base-uncased",
                                  "/data/x_y.json", "a.b-c+d", "_x", "Null", "NaN", "-1e-300"};
    for (size_t i = 0; i < sizeof taken / sizeof *taken; i++) {
        CHECK(mt_config_is_simple_plain(taken[i]));
        CHECK(yaml_plain_equal(taken[i]));
    }
    static const char alphabet[] = "aZ09_./+-:#' \"[]{},&*!|>%@`~?";
    uint64_t s = 12345;
    int accepted = 0;
    for (int it = 0; it < 200000; it++) {
        char v[8];
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int n = 1 + (int)((s >> 60) % 6);
        for (int k = 0; k < n; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v[k] = alphabet[(s >> 33) % (sizeof alphabet - 1)];
        }
        v[n] = 0;
        if (mt_config_is_simple_plain(v)) {
            accepted++;
            if (!yaml_plain_equal(v)) {
                fprintf(stderr, "  fast path takes '%s', libyaml reads it otherwise\n", v);
                CHECK(0);
            }
        }
    }
    CHECK(accepted > 1000);
    fprintf(stderr, "  %d random texts taken by the fast path, each equal to libyaml's plain scalar\n", accepted);
}

int main(void) {
    test_simple_plain_matches_yaml();
    test_mutations();
    test_defaults_and_types();
    test_errors();
    test_anchor_and_tasks();
    test_dump_roundtrip();
    test_examples();
    TEST_DONE();
}
