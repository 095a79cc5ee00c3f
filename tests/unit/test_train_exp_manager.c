// Experiment manager: NeMo's folder layout, cmd-args.log, hparams.yaml, metrics.csv rows and
// empty cells, checkpoint names (a diverged value: whole or an error), save_top_k by val_loss (min),
// -last, resume_if_exists.
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "train/exp_manager.h"


static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), ls = strlen(suffix);
        if (l >= ls && !strcmp(e->d_name + l - ls, suffix)) n++;
    }
    closedir(d);
    return n;
}

static mt_status write_dummy(void *ctx, const char *path) {
    return mt_write_file_atomic(path, ctx, strlen(ctx));
}

static void make_cfg(mt_train_config *c, const char *root, const char *extra) {
    CHECK_OK(mt_config_init(c));
    char y[2048];
    snprintf(y, sizeof y,
             "task: text_classification\nexp_manager:\n  exp_dir: %s\n%s"
             "  checkpoint_callback_params:\n    save_top_k: 2\n%s",
             root, strstr(extra, "  name:") ? "" : "  name: TC\n", extra); // a repeated key is refused
    CHECK_OK(mt_config_load_yaml_text(c, y, strlen(y), "t.yaml", "", 0));
    CHECK_OK(mt_config_finish(c));
}

int main(void) {
    char root[] = "/tmp/mt_exp_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char stem[256];
    mt_exp_checkpoint_stem("QA", "val_loss", 0.35123, 1, stem, sizeof stem);
    CHECK(!strcmp(stem, "QA--val_loss=0.3512-epoch=1"));

    // --- a fixed version folder ---
    mt_train_config c;
    make_cfg(&c, root, "  version: v0\n");
    char *argv[] = {"megatune", "train", "cfg.yaml", "trainer.max_steps=3"};
    mt_exp_manager *e = NULL;
    CHECK_OK(mt_exp_create(&c, 4, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    char p[8192];
    snprintf(p, sizeof p, "%s/TC/v0", root);
    CHECK(!strcmp(mt_exp_log_dir(e), p));
    snprintf(p, sizeof p, "%s/TC/v0/cmd-args.log", root);
    CHECK(mt_test_slurp(p) && !strcmp(mt_test_slurp(p), "megatune train cfg.yaml trainer.max_steps=3"));
    snprintf(p, sizeof p, "%s/TC/v0/hparams.yaml", root);
    CHECK(mt_test_exists(p));
    mt_train_config back;
    CHECK_OK(mt_config_init(&back));
    CHECK_OK(mt_config_load_yaml(&back, p));
    CHECK(back.exp_manager.checkpoint_callback_params.save_top_k == 2);
    mt_config_free(&back);
    snprintf(p, sizeof p, "%s/TC/v0/nemo_log_globalrank-0_localrank-0.txt", root);
    CHECK(mt_test_exists(p));
    snprintf(p, sizeof p, "%s/TC/v0/checkpoints", root);
    CHECK(!strcmp(mt_exp_ckpt_dir(e), p));
    CHECK(mt_exp_resume_path(e) == NULL);

    const char *names[] = {"val_precision", "val_f1"};
    CHECK_OK(mt_exp_metrics_begin(e, names, 2, -1));
    double m[2] = {0.5, 0.25};
    CHECK_OK(mt_exp_log_row(e, 1, 0, 0.75, 1e-4, NAN, NULL));
    CHECK_OK(mt_exp_log_row(e, 2, 0, 0.5, 2e-4, 0.125, m));
    snprintf(p, sizeof p, "%s/TC/v0/metrics.csv", root);
    const char *csv = mt_test_slurp(p);
    CHECK_MSG(csv && !strcmp(csv, "step,epoch,train_loss,lr,val_loss,val_precision,val_f1\n"
                                  "1,0,0.75,0.0001,,,\n"
                                  "2,0,0.5,0.0002,0.125,0.5,0.25\n"), "%s", csv);
    CHECK(count_files(mt_exp_log_dir(e), "") > 0);
    char tb[8192];
    snprintf(tb, sizeof tb, "%s/TC/v0", root);
    DIR *d = opendir(tb);
    int ntb = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) ntb += !strncmp(de->d_name, "events.out.tfevents.", 20);
    if (d) closedir(d);
    CHECK(ntb == 1);

    // --- save_top_k = 2, mode min ---
    double vals[4] = {0.5, 0.4, 0.6, 0.3};
    for (int i = 0; i < 4; i++) CHECK_OK(mt_exp_save_checkpoint(e, write_dummy, "x", vals[i], i, 1));
    const char *ck = mt_exp_ckpt_dir(e);
    CHECK(count_files(ck, "-last.ckpt") == 1);
    CHECK(count_files(ck, ".ckpt") == 3);
    snprintf(p, sizeof p, "%s/TC--val_loss=0.3000-epoch=3.ckpt", ck);
    CHECK(mt_test_exists(p));
    snprintf(p, sizeof p, "%s/TC--val_loss=0.4000-epoch=1.ckpt", ck);
    CHECK(mt_test_exists(p));
    snprintf(p, sizeof p, "%s/TC--val_loss=0.3000-epoch=3-last.ckpt", ck);
    CHECK(mt_test_exists(p) && !strcmp(mt_exp_last_checkpoint(e), p));
    snprintf(p, sizeof p, "%s/TC--val_loss=0.3000-epoch=3.ckpt", ck);
    CHECK(mt_exp_best_checkpoint(e) && !strcmp(mt_exp_best_checkpoint(e), p));
    mt_exp_free(e);
    mt_config_free(&c);

    // --- a diverged monitored value: the whole value in the name, or one clear error (not a cut name) ---
    make_cfg(&c, root, "  name: H\n  version: v0\n");
    CHECK_OK(mt_exp_create(&c, 4, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    char val[400];
    snprintf(val, sizeof val, "%.4f", 1e95); // 101 characters
    CHECK_OK(mt_exp_save_checkpoint(e, write_dummy, "big", 1e95, 0, 1));
    snprintf(p, sizeof p, "%s/H--val_loss=%s-epoch=0-last.ckpt", mt_exp_ckpt_dir(e), val);
    CHECK_MSG(mt_test_exists(p) && mt_exp_last_checkpoint(e) && !strcmp(mt_exp_last_checkpoint(e), p), "%s",
              mt_exp_last_checkpoint(e) ? mt_exp_last_checkpoint(e) : "(none)");
    CHECK(mt_exp_save_checkpoint(e, write_dummy, "huge", 1e300, 1, 1) == MT_ERR_INVALID);
    CHECK_MSG(strstr(mt_last_error(), "{val_loss:.4f} of 1e+300 is 306 characters") &&
              strstr(mt_last_error(), "checkpoint_callback_params.filename"), "%s", mt_last_error());
    CHECK(count_files(mt_exp_ckpt_dir(e), ".ckpt") == 2); // the 1e95 pair only, nothing cut written
    CHECK(!strcmp(mt_exp_last_checkpoint(e), p));
    mt_exp_free(e);
    mt_config_free(&c);

    // --- resume_if_exists: no checkpoint folder is an error unless ignored ---
    make_cfg(&c, root, "  name: R\n  resume_if_exists: true\n");
    CHECK(mt_exp_create(&c, 4, argv, 0, 1, &e) == MT_ERR_NOT_FOUND);
    CHECK(strstr(mt_last_error(), "resume_ignore_no_checkpoint") != NULL);
    mt_config_free(&c);
    make_cfg(&c, root, "  name: R\n  resume_if_exists: true\n  resume_ignore_no_checkpoint: true\n");
    CHECK_OK(mt_exp_create(&c, 4, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    snprintf(p, sizeof p, "%s/R", root);
    CHECK(!strcmp(mt_exp_log_dir(e), p)); // no version folder
    CHECK(mt_exp_resume_path(e) == NULL);
    CHECK_OK(mt_exp_metrics_begin(e, names, 2, -1));
    for (int s = 1; s <= 4; s++) CHECK_OK(mt_exp_log_row(e, s, 0, 1.0 / s, 1e-3, NAN, NULL));
    CHECK_OK(mt_exp_save_checkpoint(e, write_dummy, "step2", 0.7, 0, 1));
    mt_exp_free(e);
    // second run resumes from the -last file, keeps metrics.csv rows up to the checkpoint's
    // step, rebuilds top-k, and moves the previous loose files into run_0/
    CHECK_OK(mt_exp_create(&c, 4, argv, 0, 1, &e));
    if (!e) TEST_DONE();
    snprintf(p, sizeof p, "%s/R/checkpoints/R--val_loss=0.7000-epoch=0-last.ckpt", root);
    CHECK(mt_exp_resume_path(e) && !strcmp(mt_exp_resume_path(e), p));
    snprintf(p, sizeof p, "%s/R/run_0/cmd-args.log", root);
    CHECK(mt_test_exists(p));
    CHECK_OK(mt_exp_metrics_begin(e, names, 2, 2));
    CHECK_OK(mt_exp_log_row(e, 3, 0, 0.25, 1e-3, NAN, NULL));
    snprintf(p, sizeof p, "%s/R/metrics.csv", root);
    csv = mt_test_slurp(p);
    CHECK_MSG(csv && !strcmp(csv, "step,epoch,train_loss,lr,val_loss,val_precision,val_f1\n"
                                  "1,0,1,0.001,,,\n"
                                  "2,0,0.5,0.001,,,\n"
                                  "3,0,0.25,0.001,,,\n"), "%s", csv);
    CHECK(mt_exp_best_checkpoint(e) && strstr(mt_exp_best_checkpoint(e), "R--val_loss=0.7000-epoch=0.ckpt"));
    CHECK_OK(mt_exp_save_checkpoint(e, write_dummy, "step4", 0.6, 1, 1));
    snprintf(p, sizeof p, "%s/R/checkpoints", root);
    CHECK(count_files(p, "-last.ckpt") == 1);
    mt_exp_free(e);
    mt_config_free(&c);

    // use_datetime_version=false: version_0, version_1, ...
    for (int v = 0; v < 2; v++) {
        make_cfg(&c, root, "  name: V\n  use_datetime_version: false\n");
        CHECK_OK(mt_exp_create(&c, 4, argv, 0, 1, &e));
        snprintf(p, sizeof p, "%s/V/version_%d", root, v);
        CHECK(e && !strcmp(mt_exp_log_dir(e), p));
        mt_exp_free(e);
        mt_config_free(&c);
    }
    // explicit_log_dir wins
    snprintf(p, sizeof p, "  explicit_log_dir: %s/explicit\n", root);
    make_cfg(&c, root, p);
    CHECK_OK(mt_exp_create(&c, 4, argv, 0, 1, &e));
    snprintf(p, sizeof p, "%s/explicit", root);
    CHECK(e && !strcmp(mt_exp_log_dir(e), p));
    mt_exp_free(e);
    mt_config_free(&c);

    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    TEST_DONE();
}
