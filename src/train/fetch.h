// First use of a pretrained name in a run: the preset's missing vocab / checkpoint are downloaded
// (net/download.h) before anything reads them. Under mpirun the first process of each host
// (local rank 0) downloads while the others wait in one all-reduce, which also tells them whether
// it worked; the lock files keep two runs on one host from fetching the same file.
#ifndef MT_TRAIN_FETCH_H
#define MT_TRAIN_FETCH_H

#include "core/status.h"
#include "parallel/parallel.h"
#include "train/config.h"

// The files `cfg` will read from presets: the tokenizer preset's vocab when
// model.tokenizer.vocab_file is null; the language model preset's checkpoint when the run starts
// from it (no .nemo, no lm_checkpoint, not `resuming`). `par` may be NULL (one process).
mt_status mt_train_fetch_pretrained(const mt_train_config *cfg, const mt_parallel *par, int resuming) MT_WARN_UNUSED;

#endif
