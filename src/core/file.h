// Reading a whole file into memory: one growth loop for every small text file megatune reads
// (configs, vocabs, data files). Callers open the file and word their own messages, since only
// they know what the file is and what the fix would be.
#ifndef MT_CORE_FILE_H
#define MT_CORE_FILE_H

#include <stdio.h>
#include "core/status.h"

// Reads the rest of `f` into a new buffer with a NUL after the data (*len excludes it); free()
// it. Returns MT_OK; MT_ERR_NOMEM (message set); MT_ERR_IO on a read error, with errno kept for
// the caller's message; MT_ERR_FORMAT when the data exceeds max_bytes (0 = no limit). For the
// last two no message is set: the caller names the file.
mt_status mt_read_all(FILE *f, size_t max_bytes, char **buf, size_t *len) MT_WARN_UNUSED;

// Test hook for the kill -9 campaign (tests/e2e/test_fault_kill.sh): with MEGATUNE_FAULT_DELAY_MS=N
// in the environment, every checkpoint and .nemo write sleeps N ms halfway, part of its temporary
// file on disk, so that a kill lands inside the write window at will. Unset, it does nothing.
void mt_fault_pause(void);

// Durable writes. mt_write_synced creates or truncates `path`, writes `data`, fsyncs and closes it;
// on any failure the file is removed and the message names it (the error is the failing call's,
// saved before the cleanup). mt_fsync_dir_of makes a rename into the folder holding `path` durable
// (best effort: a folder that cannot be opened is left as it is).
mt_status mt_write_synced(const char *path, const void *data, size_t len) MT_WARN_UNUSED;
void mt_fsync_dir_of(const char *path);

// Paths built into fixed buffers: formats like snprintf but fails (MT_ERR_INVALID, message set,
// naming the start of the path and the limit) instead of silently cutting the path, which would
// read or write a different file. mt_path_join(out, cap, dir, name) is "dir/name".
mt_status mt_path_fmt(char *out, size_t cap, const char *fmt, ...) MT_PRINTF(3, 4) MT_WARN_UNUSED;
mt_status mt_path_join(char *out, size_t cap, const char *dir, const char *name) MT_WARN_UNUSED;

#endif
