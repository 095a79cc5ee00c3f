// Validation sharded over the data-parallel group. Each round, dp rank j evaluates batch
// round*size + j; the round's records (loss, logit count, logits) are all-gathered, padded to the
// longest, and every rank replays them in batch order: the metrics see the same logits in the
// same order as one process, and the loss sum is the same sequence of double additions. Logits
// travel rather than predictions so that every task's metric state (QA's n-best spans, NER's
// per-word labels, regression scores) is rebuilt by the one code path that one process uses.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "train/session.h"

// A record: [status, loss, count_hi, count_lo, logits...]. A count is split into two 24-bit
// halves so that float carries it exactly.
#define EVAL_HDR 4
#define EVAL_SPLIT ((size_t)1 << 24)

static void batch_indices(size_t n, int batch_size, int64_t b, size_t *idx, int *k) {
    *k = 0;
    for (size_t i = (size_t)b * (size_t)batch_size; i < n && *k < batch_size; i++) idx[(*k)++] = i;
}

mt_status mt_evaluate_dp(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                         mt_comm *dp, mt_eval_result *out) {
    return mt_evaluate_dp_ex(m, d, batch_size, max_batches, report, NULL, dp, out);
}

mt_status mt_evaluate_dp_ex(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                            const char *pred_dir, mt_comm *dp, mt_eval_result *out) {
    if (!dp || dp->size <= 1) return mt_evaluate_ex(m, d, batch_size, max_batches, report, pred_dir, out);
    memset(out, 0, sizeof *out);
    int64_t local = 0;
    const int R = dp->size, me = dp->rank;
    size_t n = mt_dataset_size(d);
    int64_t nb = (int64_t)((n + (size_t)batch_size - 1) / (size_t)batch_size);
    if (max_batches >= 0 && max_batches < nb) nb = max_batches;
    mt_metrics *met = NULL;
    MT_TRY(mt_metrics_create(d, &met));
    size_t *idx = mt_malloc((size_t)batch_size * sizeof *idx);
    float *counts = mt_malloc((size_t)R * 2 * sizeof *counts);
    float *rec = NULL, *all = NULL;
    size_t rec_cap = 0;
    mt_batch_buffer buf;
    memset(&buf, 0, sizeof buf);
    mt_status st = idx && counts ? MT_OK : MT_ERR_NOMEM;
    double sum = 0;
    char failed_msg[512] = "";
    for (int64_t round = 0; round * R < nb && st == MT_OK; round++) {
        int64_t b = round * R + me;
        int k = 0;
        float loss = 0, status = 0;
        size_t nl = 0;
        const float *logits = NULL;
        if (b < nb) {
            mt_batch batch;
            batch_indices(n, batch_size, b, idx, &k);
            mt_status s = mt_dataset_make_batch(d, idx, k, &buf, &batch);
            if (s == MT_OK) s = mt_model_forward(m, &batch, 0, 0, 0, &loss);
            if (s == MT_OK) logits = mt_model_logits(m, &nl);
            local++;
            if (s != MT_OK) {
                status = 1;
                nl = 0;
                snprintf(failed_msg, sizeof failed_msg, "%s", mt_last_error());
            }
        }
        // 1. every rank's logit count, to size the exchange
        float mine[2] = {(float)(nl / EVAL_SPLIT), (float)(nl % EVAL_SPLIT)};
        st = mt_all_gather(dp, mine, counts, 2);
        if (st != MT_OK) break;
        size_t most = 0;
        for (int j = 0; j < R; j++) {
            size_t c = (size_t)counts[2 * j] * EVAL_SPLIT + (size_t)counts[2 * j + 1];
            if (c > most) most = c;
        }
        size_t w = EVAL_HDR + most;
        if (w > rec_cap) {
            float *nr = mt_realloc(rec, w * sizeof *nr), *na = nr ? mt_realloc(all, w * (size_t)R * sizeof *na) : NULL;
            if (nr) rec = nr;
            if (na) all = na;
            if (!nr || !na) { st = MT_ERR_NOMEM; break; }
            rec_cap = w;
        }
        // 2. the records
        memset(rec, 0, w * sizeof *rec);
        rec[0] = status;
        rec[1] = loss;
        rec[2] = mine[0];
        rec[3] = mine[1];
        if (nl) memcpy(rec + EVAL_HDR, logits, nl * sizeof *rec);
        st = mt_all_gather(dp, rec, all, w);
        if (st != MT_OK) break;
        // 3. replay in batch order
        for (int j = 0; j < R && st == MT_OK; j++) {
            int64_t bj = round * R + j;
            if (bj >= nb) break;
            const float *r = all + (size_t)j * w;
            if (r[0] != 0) {
                st = failed_msg[0] && j == me
                         ? mt_fail(MT_ERR_IO, "%s", failed_msg)
                         : mt_fail(MT_ERR_IO, "validation failed on data-parallel rank %d (batch %lld): see its log "
                                   "(nemo_log_globalrank-*.txt)", j, (long long)bj);
                break;
            }
            mt_batch batch;
            batch_indices(n, batch_size, bj, idx, &k);
            st = mt_dataset_make_batch(d, idx, k, &buf, &batch);
            if (st != MT_OK) break;
            sum += r[1];
            st = mt_metrics_add(met, idx, k, &batch, r + EVAL_HDR);
        }
    }
    if (st == MT_OK) {
        out->batches = nb;
        out->local_batches = local;
        out->loss = nb > 0 ? sum / (double)nb : NAN;
        out->n_metrics = nb > 0 ? mt_metrics_compute(met, out->metrics, 16) : 0;
        // every rank holds the same metric state; the caller names a folder on one rank only
        if (pred_dir && nb > 0) {
            st = mt_metrics_write_squad(met, pred_dir, NULL);
            if (st == MT_OK) mt_info("SQuAD prediction files written to %s", pred_dir);
        }
        // the report after the files: a run that cannot write them prints no scores before failing
        if (st == MT_OK && report && nb > 0 && me == 0) mt_metrics_print_report(met, report);
    }
    mt_batch_buffer_free(&buf);
    free(idx);
    free(counts);
    free(rec);
    free(all);
    mt_metrics_free(met);
    return st;
}
