// .nemo files (NeMo v1.x): a gzip-compressed tar with members
//   ./model_config.yaml                      the model section of the config, target: <NeMo class>
//   ./model_weights.ckpt                     torch.save(state_dict) with NeMo's key names
//   ./tokenizer.vocab_file                   the WordPiece vocab (tokenizer.vocab_file: nemo:<name>)
//   ./tokenizer_vocab_dict.json              the same as {token: id} (NeMo's Megatron tokenizer dump)
//   ./megatron_checkpoint_version.json       {"checkpoint_version": 3.0}: the QKV row layout
//   ./<uuid>_label_ids.csv                   the label map, when the task has one
//   ./<uuid>_<pretrained>_encoder_config.json  Megatron encoder config (sorted keys, indent 2)
// Restoring reads members into memory: nothing from the archive is ever written under a name
// the archive chose; absolute paths, '..' components, links and devices are rejected.
#ifndef MT_TRAIN_NEMO_H
#define MT_TRAIN_NEMO_H

#include "core/status.h"
#include "tasks/task.h"
#include "parallel/parallel.h"
#include "train/config.h"
#include "train/session.h"

// Writes `path` atomically from the finished training config, the session's tokenizer vocab
// and model, and `labels` (the training dataset, for the label map; may be NULL).
mt_status mt_nemo_save(const char *path, const mt_train_config *cfg, const mt_session *s,
                       const mt_dataset *labels) MT_WARN_UNUSED;

// The same for a tensor-parallel model (NeMo's model-parallel .nemo): members
// mp_rank_XX/model_weights.ckpt from weight_files[XX] (each rank's mt_state_dict_save_model), no
// top-level weights; model_config.yaml records tensor_model_parallel_size = tp.
mt_status mt_nemo_save_tp(const char *path, const mt_train_config *cfg, const mt_session *s,
                          const mt_dataset *labels, const char *const *weight_files, int tp) MT_WARN_UNUSED;

typedef struct {
    mt_train_config cfg;   // model.* from model_config.yaml, other sections at defaults
    mt_session s;          // tokenizer and model holding the .nemo's weights
    char tmpdir[256];      // private folder (label map, weights file) removed by mt_nemo_free
    // The process groups: under mpirun -np N a TP=N .nemo is restored one shard per process
    // (mp_rank_XX/model_weights.ckpt) into a tensor-parallel model; par->world_rank == 0 is the
    // process that should print and write outputs. Groups of one otherwise.
    mt_parallel *par;
    double checkpoint_version; // megatron_checkpoint_version.json's, -1 when absent
    int archive_tp;            // mp_rank_XX shards in the archive (1: a top-level model_weights.ckpt)
} mt_nemo;

#define MT_NEMO_VERSION_MEMBER "megatron_checkpoint_version.json"
// The longest .nemo path a save takes, with the ".tmp.d" of its staging folder (trainer.c checks
// model.nemo_path against it before training).
#define MT_NEMO_PATH_CAP 4200

// Restores a .nemo. `overrides` (key=value, may be NULL) are applied to the restored config
// before it is finished (e.g. model.test_ds.file_path=...).
mt_status mt_nemo_restore(const char *path, char **overrides, int n_overrides, mt_nemo **out) MT_WARN_UNUSED;
void mt_nemo_free(mt_nemo *n);

// Loads every weight of a .nemo (heads included) into `m` (init_from_nemo_model); strict.
mt_status mt_nemo_load_weights(const char *path, mt_model *m) MT_WARN_UNUSED;

// pretrained_model=X.nemo (NeMo's restore_from before fine-tuning): rewrites cfg's encoder,
// tokenizer, head and label sections from the .nemo's model_config.yaml, its vocab and label map
// extracted into a private folder `tmpdir` (remove with mt_nemo_adopt_cleanup after the run);
// `labels` receives the label map's path ("" when the .nemo has none). The weights are then
// loaded with mt_nemo_load_weights.
mt_status mt_nemo_adopt_model(const char *path, mt_train_config *cfg, char *tmpdir, size_t cap, char *labels,
                              size_t lcap) MT_WARN_UNUSED;
void mt_nemo_adopt_cleanup(char *tmpdir);

#endif
