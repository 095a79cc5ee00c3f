// .nemo files written the way NeMo writes them (tools/make_nemo_ref.py, from NeMo's source: member
// names of v1.0-final and of the docs' model-parallel listing, megatron_checkpoint_version.json 0,
// 1.0 and 3.0, TP=1 and TP=2 with mp_rank_XX/model_weights.ckpt, vocab as tokenizer.vocab_file or
// only as tokenizer_vocab_dict.json) restore in megatune to the PyTorch reference's logits
// (tools/torch_ref.py, float64, the same weights in the [heads, 3, head_dim] layout).
// Controls: version 4.0 is refused with a message naming it; version-0 weights that claim 3.0
// restore to logits far from the reference (so the version really decides the layout).
// Tolerance: 1e-4 * max|ref| + 1e-5 over valid positions (fp32 vs float64 reference).
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "parity/parity_util.h"
#include "train/nemo.h"
#include "test_util.h"

static mttf_file g_in, g_ref;

static void to_i32(const mttf_tensor *t, int32_t *dst) { memcpy(dst, t->f, t->n * sizeof *dst); }

// Restores `nemo`, runs the reference batch, returns the max abs logit error over valid positions
// (-1 when the restore failed).
static double logit_error(const char *nemo, double *ref_max) {
    mt_nemo *n = NULL;
    if (mt_nemo_restore(nemo, NULL, 0, &n) != MT_OK) {
        fprintf(stderr, "%s: %s\n", nemo, mt_last_error());
        return -1;
    }
    const mttf_tensor *ids = mttf_find(&g_in, "batch/input_ids"), *mask = mttf_find(&g_in, "batch/attention_mask"),
                      *types = mttf_find(&g_in, "batch/token_type_ids"), *ref = mttf_find(&g_ref, "logits");
    int B = (int)ids->dims[0], T = (int)ids->dims[1];
    int32_t *bi = calloc(ids->n, 4), *bm = calloc(ids->n, 4), *bt = calloc(ids->n, 4);
    to_i32(ids, bi);
    to_i32(mask, bm);
    to_i32(types, bt);
    mt_batch b = {.B = B, .T = T, .input_ids = bi, .token_type_ids = bt, .attention_mask = bm};
    double err = -1, mx = 0;
    if (mt_model_forward(n->s.model, &b, 0, 0, 0, NULL) == MT_OK) {
        size_t cnt;
        const float *lg = mt_model_logits(n->s.model, &cnt);
        int C = (int)ref->dims[2];
        if (cnt == ref->n) {
            err = 0;
            for (int i = 0; i < B * T; i++) {
                if (!bm[i]) continue;
                for (int c = 0; c < C; c++) {
                    double d = fabs((double)lg[i * C + c] - ref->f[i * C + c]);
                    err = mt_test_worst(err, d); // a NaN sticks and fails
                    if (fabs(ref->f[i * C + c]) > mx) mx = fabs(ref->f[i * C + c]);
                }
            }
        } else fprintf(stderr, "%s: %zu logits, the reference has %zu\n", nemo, cnt, ref->n);
    } else fprintf(stderr, "%s: forward: %s\n", nemo, mt_last_error());
    *ref_max = mx;
    free(bi);
    free(bm);
    free(bt);
    mt_nemo_free(n);
    return err;
}

int main(void) {
    mt_log_set_level(MT_LOG_WARNING);
    const char *dir = parity_tmpdir();
    const char *py = mt_test_env("MEGATUNE_PYTHON", "/usr/bin/python3");
    const char *src = mt_test_env("MEGATUNE_SOURCE_DIR", ".");
    char cmd[4096], p_cfg[512], p_in[512], p_out[512];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tools/make_nemo_ref.py' '%s'", py, src, dir);
    int rc = system(cmd);
    if (rc == -1 || (WIFEXITED(rc) && WEXITSTATUS(rc) == 77)) TEST_SKIP("PyTorch is not importable by %s", py);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        fprintf(stderr, "make_nemo_ref.py failed: %s\n", cmd);
        return 1;
    }
    snprintf(p_cfg, sizeof p_cfg, "%s/ref_config.json", dir);
    snprintf(p_in, sizeof p_in, "%s/ref_in.mttf", dir);
    snprintf(p_out, sizeof p_out, "%s/ref_out.mttf", dir);
    if (!parity_run_ref(p_cfg, p_in, p_out)) return 1;
    CHECK(mttf_read(&g_in, p_in));
    CHECK(mttf_read(&g_ref, p_out));
    if (mt_test_failures) TEST_DONE();

    static const char *ok[] = {"v0_tp1", "v0_tp2", "v1_tp2", "v3_tp2", "v3_tp1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s.nemo", dir, ok[i]);
        double mx = 0, e = logit_error(p, &mx);
        printf("%-8s max |logit - torch| = %.3g (max |logit| %.3g)\n", ok[i], e, mx);
        CHECK_MSG(e >= 0 && e <= 1e-4 * mx + 1e-5, "%s: logit error %g", ok[i], e);
    }
    // control: the same version-0 weights read as 3.0 give other logits
    char p[600];
    snprintf(p, sizeof p, "%s/v0_as_v3.nemo", dir);
    double mx = 0, e = logit_error(p, &mx);
    printf("%-8s max |logit - torch| = %.3g (version-0 weights labelled 3.0: must differ)\n", "v0_as_v3", e);
    CHECK_MSG(e > 1e-2 * mx, "version-0 weights restored as 3.0 should not match the reference (error %g)", e);
    // an unknown version is refused, naming the member and the version
    snprintf(p, sizeof p, "%s/v4_tp2.nemo", dir);
    mt_nemo *n = NULL;
    mt_status st = mt_nemo_restore(p, NULL, 0, &n);
    CHECK(st != MT_OK && !n);
    CHECK_MSG(strstr(mt_last_error(), "megatron_checkpoint_version.json") && strstr(mt_last_error(), "checkpoint_version 4"),
              "message: %s", mt_last_error());
    mt_nemo_free(n);
    mttf_free(&g_in);
    mttf_free(&g_ref);
    TEST_DONE();
}
