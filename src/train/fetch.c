#include "train/fetch.h"

#include <stdio.h>
#include <string.h>

#include "net/download.h"
#include "text/pretrained.h"

static mt_status fetch_local(const mt_train_config *cfg, int resuming) {
    const char *lname = cfg->model.language_model.pretrained_model_name;
    const char *tname = cfg->model.tokenizer.tokenizer_name ? cfg->model.tokenizer.tokenizer_name : lname;
    const mt_pretrained_info *lp = lname ? mt_pretrained_find(lname) : NULL;
    const mt_pretrained_info *tp = tname ? mt_pretrained_find(tname) : NULL;
    if (!tp) tp = lp; // as mt_session_open_tokenizer
    unsigned tw = tp && !cfg->model.tokenizer.vocab_file ? MT_DOWNLOAD_VOCAB : 0;
    unsigned lw = lp && lp->checkpoint_file && !resuming && !cfg->init_from_nemo_model && !cfg->pretrained_model &&
                          !cfg->model.language_model.lm_checkpoint
                      ? MT_DOWNLOAD_CHECKPOINT
                      : 0;
    int offline = mt_download_offline();
    if (tp == lp) return lp && (tw | lw) ? mt_download_preset(lp, tw | lw, offline) : MT_OK;
    // Two presets: try both, so one message names everything that is missing.
    mt_status a = tw ? mt_download_preset(tp, tw, offline) : MT_OK;
    char first[8192] = "";
    if (a != MT_OK) snprintf(first, sizeof first, "%s", mt_last_error());
    mt_status b = lw ? mt_download_preset(lp, lw, offline) : MT_OK;
    if (a != MT_OK && b != MT_OK) return mt_fail(b, "%s\n%s", first, mt_last_error());
    if (a != MT_OK) return mt_fail(a, "%s", first);
    return b;
}

mt_status mt_train_fetch_pretrained(const mt_train_config *cfg, const mt_parallel *par, int resuming) {
    int many = par && par->world_size > 1;
    mt_status st = MT_OK;
    if (!many || par->local_rank == 0) st = fetch_local(cfg, resuming);
    if (!many) return st;
    // Everyone learns whether every host's downloader succeeded, and global rank 0's message, so
    // whichever rank reports first (and ends the job) names the files; the others touch no network.
    float bad = st != MT_OK;
    mt_status cs = mt_all_reduce(par->world, &bad, 1, MT_REDUCE_MAX);
    if (cs != MT_OK) return cs;
    if (bad == 0.0f) return MT_OK;
    char why[4096] = "";
    if (par->world_rank == 0 && st != MT_OK) snprintf(why, sizeof why, "%s", mt_last_error());
    cs = mt_broadcast(par->world, why, sizeof why, 0);
    if (cs != MT_OK) return cs;
    if (st != MT_OK) return st;
    if (why[0]) return mt_fail(MT_ERR_IO, "%s", why);
    return mt_fail(MT_ERR_IO, "the pretrained files were not fetched: the first process of another host (local rank 0) "
                   "failed; its message says why");
}
