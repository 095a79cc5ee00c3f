// QA regressions at the library level: a repeated YAML key is refused (naming both lines), a folder
// given where a config, vocab or data file is expected gets a message saying so, and an atomic
// output file appears only on commit (abort leaves the previous content).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks/outfile.h"
#include "tasks/task_internal.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "train/config.h"
#include "train/session.h"

static int has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

static void test_duplicate_keys(void) {
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    const char *y = "task: text_classification\ntrainer:\n  max_steps: 3\n  max_epochs: 2\n  max_steps: 4\n";
    CHECK(mt_config_load_yaml_text(&c, y, strlen(y), "d.yaml", "", 0) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "d.yaml:5: duplicate key 'trainer.max_steps' (first set on line 3)"), "%s",
              mt_last_error());
    mt_config_free(&c);
    // the same name in different sections is fine
    CHECK_OK(mt_config_init(&c));
    const char *ok = "task: text_classification\nmodel:\n  train_ds:\n    batch_size: 8\n  validation_ds:\n"
                     "    batch_size: 16\n";
    CHECK_OK(mt_config_load_yaml_text(&c, ok, strlen(ok), "ok.yaml", "", 0));
    CHECK(c.model.train_ds.batch_size == 8 && c.model.validation_ds.batch_size == 16);
    mt_config_free(&c);
    // top level too
    CHECK_OK(mt_config_init(&c));
    const char *top = "task: text_classification\ntask: glue\n";
    CHECK(mt_config_load_yaml_text(&c, top, strlen(top), "t.yaml", "", 0) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "duplicate key 'task'"), "%s", mt_last_error());
    mt_config_free(&c);
    // several repeated names, one three times: the first repeat in reading order is the one named,
    // with the line of that name's first pair (max_steps repeats on line 5, before val on line 6)
    CHECK_OK(mt_config_init(&c));
    const char *many = "trainer:\n  val_check_interval: 2\n  max_steps: 3\n  max_epochs: 2\n  max_steps: 4\n"
                       "  val_check_interval: 5\n  max_steps: 6\n";
    CHECK(mt_config_load_yaml_text(&c, many, strlen(many), "m.yaml", "", 0) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "m.yaml:5: duplicate key 'trainer.max_steps' (first set on line 3)"), "%s",
              mt_last_error());
    mt_config_free(&c);
}

// A GLUE config as NeMo shipped it before v1.0 (file_name, distributed_backend, a top-level
// supported_tasks anchor, sentencepiece tokenizer keys, do_lower_case: null) loads; file_name is
// ds_item, an absolute one is used as is (os.path.join), and a null do_lower_case stays unset.
static void test_nemo_glue_keys(void) {
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    const char *y = "supported_tasks: &t ['cola', 'mrpc']\n"
                    "trainer:\n  distributed_backend: ddp\n  max_steps: 2\n"
                    "model:\n  task_name: mrpc\n  supported_tasks: *t\n"
                    "  dataset:\n    data_dir: /data/MRPC\n"
                    "  train_ds:\n    file_name: 'train.tsv'\n"
                    "  validation_ds:\n    file_name: /elsewhere/dev.tsv\n"
                    "  tokenizer:\n    data_file: null\n    sample_size: null\n    vocab_size: null\n"
                    "    do_lower_case: null\n";
    CHECK_OK(mt_config_load_yaml_text(&c, y, strlen(y), "glue.yaml", "", 0));
    CHECK_OK(mt_config_finish(&c));
    CHECK(c.model.train_ds.ds_item && !strcmp(c.model.train_ds.ds_item, "train.tsv"));
    CHECK(!mt_config_is_set(&c, "model.tokenizer.do_lower_case") && c.model.tokenizer.do_lower_case == 1);
    char path[512], split[64];
    int present = 0;
    CHECK_OK(mt_session_split_path(&c, MT_SPLIT_TRAIN, path, sizeof path, split, sizeof split, &present));
    CHECK_MSG(present && !strcmp(path, "/data/MRPC/train.tsv") && !strcmp(split, "train"), "%s %s", path, split);
    CHECK_OK(mt_session_split_path(&c, MT_SPLIT_VALIDATION, path, sizeof path, split, sizeof split, &present));
    CHECK_MSG(present && !strcmp(path, "/elsewhere/dev.tsv") && !strcmp(split, "dev"), "%s %s", path, split);
    CHECK_OK(mt_config_override(&c, "model.test_ds.file_name=test.tsv"));
    CHECK(c.model.test_ds.ds_item && !strcmp(c.model.test_ds.ds_item, "test.tsv"));
    mt_config_free(&c);
}

static void test_folders(const char *dir) {
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    CHECK(mt_config_load_yaml(&c, dir) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "is a folder"), "%s", mt_last_error());
    mt_config_free(&c);
    mt_vocab *v = NULL;
    CHECK(mt_vocab_load(dir, &v) != MT_OK && !v);
    CHECK_MSG(has(mt_last_error(), "Is a directory") && has(mt_last_error(), "vocab.txt"), "%s", mt_last_error());
    mt_lines L;
    CHECK(mt_lines_open(&L, dir) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "not a folder"), "%s", mt_last_error());
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int count_entries(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static void test_outfile(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    mt_outfile o;
    CHECK_OK(mt_outfile_open(&o, path));
    fputs("partial", o.f);
    fflush(o.f);
    CHECK(access(path, F_OK) != 0); // nothing at the target before commit
    mt_outfile_abort(&o);
    CHECK(access(path, F_OK) != 0);
    CHECK(count_entries(dir) == 0); // the temporary is gone too
    CHECK_OK(mt_outfile_open(&o, path));
    fputs("first", o.f);
    CHECK_OK(mt_outfile_commit(&o));
    CHECK(slurp(path) && !strcmp(slurp(path), "first"));
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0044) == 0044); // readable like a fopen'd file (umask 022)
    CHECK_OK(mt_outfile_open(&o, path));
    fputs("second, failed", o.f);
    mt_outfile_abort(&o);
    CHECK(slurp(path) && !strcmp(slurp(path), "first"));
    CHECK(count_entries(dir) == 1);
    CHECK(mt_outfile_open(&o, dir) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "is a folder"), "%s", mt_last_error());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/out.txt", dir);
    CHECK(mt_outfile_open(&o, missing) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "no/such/out.txt: cannot create"), "%s", mt_last_error());
    unlink(path);

    // files that belong together appear all or none
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/a.txt", dir);
    snprintf(pb, sizeof pb, "%s/b.txt", dir);
    mt_outfile a, b;
    mt_outfile *const both[] = {&a, &b};
    // the second one's write fails (its descriptor closed under it): the first is not renamed either
    CHECK_OK(mt_outfile_open(&a, pa));
    CHECK_OK(mt_outfile_open(&b, pb));
    fputs("A", a.f);
    fputs("B", b.f);
    close(fileno(b.f));
    CHECK(mt_outfile_commit_all(both, 2) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "b.txt: write failed"), "%s", mt_last_error());
    CHECK(access(pa, F_OK) != 0 && access(pb, F_OK) != 0 && count_entries(dir) == 0);
    // the second one's rename fails (a folder took its name): the first, already renamed, is removed
    CHECK_OK(mt_outfile_open(&a, pa));
    CHECK_OK(mt_outfile_open(&b, pb));
    fputs("A", a.f);
    fputs("B", b.f);
    CHECK(mkdir(pb, 0700) == 0);
    CHECK(mt_outfile_commit_all(both, 2) != MT_OK);
    CHECK_MSG(has(mt_last_error(), "b.txt: cannot rename"), "%s", mt_last_error());
    CHECK(access(pa, F_OK) != 0);
    CHECK(rmdir(pb) == 0 && count_entries(dir) == 0);
    // and both when nothing fails
    CHECK_OK(mt_outfile_open(&a, pa));
    CHECK_OK(mt_outfile_open(&b, pb));
    fputs("A", a.f);
    fputs("B", b.f);
    CHECK_OK(mt_outfile_commit_all(both, 2));
    CHECK(slurp(pa) && !strcmp(slurp(pa), "A") && slurp(pb) && !strcmp(slurp(pb), "B") && count_entries(dir) == 2);
    unlink(pa);
    unlink(pb);
}

int main(void) {
    umask(022);
    char dir[] = "/tmp/mt_qa_XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("no temp folder");
    test_duplicate_keys();
    test_nemo_glue_keys();
    test_folders(dir);
    test_outfile(dir);
    rmdir(dir);
    TEST_DONE();
}
