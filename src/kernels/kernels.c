#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

const mt_kernels *mt_kernels_default(void) {
    const char *k = getenv("MEGATUNE_KERNELS");
    if (k && strcmp(k, "ref") == 0) return mt_kernels_ref();
    return mt_kernels_opt();
}
