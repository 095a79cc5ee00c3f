// The training loop: data order, gradient accumulation, clipping, the NeMo schedule, validation,
// logging, checkpoints, resume, SIGINT/SIGTERM, and the final .nemo.
#ifndef MT_TRAIN_TRAINER_H
#define MT_TRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "train/config.h"

typedef struct {
    char log_dir[4096];
    char ckpt_dir[4096];
    char nemo_path[4096];   // "" when none was written
    int64_t global_step;
    int interrupted;        // signal number that stopped the run (0 = none)
    int world_rank, world_size; // this process in an mpirun job (0, 1 otherwise)
    int agreed_failure;     // every rank failed together with the same message (no MPI_Abort needed)
    int tested;             // model.test_ds was evaluated (after training, or instead of it with do_training=false)
    int tested_predictions; // ... and predictions.json etc. went to log_dir (QA)
} mt_train_result;

// NeMo's compute_max_steps (v1.0): optimizer steps of `max_epochs` epochs.
int64_t mt_compute_max_steps(int64_t max_epochs, int64_t accumulate, const mt_cfg_num *limit_train_batches,
                             int64_t num_samples, int64_t batch_size, int drop_last);

// The order of `n` examples in `epoch`: identity, or a Fisher-Yates shuffle driven by the
// counter-based RNG at (seed, epoch), so any epoch's order can be recomputed on resume.
void mt_epoch_order(size_t *order, size_t n, uint64_t seed, int64_t epoch, int shuffle);

// Hugging Face's group_by_length (transformers' LengthGroupedSampler), on the order above: the
// epoch's order (shuffled or not, as mt_epoch_order) is cut into megabatches of
// min(n / (4 * batch), 50) batches (at least one), each sorted by len[] descending (ties keep the
// shuffled order, as Python's stable sort), and the longest example overall is swapped to the
// front so that the largest batch comes first. `batch` is the global batch (per-rank batch x
// data-parallel size): ranks take every R-th example of this order, so each global batch is a
// run of similar lengths. A pure function of (len, seed, epoch), like mt_epoch_order.
mt_status mt_length_grouped_order(size_t *order, const int *len, size_t n, size_t batch, uint64_t seed,
                                  int64_t epoch, int shuffle) MT_WARN_UNUSED;

// Runs `megatune train` for a finished config. argv is recorded in cmd-args.log.
mt_status mt_train_run(mt_train_config *cfg, int argc, char **argv, mt_train_result *res) MT_WARN_UNUSED;

#endif
