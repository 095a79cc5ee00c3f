// mt_alloc_aligned: 64-byte aligned, zeroed, writable to its last byte, freed by mt_free_aligned, for
// small (heap) and large (mmap, untouched pages not resident) sizes; a large block never written adds
// (almost) nothing to the resident set.
#include <stdint.h>
#include <sys/resource.h>

#include "core/status.h"
#include "test_util.h"

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * 4;
}

int main(void) {
    const size_t sizes[] = {0, 1, 63, 64, 4097, (size_t)1 << 20, ((size_t)1 << 20) + 3, (size_t)32 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = mt_alloc_aligned(n);
        CHECK_MSG(p != NULL, "size %zu: NULL", n);
        if (!p) continue;
        CHECK_MSG(((uintptr_t)p & 63) == 0, "size %zu: not 64-byte aligned", n);
        size_t nz = 0;
        for (size_t k = 0; k < n; k++) nz += p[k] != 0;
        CHECK_MSG(nz == 0, "size %zu: %zu non-zero bytes", n, nz);
        if (n) memset(p, 0xab, n);
        mt_free_aligned(p);
    }
    mt_free_aligned(NULL);
    if (!getenv("MEGATUNE_SANITIZED")) { // sanitizer builds keep every block on the heap
        long before = rss_kib();
        void *big = mt_alloc_aligned((size_t)256 << 20);
        long after = rss_kib();
        CHECK(big != NULL);
        fprintf(stderr, "RSS before %ld KiB, after allocating 256 MiB untouched %ld KiB\n", before, after);
        CHECK_MSG(before >= 0 && after - before < 16 * 1024, "an untouched 256 MiB block made %ld KiB resident",
                  after - before);
        mt_free_aligned(big);
    }
    TEST_DONE();
}
