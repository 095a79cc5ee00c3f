// Training-step benchmark: builds a Megatron-BERT (pre-LN) with a QA head for one shape, a random
// batch, and times N steps of forward + backward + gradient clipping + AdamW.
//   bench_train [--layers 12] [--hidden 768] [--heads 12] [--seq 128] [--batch 8] [--vocab 30522]
//               [--steps 5] [--warmup 1] [--dropout 0.1] [--arch megatron|bert]
//               [--precision 32|bf16|bf16emu] [--infer 0|1] [--ckpt 0] [--clip 1.0] [--step-in-backward 0|1]
//               [--recompute -1|0|1|2|3] [--bf16-keep 0|1]
// --precision bf16 runs the linear layers as trainer.precision=bf16 does (oneDNN; refused where the
// CPU has no bf16); --infer 1 times forward only in eval mode (no loss, no dropout), FLOPs 1/3.
// --ckpt N checkpoints the activations of the first N layers (mt_model_set_activation_checkpoint;
// N past --layers = all): each is recomputed before its backward, so a step costs one more forward
// of those layers and the FLOPs counted stay the model's (GFLOP/s then reads lower, as for
// Megatron's model FLOPs utilization). Training only: with --infer 1 it changes nothing, the
// inference forward keeps one layer's activations whatever N is.
// --clip F: the gradient-norm clip (0 = none). --step-in-backward 1 (needs --clip 0) runs the update
// inside backward as model.optim.step_in_backward=true does: no gradient span is touched, and (bf16)
// no bf16 copy of the weights is kept between products.
// --recompute 1 recomputes in backward what the products can give again cheaply (attention
// probabilities, GELU and, pre-LN, LayerNorm outputs: model.activations_checkpoint_granularity=
// selective); 2 FC1's outputs too (model.activations_checkpoint_fc1=true: one more FC1 product per
// layer, not counted in the FLOPs); 3 (pre-LN) the residual after attention too
// (model.activations_checkpoint_attn_out=true: one more attention output product per layer, not
// counted); 0 keeps them; -1 (default) keeps them up to 512 MiB of probabilities.
// --bf16-keep 0 keeps QKV and the attention outputs in fp32 as well (mt_model_set_bf16_keep; 1, the
// default, keeps them in bf16 alone on the hardware bf16 table).
// The activation bytes of the last forward (mt_model_activation_bytes) are printed in MiB.
// Prints ms/step, tokens/s, GFLOP/s and peak RSS, then one machine-readable line "RESULT ..." that
// also gives CPU time per step (all threads), a measure less disturbed by other load on the machine.
// FLOPs per step = 6 * (non-embedding parameters) * B*T + 12 * layers * B * T^2 * hidden
// (matmul FLOPs of forward + backward; embeddings are lookups and count nothing).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/rng.h"
#include "kernels/bf16.h"
#include "model/model.h"
#include "model/model_kernels.h"
#include "model/optim.h"

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int layers = 12, hidden = 768, heads = 12, seq = 128, batch = 8, vocab = 30522, steps = 5, warmup = 1;
    float dropout = 0.1f;
    int bert = 0, infer = 0, ckpt = 0, in_bwd = 0, recompute = -1, bf16_keep = 1;
    float clip = 1.0f;
    const char *precision = "32";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--layers")) layers = atoi(v);
        else if (!strcmp(k, "--hidden")) hidden = atoi(v);
        else if (!strcmp(k, "--heads")) heads = atoi(v);
        else if (!strcmp(k, "--seq")) seq = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--vocab")) vocab = atoi(v);
        else if (!strcmp(k, "--steps")) steps = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--dropout")) dropout = (float)atof(v);
        else if (!strcmp(k, "--arch")) bert = !strcmp(v, "bert");
        else if (!strcmp(k, "--precision")) precision = v;
        else if (!strcmp(k, "--infer")) infer = atoi(v);
        else if (!strcmp(k, "--ckpt")) ckpt = atoi(v);
        else if (!strcmp(k, "--clip")) clip = (float)atof(v);
        else if (!strcmp(k, "--step-in-backward")) in_bwd = atoi(v);
        else if (!strcmp(k, "--recompute")) recompute = atoi(v);
        else if (!strcmp(k, "--bf16-keep")) bf16_keep = atoi(v);
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", k);
            return 2;
        }
    }
    if (ckpt < 0) {
        fprintf(stderr, "bench_train: --ckpt %d: give the number of layers to checkpoint, 0 (off) or more\n", ckpt);
        return 2;
    }
    if (in_bwd && clip > 0) {
        fprintf(stderr, "bench_train: --step-in-backward 1 needs --clip 0 (clipping needs every gradient first)\n");
        return 2;
    }
    mt_model_config c;
    if (bert) mt_model_config_bert_defaults(&c);
    else mt_model_config_defaults(&c);
    c.vocab_size = vocab;
    c.hidden_size = hidden;
    c.num_layers = layers;
    c.num_attention_heads = heads;
    c.max_position_embeddings = seq > 512 ? seq : 512;
    c.hidden_dropout = c.attention_dropout = dropout;
    c.head = MT_HEAD_QA;
    mt_model *m = NULL;
    if (mt_model_create(&c, NULL, &m) != MT_OK) {
        fprintf(stderr, "bench_train: %s\n", mt_last_error());
        return 1;
    }
    mt_model_init_weights(m, 1);
    if (!infer) mt_model_set_activation_checkpoint(m, ckpt);
    mt_model_set_recompute(m, recompute);
    mt_model_set_bf16_keep(m, bf16_keep);
    if (!infer && in_bwd) mt_model_set_weight_copies(m, 0); // as the trainer with step_in_backward
    if (!strcmp(precision, "bf16")) {
        const char *why = NULL;
        if (!mt_bf16_available(&why)) {
            fprintf(stderr, "bench_train: --precision bf16: %s\n", why);
            return 3;
        }
        mt_model_set_kernels(m, mt_kernels_bf16());
    } else if (!strcmp(precision, "bf16emu")) {
        mt_model_set_kernels(m, mt_kernels_bf16emu());
    } else if (strcmp(precision, "32")) {
        fprintf(stderr, "bench_train: --precision %s: use 32, bf16 or bf16emu\n", precision);
        return 2;
    }
    const mt_param_table *t = mt_model_params(m);
    mt_optim_config oc;
    mt_optim_config_default(&oc, MT_OPTIM_ADAMW);
    mt_optimizer *opt = NULL; // inference has none (its moments would count in peak RSS)
    if (!infer && mt_optimizer_create(&oc, t, &opt) != MT_OK) {
        fprintf(stderr, "bench_train: %s\n", mt_last_error());
        return 1;
    }
    size_t N = (size_t)batch * seq;
    int32_t *ids = malloc(N * 4), *types = calloc(N, 4), *mask = malloc(N * 4), *st = malloc((size_t)batch * 4),
            *en = malloc((size_t)batch * 4);
    for (size_t i = 0; i < N; i++) {
        ids[i] = (int32_t)(mt_rng_uniform(3, 0, 0, i) * (vocab - 1));
        mask[i] = 1;
    }
    for (int b = 0; b < batch; b++) {
        st[b] = b % seq;
        en[b] = (b + 3) % seq;
    }
    mt_batch bt = {.B = batch, .T = seq, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                   .start_positions = st, .end_positions = en};
    double emb = 0;
    for (int i = 0; i < t->count; i++) {
        mt_param_role r = t->params[i].role;
        if (r == MT_ROLE_WORD_EMB || r == MT_ROLE_POS_EMB || r == MT_ROLE_TYPE_EMB) emb += (double)t->params[i].numel;
    }
    double nonemb = (double)t->total_numel - emb;
    double flops = 6.0 * nonemb * (double)N + 12.0 * layers * batch * (double)seq * seq * hidden;
    if (infer) flops /= 3;
    if (!infer && !in_bwd) mt_model_zero_grad(m); // (then the fused step clears them)
    double total = 0, cpu_total = 0;
    float loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now(), c0 = cpu_now();
        if (infer) {
            if (mt_model_forward(m, &bt, 0, 5, (uint64_t)s, NULL) != MT_OK) {
                fprintf(stderr, "bench_train: %s\n", mt_last_error());
                return 1;
            }
        } else {
            // as the trainer: the update inside backward (step_in_backward), or clip scale + AdamW +
            // zero_grad in one pass after it
            if (mt_model_forward(m, &bt, 1, 5, (uint64_t)s, &loss) != MT_OK ||
                (in_bwd ? mt_model_backward_step(m, opt, 1e-5f) : mt_model_backward(m, 1.0f)) != MT_OK) {
                fprintf(stderr, "bench_train: %s\n", mt_last_error());
                return 1;
            }
            if (!in_bwd) {
                float gscale = clip > 0 ? mt_clip_coef(mt_grad_norm(mt_model_grad_data(m), t, NULL), clip) : 1.0f;
                mt_optimizer_step_fused(opt, mt_model_param_data(m), mt_model_grad_data(m), 1e-5f, gscale);
            }
        }
        double dt = now() - t0;
        if (s >= warmup) {
            total += dt;
            cpu_total += cpu_now() - c0;
        }
    }
    double ms = total / steps * 1e3;
    double act_mib = mt_model_activation_bytes(m) / (1024.0 * 1024.0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("megatune %s %s precision=%s layers=%d hidden=%d heads=%d seq=%d batch=%d ckpt=%d: %.1f ms/step, %.0f tokens/s, "
           "%.1f GFLOP/s, peak RSS %.0f MiB, activations %.1f MiB, loss %.6f\n",
           bert ? "bert" : "megatron", infer ? "infer" : "train", precision, layers, hidden, heads, seq, batch,
           infer ? 0 : ckpt, ms, N / (ms / 1e3), flops / (ms / 1e3) / 1e9, ru.ru_maxrss / 1024.0, act_mib, loss);
    printf("RESULT ms_per_step=%.3f tokens_per_s=%.1f gflops=%.2f rss_mib=%.0f cpu_ms_per_step=%.3f act_mib=%.1f\n", ms,
           N / (ms / 1e3), flops / (ms / 1e3) / 1e9, ru.ru_maxrss / 1024.0, cpu_total / steps * 1e3, act_mib);
    free(ids); free(types); free(mask); free(st); free(en);
    mt_optimizer_free(opt);
    mt_model_free(m);
    return 0;
}
