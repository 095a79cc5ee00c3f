// NeMo's experiment manager (nemo/utils/exp_manager.py, v1.0/v1.4): the log folder
// exp_dir/name/version (exp_dir/name with resume_if_exists; explicit_log_dir overrides),
// cmd-args.log, hparams.yaml, a log file per rank, metrics.csv, TensorBoard events, and the
// checkpoint folder with NeMo's names, save_top_k by the monitored metric, and -last.ckpt.
#ifndef MT_TRAIN_EXP_MANAGER_H
#define MT_TRAIN_EXP_MANAGER_H

#include <stdint.h>
#include <stdio.h>
#include "core/status.h"
#include "parallel/parallel.h"
#include "train/config.h"

typedef struct mt_exp_manager mt_exp_manager;

// Resolves and creates the folders, opens the per-rank log file (and routes mt_log into it),
// writes cmd-args.log and hparams.yaml, and finds the checkpoint to resume from
// (exp_manager.resume_if_exists, trainer.resume_from_checkpoint). On resume, loose files of the
// previous run move to log_dir/run_<k>/ as NeMo does, except metrics.csv, which continues.
mt_status mt_exp_create(const mt_train_config *cfg, int argc, char **argv, int tp_rank, int tp_size,
                        mt_exp_manager **out) MT_WARN_UNUSED;
// The same for one rank of a tensor x data parallel run: log_dir is global rank 0's (broadcast),
// the log file is nemo_log_globalrank-G_localrank-L.txt, checkpoints go to
// checkpoints/mp_rank_XX when tp_size > 1 and are written by data-parallel rank 0 only;
// cmd-args.log, hparams.yaml, metrics.csv and TensorBoard by global rank 0 only.
mt_status mt_exp_create_par(const mt_train_config *cfg, int argc, char **argv, const mt_parallel *par,
                            mt_exp_manager **out) MT_WARN_UNUSED;
void mt_exp_free(mt_exp_manager *e);
// Records a failure in the run's log file (the console shows it once, from the caller), so the
// log of a failed run says why it stopped.
void mt_exp_log_failure(mt_exp_manager *e, const char *message);

// After a setup failure (a bad config or data found before training began): removes the log folder
// when this run created it (nothing of value is in it yet) and the empty parents it created, so a
// config error leaves nothing behind. Returns 1 when it removed the folder. Closes the log files.
int mt_exp_discard(mt_exp_manager *e);
// The metrics of the validation a checkpoint follows, for the {name:fmt} fields of
// checkpoint_callback_params.filename ({val_loss}; a metric `f1` answers {f1} and {val_f1};
// {epoch} and {step} are built in).
void mt_exp_note_metrics(mt_exp_manager *e, int64_t step, double val_loss, const char *const *names,
                         const double *values, int n);
// checkpoint_callback_params.prefix + postfix: the .nemo's file name in the checkpoint folder.
const char *mt_exp_nemo_name(const mt_exp_manager *e);
// The last mt_exp_save_checkpoint saved a new best top-k checkpoint.
int mt_exp_new_best(const mt_exp_manager *e);

const char *mt_exp_log_dir(const mt_exp_manager *e);
const char *mt_exp_ckpt_dir(const mt_exp_manager *e);
const char *mt_exp_name(const mt_exp_manager *e);
// The checkpoint to resume from, or NULL for a fresh start.
const char *mt_exp_resume_path(const mt_exp_manager *e);
// The second newest *last.ckpt found for resume_if_exists (a kill left two), or NULL: the
// fallback when the ranks of a tensor-parallel job resume from different steps.
const char *mt_exp_resume_older(const mt_exp_manager *e);
// Training continues from `path` (the resume path or the older one): the other -last file is
// removed and `path` is the one the next save replaces.
void mt_exp_resumed_from(mt_exp_manager *e, const char *path);

// metrics.csv + TensorBoard. Columns: step, epoch, train_loss, lr, val_loss, then the task's
// metric tags as logged (NeMo's names: val_f1 for text classification, f1 for token
// classification; see the trainer). `resume_step` >= 0 keeps the rows of an
// existing metrics.csv up to that step (a resumed run continues the file); < 0 starts anew.
// n_metrics < 0: the names are unknown (no validation ran); an existing file's columns are kept.
mt_status mt_exp_metrics_begin(mt_exp_manager *e, const char *const *metric_names, int n_metrics,
                               int64_t resume_step) MT_WARN_UNUSED;
// One row. NaN values are written as empty cells and not sent to TensorBoard.
mt_status mt_exp_log_row(mt_exp_manager *e, int64_t step, int64_t epoch, double train_loss, double lr,
                         double val_loss, const double *metrics) MT_WARN_UNUSED;
// The run's open TensorBoard writer (global rank 0, after mt_exp_metrics_begin), or NULL.
struct mt_tb_writer *mt_exp_tensorboard(mt_exp_manager *e);

// A checkpoint writer: writes a complete checkpoint to `path` atomically.
typedef mt_status (*mt_ckpt_write_fn)(void *ctx, const char *path);

// Saves after a validation: the -last checkpoint (always, when save_last), and a top-k
// checkpoint when `monitor_value` ranks among the best save_top_k (mode min/max), deleting the
// one it displaces. Names: checkpoint_callback_params.filename rendered as Lightning does
// (default <name>--{<monitor>:.4f}-{epoch}: <name>--val_loss=0.3512-epoch=1), -last added.
// A kill at any moment leaves the previous checkpoints intact (temp file + fsync + rename).
// `rank` = 0 saves only the -last file (an interrupted run: the value names it but is not ranked).
mt_status mt_exp_save_checkpoint(mt_exp_manager *e, mt_ckpt_write_fn write, void *ctx, double monitor_value,
                                 int64_t epoch, int rank) MT_WARN_UNUSED;
// Path of the best top-k checkpoint so far (NULL if none).
const char *mt_exp_best_checkpoint(const mt_exp_manager *e);
// Path of the current -last checkpoint (NULL if none).
const char *mt_exp_last_checkpoint(const mt_exp_manager *e);

// NeMo's checkpoint file name for (monitor value, epoch): "QA--val_loss=0.3512-epoch=1".
void mt_exp_checkpoint_stem(const char *name, const char *monitor, double value, int64_t epoch, char *buf,
                            size_t cap);

// mkdir -p.
mt_status mt_mkdirs(const char *path) MT_WARN_UNUSED;
// Write `len` bytes to `path` atomically (path.tmp, fsync, rename, fsync the folder).
mt_status mt_write_file_atomic(const char *path, const void *data, size_t len) MT_WARN_UNUSED;

#endif
