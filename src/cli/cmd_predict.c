// megatune predict [--format nemo|all-words] MODEL.nemo INPUT [OUTPUT] [key=value ...]
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "cli/commands.h"
#include "parallel/parallel.h"
#include "tasks/outfile.h"
#include "tasks/squad.h"
#include "tasks/task_internal.h"
#include "train/nemo.h"

static void predict_usage(FILE *out) {
    fprintf(out,
            "usage: megatune predict [--format nemo|all-words] MODEL.nemo INPUT [OUTPUT] [key=value ...]\n\n"
            "Runs a restored .nemo on INPUT ('-' = stdin) and writes one line per input line to OUTPUT\n"
            "(default or '-': stdout): text classification / GLUE 'label<TAB>probability'; token\n"
            "classification NeMo's add_predictions line (\"John[B-PER] lives in Paris[B-LOC].\": O words untagged,\n"
            "punctuation after the tag; --format all-words: every word with its label). Input lines are in the training format\n"
            "with or without the label (NER: one sentence per line). Punctuation/capitalization: lower-cased\n"
            "words in, the text with capitals and , . ? restored out; intent/slot: a query in,\n"
            "'intent<TAB>slot slot ...' (one slot per word) out. An OUTPUT file appears only when every\n"            "line was predicted (written beside it, then renamed); a failure leaves the old file as it was.\n\n"
            "examples:\n"
            "Question answering: INPUT is a SQuAD .json (answers not needed) and OUTPUT a folder (default: the\n"
            ".nemo's) that receives predictions.json, nbest_predictions.json and, v2, null_odds.json.\n\n"
            "  megatune predict model.nemo sentences.txt predictions.tsv\n"
            "  megatune predict squad.nemo questions.json out/\n"
            "  echo 'a great movie' | megatune predict model.nemo -\n");
}

static mt_status forward(void *ctx, const mt_batch *batch, const float **logits) {
    mt_model *m = ctx;
    MT_TRY(mt_model_forward(m, batch, 0, 0, 0, NULL));
    size_t n;
    *logits = mt_model_logits(m, &n);
    return MT_OK;
}

// SQuAD .json in, BERT's prediction files out (every rank computes, global rank 0 writes).
static mt_status predict_squad(mt_nemo *n, const char *in, const char *dir, int rank0) {
    mt_dataset *d = NULL;
    mt_metrics *met = NULL;
    MT_TRY(mt_task_setup_dataset(&n->s.topt, n->s.tok, NULL, &d));
    mt_status s = mt_squad_load(d, n->s.tok, in, 0, 0);
    if (!s) s = mt_metrics_create(d, &met);
    int bs = n->cfg.model.test_ds.batch_size > 0 ? (int)n->cfg.model.test_ds.batch_size : 24;
    size_t *idx = mt_malloc((size_t)bs * sizeof *idx);
    mt_batch_buffer buf = {0};
    if (!s && !idx) s = MT_ERR_NOMEM;
    size_t N = s ? 0 : mt_dataset_size(d);
    for (size_t i = 0; i < N && !s; i += (size_t)bs) {
        int k = 0;
        for (size_t j = i; j < N && k < bs; j++) idx[k++] = j;
        mt_batch batch;
        const float *logits;
        s = mt_dataset_make_batch(d, idx, k, &buf, &batch);
        if (!s) s = forward(n->s.model, &batch, &logits);
        if (!s) s = mt_metrics_add(met, idx, k, &batch, logits);
    }
    if (!s && rank0) s = mt_metrics_write_squad(met, dir, NULL);
    if (!s && rank0) fprintf(stderr, "megatune: %zu questions -> %s/predictions.json\n", d->n_examples, dir);
    mt_batch_buffer_free(&buf);
    free(idx);
    mt_metrics_free(met);
    mt_dataset_free(d);
    return s;
}

int mt_cmd_predict(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            predict_usage(stdout);
            return 0;
        }
    char *pos[3];
    int npos = 0;
    char *ovs[256];
    int nov = 0;
    int all_words = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format")) {
            if (i + 1 >= argc || (strcmp(argv[i + 1], "all-words") && strcmp(argv[i + 1], "nemo"))) {
                fprintf(stderr, "megatune predict: --format takes 'nemo' (NeMo's add_predictions, the default) or "
                        "'all-words'\n");
                return 2;
            }
            all_words = !strcmp(argv[++i], "all-words");
        } else if (mt_cli_is_override(argv[i]) && nov < 256) ovs[nov++] = argv[i];
        else if (npos < 3) pos[npos++] = argv[i];
        else {
            predict_usage(stderr);
            return 2;
        }
    }
    if (npos < 2) {
        predict_usage(stderr);
        return 2;
    }
    mt_nemo *n = NULL;
    if (mt_nemo_restore(pos[0], ovs, nov, &n) != MT_OK) {
        // a rank that failed alone would leave the others waiting in a collective
        if (mt_parallel_launched_size() > 1) {
            fprintf(stderr, "megatune: %s\n", mt_last_error());
            fflush(stderr);
            mt_parallel_abort(1);
        }
        return mt_cli_error();
    }
    if (n->par->world_size > 1 && !strcmp(pos[1], "-")) {
        // mpirun gives stdin to rank 0 only; the other ranks would run out of batches and hang
        mt_fail(MT_ERR_INVALID, "under mpirun, INPUT must be a file, not '-' (stdin reaches rank 0 only)");
        mt_nemo_free(n);
        return mt_cli_error();
    }
    if (n->s.topt.kind == MT_TASK_QUESTION_ANSWERING) {
        char dir[4096];
        const char *slash = strrchr(pos[0], '/');
        mt_status qs = npos > 2 ? mt_path_fmt(dir, sizeof dir, "%s", pos[2])
                       : slash  ? mt_path_fmt(dir, sizeof dir, "%.*s", (int)(slash - pos[0]), pos[0])
                                : mt_path_fmt(dir, sizeof dir, ".");
        if (qs == MT_OK) qs = predict_squad(n, pos[1], dir, n->par->world_rank == 0);
        if (qs != MT_OK && n->par->world_size > 1) {
            fprintf(stderr, "megatune: rank %d: %s\n", n->par->world_rank, mt_last_error());
            fflush(stderr);
            mt_parallel_abort(1);
        }
        mt_nemo_free(n);
        return qs == MT_OK ? 0 : mt_cli_error();
    }
    FILE *in = strcmp(pos[1], "-") ? fopen(pos[1], "rb") : stdin;
    if (!in) {
        mt_fail(MT_ERR_IO, "%s: cannot open the input: %s", pos[1], strerror(errno));
        mt_nemo_free(n);
        return mt_cli_error();
    }
    // OUTPUT appears only when every line was predicted: a failure leaves no half-written file
    // Under mpirun (a tensor-parallel .nemo) every rank runs the model; global rank 0 writes OUTPUT.
    mt_outfile out;
    int rank0 = n->par->world_rank == 0;
    FILE *sink = rank0 ? NULL : fopen("/dev/null", "w");
    mt_status s = rank0 ? mt_outfile_open(&out, npos > 2 ? pos[2] : "-")
                        : sink ? MT_OK : mt_fail(MT_ERR_IO, "/dev/null: cannot open: %s", strerror(errno));
    n->s.topt.ner_all_words = all_words;
    if (s == MT_OK)
        s = mt_task_predict(&n->s.topt, n->s.tok, NULL, in, pos[1], rank0 ? out.f : sink,
                            (int)n->cfg.model.test_ds.batch_size, forward, n->s.model);
    if (in != stdin) fclose(in);
    if (sink) fclose(sink);
    if (s != MT_OK && n->par->world_size > 1) {
        fprintf(stderr, "megatune: rank %d: %s\n", n->par->world_rank, mt_last_error());
        fflush(stderr);
        mt_parallel_abort(1);
    }
    if (rank0) {
        if (s == MT_OK) s = mt_outfile_commit(&out);
        else mt_outfile_abort(&out);
    }
    mt_nemo_free(n);
    return s == MT_OK ? 0 : mt_cli_error();
}
