// Atomic output files (see outfile.h).
#include "tasks/outfile.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

mt_status mt_outfile_open(mt_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return MT_OK;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return mt_fail(MT_ERR_IO, "%s: is a folder; give an output file name", path);
    size_t n = strlen(path) + 16;
    o->path = mt_strdup(path);
    o->tmp = mt_malloc(n);
    if (!o->path || !o->tmp) {
        mt_outfile_abort(o);
        return MT_ERR_NOMEM;
    }
    snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        mt_status s = mt_fail(MT_ERR_IO, "%s: cannot create the output: %s (does the folder exist and is it writable?)",
                              path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        mt_outfile_abort(o);
        return s;
    }
    // mkstemp makes 0600; give the file the mode fopen would have
    mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um);
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        mt_status s = mt_fail(MT_ERR_IO, "%s: cannot open: %s", o->tmp, strerror(errno));
        close(fd);
        mt_outfile_abort(o);
        return s;
    }
    return MT_OK;
}

// Writes o's file out and closes it, the temporary file kept for the rename (stdout: flushed).
static mt_status outfile_finish(mt_outfile *o) {
    if (o->f == stdout) {
        o->f = NULL;
        if (fflush(stdout) != 0) return mt_fail(MT_ERR_IO, "stdout: write failed: %s", strerror(errno));
        return MT_OK;
    }
    int bad = ferror(o->f) || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0;
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    return bad ? mt_fail(MT_ERR_IO, "%s: write failed (disk full?): %s", o->path, strerror(errno)) : MT_OK;
}

mt_status mt_outfile_commit(mt_outfile *o) {
    if (!o->f) return mt_fail(MT_ERR_INVALID, "output file committed twice");
    return mt_outfile_commit_all(&o, 1);
}

mt_status mt_outfile_commit_all(mt_outfile *const *o, int n) {
    mt_status s = MT_OK;
    int *open_ = mt_malloc(n > 0 ? (size_t)n * sizeof *open_ : 1);
    if (!open_) s = MT_ERR_NOMEM;
    for (int i = 0; i < n && !s; i++) {
        open_[i] = o[i]->f != NULL && o[i]->f != stdout; // (a file to rename)
        if (o[i]->f) s = outfile_finish(o[i]);
    }
    int done = 0;
    for (; done < n && !s; done++) {
        if (!open_[done]) continue;
        if (rename(o[done]->tmp, o[done]->path) != 0)
            s = mt_fail(MT_ERR_IO, "%s: cannot rename %s into place: %s", o[done]->path, o[done]->tmp, strerror(errno));
        else {
            free(o[done]->tmp);
            o[done]->tmp = NULL;
        }
    }
    for (int i = 0; i < n; i++) {
        if (s && i < done - 1 && open_ && open_[i]) unlink(o[i]->path); // (the set whole or not at all)
        else if (!s && open_[i]) mt_fsync_dir_of(o[i]->path);
        mt_outfile_abort(o[i]);
    }
    free(open_);
    return s;
}

void mt_outfile_abort(mt_outfile *o) {
    if (o->f && o->f != stdout) fclose(o->f);
    o->f = NULL;
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
}
