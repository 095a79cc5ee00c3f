// megatune inspect PATH: what a checkpoint holds (never executes or extracts anything).
#include <stdio.h>
#include <string.h>

#include "ckpt/convert.h"
#include "cli/commands.h"
#include "core/log.h"
#include "text/tokenizer.h"
#include "train/nemo.h"

// A .nemo's summary: what NeMo's restore_from would build from it.
static mt_status nemo_summary(const char *path, FILE *out) {
    mt_nemo *n = NULL;
    mt_log_set_level(MT_LOG_WARNING);
    mt_status st = mt_nemo_restore(path, NULL, 0, &n);
    mt_log_set_level(MT_LOG_INFO);
    if (st != MT_OK) return st;
    const mt_model_config *mc = mt_model_get_config(n->s.model);
    const char *cls = n->cfg.model.target ? strrchr(n->cfg.model.target, '.') : NULL;
    fprintf(out, ".nemo: %s\n", path);
    fprintf(out, "task: %s%s%s%s\n", n->cfg.task, cls ? " (" : "", cls ? cls + 1 : "", cls ? ")" : "");
    fprintf(out, "encoder: %s, %d layers, hidden %d, %d heads, ffn %d, %d positions\n",
            mc->arch == MT_ARCH_MEGATRON ? "megatron" : "bert", mc->num_layers, mc->hidden_size,
            mc->num_attention_heads, mc->ffn_hidden_size, mc->max_position_embeddings);
    if (n->archive_tp > 1)
        fprintf(out, "tensor-parallel size: %d (mp_rank_00 .. mp_rank_%02d)\n", n->archive_tp, n->archive_tp - 1);
    else fprintf(out, "tensor-parallel size: 1\n");
    if (n->checkpoint_version >= 0)
        fprintf(out, "checkpoint_version: %g (megatron_checkpoint_version.json)\n", n->checkpoint_version);
    else fprintf(out, "checkpoint_version: absent (QKV rows taken as [heads, 3, head_dim])\n");
    int ncls = mc->num_classes;
    fprintf(out, "labels: %d", ncls);
    FILE *lf = n->s.topt.label_ids_file[0] ? fopen(n->s.topt.label_ids_file, "r") : NULL;
    if (lf) {
        char line[256];
        int k = 0;
        while (fgets(line, sizeof line, lf) && k < 16) {
            line[strcspn(line, "\r\n")] = 0;
            fprintf(out, "%s%s", k ? ", " : " (", line);
            k++;
        }
        if (k) fprintf(out, "%s)", k == 16 ? ", ..." : "");
        fclose(lf);
    } else if (mc->head == MT_HEAD_SEQUENCE_REGRESSION) {
        fprintf(out, " (regression)");
    } else if (ncls > 0) {
        fprintf(out, " (classes 0..%d)", ncls - 1);
    }
    fprintf(out, "\nvocab: %d tokens (%s), padded to %d\n\n", mt_vocab_size(mt_tokenizer_vocab(n->s.tok)),
            n->s.lowercase ? "uncased" : "cased", mc->padded_vocab_size);
    mt_nemo_free(n);
    return MT_OK;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: megatune inspect [-q] PATH\n\n"
            "Prints a checkpoint's tree (a .nemo: first a summary of the model it restores to: task, encoder\n"
            "shape, tensor-parallel size, checkpoint_version, labels, vocab): names, dtypes, shapes, checkpoint_version, tensor-parallel size and the\n"
            "detected architecture (layers / hidden / heads / vocab).\n"
            "PATH: a .pt/.ckpt file (zip or legacy torch format), a Megatron folder (root with\n"
            "latest_checkpointed_iteration.txt, release/, iter_XXXXXXX/ or a folder of mp_rank_XX/), a .nemo\n"
            "archive (members listed and weights inspected in memory) or a .safetensors file.\n"
            "  -q   summary only (no per-file stored tensor list)\n\n"
            "examples:\n  megatune inspect megatron_bert_345m/\n  megatune inspect model.nemo\n");
}

int mt_cmd_inspect(int argc, char **argv) {
    int verbose = 1;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-q")) verbose = 0;
        else if (!path) path = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    size_t l = strlen(path);
    // a .nemo that does not restore still gets its details (they say what is wrong with it)
    if (l > 5 && !strcmp(path + l - 5, ".nemo") && nemo_summary(path, stdout) != MT_OK)
        printf("summary: not available: %s\n\n", mt_last_error());
    if (mt_ckpt_inspect(path, stdout, verbose) != MT_OK) return mt_cli_error();
    return 0;
}
