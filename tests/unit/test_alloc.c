// mt_alloc_aligned: 64-byte aligned, zeroed, writable to its last byte, freed by mt_free_aligned, for
// small (heap) and large (mmap, untouched pages not resident) sizes; a large block never written adds
// (almost) nothing to the resident set. Blocks of 2 MiB and more are 2 MiB-aligned and advised
// MADV_HUGEPAGE (unless MEGATUNE_HUGE_PAGES=0), and writing the last byte of one makes 4 KiB resident,
// not a 2 MiB page past its end.
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

// The VmFlags of the mapping holding p ("hg": advised MADV_HUGEPAGE) and its AnonHugePages in KiB.
static int mapping_flags(const void *p, char *flags, size_t cap, long *huge_kib) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (!in) continue;
        if (!strncmp(line, "AnonHugePages:", 14)) *huge_kib = atol(line + 14);
        if (!strncmp(line, "VmFlags:", 8)) {
            snprintf(flags, cap, "%s", line + 8);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static int has_flag(const char *flags, const char *flag) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", flags);
    for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        if (!strcmp(t, flag)) return 1;
    return 0;
}

static void check_huge(void) {
    const size_t two_mib = (size_t)2 << 20;
    // advised and aligned: a 9 MiB block written through, then one with MEGATUNE_HUGE_PAGES=0
    for (int on = 1; on >= 0; on--) {
        if (!on) setenv("MEGATUNE_HUGE_PAGES", "0", 1);
        const size_t n = (size_t)9 << 20;
        unsigned char *p = mt_alloc_aligned(n);
        CHECK(p != NULL);
        if (!p) continue;
        // the header was written, in a page of its own: nothing of the block is resident yet
        size_t res = mt_resident_bytes(p, n);
        CHECK_MSG(res <= 64 * 1024, "huge pages %s: a new 9 MiB block has %zu bytes resident", on ? "on" : "off", res);
        memset(p, 1, n);
        char flags[512] = "";
        long huge = -1;
        CHECK_MSG(mapping_flags(p, flags, sizeof flags, &huge) == 0, "no /proc/self/smaps entry for the block");
        fprintf(stderr, "9 MiB block, huge pages %s: VmFlags%s  AnonHugePages %ld KiB\n", on ? "on" : "off", flags,
                huge);
        CHECK_MSG(has_flag(flags, "hg") == on, "huge pages %s, but VmFlags are%s", on ? "on" : "off", flags);
        if (on) CHECK_MSG((uintptr_t)p % two_mib == 0, "block at %p is not 2 MiB-aligned", (void *)p);
        mt_free_aligned(p);
    }
    unsetenv("MEGATUNE_HUGE_PAGES");
    // the last byte of a 3 MiB block: its 4 KiB page, not the 2 MiB page around it
    const size_t n = (size_t)3 << 20;
    unsigned char *p = mt_alloc_aligned(n);
    CHECK(p != NULL);
    if (!p) return;
    p[n - 1] = 1;
    size_t res = mt_resident_bytes(p, n);
    CHECK_MSG(res <= 64 * 1024, "writing the last byte of a 3 MiB block made %zu bytes resident", res);
    mt_free_aligned(p);
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
        check_huge();
    }
    TEST_DONE();
}
