// Training checkpoints (.ckpt): what PyTorch Lightning 1.x's dump_checkpoint writes, so
// torch.load(ckpt)['state_dict'] and Lightning's resume read them, plus what an exact resume
// needs in a key of its own (torch zip, ckpt/torchfile.h's writer):
//   epoch, global_step, pytorch-lightning_version
//   state_dict          OrderedDict NeMo name -> f32 tensor
//   optimizer_states    [torch.optim Adam/AdamW state_dict: {'state': {i: {'step', 'exp_avg',
//                       'exp_avg_sq'}}, 'param_groups': [{lr, betas, eps, weight_decay, amsgrad,
//                       initial_lr, params: [0..n-1]}]}], i = the parameter's index in the model
//   lr_schedulers       [NeMo scheduler state: warmup_steps, max_steps, min_lr, base_lrs,
//                       last_epoch, _step_count, _last_lr, ...]
//   callbacks           {'ModelCheckpoint': {monitor, best_model_score, best_model_path,
//                       current_score, dirpath}}
//   hyper_parameters    {'cfg': the model config as plain dicts}
//   checkpoint_version  3.0 (NeMo's for a Megatron encoder: QKV rows [heads, 3, head_dim])
//   megatune            {format_version 2, optimizer_steps, batch_in_epoch, micro_batches, seed,
//                       train_examples, batch_size, accumulate_grad_batches, last_monitor,
//                       checksum: CRC-32 of the weights and both moments}
// Loading also verifies every zip member's CRC-32, and still reads megatune's older flat layout
// (megatune_checkpoint_version 1).
#ifndef MT_TRAIN_CHECKPOINT_H
#define MT_TRAIN_CHECKPOINT_H

#include <stdint.h>
#include "core/status.h"
#include "model/model.h"
#include "model/optim.h"

typedef struct {
    int64_t global_step;    // optimizer steps done
    int64_t epoch;          // current epoch (0-based)
    int64_t batch_in_epoch; // batches of `epoch` already consumed
    int64_t micro_batches;  // forward passes done (the dropout counter)
    int64_t seed;
    double last_monitor;    // last validation value of the monitored metric
    // what the data position means: a resumed run with other values cannot continue exactly
    int64_t train_examples, batch_size, accumulate;
    int64_t group_by_length; // the order's kind (model.train_ds.group_by_length); -1: not recorded (older file)
} mt_train_state;

// What the Lightning keys describe besides the model (all optional: zero / NULL).
typedef struct {
    const char *hparams_yaml;  // the model config as YAML (hyper_parameters['cfg'])
    double lr_now, base_lr;    // the schedule's lr at this step, and model.optim.lr
    double beta1, beta2, eps, weight_decay;
    int64_t warmup_steps, max_steps;
    double min_lr;
    const char *monitor, *dirpath, *best_model_path;
    double best_model_score;   // with best_model_path
} mt_train_ckpt_meta;

// Atomic (temp file, fsync, rename). meta may be NULL.
mt_status mt_train_ckpt_save(const char *path, mt_model *m, mt_optimizer *o, const mt_train_state *st,
                             const mt_train_ckpt_meta *meta) MT_WARN_UNUSED;
// Strict: every parameter must be present with its exact shape; the checksum must match.
// On failure the model and optimizer may be partly overwritten (callers abort the run).
mt_status mt_train_ckpt_load(const char *path, mt_model *m, mt_optimizer *o, mt_train_state *st) MT_WARN_UNUSED;

#endif
