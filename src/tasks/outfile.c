// Atomic output files (see outfile.h).
#include "tasks/outfile.h"

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

mt_status mt_outfile_commit(mt_outfile *o) {
    if (!o->f) return mt_fail(MT_ERR_INVALID, "output file committed twice");
    if (o->f == stdout) {
        o->f = NULL;
        if (fflush(stdout) != 0) return mt_fail(MT_ERR_IO, "stdout: write failed: %s", strerror(errno));
        return MT_OK;
    }
    mt_status s = MT_OK;
    int bad = ferror(o->f) || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0;
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) s = mt_fail(MT_ERR_IO, "%s: write failed (disk full?): %s", o->path, strerror(errno));
    else if (rename(o->tmp, o->path) != 0)
        s = mt_fail(MT_ERR_IO, "%s: cannot rename %s into place: %s", o->path, o->tmp, strerror(errno));
    if (s == MT_OK) {
        free(o->tmp);
        o->tmp = NULL;
        // make the rename itself durable
        char *dir = mt_strdup(o->path);
        if (dir) {
            char *sl = strrchr(dir, '/');
            const char *d = sl ? (sl == dir ? "/" : (*sl = 0, dir)) : ".";
            int dfd = open(d, O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    mt_outfile_abort(o);
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
