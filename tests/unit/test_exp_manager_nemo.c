// exp_manager as NeMo v1.0-v1.4 has it: checkpoint_callback_params.filename (Lightning's template),
// prefix + postfix of the .nemo, top-k rebuilt from custom names on resume, git-info.log inside a
// git repository (none outside), nemo_error_log.txt (warnings and errors only), lightning_logs.txt,
// one log line per no-op trainer key, and a failed setup leaving no folder behind.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "core/log.h"
#include "train/exp_manager.h"


static mt_status write_dummy(void *ctx, const char *path) { return mt_write_file_atomic(path, ctx, strlen(ctx)); }

static void make_cfg(mt_train_config *c, const char *yaml) {
    CHECK_OK(mt_config_init(c));
    CHECK_OK(mt_config_load_yaml_text(c, yaml, strlen(yaml), "t.yaml", "", 0));
    CHECK_OK(mt_config_finish(c));
}

int main(void) {
    mt_log_set_level(MT_LOG_ERROR);
    char root[] = "/tmp/mt_expn_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    char y[4096], p[8192];
    char *argv[] = {"megatune", "train", "cfg.yaml"};

    // --- a custom Lightning template, prefix/postfix, files of a run outside a git repository ---
    CHECK(chdir(root) == 0);
    snprintf(y, sizeof y,
             "task: token_classification\ntrainer:\n  gpus: 1\n  benchmark: false\n"
             "exp_manager:\n  exp_dir: %s\n  name: NER\n  version: v0\n  checkpoint_callback_params:\n"
             "    filename: '{val_f1:.3f}--{epoch:02d}-{step}'\n    monitor: val_f1\n    mode: max\n"
             "    save_top_k: 2\n    prefix: best_ner\n    postfix: _model.nemo\n",
             root);
    mt_train_config c;
    make_cfg(&c, y);
    mt_exp_manager *e = NULL;
    CHECK_OK(mt_exp_create(&c, 3, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    CHECK(!strcmp(mt_exp_nemo_name(e), "best_ner_model.nemo"));
    const char *names[] = {"precision", "f1"};
    double f1s[3] = {0.5, 0.75, 0.625};
    for (int i = 0; i < 3; i++) {
        double vals[2] = {0.9, f1s[i]};
        mt_exp_note_metrics(e, 10 * (i + 1), 1.0 - f1s[i], names, vals, 2);
        CHECK_OK(mt_exp_save_checkpoint(e, write_dummy, "x", f1s[i], i, 1));
        CHECK(mt_exp_new_best(e) == (i < 2));
    }
    const char *ck = mt_exp_ckpt_dir(e);
    snprintf(p, sizeof p, "%s/val_f1=0.750--epoch=01-step=20.ckpt", ck);
    CHECK_MSG(mt_test_exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/val_f1=0.625--epoch=02-step=30.ckpt", ck);
    CHECK(mt_test_exists(p));
    snprintf(p, sizeof p, "%s/val_f1=0.500--epoch=00-step=10.ckpt", ck);
    CHECK(!mt_test_exists(p)); // displaced from the top 2 (mode max)
    snprintf(p, sizeof p, "%s/val_f1=0.625--epoch=02-step=30-last.ckpt", ck);
    CHECK(mt_test_exists(p) && !strcmp(mt_exp_last_checkpoint(e), p));
    // Lightning's ModelCheckpoint lines and the device summary go to lightning_logs.txt
    snprintf(p, sizeof p, "%s/NER/v0/lightning_logs.txt", root);
    char *pl = mt_test_slurp(p);
    CHECK_MSG(pl && strstr(pl, "GPU available: False, used: False") &&
                  strstr(pl, "Epoch 1, global step 20: val_f1 reached 0.75000 (best 0.75000), saving model to") &&
                  strstr(pl, "as top 2"), "%s", pl ? pl : "(none)");
    // warnings and errors (only) reach nemo_error_log.txt; the no-op key's line the run's log
    mt_warn("a warning for the error log");
    mt_info("an info line");
    mt_exp_log_failure(e, "an error for the error log");
    snprintf(p, sizeof p, "%s/NER/v0/nemo_error_log.txt", root);
    char *el = mt_test_slurp(p);
    CHECK_MSG(el && strstr(el, "a warning for the error log") && strstr(el, "an error for the error log") &&
                  !strstr(el, "an info line"), "%s", el ? el : "(none)");
    snprintf(p, sizeof p, "%s/NER/v0/nemo_log_globalrank-0_localrank-0.txt", root);
    char *lg = mt_test_slurp(p);
    CHECK_MSG(lg && strstr(lg, "trainer.gpus=1: no effect here") && !strstr(lg, "trainer.benchmark"), "%s",
              lg ? lg : "(none)");
    snprintf(p, sizeof p, "%s/NER/v0/git-info.log", root);
    CHECK(!mt_test_exists(p)); // not inside a git repository
    mt_exp_free(e);
    mt_config_free(&c);

    // --- resume: the top-k of a custom template is rebuilt from the file names ---
    snprintf(y, sizeof y,
             "task: token_classification\nexp_manager:\n  exp_dir: %s\n  name: NER\n  explicit_log_dir: %s/NER/v0\n"
             "  checkpoint_callback_params:\n    filename: '{val_f1:.3f}--{epoch:02d}-{step}'\n    monitor: val_f1\n"
             "    mode: max\n    save_top_k: 2\n",
             root, root);
    make_cfg(&c, y);
    CHECK_OK(mt_exp_create(&c, 3, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    snprintf(p, sizeof p, "%s/val_f1=0.750--epoch=01-step=20.ckpt", mt_exp_ckpt_dir(e));
    CHECK_MSG(mt_exp_best_checkpoint(e) && !strcmp(mt_exp_best_checkpoint(e), p), "%s",
              mt_exp_best_checkpoint(e) ? mt_exp_best_checkpoint(e) : "(none)");
    // an existing folder is not removed by a failed setup
    CHECK(mt_exp_discard(e) == 0);
    snprintf(p, sizeof p, "%s/NER/v0", root);
    CHECK(mt_test_exists(p));
    mt_exp_free(e);
    mt_config_free(&c);

    // --- a failed setup takes back the folders this run made, and only those ---
    snprintf(y, sizeof y, "task: glue\nexp_manager:\n  exp_dir: %s/new/deeper\n  name: G\n", root);
    make_cfg(&c, y);
    CHECK_OK(mt_exp_create(&c, 3, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    snprintf(p, sizeof p, "%s", mt_exp_log_dir(e));
    CHECK(mt_test_exists(p));
    CHECK(mt_exp_discard(e) == 1);
    CHECK(!mt_test_exists(p));
    snprintf(p, sizeof p, "%s/new", root);
    CHECK(!mt_test_exists(p));
    CHECK(mt_test_exists(root));
    mt_exp_free(e);
    // the name folder already holds another run: only this run's version folder goes
    snprintf(y, sizeof y, "task: glue\nexp_manager:\n  exp_dir: %s\n  name: NER\n", root);
    mt_config_free(&c);
    make_cfg(&c, y);
    CHECK_OK(mt_exp_create(&c, 3, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    snprintf(p, sizeof p, "%s", mt_exp_log_dir(e));
    CHECK(mt_exp_discard(e) == 1 && !mt_test_exists(p));
    snprintf(p, sizeof p, "%s/NER/v0/lightning_logs.txt", root);
    CHECK(mt_test_exists(p));
    mt_exp_free(e);
    mt_config_free(&c);

    // --- inside a git repository: git-info.log = "commit hash: <HEAD>" + `git diff` ---
    char repo[8300];
    snprintf(repo, sizeof repo, "%s/repo", root);
    CHECK(mkdir(repo, 0777) == 0);
    CHECK(chdir(repo) == 0);
    int git = system("git init -q . && printf 'a\\n' > f.txt && git add f.txt && "
                     "git -c user.name=t -c user.email=t@t -c commit.gpgsign=false commit -qm init && "
                     "printf 'b\\n' > f.txt");
    CHECK_MSG(git == 0, "git is needed for this test (%d)", git);
    snprintf(y, sizeof y, "task: glue\nexp_manager:\n  exp_dir: %s/exps\n  name: G\n  version: v\n", root);
    make_cfg(&c, y);
    CHECK_OK(mt_exp_create(&c, 3, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    snprintf(p, sizeof p, "%s/exps/G/v/git-info.log", root);
    char *gi = mt_test_slurp(p);
    CHECK_MSG(gi && !strncmp(gi, "commit hash: ", 13) && strlen(gi) > 13 + 40 && gi[13 + 40] == '\n' &&
                  strstr(gi, "diff --git a/f.txt b/f.txt") && strstr(gi, "-a\n+b\n"),
              "%s", gi ? gi : "(none)");
    mt_exp_free(e);
    mt_config_free(&c);

    CHECK(chdir(cwd) == 0);
    snprintf(p, sizeof p, "rm -rf '%s'", root);
    CHECK(system(p) == 0);
    TEST_DONE();
}
