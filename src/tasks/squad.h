// SQuAD v1.1 / v2.0: JSON reading, BERT's convert_examples_to_features, and the span
// post-processing (write_predictions) behind the trainer's QA metrics and prediction files.
//
// Features follow Google BERT's run_squad.py (which NeMo's qa_squad_processing.py keeps):
//   - the context is split into words on BERT's whitespace (space, \t, \r, \n, U+202F), each
//     character mapped to the word it belongs to (whitespace to the word before it);
//   - each word is WordPiece'd (the project tokenizer on the whole context, tokens assigned to
//     words by byte offset; equal to tokenizing word by word since no token crosses whitespace);
//   - the question is tokenized and cut to max_query_length pieces;
//   - windows of max_seq_length - len(q) - 3 doc pieces start at 0 and move by
//     min(window length, doc_stride) until one reaches the end;
//   - [CLS] q [SEP] doc [SEP], segment ids 0 then 1; the max-context flag of a doc piece is set in
//     the window where min(left, right) context + 0.01 * window length is largest (first wins);
//   - answers: positions from answers[0] through _improve_answer_span; an answer outside the
//     window, or an impossible question (v2), is position 0 ([CLS]).
// Labelled splits all get positions (val_loss uses answers[0]); only the "train" split skips an
// example whose answer text is not found in the context words (BERT's "Could not find answer"),
// counted in one warning.
#ifndef MT_TASKS_SQUAD_H
#define MT_TASKS_SQUAD_H

#include <stdio.h>
#include "tasks/task.h"

typedef struct mt_squad mt_squad;

// Reads `path` into `d` (a dataset set up for MT_TASK_QUESTION_ANSWERING). `training` = the train
// split (answer-text mismatch skipped); `labelled` = 0 for prediction input (answers optional).
mt_status mt_squad_load(mt_dataset *d, mt_tokenizer *tok, const char *path, int training, int labelled) MT_WARN_UNUSED;
void mt_squad_free(mt_squad *q);
// The vocab of the tokenizer the dataset was built with (piece strings for post-processing).
const mt_vocab *mt_squad_vocab(const mt_dataset *d);

// Feature-level facts for tests and post-processing.
int mt_squad_feature_start(const mt_dataset *d, size_t f);
int mt_squad_feature_end(const mt_dataset *d, size_t f);
// Writes one line per feature: qid, window index, ids, segment ids, start, end, max-context flags,
// token->word map (tab-separated fields, space-separated lists). The parity test's format.
mt_status mt_squad_dump_features(const mt_dataset *d, FILE *out) MT_WARN_UNUSED;

// ---- post-processing and scoring --------------------------------------------------------------
// Collects start/end logits per feature (feed every feature once; order free).
typedef struct mt_squad_results mt_squad_results;
mt_status mt_squad_results_create(const mt_dataset *d, mt_squad_results **out) MT_WARN_UNUSED;
void mt_squad_results_free(mt_squad_results *r);
// logits (B,T,2) as the QA head returns them for a batch built from `indices`.
mt_status mt_squad_results_add(mt_squad_results *r, const size_t *indices, int n, int T, const float *logits) MT_WARN_UNUSED;
// Reads "qid<TAB>feature<TAB>start logits<TAB>end logits" lines (the dump format) for tests.
mt_status mt_squad_results_read(mt_squad_results *r, const char *path) MT_WARN_UNUSED;

// BERT's write_predictions. Any of the paths may be NULL (not written); null_odds only for v2.
// Scores (v1.1 exact_match/f1; v2 exact/f1/HasAns/NoAns/best_*) of the predictions go to `scores`
// when not NULL, computed as the official scripts do.
typedef struct mt_squad_scores_s {
    int version2;
    double exact, f1;             // v1.1 exact_match / f1 and v2 exact / f1 (percent)
    double has_exact, has_f1, no_exact, no_f1;
    int total, has_total, no_total;
    double best_exact, best_f1; // NeMo's logged values: find_all_best_thresh with null odds all 0
} mt_squad_scores;
// `vocab` gives the piece strings (BERT's feature.tokens).
mt_status mt_squad_write_predictions(const mt_dataset *d, const mt_vocab *vocab, const mt_squad_results *r,
                                     const char *predictions_json, const char *nbest_json, const char *null_odds_json,
                                     mt_squad_scores *scores) MT_WARN_UNUSED;
// Python's repr(float) (shortest round-trip digits).
void mt_squad_fmt_double(char *out, size_t cap, double v);

// `megatune eval-squad`: the official evaluate-v1.1.py / evaluate-v2.0.py output (one JSON line).
mt_status mt_squad_eval_files(const char *data_json, const char *pred_json, const char *na_prob_json,
                              FILE *out) MT_WARN_UNUSED;

#endif
