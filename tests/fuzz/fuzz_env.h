// Included by every fuzz target: the process setup that keeps one execution cheap without
// changing what it tests. Where the fuzzer spent its time before (perf, AMD EPYC Zen 4, 2 cores):
// the task and SQuAD targets 60-75% in ext4 creating, truncating and writing back their scratch
// files, the .nemo target a quarter in OpenMP worker threads spinning beside a one-batch model
// and in mkdir of its restore folder on disk.
#ifndef MT_FUZZ_ENV_H
#define MT_FUZZ_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/status.h"

// Where the scratch files go: $MEGATUNE_FUZZ_TMP, else /dev/shm when it is a writable folder (a
// tmpfs: the same open/write/rename/unlink calls, no block device behind them), else /tmp.
static const char *fuzz_tmp_base(void) {
    const char *b = getenv("MEGATUNE_FUZZ_TMP");
    if (b && *b) return b;
    return access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
}

// A failed open must say which file: the message names `name` (out of memory excepted: with
// allocator_may_return_null a failed allocation may be reported without it). Aborts otherwise.
static inline void fuzz_expect_named(mt_status s, const char *name) {
    if (s == MT_OK || s == MT_ERR_NOMEM) return;
    if (!strstr(mt_last_error(), name)) {
        fprintf(stderr, "%s failed (%s) without naming it: %s\n", name, mt_status_name(s), mt_last_error());
        abort();
    }
}

// libFuzzer calls this once before the first input. One OpenMP thread: the inputs are tiny and a
// second thread only spins against the fuzzer on a shared machine. TMPDIR (where a .nemo restore
// unpacks its members) on the same scratch base. Both only when the user has not set them.
// The log's lines (mostly "ignoring unknown key" for mutated keys: several per input, each an
// unbuffered write to stderr: 618 MB of fuzzer log in 9.3 M nemo inputs) go to /dev/null through a
// buffered stream: still formatted, so a bad argument to a message is still caught, but no longer
// written to the terminal. MEGATUNE_FUZZ_VERBOSE=1 keeps them on stderr.
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    setenv("OMP_NUM_THREADS", "1", 0);
    setenv("TMPDIR", fuzz_tmp_base(), 0);
    const char *v = getenv("MEGATUNE_FUZZ_VERBOSE");
    if (!v || !*v || *v == '0') {
        FILE *sink = fopen("/dev/null", "w");
        if (sink) {
            mt_log_set_level(MT_LOG_OFF);
            mt_log_set_file(sink);
        }
    }
    return 0;
}

#endif
