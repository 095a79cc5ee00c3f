// One HTTP(S) GET into a file, through libcurl: redirects, TLS (the system CA store), proxies from
// the usual environment variables (http_proxy, https_proxy, no_proxy, as curl reads them),
// connect and stall timeouts, retries with exponential backoff, and resumption. The target is a
// partial file: whatever it already holds is asked for no more (Range: bytes=N-); a server that
// answers 206 appends, one that answers 200 starts over. The size the server announced
// (Content-Length / Content-Range) is checked at the end. Nothing here knows what the file is.
#ifndef MT_NET_HTTP_H
#define MT_NET_HTTP_H

#include <stdint.h>
#include "core/status.h"

typedef struct {
    const char *label;   // short name in progress lines ("megatron-bert-345m-uncased/vocab.txt")
    int retries;         // extra attempts after a transient failure (connection, 5xx, cut short)
    int stall_seconds;   // abort an attempt that moves under 1 KiB/s for this long
    int progress;        // 1: a bar on a terminal (stderr), plain lines otherwise; 0: silent
} mt_http_opts;

// Defaults, overridable from the environment: MEGATUNE_DOWNLOAD_RETRIES (4),
// MEGATUNE_DOWNLOAD_STALL_SECONDS (60).
void mt_http_opts_default(mt_http_opts *o, const char *label);

// GETs `url` into `part_path`, resuming from its current size. On success *bytes is the file's
// final size. On failure the message names the address, the HTTP status or the transfer error
// and what was received; the partial file is left for the caller to keep or remove.
mt_status mt_http_download(const char *url, const char *part_path, const mt_http_opts *o, int64_t *bytes) MT_WARN_UNUSED;

#endif
