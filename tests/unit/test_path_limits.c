// Paths that do not fit a fixed buffer are refused with one message naming the path and the key,
// never cut short (a cut path reads or writes another file): an experiment folder, an experiment
// name, a checkpoint file name template, model.nemo_path, TMPDIR for a .nemo restore. Nothing is
// created on disk by a refused run.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "train/exp_manager.h"
#include "train/nemo.h"
#include "train/trainer.h"

static char root[] = "/tmp/mt_pathlim_XXXXXX";

static char *repeat(char c, size_t n, const char *prefix) {
    size_t pl = strlen(prefix);
    char *s = malloc(pl + n + 1);
    memcpy(s, prefix, pl);
    memset(s + pl, c, n);
    s[pl + n] = 0;
    return s;
}

static int empty_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n == 0;
}

// A config from YAML text (exp_manager section etc.) on top of the defaults.
static void cfg_from(mt_train_config *c, const char *yaml) {
    CHECK_OK(mt_config_init(c));
    CHECK_OK(mt_config_load_yaml_text(c, yaml, strlen(yaml), "t.yaml", "", 0));
    CHECK_OK(mt_config_finish(c));
}

static mt_status write_dummy(void *ctx, const char *path) { return mt_write_file_atomic(path, ctx, strlen(ctx)); }

static void test_exp_manager(void) {
    char *argv[] = {"megatune", "train"};
    char y[12000];
    // exp_manager.exp_dir longer than a path may be (the folder it names would not be the one used),
    // inside root and in 99-byte folders: each fits NAME_MAX, so folders made from a cut path could
    // exist, and empty_dir(root) below would see them
    char top[64];
    snprintf(top, sizeof top, "%s/", root);
    char *longdir = repeat('d', 5000, top);
    for (size_t i = strlen(top) + 99, n = strlen(longdir); i + 1 < n; i += 100) longdir[i] = '/';
    snprintf(y, sizeof y, "task: text_classification\nexp_manager:\n  exp_dir: %s/x\n  name: TC\n  version: v\n", longdir);
    mt_train_config c;
    cfg_from(&c, y);
    mt_exp_manager *e = NULL;
    mt_status s = mt_exp_create(&c, 2, argv, 0, 1, &e);
    CHECK_MSG(s == MT_ERR_INVALID && e == NULL, "a 5000-byte exp_dir was accepted (status %d)", s);
    CHECK_MSG(strstr(mt_last_error(), "path too long") && strstr(mt_last_error(), root), "%s", mt_last_error());
    fprintf(stderr, "long exp_dir: %s\n", mt_last_error());
    mt_exp_free(e);
    mt_config_free(&c);
    CHECK_MSG(empty_dir(root), "a refused exp_dir left files in %s", root);
    free(longdir);

    // an experiment name of 300 bytes (was cut to 255 silently: another folder, another .nemo name)
    char *longname = repeat('n', 300, "");
    snprintf(y, sizeof y, "task: text_classification\nexp_manager:\n  exp_dir: %s\n  name: %s\n  version: v\n", root, longname);
    cfg_from(&c, y);
    e = NULL;
    s = mt_exp_create(&c, 2, argv, 0, 1, &e);
    CHECK_MSG(s == MT_ERR_INVALID && e == NULL, "a 300-byte exp_manager.name was accepted (status %d)", s);
    CHECK_MSG(strstr(mt_last_error(), "path too long") && strstr(mt_last_error(), "exp_manager.name") &&
                  strstr(mt_last_error(), "nnnnnnnn"),
              "%s", mt_last_error());
    fprintf(stderr, "long name: %s\n", mt_last_error());
    mt_exp_free(e);
    mt_config_free(&c);
    CHECK_MSG(empty_dir(root), "a refused exp_manager.name left files in %s", root);
    free(longname);

    // a checkpoint name template that expands past the file-name buffer: the save fails, naming the
    // key, and writes no checkpoint under a cut name
    char tmpl[600] = "";
    for (int i = 0; i < 39; i++) strcat(tmpl, "{epoch:090d}"); // 507 bytes -> a 3744-byte name
    snprintf(y, sizeof y,
             "task: text_classification\nexp_manager:\n  exp_dir: %s\n  name: TC\n  version: v\n"
             "  checkpoint_callback_params:\n    filename: '%s'\n",
             root, tmpl);
    cfg_from(&c, y);
    e = NULL;
    CHECK_OK(mt_exp_create(&c, 2, argv, 0, 1, &e));
    if (e) {
        s = mt_exp_save_checkpoint(e, write_dummy, "x", 0.25, 0, 1);
        CHECK_MSG(s == MT_ERR_INVALID, "a 3744-byte checkpoint name was accepted (status %d)", s);
        CHECK_MSG(strstr(mt_last_error(), "checkpoint_callback_params.filename") && strstr(mt_last_error(), "longer than"),
                  "%s", mt_last_error());
        fprintf(stderr, "long template: %s\n", mt_last_error());
        char ck[600];
        snprintf(ck, sizeof ck, "%s/TC/v/checkpoints", root);
        CHECK_MSG(empty_dir(ck), "a refused checkpoint name left a file in %s", ck);
        mt_exp_free(e);
    }
    mt_config_free(&c);
}

static void test_nemo_paths(void) {
    const char *src = getenv("MEGATUNE_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "MEGATUNE_SOURCE_DIR unset: model.nemo_path case not run\n");
        CHECK(getenv("CI") == NULL);
        return;
    }
    // model.nemo_path of 5000 bytes: refused before training, naming the key (not "the folder ...
    // does not exist" about a cut folder name)
    char *longnemo = repeat('m', 5000, "/tmp/");
    char y[8192], yaml[600];
    snprintf(yaml, sizeof yaml, "%s/examples/quickstart_config.yaml", src);
    FILE *f = fopen(yaml, "r");
    CHECK_MSG(f != NULL, "%s: cannot open", yaml);
    if (!f) return;
    size_t n = fread(y, 1, sizeof y - 1, f);
    fclose(f);
    y[n] = 0;
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    if (chdir(src) != 0) CHECK(0);
    CHECK_OK(mt_config_load_yaml_text(&c, y, n, yaml, "", 0));
    char ov[5100], ex[600];
    snprintf(ov, sizeof ov, "model.nemo_path=%s.nemo", longnemo);
    CHECK_OK(mt_config_override(&c, ov));
    snprintf(ex, sizeof ex, "exp_manager.exp_dir=%s/never", root);
    CHECK_OK(mt_config_override(&c, ex));
    CHECK_OK(mt_config_finish(&c));
    mt_train_result res;
    char *argv[] = {"megatune", "train"};
    mt_status s = mt_train_run(&c, 2, argv, &res);
    CHECK_MSG(s == MT_ERR_INVALID, "a 5000-byte model.nemo_path was accepted (status %d)", s);
    CHECK_MSG(strstr(mt_last_error(), "model.nemo_path") && strstr(mt_last_error(), "path too long") &&
                  strstr(mt_last_error(), "/tmp/mmm"),
              "%s", mt_last_error());
    fprintf(stderr, "long model.nemo_path: %s\n", mt_last_error());
    CHECK_MSG(access(ex + strlen("exp_manager.exp_dir="), F_OK) != 0, "a refused model.nemo_path made %s", ex);
    // a short folder and a 300-byte file name: beyond the file system's NAME_MAX, refused before
    // training too (it used to train, then fail writing the .nemo)
    longnemo[5 + 300] = 0;
    snprintf(ov, sizeof ov, "model.nemo_path=%s", longnemo);
    CHECK_OK(mt_config_override(&c, ov));
    CHECK_OK(mt_config_finish(&c));
    s = mt_train_run(&c, 2, argv, &res);
    CHECK_MSG(s == MT_ERR_INVALID && strstr(mt_last_error(), "model.nemo_path") && strstr(mt_last_error(), "300 bytes"),
              "status %d: %s", s, mt_last_error());
    fprintf(stderr, "long .nemo file name: %s\n", mt_last_error());
    CHECK_MSG(access(ex + strlen("exp_manager.exp_dir="), F_OK) != 0, "a refused .nemo file name made %s", ex);
    mt_config_free(&c);
    free(longnemo);

    // a .nemo restore unpacks into TMPDIR: a TMPDIR too long for the private folder is refused
    char *longtmp = repeat('t', 300, "/tmp/");
    setenv("TMPDIR", longtmp, 1);
    mt_nemo *nm = NULL;
    s = mt_nemo_restore("/nonexistent.nemo", NULL, 0, &nm);
    CHECK_MSG(s == MT_ERR_INVALID && nm == NULL, "a 300-byte TMPDIR was accepted (status %d)", s);
    CHECK_MSG(strstr(mt_last_error(), "path too long") && strstr(mt_last_error(), "/tmp/ttt"), "%s", mt_last_error());
    fprintf(stderr, "long TMPDIR: %s\n", mt_last_error());
    unsetenv("TMPDIR");
    free(longtmp);
}

int main(void) {
    CHECK(mkdtemp(root) != NULL);
    test_exp_manager();
    test_nemo_paths();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    TEST_DONE();
}
