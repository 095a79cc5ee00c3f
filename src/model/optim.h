// Adam and AdamW with torch.optim semantics, acting on the one parameter span.
// Moments use the parameter table's layout, so a step is one flat loop (alignment gaps hold
// zeros in params, grads and moments, and stay zero).
#ifndef MT_MODEL_OPTIM_H
#define MT_MODEL_OPTIM_H

#include <stdint.h>
#include "core/status.h"
#include "model/params.h"
#include "parallel/comm.h"

typedef enum {
    MT_OPTIM_ADAM = 0,  // torch.optim.Adam: weight decay added to the gradient (L2), NeMo "adam"
    MT_OPTIM_ADAMW = 1, // torch.optim.AdamW: decoupled decay p -= lr*wd*p, NeMo "adamw"
} mt_optim_kind;

typedef struct {
    mt_optim_kind kind;
    float beta1, beta2; // 0.9, 0.999
    float eps;          // 1e-8
    float weight_decay; // 0 (adam) / 0.01 (adamw), as torch's defaults
    // NeMo decays every parameter (1, the default); Megatron's trainer skips biases and
    // LayerNorm weights (0): then the table's weight_decay flag decides.
    int decay_all;
} mt_optim_config;

typedef struct mt_optimizer mt_optimizer;

void mt_optim_config_default(mt_optim_config *c, mt_optim_kind kind);
// Parses NeMo's names "adam" / "adamw" (case-insensitive).
mt_status mt_optim_kind_parse(const char *name, mt_optim_kind *out) MT_WARN_UNUSED;

mt_status mt_optimizer_create(const mt_optim_config *c, const mt_param_table *t, mt_optimizer **out) MT_WARN_UNUSED;
void mt_optimizer_free(mt_optimizer *o);
// One update of every parameter at learning rate `lr` (the schedule's value for this step).
void mt_optimizer_step(mt_optimizer *o, float *params, const float *grads, float lr);
// The same update with the gradients multiplied by gscale first (mt_clip_coef's value; 1 = none)
// and cleared afterwards: bitwise clip + step + zero_grad, in one pass over memory.
void mt_optimizer_step_fused(mt_optimizer *o, float *params, float *grads, float lr, float gscale);
// The same update span by span, for a step inside backward (mt_model_backward_step): begin_step
// once, then step_range for spans that together cover the table once: element lo + i gets
// grads[i]. Equal, bit for bit, to mt_optimizer_step on the whole span.
void mt_optimizer_begin_step(mt_optimizer *o);
mt_status mt_optimizer_step_range(mt_optimizer *o, float *params, const float *grads, size_t lo, size_t n,
                                  float lr) MT_WARN_UNUSED;
// The same update for rows [0, rows) of `width` elements from element lo (an embedding table)
// whose gradients are mostly zero: row r's gradients are g + slot[r]*width, or zeros where
// slot[r] < 0, so only the rows a batch touched need gradient memory. Equal, bit for bit, to
// step_range on the dense gradients.
mt_status mt_optimizer_step_rows(mt_optimizer *o, float *params, size_t lo, size_t rows, size_t width,
                                 const int32_t *slot, const float *grads, float lr) MT_WARN_UNUSED;
// State for checkpoints: both moment spans (table->total floats each) and the step count.
float *mt_optimizer_exp_avg(mt_optimizer *o);
float *mt_optimizer_exp_avg_sq(mt_optimizer *o);
int64_t mt_optimizer_steps(const mt_optimizer *o);
void mt_optimizer_set_steps(mt_optimizer *o, int64_t steps);

// Global L2 norm of the gradients, as torch.nn.utils.clip_grad_norm_ and Megatron's
// clip_grads compute it: tensor-parallel-split parameters count on every rank, replicated ones
// only on TP rank 0, and the squared sums are all-reduced over the TP group. When max_norm > 0
// the gradients are scaled by min(1, max_norm/(norm+1e-6)). Returns the norm before clipping.
float mt_clip_grad_norm(float *grads, const mt_param_table *t, float max_norm, mt_comm *tp);
// The norm alone (gradients untouched), and the factor clipping applies: min(1, max_norm/(norm+1e-6)),
// 1 when max_norm <= 0.
float mt_grad_norm(const float *grads, const mt_param_table *t, mt_comm *tp);
float mt_clip_coef(float norm, float max_norm);

#endif
