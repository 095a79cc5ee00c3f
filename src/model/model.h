// The model: encoder + one task head, forward, loss and backward over one batch.
// Parameters, gradients (and the optimizer's moments, in optim.h) are single float spans laid
// out by the parameter table (params.h). The model knows nothing of files or tasks.
#ifndef MT_MODEL_MODEL_H
#define MT_MODEL_MODEL_H

#include <stdint.h>
#include "core/status.h"
#include "model/config.h"
#include "model/params.h"
#include "parallel/comm.h"

// One batch of features. Arrays are row-major; B = batch, T = sequence length (<= max positions).
// Only the target fields the head needs must be set; the others may be NULL.
typedef struct {
    int B, T;
    const int32_t *input_ids;      // (B,T) token ids < vocab_size
    const int32_t *token_type_ids; // (B,T) 0/1; NULL means all 0
    const int32_t *attention_mask; // (B,T) 1 = real token, 0 = padding; NULL means all 1
    // targets
    const int32_t *labels;         // token head: (B,T); sequence classifier: (B)
    const float *loss_mask;        // token head: (B,T) weight 0/1 of each position; NULL = attention_mask
    const float *class_weights;    // (num_classes) cross-entropy weights (NeMo weighted_loss); NULL = none
    const float *targets;          // regression: (B)
    const int32_t *start_positions; // QA: (B)
    const int32_t *end_positions;   // QA: (B)
    // second head (cfg.head2, a token classifier): its labels (B,T) and class weights; it uses
    // loss_mask as the first head does
    const int32_t *labels2;
    const float *class_weights2;
} mt_batch;

typedef struct mt_model mt_model;

// Builds the model for `cfg` (finalized inside; the model keeps a copy). `tp` is the
// tensor-parallel group (NULL = one process). Weights start at zero: call
// mt_model_init_weights or load a checkpoint.
mt_status mt_model_create(const mt_model_config *cfg, mt_comm *tp, mt_model **out) MT_WARN_UNUSED;
void mt_model_free(mt_model *m);

const mt_model_config *mt_model_get_config(const mt_model *m);
const mt_param_table *mt_model_params(const mt_model *m);
float *mt_model_param_data(mt_model *m); // span of mt_model_params(m)->total floats
float *mt_model_grad_data(mt_model *m);  // same layout
// Pointer to one parameter (or its gradient) by table index.
float *mt_model_param(mt_model *m, int index);
float *mt_model_grad(mt_model *m, int index);

// Megatron/NeMo initialisation: N(0, std) weights, std/sqrt(2*layers) for the two output
// projections, zero biases, LayerNorm weight 1; heads N(0, 0.02) (use_transformer_init).
// Deterministic in `seed`, and the same on every TP rank for the global tensor.
void mt_model_init_weights(mt_model *m, uint64_t seed);
// The same, for the parameters a Megatron checkpoint lacks (mt_param_megatron_name is NULL: the task
// head) only, before mt_megatron_load fills the rest: the model ends bit for bit as after
// mt_model_init_weights and the load, without drawing the encoder's values (seconds at 345M).
void mt_model_init_head_weights(mt_model *m, uint64_t seed);

// Forward pass and loss. `train` turns dropout on; the dropout mask is a pure function of
// (dropout_seed, step, position) so runs are reproducible and resumable.
// On return *loss holds the mean loss over the batch as the head's loss defines it. With loss NULL
// only the logits are computed (prediction): the batch needs no targets, backward is refused, and
// the forward keeps one layer's activations instead of all (much larger batches fit).
mt_status mt_model_forward(mt_model *m, const mt_batch *batch, int train, uint64_t dropout_seed,
                           uint64_t step, float *loss) MT_WARN_UNUSED;
// Head output of the last forward: token heads (B,T,C), sequence heads (B,C),
// regression (B), QA (B,T,2); with a second head its (B,T,C2) logits follow. *n receives the
// element count.
const float *mt_model_logits(const mt_model *m, size_t *n);
// Final hidden states of the last forward, (B,T,hidden).
const float *mt_model_hidden(const mt_model *m);

// Backward of the last forward. Gradients are ADDED to the gradient span, each scaled by
// `loss_scale` (1/accumulate_grad_batches for gradient accumulation).
mt_status mt_model_backward(mt_model *m, float loss_scale) MT_WARN_UNUSED;
void mt_model_zero_grad(mt_model *m);

// Backward with the optimizer step inside it (model.optim.step_in_backward): the gradients of
// each span of the table (the heads and final LayerNorm, each layer, the embeddings) are computed
// in a scratch buffer the size of the largest span, and `opt` updates that span at `lr` as soon as
// they are complete, so the gradient span (4 bytes per parameter) is never touched. Weights and
// moments afterwards equal, bit for bit, mt_model_backward(m, 1) + mt_optimizer_step on zeroed
// gradients: for training without gradient clipping or accumulation, which need every gradient
// before any update (data parallelism: see mt_model_set_grad_reduce).
typedef struct mt_optimizer mt_optimizer;
mt_status mt_model_backward_step(mt_model *m, mt_optimizer *opt, float lr) MT_WARN_UNUSED;
// Data parallelism with the step in backward: fn(ctx, grads, n) is called on each span's n gradients
// before its update, to average them over the replicas in place (as DDP's buckets). NULL: none.
typedef mt_status (*mt_grad_reduce_fn)(void *ctx, float *grads, size_t n);
void mt_model_set_grad_reduce(mt_model *m, mt_grad_reduce_fn fn, void *ctx);

// Activation checkpointing (Megatron's full recomputation, NeMo's activations_checkpoint_*): the
// first `layers` transformer layers keep only their input through a training forward, and backward
// runs each one's forward again (the same dropout masks: they are a function of the step, not
// stored) just before its backward. Gradients are those of a run without it, bit for bit; the
// activations of those layers take one layer's memory instead of one per layer, for one more
// forward of them per step. 0 = off (the default); values past num_layers mean all layers.
// Takes effect at the next forward.
void mt_model_set_activation_checkpoint(mt_model *m, int layers);
// keep 0: the kernels keep no derived copy of the weights from one product to the next (bf16: every
// product converts its weight matrix again, one conversion per use instead of one per step), for 2
// bytes per parameter less memory. 1 (the default) keeps them. The results are the same either way.
void mt_model_set_weight_copies(mt_model *m, int keep);
// Bytes of activations (and backward scratch) the last forward laid out; 0 before any.
size_t mt_model_activation_bytes(const mt_model *m);

#endif
