// megatune: fine-tune Megatron-BERT-family models. This file only dispatches subcommands.
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/status.h"

// A subcommand whose module has not landed yet is a weak fallback that says so; the real
// definition in cmd_<name>.c replaces it at link time.
#define PENDING(fn, what)                                                                  \
    __attribute__((weak)) int fn(int argc, char **argv) {                                  \
        (void)argc; (void)argv;                                                            \
        fprintf(stderr, "megatune: '%s' is not available in this build yet\n", what);      \
        return 2;                                                                          \
    }
PENDING(mt_cmd_train, "train")
PENDING(mt_cmd_test, "test")
PENDING(mt_cmd_predict, "predict")
PENDING(mt_cmd_tokenize, "tokenize")
PENDING(mt_cmd_inspect, "inspect")
PENDING(mt_cmd_convert, "convert")
PENDING(mt_cmd_data, "data")
PENDING(mt_cmd_eval_squad, "eval-squad")
PENDING(mt_cmd_download, "download")

int mt_cli_is_override(const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq) return 0;
    const char *k = arg;
    if (k[0] == '+' && k[1] == '+') k += 2;
    else if (*k == '+' || *k == '~') k++;
    if (k == eq || !(isalpha((unsigned char)*k) || *k == '_')) return 0;
    for (; k < eq; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '.') return 0;
    return 1;
}

int mt_cli_error(void) {
    fprintf(stderr, "megatune: error: %s\n", mt_last_error());
    return 1;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"train", mt_cmd_train, "fine-tune a model from a YAML config (+ key=value overrides)"},
    {"test", mt_cmd_test, "evaluate a .nemo model on a test set and print its metrics"},
    {"predict", mt_cmd_predict, "run a .nemo model on input text and write predictions"},
    {"tokenize", mt_cmd_tokenize, "WordPiece-tokenize stdin lines (ids or tokens)"},
    {"inspect", mt_cmd_inspect, "print a checkpoint's tree (.pt, Megatron folder, .nemo, .safetensors)"},
    {"convert", mt_cmd_convert, "convert checkpoints between formats and tensor-parallel sizes"},
    {"eval-squad", mt_cmd_eval_squad, "score SQuAD predictions as the official evaluate-v1.1/v2.0 scripts do"},
    {"download", mt_cmd_download, "fetch pretrained names' checkpoints and vocabs (--list: presets and sizes)"},
    {"data", mt_cmd_data, "data tools: import-iob (CoNLL/IOB -> NeMo text/labels files), import-chemprot, import-pnc, import-atis"},
    {"version", mt_cmd_version, "the version, and the CPU, ISA and libraries the products run on here"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: megatune <command> [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'megatune <command> --help' shows a command's options and examples.\n");
}

// OpenMP threads that spin while waiting steal the CPU from each other and from anything else
// running (on 2 cores, 120 tiny training steps took 42 s instead of 0.6 s). libgomp reads
// OMP_WAIT_POLICY once, before main(), so when the user has not chosen a policy we set PASSIVE
// and start again. Passive waiting costs nothing measurable on the benchmark shapes.
static void prefer_passive_openmp(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the default policy.
}

int main(int argc, char **argv) {
    prefer_passive_openmp(argv);
    // Past a file-size limit (ulimit -f) a write then fails with EFBIG and a message naming the
    // file, its temporary removed, instead of SIGXFSZ killing the process mid-write.
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) return mt_cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "megatune: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
