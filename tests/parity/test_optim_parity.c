// Adam/AdamW, gradient clipping and NeMo's schedules against torch.optim + clip_grad_norm_
// (tools/optim_ref.py), over 12 steps, on a real parameter table (post-LN: every split rule).
#include <stdint.h>
#include <unistd.h>

#include "model/optim.h"
#include "model/sched.h"
#include "test_util.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform(void) { // xorshift64*, in [-1, 1)
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1u << 23) - 1.0f;
}

static void put_i32(FILE *f, int32_t v) { fwrite(&v, 4, 1, f); }
static void put_f32(FILE *f, float v) { fwrite(&v, 4, 1, f); }

static void run_case(const char *python, const char *dir, mt_optim_kind kind, int decay_all, mt_sched_kind sk,
                     int warmup, float clip) {
    enum { STEPS = 12 };
    mt_model_config c;
    mt_model_config_bert_defaults(&c);
    c.vocab_size = 50; c.hidden_size = 8; c.num_layers = 1; c.num_attention_heads = 2; c.max_position_embeddings = 6;
    c.head = MT_HEAD_SEQUENCE_CLASSIFIER; c.num_classes = 3; c.head_num_layers = 2;
    CHECK_OK(mt_model_config_finalize(&c));
    mt_param_table t;
    CHECK_OK(mt_param_table_build(&c, &t));
    float *p = mt_alloc_aligned(t.total * sizeof(float));
    float *g = mt_alloc_aligned(t.total * sizeof(float));
    float *grads = malloc((size_t)STEPS * t.total_numel * sizeof(float));
    for (int i = 0; i < t.count; i++)
        for (size_t k = 0; k < t.params[i].numel; k++) p[t.params[i].offset + k] = 0.5f * uniform();
    // Grad scale varies so clipping is active on some steps and not on others.
    for (int s = 0; s < STEPS; s++)
        for (size_t k = 0; k < t.total_numel; k++) grads[(size_t)s * t.total_numel + k] = uniform() * (s % 3 == 0 ? 0.2f : 0.01f);

    mt_optim_config oc;
    mt_optim_config_default(&oc, kind);
    oc.weight_decay = 0.05f;
    oc.decay_all = decay_all;
    mt_sched_config sc = {.kind = sk, .lr = (float)1e-2, .min_lr = sk == MT_SCHED_COSINE_ANNEALING ? (float)1e-4 : 0.0,
                          .max_steps = STEPS, .warmup_steps = warmup, .warmup_ratio = 0};

    char in_path[512], out_path[512], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/optim_in.bin", dir);
    snprintf(out_path, sizeof out_path, "%s/optim_out.bin", dir);
    FILE *f = fopen(in_path, "wb");
    put_i32(f, t.count); put_i32(f, STEPS); put_i32(f, kind); put_i32(f, decay_all); put_i32(f, sk); put_i32(f, warmup);
    put_f32(f, (float)sc.lr); put_f32(f, oc.weight_decay); put_f32(f, clip); put_f32(f, (float)sc.min_lr);
    // the tensor's rank, not the table's weight_decay flag: the reference picks the decay groups itself
    for (int i = 0; i < t.count; i++) { put_i32(f, (int32_t)t.params[i].numel); put_i32(f, t.params[i].ndim); }
    for (int i = 0; i < t.count; i++) fwrite(p + t.params[i].offset, 4, t.params[i].numel, f);
    fwrite(grads, 4, (size_t)STEPS * t.total_numel, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s/tools/optim_ref.py %s %s", python, mt_test_env("MEGATUNE_SOURCE_DIR", "."),
             in_path, out_path);
    CHECK_MSG(system(cmd) == 0, "reference failed: %s", cmd);
    FILE *r = fopen(out_path, "rb");
    CHECK(r != NULL);
    mt_optimizer *o;
    CHECK_OK(mt_optimizer_create(&oc, &t, &o));
    float *want = malloc(t.total_numel * sizeof(float)), *got = malloc(t.total_numel * sizeof(float));
    fprintf(stderr, "case %s decay_all=%d sched=%s warmup=%d clip=%g\n", kind ? "adamw" : "adam", decay_all,
            mt_sched_kind_name(sk), warmup, clip);
    for (int s = 0; s < STEPS && r; s++) {
        size_t pos = 0;
        for (int i = 0; i < t.count; i++) {
            memcpy(g + t.params[i].offset, grads + (size_t)s * t.total_numel + pos, t.params[i].numel * sizeof(float));
            pos += t.params[i].numel;
        }
        float norm = mt_clip_grad_norm(g, &t, clip, NULL);
        float lr = (float)mt_sched_lr(&sc, s);
        mt_optimizer_step(o, p, g, lr);
        float ref[2];
        CHECK(fread(ref, 4, 2, r) == 2);
        CHECK(fread(want, 4, t.total_numel, r) == t.total_numel);
        CHECK_MSG(fabsf(lr - ref[0]) <= 1e-7f * fabsf(ref[0]) + 1e-12f, "step %d lr %.9g vs %.9g", s, lr, ref[0]);
        CHECK_MSG(fabsf(norm - ref[1]) <= 1e-5f * ref[1], "step %d grad norm %.9g vs %.9g", s, norm, ref[1]);
        pos = 0;
        for (int i = 0; i < t.count; i++) {
            memcpy(got + pos, p + t.params[i].offset, t.params[i].numel * sizeof(float));
            pos += t.params[i].numel;
        }
        if (s == STEPS - 1 || s == 0) {
            char what[64];
            snprintf(what, sizeof what, "params after step %d", s + 1);
            mt_check_close(what, got, want, t.total_numel, 2e-6, 2e-5);
        }
    }
    // Alignment gaps stay zero.
    for (int i = 0; i + 1 < t.count; i++)
        for (size_t k = t.params[i].offset + t.params[i].numel; k < t.params[i + 1].offset; k++) CHECK(p[k] == 0.0f);
    if (r) fclose(r);
    mt_optimizer_free(o);
    free(want); free(got); free(grads);
    mt_free_aligned(p); mt_free_aligned(g);
    mt_param_table_free(&t);
}

int main(void) {
    const char *python = mt_test_env("MEGATUNE_PYTHON", "/usr/bin/python3");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' 2>/dev/null", python);
    if (system(cmd) != 0) TEST_SKIP("PyTorch not importable by %s", python);
    char dir[] = "/tmp/megatune-optim-XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("no temp dir");
    run_case(python, dir, MT_OPTIM_ADAMW, 1, MT_SCHED_WARMUP_ANNEALING, 3, 1.0f);
    run_case(python, dir, MT_OPTIM_ADAM, 1, MT_SCHED_SQRT_ANNEALING, 0, 0.5f);
    run_case(python, dir, MT_OPTIM_ADAMW, 0, MT_SCHED_COSINE_ANNEALING, 2, 0.0f);
    run_case(python, dir, MT_OPTIM_ADAM, 0, MT_SCHED_CONSTANT, 4, 2.0f);

    // Schedules: edge behaviour.
    mt_sched_config sc = {.kind = MT_SCHED_WARMUP_ANNEALING, .lr = 1.0, .max_steps = 10, .warmup_steps = -1, .warmup_ratio = 0.25};
    CHECK(mt_sched_warmup(&sc) == 2);
    CHECK(fabs(mt_sched_lr(&sc, 0) - 1.0 / 3) < 1e-12);
    CHECK(fabs(mt_sched_lr(&sc, 10)) < 1e-12);
    CHECK(mt_sched_lr(&sc, 11) == 0.0);
    mt_sched_kind k;
    CHECK_OK(mt_sched_kind_parse("CosineAnnealing", &k));
    CHECK(k == MT_SCHED_COSINE_ANNEALING);
    CHECK(mt_sched_kind_parse("Cosine", &k) == MT_ERR_INVALID);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    TEST_DONE();
}
