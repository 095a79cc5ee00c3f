// libFuzzer target: arbitrary bytes through the pickle VM (zip-style and legacy persistent ids,
// chosen by the first byte) must give a value tree or a clear error naming the input (checked: out
// of memory aside, the message holds "fuzz.pkl"), never a crash, a hang or a
// leak; the result is walked (dict lookups, Namespace attributes, flattening) to touch every node.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/pickle.h"
#include "ckpt/torchfile.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int legacy = data[0] & 1;
    mt_pickle *pk = mt_pickle_new();
    if (!pk) return 0;
    mt_pv *root = NULL;
    size_t end = 0;
    mt_clear_error();
    mt_status s = mt_pickle_parse(pk, data + 1, size - 1, legacy, "fuzz.pkl", &root, &end);
    fuzz_expect_named(s, "fuzz.pkl");
    if (s == MT_OK) {
        if (end > size - 1) abort();
        (void)mt_pv_get(root, "model");
        (void)mt_pv_attr(mt_pv_get(root, "args"), "hidden_size");
        mt_flat fl = {0};
        if (mt_flatten(root, "", &fl) == MT_OK) mt_flat_free(&fl);
        // tensors are unresolved here (no storage bytes): their check must refuse them
        for (size_t i = 0; i < mt_pickle_count(pk); i++) {
            mt_pv *v = mt_pickle_value(pk, i);
            if (v->kind == MT_PV_TENSOR && mt_ckpt_tensor_numel(v->t) > 0 && v->t->ndim >= 0 &&
                mt_ckpt_tensor_check(v->t, "fuzz") == MT_OK)
                abort();
        }
    }
    mt_pickle_free(pk);
    return 0;
}
