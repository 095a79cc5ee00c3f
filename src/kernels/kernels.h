// The compute kernels behind the model: one table of function pointers (ggml-backend style) with
// a plain fp32 reference implementation (ref/) and a fast one (opt/: OpenBLAS GEMMs, OpenMP).
// Tests run both and compare; the model uses whichever table it is given (mt_kernels_default()).
//
// Conventions: row-major float arrays; N = rows (B*T tokens). Linear weights are [out, in] as in
// PyTorch. Backward functions ADD into parameter gradients (dw, db); input gradients are
// overwritten unless the comment says "+=". Dropout never stores a mask: the mask is recomputed
// from the counter-based RNG (core/rng.h) so forward and backward agree by construction.
#ifndef MT_KERNELS_KERNELS_H
#define MT_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MT_KACT_RELU = 0,
    MT_KACT_GELU_ERF = 1,  // 0.5 x (1 + erf(x / sqrt 2))
    MT_KACT_GELU_TANH = 2, // 0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3)))
    MT_KACT_GELU_ONNX = 3, // 0.5 x (1 + erf(x / 1.41421)) (NeMo onnx_safe)
    MT_KACT_TANH = 4,
} mt_kact;

// How padding masks attention scores.
typedef enum {
    MT_MASK_MEGATRON = 0, // Megatron v2: where mask[i]*mask[j] == 0 the score is SET to -10000 (padded
                          // query rows then attend uniformly); no gradient through a set score
    MT_MASK_KEYS_ADD = 1, // Hugging Face BERT: -10000 ADDED to scores of padded keys only
} mt_mask_mode;

// A dropout site: element i of the site's tensor is kept (scaled by 1/(1-p)) or zeroed as a pure
// function of (seed, step, stream, index0 + i). p == 0 means identity.
typedef struct {
    float p;
    uint64_t seed, step;
    uint32_t stream;
} mt_dropout_site;

// Scratch floats the attention kernels need.
#define MT_ATT_SCRATCH(B, NH, T) (3 * (size_t)(B) * (size_t)(NH) * (size_t)(T) * (size_t)(T))

typedef struct {
    const char *name;

    // --- embeddings ---
    // ids (N) -> out (N,C) = wte[id - vstart] when vstart <= id < vstart+vlocal, else 0 (vocab-parallel)
    void (*embed_word_fwd)(float *out, const int32_t *ids, const float *wte, int vstart, int vlocal, int N, int C);
    // dwte (vlocal,C) += scatter of dout (N,C) rows by id
    void (*embed_word_bwd)(float *dwte, const float *dout, const int32_t *ids, int vstart, int vlocal, int N, int C);
    // out (B,T,C) += wpe[t] + wtt[type[b,t]]  (types NULL = all 0; positions are 0..T-1)
    void (*embed_pos_type_fwd)(float *out, const int32_t *types, const float *wpe, const float *wtt, int B, int T, int C);
    // dwpe (maxpos,C) += sum_b dout[b,t]; dwtt (types,C) += by type
    void (*embed_pos_type_bwd)(float *dwpe, float *dwtt, const float *dout, const int32_t *types, int B, int T, int C);

    // --- LayerNorm: inp (N,C) -> out (N,C), saves mean (N), rstd (N) ---
    void (*layernorm_fwd)(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps);
    // dinp (N,C) += ..., dw (C) += ..., db (C) += ...
    void (*layernorm_bwd)(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C);

    // --- Linear: inp (N,IN), w (OUT,IN), b (OUT) or NULL -> out (N,OUT) ---
    void (*linear_fwd)(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT);
    // dinp (N,IN) = dout @ w (skipped when NULL); dw (OUT,IN) += dout^T @ inp; db (OUT) += colsum(dout) (db may be NULL)
    void (*linear_bwd)(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT);

    // --- elementwise activations: inp (n) -> out (n); dinp (n) = dout * act'(inp), which may run
    // in place (dinp == dout: the model's MLP backward does) ---
    void (*act_fwd)(float *out, const float *inp, size_t n, mt_kact kind);
    void (*act_bwd)(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind);

    // --- attention core, NH local heads of size HS, fused QKV rows in per-head [NH,3,HS] layout ---
    // qkv (B,T,3*NH*HS), mask (B,T) 1 = token or NULL -> out (B,T,NH*HS), probs (B,NH,T,T) softmax
    // before dropout (probs NULL: not kept). Scores are QK^T/sqrt(HS), masked as `mode` says.
    // Attention dropout element index: ((b*NHg + h0 + h)*T + i)*T + j, with the global head count NHg
    // and this rank's first head h0, so masks do not depend on TP. scratch: MT_ATT_SCRATCH floats.
    void (*attention_fwd)(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                          mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop);
    // dout (B,T,NH*HS) -> dqkv (B,T,3*NH*HS) (overwritten). probs NULL: recomputed from qkv (saves
    // B*NH*T*T floats per layer for one more QK^T). scratch: MT_ATT_SCRATCH floats.
    void (*attention_bwd)(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                          const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop);

    // --- dropout and residuals (n elements; element i has index index0 + i) ---
    // out = dropout(inp); out may equal inp
    void (*dropout_fwd)(float *out, const float *inp, size_t n, uint64_t index0, const mt_dropout_site *d);
    // out = res + dropout(inp + bias[i % C])  (bias NULL = none; Megatron's bias-dropout-add), out may alias res
    void (*bias_dropout_add_fwd)(float *out, const float *res, const float *inp, const float *bias, size_t n, int C,
                                 const mt_dropout_site *d);
    // dinp = dout * mask (the gradient through dropout); dinp may equal dout
    void (*dropout_bwd)(float *dinp, const float *dout, size_t n, uint64_t index0, const mt_dropout_site *d);

    // --- optional forward-only fusions for evaluation forwards (no dropout on the branch); NULL where
    //     the table has no GEMM epilogue, and the caller runs the separate kernels instead ---
    // out (N,OUT) = act(inp @ w^T + b), the activation applied to each output block while it is in
    // cache; the product before the activation is not kept, so a backward must recompute it
    void (*linear_act_fwd)(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT,
                           mt_kact act);
    // out (N,OUT) = res + (inp @ w^T + b): bias_dropout_add_fwd's additions (p = 0) in the same order;
    // out aliases neither res nor inp
    void (*linear_residual_fwd)(float *out, const float *res, const float *inp, const float *w, const float *b, int N,
                                int IN, int OUT);

    // --- optional hand-off for evaluation forwards on a table whose products read bf16 (NULL
    //     elsewhere): a buffer that only the table's products read next is written in bf16 alone,
    //     skipping an fp32 write and a conversion per value; the rounding is the one the reading
    //     product would apply, so the results are bit-identical. Between handoff_begin(out, n) and
    //     handoff_end(out), linear_fwd, linear_act_fwd and attention_fwd writing inside out's n floats
    //     write the bf16 copy only, and the products read their operands there; out's fp32 floats are
    //     stale, so nothing else may read them. layernorm_fwd honours it too (a pre-LN layer's norms
    //     feed only QKV and FC1). handoff_end(NULL) ends every hand-off of the thread.
    void (*handoff_begin)(float *out, size_t n);
    void (*handoff_end)(const float *out);
    // The same for a training step, with the bf16 copy the caller's: between handoff_attach(names,
    // n, bf) and handoff_end(names) (or handoff_end(NULL)), every block inside names' n floats is
    // written and read at the same offsets in bf (n bf16 values) as a hand-off is; names' fp32 floats
    // are never touched, so they may be addresses with no memory behind them. The caller keeps bf
    // between calls: a forward's values stay there for its backward.
    void (*handoff_attach)(float *names, size_t n, uint16_t *bf);
} mt_kernels;

const mt_kernels *mt_kernels_ref(void);
// Taking the opt table sets OpenBLAS to one thread for the whole process: opt kernels split work
// over OpenMP threads and call BLAS inside them, so the two thread pools never compete.
const mt_kernels *mt_kernels_opt(void);
// opt with the linear layers' products on oneDNN's fp32 matmul; NULL when built without oneDNN.
const mt_kernels *mt_kernels_opt_dnnl(void);
// MEGATUNE_KERNELS=ref: ref; =blas: opt (OpenBLAS); =dnnl or unset: opt-dnnl where built with
// oneDNN, else opt.
const mt_kernels *mt_kernels_default(void);

// Weight operands may be kept in a derived form (bf16 copies) from one kernel call to the next.
// The model names the version of its weights before it runs kernels on this thread; a kernel
// reuses what it derived from a weight pointer only under the same nonzero version, so a model
// takes a new version whenever its weights may have changed. 0 (the default) reuses nothing.
void mt_kernels_set_weights_version(uint64_t v);
uint64_t mt_kernels_weights_version(void);
// The passes that follow on this thread are forward-only (prediction) under the weights version
// set above: a table may keep the weights in its library's packed layout in place of its plain
// bf16 copies (the bf16 table does). 0 (the default) in every other pass.
void mt_kernels_set_packing(int on);
// Drops what was derived from weights inside [lo, hi) (the model frees them).
void mt_kernels_forget_weights(const void *lo, const void *hi);

// Shared scalar helpers (same formulas in ref and opt so they agree to rounding).
float mt_kact_scalar(float x, mt_kact kind);
float mt_kact_grad_scalar(float x, mt_kact kind);

// --- losses (kernels/loss.c; small, one implementation) ---
// logits (N,C), labels (N), weight w_i per row (0 = ignored) -> returns sum_i w_i * (-log softmax(logits_i)[y_i]).
// probs (N,C) receives the softmax. Labels of rows with w_i == 0 are not read.
double mt_ce_fwd(float *probs, const float *logits, const int32_t *labels, const float *w, int N, int C);
// dlogits (N,C) = scale * w_i * (probs - onehot(y_i)) (overwritten)
void mt_ce_bwd(float *dlogits, const float *probs, const int32_t *labels, const float *w, int N, int C, float scale);

#endif
