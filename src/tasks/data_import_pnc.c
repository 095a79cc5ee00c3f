// `megatune data import-pnc`: raw text -> NeMo punctuation/capitalisation files, by the rules of
// NeMo's prepare_data_for_punctuation_capitalization.py (get_tatoeba_data.create_text_and_labels):
//   - each input line is split on whitespace; each piece is a "word";
//   - the punctuation label is the word's last character when it is one of , . ? (else O);
//   - every ASCII punctuation character except the apostrophe (Python's string.punctuation
//     without ') is deleted from the word, wherever it is ("don't" stays, "u.s." becomes "us");
//   - a word left empty is dropped together with its label (a free-standing "?" or "-" vanishes);
//   - the capitalisation label is U when the word's first character is upper case, else O;
//   - the word is written lower-cased; words and labels are joined by single spaces, one output
//     line per input line (a blank input line gives a blank line in both files).
// Output: OUT_DIR/text_<name> and OUT_DIR/labels_<name>, <name> = the input's file name.
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tasks/data_tools.h"
#include "tasks/outfile.h"
#include "tasks/task_internal.h"

static int pnc_strip(int c) { return c < 128 && c != '\'' && strchr("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~", c) && c; }

// Appends `word` with the punctuation removed and lower-cased to `out`; returns its byte count
// and sets *upper when its first kept character is upper case.
static size_t pnc_clean(const char *word, char *out, int *upper) {
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)word;
    utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(word), i = 0;
    size_t k = 0;
    int first = 1;
    *upper = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(s + i, len - i, &cp);
        if (step <= 0) { step = 1; cp = s[i]; } // input was checked as UTF-8; be safe anyway
        i += step;
        if (pnc_strip(cp)) continue;
        if (first) *upper = utf8proc_isupper(cp);
        first = 0;
        k += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)out + k);
    }
    out[k] = 0;
    return k;
}

mt_status mt_data_import_pnc(const char *in_path, const char *out_dir, size_t *n_lines, size_t *n_words) {
    const char *base = strrchr(in_path, '/');
    base = base ? base + 1 : in_path;
    char tpath[2048], lpath[2048];
    if (snprintf(tpath, sizeof tpath, "%s/text_%s", out_dir, base) >= (int)sizeof tpath ||
        snprintf(lpath, sizeof lpath, "%s/labels_%s", out_dir, base) >= (int)sizeof lpath)
        return mt_fail(MT_ERR_INVALID, "%s: output path too long", out_dir);
    mt_lines L;
    MT_TRY(mt_lines_open(&L, in_path));
    mt_outfile ot, ol;
    mt_status s = mt_outfile_open(&ot, tpath);
    if (s) { mt_lines_close(&L); return s; }
    if ((s = mt_outfile_open(&ol, lpath))) {
        mt_outfile_abort(&ot);
        mt_lines_close(&L);
        return s;
    }
    size_t nl = 0, nw = 0, cap = 0;
    char *buf = NULL, **f = NULL;
    size_t fcap = 0;
    char *line;
    size_t len;
    int r;
    while ((r = mt_lines_next(&L, &line, &len)) == 1) {
        if (len * 4 + 8 > cap) {
            cap = len * 4 + 8;
            char *nb = mt_realloc(buf, cap);
            if (!nb) { s = MT_ERR_NOMEM; break; }
            buf = nb;
        }
        if (len / 2 + 2 > fcap) {
            fcap = len / 2 + 2;
            char **nf = mt_realloc(f, fcap * sizeof *nf);
            if (!nf) { s = MT_ERR_NOMEM; break; }
            f = nf;
        }
        int n = mt_split_ws(line, f, (int)fcap), out = 0;
        for (int i = 0; i < n; i++) {
            size_t wl = strlen(f[i]);
            char punct = wl && strchr(",.?", f[i][wl - 1]) ? f[i][wl - 1] : 'O';
            int upper;
            if (pnc_clean(f[i], buf, &upper) == 0) continue;
            fprintf(ot.f, "%s%s", out ? " " : "", buf);
            fprintf(ol.f, "%s%c%c", out ? " " : "", punct, upper ? 'U' : 'O');
            out++;
        }
        fputc('\n', ot.f);
        fputc('\n', ol.f);
        nw += (size_t)out;
        nl++;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    if (!s && nw == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no word found in the text", in_path);
    if (!s) s = mt_outfile_commit_all((mt_outfile *const[]){&ot, &ol}, 2);
    mt_outfile_abort(&ot);
    mt_outfile_abort(&ol);
    mt_lines_close(&L);
    free(buf);
    free(f);
    if (n_lines) *n_lines = nl;
    if (n_words) *n_words = nw;
    return s;
}
