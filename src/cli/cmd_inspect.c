// megatune inspect PATH: what a checkpoint holds (never executes or extracts anything).
#include <stdio.h>
#include <string.h>

#include "ckpt/convert.h"
#include "cli/commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: megatune inspect [-q] PATH\n\n"
            "Prints a checkpoint's tree: names, dtypes, shapes, checkpoint_version, tensor-parallel size and the\n"
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
    if (mt_ckpt_inspect(path, stdout, verbose) != MT_OK) return mt_cli_error();
    return 0;
}
