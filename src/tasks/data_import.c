// `megatune data` converters: CoNLL/IOB -> text_/labels_ files, ChemProt string labels -> ids.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tasks/data_tools.h"
#include "core/file.h"
#include "tasks/outfile.h"
#include "tasks/task_internal.h"

void mt_data_iob_split_name(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    const char *ext = dot ? dot + 1 : "";
    if (!strcmp(ext, "train")) { snprintf(out, cap, "train"); return; }
    if (!strcmp(ext, "testa")) { snprintf(out, cap, "dev"); return; }
    if (!strcmp(ext, "testb")) { snprintf(out, cap, "test"); return; }
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n >= cap) n = cap - 1;
    memcpy(out, base, n);
    out[n] = '\0';
    if (!strcmp(out, "devel")) snprintf(out, cap, "dev");
}

static int is_ws_only(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

mt_status mt_data_import_iob(const char *in_path, const char *out_dir, const char *split, size_t *n_sentences,
                             size_t *n_words) {
    char sp[256], tpath[2048], lpath[2048];
    if (split && *split) snprintf(sp, sizeof sp, "%s", split);
    else mt_data_iob_split_name(in_path, sp, sizeof sp);
    MT_TRY(mt_path_fmt(tpath, sizeof tpath, "%s/text_%s.txt", out_dir, sp));
    MT_TRY(mt_path_fmt(lpath, sizeof lpath, "%s/labels_%s.txt", out_dir, sp));
    mt_lines L;
    MT_TRY(mt_lines_open(&L, in_path));
    // both files appear only when the whole input converted (a bad line leaves no partial pair)
    mt_outfile ot, ol;
    mt_status so = mt_outfile_open(&ot, tpath);
    if (so) {
        mt_lines_close(&L);
        return so;
    }
    if ((so = mt_outfile_open(&ol, lpath))) {
        mt_outfile_abort(&ot);
        mt_lines_close(&L);
        return so;
    }
    FILE *ft = ot.f, *fl = ol.f;
    size_t ns = 0, nw = 0, in_sentence = 0;
    char *line;
    size_t len;
    int r;
    mt_status s = MT_OK;
    while ((r = mt_lines_next(&L, &line, &len)) == 1) {
        // one field more than a token line may have, so that a longer line is seen (and refused)
        // instead of its 64th field silently taken as the label
        enum { MAX_FIELDS = 64 };
        char *f[MAX_FIELDS + 1];
        int n = mt_split_ws(line, f, MAX_FIELDS + 1);
        // a blank line, or one of other whitespace only (\v, \f: found by fuzz_task_loaders, f[0] was unset)
        if (n == 0) {
            if (in_sentence) {
                fputc('\n', ft);
                fputc('\n', fl);
                ns++;
                in_sentence = 0;
            }
            continue;
        }
        if (!strcmp(f[0], "-DOCSTART-")) continue;
        if (n < 2) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: a token line needs at least 2 fields (word ... label), got '%s'", in_path,
                        L.lineno, f[0]);
            break;
        }
        if (n > MAX_FIELDS) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: more than %d fields; a token line is 'word ... label' (the first field "
                        "the word, the last the label): is this a CoNLL/IOB file, with one token per line?", in_path,
                        L.lineno, MAX_FIELDS);
            break;
        }
        fprintf(ft, "%s%s", in_sentence ? " " : "", f[0]);
        fprintf(fl, "%s%s", in_sentence ? " " : "", f[n - 1]);
        in_sentence++;
        nw++;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    if (!s && in_sentence) {
        fputc('\n', ft);
        fputc('\n', fl);
        ns++;
    }
    if (!s && ns == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no sentence found (expected 'word ... label' lines)", in_path);
    if (!s) s = mt_outfile_commit_all((mt_outfile *const[]){&ot, &ol}, 2);
    mt_outfile_abort(&ot);
    mt_outfile_abort(&ol);
    mt_lines_close(&L);
    if (n_sentences) *n_sentences = ns;
    if (n_words) *n_words = nw;
    return s;
}

typedef struct {
    char **names;
    int n;
} mt_lmap;

static int lmap_find(const mt_lmap *m, const char *s) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->names[i], s)) return i;
    return -1;
}

static mt_status lmap_add(mt_lmap *m, const char *s) {
    char **nn = mt_realloc(m->names, (size_t)(m->n + 1) * sizeof *nn);
    if (!nn) return MT_ERR_NOMEM;
    m->names = nn;
    if (!(m->names[m->n] = mt_strdup(s))) return MT_ERR_NOMEM;
    m->n++;
    return MT_OK;
}

static void lmap_free(mt_lmap *m) {
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
}

static mt_status lmap_read(mt_lmap *m, const char *path) {
    mt_lines L;
    MT_TRY(mt_lines_open(&L, path));
    char *line;
    size_t len;
    int r;
    mt_status s = MT_OK;
    while ((r = mt_lines_next(&L, &line, &len)) == 1) {
        if (is_ws_only(line)) continue;
        char *f[3];
        int n = mt_split_tab(line, f, 3);
        long id;
        if (n != 2 || !mt_parse_int(f[1], &id) || id != m->n) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: expected 'label<TAB>%d' (ids in order from 0)", path, L.lineno, m->n);
            break;
        }
        if ((s = lmap_add(m, f[0]))) break;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    mt_lines_close(&L);
    return s;
}

mt_status mt_data_import_chemprot(const char *in_path, const char *out_path, const char *label_map, size_t *n_examples,
                                  int *n_labels) {
    mt_lmap m = {0};
    struct stat st;
    int have_map = label_map && stat(label_map, &st) == 0;
    if (have_map) MT_TRY(lmap_read(&m, label_map));
    mt_lines L;
    mt_status s = mt_lines_open(&L, in_path);
    if (s) { lmap_free(&m); return s; }
    mt_outfile oo;
    if ((s = mt_outfile_open(&oo, out_path))) {
        mt_lines_close(&L);
        lmap_free(&m);
        return s;
    }
    FILE *fo = oo.f;
    fprintf(fo, "sentence\tlabel\n");
    char *line;
    size_t len, n = 0;
    int r;
    while ((r = mt_lines_next(&L, &line, &len)) == 1) {
        if (is_ws_only(line)) continue;
        char *tab = strrchr(line, '\t');
        if (!tab) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: missing label: expected 'sentence<TAB>label'", in_path, L.lineno);
            break;
        }
        *tab = '\0';
        char *lab = tab + 1;
        while (*lab == ' ') lab++;
        size_t ll = strlen(lab);
        while (ll > 0 && lab[ll - 1] == ' ') lab[--ll] = '\0';
        if (L.lineno == 1 && !strcmp(lab, "label")) continue; // header
        if (!*lab) {
            s = mt_fail(MT_ERR_FORMAT, "%s:%d: missing label after the TAB", in_path, L.lineno);
            break;
        }
        int id = lmap_find(&m, lab);
        if (id < 0) {
            if (have_map) {
                s = mt_fail(MT_ERR_FORMAT, "%s:%d: label '%.40s' is not in the label map %s; add it there", in_path,
                            L.lineno, lab, label_map);
                break;
            }
            if ((s = lmap_add(&m, lab))) break;
            id = m.n - 1;
        }
        fprintf(fo, "%s\t%d\n", line, id);
        n++;
    }
    if (r < 0) s = MT_ERR_FORMAT;
    if (!s && n == 0) s = mt_fail(MT_ERR_FORMAT, "%s: no example found", in_path);
    mt_outfile om = {0};
    if (!s && label_map && !have_map && !(s = mt_outfile_open(&om, label_map)))
        for (int i = 0; i < m.n; i++) fprintf(om.f, "%s\t%d\n", m.names[i], i);
    // both or neither, the data file renamed last: it never exists without the label map that
    // gives its ids meaning
    if (!s) s = mt_outfile_commit_all((mt_outfile *const[]){&om, &oo}, 2);
    mt_outfile_abort(&om);
    mt_outfile_abort(&oo);
    if (n_examples) *n_examples = n;
    if (n_labels) *n_labels = m.n;
    mt_lines_close(&L);
    lmap_free(&m);
    return s;
}
