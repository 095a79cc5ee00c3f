// libFuzzer target: arbitrary bytes as a task data file (text classification TSV, each of the nine
// GLUE tasks' TSV, a NeMo NER text/labels pair, a CoNLL/IOB file for `megatune data import-iob`, a
// ChemProt file for `megatune data import-chemprot`, a P&C text/labels pair, an intent/slot .tsv + slots)
// must give a dataset (or converted files) or a clear error, never a crash; a loaded dataset must
// batch cleanly. The first byte picks the task and the split of the input. The two importers write
// into a folder of their own, emptied before each input: after a failed import it must be empty (no
// converted file, no temporary file), after a successful one hold exactly the converted files.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks/data_tools.h"
#include "tasks/task.h"
#include "fuzz_task_util.h"
#include "fuzz_env.h"

static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ngood\nbad\nfilm\n##s\n,\n.\nO\n";

// Empties the flat folder `d` (made if absent).
static void clear_dir(const char *d) {
    mkdir(d, 0700);
    DIR *h = opendir(d);
    if (!h) abort();
    char p[600];
    for (struct dirent *e; (e = readdir(h));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", d, e->d_name) >= sizeof p || unlink(p) != 0) abort();
    }
    closedir(h);
}

// Aborts unless the folder `d` holds exactly the files named in `want` (NULL-terminated; {NULL}: empty).
static void expect_only(const char *d, const char *const *want, const char *why) {
    DIR *h = opendir(d);
    if (!h) abort();
    int n = 0, bad = 0;
    for (struct dirent *e; (e = readdir(h));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int ok = 0;
        for (const char *const *w = want; *w && !ok; w++) ok = !strcmp(e->d_name, *w);
        if (!ok) fprintf(stderr, "fuzz_task_loaders: %s: unexpected %s/%s\n", why, d, e->d_name), bad = 1;
        n++;
    }
    closedir(h);
    int nw = 0;
    while (want[nw]) nw++;
    if (n != nw) fprintf(stderr, "fuzz_task_loaders: %s: %s holds %d file(s), expected %d\n", why, d, n, nw), bad = 1;
    if (bad) abort();
}

static void exercise(const mt_dataset *d) {
    size_t n = mt_dataset_size(d);
    mt_batch_buffer buf = {0};
    mt_batch b;
    size_t idx[4];
    for (size_t start = 0; start < n && start < 64; start += 4) {
        int k = 0;
        for (; k < 4 && start + (size_t)k < n; k++) idx[k] = start + (size_t)k;
        if (mt_dataset_make_batch(d, idx, k, &buf, &b) != MT_OK) abort();
    }
    mt_batch_buffer_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) fuzz_setup("tasks", VOCAB, sizeof VOCAB - 1);
    if (size < 1) return 0;
    static const char *glue[] = {"cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli", "qnli", "rte", "wnli", "mnli-mm"};
    unsigned sel = data[0] % 16;
    data++, size--;
    mt_task_options o;
    char path[256];
    mt_dataset *d = NULL;
    mt_status s;
    switch (sel) {
    case 0: // text classification
        mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
        o.num_classes = 3;
        o.max_seq_length = 8;
        snprintf(path, sizeof path, "%s/train.tsv", dir);
        write_file(path, data, size);
        s = mt_dataset_load(&o, tok, path, "train", NULL, &d);
        break;
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10: { // GLUE tasks
        const char *task = glue[sel - 1];
        mt_task_options_default(&o, MT_TASK_GLUE);
        strcpy(o.glue_task, task);
        o.max_seq_length = 8;
        snprintf(path, sizeof path, "%s/glue", dir);
        mkdir(path, 0700);
        // MNLI reads dev_matched / dev_mismatched for the dev split; the others <split>.tsv
        snprintf(path, sizeof path, "%s/glue/%s.tsv", dir, !strcmp(task, "mnli") ? "dev_matched"
                                                             : !strcmp(task, "mnli-mm") ? "dev_mismatched" : "dev");
        write_file(path, data, size);
        snprintf(path, sizeof path, "%s/glue", dir);
        s = mt_dataset_load(&o, tok, path, "dev", NULL, &d);
        break;
    }
    case 13: { // ChemProt import ("sentence<TAB>label" with a label map it builds), then loads as text classification
        snprintf(path, sizeof path, "%s/chemprot.tsv", dir);
        write_file(path, data, size);
        char cp[256], out[300];
        snprintf(cp, sizeof cp, "%s/cp", dir);
        clear_dir(cp);
        snprintf(out, sizeof out, "%s/train.tsv", cp);
        size_t ne = 0;
        int nl = 0;
        static const char *const none[] = {NULL}, *const converted[] = {"train.tsv", NULL};
        if (mt_data_import_chemprot(path, out, NULL, &ne, &nl) != MT_OK) {
            expect_only(cp, none, "failed ChemProt import"); // no converted file, no temporary one
            return 0;
        }
        expect_only(cp, converted, "ChemProt import");
        mt_task_options_default(&o, MT_TASK_TEXT_CLASSIFICATION);
        o.num_classes = nl > 0 ? nl : 1;
        o.max_seq_length = 8;
        s = mt_dataset_load(&o, tok, out, "train", NULL, &d);
        break;
    }
    case 11: { // CoNLL / IOB import: converted pair appears only on success, then loads as NER
        snprintf(path, sizeof path, "%s/in.iob", dir);
        write_file(path, data, size);
        char out[256];
        snprintf(out, sizeof out, "%s/iob", dir);
        clear_dir(out);
        size_t ns = 0, nw = 0;
        static const char *const none[] = {NULL}, *const pair[] = {"text_train.txt", "labels_train.txt", NULL};
        if (mt_data_import_iob(path, out, "train", &ns, &nw) != MT_OK) {
            expect_only(out, none, "failed IOB import"); // neither file of the pair, no temporary file
            return 0;
        }
        expect_only(out, pair, "IOB import");
        mt_task_options_default(&o, MT_TASK_TOKEN_CLASSIFICATION);
        o.max_seq_length = 6;
        s = mt_dataset_load(&o, tok, out, "train", NULL, &d);
        break;
    }
    case 15: { // intent/slot: <0xFF> splits train.tsv from train_slots.tsv; fixed dictionaries
        static const uint8_t intents[] = "a\nb\n", slots[] = "B-x\nO\nI-x\n";
        mt_task_options_default(&o, MT_TASK_INTENT_SLOT);
        o.max_seq_length = 6;
        snprintf(path, sizeof path, "%s/dict.intents.csv", dir);
        write_file(path, intents, sizeof intents - 1);
        snprintf(path, sizeof path, "%s/dict.slots.csv", dir);
        write_file(path, slots, sizeof slots - 1);
        const uint8_t *cut = memchr(data, 0xFF, size);
        size_t nt = cut ? (size_t)(cut - data) : size;
        snprintf(path, sizeof path, "%s/train.tsv", dir);
        write_file(path, data, nt);
        snprintf(path, sizeof path, "%s/train_slots.tsv", dir);
        write_file(path, cut ? cut + 1 : data, cut ? size - nt - 1 : 0);
        s = mt_dataset_load(&o, tok, dir, "train", NULL, &d);
        break;
    }
    default: { // NER (12) and punctuation/capitalisation (14): the first 0xFF byte splits text and labels
        mt_task_options_default(&o, sel == 14 ? MT_TASK_PUNCT_CAPIT : MT_TASK_TOKEN_CLASSIFICATION);
        o.max_seq_length = 6;
        const uint8_t *cut = memchr(data, 0xFF, size);
        size_t nt = cut ? (size_t)(cut - data) : size;
        snprintf(path, sizeof path, "%s/text_train.txt", dir);
        write_file(path, data, nt);
        snprintf(path, sizeof path, "%s/labels_train.txt", dir);
        write_file(path, cut ? cut + 1 : data, cut ? size - nt - 1 : 0);
        s = mt_dataset_load(&o, tok, dir, "train", NULL, &d);
        break;
    }
    }
    if (s == MT_OK) {
        if (!d) abort();
        exercise(d);
        mt_dataset_free(d);
    } else if (d) {
        abort(); // a failed load must not hand back a dataset
    }
    return 0;
}
