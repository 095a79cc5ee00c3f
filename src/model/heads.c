// Task heads as NeMo builds them, and their losses:
//   TokenClassifier:    dropout(fc_dropout) on every token, MLP ([Linear(h,h), act] x (n-1), Linear(h,C))
//   SequenceClassifier: dropout, the same MLP on token 0; CrossEntropy (optionally class-weighted)
//   SequenceRegression: dropout, MLP to 1 value on token 0; MSE
//   QA:                 TokenClassifier with C=2; SpanningLoss = mean of start and end cross-entropy
//   second head (cfg.head2): a TokenClassifier beside the first; AggregatorLoss w1*loss1 + w2*loss2
#include <math.h>
#include <string.h>

#include "model/bert_internal.h"
#include "model/model_kernels.h"

static int is_token_head(const mt_model *m) {
    return m->cfg.head == MT_HEAD_TOKEN_CLASSIFIER || m->cfg.head == MT_HEAD_QA;
}

int mt_head_rows(const mt_model *m, int B, int T) { return is_token_head(m) ? B * T : B; }

static mt_kact kact_of(mt_activation a);
mt_kact mt_head_kact(const mt_model *m) { return kact_of(m->cfg.head_activation); }

static float *hp(mt_model *m, mt_param_role role, int layer, int grad) {
    int i = mt_param_index(&m->table, role, layer);
    return grad ? mt_grad_of(m, i) : m->params + m->table.params[i].offset;
}

static mt_kact kact_of(mt_activation a) {
    switch (a) {
    case MT_ACT_GELU: return MT_KACT_GELU_ERF; // torch.nn.GELU()
    case MT_ACT_TANH: return MT_KACT_TANH;
    default: return MT_KACT_RELU;
    }
}

// One MLP ([Linear(h,h), act] x (nl-1), Linear(h,NC)) over M rows of x; z/a hold (nl-1) layers.
static void mlp_forward(mt_model *m, mt_param_role rw, mt_param_role rb, int nl, mt_kact act, const float *x,
                        float *z_all, float *a_all, float *out, int M, int NC) {
    const mt_kernels *k = m->k;
    const int C = m->cfg.hidden_size;
    for (int i = 0; i < nl - 1; i++) {
        float *z = z_all + (size_t)i * M * C, *a = a_all + (size_t)i * M * C;
        k->linear_fwd(z, x, hp(m, rw, i, 0), hp(m, rb, i, 0), M, C, C);
        k->act_fwd(a, z, (size_t)M * C, act);
        x = a;
    }
    k->linear_fwd(out, x, hp(m, rw, nl - 1, 0), hp(m, rb, nl - 1, 0), M, C, NC);
}

// Backward of mlp_forward given d(out) `g`; returns the buffer (d_head_a or d_head_b) that holds
// d(x). Parameter gradients are added.
static float *mlp_backward(mt_model *m, mt_param_role rw, mt_param_role rb, int nl, mt_kact act, const float *g,
                           const float *x0, const float *z_all, const float *a_all, int M, int NC) {
    const mt_kernels *k = m->k;
    const int C = m->cfg.hidden_size;
    int gdim = NC;
    float *dx = m->d_head_a;
    for (int i = nl - 1; i >= 0; i--) {
        const float *x = i == 0 ? x0 : a_all + (size_t)(i - 1) * M * C;
        k->linear_bwd(dx, hp(m, rw, i, 1), hp(m, rb, i, 1), g, x, hp(m, rw, i, 0), M, C, gdim);
        if (i > 0) {
            float *other = dx == m->d_head_a ? m->d_head_b : m->d_head_a;
            k->act_bwd(other, dx, z_all + (size_t)(i - 1) * M * C, (size_t)M * C, act);
            g = other;
            gdim = C;
            dx = other == m->d_head_a ? m->d_head_b : m->d_head_a;
        }
    }
    return dx;
}

// The second head's row weights (loss mask x class weight) and labels, as the token classifier's.
static mt_status prepare_targets2(mt_model *m, const mt_batch *b) {
    const int N = b->B * b->T, T = b->T, NC = m->cfg.num_classes2;
    if (!b->labels2) return mt_fail(MT_ERR_INVALID, "second head: the batch has no labels for it");
    double sum = 0;
    for (int i = 0; i < N; i++) {
        float lm = b->loss_mask ? b->loss_mask[i] : (b->attention_mask ? (float)(b->attention_mask[i] != 0) : 1.0f);
        float w = 0;
        if (lm > 0.5f) {
            int y = b->labels2[i];
            if (y < 0 || y >= NC)
                return mt_fail(MT_ERR_INVALID, "second head (%s): label %d at batch row %d, position %d is outside "
                               "[0, %d); check its label map", m->cfg.head2_prefix, y, i / T, i % T, NC);
            w = b->class_weights2 ? b->class_weights2[y] : 1.0f;
        }
        m->row_w2[i] = w;
        m->labels2[i] = w != 0.0f ? b->labels2[i] : 0;
        sum += w;
    }
    m->loss_norm2 = (float)sum;
    return MT_OK;
}

// Loss weights and labels; refuses labels outside the head's range where they are read.
static mt_status prepare_targets(mt_model *m, const mt_batch *b) {
    const mt_model_config *c = &m->cfg;
    const int B = b->B, T = b->T, N = B * T, NC = c->num_classes;
    switch (c->head) {
    case MT_HEAD_TOKEN_CLASSIFIER: {
        if (!b->labels) return mt_fail(MT_ERR_INVALID, "token classifier: the batch has no labels");
        double sum = 0;
        for (int i = 0; i < N; i++) {
            float lm = b->loss_mask ? b->loss_mask[i] : (b->attention_mask ? (float)(b->attention_mask[i] != 0) : 1.0f);
            float w = 0;
            if (lm > 0.5f) {
                int y = b->labels[i];
                if (y < 0 || y >= NC)
                    return mt_fail(MT_ERR_INVALID, "token classifier: label %d at batch row %d, position %d is "
                                   "outside [0, %d); check the label map (label_ids.csv)", y, i / T, i % T, NC);
                w = b->class_weights ? b->class_weights[y] : 1.0f;
            }
            m->row_w[i] = w;
            m->labels[i] = w != 0.0f ? b->labels[i] : 0;
            sum += w;
        }
        m->loss_norm = (float)sum;
        break;
    }
    case MT_HEAD_SEQUENCE_CLASSIFIER: {
        if (!b->labels) return mt_fail(MT_ERR_INVALID, "sequence classifier: the batch has no labels");
        double sum = 0;
        for (int i = 0; i < B; i++) {
            int y = b->labels[i];
            if (y < 0 || y >= NC)
                return mt_fail(MT_ERR_INVALID, "sequence classifier: label %d of batch row %d is outside [0, %d); "
                               "check num_classes and the data's labels", y, i, NC);
            m->labels[i] = y;
            m->row_w[i] = b->class_weights ? b->class_weights[y] : 1.0f;
            sum += m->row_w[i];
        }
        m->loss_norm = (float)sum;
        break;
    }
    case MT_HEAD_SEQUENCE_REGRESSION:
        if (!b->targets) return mt_fail(MT_ERR_INVALID, "sequence regression: the batch has no targets");
        for (int i = 0; i < B; i++) {
            if (!isfinite(b->targets[i]))
                return mt_fail(MT_ERR_INVALID, "sequence regression: target of batch row %d is not finite", i);
            m->targets[i] = b->targets[i];
        }
        m->loss_norm = (float)B;
        break;
    case MT_HEAD_QA:
        if (!b->start_positions || !b->end_positions)
            return mt_fail(MT_ERR_INVALID, "QA: the batch has no start/end positions");
        for (int i = 0; i < B; i++) {
            int s = b->start_positions[i], e = b->end_positions[i];
            if (s < 0 || s >= T || e < 0 || e >= T)
                return mt_fail(MT_ERR_INVALID, "QA: answer span [%d, %d] of batch row %d is outside the sequence "
                               "[0, %d)", s, e, i, T);
            m->labels[i] = s;
            m->labels[B + i] = e;
            m->row_w[i] = m->row_w[B + i] = 1.0f;
        }
        m->loss_norm = (float)B;
        break;
    default: break;
    }
    return MT_OK;
}

mt_status mt_head_forward(mt_model *m, const mt_batch *batch, float *loss) {
    const mt_model_config *c = &m->cfg;
    const mt_kernels *k = m->k;
    const int B = m->B, T = m->T, C = c->hidden_size, NC = c->num_classes, nl = c->head_num_layers;
    const int M = mt_head_rows(m, B, T);
    if (loss) MT_TRY(prepare_targets(m, batch));
    mt_dropout_site d = {m->train ? c->head_dropout : 0.0f, m->seed, m->step, MT_STREAM_HEAD};
    // dropout acts on the whole (B,T,C) encoder output; sequence heads then read token 0, so row b
    // uses the mask elements of (b, 0, :)
    if (is_token_head(m)) {
        k->dropout_fwd(m->head_in, m->hidden, (size_t)M * C, 0, &d);
    } else {
        for (int b = 0; b < B; b++)
            k->dropout_fwd(m->head_in + (size_t)b * C, m->hidden + (size_t)b * T * C, (size_t)C,
                           (uint64_t)b * T * C, &d);
    }
    mlp_forward(m, MT_ROLE_HEAD_W, MT_ROLE_HEAD_B, nl, mt_head_kact(m), m->head_in, m->head_z, m->head_a, m->logits,
                M, NC);
    m->n_logits = (size_t)M * NC;
    const int two = c->head2 != MT_HEAD_NONE;
    if (two) {
        // SequenceTokenClassifier drops the encoder output once for both MLPs (same stream, so the
        // intent row above used these very mask elements); P&C's two TokenClassifiers drop separately
        mt_dropout_site d2 = {m->train ? c->head2_dropout : 0.0f, m->seed, m->step,
                              c->head2_shares_dropout ? MT_STREAM_HEAD : MT_STREAM_HEAD2};
        k->dropout_fwd(m->head2_in, m->hidden, (size_t)B * T * C, 0, &d2);
        mlp_forward(m, MT_ROLE_HEAD2_W, MT_ROLE_HEAD2_B, c->head2_num_layers, kact_of(c->head2_activation),
                    m->head2_in, m->head2_z, m->head2_a, m->logits2, B * T, c->num_classes2);
        m->n_logits += (size_t)B * T * c->num_classes2;
    }
    if (!loss) return MT_OK; // prediction: logits only, targets not needed
    if (two) MT_TRY(prepare_targets2(m, batch));

    double total = 0;
    switch (c->head) {
    case MT_HEAD_TOKEN_CLASSIFIER:
    case MT_HEAD_SEQUENCE_CLASSIFIER:
        total = mt_ce_fwd(m->probs, m->logits, m->labels, m->row_w, M, NC);
        *loss = m->loss_norm > 0 ? (float)(total / m->loss_norm) : 0.0f;
        break;
    case MT_HEAD_SEQUENCE_REGRESSION:
        for (int b = 0; b < B; b++) {
            double e = (double)m->logits[b] - m->targets[b];
            total += e * e;
        }
        *loss = (float)(total / B);
        break;
    case MT_HEAD_QA:
        // (B,T,2) -> start (B,T) and end (B,T) rows, each a softmax over positions
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                m->qa_logits[(size_t)b * T + t] = m->logits[((size_t)b * T + t) * 2];
                m->qa_logits[(size_t)(B + b) * T + t] = m->logits[((size_t)b * T + t) * 2 + 1];
            }
        total = mt_ce_fwd(m->probs, m->qa_logits, m->labels, m->row_w, 2 * B, T);
        *loss = (float)(total / (2.0 * B));
        break;
    default: break;
    }
    if (two) {
        double t2 = mt_ce_fwd(m->probs2, m->logits2, m->labels2, m->row_w2, B * T, c->num_classes2);
        float l2 = m->loss_norm2 > 0 ? (float)(t2 / m->loss_norm2) : 0.0f;
        *loss = c->head_loss_weight * *loss + c->head2_loss_weight * l2;
    }
    return MT_OK;
}

void mt_head_backward(mt_model *m, float loss_scale) {
    const mt_model_config *c = &m->cfg;
    const mt_kernels *k = m->k;
    const int B = m->B, T = m->T, N = B * T, C = c->hidden_size, NC = c->num_classes, nl = c->head_num_layers;
    const int M = mt_head_rows(m, B, T);
    float *dl = m->d_logits;
    const int two = c->head2 != MT_HEAD_NONE;
    const float scale2 = loss_scale * c->head2_loss_weight;
    if (two) loss_scale *= c->head_loss_weight;
    switch (c->head) {
    case MT_HEAD_TOKEN_CLASSIFIER:
    case MT_HEAD_SEQUENCE_CLASSIFIER:
        mt_ce_bwd(dl, m->probs, m->labels, m->row_w, M, NC, m->loss_norm > 0 ? loss_scale / m->loss_norm : 0.0f);
        break;
    case MT_HEAD_SEQUENCE_REGRESSION:
        for (int b = 0; b < B; b++) dl[b] = loss_scale * 2.0f * (m->logits[b] - m->targets[b]) / (float)B;
        break;
    case MT_HEAD_QA: {
        float *dq = m->d_logits + (size_t)M * NC; // (2B, T) scratch after the (N,2) gradient
        mt_ce_bwd(dq, m->probs, m->labels, m->row_w, 2 * B, T, loss_scale / (2.0f * B));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                dl[((size_t)b * T + t) * 2] = dq[(size_t)b * T + t];
                dl[((size_t)b * T + t) * 2 + 1] = dq[(size_t)(B + b) * T + t];
            }
        break;
    }
    default: break;
    }
    // MLP backward, last layer first, ping-ponging between the two (M,C) scratch buffers:
    // dx receives d(input of layer i); the other buffer then receives d(pre-activation of i-1).
    float *dx = mlp_backward(m, MT_ROLE_HEAD_W, MT_ROLE_HEAD_B, nl, mt_head_kact(m), dl, m->head_in, m->head_z,
                             m->head_a, M, NC);
    // dx: gradient of the dropped head input -> d hidden (N,C) in d_res
    mt_dropout_site d = {m->train ? c->head_dropout : 0.0f, m->seed, m->step, MT_STREAM_HEAD};
    if (is_token_head(m)) {
        k->dropout_bwd(m->d_res, dx, (size_t)N * C, 0, &d);
    } else {
        memset(m->d_res, 0, (size_t)N * C * sizeof(float));
        for (int b = 0; b < B; b++)
            k->dropout_bwd(m->d_res + (size_t)b * T * C, dx + (size_t)b * C, (size_t)C, (uint64_t)b * T * C, &d);
    }
    if (two) {
        const int NC2 = c->num_classes2;
        mt_ce_bwd(m->d_logits2, m->probs2, m->labels2, m->row_w2, N, NC2,
                  m->loss_norm2 > 0 ? scale2 / m->loss_norm2 : 0.0f);
        float *dx2 = mlp_backward(m, MT_ROLE_HEAD2_W, MT_ROLE_HEAD2_B, c->head2_num_layers, kact_of(c->head2_activation),
                                  m->d_logits2, m->head2_in, m->head2_z, m->head2_a, N, NC2);
        mt_dropout_site d2 = {m->train ? c->head2_dropout : 0.0f, m->seed, m->step,
                              c->head2_shares_dropout ? MT_STREAM_HEAD : MT_STREAM_HEAD2};
        k->dropout_bwd(dx2, dx2, (size_t)N * C, 0, &d2);
        for (size_t i = 0; i < (size_t)N * C; i++) m->d_res[i] += dx2[i];
    }
}
