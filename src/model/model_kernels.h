// Choosing the kernel table a model runs on (tests run the same model on ref and opt).
#ifndef MT_MODEL_MODEL_KERNELS_H
#define MT_MODEL_MODEL_KERNELS_H
#include "kernels/kernels.h"
#include "model/model.h"
// NULL restores mt_kernels_default().
void mt_model_set_kernels(mt_model *m, const mt_kernels *k);
const mt_kernels *mt_model_get_kernels(const mt_model *m);
// Activations for backward that cheap work gives again (attention probabilities, GELU outputs and,
// pre-LN, the two LayerNorm outputs, which only the weight gradients read): -1 keep them while all
// layers' probabilities fit in 512 MiB, else recompute them in backward (the default); 0 always
// keep; 1 always recompute; 2 also FC1's outputs (the MLP's first product runs again in backward:
// about 11% more arithmetic per step for 4 of the 10 hidden-wide values per token a pre-LN layer
// keeps at 1); 3 also, pre-LN, the residual stream after attention (the attention output product
// runs again in backward: about 2.5% more arithmetic at 345M for 1 more of those 10 values; post-LN
// is as at 2). Takes effect at the next forward.
void mt_model_set_recompute(mt_model *m, int mode);
// On a kernel table with handoff_attach (hardware bf16), a training forward keeps each layer's QKV
// and attention output for backward in bf16 alone (1, the default), as the products read them: the
// same results bit for bit, 4 of the 8 bytes per value less (BERT-base, seq 128, batch 8: 72 MiB;
// 345M: 192 MiB). 0 keeps them in fp32 too, as other tables do. Takes effect at the next forward.
void mt_model_set_bf16_keep(mt_model *m, int on);
#endif
