// `megatune data`: data converters (import-iob, import-chemprot, import-pnc).
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/file.h"
#include "core/status.h"
#include "tasks/data_tools.h"
#include "tasks/squad.h"
#include "tasks/task_internal.h"
#include "text/tokenizer.h"

static void data_usage(FILE *out) {
    fprintf(out,
            "usage:\n"
            "  megatune data import-iob --data_file FILE [--out_dir DIR] [--split NAME]\n"
            "      CoNLL/IOB (word ... label per line, blank line between sentences, -DOCSTART- dropped)\n"
            "      -> DIR/text_NAME.txt + DIR/labels_NAME.txt (NeMo token classification format).\n"
            "      DIR defaults to FILE's folder; NAME to FILE's name: eng.train->train, eng.testa->dev,\n"
            "      eng.testb->test, devel.tsv->dev, train.tsv->train.\n"
            "  megatune data import-chemprot IN.tsv OUT.tsv [--label-map FILE]\n"
            "      ChemProt 'sentence<TAB>label' with string labels (CPR:3 ... False) -> NeMo text\n"
            "      classification 'sentence<TAB>id'. With --label-map: an existing FILE ('label<TAB>id' lines)\n"
            "      is used; a missing one is written with ids in first-seen order (NeMo's importer order).\n"
            "      Convert train first, then dev/test with the same --label-map. Train with num_classes=6.\n"
            "  megatune data import-pnc RAW.txt OUT_DIR\n"
            "      Raw text -> OUT_DIR/text_RAW.txt + OUT_DIR/labels_RAW.txt (NeMo punctuation/capitalisation\n"
            "      format, as prepare_data_for_punctuation_capitalization.py): labels , . ? (else O) from a\n"
            "      word's last character, U/O from its first; other punctuation except ' is deleted; words\n"
            "      are lower-cased. Name the raw files train.txt and dev.txt to get text_train.txt etc.\n"
            "  megatune data import-atis IN_DIR OUT_DIR [--lower]\n"
            "      ATIS as NeMo's import_datasets.py reads it (Microsoft CNTK files: atis.dict.vocab.csv,\n"
            "      atis.dict.intent.csv, atis.dict.slots.csv, atis.{train,test}.{query,intent,slots}.csv)\n"
            "      -> OUT_DIR/train.tsv, train_slots.tsv, test.tsv, test_slots.tsv, dict.intents.csv,\n"
            "      dict.slots.csv (NeMo intent/slot format). --lower lower-cases the words.\n"
            "example:\n"
            "  megatune data import-iob --data_file conll2003/eng.train --out_dir ner/\n"
            "  megatune data import-chemprot chemprot/train.tsv cp/train.tsv --label-map cp/label_mapping.tsv\n");
}

// Like `mkdir` for the last component (the user named a folder to be written); *created says
// whether it is new, so a failed import can remove it again.
static int make_folder(const char *dir, int *created) {
    *created = 0;
    if (mkdir(dir, 0755) == 0) {
        *created = 1;
        return 0;
    }
    if (errno == EEXIST) return 0;
    fprintf(stderr, "megatune: error: %s: cannot create the output folder: %s\n", dir, strerror(errno));
    return 1;
}

// The folder part of `path`; fails (message set) when it does not fit, rather than naming another folder.
static mt_status parent_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (slash == path) return mt_path_fmt(out, cap, "/");
    if (slash) return mt_path_fmt(out, cap, "%.*s", (int)(slash - path), path);
    return mt_path_fmt(out, cap, ".");
}

static int import_iob(int argc, char **argv) {
    const char *in = NULL, *out_dir = NULL, *split = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        const char *eq = strchr(a, '=');
        char key[64];
        if (eq && (size_t)(eq - a) < sizeof key) {
            memcpy(key, a, (size_t)(eq - a));
            key[eq - a] = '\0';
            a = key;
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[i + 1];
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { data_usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "megatune data import-iob: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(a, "--data_file") || !strcmp(a, "--data-file")) in = v;
        else if (!strcmp(a, "--out_dir") || !strcmp(a, "--out-dir")) out_dir = v;
        else if (!strcmp(a, "--split")) split = v;
        else { fprintf(stderr, "megatune data import-iob: unknown option '%s'\n", argv[i]); data_usage(stderr); return 2; }
        if (!eq) i++;
    }
    if (!in) { fprintf(stderr, "megatune data import-iob: --data_file is required\n"); data_usage(stderr); return 2; }
    char dir[2048];
    if (!out_dir) {
        const char *slash = strrchr(in, '/');
        if (mt_path_fmt(dir, sizeof dir, "%.*s", slash ? (int)(slash - in) : 1, slash ? in : ".") != MT_OK)
            return mt_cli_error();
        out_dir = dir;
    }
    int created;
    if (make_folder(out_dir, &created) != 0) return 1;
    size_t ns = 0, nw = 0;
    if (mt_data_import_iob(in, out_dir, split, &ns, &nw) != MT_OK) {
        if (created) (void)rmdir(out_dir); // a failed import leaves nothing behind
        return mt_cli_error();
    }
    char sp[256];
    if (split) snprintf(sp, sizeof sp, "%s", split);
    else mt_data_iob_split_name(in, sp, sizeof sp);
    printf("%s: %zu sentences, %zu words -> %s/text_%s.txt, %s/labels_%s.txt\n", in, ns, nw, out_dir, sp, out_dir, sp);
    return 0;
}

static int import_pnc(int argc, char **argv) {
    const char *pos[2] = {0};
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { data_usage(stdout); return 0; }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "megatune data import-pnc: unknown option '%s'\n", argv[i]);
            return 2;
        }
        if (np == 2) { fprintf(stderr, "megatune data import-pnc: too many arguments\n"); return 2; }
        pos[np++] = argv[i];
    }
    if (np != 2) { data_usage(stderr); return 2; }
    int created;
    if (make_folder(pos[1], &created) != 0) return 1;
    size_t nl = 0, nw = 0;
    if (mt_data_import_pnc(pos[0], pos[1], &nl, &nw) != MT_OK) {
        if (created) (void)rmdir(pos[1]);
        return mt_cli_error();
    }
    const char *base = strrchr(pos[0], '/');
    base = base ? base + 1 : pos[0];
    printf("%s: %zu lines, %zu words -> %s/text_%s, %s/labels_%s\n", pos[0], nl, nw, pos[1], base, pos[1], base);
    return 0;
}

static int import_atis(int argc, char **argv) {
    const char *pos[2] = {0};
    int np = 0, lower = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { data_usage(stdout); return 0; }
        if (!strcmp(argv[i], "--lower") || !strcmp(argv[i], "--do_lower_case")) { lower = 1; continue; }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "megatune data import-atis: unknown option '%s'\n", argv[i]);
            return 2;
        }
        if (np == 2) { fprintf(stderr, "megatune data import-atis: too many arguments\n"); return 2; }
        pos[np++] = argv[i];
    }
    if (np != 2) { data_usage(stderr); return 2; }
    int created;
    if (make_folder(pos[1], &created) != 0) return 1;
    size_t ntr = 0, nte = 0;
    if (mt_data_import_atis(pos[0], pos[1], lower, &ntr, &nte) != MT_OK) {
        if (created) (void)rmdir(pos[1]);
        return mt_cli_error();
    }
    printf("%s: %zu train and %zu test queries -> %s (train.tsv, test.tsv, *_slots.tsv, dict.*.csv)\n", pos[0], ntr,
           nte, pos[1]);
    return 0;
}

static int import_chemprot(int argc, char **argv) {
    const char *pos[2] = {0}, *map = NULL;
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { data_usage(stdout); return 0; }
        if (!strncmp(argv[i], "--label-map=", 12) || !strncmp(argv[i], "--label_map=", 12)) map = argv[i] + 12;
        else if (!strcmp(argv[i], "--label-map") || !strcmp(argv[i], "--label_map")) {
            if (i + 1 >= argc) { fprintf(stderr, "megatune data import-chemprot: --label-map needs a file\n"); return 2; }
            map = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "megatune data import-chemprot: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (np < 2) pos[np++] = argv[i];
        else { fprintf(stderr, "megatune data import-chemprot: too many arguments\n"); return 2; }
    }
    if (np != 2) { data_usage(stderr); return 2; }
    // the folders that will hold OUT and the label map (`cp/train.tsv` in the help's example)
    char od[2048], md[2048];
    int oc = 0, mc = 0;
    if (parent_of(pos[1], od, sizeof od) != MT_OK || (map && parent_of(map, md, sizeof md) != MT_OK)) return mt_cli_error();
    if (make_folder(od, &oc) != 0) return 1;
    if (map) {
        if (make_folder(md, &mc) != 0) {
            if (oc) (void)rmdir(od);
            return 1;
        }
    }
    size_t n = 0;
    int nl = 0;
    if (mt_data_import_chemprot(pos[0], pos[1], map, &n, &nl) != MT_OK) {
        if (mc) (void)rmdir(md);
        if (oc) (void)rmdir(od);
        return mt_cli_error();
    }
    printf("%s: %zu examples, %d labels -> %s%s%s\n", pos[0], n, nl, pos[1], map ? ", label map " : "", map ? map : "");
    return 0;
}

// Hidden (tests, debugging): the SQuAD features of FILE as mt_squad_dump_features prints them;
// with --logits FILE --out_dir DIR [--n_best_size N --max_answer_length N
// --null_score_diff_threshold X --no_lower_case] the prediction files for those logits instead.
//   megatune data squad-features FILE --vocab VOCAB [--cased] [--v2] [--train] [--unlabelled]
//       [--max_seq_length N] [--doc_stride N] [--max_query_length N]
static int squad_features(int argc, char **argv) {
    const char *file = NULL, *vocab = NULL;
    const char *logits = NULL, *out_dir = NULL;
    double thr = 0;
    int cased = 0, training = 0, labelled = 1;
    mt_task_options o;
    mt_task_options_default(&o, MT_TASK_QUESTION_ANSWERING);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *iv = !strcmp(a, "--max_seq_length") ? &o.max_seq_length : !strcmp(a, "--doc_stride") ? &o.doc_stride
                  : !strcmp(a, "--max_query_length") ? &o.max_query_length : NULL;
        const char **sv = !strcmp(a, "--vocab") ? &vocab : !strcmp(a, "--logits") ? &logits
                          : !strcmp(a, "--out_dir") ? &out_dir : NULL;
        if (!strcmp(a, "--n_best_size")) iv = &o.n_best_size;
        if (!strcmp(a, "--max_answer_length")) iv = &o.max_answer_length;
        if (iv || sv || !strcmp(a, "--null_score_diff_threshold")) {
            if (i + 1 >= argc) { fprintf(stderr, "megatune data squad-features: %s needs a value\n", a); return 2; }
            if (iv) *iv = atoi(argv[++i]);
            else if (sv) *sv = argv[++i];
            else thr = atof(argv[++i]);
        } else if (!strcmp(a, "--cased")) cased = 1;
        else if (!strcmp(a, "--v2")) o.version_2_with_negative = 1;
        else if (!strcmp(a, "--train")) training = 1;
        else if (!strcmp(a, "--unlabelled")) labelled = 0;
        else if (!strcmp(a, "--no_lower_case")) o.do_lower_case = 0;
        else if (!file && a[0] != '-') file = a;
        else { fprintf(stderr, "megatune data squad-features: unknown argument '%s'\n", a); return 2; }
    }
    if (!file || !vocab) { fprintf(stderr, "usage: megatune data squad-features FILE --vocab VOCAB [...]\n"); return 2; }
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, !cased);
    mt_tokenizer *tok = NULL;
    mt_dataset *d = NULL;
    mt_status s = mt_tokenizer_create_from_file(vocab, &to, &tok);
    if (!s) s = mt_task_setup_dataset(&o, tok, NULL, &d);
    if (!s) s = mt_squad_load(d, tok, file, training, labelled);
    o.null_score_diff_threshold = thr;
    if (d) d->opt.null_score_diff_threshold = thr;
    if (!s && !logits) s = mt_squad_dump_features(d, stdout);
    if (!s && logits) {
        // --logits FILE --out_dir DIR: post-processing of given logits (rows "feature start... end...")
        mt_squad_results *r = NULL;
        char p1[2048], p2[2048], p3[2048];
        const char *od = out_dir ? out_dir : ".";
        s = mt_path_join(p1, sizeof p1, od, "predictions.json");
        if (!s) s = mt_path_join(p2, sizeof p2, od, "nbest_predictions.json");
        if (!s) s = mt_path_join(p3, sizeof p3, od, "null_odds.json");
        if (!s) s = mt_squad_results_create(d, &r);
        if (!s) s = mt_squad_results_read(r, logits);
        if (!s) s = mt_squad_write_predictions(d, mt_tokenizer_vocab(tok), r, p1, p2, p3, NULL);
        mt_squad_results_free(r);
    }
    mt_dataset_free(d);
    mt_tokenizer_free(tok);
    if (s) return mt_cli_error();
    return 0;
}

int mt_cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        data_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "import-iob")) return import_iob(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import-chemprot")) return import_chemprot(argc - 1, argv + 1);
    if (!strcmp(argv[1], "squad-features")) return squad_features(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import-pnc")) return import_pnc(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import-atis")) return import_atis(argc - 1, argv + 1);
    fprintf(stderr, "megatune data: unknown tool '%s'\n", argv[1]);
    data_usage(stderr);
    return 2;
}
