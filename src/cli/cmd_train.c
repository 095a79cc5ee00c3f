// megatune train CONFIG.yaml [key=value ...]
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"
#include "train/config.h"
#include "train/trainer.h"

static void train_usage(FILE *out) {
    fprintf(out,
            "usage: megatune train CONFIG.yaml [key=value ...]\n\n"
            "Fine-tunes a model as NeMo's example scripts do, from a YAML config in NeMo's shape (trainer.*,\n"
            "model.*, exp_manager.*) and dotted key=value overrides (a leading '+' is accepted).\n"
            "Writes exp_dir/name/version/ with cmd-args.log, hparams.yaml, nemo_log_globalrank-0_localrank-0.txt,\n"
            "metrics.csv, TensorBoard events, checkpoints/*.ckpt and checkpoints/<name>.nemo.\n"
            "SIGINT/SIGTERM finish the current step, save a -last checkpoint and exit (130/143).\n\n"
            "examples:\n"
            "  megatune train examples/text_classification_config.yaml model.dataset.num_classes=2 \\\n"
            "      model.train_ds.file_path=train.tsv model.validation_ds.file_path=dev.tsv \\\n"
            "      model.language_model.pretrained_model_name=megatron-bert-345m-uncased trainer.max_epochs=3\n"
            "  megatune train examples/token_classification_config.yaml model.dataset.data_dir=conll2003 \\\n"
            "      model.language_model.lm_checkpoint=/path/iter_0080000 trainer.max_steps=100\n"
            "  megatune train examples/quickstart_config.yaml exp_manager.resume_if_exists=true\n"
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
    mt_train_config cfg;
    if (mt_config_init(&cfg) != MT_OK) return mt_cli_error();
    mt_status s = mt_config_load_yaml(&cfg, argv[1]);
    for (int i = 2; i < argc && s == MT_OK; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            mt_config_free(&cfg);
            train_usage(stdout);
            return 0;
        }
        s = mt_config_override(&cfg, argv[i]);
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
    mt_config_free(&cfg);
    if (res.log_dir[0]) {
        printf("log dir:      %s\n", res.log_dir);
        printf("metrics:      %s/metrics.csv\n", res.log_dir);
        printf("checkpoints:  %s\n", res.ckpt_dir);
        if (res.nemo_path[0]) printf(".nemo:        %s\n", res.nemo_path);
        fflush(stdout);
    }
    if (s == MT_ERR_INTERRUPTED) {
        fprintf(stderr, "megatune: %s\n", mt_last_error());
        return 128 + res.interrupted;
    }
    if (s != MT_OK) return mt_cli_error();
    return 0;
}
