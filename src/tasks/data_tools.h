// Data converters behind `megatune data`: CoNLL/IOB -> NeMo token-classification files, and
// ChemProt (string labels) -> NeMo text-classification files (integer labels).
#ifndef MT_TASKS_DATA_TOOLS_H
#define MT_TASKS_DATA_TOOLS_H

#include <stddef.h>
#include "core/status.h"

// Reads a CoNLL/IOB file (one "word ... label" line per token: the first field is the word, the
// last the label; blank lines end sentences; -DOCSTART- lines are dropped) and writes
// out_dir/text_<split>.txt (words joined by single spaces, one sentence per line) and
// out_dir/labels_<split>.txt (one label per word), as NeMo's import_from_iob_format.py does.
// `split` NULL derives it from the file name (see mt_data_iob_split_name).
mt_status mt_data_import_iob(const char *in_path, const char *out_dir, const char *split, size_t *n_sentences,
                             size_t *n_words) MT_WARN_UNUSED;
// "eng.train" -> "train", "eng.testa" -> "dev", "eng.testb" -> "test", "devel.tsv" -> "dev",
// otherwise the base name without its extension ("train.txt" -> "train").
void mt_data_iob_split_name(const char *path, char *out, size_t cap);

// ChemProt "sentence<TAB>label" with string labels (CPR:3 ... False) -> "sentence<TAB>id" with a
// "sentence\tlabel" header. label_map: a "label<TAB>id" file; when it exists it is used (a label
// it lacks is an error), otherwise ids are given in first-seen order (NeMo's import_datasets.py
// order over the train file) and written to it. NULL: first-seen order, not saved.
mt_status mt_data_import_chemprot(const char *in_path, const char *out_path, const char *label_map, size_t *n_examples,
                                  int *n_labels) MT_WARN_UNUSED;

// Raw text (one or more sentences per line) -> out_dir/text_<name> + out_dir/labels_<name>
// (<name> = the input's file name) in NeMo's punctuation/capitalisation format, by the rules of
// NeMo's prepare_data_for_punctuation_capitalization.py (see src/tasks/data_import_pnc.c).
mt_status mt_data_import_pnc(const char *in_path, const char *out_dir, size_t *n_lines, size_t *n_words) MT_WARN_UNUSED;
// The ATIS release NeMo's import_datasets.py reads (Microsoft CNTK files: atis.dict.*.csv,
// atis.<train|test>.{query,intent,slots}.csv with BOS/EOS ids) -> NeMo's intent/slot files in
// out_dir (train.tsv, train_slots.tsv, test.tsv, test_slots.tsv, dict.intents.csv, dict.slots.csv).
mt_status mt_data_import_atis(const char *in_dir, const char *out_dir, int lower, size_t *n_train,
                              size_t *n_test) MT_WARN_UNUSED;

#endif
