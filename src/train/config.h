// The training configuration: NeMo's YAML shape (trainer.*, model.*, exp_manager.*) read with
// libyaml into one typed struct. A single schema table (every known dotted key with its type,
// default and help) drives parsing, key=value overrides, validation, hparams.yaml dumping and
// `megatune train --help`. Unknown keys and wrongly typed values are errors that name the key,
// the file:line, and the nearest known key.
#ifndef MT_TRAIN_CONFIG_H
#define MT_TRAIN_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include "core/status.h"

typedef enum {
    MT_CFG_INT = 0,    // int64; nullable keys use -1 for null
    MT_CFG_FLOAT,      // double
    MT_CFG_BOOL,       // int 0/1
    MT_CFG_STR,        // char* (owned; NULL = null)
    MT_CFG_NUM,        // PTL's int-or-float (val_check_interval): mt_cfg_num
    MT_CFG_FLOAT_LIST, // mt_cfg_list (betas)
    MT_CFG_ANY,        // a NeMo key accepted and ignored (hydra.*, infer_samples, ...)
    MT_CFG_NOOP,       // a PyTorch Lightning argument with no effect on a CPU: its text is kept (mt_config_text)
                       // and one log line names it when set to something other than `def`
} mt_cfg_type;

typedef struct {
    double value;
    int is_int; // written without '.', 'e' (PTL: int = batches/steps, float = fraction of an epoch)
} mt_cfg_num;

#define MT_CFG_LIST_MAX 8
typedef struct {
    double v[MT_CFG_LIST_MAX];
    int n;
} mt_cfg_list;

typedef struct {
    const char *path;  // dotted, e.g. "model.language_model.config.hidden_size"
    mt_cfg_type type;
    size_t offset;     // into mt_train_config
    const char *def;   // default as YAML text ("null", "1e-5", "true", "[0.9, 0.999]", "???")
    int nullable;
    const char *help;
} mt_cfg_key;

typedef struct {
    char *file_path;   // text classification: the .tsv
    char *text_file;   // token classification: text_<split>.txt (in model.dataset.data_dir)
    char *labels_file; // token classification: labels_<split>.txt
    char *ds_item;     // GLUE: train.tsv / dev.tsv (in model.dataset.data_dir)
    char *file;        // question answering: the SQuAD .json
    int64_t batch_size;
    int64_t num_samples;
    int64_t num_workers;
    int shuffle, drop_last, pin_memory, use_cache;
    int group_by_length; // train_ds only: Hugging Face's length-grouped order
} mt_cfg_ds;

typedef struct {
    char *task;                 // megatune: text_classification|glue|token_classification|question_answering
    char *init_from_nemo_model; // NeMo: start from every weight of a .nemo
    char *pretrained_model;     // NeMo's scripts: a .nemo whose whole model is fine-tuned further
    char *init_from_ptl_ckpt;   // NeMo: the state_dict of a Lightning .ckpt
    char *init_from_pretrained_model; // NeMo: an NGC name; here a .nemo path
    char *name;                 // NeMo's top-level name (ignored)
    int do_training;            // NeMo's QA script: train (true) or only test (false)
    struct {
        int64_t gpus, num_nodes, max_epochs, max_steps, accumulate_grad_batches, log_every_n_steps;
        int64_t num_sanity_val_steps, seed;
        double gradient_clip_val;
        mt_cfg_num val_check_interval, limit_val_batches, limit_test_batches, limit_train_batches;
        char *precision, *amp_level, *accelerator, *resume_from_checkpoint, *progress_bar;
        int checkpoint_callback, logger, deterministic;
        // PyTorch Lightning 1.x arguments that mean something here (the rest are MT_CFG_NOOP keys)
        int64_t check_val_every_n_epoch;
        int64_t fast_dev_run; // from true/false/N: batches of train and validation, 0 = off
        int terminate_on_nan, stochastic_weight_avg;
    } trainer;
    struct {
        char *nemo_path, *task_name, *output_dir, *label_ids, *target;
        int64_t tensor_model_parallel_size;
        char *activations_checkpoint_granularity, *activations_checkpoint_method;
        int64_t activations_checkpoint_num_layers;
        int activations_checkpoint_fc1; // megatune's: selective recomputes FC1's outputs too
        int activations_checkpoint_attn_out; // megatune's: and the residual after attention (pre-LN)
        struct { char *class_labels_file; } class_labels;
        struct {
            int64_t num_classes, max_seq_length, num_workers, doc_stride, max_query_length;
            int64_t max_answer_length, n_best_size;
            int do_lower_case, use_cache, pin_memory, drop_last, ignore_extra_tokens, ignore_start_end;
            int version_2_with_negative;
            double null_score_diff_threshold;
            char *class_balancing, *data_dir, *pad_label;
        } dataset;
        mt_cfg_ds train_ds, validation_ds, test_ds;
        struct { char *tokenizer_name, *vocab_file, *tokenizer_model; int do_lower_case; } tokenizer;
        struct {
            char *pretrained_model_name, *lm_checkpoint, *config_file;
            struct {
                int64_t hidden_size, num_attention_heads, num_layers, max_position_embeddings;
                int64_t ffn_hidden_size, num_tokentypes, make_vocab_size_divisible_by, vocab_size;
                double hidden_dropout, attention_dropout, layernorm_epsilon, init_method_std;
                char *arch, *gelu;
            } config;
        } language_model;
        struct { int64_t num_fc_layers; double fc_dropout; char *activation; int use_transformer_init; } head;
        // punctuation_capitalization and intent_slot_classification: NeMo's own keys for them
        struct {
            struct { int64_t num_fc_layers; double fc_dropout; char *activation; int use_transformer_init; } punct_head,
                capit_head;
            char *punct_labels_file, *capit_labels_file, *intent_labels_file, *slot_labels_file;
            char *data_dir, *class_balancing, *prefix[3];
            double intent_loss_weight, args_weight_decay, args_warmup_ratio;
            int64_t pad_label, max_seq_length, num_output_layers, args_warmup_steps;
            int ignore_extra_tokens, ignore_start_end;
        } joint;
        struct { int64_t num_output_layers; double fc_dropout; } classifier_head;
        struct {
            int64_t num_layers, num_classes; double dropout; char *activation;
            int log_softmax, use_transformer_init;
        } token_classifier;
        struct {
            char *name;
            double lr, weight_decay, eps, momentum;
            mt_cfg_list betas;
            int amsgrad, decay_all;
            char *step_in_backward; // auto (null) | true | false
            struct {
                char *name, *monitor;
                int64_t warmup_steps, last_epoch, hold_steps;
                double warmup_ratio, min_lr;
                int reduce_on_plateau;
            } sched;
        } optim;
    } model;
    struct {
        char *exp_dir, *name, *version, *explicit_log_dir;
        int use_datetime_version, resume_if_exists, resume_past_end, resume_ignore_no_checkpoint;
        int create_tensorboard_logger, create_checkpoint_callback;
        struct {
            char *monitor, *mode, *filename, *dirpath, *prefix, *postfix;
            int64_t save_top_k, period;
            int save_last, save_weights_only, always_save_nemo, save_best_model;
        } checkpoint_callback_params;
    } exp_manager;

    // bookkeeping, one byte per schema key
    unsigned char *set;     // given by the YAML file or an override
    unsigned char *missing; // OmegaConf's "???" (mandatory) still in place
    char **where;           // "file:line" that set the key (for error messages), or NULL
    char **raw;             // a value holding ${...} interpolations, resolved by mt_config_finish
    char **text;            // MT_CFG_NOOP keys: the value as given (NULL = default)
} mt_train_config;

// The schema, in dump order (keys of one section are contiguous).
const mt_cfg_key *mt_config_schema(size_t *n);
// Index of `path` in the schema, -1 if unknown.
int mt_config_key_index(const char *path);
// The known key nearest to `path` by edit distance (for "did you mean").
const char *mt_config_suggest(const char *path);

// 1 if YAML reads `v` as a plain scalar equal to `v` itself (a value that needs no parser: the
// overrides' and defaults' fast path). Exposed for its test against libyaml.
int mt_config_is_simple_plain(const char *v);

// Fills every key with its schema default. Free with mt_config_free.
mt_status mt_config_init(mt_train_config *c) MT_WARN_UNUSED;
void mt_config_free(mt_train_config *c);

// Reads a YAML file (or text) into `c`. `prefix` is prepended to every key: "" for a training
// config, "model." for a .nemo's model_config.yaml. `name` labels errors ("file.yaml").
// `lenient` turns unknown keys into warnings (a .nemo written by NeMo itself carries keys
// megatune does not use); wrongly typed values stay errors.
mt_status mt_config_load_yaml(mt_train_config *c, const char *path) MT_WARN_UNUSED;
mt_status mt_config_load_yaml_text(mt_train_config *c, const char *text, size_t len, const char *name,
                                   const char *prefix, int lenient) MT_WARN_UNUSED;
// One command-line override "dotted.key=value" (NeMo/Hydra syntax; a leading '+' or '++' is
// accepted). The value is a YAML scalar or flow list. "~key" deletes a key or a whole section
// (back to the schema default, as if the YAML never set it); "~key=value" deletes it only when
// its value is `value` (Hydra).
mt_status mt_config_override(mt_train_config *c, const char *arg) MT_WARN_UNUSED;
// After loading and overrides: infers the task (if `task` is unset), applies that task's NeMo
// defaults to keys nobody set, resolves ${...} interpolations (OmegaConf's: whole values and
// inside strings, chained, ${oc.env:VAR[,default]} / ${env:VAR}), applies fast_dev_run, and
// validates ranges and mandatory keys.
mt_status mt_config_finish(mt_train_config *c) MT_WARN_UNUSED;
// model.optim.step_in_backward resolved: true, or auto (null) where no clipping and no gradient
// accumulation need every gradient before the update.
int mt_config_step_in_backward(const mt_train_config *c);

int mt_config_is_set(const mt_train_config *c, const char *path);
// Pointer to the typed field of `path` (NULL if unknown).
void *mt_config_field(mt_train_config *c, const char *path);
// Sets a key from YAML text as an override would (used by the trainer for derived values).
mt_status mt_config_set(mt_train_config *c, const char *path, const char *value) MT_WARN_UNUSED;

// Writes the config as YAML. `section` NULL writes everything; "model" writes only model.* with
// the "model." prefix stripped (a .nemo's model_config.yaml). Keys of tasks other than c->task are
// left out; floats are written in their shortest round-trip form (1.0e-05).
mt_status mt_config_dump(const mt_train_config *c, FILE *out, const char *section) MT_WARN_UNUSED;
// Logs one line per MT_CFG_NOOP key (a PyTorch Lightning argument without effect here) that the
// config sets to something other than its default. Returns how many lines it wrote.
int mt_config_log_noops(const mt_train_config *c);
// The text of a MT_CFG_NOOP key as given, or its default.
const char *mt_config_text(const mt_train_config *c, const char *path);
// Does `path` (a schema key) belong to the model section of `task`? Keys of the other tasks
// (e.g. QA's dataset.doc_stride in a text-classification run) are left out of model_config.yaml.
int mt_config_key_in_task(const char *path, const char *task);
// The key table for --help.
void mt_config_print_help(FILE *out);

#endif
