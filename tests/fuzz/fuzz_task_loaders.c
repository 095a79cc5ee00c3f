// libFuzzer target: arbitrary bytes as a task data file (text classification TSV, a GLUE TSV,
// NeMo NER text/labels pair, P&C text/labels pair, intent/slot .tsv + slots) must give a dataset or
// a clear error, never a crash; a loaded
// dataset must batch cleanly. The first byte picks the task and the split of the input.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks/task.h"

static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ngood\nbad\nfilm\n##s\n,\n.\nO\n";
static mt_tokenizer *tok;
static char dir[64];

static void write_file(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
}

static void setup(void) {
    strcpy(dir, "/tmp/megatune-fuzz-tasks-XXXXXX");
    if (!mkdtemp(dir)) abort();
    mt_vocab *v = NULL;
    if (mt_vocab_load_buffer(VOCAB, sizeof VOCAB - 1, "fuzz-vocab", &v) != MT_OK) abort();
    mt_tokenizer_options o;
    mt_tokenizer_options_default(&o, 1);
    o.utf8 = MT_UTF8_STRICT;
    if (mt_tokenizer_create(v, &o, &tok) != MT_OK) abort();
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
    if (!tok) setup();
    if (size < 1) return 0;
    unsigned sel = data[0] % 6;
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
    case 1: // GLUE pair task
    case 2:
        mt_task_options_default(&o, MT_TASK_GLUE);
        strcpy(o.glue_task, sel == 1 ? "mrpc" : "sts-b");
        o.max_seq_length = 8;
        snprintf(path, sizeof path, "%s/glue", dir);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/glue/train.tsv", dir);
        write_file(path, data, size);
        snprintf(path, sizeof path, "%s/glue", dir);
        s = mt_dataset_load(&o, tok, path, "train", NULL, &d);
        break;
    case 5: { // intent/slot: <0xFF> splits train.tsv from train_slots.tsv; fixed dictionaries
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
    default: { // NER (3) and punctuation/capitalisation (4): the first 0xFF byte splits text and labels
        mt_task_options_default(&o, sel == 4 ? MT_TASK_PUNCT_CAPIT : MT_TASK_TOKEN_CLASSIFICATION);
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
