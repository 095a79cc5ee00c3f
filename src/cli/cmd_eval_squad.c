// `megatune eval-squad DATA.json PREDICTIONS.json [--na-prob-file NULL_ODDS.json]`: the official
// SQuAD evaluate-v1.1.py / evaluate-v2.0.py output, version taken from the data file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "tasks/squad.h"

static void eval_usage(FILE *out) {
    fprintf(out, "usage: megatune eval-squad DATA.json PREDICTIONS.json [--na-prob-file NULL_ODDS.json]\n"
                 "  Prints what the official evaluate-v1.1.py (exact_match, f1) or evaluate-v2.0.py (exact, f1,\n"
                 "  total, HasAns_*, NoAns_*, and best_* with --na-prob-file) print; the version comes from the\n"
                 "  data file's \"version\". PREDICTIONS.json maps question ids to answer strings (\"\" = no answer).\n");
}

int mt_cmd_eval_squad(int argc, char **argv) {
    const char *pos[2] = {0}, *na = NULL;
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { eval_usage(stdout); return 0; }
        if (!strcmp(a, "--na-prob-file") || !strcmp(a, "-n")) {
            if (i + 1 >= argc) { fprintf(stderr, "megatune eval-squad: %s needs a file\n", a); return 2; }
            na = argv[++i];
        } else if (!strncmp(a, "--na-prob-file=", 15)) {
            na = a + 15;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "megatune eval-squad: unknown option '%s'\n", a);
            eval_usage(stderr);
            return 2;
        } else if (np < 2) {
            pos[np++] = a;
        } else {
            fprintf(stderr, "megatune eval-squad: too many arguments\n");
            eval_usage(stderr);
            return 2;
        }
    }
    if (np != 2) { eval_usage(stderr); return 2; }
    // Scores go to a buffer first so a late error prints nothing on stdout.
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) { fprintf(stderr, "megatune: error: out of memory\n"); return 1; }
    mt_status s = mt_squad_eval_files(pos[0], pos[1], na, mem);
    fclose(mem);
    if (!s && (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0))
        s = mt_fail(MT_ERR_IO, "stdout: write error (disk full or closed pipe?)");
    free(buf);
    return s ? mt_cli_error() : 0;
}
