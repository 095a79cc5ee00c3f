// megatune download NAME... | --list  [--offline]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "net/download.h"
#include "text/pretrained.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: megatune download NAME... [--offline]\n"
            "       megatune download --list\n\n"
            "Fetches the checkpoint and vocab of pretrained names from the addresses NeMo v1.0-1.4 uses (NGC for\n"
            "Megatron-BERT 345M and BioMegatron, the BERT vocab files) into the model directory\n"
            "$MEGATUNE_MODEL_DIR (default ~/.cache/megatune)/<name>/. `megatune train` does the same on first use.\n"
            "Files NeMo already cached ($TORCH_HOME/megatron/<name>, <name>_vocab) are used where they are.\n"
            "A download goes to <file>.part, resumes after an interruption, and is renamed into place only\n"
            "after its size and contents (checkpoint shapes, vocab lines) were checked.\n\n"
            "environment:\n"
            "  MEGATUNE_DOWNLOAD_MIRROR=http://host:port   replace scheme and host of every address (path kept)\n"
            "  MEGATUNE_OFFLINE=1                          never connect (as --offline); list what is missing\n"
            "  MEGATUNE_DOWNLOAD_RETRIES=N                 retries after a transient failure (default 4)\n"
            "  MEGATUNE_DOWNLOAD_STALL_SECONDS=S           give up an attempt stalled under 1 KiB/s (default 60)\n"
            "  https_proxy, http_proxy, no_proxy            as curl reads them\n\n"
            "names: %s\n",
            mt_pretrained_names());
}

static const char *where(const mt_pretrained_info *p, mt_pretrained_file f) {
    char path[4200];
    int r = mt_pretrained_locate(p, f, path, sizeof path, NULL, 0);
    return r == 1 ? "present" : r == 2 ? "in NeMo's cache" : r == 0 ? "missing" : "-";
}

static int list(void) {
    char dir[4096], nemo[4096];
    if (mt_pretrained_model_dir(dir, sizeof dir) != MT_OK || mt_pretrained_nemo_cache_dir(nemo, sizeof nemo) != MT_OK)
        return mt_cli_error();
    printf("model directory: %s\nNeMo's cache:    %s\n\n", dir, nemo);
    printf("%-30s %-22s %-16s %-30s %s\n", "name", "checkpoint", "", "vocab", "");
    size_t n;
    const mt_pretrained_info *all = mt_pretrained_all(&n);
    for (size_t i = 0; i < n; i++) {
        const mt_pretrained_info *p = &all[i];
        char ck[64], vo[64];
        if (!p->checkpoint_file) snprintf(ck, sizeof ck, "(none: give your own)");
        else if (!p->checkpoint_url) snprintf(ck, sizeof ck, "~%.0f MiB, manual", p->checkpoint_mib);
        else snprintf(ck, sizeof ck, "~%.0f MiB", p->checkpoint_mib);
        if (p->vocab_bytes) snprintf(vo, sizeof vo, "%.0f KiB, %d lines", p->vocab_bytes / 1024.0, p->vocab_size);
        else snprintf(vo, sizeof vo, "size unknown");
        printf("%-30s %-22s %-16s %-30s %s\n", p->name, ck, p->checkpoint_file ? where(p, MT_PRETRAINED_CHECKPOINT) : "",
               vo, where(p, MT_PRETRAINED_VOCAB));
    }
    printf("\nSizes marked ~ are approximate (NGC lists 637.65 MB for BioMegatron 345M; the Megatron-BERT 345M files\n"
           "hold the same fp16 shapes). bert-* weights are not downloaded: NeMo takes them from Hugging Face's\n"
           "transformers; save model.safetensors and give it as model.language_model.lm_checkpoint.\n");
    return 0;
}

int mt_cmd_download(int argc, char **argv) {
    int offline = mt_download_offline(), n = 0, do_list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--offline")) offline = 1;
        else if (!strcmp(argv[i], "--list")) do_list = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "megatune download: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        } else n++;
    }
    if (do_list) return list();
    if (!n) {
        usage(stderr);
        return 2;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        const mt_pretrained_info *p;
        if (mt_pretrained_lookup(argv[i], &p) != MT_OK) return mt_cli_error();
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        const mt_pretrained_info *p = mt_pretrained_find(argv[i]);
        // bert-* weights have no download (see --list); their vocab still does.
        unsigned which = MT_DOWNLOAD_VOCAB | (p->checkpoint_url ? MT_DOWNLOAD_CHECKPOINT : 0);
        if (mt_download_preset(p, which, offline) != MT_OK) {
            mt_cli_error();
            failed = 1;
            continue;
        }
        char v[4200], c[4200];
        if (mt_pretrained_vocab_path(p, v, sizeof v) != MT_OK) return mt_cli_error();
        printf("%s: vocab %s\n", p->name, v);
        if (p->checkpoint_file && mt_pretrained_locate(p, MT_PRETRAINED_CHECKPOINT, c, sizeof c, NULL, 0) > 0)
            printf("%s: checkpoint %s\n", p->name, c);
        else if (p->checkpoint_file && !p->checkpoint_url)
            printf("%s: checkpoint not downloaded (no address megatune reads): %s\n", p->name, p->checkpoint_source);
    }
    return failed;
}
