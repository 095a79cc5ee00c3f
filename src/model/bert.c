// The encoder: Megatron-BERT (pre-LN, final_layernorm) or plain BERT (post-LN, embedding LN),
// tensor-parallel by the parameter table's split rules, with collectives at Megatron's f/g points.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/rng.h"
#include "model/bert_internal.h"
#include "model/optim.h"

#define P(role, layer) (m->params + m->table.params[mt_param_index(&m->table, (role), (layer))].offset)
#define G(role, layer) mt_grad_of(m, mt_param_index(&m->table, (role), (layer)))

// Megatron-BERT masks as Megatron v2 does; plain BERT as Hugging Face's BertModel (which NeMo
// wraps), so padded positions, which NeMo's QA loss does read, match each origin.
static mt_mask_mode mask_mode(const mt_model_config *c) {
    return c->arch == MT_ARCH_BERT ? MT_MASK_KEYS_ADD : MT_MASK_MEGATRON;
}

static mt_kact gelu_kact(mt_gelu_kind g) {
    return g == MT_GELU_TANH ? MT_KACT_GELU_TANH : g == MT_GELU_ONNX ? MT_KACT_GELU_ONNX : MT_KACT_GELU_ERF;
}

// Versions are unique across models, so a freed model's weights at a reused address never match.
static uint64_t wver_counter;
static void weights_changed(mt_model *m) { m->wver = __atomic_add_fetch(&wver_counter, 1, __ATOMIC_RELAXED); }
// Names the weights the kernels run on from now (this thread): the last forward's version, or 0 (keep
// no derived copies) after mt_model_set_weight_copies(m, 0).
static void use_weights_version(const mt_model *m) {
    mt_kernels_set_weights_version(m->no_weight_copies ? 0 : m->fwd_wver);
}

mt_status mt_model_create(const mt_model_config *cfg, mt_comm *tp, mt_model **out) {
    *out = NULL;
    mt_model *m = mt_calloc(1, sizeof *m);
    if (!m) return MT_ERR_NOMEM;
    m->cfg = *cfg;
    mt_status s = mt_model_config_finalize(&m->cfg);
    if (s != MT_OK) {
        free(m);
        return s;
    }
    if (tp && (tp->size != m->cfg.tp_size || tp->rank != m->cfg.tp_rank)) {
        int cs = m->cfg.tp_size, cr = m->cfg.tp_rank;
        free(m);
        return mt_fail(MT_ERR_INVALID, "model: the config says tensor-parallel rank %d of %d but the TP "
                       "communicator is rank %d of %d; launch with a matching process count", cr, cs, tp->rank,
                       tp->size);
    }
    s = mt_param_table_build(&m->cfg, &m->table);
    if (s != MT_OK) {
        free(m);
        return s;
    }
    m->params = mt_alloc_aligned(m->table.total * sizeof(float));
    m->grads = mt_alloc_aligned(m->table.total * sizeof(float));
    m->layers = mt_calloc((size_t)m->cfg.num_layers, sizeof *m->layers);
    if (!m->params || !m->grads || !m->layers) {
        mt_model_free(m);
        return MT_ERR_NOMEM;
    }
    m->tp = tp;
    m->k = mt_kernels_default();
    m->vlocal = m->cfg.padded_vocab_size / m->cfg.tp_size;
    m->vstart = m->cfg.tp_rank * m->vlocal;
    m->nh_local = m->cfg.num_attention_heads / m->cfg.tp_size;
    m->recompute = -1;
    weights_changed(m);
    *out = m;
    return MT_OK;
}

void mt_model_free(mt_model *m) {
    if (!m) return;
    if (m->params) mt_kernels_forget_weights(m->params, m->params + m->table.total);
    mt_free_aligned(m->params);
    mt_free_aligned(m->grads);
    mt_free_aligned(m->grad_scratch);
    free(m->word_slot);
    free(m->word_cid);
    mt_free_aligned(m->arena);
    if (m->keep_names) munmap(m->keep_names, m->keep_names_floats * sizeof(float));
    free(m->layers);
    free(m->ibuf);
    mt_param_table_free(&m->table);
    free(m);
}

const mt_model_config *mt_model_get_config(const mt_model *m) { return &m->cfg; }
const mt_param_table *mt_model_params(const mt_model *m) { return &m->table; }
// whoever takes writable weights may change them: what kernels derived from them is stale
float *mt_model_param_data(mt_model *m) {
    weights_changed(m);
    return m->params;
}
float *mt_model_grad_data(mt_model *m) { return m->grads; }
float *mt_model_param(mt_model *m, int i) {
    weights_changed(m);
    return (i >= 0 && i < m->table.count) ? m->params + m->table.params[i].offset : NULL;
}
float *mt_model_grad(mt_model *m, int i) {
    return (i >= 0 && i < m->table.count) ? m->grads + m->table.params[i].offset : NULL;
}
void mt_model_zero_grad(mt_model *m) { memset(m->grads, 0, m->table.total * sizeof(float)); }
void mt_model_set_kernels(mt_model *m, const mt_kernels *k) {
    k = k ? k : mt_kernels_default();
    // a forward that kept QKV and the attention outputs in bf16 alone has nothing for another table
    if (m->keep_on && k != m->k) m->have_forward = m->have_loss = 0;
    m->k = k;
}
const mt_kernels *mt_model_get_kernels(const mt_model *m) { return m->k; }
void mt_model_set_recompute(mt_model *m, int mode) {
    m->recompute = mode < 0 ? -1 : mode > 3 ? 3 : mode;
    m->have_forward = m->have_loss = 0; // the arena layout may change at the next forward
}

void mt_model_set_bf16_keep(mt_model *m, int on) {
    m->bf16_keep_off = !on;
    m->have_forward = m->have_loss = 0; // the arena layout may change at the next forward
}

void mt_model_set_activation_checkpoint(mt_model *m, int layers) {
    m->ckpt_layers = layers > 0 ? layers : 0;
    m->have_forward = m->have_loss = 0; // the arena layout may change at the next forward
}

void mt_model_set_weight_copies(mt_model *m, int keep) {
    m->no_weight_copies = !keep;
    if (!keep && m->params) mt_kernels_forget_weights(m->params, m->params + m->table.total);
}

size_t mt_model_activation_bytes(const mt_model *m) { return m->arena_used * sizeof(float); }

// Every parameter, or (head_only) those without a Megatron name. Each tensor's values depend on
// (seed, its index, the element's global index) alone, so skipping some changes none of the others.
static void init_weights(mt_model *m, uint64_t seed, int head_only) {
    const mt_model_config *c = &m->cfg;
    weights_changed(m);
    const float std = c->init_method_std > 0 ? c->init_method_std : 0.02f;
    const float out_std = std / sqrtf(2.0f * (float)c->num_layers);
    for (int i = 0; i < m->table.count; i++) {
        const mt_param *p = &m->table.params[i];
        if (head_only && mt_param_megatron_name(p)) continue;
        float *w = m->params + p->offset;
        float sd = 0, fill = 0;
        switch (p->role) {
        case MT_ROLE_WORD_EMB: case MT_ROLE_POS_EMB: case MT_ROLE_TYPE_EMB:
        case MT_ROLE_QKV_W: case MT_ROLE_FC1_W: sd = std; break;
        case MT_ROLE_ATTN_OUT_W: case MT_ROLE_FC2_W: sd = out_std; break;
        case MT_ROLE_HEAD_W: case MT_ROLE_HEAD2_W: sd = 0.02f; break; // NeMo use_transformer_init
        case MT_ROLE_EMB_LN_W: case MT_ROLE_LN1_W: case MT_ROLE_LN2_W: case MT_ROLE_FINAL_LN_W: fill = 1; break;
        default: fill = 0; break; // biases
        }
        if (sd == 0) {
            for (size_t e = 0; e < p->numel; e++) w[e] = fill;
            continue;
        }
        // Draw the GLOBAL tensor's elements by their global index and keep this rank's shard, so
        // every TP size starts from the same model.
        int64_t r0 = 0, c0 = 0;
        if (p->split_dim == 0) r0 = (int64_t)c->tp_rank * p->shape[0];
        if (p->split_dim == 1) c0 = (int64_t)c->tp_rank * p->shape[1];
        const int64_t rows = p->shape[0], cols = p->shape[1];
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float *row = w + r * cols;
            mt_rng_normal_fill(row, seed, (uint32_t)i, (uint64_t)(r + r0) * (uint64_t)p->global_shape[1] + (uint64_t)c0,
                               (uint64_t)cols);
            for (int64_t q = 0; q < cols; q++) row[q] *= sd;
        }
    }
}

void mt_model_init_weights(mt_model *m, uint64_t seed) { init_weights(m, seed, 0); }

void mt_model_init_head_weights(mt_model *m, uint64_t seed) { init_weights(m, seed, 1); }

// ---- arena ----

typedef struct {
    float *base;
    size_t used;
} carve_t;

static float *carve(carve_t *a, size_t n) {
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (n + 15) / 16 * 16;
    return p;
}

// Lays out every activation for (B, T); with base NULL only counts.
static size_t layout(mt_model *m, float *base, int B, int T) {
    const mt_model_config *c = &m->cfg;
    const size_t N = (size_t)B * T, C = (size_t)c->hidden_size, tp = (size_t)c->tp_size;
    const size_t Cl = C / tp, F = (size_t)c->ffn_hidden_size / tp, NH = (size_t)m->nh_local;
    const int post = c->arch == MT_ARCH_BERT;
    carve_t a = {base, 0};
    carve_t kn = {m->keep_on ? m->keep_names : NULL, 0}; // QKV and attention outputs kept in bf16 alone
    m->emb_sum = carve(&a, N * C);
    m->emb_mean = carve(&a, N);
    m->emb_rstd = carve(&a, N);
    const int lean = m->lean;
    m->resid = carve(&a, (size_t)(lean ? 2 : c->num_layers + 1) * N * C);
    for (int l = 0; l < c->num_layers; l++) {
        mt_layer_acts *L = &m->layers[l];
        // prediction keeps nothing for backward: every layer reuses layer 0's buffers; so do the
        // checkpointed layers, whose backward runs their forward again
        if (l > 0 && (lean || l < m->ckpt_now)) {
            *L = m->layers[0];
            continue;
        }
        // recomputing (pre-LN): the two LayerNorm outputs, read only by the products' weight
        // gradients, are shared by all layers like GELU's and recomputed in backward
        const int share_ln = !post && !m->store_probs && l > 0;
        L->ln1 = share_ln ? m->layers[0].ln1 : carve(&a, N * C);
        L->ln1_mean = carve(&a, N);
        L->ln1_rstd = carve(&a, N);
        L->s1 = post ? carve(&a, N * C) : NULL;
        L->qkv = carve(m->keep_on ? &kn : &a, N * 3 * Cl);
        L->probs = m->store_probs ? carve(&a, (size_t)B * NH * T * T) : NULL;
        L->atty = carve(m->keep_on ? &kn : &a, N * Cl);
        // recompute 3 (pre-LN): the residual stream after attention too, one buffer for all layers
        L->h = post ? NULL : m->recompute == 3 && l > 0 ? m->layers[0].h : carve(&a, N * C);
        L->ln2 = post ? NULL : share_ln ? m->layers[0].ln2 : carve(&a, N * C);
        L->ln2_mean = carve(&a, N);
        L->ln2_rstd = carve(&a, N);
        L->s2 = post ? carve(&a, N * C) : NULL;
        // recompute 2: FC1's outputs too, in one buffer for all layers (backward runs FC1 again)
        L->fc1 = m->recompute >= 2 && l > 0 ? m->layers[0].fc1 : carve(&a, N * F);
        // kept per layer, or one buffer shared by all layers and recomputed in backward
        L->act = m->store_probs || l == 0 ? carve(&a, N * F) : m->layers[0].act;
    }
    m->hidden = post ? NULL : carve(&a, N * C);
    m->fin_mean = carve(&a, N);
    m->fin_rstd = carve(&a, N);
    size_t M = (size_t)mt_head_rows(m, B, T);
    size_t nc = c->num_classes > 0 ? (size_t)c->num_classes : 1;
    size_t hl = c->head_num_layers > 1 ? (size_t)c->head_num_layers - 1 : 1;
    const int two = c->head2 != MT_HEAD_NONE;
    size_t nc2 = two ? (size_t)c->num_classes2 : 0, hl2 = two && c->head2_num_layers > 1 ? (size_t)c->head2_num_layers - 1 : 0;
    m->head_in = carve(&a, M * C);
    m->head_z = carve(&a, hl * M * C);
    m->head_a = carve(&a, hl * M * C);
    // the second head's logits follow the first's, so mt_model_logits returns both in one span
    m->logits = carve(&a, M * nc + N * nc2);
    m->logits2 = two ? m->logits + M * nc : NULL;
    m->head2_in = two ? carve(&a, N * C) : NULL;
    m->head2_z = two ? carve(&a, (hl2 ? hl2 : 1) * N * C) : NULL;
    m->head2_a = two ? carve(&a, (hl2 ? hl2 : 1) * N * C) : NULL;
    m->probs2 = two ? carve(&a, N * nc2) : NULL;
    m->row_w2 = two ? carve(&a, N) : NULL;
    m->d_logits2 = two && !lean ? carve(&a, N * nc2) : NULL;
    if (two) M = N; // the backward scratch below serves both heads
    m->probs = carve(&a, M * nc + 2 * N);
    m->qa_logits = carve(&a, 2 * N);
    m->row_w = carve(&a, M + 2 * (size_t)B);
    m->targets = carve(&a, (size_t)B);
    // backward scratch (d_a doubles as the forward's row-parallel partial sums, so it always exists)
    m->d_a = carve(&a, N * C);
    m->d_res = lean ? NULL : carve(&a, N * C);
    m->d_b = lean ? NULL : carve(&a, N * C);
    // a layer's backward is done with d_ff (the MLP) before it writes d_atty and d_qkv (attention):
    // one buffer holds both in turn
    float *d_layer = lean ? NULL : carve(&a, N * (F > 4 * Cl ? F : 4 * Cl));
    m->d_ff = d_layer;
    m->d_qkv = d_layer;
    m->d_atty = d_layer ? d_layer + N * 3 * Cl : NULL; // (layout counts with no base: NULL)
    m->att_chunk = B;
    if (lean && !(m->train && c->attention_dropout > 0.0f)) { // scratch for ~64 MiB of batch rows at a time
        size_t per_row = MT_ATT_SCRATCH(1, NH, T), rows = ((size_t)16 << 20) / (per_row ? per_row : 1);
        m->att_chunk = rows < 1 ? 1 : rows < (size_t)B ? (int)rows : B;
    }
    m->att_scratch = carve(&a, MT_ATT_SCRATCH(m->att_chunk, NH, T));
    m->d_head_a = lean ? NULL : carve(&a, M * C);
    m->d_head_b = lean ? NULL : carve(&a, M * C);
    m->d_logits = lean ? NULL : carve(&a, M * nc + 2 * N);
    if (post) m->hidden = m->resid + (size_t)(lean ? c->num_layers % 2 : c->num_layers) * N * C;
    m->keep_n = kn.used;
    m->keep_bf = (uint16_t *)carve(&a, (kn.used + 1) / 2);
    return a.used;
}

// Attention probabilities, GELU and (pre-LN) LayerNorm outputs are kept for backward while all
// layers' probabilities together stay under this many bytes; past it (long sequences, big batches)
// backward recomputes them (one QK^T per head, one GELU and two LayerNorms per layer), saving
// (B*NH*T*T + N*F + 2*N*C) floats per layer.
#define MT_PROBS_KEEP_BYTES ((size_t)512 << 20)

static mt_status ensure_arena(mt_model *m, int B, int T) {
    const int nl = m->cfg.num_layers;
    m->ckpt_now = m->lean ? 0 : m->ckpt_layers < nl ? m->ckpt_layers : nl;
    const int kept_sets = nl - m->ckpt_now + (m->ckpt_now > 0); // checkpointed layers share one set
    size_t probs_bytes = (size_t)kept_sets * B * m->nh_local * T * T * sizeof(float);
    m->store_probs = m->lean ? 0
                     : m->recompute > 0 ? 0
                     : m->recompute == 0 ? 1
                                                   : probs_bytes <= MT_PROBS_KEEP_BYTES;
    // (not for prediction: its lean forward hands QKV and the attention output off per layer itself)
    m->keep_on = !m->lean && !m->bf16_keep_off && m->k->handoff_attach != NULL;
    size_t need = layout(m, NULL, B, T);
    if (m->keep_on && m->keep_n > m->keep_names_floats) {
        if (m->keep_names) munmap(m->keep_names, m->keep_names_floats * sizeof(float));
        void *r = mmap(NULL, m->keep_n * sizeof(float), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        m->keep_names = r == MAP_FAILED ? NULL : r;
        m->keep_names_floats = m->keep_names ? m->keep_n : 0;
        if (!m->keep_names)
            return mt_fail(MT_ERR_NOMEM, "model: cannot reserve %.1f MiB of addresses for the bf16 activations",
                           m->keep_n * 4.0 / 1048576.0);
    }
    if (need > m->arena_floats) {
        mt_free_aligned(m->arena);
        m->arena = mt_alloc_aligned(need * sizeof(float));
        if (!m->arena) {
            m->arena_floats = 0;
            return mt_fail(MT_ERR_NOMEM, "model: cannot allocate %.1f MiB of activations for batch %d x %d; "
                           "lower the batch size or sequence length", need * 4.0 / 1048576.0, B, T);
        }
        m->arena_floats = need;
    }
    layout(m, m->arena, B, T);
    m->arena_used = need;
    m->B = B;
    m->T = T;
    return MT_OK;
}

static mt_status ensure_ibuf(mt_model *m, size_t n) {
    if (n > m->ibuf_cap) {
        int32_t *p = mt_realloc(m->ibuf, n * sizeof *p);
        if (!p) return MT_ERR_NOMEM;
        m->ibuf = p;
        m->ibuf_cap = n;
    }
    return MT_OK;
}

// ---- forward ----

static mt_status encoder_forward(mt_model *m, const mt_batch *batch, float *loss);

// Input of layer l (l = num_layers: the last layer's output); lean forwards alternate two buffers.
static float *resid_at(const mt_model *m, int l) {
    size_t NC = (size_t)m->B * m->T * m->cfg.hidden_size;
    return m->resid + (size_t)(m->lean ? l % 2 : l) * NC;
}

static mt_dropout_site site(const mt_model *m, float p, uint32_t stream) {
    mt_dropout_site d = {m->train ? p : 0.0f, m->seed, m->step, stream};
    return d;
}

static mt_status check_batch(const mt_model *m, const mt_batch *b) {
    const mt_model_config *c = &m->cfg;
    if (!b || b->B <= 0 || b->T <= 0)
        return mt_fail(MT_ERR_INVALID, "model forward: batch size and sequence length must be positive (got B=%d, "
                       "T=%d)", b ? b->B : 0, b ? b->T : 0);
    if (b->T > c->max_position_embeddings)
        return mt_fail(MT_ERR_INVALID, "model forward: sequence length %d exceeds max_position_embeddings %d; "
                       "set max_seq_length <= %d", b->T, c->max_position_embeddings, c->max_position_embeddings);
    if (!b->input_ids) return mt_fail(MT_ERR_INVALID, "model forward: batch has no input_ids");
    if ((int64_t)b->B * b->T > INT32_MAX / 4)
        return mt_fail(MT_ERR_INVALID, "model forward: batch %d x %d is too large", b->B, b->T);
    size_t N = (size_t)b->B * b->T;
    for (size_t i = 0; i < N; i++) {
        if (b->input_ids[i] < 0 || b->input_ids[i] >= c->vocab_size)
            return mt_fail(MT_ERR_INVALID, "model forward: token id %d at batch row %zu, position %zu is outside "
                           "the vocabulary [0, %d); check the tokenizer's vocab file matches the model",
                           (int)b->input_ids[i], i / (size_t)b->T, i % (size_t)b->T, c->vocab_size);
        if (b->token_type_ids && (b->token_type_ids[i] < 0 || b->token_type_ids[i] >= c->num_tokentypes))
            return mt_fail(MT_ERR_INVALID, "model forward: token type %d at batch row %zu, position %zu is outside "
                           "[0, %d)", (int)b->token_type_ids[i], i / (size_t)b->T, i % (size_t)b->T,
                           c->num_tokentypes);
    }
    if (c->tp_size > 1 && (!m->tp || m->tp->size != c->tp_size))
        return mt_fail(MT_ERR_INVALID, "model forward: the model is one shard of tensor_model_parallel_size %d but "
                       "has no TP communicator of that size", c->tp_size);
    return MT_OK;
}

// out (N,C) = res + dropout(inp (N,IN) @ w^T + b) for a row-parallel product (attention's output, FC2):
// the partial sums all-reduced over TP before the bias, or (fuse) all of it in the product's epilogue
static mt_status row_parallel_residual(mt_model *m, int fuse, float *out, const float *res, const float *inp,
                                       const float *w, const float *b, int IN, const mt_dropout_site *d) {
    const int N = m->B * m->T, C = m->cfg.hidden_size;
    if (fuse) {
        m->k->linear_residual_fwd(out, res, inp, w, b, N, IN, C);
        return MT_OK;
    }
    float *tmp = m->d_a; // (N,C) scratch
    m->k->linear_fwd(tmp, inp, w, NULL, N, IN, C);
    MT_TRY(mt_tp_g_forward(m->tp, tmp, (size_t)N * C));
    m->k->bias_dropout_add_fwd(out, res, tmp, b, (size_t)N * C, C, d);
    return MT_OK;
}

// An evaluation forward (nothing dropped) runs bias, residual and GELU in the products' epilogues;
// the residual add only without TP (the row-parallel partial sums are all-reduced first).
static int fuse_epilogues(const mt_model *m, const mt_dropout_site *d1, const mt_dropout_site *d2) {
    return !m->train && d1->p == 0.0f && d2->p == 0.0f;
}
static int fuse_residual(const mt_model *m, const mt_dropout_site *d1, const mt_dropout_site *d2) {
    return fuse_epilogues(m, d1, d2) && m->cfg.tp_size == 1 && m->k->linear_residual_fwd;
}

// out NULL: only what backward reads is computed (a checkpointed layer's recomputation): pre-LN's
// backward never reads the layer's output, so its last product (FC2, a third of the layer's
// multiply-adds) and residual are skipped; post-LN's LayerNorm needs its input, so nothing is.
static mt_status layer_forward(mt_model *m, int l, float *x, float *out) {
    const mt_model_config *c = &m->cfg;
    const mt_kernels *k = m->k;
    mt_layer_acts *L = &m->layers[l];
    const int B = m->B, T = m->T, N = B * T, C = c->hidden_size, Cl = C / c->tp_size;
    const int F = c->ffn_hidden_size / c->tp_size, NH = m->nh_local, HS = C / c->num_attention_heads;
    const int post = c->arch == MT_ARCH_BERT;
    const float eps = c->layernorm_eps;
    const size_t NC = (size_t)N * C;
    mt_dropout_site dprob = site(m, c->attention_dropout, MT_STREAM_LAYER(l, 0));
    mt_dropout_site d1 = site(m, c->hidden_dropout, MT_STREAM_LAYER(l, 1));
    mt_dropout_site d2 = site(m, c->hidden_dropout, MT_STREAM_LAYER(l, 2));
    const int32_t *mask = m->has_mask ? m->mask : NULL;

    // A prediction forward on a bf16 table hands pre-LN's norms, QKV, the attention output and FC1's
    // activation from product to product in bf16 (kernels.h): nothing else reads them here (post-LN's
    // norms are the residual stream: they stay fp32), and nothing is kept for a backward.
    const int handoff = m->lean && k->handoff_begin;
    const float *att_in = x;
    if (!post) {
        if (handoff) k->handoff_begin(L->ln1, NC);
        k->layernorm_fwd(L->ln1, L->ln1_mean, L->ln1_rstd, x, P(MT_ROLE_LN1_W, l), P(MT_ROLE_LN1_B, l), N, C, eps);
        att_in = L->ln1;
    }
    MT_TRY(mt_tp_f_forward(m->tp, (float *)att_in, NC));
    if (handoff) k->handoff_begin(L->qkv, (size_t)N * 3 * Cl);
    k->linear_fwd(L->qkv, att_in, P(MT_ROLE_QKV_W, l), P(MT_ROLE_QKV_B, l), N, C, 3 * Cl);
    if (handoff && !post) k->handoff_end(L->ln1);
    if (handoff) k->handoff_begin(L->atty, (size_t)N * Cl);
    if (m->att_chunk >= B || dprob.p > 0.0f) {
        k->attention_fwd(L->atty, L->probs, m->att_scratch, L->qkv, mask, mask_mode(c), B, T, NH, HS,
                         c->num_attention_heads, c->tp_rank * NH, &dprob);
    } else { // lean prediction: batch rows in chunks (no dropout, so chunking changes nothing)
        for (int b0 = 0; b0 < B; b0 += m->att_chunk) {
            int nb = B - b0 < m->att_chunk ? B - b0 : m->att_chunk;
            k->attention_fwd(L->atty + (size_t)b0 * T * Cl, NULL, m->att_scratch, L->qkv + (size_t)b0 * T * 3 * Cl,
                             mask ? mask + (size_t)b0 * T : NULL, mask_mode(c), nb, T, NH, HS,
                             c->num_attention_heads, c->tp_rank * NH, &dprob);
        }
    }
    if (handoff) k->handoff_end(L->qkv);
    // An evaluation forward drops nothing here, so where the table has GEMM epilogues the bias, the
    // residual add and the GELU ride in them: one pass over each output, not two or three (1-4% of a
    // prediction step, README "Speed"). Prediction and `test` run the same arithmetic and write the
    // same digits. FC1's pre-activation is then not kept: a backward after it recomputes it. With TP
    // the row-parallel partial sums are all-reduced before the residual, so that stays apart.
    const int fuse = fuse_epilogues(m, &d1, &d2);
    const int fuse_act = fuse && k->linear_act_fwd, fuse_res = fuse_residual(m, &d1, &d2);
    if (l == 0) m->fc1_stale = fuse_act && !m->lean;
    float *s1 = post ? L->s1 : L->h; // the residual stream after attention, before post-LN's norm
    MT_TRY(row_parallel_residual(m, fuse_res, s1, x, L->atty, P(MT_ROLE_ATTN_OUT_W, l), P(MT_ROLE_ATTN_OUT_B, l), Cl,
                                 &d1));
    if (handoff) k->handoff_end(L->atty);
    float *h;
    if (!post) {
        h = L->h;
        if (handoff) k->handoff_begin(L->ln2, NC);
        k->layernorm_fwd(L->ln2, L->ln2_mean, L->ln2_rstd, h, P(MT_ROLE_LN2_W, l), P(MT_ROLE_LN2_B, l), N, C, eps);
    } else {
        k->layernorm_fwd(L->ln1, L->ln1_mean, L->ln1_rstd, L->s1, P(MT_ROLE_LN1_W, l), P(MT_ROLE_LN1_B, l), N, C,
                         eps);
        h = L->ln1;
    }
    const float *mlp_in = post ? h : L->ln2;
    MT_TRY(mt_tp_f_forward(m->tp, (float *)mlp_in, NC));
    if (fuse_act) {
        if (handoff) k->handoff_begin(L->act, (size_t)N * F);
        k->linear_act_fwd(L->act, mlp_in, P(MT_ROLE_FC1_W, l), P(MT_ROLE_FC1_B, l), N, C, F, gelu_kact(c->gelu));
    } else {
        k->linear_fwd(L->fc1, mlp_in, P(MT_ROLE_FC1_W, l), P(MT_ROLE_FC1_B, l), N, C, F);
        k->act_fwd(L->act, L->fc1, (size_t)N * F, gelu_kact(c->gelu));
    }
    if (handoff && !post) k->handoff_end(L->ln2);
    if (!out && !post) return MT_OK; // (a recomputation: never a prediction, so no hand-off is open)
    float *s2 = post ? L->s2 : out;
    MT_TRY(row_parallel_residual(m, fuse_res, s2, h, L->act, P(MT_ROLE_FC2_W, l), P(MT_ROLE_FC2_B, l), F, &d2));
    if (handoff) k->handoff_end(L->act);
    if (post) // (the recomputation still writes its output: LN2's mean and rstd come with it)
        k->layernorm_fwd(out ? out : m->d_a, L->ln2_mean, L->ln2_rstd, L->s2, P(MT_ROLE_LN2_W, l), P(MT_ROLE_LN2_B, l),
                         N, C, eps);
    return MT_OK;
}

mt_status mt_model_forward(mt_model *m, const mt_batch *batch, int train, uint64_t dropout_seed, uint64_t step,
                           float *loss) {
    m->have_forward = m->have_loss = 0;
    if (loss) *loss = 0;
    MT_TRY(check_batch(m, batch));
    const int B = batch->B, T = batch->T, N = B * T;
    m->lean = loss == NULL; // no loss: prediction, nothing kept for backward
    m->train = train;       // (the layout chunks attention only when no attention dropout runs)
    MT_TRY(ensure_arena(m, B, T));
    MT_TRY(ensure_ibuf(m, 3 * (size_t)N + 2 * (size_t)N + 2 + (size_t)N));
    m->ids = m->ibuf;
    m->types = m->ibuf + N;
    m->mask = m->ibuf + 2 * (size_t)N;
    m->labels = m->ibuf + 3 * (size_t)N;
    m->labels2 = m->ibuf + 5 * (size_t)N + 2;
    memcpy(m->ids, batch->input_ids, (size_t)N * sizeof(int32_t));
    m->has_types = batch->token_type_ids != NULL;
    if (m->has_types) memcpy(m->types, batch->token_type_ids, (size_t)N * sizeof(int32_t));
    m->has_mask = batch->attention_mask != NULL;
    if (m->has_mask)
        for (int i = 0; i < N; i++) m->mask[i] = batch->attention_mask[i] != 0;
    m->train = train;
    m->seed = dropout_seed;
    m->step = step;
    // a training forward is followed by an optimizer step: derived weights live for this step
    // only; evaluation forwards share them until the weights are handed out for writing again
    if (train) weights_changed(m);
    m->fwd_wver = m->wver;
    use_weights_version(m);
    mt_kernels_set_packing(m->lean && !m->no_weight_copies);
    if (m->keep_on) m->k->handoff_attach(m->keep_names, m->keep_n, m->keep_bf);
    mt_status st = encoder_forward(m, batch, loss);
    mt_kernels_set_packing(0);
    if (m->k->handoff_end) m->k->handoff_end(NULL); // (a forward that failed half-way may have left some)
    mt_kernels_set_weights_version(0);
    return st;
}

static mt_status encoder_forward(mt_model *m, const mt_batch *batch, float *loss) {
    const mt_model_config *c = &m->cfg;
    const int B = batch->B, T = batch->T, N = B * T, C = c->hidden_size;
    const size_t NC = (size_t)N * C;
    const mt_kernels *k = m->k;
    // embeddings: vocab-parallel word lookup, all-reduce, then positions and token types
    float *e = m->emb_sum;
    k->embed_word_fwd(e, m->ids, P(MT_ROLE_WORD_EMB, -1), m->vstart, m->vlocal, N, C);
    MT_TRY(mt_tp_g_forward(m->tp, e, NC));
    k->embed_pos_type_fwd(e, m->has_types ? m->types : NULL, P(MT_ROLE_POS_EMB, -1), P(MT_ROLE_TYPE_EMB, -1), B, T, C);
    mt_dropout_site de = site(m, c->hidden_dropout, MT_STREAM_EMBED);
    if (c->arch == MT_ARCH_BERT) {
        k->layernorm_fwd(m->resid, m->emb_mean, m->emb_rstd, e, P(MT_ROLE_EMB_LN_W, -1), P(MT_ROLE_EMB_LN_B, -1), N,
                         C, c->layernorm_eps);
        k->dropout_fwd(m->resid, m->resid, NC, 0, &de);
    } else {
        k->dropout_fwd(m->resid, e, NC, 0, &de);
    }
    for (int l = 0; l < c->num_layers; l++)
        MT_TRY(layer_forward(m, l, resid_at(m, l), resid_at(m, l + 1)));
    if (c->arch == MT_ARCH_MEGATRON)
        k->layernorm_fwd(m->hidden, m->fin_mean, m->fin_rstd, resid_at(m, c->num_layers),
                         P(MT_ROLE_FINAL_LN_W, -1), P(MT_ROLE_FINAL_LN_B, -1), N, C, c->layernorm_eps);
    float l = 0;
    if (c->head != MT_HEAD_NONE) MT_TRY(mt_head_forward(m, batch, loss ? &l : NULL));
    if (loss) *loss = l;
    m->have_forward = 1;
    m->have_loss = loss != NULL && c->head != MT_HEAD_NONE;
    return MT_OK;
}

const float *mt_model_logits(const mt_model *m, size_t *n) {
    if (n) *n = m->have_forward ? m->n_logits : 0;
    return m->have_forward ? m->logits : NULL;
}

const float *mt_model_hidden(const mt_model *m) { return m->have_forward ? m->hidden : NULL; }

// ---- backward ----

// dres holds d(out of layer l); on return d(input of layer l).
// Recomputing (store_probs 0), layers share one buffer for GELU's output and, pre-LN, one for each
// LayerNorm output, which hold another layer's values by backward: backward refills them with the
// same kernels on the same inputs (bit for bit, mean and rstd included), except for a checkpointed
// layer, whose forward just ran again and refilled them.
static int refill_shared(const mt_model *m, int l) { return !m->store_probs && l >= m->ckpt_now; }

static void span_begin(mt_model *m, size_t lo, size_t hi);
static mt_status span_end(mt_model *m, size_t lo, size_t hi);

// Without a data-parallel reduction the step in backward updates each of a layer's parameter pairs
// (a LayerNorm's or a product's weight and bias) as soon as backward has its gradients, so the
// gradient scratch holds one pair (FC1's, the largest: 16 of a layer's 48 MiB at 345M), not the
// whole layer. With a reduction a layer stays one span: one all-reduce per layer, as DDP's buckets.
// (Without the step in backward span_begin and span_end do nothing either way.)
static int pair_spans(const mt_model *m) { return !m->grad_reduce; }
// [lo, hi) of layer l's pair that starts with role_w: up to the entry after its bias, so that the
// pairs of a layer tile it as the layer's span does
static void pair_span(const mt_model *m, mt_param_role role_w, int l, size_t *lo, size_t *hi) {
    const int i = mt_param_index(&m->table, role_w, l);
    *lo = m->table.params[i].offset;
    *hi = i + 2 < m->table.count ? m->table.params[i + 2].offset : m->table.total;
}
static void pair_begin(mt_model *m, mt_param_role role_w, int l) {
    if (!pair_spans(m)) return;
    size_t lo, hi;
    pair_span(m, role_w, l, &lo, &hi);
    span_begin(m, lo, hi);
}
static mt_status pair_end(mt_model *m, mt_param_role role_w, int l) {
    if (!pair_spans(m)) return MT_OK;
    size_t lo, hi;
    pair_span(m, role_w, l, &lo, &hi);
    return span_end(m, lo, hi);
}
static const mt_param_role layer_pairs[] = {MT_ROLE_LN1_W, MT_ROLE_QKV_W, MT_ROLE_ATTN_OUT_W,
                                            MT_ROLE_LN2_W, MT_ROLE_FC1_W, MT_ROLE_FC2_W};

static mt_status layer_backward(mt_model *m, int l, const float *x) {
    const mt_model_config *c = &m->cfg;
    const mt_kernels *k = m->k;
    mt_layer_acts *L = &m->layers[l];
    const int B = m->B, T = m->T, N = B * T, C = c->hidden_size, Cl = C / c->tp_size;
    const int F = c->ffn_hidden_size / c->tp_size, NH = m->nh_local, HS = C / c->num_attention_heads;
    const int post = c->arch == MT_ARCH_BERT;
    const float eps = c->layernorm_eps;
    const size_t NC = (size_t)N * C;
    float *dres = m->d_res, *dA = m->d_a, *dB = m->d_b;
    mt_dropout_site dprob = site(m, c->attention_dropout, MT_STREAM_LAYER(l, 0));
    mt_dropout_site d1 = site(m, c->hidden_dropout, MT_STREAM_LAYER(l, 1));
    mt_dropout_site d2 = site(m, c->hidden_dropout, MT_STREAM_LAYER(l, 2));
    const int32_t *mask = m->has_mask ? m->mask : NULL;

    // A checkpointed layer's activations were overwritten by the layers after it: run its forward
    // again from its kept input. The dropout sites are the forward's (same seed, step and streams)
    // and the kernels are deterministic, so this refills them bit for bit; its output is not needed
    // (nothing reads resid[l + 1] any more). d_a is free scratch here.
    if (l < m->ckpt_now) MT_TRY(layer_forward(m, l, (float *)x, NULL));

    // recompute 3: the residual stream after attention, as the forward made it (same product, bias,
    // dropout mask and residual; d_a is free scratch here)
    if (!post && m->recompute == 3 && refill_shared(m, l))
        MT_TRY(row_parallel_residual(m, fuse_residual(m, &d1, &d2), L->h, x, L->atty, P(MT_ROLE_ATTN_OUT_W, l),
                                     P(MT_ROLE_ATTN_OUT_B, l), Cl, &d1));
    // dh: gradient w.r.t. the residual stream after attention
    float *dh = dres;
    if (post) {
        memset(dA, 0, NC * sizeof(float));
        pair_begin(m, MT_ROLE_LN2_W, l);
        k->layernorm_bwd(dA, G(MT_ROLE_LN2_W, l), G(MT_ROLE_LN2_B, l), dres, L->s2, P(MT_ROLE_LN2_W, l),
                         L->ln2_mean, L->ln2_rstd, N, C);
        MT_TRY(pair_end(m, MT_ROLE_LN2_W, l));
        dh = dA; // d s2 = d h (residual) + the MLP branch below
    }
    const float *mlp_in = post ? L->ln1 : L->ln2;
    if (!post && refill_shared(m, l))
        k->layernorm_fwd(L->ln2, L->ln2_mean, L->ln2_rstd, L->h, P(MT_ROLE_LN2_W, l), P(MT_ROLE_LN2_B, l), N, C, eps);
    k->dropout_bwd(dB, dh, NC, 0, &d2);
    MT_TRY(mt_tp_g_backward(m->tp, dB, NC));
    if (m->fc1_stale || (m->recompute >= 2 && refill_shared(m, l)))
        k->linear_fwd(L->fc1, mlp_in, P(MT_ROLE_FC1_W, l), P(MT_ROLE_FC1_B, l), N, C, F);
    if (refill_shared(m, l)) k->act_fwd(L->act, L->fc1, (size_t)N * F, gelu_kact(c->gelu));
    pair_begin(m, MT_ROLE_FC2_W, l);
    k->linear_bwd(m->d_ff, G(MT_ROLE_FC2_W, l), G(MT_ROLE_FC2_B, l), dB, L->act, P(MT_ROLE_FC2_W, l), N, F, C);
    MT_TRY(pair_end(m, MT_ROLE_FC2_W, l));
    k->act_bwd(m->d_ff, m->d_ff, L->fc1, (size_t)N * F, gelu_kact(c->gelu)); // in place: one N x F buffer
    pair_begin(m, MT_ROLE_FC1_W, l);
    k->linear_bwd(dB, G(MT_ROLE_FC1_W, l), G(MT_ROLE_FC1_B, l), m->d_ff, mlp_in, P(MT_ROLE_FC1_W, l), N, C, F);
    MT_TRY(pair_end(m, MT_ROLE_FC1_W, l));
    MT_TRY(mt_tp_f_backward(m->tp, dB, NC));
    if (!post) {
        // dres += LN2'(dB)
        pair_begin(m, MT_ROLE_LN2_W, l);
        k->layernorm_bwd(dres, G(MT_ROLE_LN2_W, l), G(MT_ROLE_LN2_B, l), dB, L->h, P(MT_ROLE_LN2_W, l), L->ln2_mean,
                         L->ln2_rstd, N, C);
        MT_TRY(pair_end(m, MT_ROLE_LN2_W, l));
        dh = dres;
    } else {
        for (size_t i = 0; i < NC; i++) dA[i] += dB[i];
        memset(dres, 0, NC * sizeof(float));
        pair_begin(m, MT_ROLE_LN1_W, l);
        k->layernorm_bwd(dres, G(MT_ROLE_LN1_W, l), G(MT_ROLE_LN1_B, l), dA, L->s1, P(MT_ROLE_LN1_W, l), L->ln1_mean,
                         L->ln1_rstd, N, C);
        MT_TRY(pair_end(m, MT_ROLE_LN1_W, l));
        dh = dres; // d s1
    }
    // attention branch: dh -> d(dense out) -> d atty -> d qkv -> d(att input)
    k->dropout_bwd(dB, dh, NC, 0, &d1);
    MT_TRY(mt_tp_g_backward(m->tp, dB, NC));
    pair_begin(m, MT_ROLE_ATTN_OUT_W, l);
    k->linear_bwd(m->d_atty, G(MT_ROLE_ATTN_OUT_W, l), G(MT_ROLE_ATTN_OUT_B, l), dB, L->atty, P(MT_ROLE_ATTN_OUT_W, l),
                  N, Cl, C);
    MT_TRY(pair_end(m, MT_ROLE_ATTN_OUT_W, l));
    k->attention_bwd(m->d_qkv, m->att_scratch, m->d_atty, L->qkv, L->probs, mask, mask_mode(c), B, T, NH, HS,
                     c->num_attention_heads, c->tp_rank * NH, &dprob);
    const float *att_in = post ? x : L->ln1;
    if (!post && refill_shared(m, l))
        k->layernorm_fwd(L->ln1, L->ln1_mean, L->ln1_rstd, x, P(MT_ROLE_LN1_W, l), P(MT_ROLE_LN1_B, l), N, C, eps);
    pair_begin(m, MT_ROLE_QKV_W, l);
    k->linear_bwd(dB, G(MT_ROLE_QKV_W, l), G(MT_ROLE_QKV_B, l), m->d_qkv, att_in, P(MT_ROLE_QKV_W, l), N, C, 3 * Cl);
    MT_TRY(pair_end(m, MT_ROLE_QKV_W, l));
    MT_TRY(mt_tp_f_backward(m->tp, dB, NC));
    if (!post) {
        pair_begin(m, MT_ROLE_LN1_W, l);
        k->layernorm_bwd(dres, G(MT_ROLE_LN1_W, l), G(MT_ROLE_LN1_B, l), dB, x, P(MT_ROLE_LN1_W, l), L->ln1_mean,
                         L->ln1_rstd, N, C);
        MT_TRY(pair_end(m, MT_ROLE_LN1_W, l));
    } else {
        for (size_t i = 0; i < NC; i++) dres[i] += dB[i];
    }
    return MT_OK;
}

static mt_status encoder_backward(mt_model *m, float loss_scale);

// encoder_backward with the forward's bf16-kept values in reach of the kernels
static mt_status encoder_backward_kept(mt_model *m, float loss_scale) {
    if (!m->keep_on || !m->have_forward) return encoder_backward(m, loss_scale);
    m->k->handoff_attach(m->keep_names, m->keep_n, m->keep_bf);
    mt_status st = encoder_backward(m, loss_scale);
    m->k->handoff_end(m->keep_names);
    return st;
}

mt_status mt_model_backward(mt_model *m, float loss_scale) {
    use_weights_version(m);
    mt_status st = encoder_backward_kept(m, loss_scale);
    mt_kernels_set_weights_version(0);
    return st;
}

// The spans the step in backward updates one by one, in the order backward completes them: the
// tail (final LayerNorm and heads, after every layer in the table), each layer from the last, then
// the embeddings (before layer 0). lo(l) is layer l's first entry; layer l ends where l+1 begins.
static size_t layer_lo(const mt_model *m, int l) {
    if (l >= m->cfg.num_layers) { // the tail: the entry after the last layer's last one
        int i = mt_param_index(&m->table, MT_ROLE_FC2_B, m->cfg.num_layers - 1) + 1;
        return i < m->table.count ? m->table.params[i].offset : m->table.total;
    }
    return m->table.params[mt_param_index(&m->table, MT_ROLE_LN1_W, l)].offset;
}

// Starts span [lo, hi): its gradients are computed from zero in the scratch.
static void span_begin(mt_model *m, size_t lo, size_t hi) {
    if (!m->step_opt) return;
    m->span_lo = lo;
    memset(m->grad_scratch, 0, (hi - lo) * sizeof(float));
}

// The span's gradients are complete: reduced over data-parallel replicas (when a hook is set),
// then the optimizer updates its parameters.
static mt_status span_end(mt_model *m, size_t lo, size_t hi) {
    if (!m->step_opt) return MT_OK;
    if (m->grad_reduce) MT_TRY(m->grad_reduce(m->grad_reduce_ctx, m->grad_scratch, hi - lo));
    return mt_optimizer_step_range(m->step_opt, m->params, m->grad_scratch, lo, hi - lo, m->step_lr);
}

// The word embedding's first element; it starts the table (params.c).
static size_t word_rows_lo(const mt_model *m) {
    return m->table.params[mt_param_index(&m->table, MT_ROLE_WORD_EMB, -1)].offset;
}
static size_t word_rows_end(const mt_model *m) {
    return word_rows_lo(m) + (size_t)m->vlocal * (size_t)m->cfg.hidden_size;
}

// Whether the step in backward keeps the word embedding's gradients sparse: not when a
// data-parallel reduction needs the span dense.
static int word_grads_sparse(const mt_model *m) { return !m->grad_reduce && word_rows_lo(m) == 0; }

// The step in backward without a data-parallel reduction: the word embedding's gradients for the
// rows the batch touched only, compacted at `dst` in the order their ids first appear, and the
// update of every row (untouched ones with zero gradients, as the dense span would give them). The
// kernel sums each row's tokens in the same order as into the dense table, so the result is the
// same bit for bit, without clearing and updating from a vocab x hidden gradient every step.
static mt_status word_emb_sparse_step(mt_model *m, float *dst, const float *de_sum, int N, int C) {
    int32_t *slot = m->word_slot, *cid = m->word_cid;
    int rows = 0;
    for (int i = 0; i < N; i++) {
        const int local = m->ids[i] - m->vstart;
        if (local < 0 || local >= m->vlocal) { // another tensor-parallel rank's rows
            cid[i] = -1;
            continue;
        }
        if (slot[local] < 0) slot[local] = rows++;
        cid[i] = slot[local];
    }
    memset(dst, 0, (size_t)rows * C * sizeof(float));
    m->k->embed_word_bwd(dst, de_sum, cid, 0, rows, N, C);
    mt_status st = mt_optimizer_step_rows(m->step_opt, m->params, word_rows_lo(m), (size_t)m->vlocal, (size_t)C, slot,
                                          dst, m->step_lr);
    for (int i = 0; i < N; i++) // back to all -1 for the next step
        if (cid[i] >= 0) slot[m->ids[i] - m->vstart] = -1;
    return st;
}

void mt_model_set_grad_reduce(mt_model *m, mt_grad_reduce_fn fn, void *ctx) {
    m->grad_reduce = fn;
    m->grad_reduce_ctx = ctx;
}

mt_status mt_model_backward_step(mt_model *m, mt_optimizer *opt, float lr) {
    if (!opt) return mt_fail(MT_ERR_INVALID, "model backward step: no optimizer");
    if (m->cfg.num_layers < 1) return mt_fail(MT_ERR_INVALID, "model backward step: the model has no layers");
    // refused backwards (no forward, no loss, no head) say why before the step count moves
    if (!m->have_forward || !m->have_loss || m->cfg.head == MT_HEAD_NONE) return encoder_backward(m, 1.0f);
    // the largest span's gradients; the embeddings' word rows only as many as the batch has tokens
    // unless a data-parallel reduction needs them dense
    const size_t wend = word_rows_end(m), N = (size_t)m->B * (size_t)m->T;
    size_t most = layer_lo(m, 0), tail = m->table.total - layer_lo(m, m->cfg.num_layers);
    if (word_grads_sparse(m)) {
        const size_t rows = N < (size_t)m->vlocal ? N : (size_t)m->vlocal;
        most = most - wend + rows * (size_t)m->cfg.hidden_size;
        if (!m->word_slot) {
            m->word_slot = malloc((size_t)m->vlocal * sizeof *m->word_slot);
            if (!m->word_slot) return mt_fail(MT_ERR_NOMEM, "model backward step: out of memory");
            for (int v = 0; v < m->vlocal; v++) m->word_slot[v] = -1;
        }
        if (N > m->word_cid_cap) {
            free(m->word_cid);
            m->word_cid = malloc(N * sizeof *m->word_cid);
            m->word_cid_cap = m->word_cid ? N : 0;
            if (!m->word_cid) return mt_fail(MT_ERR_NOMEM, "model backward step: out of memory");
        }
    }
    if (tail > most) most = tail;
    for (int l = 0; l < m->cfg.num_layers; l++) {
        size_t n = layer_lo(m, l + 1) - layer_lo(m, l);
        if (pair_spans(m)) {
            n = 0;
            for (size_t r = 0; r < sizeof layer_pairs / sizeof *layer_pairs; r++) {
                size_t lo, hi;
                pair_span(m, layer_pairs[r], l, &lo, &hi);
                if (hi - lo > n) n = hi - lo;
            }
        }
        if (n > most) most = n;
    }
    if (most > m->grad_scratch_floats) {
        mt_free_aligned(m->grad_scratch);
        m->grad_scratch = mt_alloc_aligned((most ? most : 1) * sizeof(float));
        m->grad_scratch_floats = m->grad_scratch ? most : 0;
        if (!m->grad_scratch)
            return mt_fail(MT_ERR_NOMEM, "model backward step: cannot allocate %.1f MiB of gradient scratch",
                           most * 4.0 / 1048576.0);
    }
    mt_optimizer_begin_step(opt);
    m->step_opt = opt;
    m->step_lr = lr;
    use_weights_version(m);
    mt_status st = encoder_backward_kept(m, 1.0f);
    mt_kernels_set_weights_version(0);
    m->step_opt = NULL;
    weights_changed(m); // what kernels derived from the weights (bf16 copies) is stale now
    return st;
}

static mt_status encoder_backward(mt_model *m, float loss_scale) {
    if (!m->have_forward)
        return mt_fail(MT_ERR_INVALID, "model backward: no forward pass to differentiate; call mt_model_forward "
                       "first");
    const mt_model_config *c = &m->cfg;
    if (c->head == MT_HEAD_NONE)
        return mt_fail(MT_ERR_INVALID, "model backward: the model has no head, so there is no loss to "
                       "differentiate");
    if (!m->have_loss)
        return mt_fail(MT_ERR_INVALID, "model backward: the last forward computed no loss (it was given no loss "
                       "pointer); pass one to train");
    const mt_kernels *k = m->k;
    const int B = m->B, T = m->T, N = B * T, C = c->hidden_size;
    const size_t NC = (size_t)N * C;
    const int nl = c->num_layers;
    span_begin(m, layer_lo(m, nl), m->table.total);
    mt_head_backward(m, loss_scale); // d hidden -> d_res
    if (c->arch == MT_ARCH_MEGATRON) {
        memcpy(m->d_a, m->d_res, NC * sizeof(float));
        memset(m->d_res, 0, NC * sizeof(float));
        k->layernorm_bwd(m->d_res, G(MT_ROLE_FINAL_LN_W, -1), G(MT_ROLE_FINAL_LN_B, -1), m->d_a,
                         m->resid + (size_t)c->num_layers * NC, P(MT_ROLE_FINAL_LN_W, -1), m->fin_mean, m->fin_rstd,
                         N, C);
    }
    MT_TRY(span_end(m, layer_lo(m, nl), m->table.total));
    const int whole_layers = !pair_spans(m); // (else layer_backward updates pair by pair)
    for (int l = nl - 1; l >= 0; l--) {
        if (whole_layers) span_begin(m, layer_lo(m, l), layer_lo(m, l + 1));
        MT_TRY(layer_backward(m, l, m->resid + (size_t)l * NC));
        if (whole_layers) MT_TRY(span_end(m, layer_lo(m, l), layer_lo(m, l + 1)));
    }
    // the word rows sparsely when the step is in backward and nothing reduces the span densely
    const int sparse_words = m->step_opt && word_grads_sparse(m);
    const size_t emb_lo = sparse_words ? word_rows_end(m) : 0;
    span_begin(m, emb_lo, layer_lo(m, 0));
    mt_dropout_site de = site(m, c->hidden_dropout, MT_STREAM_EMBED);
    k->dropout_bwd(m->d_res, m->d_res, NC, 0, &de);
    float *de_sum = m->d_res;
    if (c->arch == MT_ARCH_BERT) {
        memset(m->d_a, 0, NC * sizeof(float));
        k->layernorm_bwd(m->d_a, G(MT_ROLE_EMB_LN_W, -1), G(MT_ROLE_EMB_LN_B, -1), m->d_res, m->emb_sum,
                         P(MT_ROLE_EMB_LN_W, -1), m->emb_mean, m->emb_rstd, N, C);
        de_sum = m->d_a;
    }
    k->embed_pos_type_bwd(G(MT_ROLE_POS_EMB, -1), G(MT_ROLE_TYPE_EMB, -1), de_sum, m->has_types ? m->types : NULL, B,
                          T, C);
    MT_TRY(mt_tp_g_backward(m->tp, de_sum, NC));
    if (sparse_words) {
        MT_TRY(word_emb_sparse_step(m, m->grad_scratch + (layer_lo(m, 0) - emb_lo), de_sum, N, C));
    } else {
        k->embed_word_bwd(G(MT_ROLE_WORD_EMB, -1), de_sum, m->ids, m->vstart, m->vlocal, N, C);
    }
    MT_TRY(span_end(m, emb_lo, layer_lo(m, 0)));
    return MT_OK;
}
