// megatune train CONFIG.yaml [key=value ...]
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/file.h"
#include "parallel/parallel.h"
#include "core/log.h"
#include "train/config.h"
#include "train/trainer.h"

static void train_usage(FILE *out) {
    fprintf(out,
            "usage: megatune train CONFIG.yaml [key=value ...]\n"
            "       megatune train --config-path DIR --config-name NAME [key=value ...]   (NeMo/Hydra style)\n\n"
            "Fine-tunes a model as NeMo's example scripts do, from a YAML config in NeMo's shape (trainer.*,\n"
            "model.*, exp_manager.*) and dotted key=value overrides as Hydra's (+key=value, ++key=value, ~key to\n"
            "delete a key or section, ~key=value); ${a.b.c} and ${oc.env:VAR} interpolations resolve after the\n"
            "overrides. model.language_model.config_file, when set, wins over the config block (as in NeMo).\n"
            "Writes exp_dir/name/version/ with cmd-args.log, hparams.yaml, nemo_log_globalrank-0_localrank-0.txt,\n"
            "nemo_error_log.txt, lightning_logs.txt, git-info.log (inside a git repository), metrics.csv,\n"
            "TensorBoard events, checkpoints/*.ckpt (checkpoint_callback_params.filename) and\n"
            "checkpoints/<prefix><postfix> (default <name>.nemo). A config or data error leaves no folder.\n"
            "SIGINT/SIGTERM finish the current step, save a -last checkpoint and exit (130/143).\n"
            "A pretrained name's missing vocab/checkpoint are downloaded on first use (see `megatune download\n"
            "--help`); --offline (or MEGATUNE_OFFLINE=1) forbids that and names every missing file instead.\n\n"
            "examples:\n"
            "  megatune train examples/text_classification_config.yaml model.dataset.num_classes=2 \\\n"
            "      model.train_ds.file_path=train.tsv model.validation_ds.file_path=dev.tsv \\\n"
            "      model.language_model.pretrained_model_name=megatron-bert-345m-uncased trainer.max_epochs=3\n"
            "  megatune train examples/token_classification_config.yaml model.dataset.data_dir=conll2003 \\\n"
            "      model.language_model.lm_checkpoint=/path/iter_0080000 trainer.max_steps=100\n"
            "  megatune train examples/quickstart_config.yaml exp_manager.resume_if_exists=true\n"
            "  megatune train examples/question_answering_squad_config.yaml do_training=false \\\n"
            "      pretrained_model=qa.nemo model.test_ds.file=dev-v1.1.json   # test only (NeMo's QA script):\n"
            "      # test_* metrics on stdout, predictions.json + nbest_predictions.json in the log folder\n"
            "  megatune train examples/question_answering_squad_config.yaml model.train_ds.file=train-v1.1.json \\\n"
            "      model.validation_ds.file=dev-v1.1.json model.test_ds.file=dev-v1.1.json\n"
            "      # trains, writes the .nemo, then tests that model (the last step's weights; with\n"
            "      # save_best_model the best checkpoint's) on model.test_ds.file, as the line above does\n"
            "  megatune train examples/text_classification_config.yaml model.dataset.num_classes=2 \\\n"
            "      model.train_ds.file_path=train.tsv model.test_ds.file_path=test.tsv\n"
            "      # as NeMo's text classification script: after training, the test_* metrics of the .nemo's\n"
            "      # weights on test.tsv (what `megatune test` prints); intent/slot classification always tests\n"
            "      # after training, on model.data_dir/<model.test_ds.prefix>.tsv (not under fast_dev_run)\n"
            "  megatune train examples/quickstart_config.yaml trainer.max_steps=0 \\\n"
            "      trainer.resume_from_checkpoint=CKPT       # a .nemo from any training checkpoint\n\n");
    mt_config_print_help(out);
}

int mt_cmd_train(int argc, char **argv) {
    if (argc < 2) {
        train_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        train_usage(stdout);
        return 0;
    }
    // NeMo scripts take Hydra's --config-path DIR --config-name NAME (-cp / -cn); accept them
    // anywhere, else the first argument is the YAML file.
    const char *cpath = NULL, *cname = NULL;
    char *rest[1024];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **dst = NULL;
        size_t kl = 0;
        if (!strncmp(a, "--config-path", 13)) dst = &cpath, kl = 13;
        else if (!strncmp(a, "--config-name", 13)) dst = &cname, kl = 13;
        else if (!strncmp(a, "-cp", 3)) dst = &cpath, kl = 3;
        else if (!strncmp(a, "-cn", 3)) dst = &cname, kl = 3;
        if (!strcmp(a, "--offline")) { // never download a pretrained name's files (as MEGATUNE_OFFLINE=1)
            setenv("MEGATUNE_OFFLINE", "1", 1);
            continue;
        }
        if (dst && (a[kl] == '=' || a[kl] == 0)) {
            if (a[kl] == '=') *dst = a + kl + 1;
            else if (i + 1 < argc) *dst = argv[++i];
            else {
                fprintf(stderr, "megatune train: %s needs a value\n", a);
                return 2;
            }
            continue;
        }
        if (nrest < 1024) rest[nrest++] = argv[i];
    }
    char cfg_path[4096];
    int first = 0;
    if (cname) {
        size_t nl = strlen(cname);
        int has_ext = nl > 5 && (!strcmp(cname + nl - 5, ".yaml") || !strcmp(cname + nl - 4, ".yml"));
        if (mt_path_fmt(cfg_path, sizeof cfg_path, "%s%s%s%s", cpath ? cpath : "", cpath ? "/" : "", cname,
                        has_ext ? "" : ".yaml") != MT_OK)
            return mt_cli_error();
    } else if (cpath) {
        fprintf(stderr, "megatune train: --config-path needs --config-name (the YAML file's name in it)\n");
        return 2;
    } else if (nrest == 0 || rest[0][0] == '-') {
        if (nrest) fprintf(stderr, "megatune train: unknown option '%s'\n\n", rest[0]);
        train_usage(stderr);
        return 2;
    } else {
        if (mt_path_fmt(cfg_path, sizeof cfg_path, "%s", rest[0]) != MT_OK) return mt_cli_error();
        first = 1;
    }
    mt_train_config cfg;
    if (mt_config_init(&cfg) != MT_OK) return mt_cli_error();
    mt_status s = mt_config_load_yaml(&cfg, cfg_path);
    for (int i = first; i < nrest && s == MT_OK; i++) {
        if (!strcmp(rest[i], "--help") || !strcmp(rest[i], "-h")) {
            mt_config_free(&cfg);
            train_usage(stdout);
            return 0;
        }
        s = mt_config_override(&cfg, rest[i]);
    }
    if (s == MT_OK) s = mt_config_finish(&cfg);
    if (s != MT_OK) {
        mt_config_free(&cfg);
        return mt_cli_error();
    }
    // cmd-args.log records the whole command line, as NeMo's does
    char *args[256];
    int n = 0;
    args[n++] = "megatune";
    for (int i = 0; i < argc && n < 256; i++) args[n++] = argv[i];
    mt_train_result res;
    s = mt_train_run(&cfg, n, args, &res);
    const int trained = cfg.do_training;
    mt_config_free(&cfg);
    if (s != MT_OK && s != MT_ERR_INTERRUPTED && res.world_size > 1 && res.agreed_failure) {
        // every rank stopped with the same message: global rank 0 reports it, all exit cleanly
        if (res.world_rank != 0) return 1;
        return mt_cli_error();
    }
    if (s != MT_OK && s != MT_ERR_INTERRUPTED && res.world_size > 1) {
        // The other ranks may wait in a collective for this one: report, then end the whole job.
        fprintf(stderr, "megatune: rank %d: %s\n", res.world_rank, mt_last_error());
        fflush(stderr);
        mt_parallel_abort(1);
    }
    if (res.world_rank != 0) return s == MT_OK ? 0 : s == MT_ERR_INTERRUPTED ? 128 + res.interrupted : 1;
    if (res.log_dir[0]) {
        printf("log dir:      %s\n", res.log_dir);
        if (s != MT_OK && s != MT_ERR_INTERRUPTED) { // failed: its log (which has the error) is what to read
            fflush(stdout);
            return mt_cli_error();
        }
        if (trained) { // (do_training=false: trainer.test only)
            printf("metrics:      %s/metrics.csv\n", res.log_dir);
            printf("checkpoints:  %s\n", res.ckpt_dir);
            if (res.nemo_path[0]) printf(".nemo:        %s\n", res.nemo_path);
        }
        if (res.tested_predictions) printf("predictions:  %s/predictions.json (and nbest_predictions.json)\n", res.log_dir);
        fflush(stdout);
    }
    if (s == MT_ERR_INTERRUPTED) {
        fprintf(stderr, "megatune: %s\n", mt_last_error());
        return 128 + res.interrupted;
    }
    if (s != MT_OK) return mt_cli_error();
    return 0;
}
