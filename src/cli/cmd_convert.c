// megatune convert SRC DST [--tp N]: checkpoint format and tensor-parallel conversion.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/convert.h"
#include "cli/commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: megatune convert SRC DST [--tp N] [--dtype fp32|fp16|bf16] [--heads H] [--vocab-size V]\n"
            "                        [--checkpoint-version X]\n\n"
            "SRC: Megatron folder (any TP size, checkpoint_version absent/1.0/2.0/3.0), .pt file (Megatron tree or\n"
            "     flat state dict), or Hugging Face .safetensors (MegatronBert or Bert names).\n"
            "DST: a folder  -> Megatron layout DST/release/mp_rank_XX/model_optim_rng.pt for N ranks\n"
            "                  ({'model': {'language_model': ...}, 'checkpoint_version': 3.0, 'args': ...})\n"
            "     file.pt   -> one Megatron checkpoint at TP=1\n"
            "     x.safetensors -> Hugging Face MegatronBert names (Bert names for post-LN models), query/key/value split\n"
            "Every tensor is carried (pooler, lm_head, binary_head included); weights are written as --dtype (fp32).\n"
            "  --tp N                  output tensor-parallel size (folder output), default 1\n"
            "  --heads H               attention heads, when the source's args do not say\n"
            "  --vocab-size V          real vocab size: output vocab rows = pad(V, 128*N); default keeps the\n"
            "                          source's rows (padded to a multiple of 128*N when needed)\n"
            "  --checkpoint-version X  treat the source as this checkpoint_version (QKV row order)\n"
            ".nemo output is written by `megatune train` (not by convert).\n\n"
            "examples:\n  megatune convert megatron_bert_345m/ bert_tp2/ --tp 2\n"
            "  megatune convert megatron_bert_345m/ bert.safetensors\n");
}

int mt_cmd_convert(int argc, char **argv) {
    mt_convert_opts o = {1, 0, 0, -1.0, MT_DT_F32};
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--dtype") && i + 1 < argc) {
            const char *d = argv[++i];
            if (!strcmp(d, "fp32") || !strcmp(d, "float32")) o.dtype = MT_DT_F32;
            else if (!strcmp(d, "fp16") || !strcmp(d, "float16")) o.dtype = MT_DT_F16;
            else if (!strcmp(d, "bf16") || !strcmp(d, "bfloat16")) o.dtype = MT_DT_BF16;
            else {
                fprintf(stderr, "megatune convert: --dtype must be fp32, fp16 or bf16, got '%s'\n", d);
                return 2;
            }
            continue;
        }
        if ((!strcmp(a, "--tp") || !strcmp(a, "--heads") || !strcmp(a, "--vocab-size") || !strcmp(a, "--checkpoint-version")) &&
            i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || v < 0 || v > 1e9) {
                fprintf(stderr, "megatune convert: %s needs a non-negative number, got '%s'\n", a, argv[i]);
                return 2;
            }
            if (!strcmp(a, "--tp")) o.tp = (int)v;
            else if (!strcmp(a, "--heads")) o.heads = (int)v;
            else if (!strcmp(a, "--vocab-size")) o.vocab_size = (int)v;
            else o.force_version = v;
            continue;
        }
        if (a[0] == '-' || npos == 2) {
            fprintf(stderr, "megatune convert: unexpected argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        pos[npos++] = a;
    }
    if (o.tp < 1) {
        fprintf(stderr, "megatune convert: --tp must be 1 or more, got %d\n", o.tp);
        return 2;
    }
    if (npos != 2) {
        usage(stderr);
        return 2;
    }
    if (mt_ckpt_convert(pos[0], pos[1], &o) != MT_OK) return mt_cli_error();
    printf("wrote %s\n", pos[1]);
    return 0;
}
