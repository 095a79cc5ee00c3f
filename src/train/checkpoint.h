// Training checkpoints (.ckpt): everything a resumed run needs to continue bit for bit —
// weights, Adam moments and step count, schedule position, seed, and the data-order position
// (epoch, batch index in the epoch, micro-batch counter for dropout). Stored as a flat torch zip
// (ckpt/torchfile.h's mt_torch_save), so torch.load reads it too:
//   state_dict.<NeMo name>                    f32, the parameter
//   optimizer_states.exp_avg.<NeMo name>      f32
//   optimizer_states.exp_avg_sq.<NeMo name>   f32
//   optimizer_states.step, global_step, epoch, batch_in_epoch, micro_batches, seed,
//   train_examples, batch_size, accumulate_grad_batches,
//   lr_scheduler.last_epoch, megatune_checkpoint_version   0-d int64
//   last_monitor                              0-d float64 (NaN before the first validation)
//   checksum                                  0-d int64: CRC-32 of every float tensor above
// The format lives behind this one save/load pair.
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
} mt_train_state;

// Atomic (temp file, fsync, rename).
mt_status mt_train_ckpt_save(const char *path, mt_model *m, mt_optimizer *o, const mt_train_state *st) MT_WARN_UNUSED;
// Strict: every parameter must be present with its exact shape; the checksum must match.
// On failure the model and optimizer may be partly overwritten (callers abort the run).
mt_status mt_train_ckpt_load(const char *path, mt_model *m, mt_optimizer *o, mt_train_state *st) MT_WARN_UNUSED;

#endif
