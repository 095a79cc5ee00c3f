// Fetching a pretrained name's missing files into the model directory, as NeMo does on first
// use, but so that nothing half-written is ever taken for a model:
//   <dir>/<name>/<file>.lock   flock()ed while one process checks, downloads and renames; a second
//                              process on the host waits, then finds the file in place
//   <dir>/<name>/<file>.part   the transfer (resumed with a Range request after a kill)
//   <dir>/<name>/<file>        appears only by rename(), after the size the server announced
//                              matched and the contents passed the preset's check (a torch
//                              checkpoint with the preset's shapes; a vocab with its line count)
// A failed download removes its .part and leaves the model directory as it found it.
// Environment: MEGATUNE_OFFLINE=1 (never connect), MEGATUNE_DOWNLOAD_MIRROR=http://host:port
// (replaces scheme and host of every address, keeping the path), plus net/http.h's variables.
#ifndef MT_NET_DOWNLOAD_H
#define MT_NET_DOWNLOAD_H

#include <stddef.h>
#include "core/status.h"
#include "text/pretrained.h"

#define MT_DOWNLOAD_VOCAB (1u << MT_PRETRAINED_VOCAB)
#define MT_DOWNLOAD_CHECKPOINT (1u << MT_PRETRAINED_CHECKPOINT)

// 1 when MEGATUNE_OFFLINE is set to 1/true/yes.
int mt_download_offline(void);
// Rewrites `url` for MEGATUNE_DOWNLOAD_MIRROR (unchanged when unset). Fails naming the variable
// when it is not http(s)://host[:port].
mt_status mt_download_address(const char *url, char *out, size_t cap) MT_WARN_UNUSED;
// Makes sure the files of `p` chosen by `which` (MT_DOWNLOAD_* bits) exist in the model directory
// or NeMo's cache, downloading what is missing unless `offline`. Every missing or failed file is
// named in one message.
mt_status mt_download_preset(const mt_pretrained_info *p, unsigned which, int offline) MT_WARN_UNUSED;
// The content checks run on a finished download (exposed for tests): `what` names the source in
// the message.
mt_status mt_download_check_vocab(const mt_pretrained_info *p, const char *path, const char *what) MT_WARN_UNUSED;
mt_status mt_download_check_checkpoint(const mt_pretrained_info *p, const char *path, const char *what) MT_WARN_UNUSED;

#endif
