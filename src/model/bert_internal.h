// Private state of mt_model shared by bert.c (encoder) and heads.c (task heads and losses).
#ifndef MT_MODEL_BERT_INTERNAL_H
#define MT_MODEL_BERT_INTERNAL_H

#include "kernels/kernels.h"
#include "model/model.h"

// Dropout stream ids: one per site, so every site has its own mask.
#define MT_STREAM_EMBED 0u
#define MT_STREAM_HEAD 1u
#define MT_STREAM_HEAD2 2u // second head with its own dropout (P&C's capit_classifier)
#define MT_STREAM_LAYER(l, site) ((uint32_t)((l) + 1) * 8u + (uint32_t)(site)) // site 0 probs, 1 attn out, 2 mlp out

// Activations of one transformer layer (pointers into the arena).
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; // pre-LN: input_layernorm output; post-LN: after attention (h)
    float *s1;                        // post-LN only: x + dropout(attention), the LN1 input
    float *qkv;                       // (N, 3C/tp)
    float *probs;                     // (B, NH/tp, T, T), NULL when backward recomputes them
    float *atty;                      // (N, C/tp)
    float *h;                         // pre-LN: residual after attention (shared by all layers at recompute 3)
    float *ln2, *ln2_mean, *ln2_rstd;
    float *s2;                        // post-LN only: h + dropout(mlp), the LN2 input
    float *fc1, *act;                 // (N, F/tp); act (and with recompute 2 fc1) shared by all layers when recomputed
} mt_layer_acts;

struct mt_model {
    mt_model_config cfg;
    mt_param_table table;
    float *params, *grads;
    mt_comm *tp;
    const mt_kernels *k;
    int vstart, vlocal; // this rank's rows of the padded vocab
    int nh_local;       // heads on this rank
    int recompute;   // -1 auto (by memory), 0 keep attention probs + GELU outputs, 1 recompute in backward,
                     // 2 FC1's outputs too, 3 (pre-LN) the residual after attention too
    int store_probs; // this arena layout keeps them
    int lean;        // prediction forward (no loss, no backward): one layer's activations, reused
    int no_weight_copies; // kernels keep no derived weights (bf16 copies) from one call to the next
    int ckpt_layers; // layers [0, ckpt_layers) are recomputed in backward (activation checkpointing)
    int ckpt_now;    // the arena's layout: layers below this share one set of activations
    int fc1_stale;   // the last forward ran FC1 with GELU fused (eval): a backward recomputes L->fc1
    int att_chunk;   // batch rows per attention call (lean: bounds the scratch)

    // bf16 training on a table with handoff_attach: every kept layer's QKV and attention output
    // (whose only readers are the table's bf16 products) live in bf16 alone, in keep_bf (in the
    // arena); their fp32 pointers name places in keep_names, an address reservation with no access,
    // so that a stray fp32 read faults instead of reading stale floats
    int bf16_keep_off;        // mt_model_set_bf16_keep(m, 0)
    int keep_on;              // this arena layout keeps them so
    float *keep_names;        // PROT_NONE reservation of keep_names_floats floats
    size_t keep_names_floats;
    size_t keep_n;            // floats the current layout names there
    uint16_t *keep_bf;

    // the arena, sized for (B, T)
    float *arena;
    size_t arena_floats; // capacity
    size_t arena_used;   // floats the current layout uses
    int B, T;
    mt_layer_acts *layers;
    float *emb_sum, *emb_mean, *emb_rstd; // embedding sum (post-LN: the LN input)
    float *resid;                         // (L+1, N, C): layer inputs; resid[L] = last layer output
    float *hidden, *fin_mean, *fin_rstd;  // encoder output (after final_layernorm for pre-LN)
    float *head_in;                       // (M, C): dropped head input (M = N token heads, B sequence heads)
    float *head_z, *head_a;               // (n_layers-1, M, C) pre/post activation of the head MLP
    float *logits, *probs;                // (M, C) head output and softmax; QA: (N,2) and (2,B,T) probs
    float *qa_logits;                     // (2, B, T) start/end logits, transposed for the span loss
    float *row_w;                         // (M) or (2B) per-row loss weights
    float *targets;                       // (B) regression targets
    float *d_res, *d_a, *d_b;             // (N, C) backward scratch
    float *d_qkv, *d_atty, *d_ff; // backward scratch: d_ff shares its buffer with the other two (layout)
    float *att_scratch;                   // MT_ATT_SCRATCH(B, NH, T)
    float *d_head_a, *d_head_b;           // (M, C)
    float *d_logits;                      // (M, C)
    // second head (token classifier, cfg.head2): its own buffers, M = N rows
    float *head2_in, *head2_z, *head2_a, *logits2, *probs2, *row_w2, *d_logits2;
    int32_t *labels2;
    float loss_norm2;

    // mt_model_backward_step: the gradients of the span [span_lo, span_lo + n) being computed live
    // in grad_scratch (sized for the largest span) instead of the gradient span, and step_opt
    // updates each span as soon as they are complete; step_opt NULL: a plain backward
    struct mt_optimizer *step_opt;
    mt_grad_reduce_fn grad_reduce; // data parallelism: each span's gradients averaged before its update
    void *grad_reduce_ctx;
    float step_lr;
    float *grad_scratch;
    size_t grad_scratch_floats, span_lo;
    // the word embedding's gradient in the step in backward (no data-parallel reduction): only the
    // rows the batch touched, compacted; word_slot[v] is vocab row v's place in the compact rows
    // (-1: untouched, its gradient is zero), word_cid the batch's ids as those places
    int32_t *word_slot, *word_cid;
    size_t word_cid_cap;

    // int copies of the batch, so backward does not depend on the caller's arrays
    int32_t *ibuf;
    size_t ibuf_cap;
    int32_t *ids, *types, *mask, *labels; // labels: (M) or (2B) for QA
    int has_types, has_mask;

    // version of the weights for kernels that keep derived copies (kernels.h): renewed by every
    // accessor that hands out writable weights and by each training forward; backward reuses its
    // forward's. fwd_wver: the version the last forward ran under.
    uint64_t wver, fwd_wver;

    int have_forward, have_loss, train;
    uint64_t seed, step;
    float loss_norm; // divisor of the loss (sum of weights, B, ...)
    size_t n_logits;
};

// Gradient of table entry i: in the gradient span, or during mt_model_backward_step in the scratch
// that holds the current span.
static inline float *mt_grad_of(mt_model *m, int i) {
    const size_t off = m->table.params[i].offset;
    return m->step_opt ? m->grad_scratch + (off - m->span_lo) : m->grads + off;
}

int mt_head_rows(const mt_model *m, int B, int T); // M
// Head forward given m->hidden, and the loss when `loss` is not NULL; head backward writes d hidden into m->d_res (overwrites).
mt_status mt_head_forward(mt_model *m, const mt_batch *batch, float *loss);
void mt_head_backward(mt_model *m, float loss_scale);
mt_kact mt_head_kact(const mt_model *m);

#endif
