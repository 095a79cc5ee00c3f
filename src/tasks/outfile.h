// Output files that appear whole or not at all: written to a temporary file beside the target
// and renamed over it only on success, so a failed or killed run leaves the previous file (or
// none) instead of a truncated one. "-" means stdout (written directly).
#ifndef MT_TASKS_OUTFILE_H
#define MT_TASKS_OUTFILE_H

#include <stdio.h>
#include "core/status.h"

typedef struct {
    FILE *f;   // write here
    char *path; // the target (NULL for stdout)
    char *tmp;  // the temporary file beside it
} mt_outfile;

// Creates path's temporary file (same folder, so the rename is atomic). The target is not touched.
mt_status mt_outfile_open(mt_outfile *o, const char *path) MT_WARN_UNUSED;
// Flushes, fsyncs and renames the temporary file into place; on any failure removes it.
mt_status mt_outfile_commit(mt_outfile *o) MT_WARN_UNUSED;
// The same for files that belong together (a text and its labels, predictions and n-best): every
// one is written out and synced before any is renamed, so a full disk leaves all targets as they
// were; if a rename still fails, the ones already in place are removed. Entries whose file is not
// open (never opened, or stdout already committed) are skipped.
mt_status mt_outfile_commit_all(mt_outfile *const *o, int n) MT_WARN_UNUSED;
// Removes the temporary file; the target keeps its previous content. Safe after commit / twice.
void mt_outfile_abort(mt_outfile *o);

#endif
