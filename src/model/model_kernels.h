// Choosing the kernel table a model runs on (tests run the same model on ref and opt).
#ifndef MT_MODEL_MODEL_KERNELS_H
#define MT_MODEL_MODEL_KERNELS_H
#include "kernels/kernels.h"
#include "model/model.h"
// NULL restores mt_kernels_default().
void mt_model_set_kernels(mt_model *m, const mt_kernels *k);
#endif
