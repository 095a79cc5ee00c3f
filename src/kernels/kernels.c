#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

const mt_kernels *mt_kernels_default(void) {
    const char *k = getenv("MEGATUNE_KERNELS");
    if (k && *k && strcmp(k, "ref") && strcmp(k, "blas") && strcmp(k, "dnnl")) {
        static int said;
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_ACQ_REL))
            mt_warn("MEGATUNE_KERNELS=%s is not a kernel table; use dnnl (the default), blas or ref. Using the default",
                    k);
        k = NULL;
    }
    if (k && strcmp(k, "ref") == 0) return mt_kernels_ref();
    // oneDNN's fp32 matmul ran the step's linear shapes about 10% faster than OpenBLAS's sgemm per
    // CPU second (Zen 4, AVX-512 and limited to AVX2; README "Speed")
    if (k && strcmp(k, "blas") == 0) return mt_kernels_opt();
    if (mt_kernels_opt_dnnl()) return mt_kernels_opt_dnnl();
    return mt_kernels_opt();
}

static _Thread_local uint64_t weights_version;
void mt_kernels_set_weights_version(uint64_t v) { weights_version = v; }
uint64_t mt_kernels_weights_version(void) { return weights_version; }
