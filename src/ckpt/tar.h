// The one reader of .nemo archives (tar, optionally gzip) that every command shares: the training
// restore (train/nemo.c) and `megatune inspect` open archives and read members into memory through
// it, so both refuse the same things with the same caps.
#ifndef MT_CKPT_TAR_H
#define MT_CKPT_TAR_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

struct archive;

// Weights (.ckpt/.pt/.pth members) may be large; everything else (YAML, JSON, vocab, label map) is
// small, and a lower cap keeps a disguised gzip bomb from taking gigabytes of memory.
#define MT_TAR_WEIGHTS_MAX ((int64_t)16 << 30)
#define MT_TAR_SMALL_MAX ((int64_t)256 << 20)

// Opens `path` for reading (gzip or plain tar). On failure the message says what the file is
// instead (a torch zip, not a tar) and *out is NULL. Free with archive_read_free.
mt_status mt_tar_open(const char *path, struct archive **out) MT_WARN_UNUSED;
// The cap for a member of this name: MT_TAR_WEIGHTS_MAX for weights, MT_TAR_SMALL_MAX otherwise.
int64_t mt_tar_member_limit(const char *name);
// Reads the current member (header size `size`, -1 when unknown) into a new buffer with a NUL after
// the data (*len excludes it). The header's size is a claim: the buffer grows as bytes arrive, and
// the read stops past the member's cap. Errors name the archive and the member.
mt_status mt_tar_read_member(struct archive *a, const char *path, const char *name, int64_t size, char **buf,
                             size_t *len) MT_WARN_UNUSED;

#endif
