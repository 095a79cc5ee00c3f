// libFuzzer target: arbitrary bytes as SQuAD JSON. The first byte picks the path (and, bit 2, v2.0):
//   0: a train split (answers checked against the context, mismatches skipped)
//   1: a dev split, then post-processing with deterministic logits and all three prediction files
//   2: `megatune eval-squad` with the bytes as predictions.json against a fixed v2.0 data file
//   3: the same with the bytes as null_odds.json
// Each must give a dataset / files / scores or one clear error, never a crash, a leak or a partial
// file presented as good.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tasks/squad.h"
#include "tasks/task.h"
#include "fuzz_task_util.h"
#include "fuzz_env.h"

static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nwho\nwrote\nit\nbook\n##s\n,\n.\nparis\n";
static const char DATA_V2[] =
    "{\"version\": \"v2.0\", \"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"the book was written in paris .\","
    " \"qas\": [{\"id\": \"q1\", \"question\": \"who wrote it\", \"is_impossible\": false,"
    " \"answers\": [{\"text\": \"paris\", \"answer_start\": 24}]},"
    " {\"id\": \"q2\", \"question\": \"the books\", \"is_impossible\": true, \"answers\": []}]}]}]}";
static const char PRED[] = "{\"q1\": \"paris\", \"q2\": \"\"}";

// Whether a temporary file of the output `path` (path.tmp.XXXXXX) is left in its folder.
static int temp_left(const char *path) {
    const char *slash = strrchr(path, '/');
    char folder[128], prefix[128];
    snprintf(folder, sizeof folder, "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof prefix, "%s.tmp.", slash + 1);
    DIR *h = opendir(folder);
    if (!h) abort();
    int left = 0;
    for (struct dirent *e; (e = readdir(h));)
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            fprintf(stderr, "fuzz_squad: %s/%s was left behind\n", folder, e->d_name);
            left = 1;
        }
    closedir(h);
    return left;
}

// Batches every feature (up to a bound) and post-processes logits that depend only on the position.
static void post_process(const mt_dataset *d, const char *pred, const char *nbest, const char *odds) {
    size_t n = mt_dataset_size(d);
    if (n > 256) n = 256;
    mt_squad_results *r = NULL;
    if (mt_squad_results_create(d, &r) != MT_OK) abort();
    mt_batch_buffer buf = {0};
    mt_batch b;
    size_t idx[4];
    float *logits = NULL;
    for (size_t start = 0; start < n; start += 4) {
        int k = 0;
        for (; k < 4 && start + (size_t)k < n; k++) idx[k] = start + (size_t)k;
        if (mt_dataset_make_batch(d, idx, k, &buf, &b) != MT_OK) abort();
        float *l = realloc(logits, (size_t)b.B * (size_t)b.T * 2 * sizeof *l);
        if (!l) abort();
        logits = l;
        for (size_t i = 0; i < (size_t)b.B * (size_t)b.T * 2; i++) logits[i] = (float)((i * 7919u) % 13u) - 6.0f;
        if (mt_squad_results_add(r, idx, k, b.T, logits) != MT_OK) abort();
    }
    mt_squad_scores sc;
    // none of the three exists before (an eval input leaves a predictions.json behind)
    unlink(pred), unlink(nbest), unlink(odds);
    mt_status s = mt_squad_write_predictions(d, mt_squad_vocab(d), r, pred, nbest, odds, &sc);
    // a failed write must not leave any of its files under the final name; whatever the outcome,
    // no temporary file beside them (<name>.tmp.XXXXXX, tasks/outfile.c)
    const char *outs[] = {pred, nbest, odds};
    for (int i = 0; i < 3; i++) {
        if (s != MT_OK && access(outs[i], F_OK) == 0) {
            fprintf(stderr, "fuzz_squad: a failed write left %s\n", outs[i]);
            abort();
        }
        if (temp_left(outs[i])) abort();
    }
    unlink(pred), unlink(nbest), unlink(odds);
    free(logits);
    mt_batch_buffer_free(&buf);
    mt_squad_results_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) fuzz_setup("squad", VOCAB, sizeof VOCAB - 1);
    if (size < 1) return 0;
    unsigned sel = data[0] % 4, v2 = (data[0] / 4) & 1;
    data++, size--;
    char in[128], ref[128], pred[128], nbest[128], odds[128];
    snprintf(in, sizeof in, "%s/in.json", dir);
    snprintf(ref, sizeof ref, "%s/dev-v2.0.json", dir);
    snprintf(pred, sizeof pred, "%s/predictions.json", dir);
    snprintf(nbest, sizeof nbest, "%s/nbest_predictions.json", dir);
    snprintf(odds, sizeof odds, "%s/null_odds.json", dir);
    write_file(in, data, size);
    if (sel >= 2) {
        write_file(ref, DATA_V2, sizeof DATA_V2 - 1);
        FILE *out = fopen("/dev/null", "w");
        if (!out) abort();
        if (sel == 2) {
            (void)mt_squad_eval_files(ref, in, NULL, out);
        } else {
            write_file(pred, PRED, sizeof PRED - 1);
            (void)mt_squad_eval_files(ref, pred, in, out);
        }
        fclose(out);
        return 0;
    }
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_QUESTION_ANSWERING);
    o.max_seq_length = 16; // small windows: many features, the stride and max-context paths
    o.max_query_length = 4;
    o.doc_stride = 3;
    o.n_best_size = 3;
    o.max_answer_length = 4;
    o.version_2_with_negative = (int)v2;
    mt_dataset *d = NULL;
    mt_status s = mt_dataset_load(&o, tok, in, sel == 0 ? "train" : "dev", NULL, &d);
    if (s == MT_OK) {
        if (!d) abort();
        if (sel == 1) post_process(d, pred, nbest, odds);
        mt_dataset_free(d);
    } else if (d) {
        abort(); // a failed load must not hand back a dataset
    }
    return 0;
}
