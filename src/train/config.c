// Schema-driven config: the table below is the only list of keys. Parsing walks the YAML
// document (libyaml's loader, so anchors/aliases resolve) building dotted paths and looks each
// one up here; overrides reuse the same scalar parser; dumping and --help walk the table.
#include "train/config.h"
#include "core/file.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/log.h"

#define OFF(field) offsetof(mt_train_config, field)
#define K(path, type, field, def, nullable, help) {path, type, OFF(field), def, nullable, help}
#define ANY(path, help) {path, MT_CFG_ANY, 0, "null", 1, help}
#define NOOP(path, def, help) {path, MT_CFG_NOOP, 0, def, 1, help}
#define DS(split, bs_def, shuffle_def)                                                                            \
    K("model." #split ".file_path", MT_CFG_STR, model.split.file_path, "null", 1,                        \
      "text classification: the .tsv file (words<TAB>label per line)"),                                   \
    K("model." #split ".text_file", MT_CFG_STR, model.split.text_file, "null", 1,                        \
      "token classification: text_<split>.txt in model.dataset.data_dir"),                                \
    K("model." #split ".labels_file", MT_CFG_STR, model.split.labels_file, "null", 1,                    \
      "token classification: labels_<split>.txt in model.dataset.data_dir"),                              \
    K("model." #split ".ds_item", MT_CFG_STR, model.split.ds_item, "null", 1,                            \
      "GLUE: the split's file in model.dataset.data_dir (train.tsv, dev.tsv)"),                           \
    K("model." #split ".file", MT_CFG_STR, model.split.file, "null", 1,                                  \
      "question answering: the split's SQuAD .json file"),                                                \
    K("model." #split ".batch_size", MT_CFG_INT, model.split.batch_size, bs_def, 0, "examples per batch"),    \
    K("model." #split ".shuffle", MT_CFG_BOOL, model.split.shuffle, shuffle_def, 0,                          \
      "reshuffle every epoch (a pure function of trainer.seed and the epoch)"),                           \
    K("model." #split ".num_samples", MT_CFG_INT, model.split.num_samples, "-1", 0,                      \
      "use only the first N examples (-1 = all)"),                                                        \
    K("model." #split ".num_workers", MT_CFG_INT, model.split.num_workers, "2", 0, "accepted, ignored"),  \
    K("model." #split ".drop_last", MT_CFG_BOOL, model.split.drop_last, "false", 0,                      \
      "drop the last incomplete batch"),                                                                  \
    K("model." #split ".pin_memory", MT_CFG_BOOL, model.split.pin_memory, "false", 0, "accepted, ignored"), \
    K("model." #split ".use_cache", MT_CFG_BOOL, model.split.use_cache, "false", 0, "accepted, ignored")

static const mt_cfg_key g_schema[] = {
    K("task", MT_CFG_STR, task, "null", 1,
      "megatune: text_classification | glue | token_classification | question_answering "
      "(inferred from the config's shape when absent)"),
    K("name", MT_CFG_STR, name, "null", 1, "accepted, ignored"),
    K("init_from_nemo_model", MT_CFG_STR, init_from_nemo_model, "null", 1,
      "start training from every weight (heads included) of this .nemo"),
    K("pretrained_model", MT_CFG_STR, pretrained_model, "null", 1,
      "a .nemo to fine-tune further: the model (encoder, tokenizer, head, labels) is the .nemo's own, as "
      "NeMo's restore_from builds it; the YAML gives data, trainer and optim"),
    // NeMo's other initialisation keys (ModelPT.maybe_init_from_pretrained_checkpoint): one at most
    K("init_from_ptl_ckpt", MT_CFG_STR, init_from_ptl_ckpt, "null", 1,
      "start from the state_dict of a PyTorch Lightning .ckpt (NeMo's or megatune's; strict=False as NeMo)"),
    K("init_from_pretrained_model", MT_CFG_STR, init_from_pretrained_model, "null", 1,
      "NeMo: an NGC model name; megatune fetches no NeMo task models (.nemo) and takes a local .nemo path here"),
    K("do_training", MT_CFG_BOOL, do_training, "true", 0,
      "question answering (NeMo's QA script): true trains (then tests the trained model on model.test_ds.file when "
      "set); false only tests pretrained_model on model.test_ds.file"),
    // trainer (PyTorch Lightning's Trainer arguments)
    K("trainer.num_nodes", MT_CFG_INT, trainer.num_nodes, "1", 0, "accepted; must be 1"),
    K("trainer.max_epochs", MT_CFG_INT, trainer.max_epochs, "3", 1, "epochs to train; with max_steps set, whichever ends first (null: max_steps alone, or 1000 epochs when max_steps is null too, as Lightning 1.x)"),
    K("trainer.max_steps", MT_CFG_INT, trainer.max_steps, "null", 1,
      "optimizer steps to train; null (or -1) = derived from max_epochs (NeMo compute_max_steps)"),
    K("trainer.accumulate_grad_batches", MT_CFG_INT, trainer.accumulate_grad_batches, "1", 0,
      "batches per optimizer step"),
    K("trainer.gradient_clip_val", MT_CFG_FLOAT, trainer.gradient_clip_val, "0.0", 0,
      "clip the global gradient L2 norm to this (0 = off)"),
    K("trainer.precision", MT_CFG_STR, trainer.precision, "32", 0, "32; bf16: bf16 matrix products with fp32 accumulation on CPUs with AVX512-BF16/AMX-BF16, else fp32; 16: fp32 (no fp16 AMP on CPUs)"),
    K("trainer.log_every_n_steps", MT_CFG_INT, trainer.log_every_n_steps, "1", 0,
      "write a metrics.csv/TensorBoard row every N optimizer steps"),
    K("trainer.val_check_interval", MT_CFG_NUM, trainer.val_check_interval, "1.0", 0,
      "validate every N training batches (int) or fraction of an epoch (float)"),
    K("trainer.limit_val_batches", MT_CFG_NUM, trainer.limit_val_batches, "1.0", 0,
      "validation batches per check: int = count, float = fraction"),
    K("trainer.limit_test_batches", MT_CFG_NUM, trainer.limit_test_batches, "1.0", 0,
      "test batches: int = count, float = fraction"),
    K("trainer.limit_train_batches", MT_CFG_NUM, trainer.limit_train_batches, "1.0", 0,
      "training batches per epoch: int = count, float = fraction"),
    K("trainer.num_sanity_val_steps", MT_CFG_INT, trainer.num_sanity_val_steps, "0", 0, "accepted, ignored"),
    K("trainer.resume_from_checkpoint", MT_CFG_STR, trainer.resume_from_checkpoint, "null", 1,
      "resume from this .ckpt (weights, optimizer, schedule, data position)"),
    K("trainer.checkpoint_callback", MT_CFG_BOOL, trainer.checkpoint_callback, "false", 0,
      "accepted (exp_manager provides checkpoints)"),
    K("trainer.logger", MT_CFG_BOOL, trainer.logger, "false", 0, "accepted (exp_manager provides logs)"),
    K("trainer.deterministic", MT_CFG_BOOL, trainer.deterministic, "true", 0, "accepted; megatune is always deterministic"),
    K("trainer.seed", MT_CFG_INT, trainer.seed, "1234", 0,
      "megatune: seed of weight init, dropout and data order (NeMo's PL_GLOBAL_SEED)"),
    K("trainer.progress_bar", MT_CFG_STR, trainer.progress_bar, "auto", 0,
      "megatune: auto (a bar on a terminal, plain lines otherwise) | bar | lines"),
    // PyTorch Lightning 1.x Trainer arguments that NeMo v1.0-v1.4 configs carry. Those with a meaning
    // here are typed; the NOOP ones keep their text, and each set to something other than Lightning's
    // default (`def`) gets one log line saying why it changes nothing (the help text).
    K("trainer.check_val_every_n_epoch", MT_CFG_INT, trainer.check_val_every_n_epoch, "1", 0,
      "validate (and checkpoint) only in every N-th epoch, and at the end"),
    NOOP("trainer.fast_dev_run", "false",
         "true or N: train N batches (1 for true) and validate N batches, one epoch, no checkpoints"),
    K("trainer.terminate_on_nan", MT_CFG_BOOL, trainer.terminate_on_nan, "false", 0,
      "accepted; megatune always stops with an error at a non-finite loss"),
    K("trainer.stochastic_weight_avg", MT_CFG_BOOL, trainer.stochastic_weight_avg, "false", 0,
      "not supported; must be false"),
    NOOP("trainer.gpus", "null", "megatune runs on the CPU; GPUs are not used (threads: OMP_NUM_THREADS)"),
    NOOP("trainer.tpu_cores", "null", "megatune runs on the CPU; TPUs are not used"),
    NOOP("trainer.auto_select_gpus", "false", "megatune runs on the CPU; GPUs are not used"),
    NOOP("trainer.num_processes", "1", "processes come from mpirun -np N (see model.tensor_model_parallel_size)"),
    NOOP("trainer.accelerator", "null", "data parallelism comes from mpirun -np N (DDP semantics)"),
    NOOP("trainer.distributed_backend", "null", "Lightning's older name of accelerator: mpirun -np N decides"),
    NOOP("trainer.plugins", "null", "Lightning plugins (DDP, sharded, apex) do not apply; mpirun decides"),
    NOOP("trainer.amp_level", "O2", "apex AMP level: ignored (mixed precision is trainer.precision=bf16)"),
    NOOP("trainer.amp_backend", "native", "AMP backend: megatune trains in fp32 (see trainer.precision)"),
    NOOP("trainer.sync_batchnorm", "false", "BERT has no batch norm"),
    NOOP("trainer.benchmark", "false", "cuDNN autotuning: no cuDNN on the CPU"),
    NOOP("trainer.profiler", "null", "no Lightning profiler; the log reports step times"),
    NOOP("trainer.weights_summary", "top", "megatune logs the model's shape and parameter count instead"),
    NOOP("trainer.progress_bar_refresh_rate", "null",
         "use trainer.progress_bar (bar or lines); 0 turns the bar off (progress_bar=lines) as in Lightning"),
    NOOP("trainer.process_position", "0", "use trainer.progress_bar (bar or lines)"),
    NOOP("trainer.flush_logs_every_n_steps", "100", "metrics.csv and TensorBoard are flushed at every row"),
    NOOP("trainer.log_gpu_memory", "null", "no GPU"),
    NOOP("trainer.move_metrics_to_cpu", "false", "metrics live on the CPU already"),
    NOOP("trainer.replace_sampler_ddp", "true", "megatune always shards data as DistributedSampler does"),
    NOOP("trainer.prepare_data_per_node", "true", "data is read by every process; nothing to prepare"),
    NOOP("trainer.reload_dataloaders_every_epoch", "false", "datasets are in memory; the order is reshuffled per epoch"),
    NOOP("trainer.auto_lr_find", "false", "only Trainer.tune() reads it, which NeMo's scripts never call"),
    NOOP("trainer.auto_scale_batch_size", "false", "only Trainer.tune() reads it, which NeMo's scripts never call"),
    NOOP("trainer.min_epochs", "1", "without early stopping training always runs to max_epochs/max_steps"),
    NOOP("trainer.min_steps", "null", "without early stopping training always runs to max_epochs/max_steps"),
    NOOP("trainer.max_time", "null", "no wall-clock limit; stop with SIGINT/SIGTERM (a -last checkpoint is saved)"),
    NOOP("trainer.track_grad_norm", "-1", "gradient norms are not logged"),
    NOOP("trainer.gradient_clip_algorithm", "norm", "megatune clips by the global L2 norm (norm)"),
    NOOP("trainer.truncated_bptt_steps", "null", "recurrent models only"),
    NOOP("trainer.overfit_batches", "0.0", "not applied: use limit_train_batches and a training file as validation"),
    NOOP("trainer.limit_predict_batches", "1.0", "megatune predict reads the whole input"),
    NOOP("trainer.multiple_trainloader_mode", "max_size_cycle", "one training loader"),
    NOOP("trainer.default_root_dir", "null", "exp_manager decides the folders (exp_manager.exp_dir)"),
    NOOP("trainer.weights_save_path", "null", "exp_manager decides the folders (checkpoint_callback_params.dirpath)"),
    NOOP("trainer.automatic_optimization", "true", "Lightning 1.0's switch; megatune steps automatically"),
    NOOP("trainer.enable_pl_optimizer", "null", "Lightning 1.1's switch; no effect"),
    NOOP("trainer.log_save_interval", "100", "Lightning 1.0's flush interval; rows are flushed as written"),
    ANY("trainer.callbacks", "accepted, ignored (Lightning callback objects)"),
    // exp_manager
    K("exp_manager.exp_dir", MT_CFG_STR, exp_manager.exp_dir, "null", 1, "experiments root (null = ./nemo_experiments)"),
    K("exp_manager.name", MT_CFG_STR, exp_manager.name, "default", 1, "experiment name (also the checkpoint prefix)"),
    K("exp_manager.version", MT_CFG_STR, exp_manager.version, "null", 1,
      "version folder (null = date-time, or version_N when use_datetime_version is false)"),
    K("exp_manager.use_datetime_version", MT_CFG_BOOL, exp_manager.use_datetime_version, "true", 0,
      "name the version folder by date and time"),
    K("exp_manager.explicit_log_dir", MT_CFG_STR, exp_manager.explicit_log_dir, "null", 1,
      "log here instead of exp_dir/name/version"),
    K("exp_manager.resume_if_exists", MT_CFG_BOOL, exp_manager.resume_if_exists, "false", 0,
      "resume from exp_dir/name/checkpoints/*-last.ckpt (no version folder)"),
    K("exp_manager.resume_past_end", MT_CFG_BOOL, exp_manager.resume_past_end, "false", 0,
      "allow resuming a run that already ended"),
    K("exp_manager.resume_ignore_no_checkpoint", MT_CFG_BOOL, exp_manager.resume_ignore_no_checkpoint, "false", 0,
      "with resume_if_exists: start fresh (warning) when no checkpoint exists"),
    K("exp_manager.create_tensorboard_logger", MT_CFG_BOOL, exp_manager.create_tensorboard_logger, "true", 0,
      "write TensorBoard event files"),
    K("exp_manager.create_checkpoint_callback", MT_CFG_BOOL, exp_manager.create_checkpoint_callback, "true", 0,
      "write checkpoints and the final .nemo"),
    K("exp_manager.checkpoint_callback_params.monitor", MT_CFG_STR, exp_manager.checkpoint_callback_params.monitor,
      "val_loss", 0, "metric that ranks checkpoints"),
    K("exp_manager.checkpoint_callback_params.mode", MT_CFG_STR, exp_manager.checkpoint_callback_params.mode, "min", 0,
      "min | max"),
    K("exp_manager.checkpoint_callback_params.save_top_k", MT_CFG_INT,
      exp_manager.checkpoint_callback_params.save_top_k, "3", 0, "keep the k best checkpoints (-1 = all)"),
    K("exp_manager.checkpoint_callback_params.save_last", MT_CFG_BOOL, exp_manager.checkpoint_callback_params.save_last,
      "true", 0, "keep a -last.ckpt for resuming"),
    K("exp_manager.checkpoint_callback_params.save_weights_only", MT_CFG_BOOL,
      exp_manager.checkpoint_callback_params.save_weights_only, "false", 0, "accepted; checkpoints are always complete"),
    K("exp_manager.checkpoint_callback_params.period", MT_CFG_INT, exp_manager.checkpoint_callback_params.period, "1",
      0, "accepted, ignored (checkpoints follow validation)"),
    K("exp_manager.checkpoint_callback_params.always_save_nemo", MT_CFG_BOOL,
      exp_manager.checkpoint_callback_params.always_save_nemo, "false", 0,
      "write the .nemo at every checkpoint save (with save_best_model: whenever a new best is saved)"),
    K("exp_manager.checkpoint_callback_params.save_best_model", MT_CFG_BOOL,
      exp_manager.checkpoint_callback_params.save_best_model, "false", 0,
      "the final .nemo holds the best checkpoint's weights instead of the last"),
    K("exp_manager.checkpoint_callback_params.filename", MT_CFG_STR, exp_manager.checkpoint_callback_params.filename,
      "null", 1, "checkpoint name template, Lightning's ('{val_loss:.2f}-{epoch}' gives val_loss=0.35-epoch=2); "
      "null = <name>--{<monitor>:.4f}-{epoch}; the last one adds -last"),
    K("exp_manager.checkpoint_callback_params.prefix", MT_CFG_STR, exp_manager.checkpoint_callback_params.prefix,
      "null", 1, "the .nemo's name in the checkpoint folder is prefix + postfix (null = exp_manager.name)"),
    K("exp_manager.checkpoint_callback_params.postfix", MT_CFG_STR, exp_manager.checkpoint_callback_params.postfix,
      ".nemo", 0, "see prefix"),
    ANY("exp_manager.checkpoint_callback_params.verbose", "accepted, ignored (every save is logged)"),
    ANY("exp_manager.checkpoint_callback_params.every_n_val_epochs", "accepted, ignored (checkpoints follow validation)"),
    ANY("exp_manager.checkpoint_callback_params.filepath", "accepted, ignored (deprecated by NeMo: use dirpath and filename)"),
    K("exp_manager.checkpoint_callback_params.dirpath", MT_CFG_STR, exp_manager.checkpoint_callback_params.dirpath,
      "null", 1, "checkpoint folder (null = log_dir/checkpoints)"),
    ANY("exp_manager.files_to_copy", "accepted, ignored"),
    ANY("exp_manager.summary_writer_kwargs", "accepted, ignored"),
    ANY("exp_manager.create_wandb_logger", "accepted, ignored"),
    ANY("exp_manager.wandb_logger_kwargs", "accepted, ignored"),
    // model
    K("model.nemo_path", MT_CFG_STR, model.nemo_path, "null", 1,
      "where to write the final .nemo (null = log_dir/checkpoints/<name>.nemo)"),
    K("model.task_name", MT_CFG_STR, model.task_name, "null", 1,
      "GLUE task: cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli"),
    K("model.output_dir", MT_CFG_STR, model.output_dir, "null", 1,
      "QA: folder for test's prediction files (default: beside the .nemo); ignored by other tasks"),
    ANY("model.label_ids", "accepted, ignored (NeMo records the {label: id} map here; the label_ids.csv member is read)"),
    K("model.target", MT_CFG_STR, model.target, "null", 1, "NeMo model class (written into .nemo files)"),
    K("model.tensor_model_parallel_size", MT_CFG_INT, model.tensor_model_parallel_size, "1", 0,
      "tensor-parallel size: run under mpirun -np N, N a multiple of it (the rest is data parallel)"),
    // NeMo's Megatron activation checkpointing keys (megatron_bert_config.yaml)
    K("model.activations_checkpoint_granularity", MT_CFG_STR, model.activations_checkpoint_granularity, "null", 1,
      "null or full: whole layers as activations_checkpoint_method says | selective: keep every layer but "
      "recompute its attention probabilities, GELU and (pre-LN) LayerNorm outputs in backward"),
    K("model.activations_checkpoint_method", MT_CFG_STR, model.activations_checkpoint_method, "null", 1,
      "null (off) | uniform: every layer keeps only its input and backward runs its forward again | block: "
      "the first activations_checkpoint_num_layers layers only; gradients are unchanged, bit for bit"),
    K("model.activations_checkpoint_num_layers", MT_CFG_INT, model.activations_checkpoint_num_layers, "1", 1,
      "block: how many layers; uniform: layers per chunk (megatune keeps each layer's input: the same "
      "recomputation, a little more memory than a chunk's one input)"),
    K("model.activations_checkpoint_fc1", MT_CFG_BOOL, model.activations_checkpoint_fc1, "false", 0,
      "megatune's, with activations_checkpoint_granularity=selective: FC1's outputs are recomputed in backward "
      "too (one more FC1 product per layer and step, about 11% more arithmetic, for 4 of the 10 hidden-wide "
      "values per token a pre-LN layer keeps under selective); gradients are unchanged, bit for bit"),
    K("model.activations_checkpoint_attn_out", MT_CFG_BOOL, model.activations_checkpoint_attn_out, "false", 0,
      "megatune's, with activations_checkpoint_fc1=true: each pre-LN layer's residual stream after attention is "
      "recomputed in backward too (the attention output product runs again: about 2.5% more arithmetic at 345M, "
      "for 1 more of those 10 values per token; post-LN keeps it); gradients are unchanged, bit for bit"),
    ANY("model.infer_samples", "accepted, ignored"),
    ANY("model.supported_tasks", "accepted, ignored"),
    ANY("supported_tasks", "accepted, ignored (NeMo's GLUE config anchor)"),
    K("model.class_labels.class_labels_file", MT_CFG_STR, model.class_labels.class_labels_file, "null", 1,
      "label map (label_ids.csv, one label per line)"),
    K("model.dataset.num_classes", MT_CFG_INT, model.dataset.num_classes, "-1", 1,
      "text classification: number of classes (labels 0..N-1)"),
    K("model.dataset.do_lower_case", MT_CFG_BOOL, model.dataset.do_lower_case, "false", 0, "accepted (QA answer text only)"),
    K("model.dataset.max_seq_length", MT_CFG_INT, model.dataset.max_seq_length, "128", 0, "tokens per example"),
    K("model.dataset.class_balancing", MT_CFG_STR, model.dataset.class_balancing, "null", 1, "null | weighted_loss"),
    K("model.dataset.use_cache", MT_CFG_BOOL, model.dataset.use_cache, "false", 0, "accepted, ignored"),
    K("model.dataset.data_dir", MT_CFG_STR, model.dataset.data_dir, "null", 1,
      "token classification / GLUE / QA: the data folder"),
    K("model.dataset.pad_label", MT_CFG_STR, model.dataset.pad_label, "O", 0, "token classification: label of padding"),
    K("model.dataset.ignore_extra_tokens", MT_CFG_BOOL, model.dataset.ignore_extra_tokens, "false", 0,
      "token classification: no loss on non-first word pieces"),
    K("model.dataset.ignore_start_end", MT_CFG_BOOL, model.dataset.ignore_start_end, "false", 0,
      "token classification: no loss on [CLS]/[SEP]"),
    K("model.dataset.num_workers", MT_CFG_INT, model.dataset.num_workers, "2", 0, "accepted, ignored"),
    K("model.dataset.pin_memory", MT_CFG_BOOL, model.dataset.pin_memory, "false", 0, "accepted, ignored"),
    K("model.dataset.drop_last", MT_CFG_BOOL, model.dataset.drop_last, "false", 0, "accepted, ignored"),
    K("model.dataset.version_2_with_negative", MT_CFG_BOOL, model.dataset.version_2_with_negative, "false", 0,
      "QA: SQuAD v2.0"),
    K("model.dataset.doc_stride", MT_CFG_INT, model.dataset.doc_stride, "128", 0, "QA: window stride"),
    K("model.dataset.max_query_length", MT_CFG_INT, model.dataset.max_query_length, "64", 0, "QA: question tokens"),
    K("model.dataset.max_answer_length", MT_CFG_INT, model.dataset.max_answer_length, "30", 0, "QA: answer tokens"),
    K("model.dataset.null_score_diff_threshold", MT_CFG_FLOAT, model.dataset.null_score_diff_threshold, "0.0", 0,
      "QA v2: no-answer threshold"),
    K("model.dataset.n_best_size", MT_CFG_INT, model.dataset.n_best_size, "20", 0, "QA: candidate spans"),
    DS(train_ds, "32", "true"),
    K("model.train_ds.group_by_length", MT_CFG_BOOL, model.train_ds.group_by_length, "false", 0,
      "megatune: batches of similar lengths (Hugging Face's group_by_length): each epoch's order, cut into "
      "megabatches of 50 batches, sorted longest first; less padding, same examples (ignored for question "
      "answering, whose windows are all max_seq_length)"),
    DS(validation_ds, "32", "false"),
    DS(test_ds, "32", "false"),
    K("model.tokenizer.tokenizer_name", MT_CFG_STR, model.tokenizer.tokenizer_name,
      "${model.language_model.pretrained_model_name}", 1, "tokenizer preset name"),
    K("model.tokenizer.vocab_file", MT_CFG_STR, model.tokenizer.vocab_file, "null", 1,
      "WordPiece vocab (one token per line; null = the preset's)"),
    K("model.tokenizer.tokenizer_model", MT_CFG_STR, model.tokenizer.tokenizer_model, "null", 1,
      "sentencepiece model (unsupported; must be null)"),
    K("model.tokenizer.do_lower_case", MT_CFG_BOOL, model.tokenizer.do_lower_case, "true", 1,
      "megatune: lower-case when no preset decides (custom vocab)"),
    ANY("model.tokenizer.data_file", "accepted, ignored (sentencepiece training only)"),
    ANY("model.tokenizer.sample_size", "accepted, ignored (sentencepiece training only)"),
    ANY("model.tokenizer.vocab_size", "accepted, ignored (sentencepiece training only)"),
    ANY("model.tokenizer.special_tokens", "accepted, ignored (BERT's [CLS] [SEP] [PAD] [UNK] [MASK])"),
    K("model.language_model.pretrained_model_name", MT_CFG_STR, model.language_model.pretrained_model_name,
      "bert-base-uncased", 0, "preset: vocab, architecture and default checkpoint"),
    K("model.language_model.lm_checkpoint", MT_CFG_STR, model.language_model.lm_checkpoint, "null", 1,
      "Megatron checkpoint (file, or folder with mp_rank_XX/ for model parallel)"),
    K("model.language_model.config_file", MT_CFG_STR, model.language_model.config_file, "null", 1,
      "encoder config: Megatron's JSON or NeMo's YAML; when set it wins over the model.language_model.config "
      "block, as in NeMo (the log says which was used)"),
    K("model.language_model.config.hidden_size", MT_CFG_INT, model.language_model.config.hidden_size, "-1", 1,
      "encoder width"),
    K("model.language_model.config.num_attention_heads", MT_CFG_INT,
      model.language_model.config.num_attention_heads, "-1", 1, "attention heads"),
    K("model.language_model.config.num_layers", MT_CFG_INT, model.language_model.config.num_layers, "-1", 1,
      "transformer layers"),
    K("model.language_model.config.max_position_embeddings", MT_CFG_INT,
      model.language_model.config.max_position_embeddings, "-1", 1, "position table size"),
    K("model.language_model.config.ffn_hidden_size", MT_CFG_INT, model.language_model.config.ffn_hidden_size, "-1",
      1, "MLP width (null = 4*hidden_size)"),
    K("model.language_model.config.num_tokentypes", MT_CFG_INT, model.language_model.config.num_tokentypes, "2", 0,
      "token types"),
    K("model.language_model.config.make_vocab_size_divisible_by", MT_CFG_INT,
      model.language_model.config.make_vocab_size_divisible_by, "128", 0, "Megatron vocab padding"),
    K("model.language_model.config.vocab_size", MT_CFG_INT, model.language_model.config.vocab_size, "-1", 1,
      "accepted, ignored (the vocab file decides, as in NeMo)"),
    K("model.language_model.config.hidden_dropout", MT_CFG_FLOAT, model.language_model.config.hidden_dropout, "0.1",
      0, "dropout after attention/MLP and on embeddings (0 = off)"),
    K("model.language_model.config.attention_dropout", MT_CFG_FLOAT,
      model.language_model.config.attention_dropout, "0.1", 0, "dropout on attention probabilities (0 = off)"),
    K("model.language_model.config.layernorm_epsilon", MT_CFG_FLOAT,
      model.language_model.config.layernorm_epsilon, "-1", 1, "LayerNorm eps (null = 1e-5 Megatron, 1e-12 BERT)"),
    K("model.language_model.config.init_method_std", MT_CFG_FLOAT, model.language_model.config.init_method_std,
      "0.02", 0, "std of the initial weights"),
    K("model.language_model.config.arch", MT_CFG_STR, model.language_model.config.arch, "null", 1,
      "megatune: megatron (pre-LN) | bert (post-LN); null = from the preset"),
    K("model.language_model.config.gelu", MT_CFG_STR, model.language_model.config.gelu, "erf", 0,
      "megatune: erf | tanh | onnx"),
    K("model.head.num_fc_layers", MT_CFG_INT, model.head.num_fc_layers, "2", 0, "token classification head layers"),
    K("model.head.fc_dropout", MT_CFG_FLOAT, model.head.fc_dropout, "0.5", 0, "token classification head dropout"),
    K("model.head.activation", MT_CFG_STR, model.head.activation, "relu", 0, "relu | gelu | tanh"),
    K("model.head.use_transformer_init", MT_CFG_BOOL, model.head.use_transformer_init, "true", 0,
      "head weights ~N(0, 0.02)"),
    // ---- punctuation_capitalization (NeMo punctuation_capitalization_config.yaml) ----
    ANY("model.punct_label_ids", "accepted (NeMo fills it; megatune keeps the maps in the label files)"),
    ANY("model.capit_label_ids", "accepted (NeMo fills it; megatune keeps the maps in the label files)"),
    K("model.class_labels.punct_labels_file", MT_CFG_STR, model.joint.punct_labels_file, "punct_label_ids.csv", 1,
      "P&C: punctuation label map written next to the data (a .nemo member when restored)"),
    K("model.class_labels.capit_labels_file", MT_CFG_STR, model.joint.capit_labels_file, "capit_label_ids.csv", 1,
      "P&C: capitalisation label map"),
    K("model.punct_head.punct_num_fc_layers", MT_CFG_INT, model.joint.punct_head.num_fc_layers, "1", 0,
      "P&C: punctuation head layers"),
    K("model.punct_head.fc_dropout", MT_CFG_FLOAT, model.joint.punct_head.fc_dropout, "0.1", 0, "P&C: its dropout"),
    K("model.punct_head.activation", MT_CFG_STR, model.joint.punct_head.activation, "relu", 0, "relu | gelu | tanh"),
    K("model.punct_head.use_transformer_init", MT_CFG_BOOL, model.joint.punct_head.use_transformer_init, "true", 0,
      "head weights ~N(0, 0.02)"),
    K("model.capit_head.capit_num_fc_layers", MT_CFG_INT, model.joint.capit_head.num_fc_layers, "1", 0,
      "P&C: capitalisation head layers"),
    K("model.capit_head.fc_dropout", MT_CFG_FLOAT, model.joint.capit_head.fc_dropout, "0.1", 0, "P&C: its dropout"),
    K("model.capit_head.activation", MT_CFG_STR, model.joint.capit_head.activation, "relu", 0, "relu | gelu | tanh"),
    K("model.capit_head.use_transformer_init", MT_CFG_BOOL, model.joint.capit_head.use_transformer_init, "true", 0,
      "head weights ~N(0, 0.02)"),
    // ---- intent_slot_classification (NeMo intent_slot_classification_config.yaml) ----
    K("model.data_dir", MT_CFG_STR, model.joint.data_dir, "null", 1,
      "intent/slot: folder with dict.intents.csv, dict.slots.csv, <prefix>.tsv, <prefix>_slots.tsv"),
    K("model.class_labels.intent_labels_file", MT_CFG_STR, model.joint.intent_labels_file, "intent_labels.csv", 1,
      "intent/slot: intent map written next to the data (a .nemo member when restored)"),
    K("model.class_labels.slot_labels_file", MT_CFG_STR, model.joint.slot_labels_file, "slot_labels.csv", 1,
      "intent/slot: slot map"),
    K("model.class_balancing", MT_CFG_STR, model.joint.class_balancing, "null", 1, "intent/slot: null | weighted_loss"),
    K("model.intent_loss_weight", MT_CFG_FLOAT, model.joint.intent_loss_weight, "0.6", 0,
      "intent/slot: loss = w * intent loss + (1 - w) * slot loss"),
    K("model.pad_label", MT_CFG_INT, model.joint.pad_label, "-1", 0,
      "intent/slot: slot id of [CLS]/[SEP]/padding (-1 = the 'O' slot)"),
    K("model.ignore_extra_tokens", MT_CFG_BOOL, model.joint.ignore_extra_tokens, "false", 0,
      "intent/slot: no slot loss on a word's later pieces"),
    K("model.ignore_start_end", MT_CFG_BOOL, model.joint.ignore_start_end, "true", 0,
      "intent/slot: no slot loss on [CLS]/[SEP]"),
    K("model.train_ds.prefix", MT_CFG_STR, model.joint.prefix[0], "train", 0, "intent/slot: <prefix>.tsv"),
    K("model.validation_ds.prefix", MT_CFG_STR, model.joint.prefix[1], "test", 0, "intent/slot: <prefix>.tsv"),
    K("model.test_ds.prefix", MT_CFG_STR, model.joint.prefix[2], "test", 0, "intent/slot: <prefix>.tsv, tested after training (NeMo's script)"),
    K("model.language_model.max_seq_length", MT_CFG_INT, model.joint.max_seq_length, "50", 0,
      "intent/slot: tokens per example"),
    K("model.head.num_output_layers", MT_CFG_INT, model.joint.num_output_layers, "2", 0,
      "intent/slot: layers of both MLPs"),
    ANY("model.data_desc", "accepted (NeMo fills it; megatune keeps the maps in the label files)"),
    ANY("model.optim.args.name", "accepted, ignored"),
    K("model.optim.args.params.weight_decay", MT_CFG_FLOAT, model.joint.args_weight_decay, "0.0", 0,
      "NeMo's older spelling of model.optim.weight_decay"),
    ANY("model.optim.sched.args.name", "accepted, ignored"),
    K("model.optim.sched.args.params.warmup_steps", MT_CFG_INT, model.joint.args_warmup_steps, "null", 1,
      "NeMo's older spelling of model.optim.sched.warmup_steps"),
    K("model.optim.sched.args.params.warmup_ratio", MT_CFG_FLOAT, model.joint.args_warmup_ratio, "0.1", 0,
      "NeMo's older spelling of model.optim.sched.warmup_ratio"),
    ANY("model.optim.sched.args.params.last_epoch", "accepted, ignored"),
    // ----
    K("model.classifier_head.num_output_layers", MT_CFG_INT, model.classifier_head.num_output_layers, "2", 0,
      "text classification head layers"),
    K("model.classifier_head.fc_dropout", MT_CFG_FLOAT, model.classifier_head.fc_dropout, "0.1", 0,
      "text classification head dropout"),
    K("model.token_classifier.num_layers", MT_CFG_INT, model.token_classifier.num_layers, "1", 0, "QA head layers"),
    K("model.token_classifier.dropout", MT_CFG_FLOAT, model.token_classifier.dropout, "0.0", 0, "QA head dropout"),
    K("model.token_classifier.num_classes", MT_CFG_INT, model.token_classifier.num_classes, "2", 0, "QA: 2"),
    K("model.token_classifier.activation", MT_CFG_STR, model.token_classifier.activation, "relu", 0, "QA head"),
    K("model.token_classifier.log_softmax", MT_CFG_BOOL, model.token_classifier.log_softmax, "false", 0, "QA head"),
    K("model.token_classifier.use_transformer_init", MT_CFG_BOOL, model.token_classifier.use_transformer_init, "true",
      0, "QA head"),
    K("model.optim.name", MT_CFG_STR, model.optim.name, "adam", 0, "adam (L2 decay) | adamw (decoupled)"),
    K("model.optim.lr", MT_CFG_FLOAT, model.optim.lr, "5e-5", 0, "peak learning rate"),
    K("model.optim.betas", MT_CFG_FLOAT_LIST, model.optim.betas, "[0.9, 0.999]", 0, "Adam betas"),
    K("model.optim.eps", MT_CFG_FLOAT, model.optim.eps, "1e-8", 0, "Adam epsilon"),
    K("model.optim.weight_decay", MT_CFG_FLOAT, model.optim.weight_decay, "0.0", 0, "weight decay"),
    K("model.optim.momentum", MT_CFG_FLOAT, model.optim.momentum, "0.0", 0, "accepted, ignored"),
    K("model.optim.amsgrad", MT_CFG_BOOL, model.optim.amsgrad, "false", 0, "accepted; must be false"),
    K("model.optim.decay_all", MT_CFG_BOOL, model.optim.decay_all, "true", 0,
      "megatune: true = NeMo (decay every parameter), false = Megatron (no decay on biases, LayerNorm)"),
    K("model.optim.step_in_backward", MT_CFG_STR, model.optim.step_in_backward, "auto", 1,
      "megatune: true = update each layer's weights as soon as backward has its gradients, so no gradient "
      "span is kept and no bf16 copy of the weights between products (4 bytes per parameter less memory, 6 "
      "with trainer.precision=bf16; the same weights bit for bit, data-parallel replicas averaged span by "
      "span); needs trainer.gradient_clip_val=0 and accumulate_grad_batches=1. auto (or null) = true where "
      "those hold (NeMo's stock configs), else false"),
    K("model.optim.sched.name", MT_CFG_STR, model.optim.sched.name, "WarmupAnnealing", 1,
      "WarmupAnnealing | SquareRootAnnealing | CosineAnnealing | ... (null = constant)"),
    K("model.optim.sched.warmup_steps", MT_CFG_INT, model.optim.sched.warmup_steps, "null", 1,
      "warmup steps (null = warmup_ratio * max_steps)"),
    K("model.optim.sched.warmup_ratio", MT_CFG_FLOAT, model.optim.sched.warmup_ratio, "0.1", 1,
      "warmup as a fraction of max_steps"),
    K("model.optim.sched.hold_steps", MT_CFG_INT, model.optim.sched.hold_steps, "null", 1, "accepted, ignored"),
    K("model.optim.sched.min_lr", MT_CFG_FLOAT, model.optim.sched.min_lr, "0.0", 0, "floor of the schedule"),
    K("model.optim.sched.last_epoch", MT_CFG_INT, model.optim.sched.last_epoch, "-1", 0, "accepted, ignored"),
    K("model.optim.sched.monitor", MT_CFG_STR, model.optim.sched.monitor, "val_loss", 0, "accepted, ignored"),
    K("model.optim.sched.reduce_on_plateau", MT_CFG_BOOL, model.optim.sched.reduce_on_plateau, "false", 0,
      "accepted; must be false"),
    ANY("model.optim.sched.max_steps", "accepted, ignored (derived from trainer)"),
    ANY("model.optim.sched.t_max_epochs", "accepted, ignored"),
    ANY("model.optim.sched.t_accumulate_grad_batches", "accepted, ignored"),
    ANY("model.optim.sched.t_limit_train_batches", "accepted, ignored"),
    ANY("model.optim.sched.t_num_workers", "accepted, ignored"),
    ANY("model.optim.sched.iters_per_batch", "accepted, ignored"),
    ANY("model.optim.sched.interval", "accepted, ignored"),
    ANY("model.optim.sched.frequency", "accepted, ignored"),
    ANY("hydra", "accepted, ignored"),
};

#define NKEYS (sizeof g_schema / sizeof g_schema[0])

const mt_cfg_key *mt_config_schema(size_t *n) {
    *n = NKEYS;
    return g_schema;
}

// Key lookups are the inner loop of every YAML load and override (a .nemo restore spent 15% of its
// time in a linear strcmp scan): an open-addressing table over the schema, built once.
#define KEY_SLOTS 1024
static short g_key_slot[KEY_SLOTS]; // schema index + 1, 0 = empty
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static uint32_t key_hash(const char *s) {
    uint32_t h = 2166136261u; // FNV-1a
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void key_table_build(void) {
    _Static_assert(NKEYS < KEY_SLOTS / 2, "KEY_SLOTS too small for the schema");
    for (size_t i = 0; i < NKEYS; i++) {
        uint32_t h = key_hash(g_schema[i].path) & (KEY_SLOTS - 1);
        while (g_key_slot[h]) h = (h + 1) & (KEY_SLOTS - 1);
        g_key_slot[h] = (short)(i + 1);
    }
}

static int key_lookup(const char *path) {
    pthread_once(&g_key_once, key_table_build);
    // the first of equal paths wins, as the linear scan did: entries were inserted in schema order
    for (uint32_t h = key_hash(path) & (KEY_SLOTS - 1); g_key_slot[h]; h = (h + 1) & (KEY_SLOTS - 1))
        if (!strcmp(g_schema[g_key_slot[h] - 1].path, path)) return g_key_slot[h] - 1;
    return -1;
}

int mt_config_key_index(const char *path) {
    int k = key_lookup(path);
    if (k >= 0) return k;
    // NeMo's GLUE configs before v1.0 named the split's file `file_name` (v1.0: `ds_item`)
    static const char *const alias[][2] = {{"model.train_ds.file_name", "model.train_ds.ds_item"},
                                           {"model.validation_ds.file_name", "model.validation_ds.ds_item"},
                                           {"model.test_ds.file_name", "model.test_ds.ds_item"},
                                           // some Megatron-era configs put it under trainer
                                           {"trainer.tensor_model_parallel_size", "model.tensor_model_parallel_size"},
                                           // Lightning 1.0's name (NeMo's rc configs)
                                           {"trainer.row_log_interval", "trainer.log_every_n_steps"}};
    for (size_t a = 0; a < sizeof alias / sizeof alias[0]; a++)
        if (!strcmp(path, alias[a][0])) return mt_config_key_index(alias[a][1]);
    return -1;
}

// Index of the ANY key that `path` is (or lies under), -1 otherwise.
static int any_prefix(const char *path) {
    for (size_t i = 0; i < NKEYS; i++) {
        if (g_schema[i].type != MT_CFG_ANY) continue;
        size_t l = strlen(g_schema[i].path);
        if (!strncmp(path, g_schema[i].path, l) && (path[l] == 0 || path[l] == '.')) return (int)i;
    }
    return -1;
}

// Is `path` a section (a strict prefix of some key)?
static int is_section(const char *path) {
    size_t l = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (!strncmp(g_schema[i].path, path, l) && g_schema[i].path[l] == '.') return 1;
    return 0;
}

// The fuzz build's edge counters would take most of a config fuzz input's time in this inner
// loop, whose branches tell the fuzzer nothing (AddressSanitizer still checks it).
#if defined(__clang__) && __clang_major__ >= 13
#define CFG_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define CFG_NO_COVERAGE
#endif

// strncmp(a, b, n) == 0 for two of the schema's own strings (a dump's tree walk, a key's tasks):
// nothing there depends on the input, and libFuzzer's strncmp hook on each such comparison took a
// fifth of a config fuzz input's time.
CFG_NO_COVERAGE static int schema_prefix_eq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) return 0;
        if (!a[i]) return 1;
    }
    return 1;
}

// Levenshtein distance, or any value >= `limit` once it is certain to reach `limit` (a row's minimum
// never decreases): callers keep only distances below the best so far, so the rest need not be exact.
CFG_NO_COVERAGE static size_t edit_distance(const char *a, const char *b, size_t limit) {
    size_t la = strlen(a), lb = strlen(b);
    size_t row[256];
    if (lb >= 255) lb = 255;
    if ((la > lb ? la - lb : lb - la) >= limit) return limit;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0], lo;
        lo = row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            if (row[j] < lo) lo = row[j];
            prev = cur;
        }
        if (lo >= limit) return limit;
    }
    return row[lb];
}

const char *mt_config_suggest(const char *path) {
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    // The same key name under another section ("model.train_ds.max_seq_length") is what was meant.
    const char *leaf = strrchr(path, '.');
    leaf = leaf ? leaf + 1 : path;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *kl = strrchr(g_schema[i].path, '.');
        kl = kl ? kl + 1 : g_schema[i].path;
        if (strcmp(g_schema[i].path, path) && !strcmp(kl, leaf) && g_schema[i].type != MT_CFG_ANY) {
            size_t d = edit_distance(path, g_schema[i].path, bestd);
            if (d < bestd) { bestd = d; best = g_schema[i].path; }
        }
    }
    if (best) return best;
    // Compare with keys and with section names, so "model.optimm" suggests "model.optim".
    static char sections[NKEYS * 4][128];
    size_t ns = 0;
    const char *prev = ""; // the last key whose sections were measured
    for (size_t i = 0; i < NKEYS; i++) {
        // A truncated name ("model.train_ds.file") is nearest to the key it begins (distance 1).
        size_t pl = strlen(path), d;
        if (!strncmp(g_schema[i].path, path, pl)) d = g_schema[i].path[pl] ? 1 : 0;
        else d = edit_distance(path, g_schema[i].path, bestd);
        if (d == 0) continue; // never the key the user wrote
        if (d < bestd) { bestd = d; best = g_schema[i].path; }
        const char *p = g_schema[i].path;
        for (const char *dot = strchr(p, '.'); dot && ns < NKEYS * 4; dot = strchr(dot + 1, '.')) {
            size_t l = (size_t)(dot - p);
            if (l >= sizeof sections[0]) break;
            // keys of a section are mostly adjacent in the schema: measured once per run of them
            if (!strncmp(prev, p, l + 1)) continue;
            memcpy(sections[ns], p, l);
            sections[ns][l] = 0;
            size_t ds = edit_distance(path, sections[ns], bestd);
            if (ds > 0 && ds < bestd) { bestd = ds; best = sections[ns]; ns++; }
        }
        prev = p;
    }
    return best;
}

// ---------------------------------------------------------------------------------------------
// Values

static void *field_ptr(mt_train_config *c, const mt_cfg_key *k) { return (char *)c + k->offset; }
static const void *field_cptr(const mt_train_config *c, const mt_cfg_key *k) { return (const char *)c + k->offset; }

void *mt_config_field(mt_train_config *c, const char *path) {
    int i = mt_config_key_index(path);
    if (i < 0 || g_schema[i].type == MT_CFG_ANY || g_schema[i].type == MT_CFG_NOOP) return NULL;
    return field_ptr(c, &g_schema[i]);
}

static const char *type_name(mt_cfg_type t) {
    switch (t) {
    case MT_CFG_INT: return "an integer";
    case MT_CFG_FLOAT: return "a number";
    case MT_CFG_BOOL: return "true or false";
    case MT_CFG_STR: return "a string";
    case MT_CFG_NUM: return "an integer or a float";
    case MT_CFG_FLOAT_LIST: return "a list of numbers";
    case MT_CFG_ANY:
    case MT_CFG_NOOP: return "anything";
    }
    return "?";
}

static int is_null_text(const char *s) {
    return !*s || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL") || !strcmp(s, "~");
}

static int parse_int(const char *s, int64_t *out) {
    char *end;
    if (!*s) return 0;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double *out) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return 0;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    // YAML numbers only: reject hex floats and "inf"/"nan" spellings strtod would take.
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return 0;
    *out = v;
    return 1;
}

static int parse_bool(const char *s, int *out) {
    static const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *f[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i])) { *out = 1; return 1; }
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(s, f[i])) { *out = 0; return 1; }
    return 0;
}

// Does `s` hold an OmegaConf interpolation "${...}" (or an escaped "\${", which resolution turns
// into a literal "${")?
static int has_interp(const char *s) { return strstr(s, "${") != NULL; }

// A scalar for key `k`. `plain` says the YAML scalar was unquoted (only plain scalars can be null,
// numbers or booleans). A value with ${...} is kept as text until mt_config_finish resolves it,
// when every override is in (`interp` 0: the text is already resolved). Returns MT_OK or an error
// naming `where`.
static mt_status set_scalar_ex(mt_train_config *c, int idx, const char *text, int plain, const char *where,
                               int interp) {
    const mt_cfg_key *k = &g_schema[idx];
    void *f = field_ptr(c, k);
    int null = plain && is_null_text(text);
    c->missing[idx] = 0;
    free(c->raw[idx]); // a literal replaces an interpolation
    c->raw[idx] = NULL;
    if (interp && k->type != MT_CFG_ANY && has_interp(text)) {
        // the syntax is checked now, at the line that wrote it; the references once all are known
        for (const char *p = strstr(text, "${"); p; p = strstr(p + 2, "${"))
            if (!strchr(p, '}'))
                return mt_fail(MT_ERR_INVALID, "%s: %s: '${' without its closing '}' in '%s'", where, k->path, text);
        if (!(c->raw[idx] = mt_strdup(text))) return MT_ERR_NOMEM;
        return MT_OK;
    }
    if (k->type == MT_CFG_NOOP) {
        free(c->text[idx]);
        c->text[idx] = mt_strdup(text);
        return c->text[idx] ? MT_OK : MT_ERR_NOMEM;
    }
    if (plain && !strcmp(text, "???")) {
        c->missing[idx] = 1;
        return MT_OK;
    }
    if (null && !k->nullable && k->type != MT_CFG_ANY)
        return mt_fail(MT_ERR_INVALID, "%s: %s cannot be null: expected %s (default %s)", where, k->path,
                       type_name(k->type), k->def);
    switch (k->type) {
    case MT_CFG_ANY:
    case MT_CFG_NOOP: return MT_OK;
    case MT_CFG_INT: {
        int64_t v;
        if (null) { *(int64_t *)f = -1; return MT_OK; }
        if (!parse_int(text, &v))
            return mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got '%s'", where, k->path, type_name(k->type), text);
        *(int64_t *)f = v;
        return MT_OK;
    }
    case MT_CFG_FLOAT: {
        double v;
        if (null) { *(double *)f = -1; return MT_OK; }
        if (!parse_double(text, &v))
            return mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got '%s'", where, k->path, type_name(k->type), text);
        *(double *)f = v;
        return MT_OK;
    }
    case MT_CFG_NUM: {
        mt_cfg_num *n = f;
        int64_t iv;
        double dv;
        if (parse_int(text, &iv)) { n->value = (double)iv; n->is_int = 1; return MT_OK; }
        if (parse_double(text, &dv)) { n->value = dv; n->is_int = 0; return MT_OK; }
        return mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got '%s'", where, k->path, type_name(k->type), text);
    }
    case MT_CFG_BOOL: {
        int v;
        if (null) { // a nullable switch: null = "not decided here" (the default; callers leave it unset)
            if (!parse_bool(k->def, &v)) v = 0;
            *(int *)f = v;
            return MT_OK;
        }
        if (!parse_bool(text, &v))
            return mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got '%s'", where, k->path, type_name(k->type), text);
        *(int *)f = v;
        return MT_OK;
    }
    case MT_CFG_STR: {
        char **s = f;
        char *v = null ? NULL : mt_strdup(text);
        if (!null && !v) return MT_ERR_NOMEM;
        free(*s);
        *s = v;
        return MT_OK;
    }
    case MT_CFG_FLOAT_LIST:
        return mt_fail(MT_ERR_INVALID, "%s: %s expects %s like [0.9, 0.999], got '%s'", where, k->path,
                       type_name(k->type), text);
    }
    return MT_OK;
}

static mt_status set_scalar(mt_train_config *c, int idx, const char *text, int plain, const char *where) {
    return set_scalar_ex(c, idx, text, plain, where, 1);
}

// A NOOP key given a list or a mapping: kept as flow YAML of its scalars ("[0, 1]"), for the log.
static mt_status set_noop_node(mt_train_config *c, int idx, yaml_document_t *doc, yaml_node_t *node) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return MT_ERR_NOMEM;
    if (node->type == YAML_SEQUENCE_NODE) {
        fputc('[', m);
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            fprintf(m, "%s%s", it > node->data.sequence.items.start ? ", " : "",
                    e && e->type == YAML_SCALAR_NODE ? (const char *)e->data.scalar.value : "...");
        }
        fputc(']', m);
    } else {
        fputs("{...}", m);
    }
    fclose(m);
    free(c->raw[idx]);
    c->raw[idx] = NULL;
    free(c->text[idx]);
    c->text[idx] = buf;
    c->missing[idx] = 0;
    return MT_OK;
}

static void set_where(mt_train_config *c, int idx, const char *where) {
    free(c->where[idx]);
    c->where[idx] = mt_strdup(where);
}

// ---------------------------------------------------------------------------------------------
// YAML

typedef struct {
    mt_train_config *c;
    yaml_document_t *doc;
    const char *name;
    int lenient;
    int depth;
    long visits; // nodes walked, aliases counted each time: caps "billion laughs" expansions
} walk_ctx;

static mt_status unknown_key(walk_ctx *w, const char *path, const char *where) {
    if (w->lenient) {
        mt_warn("%s: ignoring unknown key %s", where, path);
        return MT_OK;
    }
    const char *s = mt_config_suggest(path);
    return mt_fail(MT_ERR_INVALID, "%s: unknown key '%s'%s%s%s (see 'megatune train --help' for every key)", where,
                   path, s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
}

static mt_status walk(walk_ctx *w, yaml_node_t *node, const char *path);

// A nullable bool set to null keeps its default and stays "not set" (NeMo's do_lower_case: null).
static int null_switch(int idx, const char *text, int plain) {
    return idx >= 0 && g_schema[idx].type == MT_CFG_BOOL && g_schema[idx].nullable && text && plain && is_null_text(text);
}

static mt_status walk_list(walk_ctx *w, int idx, yaml_node_t *node, const char *where) {
    const mt_cfg_key *k = &g_schema[idx];
    if (k->type != MT_CFG_FLOAT_LIST)
        return mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got a list", where, k->path, type_name(k->type));
    mt_cfg_list *l = field_ptr(w->c, k);
    mt_cfg_list tmp = {{0}, 0};
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(w->doc, *it);
        double v;
        if (!e || e->type != YAML_SCALAR_NODE || !parse_double((const char *)e->data.scalar.value, &v))
            return mt_fail(MT_ERR_INVALID, "%s: %s expects a list of numbers", where, k->path);
        if (tmp.n >= MT_CFG_LIST_MAX)
            return mt_fail(MT_ERR_INVALID, "%s: %s has more than %d elements", where, k->path, MT_CFG_LIST_MAX);
        tmp.v[tmp.n++] = v;
    }
    *l = tmp;
    w->c->missing[idx] = 0;
    free(w->c->raw[idx]);
    w->c->raw[idx] = NULL;
    return MT_OK;
}

typedef struct {
    const char *key;
    size_t pair; // its place in the mapping
} key_at;

static int key_at_cmp(const void *a, const void *b) {
    const key_at *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->pair > y->pair) - (x->pair < y->pair);
}

// The first pair of a mapping whose scalar key an earlier pair already has (*at; SIZE_MAX: none) and
// that earlier pair (*first). Sorted, not pair by pair: a hostile mapping of 100000 keys would
// otherwise cost 5e9 comparisons before any other limit applied.
static mt_status first_duplicate(yaml_document_t *doc, yaml_node_t *map, size_t *at, size_t *first) {
    *at = SIZE_MAX, *first = 0;
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start), m = 0;
    if (n < 2) return MT_OK;
    key_at *k = malloc(n * sizeof *k);
    if (!k) return MT_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *kn = yaml_document_get_node(doc, map->data.mapping.pairs.start[i].key);
        if (kn && kn->type == YAML_SCALAR_NODE) k[m++] = (key_at){(const char *)kn->data.scalar.value, i};
    }
    qsort(k, m, sizeof *k, key_at_cmp);
    for (size_t j = 1; j < m; j++) // a group's second pair is where reading it in order stops
        if (!strcmp(k[j].key, k[j - 1].key) && (j < 2 || strcmp(k[j - 1].key, k[j - 2].key)) && k[j].pair < *at)
            *at = k[j].pair, *first = k[j - 1].pair;
    free(k);
    return MT_OK;
}

static mt_status walk(walk_ctx *w, yaml_node_t *node, const char *path) {
    char where[1200];
    snprintf(where, sizeof where, "%s:%zu", w->name, node->start_mark.line + 1);
    if (++w->visits > 100000) {
        w->depth++;
        mt_status st = mt_fail(MT_ERR_FORMAT, "%s: more than 100000 values (aliases expanding?); refusing the config",
                               where);
        w->depth--;
        return st;
    }
    if (++w->depth > 32) {
        w->depth--;
        return mt_fail(MT_ERR_FORMAT, "%s: nesting deeper than 32 levels", where);
    }
    mt_status st = MT_OK;
    int idx = *path ? mt_config_key_index(path) : -1;
    int any = *path ? any_prefix(path) : -1;
    if (any >= 0) goto done; // NeMo keys megatune ignores, whatever their shape
    if (idx >= 0 && g_schema[idx].type == MT_CFG_NOOP && node->type != YAML_SCALAR_NODE) {
        st = set_noop_node(w->c, idx, w->doc, node);
        if (st == MT_OK) {
            w->c->set[idx] = 1;
            set_where(w->c, idx, where);
        }
        goto done;
    }
    if (node->type == YAML_MAPPING_NODE) {
        if (*path && idx >= 0) {
            st = mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got a mapping", where, path, type_name(g_schema[idx].type));
            goto done;
        }
        if (*path && !is_section(path)) {
            st = unknown_key(w, path, where);
            goto done;
        }
        size_t dup_at, dup_first;
        st = first_duplicate(w->doc, node, &dup_at, &dup_first);
        if (st != MT_OK) goto done;
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
            if (!kn || !vn) continue;
            if (kn->type != YAML_SCALAR_NODE) {
                snprintf(where, sizeof where, "%s:%zu", w->name, kn->start_mark.line + 1);
                st = mt_fail(MT_ERR_FORMAT, "%s: a key must be a plain name", where);
                goto done;
            }
            const char *key = (const char *)kn->data.scalar.value;
            char sub[1024];
            if (snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key) >= (int)sizeof sub) {
                st = mt_fail(MT_ERR_FORMAT, "%s: key path too long", where);
                goto done;
            }
            if (!*key || strchr(key, '.')) {
                snprintf(where, sizeof where, "%s:%zu", w->name, kn->start_mark.line + 1);
                st = mt_fail(MT_ERR_FORMAT, "%s: key '%s' is not a plain name (write nested mappings)", where, key);
                goto done;
            }
            // libyaml keeps both pairs of a repeated key; silently taking the last one hides an edit
            // mistake (OmegaConf refuses duplicates too)
            if ((size_t)(p - node->data.mapping.pairs.start) == dup_at) {
                yaml_node_t *qk = yaml_document_get_node(w->doc, node->data.mapping.pairs.start[dup_first].key);
                snprintf(where, sizeof where, "%s:%zu", w->name, kn->start_mark.line + 1);
                st = mt_fail(MT_ERR_FORMAT, "%s: duplicate key '%s' (first set on line %zu); keep one of them", where,
                             sub, qk ? qk->start_mark.line + 1 : 0);
                goto done;
            }
            st = walk(w, vn, sub);
            if (st != MT_OK) goto done;
        }
        goto done;
    }
    if (!*path) {
        st = mt_fail(MT_ERR_FORMAT, "%s: the config must be a mapping (key: value lines)", where);
        goto done;
    }
    if (idx < 0) {
        // `config: null` for a section (NeMo's model.language_model.config: null).
        if (node->type == YAML_SCALAR_NODE && is_section(path) && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            is_null_text((const char *)node->data.scalar.value))
            goto done;
        if (is_section(path) && !w->lenient) {
            st = mt_fail(MT_ERR_INVALID, "%s: %s is a section: give its keys under it (%s:\n  key: value) or null, "
                         "not a %s", where, path, path, node->type == YAML_SEQUENCE_NODE ? "list" : "single value");
            goto done;
        }
        st = unknown_key(w, path, where);
        goto done;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        st = walk_list(w, idx, node, where);
    } else {
        st = set_scalar(w->c, idx, (const char *)node->data.scalar.value,
                        node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, where);
    }
    if (st == MT_OK && !null_switch(idx, node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL,
                                    node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
        w->c->set[idx] = 1;
        set_where(w->c, idx, where);
    }
done:
    w->depth--;
    return st;
}

static mt_status yaml_error(yaml_parser_t *p, const char *name) {
    return mt_fail(MT_ERR_FORMAT, "%s:%zu:%zu: malformed YAML: %s%s%s", name, p->problem_mark.line + 1,
                   p->problem_mark.column + 1, p->problem ? p->problem : "parse error",
                   p->context ? " " : "", p->context ? p->context : "");
}

mt_status mt_config_load_yaml_text(mt_train_config *c, const char *text, size_t len, const char *name,
                                   const char *prefix, int lenient) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return mt_fail(MT_ERR_NOMEM, "%s: cannot start the YAML parser", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        mt_status st = yaml_error(&parser, name);
        yaml_parser_delete(&parser);
        return st;
    }
    mt_status st = MT_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        walk_ctx w = {c, &doc, name, lenient, 0, 0};
        char pre[256];
        snprintf(pre, sizeof pre, "%s", prefix ? prefix : "");
        size_t pl = strlen(pre);
        if (pl && pre[pl - 1] == '.') pre[pl - 1] = 0;
        if (root->type == YAML_SCALAR_NODE && is_null_text((const char *)root->data.scalar.value)) {
            // an empty file: nothing set
        } else {
            st = walk(&w, root, pre);
        }
    }
    yaml_document_delete(&doc);
    // A second document in the stream is not a config we can honour.
    if (st == MT_OK) {
        yaml_document_t doc2;
        if (!yaml_parser_load(&parser, &doc2)) {
            st = yaml_error(&parser, name);
        } else {
            if (yaml_document_get_root_node(&doc2))
                st = mt_fail(MT_ERR_FORMAT, "%s: more than one YAML document ('---'); keep one", name);
            yaml_document_delete(&doc2);
        }
    }
    yaml_parser_delete(&parser);
    return st;
}

mt_status mt_config_load_yaml(mt_train_config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "%s: cannot open the config: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return mt_fail(MT_ERR_IO, "%s: is a folder; give the YAML config file (e.g. examples/quickstart_config.yaml)",
                       path);
    }
    char *buf;
    size_t len;
    mt_status rs = mt_read_all(f, (size_t)64 << 20, &buf, &len);
    fclose(f);
    if (rs == MT_ERR_FORMAT) return mt_fail(MT_ERR_FORMAT, "%s: config larger than 64 MiB", path);
    if (rs == MT_ERR_IO) return mt_fail(MT_ERR_IO, "%s: read error", path);
    if (rs != MT_OK) return rs;
    mt_status st = mt_config_load_yaml_text(c, buf, len, path, "", 0);
    free(buf);
    return st;
}

// Parses `value` as a one-line YAML value and sets `path`.
// Text that YAML reads as a plain scalar equal to itself: ASCII letters, digits and "_./+-" only,
// starting with a letter, digit, '_' or '/', or with '-', '+' or '.' before a digit (so never "-", "---",
// "...", an indicator, a comment, a quote, a tag, an anchor or a flow collection). Anything else
// goes through libyaml. tests/unit/test_config.c checks the two agree on such text.
int mt_config_is_simple_plain(const char *v) {
    unsigned char c0 = (unsigned char)v[0];
    if (!(isalnum(c0) || c0 == '_' || c0 == '/')) {
        if (!((c0 == '-' || c0 == '+' || c0 == '.') && isdigit((unsigned char)v[1]))) return 0;
    }
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p >= 0x80 || !(isalnum(*p) || *p == '_' || *p == '.' || *p == '/' || *p == '+' || *p == '-')) return 0;
    return 1;
}

static mt_status set_from_text(mt_train_config *c, const char *path, const char *value, const char *where) {
    int idx = mt_config_key_index(path);
    if (idx < 0 && is_section(path) && is_null_text(value)) {
        // "section=null" (Hydra): back to the schema defaults, as if the block were absent
        size_t l = strlen(path);
        for (size_t i = 0; i < NKEYS; i++) {
            if (strncmp(g_schema[i].path, path, l) || g_schema[i].path[l] != '.' || g_schema[i].type == MT_CFG_ANY)
                continue;
            free(c->raw[i]);
            c->raw[i] = NULL;
            if (g_schema[i].type == MT_CFG_NOOP) {
                free(c->text[i]);
                c->text[i] = NULL;
            } else if (g_schema[i].type == MT_CFG_STR && has_interp(g_schema[i].def)) {
                MT_TRY(set_scalar(c, (int)i, g_schema[i].def, 0, where));
            } else if (g_schema[i].type == MT_CFG_STR) {
                char **sp = field_ptr(c, &g_schema[i]);
                free(*sp);
                *sp = NULL;
                if (!is_null_text(g_schema[i].def) && !(*sp = mt_strdup(g_schema[i].def))) return MT_ERR_NOMEM;
                c->missing[i] = 0;
            } else {
                MT_TRY(set_from_text(c, g_schema[i].path, g_schema[i].def, where));
            }
            c->set[i] = 0;
            free(c->where[i]);
            c->where[i] = NULL;
        }
        return MT_OK;
    }
    if (idx < 0) {
        if (any_prefix(path) >= 0) return MT_OK;
        const char *s = mt_config_suggest(path);
        return mt_fail(MT_ERR_INVALID, "%s: unknown key '%s'%s%s%s (see 'megatune train --help' for every key)", where,
                       path, s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
    }
    if (g_schema[idx].type == MT_CFG_ANY) return MT_OK;
    // A string key takes text YAML would read as a mapping or list verbatim: Lightning's filename
    // template "{val_loss:.2f}-{epoch}" on a command line needs no extra quoting.
    if (g_schema[idx].type == MT_CFG_STR && (value[0] == '{' || value[0] == '[')) {
        mt_status st = set_scalar(c, idx, value, 0, where);
        if (st == MT_OK) {
            c->set[idx] = 1;
            set_where(c, idx, where);
        }
        return st;
    }
    if (mt_config_is_simple_plain(value)) {
        // What libyaml would return for it (a plain scalar, the text itself), without a parser: a
        // section reset or a task's defaults sets dozens of keys, each one a parser's buffers.
        mt_status st = set_scalar(c, idx, value, 1, where);
        int nulled = null_switch(idx, value, 1);
        if (st == MT_OK && !nulled) {
            c->set[idx] = 1;
            set_where(c, idx, where);
        }
        return st;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return mt_fail(MT_ERR_NOMEM, "cannot start the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, strlen(value));
    if (!yaml_parser_load(&parser, &doc)) {
        mt_status st = mt_fail(MT_ERR_INVALID, "%s: cannot parse the value of %s: %s", where, path,
                               parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    mt_status st;
    if (!root) {
        st = set_scalar(c, idx, "", 1, where); // "key=" is null, as in Hydra
    } else if (root->type != YAML_SCALAR_NODE && g_schema[idx].type == MT_CFG_NOOP) {
        st = set_noop_node(c, idx, &doc, root);
    } else if (root->type == YAML_SEQUENCE_NODE) {
        walk_ctx w = {c, &doc, where, 0, 0, 0};
        st = walk_list(&w, idx, root, where);
    } else if (root->type == YAML_MAPPING_NODE) {
        st = mt_fail(MT_ERR_INVALID, "%s: %s expects %s, got a mapping", where, path, type_name(g_schema[idx].type));
    } else {
        st = set_scalar(c, idx, (const char *)root->data.scalar.value,
                        root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, where);
    }
    int nulled = root && root->type == YAML_SCALAR_NODE &&
                 null_switch(idx, (const char *)root->data.scalar.value, root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (st == MT_OK && !nulled) {
        c->set[idx] = 1;
        set_where(c, idx, where);
    }
    return st;
}

static void write_value(FILE *out, const mt_train_config *c, size_t i, int quote);

// Key i back to its schema default, not set by anyone.
static mt_status reset_key(mt_train_config *c, size_t i) {
    const mt_cfg_key *k = &g_schema[i];
    free(c->raw[i]);
    c->raw[i] = NULL;
    free(c->text[i]);
    c->text[i] = NULL;
    c->missing[i] = 0;
    mt_status st = MT_OK;
    if (k->type == MT_CFG_FLOAT_LIST) {
        st = set_from_text(c, k->path, k->def, "schema default");
    } else if (k->type != MT_CFG_ANY && k->type != MT_CFG_NOOP) {
        int plain = !strcmp(k->def, "???") || k->type != MT_CFG_STR || is_null_text(k->def);
        st = set_scalar(c, (int)i, k->def, plain, "schema default");
    }
    c->set[i] = 0;
    free(c->where[i]);
    c->where[i] = NULL;
    return st;
}

// Does the current value of key i read as `want` (a YAML scalar, as Hydra compares ~key=value)?
static int value_equals(const mt_train_config *c, size_t i, const char *want) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return 0;
    write_value(m, c, i, 0);
    fclose(m);
    size_t wl = strlen(want);
    char w[512];
    if (wl >= 2 && wl < sizeof w && (want[0] == '\'' || want[0] == '"') && want[wl - 1] == want[0])
        snprintf(w, sizeof w, "%.*s", (int)(wl - 2), want + 1);
    else
        snprintf(w, sizeof w, "%s", want);
    double a, b;
    int ba, bb;
    int eq = !strcmp(buf, w) || (is_null_text(buf) && is_null_text(w)) ||
             (parse_double(buf, &a) && parse_double(w, &b) && a == b) ||
             (parse_bool(buf, &ba) && parse_bool(w, &bb) && ba == bb);
    free(buf);
    return eq;
}

// Hydra's ~key / ~key=value: the key (or every key of a section) back to its default.
static mt_status delete_key(mt_train_config *c, const char *arg, const char *key) {
    const char *eq = strchr(key, '=');
    char path[512];
    size_t l = eq ? (size_t)(eq - key) : strlen(key);
    if (l == 0 || l >= sizeof path)
        return mt_fail(MT_ERR_INVALID, "override '%s': give the key to delete, e.g. ~trainer.max_time", arg);
    memcpy(path, key, l);
    path[l] = 0;
    int idx = mt_config_key_index(path);
    if (idx < 0 && !is_section(path)) {
        if (any_prefix(path) >= 0) return MT_OK; // a key megatune ignores anyway
        const char *s = mt_config_suggest(path);
        return mt_fail(MT_ERR_INVALID, "override '%s': unknown key '%s'%s%s%s (see 'megatune train --help')", arg, path,
                       s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
    }
    if (idx >= 0) {
        if (!c->set[idx])
            return mt_fail(MT_ERR_INVALID, "override '%s': %s is not in the config, nothing to delete (Hydra refuses "
                           "this too); drop the override", arg, path);
        if (eq && !value_equals(c, (size_t)idx, eq + 1)) {
            char *cur = NULL;
            size_t cl = 0;
            FILE *m = open_memstream(&cur, &cl);
            if (m) {
                write_value(m, c, (size_t)idx, 0);
                fclose(m);
            }
            mt_status st = mt_fail(MT_ERR_INVALID, "override '%s': %s is '%s', not '%s' (set at %s); ~key=value deletes "
                                   "only that value", arg, path, cur ? cur : "?", eq + 1,
                                   c->where[idx] ? c->where[idx] : "default");
            free(cur);
            return st;
        }
        return reset_key(c, (size_t)idx);
    }
    if (eq && !is_null_text(eq + 1))
        return mt_fail(MT_ERR_INVALID, "override '%s': %s is a section; ~section=value compares one value, write "
                       "~%s to delete the whole section", arg, path, path);
    int any = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (strncmp(g_schema[i].path, path, l) || g_schema[i].path[l] != '.') continue;
        any |= c->set[i];
        MT_TRY(reset_key(c, i));
    }
    if (!any)
        return mt_fail(MT_ERR_INVALID, "override '%s': the config sets nothing under %s, nothing to delete", arg, path);
    return MT_OK;
}

mt_status mt_config_override(mt_train_config *c, const char *arg) {
    const char *eq = strchr(arg, '=');
    const char *key = arg;
    if (key[0] == '+' && key[1] == '+') key += 2; // Hydra >= 1.1 "add or override"
    else if (*key == '+') key++;
    if (*key == '~') {
        if (key != arg)
            return mt_fail(MT_ERR_INVALID, "override '%s': write either +key=value (add) or ~key (delete)", arg);
        return delete_key(c, arg, key + 1);
    }
    if (!eq || eq == key)
        return mt_fail(MT_ERR_INVALID, "override '%s' is not key=value (e.g. trainer.max_steps=100)", arg);
    char path[512];
    size_t l = (size_t)(eq - key);
    if (l >= sizeof path) return mt_fail(MT_ERR_INVALID, "override '%s': key too long", arg);
    memcpy(path, key, l);
    path[l] = 0;
    char where[600];
    snprintf(where, sizeof where, "override '%s'", path);
    return set_from_text(c, path, eq + 1, where);
}

mt_status mt_config_set(mt_train_config *c, const char *path, const char *value) {
    return set_from_text(c, path, value, "config");
}

int mt_config_is_set(const mt_train_config *c, const char *path) {
    int i = mt_config_key_index(path);
    return i >= 0 && c->set[i];
}

// ---------------------------------------------------------------------------------------------
// Init, free

mt_status mt_config_init(mt_train_config *c) {
    memset(c, 0, sizeof *c);
    c->set = mt_calloc(NKEYS, 1);
    c->missing = mt_calloc(NKEYS, 1);
    c->where = mt_calloc(NKEYS, sizeof(char *));
    c->raw = mt_calloc(NKEYS, sizeof(char *));
    c->text = mt_calloc(NKEYS, sizeof(char *));
    if (!c->set || !c->missing || !c->where || !c->raw || !c->text) {
        mt_config_free(c);
        return MT_ERR_NOMEM;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (g_schema[i].type == MT_CFG_ANY || g_schema[i].type == MT_CFG_NOOP) continue;
        mt_status st;
        if (g_schema[i].type == MT_CFG_FLOAT_LIST) {
            st = set_from_text(c, g_schema[i].path, g_schema[i].def, "schema default");
        } else {
            int plain = strcmp(g_schema[i].def, "???") == 0 || g_schema[i].type != MT_CFG_STR ||
                        is_null_text(g_schema[i].def);
            st = set_scalar(c, (int)i, g_schema[i].def, plain, "schema default");
        }
        if (st != MT_OK) {
            mt_config_free(c);
            return st;
        }
        c->set[i] = 0;
        free(c->where[i]);
        c->where[i] = NULL;
    }
    return MT_OK;
}

void mt_config_free(mt_train_config *c) {
    if (!c) return;
    for (size_t i = 0; i < NKEYS; i++) {
        if (g_schema[i].type == MT_CFG_STR) {
            char **s = field_ptr(c, &g_schema[i]);
            free(*s);
            *s = NULL;
        }
        if (c->where) free(c->where[i]);
        if (c->raw) free(c->raw[i]);
        if (c->text) free(c->text[i]);
    }
    free(c->set);
    free(c->missing);
    free(c->where);
    free(c->raw);
    free(c->text);
    c->set = c->missing = NULL;
    c->where = c->raw = c->text = NULL;
}

// ---------------------------------------------------------------------------------------------
// Finish: task, task defaults, interpolation, validation

typedef struct {
    const char *task, *path, *value;
} task_default;

// NeMo v1.0 example configs, per task, for keys the user did not set.
static const task_default g_task_defaults[] = {
    {"text_classification", "model.dataset.max_seq_length", "256"},
    {"text_classification", "model.train_ds.batch_size", "64"},
    {"text_classification", "model.validation_ds.batch_size", "64"},
    {"text_classification", "model.test_ds.batch_size", "64"},
    {"text_classification", "trainer.max_epochs", "100"},
    {"text_classification", "model.optim.lr", "2e-5"},
    {"text_classification", "model.optim.weight_decay", "0.01"},
    {"text_classification", "exp_manager.name", "TextClassification"},
    {"text_classification", "model.nemo_path", "text_classification_model.nemo"},
    {"text_classification", "model.target", "nemo.collections.nlp.models.text_classification.text_classification_model.TextClassificationModel"},
    {"glue", "model.dataset.max_seq_length", "128"},
    {"glue", "model.train_ds.ds_item", "train.tsv"},
    {"glue", "model.validation_ds.ds_item", "dev.tsv"},
    {"glue", "model.train_ds.batch_size", "32"},
    {"glue", "model.validation_ds.batch_size", "32"},
    {"glue", "trainer.max_epochs", "3"},
    {"glue", "model.optim.lr", "5e-5"},
    {"glue", "model.task_name", "mrpc"},
    {"glue", "exp_manager.name", "${model.task_name}"},
    {"glue", "model.target", "nemo.collections.nlp.models.glue_benchmark.glue_benchmark_model.GLUEModel"},
    {"punctuation_capitalization", "model.train_ds.text_file", "text_train.txt"},
    {"punctuation_capitalization", "model.train_ds.labels_file", "labels_train.txt"},
    {"punctuation_capitalization", "model.validation_ds.text_file", "text_dev.txt"},
    {"punctuation_capitalization", "model.validation_ds.labels_file", "labels_dev.txt"},
    {"punctuation_capitalization", "model.train_ds.batch_size", "64"},
    {"punctuation_capitalization", "model.validation_ds.batch_size", "64"},
    {"punctuation_capitalization", "model.optim.lr", "1e-4"},
    {"punctuation_capitalization", "exp_manager.name", "Punctuation_and_Capitalization"},
    {"punctuation_capitalization", "model.target", "nemo.collections.nlp.models.token_classification.punctuation_capitalization_model.PunctuationCapitalizationModel"},
    {"intent_slot_classification", "trainer.max_epochs", "50"},
    {"intent_slot_classification", "model.optim.lr", "2e-5"},
    {"intent_slot_classification", "exp_manager.name", "IntentSlot"},
    {"intent_slot_classification", "model.target", "nemo.collections.nlp.models.intent_slot_classification.intent_slot_classification_model.IntentSlotClassificationModel"},
    {"token_classification", "model.dataset.max_seq_length", "128"},
    {"token_classification", "model.train_ds.text_file", "text_train.txt"},
    {"token_classification", "model.train_ds.labels_file", "labels_train.txt"},
    {"token_classification", "model.validation_ds.text_file", "text_dev.txt"},
    {"token_classification", "model.validation_ds.labels_file", "labels_dev.txt"},
    {"token_classification", "model.test_ds.text_file", "text_dev.txt"},
    {"token_classification", "model.test_ds.labels_file", "labels_dev.txt"},
    {"token_classification", "model.train_ds.batch_size", "64"},
    {"token_classification", "model.validation_ds.batch_size", "64"},
    {"token_classification", "model.test_ds.batch_size", "64"},
    {"token_classification", "model.class_labels.class_labels_file", "label_ids.csv"},
    {"token_classification", "trainer.max_epochs", "5"},
    {"token_classification", "model.optim.lr", "5e-5"},
    {"token_classification", "exp_manager.name", "token_classification_model"},
    {"token_classification", "model.nemo_path", "null"},
    {"token_classification", "model.target", "nemo.collections.nlp.models.token_classification.token_classification_model.TokenClassificationModel"},
    {"question_answering", "model.dataset.max_seq_length", "384"},
    {"question_answering", "model.dataset.do_lower_case", "true"},
    {"question_answering", "model.train_ds.batch_size", "24"},
    {"question_answering", "model.validation_ds.batch_size", "24"},
    {"question_answering", "model.test_ds.batch_size", "24"},
    {"question_answering", "trainer.max_epochs", "2"},
    {"question_answering", "model.optim.name", "adamw"},
    {"question_answering", "model.optim.lr", "3e-5"},
    {"question_answering", "model.optim.sched.name", "SquareRootAnnealing"},
    {"question_answering", "model.optim.sched.warmup_ratio", "0.0"},
    {"question_answering", "exp_manager.name", "QA"},
    {"question_answering", "model.target", "nemo.collections.nlp.models.question_answering.qa_model.QAModel"},
};

static const char *const g_tasks[] = {"text_classification", "glue", "token_classification", "question_answering",
                                      "punctuation_capitalization", "intent_slot_classification"};

static int any_set_under(const mt_train_config *c, const char *prefix) {
    size_t l = strlen(prefix);
    for (size_t i = 0; i < NKEYS; i++)
        if (c->set[i] && !strncmp(g_schema[i].path, prefix, l)) return 1;
    return 0;
}

static mt_status infer_task(mt_train_config *c) {
    if (c->task) {
        for (size_t i = 0; i < sizeof g_tasks / sizeof g_tasks[0]; i++)
            if (!strcmp(c->task, g_tasks[i])) return MT_OK;
        int idx = mt_config_key_index("task");
        return mt_fail(MT_ERR_INVALID, "%s: task '%s' is unknown: use text_classification, glue, "
                       "token_classification, question_answering, punctuation_capitalization or "
                       "intent_slot_classification", c->where[idx] ? c->where[idx] : "config", c->task);
    }
    const char *t = NULL;
    const char *target = c->model.target;
    if (target && strstr(target, "TextClassificationModel")) t = "text_classification";
    else if (target && strstr(target, "GLUEModel")) t = "glue";
    else if (target && strstr(target, "TokenClassificationModel")) t = "token_classification";
    else if (target && strstr(target, "QAModel")) t = "question_answering";
    else if (target && strstr(target, "PunctuationCapitalizationModel")) t = "punctuation_capitalization";
    else if (target && strstr(target, "IntentSlotClassificationModel")) t = "intent_slot_classification";
    else if (any_set_under(c, "model.punct_head.") || any_set_under(c, "model.capit_head."))
        t = "punctuation_capitalization";
    else if (mt_config_is_set(c, "model.intent_loss_weight") || mt_config_is_set(c, "model.data_dir") ||
             mt_config_is_set(c, "model.head.num_output_layers"))
        t = "intent_slot_classification";
    else if (mt_config_is_set(c, "model.task_name")) t = "glue";
    else if (any_set_under(c, "model.head.") || mt_config_is_set(c, "model.train_ds.text_file") ||
             mt_config_is_set(c, "model.dataset.pad_label"))
        t = "token_classification";
    else if (any_set_under(c, "model.token_classifier.") || mt_config_is_set(c, "model.dataset.doc_stride"))
        t = "question_answering";
    else if (any_set_under(c, "model.classifier_head.") || mt_config_is_set(c, "model.train_ds.file_path") ||
             mt_config_is_set(c, "model.dataset.num_classes"))
        t = "text_classification";
    if (!t)
        return mt_fail(MT_ERR_INVALID, "cannot tell which task this config is for: add task: text_classification "
                       "(or glue, token_classification, question_answering)");
    c->task = mt_strdup(t);
    return c->task ? MT_OK : MT_ERR_NOMEM;
}

// OmegaConf interpolation. Every value holding ${...} waits in c->raw until here, so overrides of
// the referenced keys (model.dataset.max_seq_length=128) reach every reference. A whole-value
// reference takes the target's type; one inside a string is replaced by the target's text.
typedef struct {
    mt_train_config *c;
    unsigned char *state; // 0 untouched, 1 being resolved (on the chain), 2 done
    int chain[64];
    int nchain;
} interp_ctx;

static mt_status resolve_key(interp_ctx *x, int i);

static const char *key_where(const mt_train_config *c, int i) { return c->where[i] ? c->where[i] : "default"; }

// Appends the value `ref` names (the text between "${" and "}") to `out`. `*null`: the target is null.
static mt_status interp_ref(interp_ctx *x, int i, const char *ref, FILE *out, int *null, int *plain) {
    mt_train_config *c = x->c;
    const char *path = g_schema[i].path, *raw = c->raw[i];
    *null = 0;
    *plain = 1;
    if (!strncmp(ref, "oc.env:", 7) || !strncmp(ref, "env:", 4)) {
        const char *var = strchr(ref, ':') + 1;
        char name[256];
        const char *comma = strchr(var, ',');
        size_t nl = comma ? (size_t)(comma - var) : strlen(var);
        while (nl && var[nl - 1] == ' ') nl--;
        snprintf(name, sizeof name, "%.*s", (int)nl, var);
        const char *v = getenv(name);
        if (!v && comma) {
            v = comma + 1;
            while (*v == ' ') v++;
            size_t dl = strlen(v);
            if (dl >= 2 && (v[0] == '\'' || v[0] == '"') && v[dl - 1] == v[0]) {
                fprintf(out, "%.*s", (int)(dl - 2), v + 1);
                *plain = 0;
                return MT_OK;
            }
            if (is_null_text(v)) *null = 1;
        }
        if (!v)
            return mt_fail(MT_ERR_INVALID, "%s: %s: '%s' needs the environment variable %s, which is not set: export "
                           "it or give a default, ${oc.env:%s,VALUE}", key_where(c, i), path, raw, name, name);
        fputs(v, out);
        *plain = 0; // an environment variable is a string (OmegaConf's oc.env)
        return MT_OK;
    }
    if (strchr(ref, ':'))
        return mt_fail(MT_ERR_UNSUPPORTED, "%s: %s: resolver '%s' in '%s' is not supported (only ${a.b.c}, "
                       "${oc.env:VAR} and ${env:VAR})", key_where(c, i), path, ref, raw);
    int j = *ref ? mt_config_key_index(ref) : -1;
    char alt[600];
    // a .nemo's model_config.yaml is the model section alone: ${dataset.x} means model.dataset.x
    if (j < 0 && *ref && snprintf(alt, sizeof alt, "model.%s", ref) < (int)sizeof alt) {
        int k = mt_config_key_index(alt);
        if (k >= 0 && (!strncmp(path, "model.", 6))) j = k;
    }
    if (j < 0 || g_schema[j].type == MT_CFG_ANY) {
        if (*ref && is_section(ref))
            return mt_fail(MT_ERR_INVALID, "%s: %s: '${%s}' names a whole section; interpolate one value "
                           "(${%s.KEY})", key_where(c, i), path, ref, ref);
        if (j >= 0 || any_prefix(ref) >= 0)
            return mt_fail(MT_ERR_UNSUPPORTED, "%s: %s: '${%s}' names a key megatune accepts but does not keep; "
                           "write the value itself", key_where(c, i), path, ref);
        const char *sug = *ref ? mt_config_suggest(ref) : NULL;
        return mt_fail(MT_ERR_INVALID, "%s: %s: interpolation '${%s}' names no key%s%s%s", key_where(c, i), path, ref,
                       sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
    }
    if (x->state[j] == 1) {
        char chain[2048];
        int n = 0;
        int from = 0;
        for (int q = 0; q < x->nchain; q++)
            if (x->chain[q] == j) { from = q; break; }
        for (int q = from; q < x->nchain && n < (int)sizeof chain; q++)
            n += snprintf(chain + n, sizeof chain - (size_t)n, "%s -> ", g_schema[x->chain[q]].path);
        if (n < (int)sizeof chain) snprintf(chain + n, sizeof chain - (size_t)n, "%s", g_schema[j].path);
        return mt_fail(MT_ERR_INVALID, "%s: %s: interpolation '%s' is circular (%s); give one of them a value",
                       key_where(c, i), path, raw, chain);
    }
    MT_TRY(resolve_key(x, j));
    if (c->missing[j])
        return mt_fail(MT_ERR_INVALID, "%s: %s refers to %s, which is mandatory ('?\?\?') and not set: set %s=VALUE",
                       key_where(c, i), path, g_schema[j].path, g_schema[j].path);
    const mt_cfg_key *t = &g_schema[j];
    const void *f = field_cptr(c, t);
    if ((t->type == MT_CFG_STR && !*(char *const *)f) ||
        (t->nullable && t->type == MT_CFG_INT && *(const int64_t *)f == -1) ||
        (t->nullable && t->type == MT_CFG_FLOAT && *(const double *)f == -1) ||
        (t->type == MT_CFG_NOOP && is_null_text(c->text[j] ? c->text[j] : t->def))) {
        *null = 1;
        fputs("None", out); // OmegaConf's str(None) inside a string
        return MT_OK;
    }
    if (t->type == MT_CFG_STR) *plain = 0;
    write_value(out, c, (size_t)j, 0);
    return MT_OK;
}

static mt_status resolve_key(interp_ctx *x, int i) {
    mt_train_config *c = x->c;
    if (!c->raw[i] || x->state[i] == 2) return MT_OK;
    if (x->nchain >= (int)(sizeof x->chain / sizeof x->chain[0]))
        return mt_fail(MT_ERR_INVALID, "%s: %s: interpolations nest more than 64 deep", key_where(c, i), g_schema[i].path);
    x->state[i] = 1;
    x->chain[x->nchain++] = i;
    const char *raw = c->raw[i];
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) return MT_ERR_NOMEM;
    mt_status st = MT_OK;
    int whole = 0, null = 0, plain = 0;
    for (const char *p = raw; *p && st == MT_OK;) {
        if (p[0] == '\\' && p[1] == '$' && p[2] == '{') { // escaped: a literal "${"
            fputs("${", out);
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            fputc(*p++, out);
            continue;
        }
        int depth = 0;
        const char *q = p + 1;
        for (; *q; q++) {
            if (*q == '{') depth++;
            else if (*q == '}' && --depth == 0) break;
        }
        if (!*q) {
            st = mt_fail(MT_ERR_INVALID, "%s: %s: '${' without its closing '}' in '%s'", key_where(c, i),
                         g_schema[i].path, raw);
            break;
        }
        char ref[512];
        const char *r0 = p + 2, *r1 = q;
        while (r0 < r1 && *r0 == ' ') r0++;
        while (r1 > r0 && r1[-1] == ' ') r1--;
        if ((size_t)(r1 - r0) >= sizeof ref) {
            st = mt_fail(MT_ERR_INVALID, "%s: %s: interpolation too long", key_where(c, i), g_schema[i].path);
            break;
        }
        snprintf(ref, sizeof ref, "%.*s", (int)(r1 - r0), r0);
        if (strstr(ref, "${")) {
            st = mt_fail(MT_ERR_UNSUPPORTED, "%s: %s: nested interpolation '%s' is not supported", key_where(c, i),
                         g_schema[i].path, raw);
            break;
        }
        whole = p == raw && q[1] == 0;
        st = interp_ref(x, i, ref, out, &null, &plain);
        p = q + 1;
    }
    fclose(out);
    if (st == MT_OK) {
        char where[1200];
        snprintf(where, sizeof where, "%s (%s = '%s')", key_where(c, i), g_schema[i].path, raw);
        char *saved_raw = c->raw[i];
        c->raw[i] = NULL;
        if (whole && null) st = set_scalar_ex(c, i, "null", 1, where, 0);
        else if (g_schema[i].type == MT_CFG_FLOAT_LIST) st = set_from_text(c, g_schema[i].path, buf, where);
        else st = set_scalar_ex(c, i, buf, whole ? plain : 0, where, 0);
        // set_from_text marked the key as set by `where`: keep the file:line that wrote the reference
        if (st == MT_OK && c->where[i] && strstr(c->where[i], " = '")) {
            char *sp = strstr(c->where[i], " (");
            if (sp) *sp = 0;
        }
        free(saved_raw);
    }
    free(buf);
    x->state[i] = 2;
    x->nchain--;
    return st;
}

static mt_status resolve_interpolations(mt_train_config *c) {
    interp_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.state = mt_calloc(NKEYS, 1);
    if (!x.state) return MT_ERR_NOMEM;
    mt_status st = MT_OK;
    for (size_t i = 0; i < NKEYS && st == MT_OK; i++) st = resolve_key(&x, (int)i);
    free(x.state);
    return st;
}

// Keys only some tasks' NeMo configs carry; every other key is common. A path ending in '.' is a
// section; "*_ds." stands for the three splits.
static const struct {
    const char *key, *tasks;
} g_task_keys[] = {
    {"do_training", "question_answering"},
    {"model.task_name", "glue"},
    {"model.label_ids", "token_classification"},
    // ---- punctuation_capitalization / intent_slot_classification (before the prefixes they refine)
    {"model.class_labels.punct_labels_file", "punctuation_capitalization"},
    {"model.class_labels.capit_labels_file", "punctuation_capitalization"},
    {"model.class_labels.intent_labels_file", "intent_slot_classification"},
    {"model.class_labels.slot_labels_file", "intent_slot_classification"},
    {"model.punct_label_ids", "punctuation_capitalization"},
    {"model.capit_label_ids", "punctuation_capitalization"},
    {"model.punct_head.", "punctuation_capitalization"},
    {"model.capit_head.", "punctuation_capitalization"},
    {"model.data_dir", "intent_slot_classification"},
    {"model.data_desc", "intent_slot_classification"},
    {"model.class_balancing", "intent_slot_classification"},
    {"model.intent_loss_weight", "intent_slot_classification"},
    {"model.pad_label", "intent_slot_classification"},
    {"model.ignore_extra_tokens", "intent_slot_classification"},
    {"model.ignore_start_end", "intent_slot_classification"},
    {"*_ds.prefix", "intent_slot_classification"},
    {"model.language_model.max_seq_length", "intent_slot_classification"},
    {"model.head.num_output_layers", "intent_slot_classification"},
    {"model.head.fc_dropout", "token_classification intent_slot_classification"},
    {"model.optim.args.", "intent_slot_classification"},
    {"model.optim.sched.args.", "intent_slot_classification"},
    // ----
    {"model.class_labels.", "text_classification token_classification"},
    {"model.dataset.num_classes", "text_classification"},
    {"model.dataset.class_balancing", "text_classification token_classification"},
    {"model.dataset.pad_label", "token_classification punctuation_capitalization"},
    {"model.dataset.ignore_extra_tokens", "token_classification punctuation_capitalization"},
    {"model.dataset.ignore_start_end", "token_classification punctuation_capitalization"},
    {"model.dataset.version_2_with_negative", "question_answering"},
    {"model.dataset.doc_stride", "question_answering"},
    {"model.dataset.max_query_length", "question_answering"},
    {"model.dataset.max_answer_length", "question_answering"},
    {"model.dataset.null_score_diff_threshold", "question_answering"},
    {"model.dataset.n_best_size", "question_answering"},
    {"*_ds.file_path", "text_classification"},
    {"*_ds.text_file", "token_classification punctuation_capitalization"},
    {"*_ds.labels_file", "token_classification punctuation_capitalization"},
    {"*_ds.ds_item", "glue punctuation_capitalization"},
    {"*_ds.file", "question_answering"},
    {"model.head.", "token_classification"},
    {"model.classifier_head.", "text_classification"},
    {"model.token_classifier.", "question_answering"},
};

int mt_config_key_in_task(const char *path, const char *task) {
    const char *ds = NULL;
    if (!strncmp(path, "model.train_ds.", 15)) ds = path + 15;
    else if (!strncmp(path, "model.validation_ds.", 20)) ds = path + 20;
    else if (!strncmp(path, "model.test_ds.", 14)) ds = path + 14;
    size_t tl = strlen(task);
    for (size_t i = 0; i < sizeof g_task_keys / sizeof g_task_keys[0]; i++) {
        const char *k = g_task_keys[i].key;
        int match;
        size_t kl = strlen(k);
        if (schema_prefix_eq(k, "*_ds.", 5)) match = ds && schema_prefix_eq(ds, k + 5, kl - 4);
        else if (k[kl - 1] == '.') match = schema_prefix_eq(path, k, kl);
        else match = schema_prefix_eq(path, k, kl + 1);
        if (!match) continue;
        for (const char *t = strstr(g_task_keys[i].tasks, task); t; t = strstr(t + 1, task))
            if ((t == g_task_keys[i].tasks || t[-1] == ' ') && (t[tl] == 0 || t[tl] == ' ')) return 1;
        return 0;
    }
    return 1;
}

const char *mt_config_text(const mt_train_config *c, const char *path) {
    int i = mt_config_key_index(path);
    if (i < 0 || g_schema[i].type != MT_CFG_NOOP) return NULL;
    return c->text[i] ? c->text[i] : g_schema[i].def;
}

// Same value for Lightning? ("1" and "1.0", "True" and "true", "~" and "null" are.)
static int same_text(const char *a, const char *b) {
    double x, y;
    int p, q;
    if (is_null_text(a) || is_null_text(b)) return is_null_text(a) && is_null_text(b);
    if (parse_double(a, &x) && parse_double(b, &y)) return x == y;
    if (parse_bool(a, &p) && parse_bool(b, &q)) return p == q;
    return !strcmp(a, b);
}

int mt_config_log_noops(const mt_train_config *c) {
    int n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (g_schema[i].type != MT_CFG_NOOP || !c->text[i] || same_text(c->text[i], g_schema[i].def)) continue;
        if (!strcmp(g_schema[i].path, "trainer.fast_dev_run")) continue; // applied, logged by mt_config_finish
        if (!strcmp(g_schema[i].path, "trainer.progress_bar_refresh_rate") && same_text(c->text[i], "0")) continue;
        mt_info("%s=%s: no effect here: %s", g_schema[i].path, c->text[i], g_schema[i].help);
        n++;
    }
    return n;
}

// Lightning's fast_dev_run: true = 1, an int N = N batches of training and of validation.
static mt_status apply_fast_dev_run(mt_train_config *c) {
    int idx = mt_config_key_index("trainer.fast_dev_run");
    const char *t = c->text[idx];
    int64_t n = 0;
    int b;
    c->trainer.fast_dev_run = 0;
    if (!t || is_null_text(t)) return MT_OK;
    if (parse_bool(t, &b)) n = b;
    else if (!parse_int(t, &n) || n < 0)
        return mt_fail(MT_ERR_INVALID, "%s: trainer.fast_dev_run expects true, false or a number of batches >= 0, got "
                       "'%s'", key_where(c, idx), t);
    if (n == 0) return MT_OK;
    c->trainer.fast_dev_run = n;
    // As Lightning: N batches of training and validation, one epoch, no checkpoints, no .nemo.
    c->trainer.limit_train_batches = (mt_cfg_num){(double)n, 1};
    c->trainer.limit_val_batches = (mt_cfg_num){(double)n, 1};
    c->trainer.limit_test_batches = (mt_cfg_num){(double)n, 1};
    c->trainer.val_check_interval = (mt_cfg_num){1.0, 0};
    c->trainer.check_val_every_n_epoch = 1;
    c->trainer.max_epochs = 1;
    c->trainer.max_steps = -1;
    c->exp_manager.create_checkpoint_callback = 0;
    c->exp_manager.checkpoint_callback_params.always_save_nemo = 0;
    mt_info("trainer.fast_dev_run=%s: %lld training and %lld validation batch(es), one epoch, no checkpoints", t,
            (long long)n, (long long)n);
    return MT_OK;
}

static const char *where_of(const mt_train_config *c, const char *path) {
    int i = mt_config_key_index(path);
    if (i >= 0 && c->where[i]) return c->where[i];
    return "default";
}

int mt_config_step_in_backward(const mt_train_config *c) {
    const char *v = c->model.optim.step_in_backward;
    if (v && !strcmp(v, "true")) return 1;
    return (!v || !strcmp(v, "auto")) && c->trainer.gradient_clip_val == 0 && c->trainer.accumulate_grad_batches == 1;
}

mt_status mt_config_finish(mt_train_config *c) {
    MT_TRY(infer_task(c));
    for (size_t i = 0; i < sizeof g_task_defaults / sizeof g_task_defaults[0]; i++) {
        const task_default *d = &g_task_defaults[i];
        if (strcmp(d->task, c->task)) continue;
        int idx = mt_config_key_index(d->path);
        if (idx < 0 || c->set[idx]) continue;
        MT_TRY(set_from_text(c, d->path, d->value, "task default"));
        c->set[idx] = 0;
        free(c->where[idx]);
        c->where[idx] = NULL;
    }
    MT_TRY(resolve_interpolations(c));
    // intent/slot's stock YAML spells two optimiser keys the older way (optim.args.params.*)
    if (!strcmp(c->task, "intent_slot_classification")) {
        if (mt_config_is_set(c, "model.optim.args.params.weight_decay") && !mt_config_is_set(c, "model.optim.weight_decay"))
            c->model.optim.weight_decay = c->model.joint.args_weight_decay;
        if (mt_config_is_set(c, "model.optim.sched.args.params.warmup_ratio") &&
            !mt_config_is_set(c, "model.optim.sched.warmup_ratio"))
            c->model.optim.sched.warmup_ratio = c->model.joint.args_warmup_ratio;
        if (mt_config_is_set(c, "model.optim.sched.args.params.warmup_steps") &&
            !mt_config_is_set(c, "model.optim.sched.warmup_steps"))
            c->model.optim.sched.warmup_steps = c->model.joint.args_warmup_steps;
    }
    MT_TRY(apply_fast_dev_run(c));
    {
        // Lightning: progress_bar_refresh_rate=0 disables the bar
        const char *r = mt_config_text(c, "trainer.progress_bar_refresh_rate");
        if (same_text(r, "0") && !mt_config_is_set(c, "trainer.progress_bar"))
            MT_TRY(set_from_text(c, "trainer.progress_bar", "lines", "trainer.progress_bar_refresh_rate=0"));
    }
    for (size_t i = 0; i < NKEYS; i++)
        if (c->missing[i])
            return mt_fail(MT_ERR_INVALID, "%s: %s is mandatory ('?\?\?'): set it in the YAML or on the command line "
                           "as %s=VALUE", c->where[i] ? c->where[i] : "config", g_schema[i].path, g_schema[i].path);
    const mt_cfg_ds *dss[3] = {&c->model.train_ds, &c->model.validation_ds, &c->model.test_ds};
    const char *dsn[3] = {"model.train_ds", "model.validation_ds", "model.test_ds"};
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s.batch_size", dsn[i]);
        if (dss[i]->batch_size <= 0)
            return mt_fail(MT_ERR_INVALID, "%s: %s must be >= 1, got %lld", where_of(c, p), p,
                           (long long)dss[i]->batch_size);
    }
#define CHECK_RANGE(cond, path, fmt, val)                                                              \
    if (!(cond))                                                                                       \
        return mt_fail(MT_ERR_INVALID, "%s: %s " fmt, where_of(c, path), path, val);
    CHECK_RANGE(c->trainer.accumulate_grad_batches >= 1, "trainer.accumulate_grad_batches", "must be >= 1, got %lld",
                (long long)c->trainer.accumulate_grad_batches);
    CHECK_RANGE(c->trainer.log_every_n_steps >= 1, "trainer.log_every_n_steps", "must be >= 1, got %lld",
                (long long)c->trainer.log_every_n_steps);
    CHECK_RANGE(c->trainer.gradient_clip_val >= 0, "trainer.gradient_clip_val", "must be >= 0, got %g",
                c->trainer.gradient_clip_val);
    CHECK_RANGE(c->trainer.max_steps >= -1, "trainer.max_steps", "must be >= 0 (or null), got %lld",
                (long long)c->trainer.max_steps);
    CHECK_RANGE(c->trainer.max_steps >= 0 || c->trainer.max_epochs >= 1, "trainer.max_epochs",
                "must be >= 1 when trainer.max_steps is null, got %lld", (long long)c->trainer.max_epochs);
    CHECK_RANGE(c->trainer.num_nodes == 1, "trainer.num_nodes", "must be 1 in this build, got %lld",
                (long long)c->trainer.num_nodes);
    CHECK_RANGE(c->trainer.val_check_interval.value > 0 &&
                    (c->trainer.val_check_interval.is_int || c->trainer.val_check_interval.value <= 1.0),
                "trainer.val_check_interval", "must be an int >= 1 (batches) or a float in (0, 1], got %g",
                c->trainer.val_check_interval.value);
    CHECK_RANGE(c->trainer.limit_val_batches.value >= 0 &&
                    (c->trainer.limit_val_batches.is_int || c->trainer.limit_val_batches.value <= 1.0),
                "trainer.limit_val_batches", "must be an int >= 0 or a float in [0, 1], got %g",
                c->trainer.limit_val_batches.value);
    CHECK_RANGE(c->trainer.limit_test_batches.value >= 0 &&
                    (c->trainer.limit_test_batches.is_int || c->trainer.limit_test_batches.value <= 1.0),
                "trainer.limit_test_batches", "must be an int >= 0 or a float in [0, 1], got %g",
                c->trainer.limit_test_batches.value);
    CHECK_RANGE(c->trainer.limit_train_batches.value > 0 &&
                    (c->trainer.limit_train_batches.is_int || c->trainer.limit_train_batches.value <= 1.0),
                "trainer.limit_train_batches", "must be an int >= 1 or a float in (0, 1], got %g",
                c->trainer.limit_train_batches.value);
    CHECK_RANGE(c->trainer.check_val_every_n_epoch >= 1, "trainer.check_val_every_n_epoch", "must be >= 1, got %lld",
                (long long)c->trainer.check_val_every_n_epoch);
    CHECK_RANGE(!c->trainer.stochastic_weight_avg, "trainer.stochastic_weight_avg", "is not supported (%s)",
                "set it to false");
    {
        const char *ga = mt_config_text(c, "trainer.gradient_clip_algorithm");
        CHECK_RANGE(!strcmp(ga, "norm"), "trainer.gradient_clip_algorithm",
                    "'%s' is not supported: megatune clips by the global L2 norm (norm)", ga);
        const char *pf = c->exp_manager.checkpoint_callback_params.postfix;
        CHECK_RANGE(pf && *pf && !strchr(pf, '/'), "exp_manager.checkpoint_callback_params.postfix",
                    "'%s' must be a file name ending such as .nemo", pf ? pf : "null");
        const char *fn = c->exp_manager.checkpoint_callback_params.filename;
        CHECK_RANGE(!fn || (*fn && !strchr(fn, '/')), "exp_manager.checkpoint_callback_params.filename",
                    "'%s' must be a file name template without '/' (the folder is dirpath)", fn ? fn : "");
    }
    CHECK_RANGE(c->model.dataset.max_seq_length >= 3, "model.dataset.max_seq_length", "must be >= 3, got %lld",
                (long long)c->model.dataset.max_seq_length);
    CHECK_RANGE(c->model.optim.lr >= 0, "model.optim.lr", "must be >= 0, got %g", c->model.optim.lr);
    CHECK_RANGE(c->model.optim.weight_decay >= 0, "model.optim.weight_decay", "must be >= 0, got %g",
                c->model.optim.weight_decay);
    CHECK_RANGE(c->model.optim.betas.n == 2 && c->model.optim.betas.v[0] >= 0 && c->model.optim.betas.v[0] < 1 &&
                    c->model.optim.betas.v[1] >= 0 && c->model.optim.betas.v[1] < 1,
                "model.optim.betas", "must be two numbers in [0, 1), e.g. [0.9, 0.999]; got %d values",
                c->model.optim.betas.n);
    CHECK_RANGE(c->model.optim.eps > 0, "model.optim.eps", "must be > 0, got %g", c->model.optim.eps);
    CHECK_RANGE(!c->model.optim.amsgrad, "model.optim.amsgrad", "is not supported (%s)", "set it to false");
    CHECK_RANGE(!c->model.optim.sched.reduce_on_plateau, "model.optim.sched.reduce_on_plateau",
                "is not supported (%s)", "set it to false");
    {
        const char *n = c->model.optim.name;
        CHECK_RANGE(!strcmp(n, "adam") || !strcmp(n, "adamw"), "model.optim.name",
                    "'%s' is not supported: use adam or adamw", n);
    }
    CHECK_RANGE(c->model.optim.sched.warmup_ratio < 0 || c->model.optim.sched.warmup_ratio <= 1.0,
                "model.optim.sched.warmup_ratio", "must be in [0, 1], got %g", c->model.optim.sched.warmup_ratio);
    {
        const char *m = c->exp_manager.checkpoint_callback_params.mode;
        CHECK_RANGE(!strcmp(m, "min") || !strcmp(m, "max"), "exp_manager.checkpoint_callback_params.mode",
                    "'%s' is unknown: use min or max", m);
    }
    CHECK_RANGE(c->exp_manager.checkpoint_callback_params.save_top_k >= -1,
                "exp_manager.checkpoint_callback_params.save_top_k", "must be >= -1, got %lld",
                (long long)c->exp_manager.checkpoint_callback_params.save_top_k);
    double drops[4] = {c->model.language_model.config.hidden_dropout, c->model.language_model.config.attention_dropout,
                       c->model.head.fc_dropout, c->model.classifier_head.fc_dropout};
    const char *dropn[4] = {"model.language_model.config.hidden_dropout",
                            "model.language_model.config.attention_dropout", "model.head.fc_dropout",
                            "model.classifier_head.fc_dropout"};
    for (int i = 0; i < 4; i++)
        CHECK_RANGE(drops[i] >= 0 && drops[i] < 1, dropn[i], "must be in [0, 1), got %g", drops[i]);
    CHECK_RANGE(c->model.tensor_model_parallel_size >= 1, "model.tensor_model_parallel_size", "must be >= 1, got %lld",
                (long long)c->model.tensor_model_parallel_size);
    {
        const char *sib = c->model.optim.step_in_backward;
        const int forced = sib && !strcmp(sib, "true");
        CHECK_RANGE(!sib || forced || !strcmp(sib, "auto") || !strcmp(sib, "false"), "model.optim.step_in_backward",
                    "'%s' is unknown: use true, false or auto", sib);
        CHECK_RANGE(!forced || c->trainer.gradient_clip_val == 0, "model.optim.step_in_backward",
                    "true needs trainer.gradient_clip_val=0 (got %g): clipping needs every gradient before the first "
                    "update; set one of them differently (auto turns it off by itself)", c->trainer.gradient_clip_val);
        CHECK_RANGE(!forced || c->trainer.accumulate_grad_batches == 1, "model.optim.step_in_backward",
                    "true needs trainer.accumulate_grad_batches=1 (got %lld): accumulation needs every batch's "
                    "gradients before the update", (long long)c->trainer.accumulate_grad_batches);
    }
    {
        const char *g = c->model.activations_checkpoint_granularity, *me = c->model.activations_checkpoint_method;
        CHECK_RANGE(!g || !strcmp(g, "full") || !strcmp(g, "selective"), "model.activations_checkpoint_granularity",
                    "'%s' is unknown: use null, full or selective", g);
        CHECK_RANGE(!me || !strcmp(me, "uniform") || !strcmp(me, "block"), "model.activations_checkpoint_method",
                    "'%s' is unknown: use null, uniform or block", me);
        CHECK_RANGE(!g || strcmp(g, "full") || me, "model.activations_checkpoint_method",
                    "must be uniform or block when model.activations_checkpoint_granularity is %s", "full");
        CHECK_RANGE(!c->model.activations_checkpoint_fc1 || (g && !strcmp(g, "selective")),
                    "model.activations_checkpoint_fc1", "true needs model.activations_checkpoint_granularity=selective "
                    "(got %s)", g ? g : "null");
        CHECK_RANGE(!c->model.activations_checkpoint_attn_out || c->model.activations_checkpoint_fc1,
                    "model.activations_checkpoint_attn_out", "true needs model.activations_checkpoint_fc1=true (got %s)",
                    "false");
        CHECK_RANGE(!me || c->model.activations_checkpoint_num_layers >= 1, "model.activations_checkpoint_num_layers",
                    "must be >= 1, got %lld", (long long)c->model.activations_checkpoint_num_layers);
    }
    {
        const char *pb = c->trainer.progress_bar;
        CHECK_RANGE(!strcmp(pb, "auto") || !strcmp(pb, "bar") || !strcmp(pb, "lines"), "trainer.progress_bar",
                    "'%s' is unknown: use auto, bar or lines", pb);
    }
    if (c->model.tokenizer.tokenizer_model)
        return mt_fail(MT_ERR_UNSUPPORTED, "%s: model.tokenizer.tokenizer_model: sentencepiece tokenizers are not "
                       "supported; use a WordPiece vocab_file", where_of(c, "model.tokenizer.tokenizer_model"));
#undef CHECK_RANGE
    return MT_OK;
}

// ---------------------------------------------------------------------------------------------
// Dump and help

// The shortest text that reads back as `v`, spelled as PyYAML writes floats (Python's repr, a
// '.' always in the mantissa: "0.0001", "1.0e-05", "100000.0"; YAML 1.1 reads "1e-05" as a string).
static void write_double(FILE *out, double v, int force_float) {
    char buf[64];
    int digits = 1;
    for (; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    int exp10 = atoi(strchr(buf, 'e') + 1);
    if (v == 0 || (exp10 >= -4 && exp10 < 16)) {
        int dec = digits - 1 - exp10;
        snprintf(buf, sizeof buf, "%.*f", dec > 0 ? dec : 0, v);
        if (force_float && !strchr(buf, '.')) strcat(buf, ".0");
    } else {
        char *e = strchr(buf, 'e');
        if (!memchr(buf, '.', (size_t)(e - buf))) {
            char tail[32];
            snprintf(tail, sizeof tail, "%s", e);
            snprintf(e, sizeof buf - (size_t)(e - buf), ".0%s", tail);
        }
    }
    fputs(buf, out);
}

static void write_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p == '\t') fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

// A NOOP key's text as YAML: plain when it reads as a number, a boolean, null or a flow list.
static void write_noop(FILE *out, const char *t) {
    double d;
    int b;
    if (is_null_text(t) || parse_double(t, &d) || parse_bool(t, &b) || t[0] == '[' || !strcmp(t, "{...}"))
        fputs(t[0] == '{' ? "null" : t, out);
    else
        write_string(out, t);
}

// `quote` 0 writes a string as its bare text (interpolation, comparisons).
static void write_value(FILE *out, const mt_train_config *c, size_t i, int quote) {
    const mt_cfg_key *k = &g_schema[i];
    const void *f = field_cptr(c, k);
    if (c->missing[i]) { fputs("???", out); return; }
    if (c->raw[i]) { // not resolved yet (a dump before mt_config_finish)
        if (quote) write_string(out, c->raw[i]);
        else fputs(c->raw[i], out);
        return;
    }
    if (k->type == MT_CFG_NOOP) {
        const char *t = c->text[i] ? c->text[i] : k->def;
        if (quote) write_noop(out, t);
        else fputs(t, out);
        return;
    }
    switch (k->type) {
    case MT_CFG_INT: {
        int64_t v = *(const int64_t *)f;
        if (k->nullable && v == -1) fputs("null", out);
        else fprintf(out, "%lld", (long long)v);
        break;
    }
    case MT_CFG_FLOAT: {
        double v = *(const double *)f;
        if (k->nullable && v == -1) fputs("null", out);
        else write_double(out, v, 1);
        break;
    }
    case MT_CFG_NUM: {
        const mt_cfg_num *n = f;
        if (n->is_int) fprintf(out, "%lld", (long long)n->value);
        else write_double(out, n->value, 1);
        break;
    }
    case MT_CFG_BOOL: fputs(*(const int *)f ? "true" : "false", out); break;
    case MT_CFG_STR: {
        const char *s = *(char *const *)f;
        if (!s) fputs("null", out);
        else if (quote) write_string(out, s);
        else fputs(s, out);
        break;
    }
    case MT_CFG_FLOAT_LIST: {
        const mt_cfg_list *l = f;
        fputc('[', out);
        for (int j = 0; j < l->n; j++) {
            if (j) fputs(", ", out);
            write_double(out, l->v[j], 1);
        }
        fputc(']', out);
        break;
    }
    case MT_CFG_ANY:
    case MT_CFG_NOOP: break;
    }
}

// Emits every key under `prefix` at `depth`, each sub-mapping once, where its first key sits in the
// table: keys of one mapping declared apart in the schema (a task's own block) still form one YAML
// mapping, so the dump reads back without duplicate keys.
static int dump_visible(const mt_train_config *c, size_t i) {
    return g_schema[i].type != MT_CFG_ANY && (!c->task || mt_config_key_in_task(g_schema[i].path, c->task));
}

static void dump_tree(const mt_train_config *c, const unsigned char *vis, FILE *out, const char *prefix, int depth) {
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < NKEYS; i++) {
        if (!vis[i]) continue;
        const char *p = g_schema[i].path;
        if (!schema_prefix_eq(p, prefix, pl)) continue;
        const char *rest = p + pl, *dot = strchr(rest, '.');
        if (!dot) {
            fprintf(out, "%*s%s: ", 2 * depth, "", rest);
            write_value(out, c, i, 1);
            fputc('\n', out);
            continue;
        }
        size_t sl = pl + (size_t)(dot - rest) + 1; // "prefix" + "component."
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = vis[j] && schema_prefix_eq(g_schema[j].path, p, sl);
        if (seen) continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%.*s", (int)sl, p);
        fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)(dot - rest), rest);
        dump_tree(c, vis, out, sub, depth + 1);
    }
}

mt_status mt_config_dump(const mt_train_config *c, FILE *out, const char *section) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s%s", section ? section : "", section ? "." : "");
    // decided once: the tree walk asks about every key once per section it passes
    unsigned char vis[NKEYS];
    for (size_t i = 0; i < NKEYS; i++) vis[i] = (unsigned char)dump_visible(c, i);
    dump_tree(c, vis, out, prefix, 0);
    if (ferror(out)) return mt_fail(MT_ERR_IO, "cannot write the config: %s", strerror(errno));
    return MT_OK;
}

void mt_config_print_help(FILE *out) {
    fprintf(out, "Config keys (YAML nesting or dotted key=value overrides):\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const mt_cfg_key *k = &g_schema[i];
        if (k->type == MT_CFG_ANY) {
            fprintf(out, "  %-58s %s\n", k->path, k->help);
            continue;
        }
        if (k->type == MT_CFG_NOOP) {
            fprintf(out, "  %-58s Lightning's (default %s): %s\n", k->path, k->def, k->help);
            continue;
        }
        const char *t = k->type == MT_CFG_INT ? "int" : k->type == MT_CFG_FLOAT ? "float" : k->type == MT_CFG_BOOL ? "bool"
                        : k->type == MT_CFG_STR ? "str" : k->type == MT_CFG_NUM ? "int|float" : "list";
        fprintf(out, "  %-58s %s = %s%s: %s\n", k->path, t, k->def, k->nullable ? " (nullable)" : "", k->help);
    }
}
