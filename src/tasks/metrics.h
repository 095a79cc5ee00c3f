// Metric primitives behind mt_metrics (task.h), exposed for tests and tools: NeMo's
// ClassificationReport, the GLUE metrics (Hugging Face's glue_compute_metrics, which NeMo's
// metrics_for_glue.py copies) and conlleval's chunk-level precision/recall/F1.
#ifndef MT_TASKS_METRICS_H
#define MT_TASKS_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include "core/status.h"

// NeMo ClassificationReport. Values are percentages as NeMo reports them. 0/0 is 0. NeMo adds
// METRIC_EPS=1e-5 to denominators; it is left out here (a relative effect below 1e-5/support).
// macro = sum over ALL classes / number of classes with support > 0 (NeMo's rule: a predicted
// class with no support adds 0 to the sum but does not count in the divisor).
typedef struct { double precision, recall, f1; } mt_prf;
typedef struct {
    int num_classes;
    int64_t *tp, *fp, *fn, *support;
    double *precision, *recall, *f1; // per class, %
    mt_prf micro, macro, weighted;    // %
    int64_t total;
} mt_class_report;

// pred/gold ids in [0,num_classes); gold < 0 entries are skipped.
mt_status mt_class_report_compute(const int32_t *pred, const int32_t *gold, size_t n, int num_classes,
                                  mt_class_report *r) MT_WARN_UNUSED;
void mt_class_report_free(mt_class_report *r);
// NeMo's table: label, precision, recall, f1, support; then micro/macro/weighted rows.
void mt_class_report_print(const mt_class_report *r, const char *const *names, FILE *out);

double mt_metric_accuracy(const int32_t *pred, const int32_t *gold, size_t n);           // fraction
double mt_metric_mcc(const int32_t *pred, const int32_t *gold, size_t n, int num_classes); // sklearn matthews_corrcoef
double mt_metric_f1_binary(const int32_t *pred, const int32_t *gold, size_t n);          // positive label 1, fraction
double mt_metric_pearson(const double *x, const double *y, size_t n);
double mt_metric_spearman(const double *x, const double *y, size_t n); // Pearson of average ranks (scipy)

// conlleval (the CoNLL-2000 perl script, default mode). One item per input line: gold and guessed
// tags ("B-PER", "I-LOC", "O"; the type is the text after the first '-' up to the next '-'),
// or boundary=1 for a sentence break (a blank line). A -DOCSTART- line is an ordinary token
// tagged O/O (conlleval counts it in the token accuracy).
typedef struct {
    int64_t found_correct, found_guessed, correct_chunks, correct_tags, tokens;
    double precision, recall, f1, accuracy; // %
} mt_conll_result;
void mt_conlleval(const char *const *gold, const char *const *guess, const uint8_t *boundary, size_t n,
                  mt_conll_result *r);

#endif
