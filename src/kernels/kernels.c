#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

const mt_kernels *mt_kernels_default(void) {
    const char *k = getenv("MEGATUNE_KERNELS");
    if (k && strcmp(k, "ref") == 0) return mt_kernels_ref();
    return mt_kernels_opt();
}

static _Thread_local uint64_t weights_version;
void mt_kernels_set_weights_version(uint64_t v) { weights_version = v; }
uint64_t mt_kernels_weights_version(void) { return weights_version; }
