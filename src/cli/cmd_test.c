// megatune test MODEL.nemo [DATA] [key=value ...]
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "cli/commands.h"
#include "core/log.h"
#include "parallel/parallel.h"
#include "train/nemo.h"
#include "train/session.h"

static void test_usage(FILE *out) {
    fprintf(out,
            "usage: megatune test MODEL.nemo [DATA] [key=value ...]\n\n"
            "Restores a .nemo and evaluates it on model.test_ds (or model.validation_ds when the config has no\n"
            "test file), printing the task's report and test_loss / test_<metric> lines (as NeMo logs them).\n"
            "DATA, when given, is the test data: the .tsv for text classification, the data folder (or a .tsv\n"
            "in it) for GLUE, the data folder for token classification, punctuation/capitalization and\n"
            "intent/slot classification, the SQuAD .json for question answering (which also writes\n"
            "predictions.json, nbest_predictions.json and, v2, null_odds.json into model.output_dir, or\n"
            "beside the .nemo).\n"
            "Under mpirun -np N the model is split N ways (tensor parallel); with model.tensor_model_parallel_size=K\n"
            "it is split K ways and the N/K data-parallel replicas share the test batches out (the metrics and\n"
            "prediction files are those of one process).\n\n"
            "examples:\n"
            "  megatune test nemo_experiments/TextClassification/.../checkpoints/TextClassification.nemo test.tsv\n"
            "  megatune test ner.nemo model.dataset.data_dir=conll2003 model.test_ds.text_file=text_test.txt \\\n"
            "      model.test_ds.labels_file=labels_test.txt\n");
}

static void yaml_quote(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    out[o++] = '\'';
    for (size_t i = 0; i < n && o + 3 < cap; i++) {
        if (s[i] == '\'') out[o++] = '\'';
        out[o++] = s[i];
    }
    out[o++] = '\'';
    out[o] = 0;
}

// The positional DATA argument as overrides for the restored task.
static int data_overrides(const char *task_hint, const char *data, char ov[3][4200], int *n) {
    (void)task_hint;
    struct stat sb;
    int dir = stat(data, &sb) == 0 && S_ISDIR(sb.st_mode);
    *n = 0;
    // The task is known only after restore; give keys for every task shape: text classification
    // reads file_path, GLUE data_dir + ds_item, token classification data_dir.
    // values are YAML single-quoted ('' for a quote) so any path character (': ', '#') stays literal
    char q[4100], qd[4100], qb[4100];
    yaml_quote(data, strlen(data), q, sizeof q);
    if (dir) {
        snprintf(ov[(*n)++], 4200, "model.dataset.data_dir=%s", q);
        snprintf(ov[(*n)++], 4200, "model.data_dir=%s", q); // intent/slot's own key
    } else {
        snprintf(ov[(*n)++], 4200, "model.test_ds.file_path=%s", q);
        const char *slash = strrchr(data, '/');
        if (slash) {
            yaml_quote(data, (size_t)(slash - data), qd, sizeof qd);
            yaml_quote(slash + 1, strlen(slash + 1), qb, sizeof qb);
            snprintf(ov[(*n)++], 4200, "model.dataset.data_dir=%s", qd);
            snprintf(ov[(*n)++], 4200, "model.test_ds.ds_item=%s", qb);
        } else {
            snprintf(ov[(*n)++], 4200, "model.dataset.data_dir=.");
            snprintf(ov[(*n)++], 4200, "model.test_ds.ds_item=%s", q);
        }
    }
    return 0;
}

int mt_cmd_test(int argc, char **argv) {
    if (argc < 2) {
        test_usage(stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            test_usage(stdout);
            return 0;
        }
    char *ovs[260];
    int nov = 0;
    char dov[3][4200];
    int ndata = 0;
    for (int i = 2; i < argc && nov < 250; i++) {
        if (mt_cli_is_override(argv[i])) {
            ovs[nov++] = argv[i];
        } else if (ndata++) {
            fprintf(stderr, "megatune test: more than one DATA argument ('%s'); give one file or folder\n", argv[i]);
            return 2;
        } else {
            int k;
            data_overrides(NULL, argv[i], dov, &k);
            for (int j = 0; j < k; j++) ovs[nov++] = dov[j];
        }
    }
    mt_nemo *n = NULL;
    if (mt_nemo_restore(argv[1], ovs, nov, &n) != MT_OK) {
        // a rank that failed alone would leave the others waiting in a collective
        if (mt_parallel_launched_size() > 1) {
            fprintf(stderr, "megatune: %s\n", mt_last_error());
            fflush(stderr);
            mt_parallel_abort(1);
        }
        return mt_cli_error();
    }
    mt_dataset *d = NULL;
    mt_status s = mt_session_load_split(&n->cfg, &n->s, MT_SPLIT_TEST, NULL, &d);
    const mt_cfg_ds *ds = &n->cfg.model.test_ds;
    if (s == MT_OK && !d) {
        s = mt_session_load_split(&n->cfg, &n->s, MT_SPLIT_VALIDATION, NULL, &d);
        ds = &n->cfg.model.validation_ds;
        if (s == MT_OK && d) mt_info("the config names no test file: evaluating model.validation_ds");
        if (s == MT_OK && !d)
            s = mt_fail(MT_ERR_INVALID, "no test data: give DATA or model.test_ds.file_path=... (text "
                        "classification) / model.dataset.data_dir=... (GLUE, token classification)");
    }
    mt_eval_result ev;
    // under mpirun every rank computes (its tensor-parallel shard of its data-parallel share), global
    // rank 0 reports
    int rank0 = n->par->world_rank == 0;
    if (s == MT_OK) {
        int64_t nb = (int64_t)((mt_dataset_size(d) + (size_t)ds->batch_size - 1) / (size_t)ds->batch_size);
        // QA: predictions.json etc. go to model.output_dir, else beside the .nemo
        char pdir[4096];
        const char *slash = strrchr(argv[1], '/');
        s = n->cfg.model.output_dir ? mt_path_fmt(pdir, sizeof pdir, "%s", n->cfg.model.output_dir)
            : slash                 ? mt_path_fmt(pdir, sizeof pdir, "%.*s", (int)(slash - argv[1]), argv[1])
                                    : mt_path_fmt(pdir, sizeof pdir, ".");
        int qa = n->s.topt.kind == MT_TASK_QUESTION_ANSWERING;
        // with data-parallel replicas (model.tensor_model_parallel_size=K < processes) the batches are
        // shared out and the metrics are still one process's (eval_dp.c)
        if (s == MT_OK)
            s = mt_evaluate_dp_ex(n->s.model, d, (int)ds->batch_size, mt_limit_batches(nb, &n->cfg.trainer.limit_test_batches),
                              rank0 ? stdout : NULL, qa && rank0 ? pdir : NULL, n->par->dp, &ev);
        if (s == MT_OK && n->par->dp_size > 1)
            mt_info("test: this data-parallel rank evaluated %lld of the %lld batches", (long long)ev.local_batches,
                    (long long)ev.batches);
    }
    if (s != MT_OK && n->par->world_size > 1) {
        fprintf(stderr, "megatune: rank %d: %s\n", n->par->world_rank, mt_last_error());
        fflush(stderr);
        mt_parallel_abort(1);
    }
    if (s == MT_OK && rank0) {
        printf("test_loss: %.9g\n", ev.loss);
        for (int i = 0; i < ev.n_metrics; i++) printf("test_%s: %.9g\n", ev.metrics[i].name, ev.metrics[i].value);
    }
    mt_dataset_free(d);
    mt_nemo_free(n);
    return s == MT_OK ? 0 : mt_cli_error();
}
