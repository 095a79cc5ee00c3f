#include "kernels/opt/opt.h"

#include <cblas.h>

static const mt_kernels opt_table = {
    .name = "opt",
    .embed_word_fwd = mt_opt_embed_word_fwd,
    .embed_word_bwd = mt_opt_embed_word_bwd,
    .embed_pos_type_fwd = mt_opt_embed_pos_type_fwd,
    .embed_pos_type_bwd = mt_opt_embed_pos_type_bwd,
    .layernorm_fwd = mt_opt_layernorm_fwd,
    .layernorm_bwd = mt_opt_layernorm_bwd,
    .linear_fwd = mt_opt_linear_fwd,
    .linear_bwd = mt_opt_linear_bwd,
    .act_fwd = mt_opt_act_fwd,
    .act_bwd = mt_opt_act_bwd,
    .attention_fwd = mt_opt_attention_fwd,
    .attention_bwd = mt_opt_attention_bwd,
    .dropout_fwd = mt_opt_dropout_fwd,
    .bias_dropout_add_fwd = mt_opt_bias_dropout_add_fwd,
    .dropout_bwd = mt_opt_dropout_bwd,
};

int mt_opt_blas_omp;

const mt_kernels *mt_kernels_opt(void) {
    // One thread pool. The pthread OpenBLAS is set to one thread and runs inside our OpenMP
    // threads. The OpenMP OpenBLAS shares our libgomp pool: it runs one thread inside a parallel
    // region by itself, and must not be told a thread count, since its openblas_set_num_threads
    // is omp_set_num_threads and would leave every region of ours on one thread.
    // (once, atomically: models may be created from several threads, e.g. TP ranks in tests)
    static int once;
    if (!__atomic_exchange_n(&once, 1, __ATOMIC_ACQ_REL)) {
        if (openblas_get_parallel() == 2) __atomic_store_n(&mt_opt_blas_omp, 1, __ATOMIC_RELEASE);
        else openblas_set_num_threads(1);
    }
    return &opt_table;
}
