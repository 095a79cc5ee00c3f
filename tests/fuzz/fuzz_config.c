// libFuzzer target: a training config. The input is a YAML document, then command-line overrides,
// separated by 0xFF bytes ("key=value" each, NeMo/Hydra syntax). Loading, every override, the
// finishing pass (task inference, interpolation, validation) and the YAML dump must succeed or fail
// with an error; never a crash, a hang on interpolation cycles, or a leak.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/config.h"
#include "fuzz_env.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    const uint8_t *cut = memchr(data, 0xFF, size);
    size_t ny = cut ? (size_t)(cut - data) : size;
    mt_train_config c;
    if (mt_config_init(&c) != MT_OK) return 0;
    mt_status s = mt_config_load_yaml_text(&c, (const char *)data, ny, "fuzz.yaml", "", data[0] & 1 ? 1 : 0);
    // overrides: each piece between 0xFF bytes, as a NUL-terminated argument
    while (s == MT_OK && cut) {
        const uint8_t *p = cut + 1, *e = memchr(p, 0xFF, size - (size_t)(p - data));
        size_t n = e ? (size_t)(e - p) : size - (size_t)(p - data);
        char *arg = malloc(n + 1);
        if (!arg) break;
        memcpy(arg, p, n);
        arg[n] = 0;
        s = mt_config_override(&c, arg);
        free(arg);
        cut = e;
    }
    if (s == MT_OK) s = mt_config_finish(&c);
    if (s == MT_OK) (void)mt_config_dump(&c, devnull, NULL), (void)mt_config_dump(&c, devnull, "model");
    mt_config_free(&c);
    return 0;
}
