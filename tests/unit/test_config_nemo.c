// NeMo/Hydra/Lightning habits of the config: ${...} interpolation resolved after overrides, ~key
// deletion, Lightning 1.x trainer arguments (meaning or one no-op log line), "did you mean" that
// never echoes the key, task-only keys and shortest floats in dumps, and NeMo's stock YAMLs of
// v1.0/v1.4 (tests/data/nemo_configs) validating with only data paths and a model name changed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "core/log.h"
#include "train/config.h"

static mt_status load_text(mt_train_config *c, const char *text) {
    mt_clear_error(); // a refusal checked below must bring its own message, not keep the last one
    return mt_config_load_yaml_text(c, text, strlen(text), "cfg.yaml", "", 0);
}

static int has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

// A config from `yaml` plus overrides (NULL-terminated), finished; returns the finish status.
static mt_status build(mt_train_config *c, const char *yaml, const char *const *ov) {
    CHECK_OK(mt_config_init(c));
    mt_status st = load_text(c, yaml);
    for (int i = 0; ov && ov[i] && st == MT_OK; i++) st = mt_config_override(c, ov[i]);
    if (st == MT_OK) st = mt_config_finish(c);
    return st;
}

__attribute__((noinline)) static char *dump(const mt_train_config *c, const char *section) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK_OK(mt_config_dump(c, m, section));
    fclose(m);
    return buf;
}

static void test_interpolation(void) {
    mt_train_config c;
    const char *y = "task: question_answering\n"
                    "model:\n"
                    "  dataset:\n"
                    "    num_workers: 2\n"
                    "    drop_last: false\n"
                    "    max_seq_length: 384\n"
                    "  train_ds:\n"
                    "    num_workers: ${model.dataset.num_workers}\n"
                    "    drop_last: ${model.dataset.drop_last}\n"
                    "  optim:\n"
                    "    lr: 3e-5\n"
                    "    sched:\n"
                    "      min_lr: ${model.optim.lr}\n"
                    "exp_manager:\n"
                    "  name: qa_${model.dataset.max_seq_length}_${model.optim.name}\n"
                    "  version: ${exp_manager.name}\n";
    // the override of the target reaches every reference, whatever the order on the command line
    const char *ov[] = {"model.dataset.num_workers=7", "model.dataset.drop_last=true", "model.dataset.max_seq_length=128",
                        NULL};
    CHECK_OK(build(&c, y, ov));
    CHECK(c.model.train_ds.num_workers == 7);
    CHECK(c.model.train_ds.drop_last == 1);
    CHECK(c.model.optim.sched.min_lr == 3e-5);
    CHECK_MSG(c.exp_manager.name && !strcmp(c.exp_manager.name, "qa_128_adamw"), "%s", c.exp_manager.name);
    CHECK(c.exp_manager.version && !strcmp(c.exp_manager.version, "qa_128_adamw")); // chained
    // the schema default of tokenizer_name follows the model name
    CHECK(!strcmp(c.model.tokenizer.tokenizer_name, c.model.language_model.pretrained_model_name));
    mt_config_free(&c);

    // an override may itself interpolate; a literal override replaces a reference
    const char *ov2[] = {"model.validation_ds.batch_size=${model.train_ds.batch_size}", "model.train_ds.batch_size=5",
                         "model.train_ds.num_workers=1", NULL};
    CHECK_OK(build(&c, y, ov2));
    CHECK(c.model.validation_ds.batch_size == 5);
    CHECK(c.model.train_ds.num_workers == 1);
    mt_config_free(&c);

    // null targets: whole value -> null, inside a string -> "None" (OmegaConf's str(None))
    const char *y3 = "task: text_classification\nmodel:\n  nemo_path: ${model.language_model.lm_checkpoint}\n"
                     "  output_dir: out_${model.language_model.lm_checkpoint}\n  train_ds:\n"
                     "  dataset:\n    num_classes: ${trainer.max_steps}\n";
    CHECK_OK(build(&c, y3, NULL));
    CHECK(c.model.nemo_path == NULL);
    CHECK(c.model.output_dir && !strcmp(c.model.output_dir, "out_None"));
    CHECK(c.model.dataset.num_classes == -1);
    mt_config_free(&c);
    const char *y3b = "task: text_classification\nmodel:\n  train_ds:\n    batch_size: ${trainer.max_steps}\n";
    CHECK(build(&c, y3b, NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:4") && has(mt_last_error(), "model.train_ds.batch_size") &&
                  has(mt_last_error(), "null"), "%s", mt_last_error());
    mt_config_free(&c);

    // environment variables, with and without a default; an escaped \${ stays literal
    setenv("MT_TEST_CFG_DIR", "/data/glue", 1);
    unsetenv("MT_TEST_CFG_UNSET");
    // (model.label_ids holds NeMo's {label: id} mapping, so a plain string key carries the escape)
    const char *y4 = "task: glue\nname: \\${not.a.ref}\nmodel:\n  dataset:\n    data_dir: ${oc.env:MT_TEST_CFG_DIR}/MRPC\n"
                     "  output_dir: ${env:MT_TEST_CFG_UNSET,'fallback'}\n";
    CHECK_OK(build(&c, y4, NULL));
    CHECK(!strcmp(c.model.dataset.data_dir, "/data/glue/MRPC"));
    CHECK(!strcmp(c.model.output_dir, "fallback"));
    CHECK_MSG(c.name && !strcmp(c.name, "${not.a.ref}"), "%s", c.name ? c.name : "(null)");
    mt_config_free(&c);
    CHECK(build(&c, "task: glue\nmodel:\n  output_dir: ${oc.env:MT_TEST_CFG_UNSET}\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "MT_TEST_CFG_UNSET") && has(mt_last_error(), "cfg.yaml:3"), "%s", mt_last_error());
    mt_config_free(&c);

    // errors: a cycle names the chain, the key and file:line; a missing target suggests the key
    const char *y5 = "task: glue\nexp_manager:\n  name: ${exp_manager.version}\n  version: x_${exp_manager.name}\n";
    CHECK(build(&c, y5, NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "circular") && has(mt_last_error(), "cfg.yaml:") &&
                  has(mt_last_error(), "exp_manager.name -> exp_manager.version -> exp_manager.name"),
              "%s", mt_last_error());
    mt_config_free(&c);
    CHECK(build(&c, "task: glue\nmodel:\n  train_ds:\n    batch_size: ${model.dataset.max_seq_lenght}\n", NULL) ==
          MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:4") && has(mt_last_error(), "names no key") &&
                  has(mt_last_error(), "did you mean 'model.dataset.max_seq_length'"),
              "%s", mt_last_error());
    mt_config_free(&c);
    CHECK(build(&c, "task: glue\nmodel:\n  output_dir: ${model.optim}\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "section"), "%s", mt_last_error());
    mt_config_free(&c);
    CHECK(build(&c, "model:\n  output_dir: ${model.dataset.data_dir\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "closing") && has(mt_last_error(), "cfg.yaml:2"), "%s", mt_last_error());
    mt_config_free(&c);
    // a string target into an integer key is checked after resolution, naming both
    CHECK(build(&c, "task: glue\nmodel:\n  train_ds:\n    batch_size: ${model.optim.name}\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "model.train_ds.batch_size") && has(mt_last_error(), "${model.optim.name}") &&
                  has(mt_last_error(), "adam"), "%s", mt_last_error());
    mt_config_free(&c);
}

static void test_delete(void) {
    mt_train_config c;
    const char *y = "task: text_classification\ntrainer:\n  max_epochs: 9\n  gpus: 1\n"
                    "model:\n  optim:\n    lr: 1.0e-3\n    weight_decay: 0.5\n";
    const char *ov[] = {"~trainer.max_epochs", "~model.optim", NULL};
    CHECK_OK(build(&c, y, ov));
    // back to the defaults (here the task's NeMo defaults apply again, as if the YAML never set them)
    CHECK(c.trainer.max_epochs == 100);
    CHECK(!mt_config_is_set(&c, "trainer.max_epochs"));
    CHECK(c.model.optim.lr == 2e-5 && c.model.optim.weight_decay == 0.01);
    mt_config_free(&c);
    const char *ov2[] = {"~trainer.max_epochs=9", "~trainer.gpus=1", NULL};
    CHECK_OK(build(&c, y, ov2));
    CHECK(c.trainer.max_epochs == 100);
    CHECK(!strcmp(mt_config_text(&c, "trainer.gpus"), "null"));
    mt_config_free(&c);
    const char *ov3[] = {"~trainer.max_epochs=8", NULL};
    CHECK(build(&c, y, ov3) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "trainer.max_epochs is '9', not '8'") && has(mt_last_error(), "cfg.yaml:3"), "%s",
              mt_last_error());
    mt_config_free(&c);
    const char *ov4[] = {"~trainer.max_stepz", NULL};
    CHECK(build(&c, y, ov4) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "did you mean 'trainer.max_steps'"), "%s", mt_last_error());
    mt_config_free(&c);
    const char *ov5[] = {"~trainer.max_steps", NULL}; // not in the YAML: Hydra refuses too
    CHECK(build(&c, y, ov5) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "nothing to delete"), "%s", mt_last_error());
    mt_config_free(&c);
    // a deleted target of an interpolation falls back to its default
    const char *y6 = "task: text_classification\nmodel:\n  dataset:\n    num_workers: 5\n  train_ds:\n"
                     "    num_workers: ${model.dataset.num_workers}\n";
    const char *ov6[] = {"~model.dataset.num_workers", NULL};
    CHECK_OK(build(&c, y6, ov6));
    CHECK(c.model.train_ds.num_workers == 2);
    mt_config_free(&c);
    // + and ++ still add or override
    const char *ov7[] = {"+trainer.max_steps=4", "++trainer.max_epochs=2", NULL};
    CHECK_OK(build(&c, y, ov7));
    CHECK(c.trainer.max_steps == 4 && c.trainer.max_epochs == 2);
    mt_config_free(&c);
}

static void test_trainer_keys(void) {
    mt_train_config c;
    // every Lightning 1.x argument NeMo v1.0-v1.4 configs carry is accepted
    const char *y = "task: text_classification\n"
                    "trainer:\n"
                    "  gpus: [0, 1]\n  num_nodes: 1\n  accelerator: ddp\n  amp_level: O1\n  amp_backend: native\n"
                    "  progress_bar_refresh_rate: 1\n  weights_summary: null\n  benchmark: false\n  profiler: null\n"
                    "  replace_sampler_ddp: true\n  plugins: null\n  sync_batchnorm: false\n  terminate_on_nan: true\n"
                    "  flush_logs_every_n_steps: 100\n  min_epochs: 1\n  min_steps: null\n"
                    "  check_val_every_n_epoch: 2\n  auto_lr_find: false\n  auto_scale_batch_size: false\n"
                    "  auto_select_gpus: false\n  track_grad_norm: -1\n  move_metrics_to_cpu: false\n"
                    "  stochastic_weight_avg: false\n  distributed_backend: ddp\n  num_processes: 1\n"
                    "  tpu_cores: null\n  log_gpu_memory: null\n  reload_dataloaders_every_epoch: false\n"
                    "  prepare_data_per_node: true\n  max_time: null\n  overfit_batches: 0.0\n"
                    "  truncated_bptt_steps: null\n  gradient_clip_algorithm: norm\n  row_log_interval: 7\n"
                    "  num_sanity_val_steps: 0\n  deterministic: true\n  callbacks: null\n";
    CHECK_OK(build(&c, y, NULL));
    CHECK(c.trainer.check_val_every_n_epoch == 2);
    CHECK(c.trainer.log_every_n_steps == 7); // Lightning 1.0's row_log_interval
    CHECK(!strcmp(mt_config_text(&c, "trainer.gpus"), "[0, 1]"));
    // one log line per no-op key set to something other than Lightning's default: gpus, accelerator,
    // amp_level, progress_bar_refresh_rate (None in 1.x), weights_summary (top), distributed_backend
    CHECK_MSG(mt_config_log_noops(&c) == 6, "%d", mt_config_log_noops(&c));
    mt_config_free(&c);
    CHECK_OK(build(&c, "task: text_classification\ntrainer:\n  benchmark: false\n  amp_level: O2\n", NULL));
    CHECK(mt_config_log_noops(&c) == 0); // defaults say nothing
    mt_config_free(&c);

    // fast_dev_run: one batch of train and validation (N for an int), one epoch, no checkpoints
    const char *ov[] = {"trainer.fast_dev_run=true", NULL};
    CHECK_OK(build(&c, "task: text_classification\ntrainer:\n  max_steps: 500\n", ov));
    CHECK(c.trainer.fast_dev_run == 1 && c.trainer.limit_train_batches.is_int && c.trainer.limit_train_batches.value == 1);
    CHECK(c.trainer.limit_val_batches.is_int && c.trainer.limit_val_batches.value == 1);
    CHECK(c.trainer.max_epochs == 1 && c.trainer.max_steps == -1 && !c.exp_manager.create_checkpoint_callback);
    mt_config_free(&c);
    const char *ov2[] = {"trainer.fast_dev_run=3", NULL};
    CHECK_OK(build(&c, "task: text_classification\n", ov2));
    CHECK(c.trainer.fast_dev_run == 3 && c.trainer.limit_val_batches.value == 3);
    mt_config_free(&c);
    const char *ov3[] = {"trainer.fast_dev_run=false", NULL};
    CHECK_OK(build(&c, "task: text_classification\n", ov3));
    CHECK(c.trainer.fast_dev_run == 0 && c.exp_manager.create_checkpoint_callback);
    mt_config_free(&c);
    const char *ovp[] = {"trainer.progress_bar_refresh_rate=0", NULL}; // Lightning: no bar
    CHECK_OK(build(&c, "task: text_classification\n", ovp));
    CHECK(!strcmp(c.trainer.progress_bar, "lines") && mt_config_log_noops(&c) == 0);
    mt_config_free(&c);
    const char *ov4[] = {"trainer.fast_dev_run=soon", NULL};
    CHECK(build(&c, "task: text_classification\n", ov4) == MT_ERR_INVALID && has(mt_last_error(), "fast_dev_run"));
    mt_config_free(&c);
    // values without a CPU meaning that would change results are refused, not ignored
    CHECK(build(&c, "task: text_classification\ntrainer:\n  stochastic_weight_avg: true\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:3") && has(mt_last_error(), "stochastic_weight_avg"), "%s", mt_last_error());
    mt_config_free(&c);
    CHECK(build(&c, "task: text_classification\ntrainer:\n  gradient_clip_algorithm: value\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:3") && has(mt_last_error(), "trainer.gradient_clip_algorithm") &&
                  has(mt_last_error(), "'value'"),
              "%s", mt_last_error());
    mt_config_free(&c);
    CHECK(build(&c, "task: text_classification\ntrainer:\n  check_val_every_n_epoch: 0\n", NULL) == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "cfg.yaml:3") && has(mt_last_error(), "trainer.check_val_every_n_epoch"), "%s",
              mt_last_error());
    mt_config_free(&c);
}

static void test_suggestions(void) {
    // never the key the user wrote, for every key and section of the schema
    size_t n;
    const mt_cfg_key *k = mt_config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        const char *s = mt_config_suggest(k[i].path);
        CHECK_MSG(!s || strcmp(s, k[i].path), "%s suggests itself", k[i].path);
        char sec[256];
        snprintf(sec, sizeof sec, "%s", k[i].path);
        char *dot = strrchr(sec, '.');
        if (dot) {
            *dot = 0;
            s = mt_config_suggest(sec);
            CHECK_MSG(!s || strcmp(s, sec), "%s suggests itself", sec);
        }
    }
    mt_train_config c;
    CHECK_OK(mt_config_init(&c));
    // a key valid in another section: that section's key is the suggestion
    CHECK(mt_config_override(&c, "model.train_ds.max_seq_length=64") == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "did you mean 'model.dataset.max_seq_length'"), "%s", mt_last_error());
    CHECK(load_text(&c, "trainer:\n  lr: 0.1\n") == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "did you mean 'model.optim.lr'"), "%s", mt_last_error());
    // a section given a value: said so, no "did you mean" the same name
    CHECK(load_text(&c, "model:\n  dataset: 5\n") == MT_ERR_INVALID);
    CHECK_MSG(has(mt_last_error(), "model.dataset is a section") && !has(mt_last_error(), "did you mean 'model.dataset'"),
              "%s", mt_last_error());
    mt_config_free(&c);
}

static void test_dump(void) {
    mt_train_config c;
    const char *y = "task: text_classification\nmodel:\n  optim:\n    lr: 1e-5\n    eps: 3e-8\n"
                    "  language_model:\n    config:\n      layernorm_epsilon: 1.0e-12\n";
    CHECK_OK(build(&c, y, NULL));
    char *m = dump(&c, "model");
    // shortest round trip, spelled as PyYAML does (a '.' in the mantissa, so YAML 1.1 reads a float)
    CHECK_MSG(has(m, "lr: 1.0e-05\n") && has(m, "eps: 3.0e-08\n") && has(m, "layernorm_epsilon: 1.0e-12\n"), "%s", m);
    CHECK(has(m, "weight_decay: 0.01\n") && has(m, "min_lr: 0.0\n"));
    // only the trained task's keys
    CHECK(has(m, "classifier_head:") && has(m, "num_classes:") && has(m, "file_path:"));
    CHECK_MSG(!has(m, "doc_stride") && !has(m, "token_classifier") && !has(m, "\nhead:") && !has(m, "pad_label") &&
                  !has(m, "text_file") && !has(m, "ds_item") && !has(m, "task_name") && !has(m, "  file:"),
              "%s", m);
    // and it reads back to the same values
    mt_train_config back;
    CHECK_OK(mt_config_init(&back));
    CHECK_OK(mt_config_load_yaml_text(&back, m, strlen(m), "model_config.yaml", "model.", 0));
    CHECK(back.model.optim.lr == 1e-5 && back.model.optim.eps == 3e-8);
    mt_config_free(&back);
    free(m);
    // Python's repr rules: fixed for 1e-4 <= |v| < 1e16, else the exponent form
    const char *cases[][2] = {{"1e-4", "lr: 0.0001\n"}, {"100000", "lr: 100000.0\n"}, {"1e16", "lr: 1.0e+16\n"},
                              {"0.30000000000000004", "lr: 0.30000000000000004\n"}, {"2.5e-7", "lr: 2.5e-07\n"}};
    for (int i = 0; i < 5; i++) {
        CHECK_OK(mt_config_set(&c, "model.optim.lr", cases[i][0]));
        m = dump(&c, "model");
        CHECK_MSG(has(m, cases[i][1]), "%s -> %s", cases[i][0], strstr(m, "lr:") ? strstr(m, "lr:") : m);
        free(m);
    }
    char *all = dump(&c, NULL);
    CHECK(has(all, "trainer:") && has(all, "fast_dev_run: false") && has(all, "gpus: null"));
    free(all);
    mt_config_free(&c);
    CHECK_OK(build(&c, "task: question_answering\n", NULL));
    m = dump(&c, "model");
    CHECK(has(m, "doc_stride: 128") && has(m, "token_classifier:") && !has(m, "classifier_head") && !has(m, "num_classes: -1"));
    free(m);
    mt_config_free(&c);
}

// NeMo's stock YAMLs (v1.0.0 = v1.4.0) with a user's data paths and model name.
static void test_nemo_stock(void) {
    const char *src = getenv("MEGATUNE_SOURCE_DIR");
    char p[4096];
    mt_train_config c;
    // text classification: num_classes is NeMo's ??? (mandatory)
    snprintf(p, sizeof p, "%s/tests/data/nemo_configs/text_classification_config.yaml", src ? src : ".");
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(mt_config_load_yaml(&c, p));
    CHECK(mt_config_finish(&c) == MT_ERR_INVALID && has(mt_last_error(), "model.dataset.num_classes"));
    mt_config_free(&c);
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(mt_config_load_yaml(&c, p));
    const char *tc[] = {"model.dataset.num_classes=2", "model.train_ds.file_path=/d/train.tsv",
                        "model.validation_ds.file_path=/d/dev.tsv",
                        "model.language_model.pretrained_model_name=megatron-bert-345m-uncased"};
    for (int i = 0; i < 4; i++) CHECK_OK(mt_config_override(&c, tc[i]));
    CHECK_OK(mt_config_finish(&c));
    CHECK(!strcmp(c.task, "text_classification"));
    CHECK(!strcmp(c.model.tokenizer.tokenizer_name, "megatron-bert-345m-uncased"));
    CHECK(c.model.train_ds.num_workers == 3 && c.model.dataset.max_seq_length == 256 && c.model.optim.lr == 2e-5);
    CHECK(!strcmp(c.exp_manager.name, "TextClassification") && c.trainer.max_epochs == 100);
    CHECK(mt_config_log_noops(&c) == 3); // gpus: 1, amp_level: O0, accelerator: ddp
    mt_config_free(&c);

    snprintf(p, sizeof p, "%s/tests/data/nemo_configs/token_classification_config.yaml", src ? src : ".");
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(mt_config_load_yaml(&c, p));
    CHECK_OK(mt_config_override(&c, "model.dataset.data_dir=/d/conll2003"));
    CHECK_OK(mt_config_override(&c, "model.language_model.pretrained_model_name=megatron-bert-345m-cased"));
    CHECK_OK(mt_config_finish(&c));
    CHECK(!strcmp(c.task, "token_classification"));
    CHECK(!strcmp(c.model.tokenizer.tokenizer_name, "megatron-bert-345m-cased"));
    CHECK(!strcmp(c.model.train_ds.text_file, "text_train.txt") && !strcmp(c.model.dataset.pad_label, "O"));
    CHECK(!strcmp(c.trainer.precision, "16") && c.model.head.fc_dropout == 0.5);
    mt_config_free(&c);

    snprintf(p, sizeof p, "%s/tests/data/nemo_configs/question_answering_squad_config.yaml", src ? src : ".");
    CHECK_OK(mt_config_init(&c));
    CHECK_OK(mt_config_load_yaml(&c, p));
    const char *qa[] = {"model.train_ds.file=/d/train-v1.1.json", "model.validation_ds.file=/d/dev-v1.1.json",
                        "model.language_model.pretrained_model_name=megatron-bert-345m-uncased",
                        "model.dataset.num_workers=0"};
    for (int i = 0; i < 4; i++) CHECK_OK(mt_config_override(&c, qa[i]));
    CHECK_OK(mt_config_finish(&c));
    CHECK(!strcmp(c.task, "question_answering") && c.do_training == 1);
    CHECK(!strcmp(c.model.train_ds.file, "/d/train-v1.1.json"));
    CHECK(c.model.train_ds.num_workers == 0 && c.model.test_ds.num_workers == 0); // ${model.dataset.num_workers}
    CHECK(!strcmp(c.exp_manager.name, "QA")); // the &name anchor
    CHECK(!strcmp(c.model.optim.name, "adamw") && c.model.optim.lr == 3e-5 && c.model.dataset.doc_stride == 128);
    mt_config_free(&c);
}

int main(void) {
    mt_log_set_level(MT_LOG_ERROR);
    test_interpolation();
    test_delete();
    test_trainer_keys();
    test_suggestions();
    test_dump();
    test_nemo_stock();
    TEST_DONE();
}
