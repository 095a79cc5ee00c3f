// megatune tokenize: WordPiece-tokenize stdin lines and print ids (or tokens, offsets).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "net/download.h"
#include "core/status.h"
#include "model/config.h"
#include "text/pretrained.h"
#include "text/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: megatune tokenize (--vocab-file FILE | --pretrained NAME) [options] < text\n"
            "\n"
            "Reads text lines on stdin and prints one output line per input line: the WordPiece token ids\n"
            "separated by spaces (no [CLS]/[SEP] added). The tokenization is BERT's (Hugging Face\n"
            "BertWordPieceTokenizer): cleaning, CJK split, punctuation split, greedy longest-match WordPiece;\n"
            "[CLS] [SEP] [PAD] [UNK] [MASK] written in the text stay single tokens.\n"
            "\n"
            "options:\n"
            "  --vocab-file FILE          WordPiece vocab, one token per line (line number = id)\n"
            "  --pretrained NAME          take the vocab and casing of a pretrained name from the model\n"
            "                             directory ($MEGATUNE_MODEL_DIR, else ~/.cache/megatune):\n"
            "                             <dir>/<NAME>/vocab.txt; --vocab-file overrides the file\n"
            "  --uncased | --cased        lower-case and strip accents, or keep the text as is\n"
            "                             (default: the pretrained name's casing, else --uncased)\n"
            "  --tokens                   print token strings instead of ids\n"
            "  --offsets                  print each token as X(start,end,word): the byte span [start,end)\n"
            "                             in the input line and the index of the whitespace-separated word\n"
            "                             (Python str.split()) it came from\n"
            "  --invalid-utf8=error       (default) bad UTF-8 stops with an error naming line and byte\n"
            "  --invalid-utf8=replace     treat invalid bytes as U+FFFD, which BERT's cleaning removes\n"
            "  --info                     print the vocab's size, Megatron's padded size and the special\n"
            "                             token ids, then exit (--tp N: tensor-parallel size, default 1)\n"
            "  --help                     this text\n"
            "\n"
            "pretrained names: %s\n"
            "\n"
            "examples:\n"
            "  echo 'Hello, world!' | megatune tokenize --vocab-file bert-base-uncased/vocab.txt\n"
            "      7592 1010 2088 999\n"
            "  echo 'Hello, world!' | megatune tokenize --vocab-file vocab.txt --tokens --offsets\n"
            "      hello(0,5,0) ,(5,6,0) world(7,12,1) !(12,13,1)\n"
            "  megatune tokenize --pretrained megatron-bert-345m-cased --tokens < sentences.txt\n"
            "  megatune tokenize --vocab-file vocab.txt --info --tp 2\n",
            mt_pretrained_names());
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "megatune tokenize: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see 'megatune tokenize --help')\n");
    return 2;
}

// A token as its id or its vocab string (printed as is), with its span and word if asked.
static void put_token(FILE *out, const mt_tokenizer *t, const mt_token *k, int tokens, int offsets) {
    if (tokens) {
        const char *s = mt_vocab_token(mt_tokenizer_vocab(t), k->id);
        fputs(s ? s : "?", out);
    } else {
        fprintf(out, "%d", (int)k->id);
    }
    if (offsets) fprintf(out, "(%u,%u,%d)", k->start, k->end, (int)k->word);
}

int mt_cmd_tokenize(int argc, char **argv) {
    const char *vocab_file = NULL, *pretrained = NULL;
    int casing = -1, tokens = 0, offsets = 0, info = 0, tp = 1;
    mt_utf8_policy policy = MT_UTF8_STRICT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--vocab-file") || !strcmp(a, "--vocab") || !strcmp(a, "--pretrained") ||
                   !strcmp(a, "--tp") || !strcmp(a, "--invalid-utf8")) {
            if (i + 1 >= argc) return usage_error("%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--pretrained"))
                pretrained = v;
            else if (!strcmp(a, "--tp")) {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || n < 1 || n > 4096) return usage_error("--tp needs a positive integer, got '%s'", v);
                tp = (int)n;
            } else if (!strcmp(a, "--invalid-utf8")) {
                if (!strcmp(v, "error"))
                    policy = MT_UTF8_STRICT;
                else if (!strcmp(v, "replace"))
                    policy = MT_UTF8_REPLACE;
                else
                    return usage_error("--invalid-utf8 is 'error' or 'replace', not '%s'", v);
            } else
                vocab_file = v;
        } else if (!strncmp(a, "--vocab-file=", 13)) {
            vocab_file = a + 13;
        } else if (!strncmp(a, "--pretrained=", 13)) {
            pretrained = a + 13;
        } else if (!strcmp(a, "--invalid-utf8=error")) {
            policy = MT_UTF8_STRICT;
        } else if (!strcmp(a, "--invalid-utf8=replace")) {
            policy = MT_UTF8_REPLACE;
        } else if (!strncmp(a, "--invalid-utf8=", 15)) {
            return usage_error("--invalid-utf8 is 'error' or 'replace', not '%s'", a + 15);
        } else if (!strcmp(a, "--uncased")) {
            casing = 1;
        } else if (!strcmp(a, "--cased")) {
            casing = 0;
        } else if (!strcmp(a, "--tokens")) {
            tokens = 1;
        } else if (!strcmp(a, "--offsets")) {
            offsets = 1;
        } else if (!strcmp(a, "--info")) {
            info = 1;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    char path[4096];
    if (pretrained) {
        const mt_pretrained_info *p;
        if (mt_pretrained_lookup(pretrained, &p) != MT_OK) return mt_cli_error();
        if (casing < 0) casing = p->lowercase;
        if (!vocab_file) {
            if (mt_download_preset(p, MT_DOWNLOAD_VOCAB, mt_download_offline()) != MT_OK ||
                mt_pretrained_vocab_path(p, path, sizeof path) != MT_OK)
                return mt_cli_error();
            vocab_file = path;
        }
    }
    if (!vocab_file) return usage_error("%s", "give --vocab-file FILE or --pretrained NAME");
    if (casing < 0) casing = 1;

    mt_tokenizer_options opt;
    mt_tokenizer_options_default(&opt, casing);
    opt.utf8 = policy;
    mt_tokenizer *t = NULL;
    if (mt_tokenizer_create_from_file(vocab_file, &opt, &t) != MT_OK) return mt_cli_error();

    if (info) {
        const mt_vocab *v = mt_tokenizer_vocab(t);
        int size = mt_vocab_size(v);
        printf("vocab_file %s\n", vocab_file);
        printf("casing %s\n", casing ? "uncased" : "cased");
        printf("vocab_size %d\n", size);
        printf("duplicate_lines %d\n", mt_vocab_duplicates(v));
        printf("padded_vocab_size %d (multiple of 128 x tp %d)\n", mt_padded_vocab_size(size, 128, tp), tp);
        printf("cls_id %d\nsep_id %d\npad_id %d\nunk_id %d\nmask_id %d\n", (int)mt_tokenizer_cls_id(t),
               (int)mt_tokenizer_sep_id(t), (int)mt_tokenizer_pad_id(t), (int)mt_tokenizer_unk_id(t),
               (int)mt_tokenizer_mask_id(t));
        mt_tokenizer_free(t);
        return 0;
    }

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    char *line = NULL;
    size_t line_cap = 0, tok_cap = 0, n = 0;
    mt_token *toks = NULL;
    long lineno = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        char source[64];
        snprintf(source, sizeof source, "stdin line %ld", lineno);
        if (mt_tokenize_grow(t, line, len, &toks, &tok_cap, &n, source) != MT_OK) {
            fflush(stdout);
            rc = mt_cli_error();
            break;
        }
        for (size_t k = 0; k < n; k++) {
            if (k) putchar(' ');
            put_token(stdout, t, &toks[k], tokens, offsets);
        }
        putchar('\n');
    }
    if (!rc && ferror(stdin)) {
        mt_fail(MT_ERR_IO, "stdin: read error after line %ld", lineno);
        rc = mt_cli_error();
    }
    if (fflush(stdout) != 0 && !rc) {
        mt_fail(MT_ERR_IO, "stdout: write error (disk full or closed pipe?)");
        rc = mt_cli_error();
    }
    free(line);
    free(toks);
    mt_tokenizer_free(t);
    return rc;
}
