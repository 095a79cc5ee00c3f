// From a finished config to the objects a run needs: task options, tokenizer (vocab file and
// casing from the pretrained-name preset or the config), datasets per split, and the model
// (architecture from the preset + model.language_model.config, head from the task).
// Shared by `megatune train`, `test`, `predict` and .nemo restore.
#ifndef MT_TRAIN_SESSION_H
#define MT_TRAIN_SESSION_H

#include <stdio.h>
#include "core/status.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "tasks/task.h"
#include "text/tokenizer.h"
#include "train/config.h"

typedef struct {
    mt_task_options topt;
    mt_tokenizer *tok;
    char vocab_path[4096];
    int lowercase;
    mt_model_config mcfg;
    mt_model *model;
    // Encoder config JSON text to use instead of reading model.language_model.config_file (a .nemo
    // member on restore); not owned, may be NULL.
    const char *config_json;
    // Tensor-parallel group the model is built for (NULL = one process); not owned.
    mt_comm *tp;
    // Two-head tasks (P&C, intent/slot): classes of the second head (mt_dataset_head2, or the
    // .nemo's weights), set before mt_session_build_model.
    int num_classes2;
    // Set before mt_session_build_model when a strict load will overwrite every weight next (a
    // .nemo restore, a resumed run's checkpoint): the random initialisation is skipped (weights stay
    // zero until the load).
    int weights_from_checkpoint;
    // Set before mt_session_build_model when a Megatron encoder checkpoint is loaded next
    // (mt_megatron_load): only the task head is initialised (mt_model_init_head_weights).
    int encoder_from_checkpoint;
} mt_session;

typedef enum { MT_SPLIT_TRAIN = 0, MT_SPLIT_VALIDATION = 1, MT_SPLIT_TEST = 2 } mt_split_kind;

mt_status mt_session_task_options(const mt_train_config *cfg, mt_task_options *o) MT_WARN_UNUSED;
// Resolves the vocab (model.tokenizer.vocab_file, else the preset's local file) and casing.
mt_status mt_session_open_tokenizer(const mt_train_config *cfg, mt_session *s) MT_WARN_UNUSED;
// The data path and NeMo split name of a split; *present = 0 when the config names no file.
mt_status mt_session_split_path(const mt_train_config *cfg, mt_split_kind which, char *path, size_t pcap,
                                char *split, size_t scap, int *present) MT_WARN_UNUSED;
// Loads a split (NULL in *out when the config names none). `label_source` as in mt_dataset_load.
mt_status mt_session_load_split(const mt_train_config *cfg, mt_session *s, mt_split_kind which,
                                const mt_dataset *label_source, mt_dataset **out) MT_WARN_UNUSED;
// Fills s->mcfg from the preset, model.language_model.config.* and the head (`head` and
// `num_classes` as mt_dataset_head gives them), creates the model and initialises its weights
// from trainer.seed (unless s->weights_from_checkpoint; the head alone with s->encoder_from_checkpoint).
// The kernel table for trainer.precision (NULL: the default fp32 table); says once what runs.
const mt_kernels *mt_session_precision_kernels(const char *precision);
mt_status mt_session_build_model(const mt_train_config *cfg, mt_session *s, mt_head_kind head,
                                 int num_classes) MT_WARN_UNUSED;
// Fails (naming the split, its file and the max_seq_length that fits) when a feature of `d` is
// longer than the model's max_position_embeddings: found before training, not at the first batch
// that holds such an example. mt_session_load_split checks this itself once a model exists.
mt_status mt_session_check_fits(const mt_train_config *cfg, const mt_session *s, mt_split_kind which,
                                const mt_dataset *d) MT_WARN_UNUSED;
void mt_session_free(mt_session *s);

// Evaluates `m` on `d` in order: val_loss = mean of the batch losses (as PTL's
// validation_epoch_end averages them), plus the task's metrics. `max_batches` < 0 = all.
// `report` (optional) receives the task's classification report.
typedef struct {
    double loss;
    int n_metrics;
    mt_metric_value metrics[16];
    int64_t batches;
    int64_t local_batches; // of `batches`, those this rank evaluated (mt_evaluate_dp)
} mt_eval_result;
// mt_evaluate, and for question answering also writes the prediction files into pred_dir (NULL: none).
mt_status mt_evaluate_ex(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                         const char *pred_dir, mt_eval_result *out) MT_WARN_UNUSED;
mt_status mt_evaluate(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                      mt_eval_result *out) MT_WARN_UNUSED;
// The same, sharded over the data-parallel group `dp` (NULL or size 1: mt_evaluate): batch b is
// evaluated by dp rank b % size; each round's losses and logits are all-gathered, and every rank
// feeds the metrics batch by batch in dataset order and sums the losses in that order, so the
// result equals one process's to the last bit. A failure on one rank (a forward error) is
// announced in the round's exchange and fails every rank, none is left waiting.
mt_status mt_evaluate_dp(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                         mt_comm *dp, mt_eval_result *out) MT_WARN_UNUSED;
// mt_evaluate_dp, and for question answering also the prediction files into pred_dir (NULL: none;
// give it on one rank only: each rank would write the same files).
mt_status mt_evaluate_dp_ex(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                            const char *pred_dir, mt_comm *dp, mt_eval_result *out) MT_WARN_UNUSED;

// Batches to use from `n_batches` under PTL's limit_*_batches (int = count, float = fraction).
int64_t mt_limit_batches(int64_t n_batches, const mt_cfg_num *limit);

#endif
