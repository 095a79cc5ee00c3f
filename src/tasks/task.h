// The contract between task code (data files -> features, metrics, predictions) and the
// trainer. Task code knows the tokenizer and the mt_batch layout; it knows nothing of kernels,
// optimizers or checkpoints. The trainer knows nothing of file formats.
#ifndef MT_TASKS_TASK_H
#define MT_TASKS_TASK_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "model/config.h"
#include "model/model.h"
#include "text/tokenizer.h"

typedef enum {
    MT_TASK_TEXT_CLASSIFICATION = 0, // NeMo text_classification: "text<TAB>label"
    MT_TASK_GLUE = 1,                // NeMo glue_benchmark: GLUE TSVs, task_name selects the processor
    MT_TASK_TOKEN_CLASSIFICATION = 2, // NeMo token_classification: text_*.txt + labels_*.txt
    MT_TASK_QUESTION_ANSWERING = 3,  // SQuAD v1.1 / v2.0 JSON (src/tasks/squad.c)
    // NeMo punctuation_capitalization: text_*.txt + labels_*.txt with two-character labels
    // (punctuation after the word, then U/O capitalisation); two token heads
    MT_TASK_PUNCT_CAPIT = 4,
    // NeMo intent_slot_classification: <prefix>.tsv ("sentence<TAB>label" + header),
    // <prefix>_slots.tsv, dict.intents.csv, dict.slots.csv; intent head on [CLS] + slot head
    MT_TASK_INTENT_SLOT = 5,
} mt_task_kind;

// Task options, filled by the trainer from NeMo's config keys (model.dataset.*, model.*).
typedef struct {
    mt_task_kind kind;
    char glue_task[16];        // cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli
    int max_seq_length;        // model.dataset.max_seq_length
    int num_classes;           // model.dataset.num_classes (text classification); derived elsewhere
    char pad_label[32];        // token classification: model.dataset.pad_label ("O")
    int ignore_extra_tokens;   // token classification
    int ignore_start_end;      // token classification
    int class_balancing;       // 1 = weighted_loss
    char label_ids_file[1024]; // token classification: label_ids.csv to use (restore / predict); "" = build from data
    // question answering (model.dataset.*, NeMo's defaults in mt_task_options_default)
    int version_2_with_negative;
    int doc_stride, max_query_length, max_answer_length, n_best_size;
    double null_score_diff_threshold;
    int do_lower_case; // get_final_text only; token casing comes from the tokenizer
    int ner_all_words;         // predict: every word with its label (else NeMo's add_predictions format)
    // Two-head tasks: P&C punct (label_ids_file) and capit (label_ids_file2) maps, written as
    // punct_label_ids.csv / capit_label_ids.csv; intent/slot: intent and slot maps (dict.intents.csv,
    // dict.slots.csv, or the .nemo's copies). "" = from the data.
    char label_ids_file2[1024];
    int slot_pad_label;        // intent/slot: model.pad_label (-1 = the last slot, NeMo's rule)
} mt_task_options;

void mt_task_options_default(mt_task_options *o, mt_task_kind kind);

typedef struct mt_dataset mt_dataset;

// Loads one split. `path` is the data file (text classification: the .tsv; GLUE: the task's
// folder or file; token classification: the data_dir) and `split` the NeMo split name
// ("train", "dev", "test"). Errors name the file and line. For token classification the label
// map is built from the train split (pad_label = 0, others sorted) unless label_ids_file is set;
// pass the train dataset as `label_source` when loading dev/test so they share its map.
mt_status mt_dataset_load(const mt_task_options *o, mt_tokenizer *tok, const char *path, const char *split,
                          const mt_dataset *label_source, mt_dataset **out) MT_WARN_UNUSED;
void mt_dataset_free(mt_dataset *d);
size_t mt_dataset_size(const mt_dataset *d);          // number of features (windows)
// Longest feature in tokens. Text classification features can have max_seq_length+1 tokens
// (NeMo's off-by-one); check this against max_position_embeddings before training.
int mt_dataset_max_len(const mt_dataset *d);
// Tokens of feature i before padding (what a batch pads to the longest of); 0 when out of range.
int mt_dataset_feature_len(const mt_dataset *d, size_t i);
// Keeps only the first `n` source examples (lines / sentences) and their features, as NeMo's
// num_samples does; n >= the current count changes nothing.
void mt_dataset_keep_examples(mt_dataset *d, size_t n);
int mt_dataset_num_classes(const mt_dataset *d);
// Label names in id order (token classification: the label map; GLUE: the processor's labels).
int mt_dataset_num_labels(const mt_dataset *d);
const char *mt_dataset_label_name(const mt_dataset *d, int id);
// Writes the label map as NeMo's label_ids.csv (one label per line, line index = id).
mt_status mt_dataset_write_label_ids(const mt_dataset *d, const char *path) MT_WARN_UNUSED;
// Class weights for class_balancing=weighted_loss (NeMo: total/(n_classes*freq), missing 1); NULL if off.
const float *mt_dataset_class_weights(const mt_dataset *d);
// Which head the task needs and its size; the trainer copies this into the model config.
void mt_dataset_head(const mt_dataset *d, mt_head_kind *head, int *num_classes);
// The second head of two-head tasks (P&C capitalisation, intent/slot slots): MT_HEAD_NONE otherwise.
void mt_dataset_head2(const mt_dataset *d, mt_head_kind *head, int *num_classes);
// The second label map (capit / slot names), as mt_dataset_num_labels / label_name.
int mt_dataset_num_labels2(const mt_dataset *d);
const char *mt_dataset_label_name2(const mt_dataset *d, int id);

// A batch built from feature indices with dynamic padding to the longest feature.
// The buffer owns the arrays that `batch` points into; reuse it across calls.
typedef struct {
    int32_t *input_ids, *token_type_ids, *attention_mask, *labels;
    float *loss_mask, *targets;
    int32_t *start_positions, *end_positions;
    int32_t *labels2; // second head (B,T)
    size_t cap_tokens, cap_rows;
} mt_batch_buffer;
mt_status mt_dataset_make_batch(const mt_dataset *d, const size_t *indices, int n, mt_batch_buffer *buf,
                                mt_batch *batch) MT_WARN_UNUSED;
void mt_batch_buffer_free(mt_batch_buffer *buf);

// Metrics: feed each evaluated batch with the model's logits, then compute.
typedef struct mt_metrics mt_metrics;
typedef struct {
    char name[48]; // NeMo's logged names without the val_/test_ prefix: "precision", "f1", "mcc", "acc"...
    double value;
} mt_metric_value;
mt_status mt_metrics_create(const mt_dataset *d, mt_metrics **out) MT_WARN_UNUSED;
void mt_metrics_free(mt_metrics *m);
// `logits` as mt_model_logits returns them for `batch` (built from `indices`).
mt_status mt_metrics_add(mt_metrics *m, const size_t *indices, int n, const mt_batch *batch,
                         const float *logits) MT_WARN_UNUSED;
// Fills up to `cap` values; returns the count. The first value is the one NeMo monitors besides val_loss.
int mt_metrics_compute(mt_metrics *m, mt_metric_value *out, int cap);
// Question answering: writes DIR/predictions.json, nbest_predictions.json and (v2) null_odds.json
// (BERT's formats) for the features added so far; DIR NULL = only the scores.
struct mt_squad_scores_s;
mt_status mt_metrics_write_squad(mt_metrics *m, const char *dir, struct mt_squad_scores_s *scores) MT_WARN_UNUSED;
// Human-readable report (NeMo's classification report table, per-task extras).
void mt_metrics_print_report(mt_metrics *m, FILE *out);

// Prediction on raw input lines, one output line per input line (a blank input line gives a blank
// output line):
//   text classification: "text" (a trailing "<TAB>int" label is ignored) -> "label<TAB>probability"
//   GLUE: "sentence" or "sentence_a<TAB>sentence_b" -> "label<TAB>probability"; STS-B "score"
//   NER: one sentence per line, words separated by spaces -> "word[LABEL] word[LABEL] ..."; long
//        sentences are windowed (see src/tasks/ner.c) so every word gets exactly one label.
// The probability is the softmax of the winning class. `label_source` (or o->label_ids_file for
// NER, o->num_classes for text classification) gives the label names.
typedef mt_status (*mt_forward_fn)(void *ctx, const mt_batch *batch, const float **logits);
mt_status mt_task_predict(const mt_task_options *o, mt_tokenizer *tok, const mt_dataset *label_source,
                          FILE *in, const char *in_name, FILE *out, int batch_size, mt_forward_fn forward,
                          void *forward_ctx) MT_WARN_UNUSED;

#endif
