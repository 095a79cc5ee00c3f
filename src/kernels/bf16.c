#include "kernels/bf16.h"

#include <cblas.h>
#include <cpuid.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/rng.h"
#include "core/status.h"
#include "kernels/opt/opt.h"

#ifdef MEGATUNE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

void mt_bf16_convert(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = mt_bf16_from_f32(src[i]);
}

void mt_bf16_round(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = mt_bf16_to_f32(mt_bf16_from_f32(src[i]));
}

mt_bf16_caps mt_bf16_detect(void) {
    mt_bf16_caps c = {0, 0, 0};
    unsigned a, b, cc, d;
    // leaf 7 subleaf 1 EAX bit 5: AVX512_BF16; leaf 7 subleaf 0 EDX bit 22: AMX-BF16. The OS must
    // also save the ZMM state, which __builtin_cpu_supports("avx512f") checks through XGETBV.
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &a, &b, &cc, &d)) c.avx512_bf16 = (a >> 5) & 1;
    if (__get_cpuid_count(7, 0, &a, &b, &cc, &d)) c.amx_bf16 = (d >> 22) & 1;
#ifdef MEGATUNE_HAVE_DNNL
    c.have_dnnl = 1;
#endif
    return c;
}

int mt_bf16_available(const char **why) {
    mt_bf16_caps c = mt_bf16_detect();
    const char *w = NULL;
    const char *e = getenv("MEGATUNE_BF16");
    // oneDNN limited below its bf16 ISAs would run bf16 products in slow reference code
    const char *lim = getenv("ONEDNN_MAX_CPU_ISA");
    if (!lim) lim = getenv("DNNL_MAX_CPU_ISA");
    int limited = lim && *lim && strncasecmp(lim, "ALL", 3) && strncasecmp(lim, "AVX512_CORE_BF16", 16) &&
                  strncasecmp(lim, "AVX512_CORE_FP16", 16) && strncasecmp(lim, "AVX512_CORE_AMX", 15);
    if (e && !strcmp(e, "off")) w = "MEGATUNE_BF16=off";
    else if (!c.avx512_bf16 && !c.amx_bf16) w = "this CPU has neither AVX512-BF16 nor AMX-BF16";
    else if (limited) w = "ONEDNN_MAX_CPU_ISA limits oneDNN below AVX512-BF16";
    else if (!c.have_dnnl) w = "megatune was built without oneDNN (libdnnl-dev)";
    if (why) *why = w;
    return w == NULL;
}

// Kernels have no error path: an impossible state (oneDNN refusing a plain matmul, no memory for
// scratch) stops the process with the reason.
static void bf16_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("megatune: bf16: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

// --- scratch: a few process-wide growable buffers (kernels may run on several threads at once,
// e.g. tensor-parallel ranks in one process; static pointers stay reachable for leak checkers) ---
#define SCRATCH_SLOTS 32
static struct {
    void *p;
    size_t cap;
    int busy;
} scratch[SCRATCH_SLOTS];
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;

static void *scratch_get(size_t bytes, int *slot) {
    pthread_mutex_lock(&scratch_mu);
    int best = -1;
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        if (!scratch[i].busy && (best < 0 || scratch[i].cap > scratch[best].cap)) best = i;
    if (best < 0) {
        pthread_mutex_unlock(&scratch_mu);
        bf16_die("more than %d scratch buffers in use at once", SCRATCH_SLOTS);
    }
    scratch[best].busy = 1;
    pthread_mutex_unlock(&scratch_mu);
    if (scratch[best].cap < bytes) {
        mt_free_aligned(scratch[best].p);
        scratch[best].p = mt_alloc_aligned(bytes);
        if (!scratch[best].p) bf16_die("out of memory for %zu bytes of scratch", bytes);
        scratch[best].cap = bytes;
    }
    *slot = best;
    return scratch[best].p;
}
static void scratch_put(int slot) {
    if (slot < 0) return; // (an operand read from a hand-off holds no slot)
    pthread_mutex_lock(&scratch_mu);
    scratch[slot].busy = 0;
    pthread_mutex_unlock(&scratch_mu);
}

// rows x cols at leading dimension ld (the stored layout), rounded or converted into dst (same ld)
static void round_rows(float *dst, const float *src, int rows, int cols, int ld) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)r * ld + c] = mt_bf16_to_f32(mt_bf16_from_f32(src[(size_t)r * ld + c]));
}
#ifdef MEGATUNE_HAVE_DNNL
static void convert_rows(uint16_t *dst, const float *src, int rows, int cols, int ld) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * ld + c] = mt_bf16_from_f32(src[(size_t)r * ld + c]);
}

// --- oneDNN matmul primitives, created once per shape (a step uses about ten) ---
typedef struct {
    int M, N, K, ta, tb, lda, ldb, ldc, sum, bias, f32; // f32: A and B are fp32 (else bf16)
    int act; // an eltwise post-op (dnnl_alg_kind_t) applied after the bias, 0 = none
    int res; // a binary add post-op of an fp32 (M,N) operand at ldc, after the activation
    int d16; // C is written in bf16 (a hand-off), rounded once from the fp32 result
    int pk;  // B in the layout the primitive prefers (packed once per weights version, forward-only passes)
} gemm_key;
// Shapes vary with dynamic padding, so the cache evicts: a primitive is destroyed only while no
// thread runs it (busy counts the threads between prim_get and prim_put).
#define PRIM_CACHE 128
static struct {
    gemm_key k;
    dnnl_primitive_t p;
    dnnl_memory_desc_t a, b, c, bias, pad;
    int busy;
} prims[PRIM_CACHE];
static int n_prims, next_evict;
static pthread_mutex_t prim_mu = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

#define DNNL_CHECK(call)                                                                                              \
    do {                                                                                                              \
        dnnl_status_t st_ = (call);                                                                                   \
        if (st_ != dnnl_success) bf16_die("oneDNN: %s failed (status %d)", #call, (int)st_);                            \
    } while (0)

static void engine_init(void) { DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0)); }

// a slot to fill (under prim_mu): a free one, else the next idle one, its primitive destroyed
static int evict_slot(int *n, int *next, int cap, int (*busy)(int), dnnl_primitive_t (*prim)(int)) {
    if (*n < cap) return (*n)++;
    for (int tries = 0; tries < cap; tries++) {
        int s = (*next)++ % cap;
        if (!busy(s)) {
            dnnl_primitive_destroy(prim(s));
            return s;
        }
    }
    bf16_die("every one of %d cached primitives is running", cap);
    return -1;
}
static int prim_busy(int s) { return prims[s].busy; }
static dnnl_primitive_t prim_prim(int s) { return prims[s].p; }

static void prim_put(int slot) {
    pthread_mutex_lock(&prim_mu);
    prims[slot].busy--;
    pthread_mutex_unlock(&prim_mu);
}

// the primitive for k, marked busy until prim_put(returned slot)
static int prim_get(const gemm_key *k, dnnl_primitive_t *p, dnnl_memory_desc_t *a, dnnl_memory_desc_t *b,
                    dnnl_memory_desc_t *c, dnnl_memory_desc_t *bias, dnnl_memory_desc_t *pad) {
    pthread_once(&engine_once, engine_init);
    pthread_mutex_lock(&prim_mu);
    for (int i = 0; i < n_prims; i++)
        if (!memcmp(&prims[i].k, k, sizeof *k)) {
            *p = prims[i].p, *a = prims[i].a, *b = prims[i].b, *c = prims[i].c, *bias = prims[i].bias;
            *pad = prims[i].pad;
            prims[i].busy++;
            pthread_mutex_unlock(&prim_mu);
            return i;
        }
    dnnl_dims_t ad = {k->M, k->K}, as = {k->ta ? 1 : k->lda, k->ta ? k->lda : 1};
    dnnl_dims_t bd = {k->K, k->N}, bs = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
    dnnl_dims_t cd = {k->M, k->N}, cs = {k->ldc, 1};
    dnnl_dims_t zd = {1, k->N}, zs = {k->N, 1};
    dnnl_memory_desc_t amd, bmd, cmd, zmd;
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&amd, 2, ad, k->f32 ? dnnl_f32 : dnnl_bf16, as));
    if (k->pk) DNNL_CHECK(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, k->f32 ? dnnl_f32 : dnnl_bf16, dnnl_format_tag_any));
    else DNNL_CHECK(dnnl_memory_desc_init_by_strides(&bmd, 2, bd, k->f32 ? dnnl_f32 : dnnl_bf16, bs));
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&cmd, 2, cd, k->d16 ? dnnl_bf16 : dnnl_f32, cs));
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&zmd, 2, zd, dnnl_f32, zs));
    dnnl_matmul_desc_t md;
    DNNL_CHECK(dnnl_matmul_desc_init(&md, &amd, &bmd, k->bias ? &zmd : NULL, &cmd));
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    // our own scratchpad per execution: the library's is shared, and TP ranks (threads of one
    // process) run the same primitive at once
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (k->sum || k->act || k->res) { // (bias_dropout_add's order: res + (product + bias))
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create(&po));
        if (k->sum) DNNL_CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        if (k->act) DNNL_CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, (dnnl_alg_kind_t)k->act, 0.0f, 0.0f));
        if (k->res) DNNL_CHECK(dnnl_post_ops_append_binary(po, dnnl_binary_add, &cmd));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL));
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_t prim;
    DNNL_CHECK(dnnl_primitive_create(&prim, pd));
    dnnl_memory_desc_t pmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (k->pk) bmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0); // the layout it chose
    dnnl_primitive_desc_destroy(pd);
    int slot = evict_slot(&n_prims, &next_evict, PRIM_CACHE, prim_busy, prim_prim);
    prims[slot].k = *k, prims[slot].p = prim, prims[slot].a = amd, prims[slot].b = bmd, prims[slot].c = cmd;
    prims[slot].bias = zmd, prims[slot].pad = pmd, prims[slot].busy = 1;
    *p = prim, *a = amd, *b = bmd, *c = cmd, *bias = zmd, *pad = pmd;
    pthread_mutex_unlock(&prim_mu);
    return slot;
}

// C = beta*C + op(A) op(B) (+ bias (N) on every row when given) on inputs already in bf16 (same
// layouts as mt_gemm_bf16's); then act (a dnnl_alg_kind_t, 0 = none) and + res (M,N at ldc, or NULL).
// f32: A and B are fp32; d16: C is bf16; pk: B is read in the layout the primitive chose, packed from
// the fp32 weights (N,K) that b16 then points to (packed_weights)
static const void *packed_weights(const float *w, int OUT, int IN, const dnnl_memory_desc_t *md);
static void gemm_dnnl_any(int f32, int ta, int tb, int M, int N, int K, const void *a16, int lda, const void *b16,
                          int ldb, float beta, void *C, int d16, int ldc, const float *bias, int act, const float *res,
                          int pk) {
    if (d16 && (res || beta != 0.0f)) bf16_die("a bf16 hand-off output takes no residual and no accumulation");
    gemm_key k = {M, N, K, ta, tb, lda, ldb, ldc, beta != 0.0f, bias != NULL, f32, act, res != NULL, d16, pk};
    dnnl_primitive_t p;
    dnnl_memory_desc_t amd, bmd, cmd, zmd, pmd;
    int slot = prim_get(&k, &p, &amd, &bmd, &cmd, &zmd, &pmd);
    if (pk) b16 = packed_weights(b16, N, K, &bmd);
    dnnl_memory_t am, bm, cm, zm = NULL, pm = NULL, rm = NULL;
    DNNL_CHECK(dnnl_memory_create(&am, &amd, engine, (void *)a16));
    DNNL_CHECK(dnnl_memory_create(&bm, &bmd, engine, (void *)b16));
    DNNL_CHECK(dnnl_memory_create(&cm, &cmd, engine, C));
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    int nargs = 3, sp = -1;
    if (bias) {
        DNNL_CHECK(dnnl_memory_create(&zm, &zmd, engine, (void *)bias));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, zm};
    }
    if (res) { // the binary add is the last post-op in the chain
        DNNL_CHECK(dnnl_memory_create(&rm, &cmd, engine, (void *)res));
        int idx = k.sum + (k.act != 0);
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, rm};
    }
    size_t pad_bytes = dnnl_memory_desc_get_size(&pmd);
    if (pad_bytes) {
        DNNL_CHECK(dnnl_memory_create(&pm, &pmd, engine, scratch_get(pad_bytes, &sp)));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, pm};
    }
    dnnl_stream_t stream;
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    DNNL_CHECK(dnnl_primitive_execute(p, stream, nargs, args));
    DNNL_CHECK(dnnl_stream_wait(stream));
    prim_put(slot);
    dnnl_stream_destroy(stream);
    dnnl_memory_destroy(am);
    dnnl_memory_destroy(bm);
    dnnl_memory_destroy(cm);
    if (zm) dnnl_memory_destroy(zm);
    if (pm) dnnl_memory_destroy(pm);
    if (rm) dnnl_memory_destroy(rm);
    if (sp >= 0) scratch_put(sp);
}

static void gemm_dnnl16(int ta, int tb, int M, int N, int K, const uint16_t *a16, int lda, const uint16_t *b16, int ldb,
                        float beta, float *C, int ldc, const float *bias) {
    gemm_dnnl_any(0, ta, tb, M, N, K, a16, lda, b16, ldb, beta, C, 0, ldc, bias, 0, NULL, 0);
}

// --- hand-offs (kernels.h): per thread, since tensor-parallel ranks may be threads of one process ---
#define HANDOFFS 4
static _Thread_local struct {
    uintptr_t lo; // the fp32 buffer's first float; 0: a free entry
    size_t n;
    uint16_t *bf; // its bf16 copy, at the same offsets, in a scratch slot held until the end
    int slot;     // -1: bf is the caller's (handoff_attach)
} handoffs[HANDOFFS];

static unsigned long handoff_writes, handoff_reads, weights_packed; // (atomics: tests read them)
static _Thread_local int packing; // mt_kernels_set_packing

static void hw_handoff_end(const float *out) {
    for (int i = 0; i < HANDOFFS; i++)
        if (handoffs[i].lo && (!out || handoffs[i].lo == (uintptr_t)out)) {
            scratch_put(handoffs[i].slot);
            memset(&handoffs[i], 0, sizeof handoffs[i]);
        }
}

static void handoff_add(float *out, size_t n, uint16_t *bf) {
    hw_handoff_end(out);
    for (int i = 0; i < HANDOFFS; i++)
        if (!handoffs[i].lo) {
            int slot = -1;
            handoffs[i].bf = bf ? bf : scratch_get(n * sizeof(uint16_t), &slot);
            handoffs[i].lo = (uintptr_t)out, handoffs[i].n = n, handoffs[i].slot = slot;
            return;
        }
    bf16_die("more than %d hand-offs at once", HANDOFFS);
}
static void hw_handoff_begin(float *out, size_t n) { handoff_add(out, n, NULL); }
static void hw_handoff_attach(float *names, size_t n, uint16_t *bf) {
    if (!bf) bf16_die("handoff_attach: no bf16 buffer");
    handoff_add(names, n, bf);
}

// The bf16 copy of the len floats at x when they lie in a hand-off, else NULL. A block that only
// overlaps one would mix stale floats in: a caller's bug, stopped here.
static uint16_t *handoff_find(const float *x, size_t len, int write) {
    const uintptr_t a = (uintptr_t)x, e = a + len * sizeof(float);
    for (int i = 0; i < HANDOFFS; i++) {
        const uintptr_t lo = handoffs[i].lo, hi = lo + handoffs[i].n * sizeof(float);
        if (!lo || e <= lo || a >= hi) continue;
        if (a < lo || e > hi) bf16_die("a block overlaps a bf16 hand-off without lying inside it");
        if (write) __atomic_add_fetch(&handoff_writes, 1, __ATOMIC_RELAXED);
        else __atomic_add_fetch(&handoff_reads, 1, __ATOMIC_RELAXED);
        return handoffs[i].bf + (a - lo) / sizeof(float);
    }
    return NULL;
}

// a rows x cols fp32 block at leading dimension ld, converted into scratch (same ld); a block in a
// hand-off is already there (*slot = -1)
static uint16_t *to_bf16(const float *x, int rows, int cols, int ld, int *slot) {
    uint16_t *h = handoff_find(x, (size_t)(rows - 1) * ld + (size_t)cols, 0);
    if (h) {
        *slot = -1;
        return h;
    }
    uint16_t *y = scratch_get((size_t)(rows - 1) * ld * 2 + (size_t)cols * 2, slot);
    convert_rows(y, x, rows, cols, ld);
    return y;
}

static void gemm_dnnl(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc) {
    int sa, sb;
    uint16_t *a16 = to_bf16(A, ta ? K : M, ta ? M : K, lda, &sa);
    uint16_t *b16 = to_bf16(B, tb ? N : K, tb ? K : N, ldb, &sb);
    gemm_dnnl16(ta, tb, M, N, K, a16, lda, b16, ldb, beta, C, ldc, NULL);
    scratch_put(sa);
    scratch_put(sb);
}

// --- batched per-head products for attention, (B, NH) batches of strided bf16 matrices: one
// oneDNN call per product for all heads, where fp32 runs one sgemm per head ---
typedef struct {
    dnnl_dim_t d[3][4], s[3][4]; // dims and strides of src (B,NH,M,K), weights (B,NH,K,N), dst (B,NH,M,N)
    float scale;
    int d16; // dst in bf16 (a hand-off)
    int f32; // src and weights in fp32 (the fp32 table's attention), else bf16
} bmm_key;
#define BMM_CACHE 64
static struct {
    bmm_key k;
    dnnl_primitive_t p;
    dnnl_memory_desc_t md[4]; // src, weights, dst, scratchpad
    int busy;
} bmms[BMM_CACHE];
static int bmm_busy(int s) { return bmms[s].busy; }
static dnnl_primitive_t bmm_prim(int s) { return bmms[s].p; }
static int n_bmms, next_bmm_evict;

// dst (f32, or bf16 with k->d16) = scale * src @ weights, both bf16 (fp32 with k->f32); strides in elements
static void bmm(const bmm_key *k, const void *src, const void *wei, void *dst) {
    pthread_once(&engine_once, engine_init);
    dnnl_primitive_t p = NULL;
    dnnl_memory_desc_t md[4];
    int slot = -1;
    pthread_mutex_lock(&prim_mu);
    for (int i = 0; i < n_bmms && !p; i++)
        if (!memcmp(&bmms[i].k, k, sizeof *k)) p = bmms[i].p, memcpy(md, bmms[i].md, sizeof md), slot = i;
    if (!p) {
        for (int t = 0; t < 3; t++)
            DNNL_CHECK(dnnl_memory_desc_init_by_strides(
                &md[t], 4, k->d[t], (t < 2 && !k->f32) || (t == 2 && k->d16) ? dnnl_bf16 : dnnl_f32, k->s[t]));
        dnnl_matmul_desc_t mmd;
        DNNL_CHECK(dnnl_matmul_desc_init(&mmd, &md[0], &md[1], NULL, &md[2]));
        dnnl_primitive_attr_t attr;
        DNNL_CHECK(dnnl_primitive_attr_create(&attr));
        DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)); // (as prim_get)
        if (k->scale != 1.0f) DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->scale));
        dnnl_primitive_desc_t pd;
        DNNL_CHECK(dnnl_primitive_desc_create(&pd, &mmd, attr, engine, NULL));
        dnnl_primitive_attr_destroy(attr);
        DNNL_CHECK(dnnl_primitive_create(&p, pd));
        md[3] = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        dnnl_primitive_desc_destroy(pd);
        slot = evict_slot(&n_bmms, &next_bmm_evict, BMM_CACHE, bmm_busy, bmm_prim);
        bmms[slot].k = *k, bmms[slot].p = p;
        memcpy(bmms[slot].md, md, sizeof md);
    }
    bmms[slot].busy++;
    pthread_mutex_unlock(&prim_mu);
    dnnl_memory_t m[4] = {NULL, NULL, NULL, NULL};
    DNNL_CHECK(dnnl_memory_create(&m[0], &md[0], engine, (void *)src));
    DNNL_CHECK(dnnl_memory_create(&m[1], &md[1], engine, (void *)wei));
    DNNL_CHECK(dnnl_memory_create(&m[2], &md[2], engine, dst));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}};
    int nargs = 3, sp = -1;
    size_t pad_bytes = dnnl_memory_desc_get_size(&md[3]);
    if (pad_bytes) {
        DNNL_CHECK(dnnl_memory_create(&m[3], &md[3], engine, scratch_get(pad_bytes, &sp)));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m[3]};
    }
    dnnl_stream_t stream;
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    DNNL_CHECK(dnnl_primitive_execute(p, stream, nargs, args));
    DNNL_CHECK(dnnl_stream_wait(stream));
    pthread_mutex_lock(&prim_mu);
    bmms[slot].busy--;
    pthread_mutex_unlock(&prim_mu);
    dnnl_stream_destroy(stream);
    for (int t = 0; t < 4; t++)
        if (m[t]) dnnl_memory_destroy(m[t]);
    if (sp >= 0) scratch_put(sp);
}

// one operand's (B, NH, rows, cols) dims and strides: row stride rs, head stride hs, batch stride bs;
// tr: the matrix is read transposed (rows and cols swap their strides)
static void bmm_operand(bmm_key *k, int t, int B, int NH, int rows, int cols, dnnl_dim_t bs, dnnl_dim_t hs,
                        dnnl_dim_t rs, int tr) {
    dnnl_dim_t d[4] = {B, NH, rows, cols}, s[4] = {bs, hs, tr ? 1 : rs, tr ? rs : 1};
    memcpy(k->d[t], d, sizeof d);
    memcpy(k->s[t], s, sizeof s);
}

// element i of a bf16 (f32 0) or fp32 (f32 1) array
static const void *elem(const void *base, int f32, size_t i) {
    return f32 ? (const void *)((const float *)base + i) : (const void *)((const uint16_t *)base + i);
}

// S (B,NH,T,T dense) = scale Q K^T, then masked softmax per row: the probabilities in P, and in bf16
// in p16 when given (each row converted while it is in cache); q16 is the qkv in bf16, or with f32
// the fp32 qkv itself
static void dnnl_probs(float *P, uint16_t *p16, const void *q16, int f32, const int32_t *mask, mt_mask_mode mode,
                     int B, int T, int NH, int HS, float scale) {
    const dnnl_dim_t C3 = 3 * (dnnl_dim_t)NH * HS, TT = (dnnl_dim_t)T * T;
    bmm_key k;
    memset(&k, 0, sizeof k);
    bmm_operand(&k, 0, B, NH, T, HS, T * C3, 3 * HS, C3, 0);       // Q
    bmm_operand(&k, 1, B, NH, HS, T, T * C3, 3 * HS, C3, 1);       // K^T
    bmm_operand(&k, 2, B, NH, T, T, NH * TT, TT, T, 0);            // S
    k.scale = scale;
    k.f32 = f32;
    bmm(&k, q16, elem(q16, f32, (size_t)HS), P);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B * NH * T; r++) {
        int b = r / (NH * T), i = r % T;
        const int32_t *mrow = mask ? mask + (size_t)b * T : NULL;
        mt_opt_masked_softmax_row(P + (size_t)r * T, mrow, mode, mrow ? mrow[i] != 0 : 1, T);
        if (p16)
            for (int j = 0; j < T; j++) p16[(size_t)r * T + j] = mt_bf16_from_f32(P[(size_t)r * T + j]);
    }
}

// the opt kernels' contract and scratch layout (kernels.h); the products in bf16 as autocast runs
// them (f32 0), or in fp32 for the fp32 table (f32 1: oneDNN's batched matmul in place of one
// OpenBLAS sgemm per head), softmax and its gradient in fp32
static void dnnl_attention_fwd(int f32, float *out, float *probs, float *scratch, const float *qkv,
                               const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                               const mt_dropout_site *drop) {
    const int C3 = 3 * NH * HS, C = NH * HS;
    const size_t TT = (size_t)T * T, N = (size_t)B * T;
    const float scale = 1.0f / sqrtf((float)HS);
    const int dropping = drop && drop->p > 0.0f;
    int sq = -1, sp = -1;
    const void *q = f32 ? (const void *)qkv : (const void *)to_bf16(qkv, (int)N, C3, C3, &sq);
    float *P = probs ? probs : scratch + 2 * (size_t)B * NH * TT;
    // without dropout the probabilities enter P V as they are, converted row by row by the softmax
    // into the scratch that dropout's mask would use (fp32: P itself)
    uint16_t *p16 = dropping || f32 ? NULL : (uint16_t *)scratch;
    const void *p = f32 ? (const void *)P : (const void *)p16;
    dnnl_probs(P, p16, q, f32, mask, mode, B, T, NH, HS, scale);
    if (dropping) {
        float *D = scratch;
#pragma omp parallel for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            float *d = D + (size_t)bh * TT;
            mt_dropout_scale(d, drop->seed, drop->step, drop->stream, ((uint64_t)b * NHg + h0 + h) * TT, TT, drop->p);
            for (size_t e = 0; e < TT; e++) d[e] *= P[(size_t)bh * TT + e];
        }
        p = f32 ? (const void *)D : (const void *)to_bf16(D, B * NH * T, T, T, &sp);
    }
    bmm_key k;
    memset(&k, 0, sizeof k);
    bmm_operand(&k, 0, B, NH, T, T, (dnnl_dim_t)NH * TT, TT, T, 0);    // Pd
    bmm_operand(&k, 1, B, NH, T, HS, (dnnl_dim_t)T * C3, 3 * HS, C3, 0); // V
    bmm_operand(&k, 2, B, NH, T, HS, (dnnl_dim_t)T * C, HS, C, 0);      // out
    k.scale = 1.0f;
    k.f32 = f32;
    uint16_t *o16 = f32 ? NULL : handoff_find(out, N * C, 1);
    k.d16 = o16 != NULL;
    bmm(&k, p, elem(q, f32, 2 * (size_t)HS), o16 ? (void *)o16 : (void *)out);
    scratch_put(sq);
    scratch_put(sp);
}

static void dnnl_attention_bwd(int f32, float *dqkv, float *scratch, const float *dout, const float *qkv,
                               const float *probs, const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS,
                               int NHg, int h0, const mt_dropout_site *drop) {
    const int C3 = 3 * NH * HS, C = NH * HS;
    const size_t TT = (size_t)T * T, N = (size_t)B * T;
    const dnnl_dim_t bT = (dnnl_dim_t)NH * TT;
    const float scale = 1.0f / sqrtf((float)HS);
    const int dropping = drop && drop->p > 0.0f;
    int sq = -1, so = -1, sp = -1;
    const void *q = f32 ? (const void *)qkv : (const void *)to_bf16(qkv, (int)N, C3, C3, &sq);
    const void *o = f32 ? (const void *)dout : (const void *)to_bf16(dout, (int)N, C, C, &so);
    const float *P = probs;
    if (!P) {
        float *R = scratch + 2 * (size_t)B * NH * TT;
        dnnl_probs(R, NULL, q, f32, mask, mode, B, T, NH, HS, scale);
        P = R;
    }
    float *dS = scratch, *keep = scratch + (size_t)B * NH * TT;
    const float *Pd = P;
    if (dropping) {
#pragma omp parallel for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            float *kp = keep + (size_t)bh * TT;
            mt_dropout_scale(kp, drop->seed, drop->step, drop->stream, ((uint64_t)b * NHg + h0 + h) * TT, TT, drop->p);
            for (size_t e = 0; e < TT; e++) dS[(size_t)bh * TT + e] = P[(size_t)bh * TT + e] * kp[e];
        }
        Pd = dS;
    }
    // fp32: Pd is read in place (it may be in dS, which the second product overwrites after the first)
    uint16_t *p16 = f32 ? NULL : to_bf16(Pd, B * NH * T, T, T, &sp);
    const void *pd = f32 ? (const void *)Pd : (const void *)p16;
    bmm_key k;
    // dV = Pd^T dO
    memset(&k, 0, sizeof k);
    bmm_operand(&k, 0, B, NH, T, T, bT, TT, T, 1);
    bmm_operand(&k, 1, B, NH, T, HS, (dnnl_dim_t)T * C, HS, C, 0);
    bmm_operand(&k, 2, B, NH, T, HS, (dnnl_dim_t)T * C3, 3 * HS, C3, 0);
    k.scale = 1.0f;
    k.f32 = f32;
    bmm(&k, pd, o, dqkv + 2 * HS);
    // dPd = dO V^T
    memset(&k, 0, sizeof k);
    bmm_operand(&k, 0, B, NH, T, HS, (dnnl_dim_t)T * C, HS, C, 0);
    bmm_operand(&k, 1, B, NH, HS, T, (dnnl_dim_t)T * C3, 3 * HS, C3, 1);
    bmm_operand(&k, 2, B, NH, T, T, bT, TT, T, 0);
    k.scale = 1.0f;
    k.f32 = f32;
    bmm(&k, o, elem(q, f32, 2 * (size_t)HS), dS);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B * NH * T; r++) {
        int b = r / (NH * T), i = r % T;
        const int32_t *mrow = mask ? mask + (size_t)b * T : NULL;
        mt_opt_softmax_bwd_row(dS + (size_t)r * T, P + (size_t)r * T, dropping ? keep + (size_t)r * T : NULL, mrow,
                               mode, mrow ? mrow[i] != 0 : 1, T, scale);
    }
    if (!f32) convert_rows(p16, dS, B * NH * T, T, T); // d(scores) in bf16, over Pd's
    const void *ds = f32 ? (const void *)dS : (const void *)p16;
    // dQ = dS K; dK = dS^T Q
    memset(&k, 0, sizeof k);
    bmm_operand(&k, 0, B, NH, T, T, bT, TT, T, 0);
    bmm_operand(&k, 1, B, NH, T, HS, (dnnl_dim_t)T * C3, 3 * HS, C3, 0);
    bmm_operand(&k, 2, B, NH, T, HS, (dnnl_dim_t)T * C3, 3 * HS, C3, 0);
    k.scale = 1.0f;
    k.f32 = f32;
    bmm(&k, ds, elem(q, f32, (size_t)HS), dqkv);
    k.s[0][2] = 1, k.s[0][3] = T; // dS^T
    bmm(&k, ds, q, dqkv + HS);
    scratch_put(sq);
    scratch_put(so);
    scratch_put(sp);
}

static void hw_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                             mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                             const mt_dropout_site *drop) {
    dnnl_attention_fwd(0, out, probs, scratch, qkv, mask, mode, B, T, NH, HS, NHg, h0, drop);
}
static void hw_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                             const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                             const mt_dropout_site *drop) {
    dnnl_attention_bwd(0, dqkv, scratch, dout, qkv, probs, mask, mode, B, T, NH, HS, NHg, h0, drop);
}
static void f32_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                              mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                              const mt_dropout_site *drop) {
    dnnl_attention_fwd(1, out, probs, scratch, qkv, mask, mode, B, T, NH, HS, NHg, h0, drop);
}
static void f32_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                              const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                              const mt_dropout_site *drop) {
    dnnl_attention_bwd(1, dqkv, scratch, dout, qkv, probs, mask, mode, B, T, NH, HS, NHg, h0, drop);
}

// --- bf16 copies of weight matrices, reused while the model's weights version stays the same
// (kernels.h): an inference pass converts each weight once, a training step once for forward and
// backward together, where converting per product did it twice ---
typedef struct {
    const float *w;
    size_t n;
    uint64_t ver;
    uint16_t *bf;
    // the same weights in bf16 in the layout a forward product's primitive chose (packed_weights)
    void *pk;
    size_t pk_bytes;
    uint64_t pk_ver;
    dnnl_memory_desc_t pk_md;
} wentry;
static wentry **wcache;
static int n_wcache, cap_wcache;
static pthread_mutex_t wcache_mu = PTHREAD_MUTEX_INITIALIZER;

// w's cache entry, made on first use
static wentry *wentry_for(const float *w) {
    pthread_mutex_lock(&wcache_mu);
    wentry *e = NULL;
    for (int i = 0; i < n_wcache && !e; i++)
        if (wcache[i]->w == w) e = wcache[i];
    if (!e) {
        if (n_wcache == cap_wcache) {
            int cap = cap_wcache ? 2 * cap_wcache : 64;
            wentry **p = realloc(wcache, (size_t)cap * sizeof *p);
            if (!p) bf16_die("out of memory for the weight cache");
            wcache = p, cap_wcache = cap;
        }
        e = calloc(1, sizeof *e);
        if (!e) bf16_die("out of memory for the weight cache");
        e->w = w;
        wcache[n_wcache++] = e;
    }
    pthread_mutex_unlock(&wcache_mu);
    return e;
}

// The n contiguous floats at w in bf16: the cached copy under the current nonzero weights
// version, else converted (into the cache when there is a version, into scratch *slot if not).
static const uint16_t *weight_bf16(const float *w, int rows, int cols, int *slot) {
    const uint64_t ver = mt_kernels_weights_version();
    const size_t n = (size_t)rows * cols;
    *slot = -1;
    if (!ver) return to_bf16(w, rows, cols, cols, slot);
    wentry *e = wentry_for(w);
    // the entry belongs to the one model (and thread) that owns w: converting it needs no lock
    if (e->n != n) {
        mt_free_aligned(e->bf);
        e->bf = mt_alloc_aligned(n * sizeof *e->bf);
        if (!e->bf) bf16_die("out of memory for %zu bf16 weights", n);
        e->n = n, e->ver = 0;
    }
    if (e->ver != ver) {
        mt_bf16_convert(e->bf, w, n);
        e->ver = ver;
    }
    return e->bf;
}

// Forward-only passes (mt_kernels_set_packing) keep each weight (OUT,IN) in bf16 in the layout md
// that the product's primitive chose: the library then reads it as it is, where a plain layout is
// copied into that one by every call (8-15% of a bf16 product's time at BERT's shapes on a Zen 5).
// The packed copy replaces the plain one, so memory stays the same; it is made again when the
// weights version or the layout changes. Same values, same products: bit-identical.
static const void *packed_weights(const float *w, int OUT, int IN, const dnnl_memory_desc_t *md) {
    const uint64_t ver = mt_kernels_weights_version();
    wentry *e = wentry_for(w);
    if (e->pk && e->pk_ver == ver && dnnl_memory_desc_equal(&e->pk_md, md)) return e->pk;
    int sw;
    const uint16_t *plain = weight_bf16(w, OUT, IN, &sw);
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (bytes > e->pk_bytes) {
        mt_free_aligned(e->pk);
        e->pk = mt_alloc_aligned(bytes);
        if (!e->pk) bf16_die("out of memory for %zu bytes of packed weights", bytes);
        e->pk_bytes = bytes;
    }
    dnnl_dims_t d = {IN, OUT}, st = {1, IN}; // B (K,N) = w^T, as the plain products read it
    dnnl_memory_desc_t src;
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&src, 2, d, dnnl_bf16, st));
    dnnl_primitive_desc_t rpd;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&rpd, &src, engine, md, engine, NULL));
    dnnl_primitive_t r;
    DNNL_CHECK(dnnl_primitive_create(&r, rpd));
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_t ms, mdst;
    DNNL_CHECK(dnnl_memory_create(&ms, &src, engine, (void *)plain));
    DNNL_CHECK(dnnl_memory_create(&mdst, md, engine, e->pk));
    dnnl_stream_t stream;
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, mdst}};
    DNNL_CHECK(dnnl_primitive_execute(r, stream, 2, args));
    DNNL_CHECK(dnnl_stream_wait(stream));
    dnnl_stream_destroy(stream);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(mdst);
    dnnl_primitive_destroy(r);
    if (sw >= 0) scratch_put(sw);
    mt_free_aligned(e->bf); // (a training step converts again: its version is new anyway)
    e->bf = NULL, e->n = 0, e->ver = 0;
    e->pk_ver = ver, e->pk_md = *md;
    __atomic_add_fetch(&weights_packed, 1, __ATOMIC_RELAXED);
    return e->pk;
}
#endif

void mt_kernels_set_packing(int on) {
#ifdef MEGATUNE_HAVE_DNNL
    packing = on;
#else
    (void)on;
#endif
}

void mt_bf16_handoff_counts(unsigned long *writes, unsigned long *reads, unsigned long *packed) {
#ifdef MEGATUNE_HAVE_DNNL
    *writes = __atomic_load_n(&handoff_writes, __ATOMIC_RELAXED);
    *reads = __atomic_load_n(&handoff_reads, __ATOMIC_RELAXED);
    *packed = __atomic_load_n(&weights_packed, __ATOMIC_RELAXED);
#else
    *writes = *reads = *packed = 0;
#endif
}

void mt_kernels_forget_weights(const void *lo, const void *hi) {
#ifdef MEGATUNE_HAVE_DNNL
    pthread_mutex_lock(&wcache_mu);
    int k = 0;
    for (int i = 0; i < n_wcache; i++) {
        const char *p = (const char *)wcache[i]->w;
        if (p >= (const char *)lo && p < (const char *)hi) {
            mt_free_aligned(wcache[i]->bf);
            mt_free_aligned(wcache[i]->pk);
            free(wcache[i]);
        } else
            wcache[k++] = wcache[i];
    }
    n_wcache = k;
    if (!n_wcache) { // nothing left: no allocation stays behind for leak checkers to report
        free(wcache);
        wcache = NULL, cap_wcache = 0;
    }
    pthread_mutex_unlock(&wcache_mu);
#else
    (void)lo, (void)hi;
#endif
}

static void gemm_emu(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    int sa, sb;
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    float *a = scratch_get((size_t)(ar - 1) * lda * 4 + (size_t)ac * 4, &sa);
    float *b = scratch_get((size_t)(br - 1) * ldb * 4 + (size_t)bc * 4, &sb);
    round_rows(a, A, ar, ac, lda);
    round_rows(b, B, br, bc, ldb);
    // split rows of C across the OpenMP threads; sgemm runs single-threaded in each (see opt.h)
    const int nt = omp_get_max_threads();
    int bs = M / (2 * nt);
    bs = bs < 32 ? 32 : (bs + 7) / 8 * 8;
    const int nb = (M + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < nb; blk++) {
        int lo = blk * bs, hi = lo + bs < M ? lo + bs : M;
        const float *ab = ta ? a + lo : a + (size_t)lo * lda;
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, hi - lo, N, K, 1.0f,
                    ab, lda, b, ldb, beta, C + (size_t)lo * ldc, ldc);
    }
    scratch_put(sa);
    scratch_put(sb);
}

void mt_gemm_bf16(int hw, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        // an empty sum: C = beta*C
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta != 0.0f ? C[(size_t)i * ldc + j] * beta : 0.0f;
        return;
    }
#ifdef MEGATUNE_HAVE_DNNL
    if (hw && beta != 0.0f && beta != 1.0f) bf16_die("mt_gemm_bf16: beta must be 0 or 1 on the oneDNN path");
    if (hw) {
        gemm_dnnl(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#else
    (void)hw;
#endif
    gemm_emu(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

#ifdef MEGATUNE_HAVE_DNNL
// out (N,OUT) = act(inp @ w^T + b) + res (res NULL: none), the bias, act and res applied by the
// product's epilogue while each block of out is in cache; bf16: inputs in bf16, else fp32. With
// to_handoff, an out in a hand-off is written there, in bf16.
static void linear_epilogue(int bf16, int to_handoff, float *out, const float *res, const float *inp, const float *w,
                            const float *b, int N, int IN, int OUT, int act) {
    if (!bf16) {
        gemm_dnnl_any(1, 0, 1, N, OUT, IN, inp, IN, w, IN, 0.0f, out, 0, OUT, b, act, res, 0);
        return;
    }
    int sa, sw = -1;
    uint16_t *a16 = to_bf16(inp, N, IN, IN, &sa);
    uint16_t *o16 = to_handoff ? handoff_find(out, (size_t)N * OUT, 1) : NULL;
    const int pk = packing && mt_kernels_weights_version() != 0;
    const void *w16 = pk ? (const void *)w : (const void *)weight_bf16(w, OUT, IN, &sw);
    gemm_dnnl_any(0, 0, 1, N, OUT, IN, a16, IN, w16, IN, 0.0f, o16 ? (void *)o16 : (void *)out, o16 != NULL, OUT, b,
                  act, res, pk);
    scratch_put(sa);
    if (sw >= 0) scratch_put(sw);
}

// the activation as a oneDNN eltwise algorithm; 0 where there is none (GELU_ONNX's erf(x / 1.41421))
static int dnnl_act(mt_kact a) {
    switch (a) {
    case MT_KACT_RELU: return dnnl_eltwise_relu;
    case MT_KACT_GELU_ERF: return dnnl_eltwise_gelu_erf;
    case MT_KACT_GELU_TANH: return dnnl_eltwise_gelu_tanh;
    case MT_KACT_TANH: return dnnl_eltwise_tanh;
    default: return 0;
    }
}
#endif

#ifdef MEGATUNE_HAVE_DNNL
// LayerNorm whose output may be a hand-off (a pre-LN layer's, read only by QKV or FC1): written in
// bf16 there, the fp32 values rounded as the reading product would
static void hw_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                             int N, int C, float eps) {
    uint16_t *o16 = N > 0 && C > 0 ? handoff_find(out, (size_t)N * C, 1) : NULL;
    if (!o16) {
        mt_opt_layernorm_fwd(out, mean, rstd, inp, w, b, N, C, eps);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        mt_opt_layernorm_row(NULL, o16 + (size_t)i * C, mean + i, rstd + i, inp + (size_t)i * C, w, b, C, eps);
}
#endif

// --- linear layers (same contract as kernels.h) ---
static void linear_fwd(int hw, float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
#ifdef MEGATUNE_HAVE_DNNL
    if (hw && N > 0 && IN > 0 && OUT > 0) { // out (N,OUT) = inp @ w^T + b, the bias added by oneDNN
        linear_epilogue(1, 1, out, NULL, inp, w, b, N, IN, OUT, 0);
        return;
    }
#endif
    if (b) {
#pragma omp parallel for schedule(static) if ((size_t)N * OUT > 65536)
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
    }
    // out (N,OUT) = inp (N,IN) @ w^T
    mt_gemm_bf16(hw, 0, 1, N, OUT, IN, inp, IN, w, IN, b ? 1.0f : 0.0f, out, OUT);
}

static void linear_bwd(int hw, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT) {
#ifdef MEGATUNE_HAVE_DNNL
    if (hw && N > 0 && IN > 0 && OUT > 0) { // dout is converted once for both products
        int sd, sw = -1, si;
        uint16_t *d16 = to_bf16(dout, N, OUT, OUT, &sd), *i16 = to_bf16(inp, N, IN, IN, &si);
        if (dinp) {
            const uint16_t *w16 = weight_bf16(w, OUT, IN, &sw);
            gemm_dnnl16(0, 0, N, IN, OUT, d16, OUT, w16, IN, 0.0f, dinp, IN, NULL); // dout @ w
        }
        gemm_dnnl16(1, 0, OUT, IN, N, d16, OUT, i16, IN, 1.0f, dw, IN, NULL); // dw += dout^T @ inp
        scratch_put(sd);
        scratch_put(si);
        if (sw >= 0) scratch_put(sw);
    } else
#endif
    {
        if (dinp) mt_gemm_bf16(hw, 0, 0, N, IN, OUT, dout, OUT, w, IN, 0.0f, dinp, IN); // dout @ w
        mt_gemm_bf16(hw, 1, 0, OUT, IN, N, dout, OUT, inp, IN, 1.0f, dw, IN);           // dw += dout^T @ inp
    }
    if (db) {
        // the bias gradient is a reduction: fp32 from the unrounded gradient, as autocast does
        mt_opt_bias_grad(db, dout, N, OUT);
    }
}

static void hw_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    linear_fwd(1, out, inp, w, b, N, IN, OUT);
}
static void hw_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          int N, int IN, int OUT) {
    linear_bwd(1, dinp, dw, db, dout, inp, w, N, IN, OUT);
}
static void emu_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    linear_fwd(0, out, inp, w, b, N, IN, OUT);
}
static void emu_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           int N, int IN, int OUT) {
    linear_bwd(0, dinp, dw, db, dout, inp, w, N, IN, OUT);
}

// the forward-only fusions (kernels.h) on the oneDNN tables; what the epilogue cannot do (GELU_ONNX,
// empty sizes) runs as the separate kernels would
#ifdef MEGATUNE_HAVE_DNNL
static void f32_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT);
static void fused_act_fwd(int bf16, float *out, const float *inp, const float *w, const float *b, int N, int IN,
                          int OUT, mt_kact act) {
    const int alg = dnnl_act(act);
    if (alg && N > 0 && IN > 0 && OUT > 0) {
        linear_epilogue(bf16, 1, out, NULL, inp, w, b, N, IN, OUT, alg);
        return;
    }
    // (an activation without an epilogue: the fp32 result first, then into the hand-off if out is in one)
    uint16_t *o16 = bf16 && N > 0 && IN > 0 && OUT > 0 ? handoff_find(out, (size_t)N * OUT, 1) : NULL;
    if (o16) {
        linear_epilogue(1, 0, out, NULL, inp, w, b, N, IN, OUT, 0);
        mt_opt_act_fwd(out, out, (size_t)N * OUT, act);
        mt_bf16_convert(o16, out, (size_t)N * OUT);
        return;
    }
    (bf16 ? hw_linear_fwd : f32_linear_fwd)(out, inp, w, b, N, IN, OUT);
    if (N > 0 && OUT > 0) mt_opt_act_fwd(out, out, (size_t)N * OUT, act);
}
static void fused_residual_fwd(int bf16, float *out, const float *res, const float *inp, const float *w,
                               const float *b, int N, int IN, int OUT) {
    if (N > 0 && IN > 0 && OUT > 0) {
        linear_epilogue(bf16, 1, out, res, inp, w, b, N, IN, OUT, 0);
        return;
    }
    (bf16 ? hw_linear_fwd : f32_linear_fwd)(out, inp, w, NULL, N, IN, OUT);
    if (N > 0 && OUT > 0) mt_opt_bias_dropout_add_fwd(out, res, out, b, (size_t)N * OUT, OUT, NULL);
}
static void hw_linear_act_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT,
                              mt_kact act) {
    fused_act_fwd(1, out, inp, w, b, N, IN, OUT, act);
}
static void hw_linear_residual_fwd(float *out, const float *res, const float *inp, const float *w, const float *b,
                                   int N, int IN, int OUT) {
    fused_residual_fwd(1, out, res, inp, w, b, N, IN, OUT);
}
static void f32_linear_act_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT,
                               mt_kact act) {
    fused_act_fwd(0, out, inp, w, b, N, IN, OUT, act);
}
static void f32_linear_residual_fwd(float *out, const float *res, const float *inp, const float *w, const float *b,
                                    int N, int IN, int OUT) {
    fused_residual_fwd(0, out, res, inp, w, b, N, IN, OUT);
}
#endif

// emulated: the same roundings on fp32 values, the opt kernels' per-head sgemm
static float *rounded_copy(const float *x, size_t n, int *slot) {
    float *y = scratch_get(n * sizeof *y, slot);
    mt_bf16_round(y, x, n);
    return y;
}
static void emu_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                              mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                              const mt_dropout_site *drop) {
    int sq;
    float *q = rounded_copy(qkv, (size_t)B * T * 3 * NH * HS, &sq);
    mt_opt_attention_fwd_r(out, probs, scratch, q, mask, mode, B, T, NH, HS, NHg, h0, drop, 1);
    scratch_put(sq);
}
static void emu_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                              const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                              const mt_dropout_site *drop) {
    int sq, so;
    float *q = rounded_copy(qkv, (size_t)B * T * 3 * NH * HS, &sq), *o = rounded_copy(dout, (size_t)B * T * NH * HS, &so);
    mt_opt_attention_bwd_r(dqkv, scratch, o, q, probs, mask, mode, B, T, NH, HS, NHg, h0, drop, 1);
    scratch_put(sq);
    scratch_put(so);
}

// fp32 linear layers on oneDNN's matmul (its AVX2/AVX-512 JIT) instead of OpenBLAS
#ifdef MEGATUNE_HAVE_DNNL
static void f32_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
    if (N <= 0 || OUT <= 0) return;
    if (IN <= 0) { // an empty sum: the bias alone
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OUT; o++) out[(size_t)i * OUT + o] = b ? b[o] : 0.0f;
        return;
    }
    linear_epilogue(0, 0, out, NULL, inp, w, b, N, IN, OUT, 0);
}
static void f32_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           int N, int IN, int OUT) {
    if (N > 0 && IN > 0 && OUT > 0) {
        if (dinp) gemm_dnnl_any(1, 0, 0, N, IN, OUT, dout, OUT, w, IN, 0.0f, dinp, 0, IN, NULL, 0, NULL, 0);
        gemm_dnnl_any(1, 1, 0, OUT, IN, N, dout, OUT, inp, IN, 1.0f, dw, 0, IN, NULL, 0, NULL, 0);
    } else if (dinp && N > 0 && IN > 0) {
        memset(dinp, 0, (size_t)N * IN * sizeof *dinp);
    }
    if (db && N > 0) mt_opt_bias_grad(db, dout, N, OUT);
}
#endif

#ifdef MEGATUNE_HAVE_DNNL
// MEGATUNE_ATTENTION=blas keeps the fp32 table's attention products on OpenBLAS (one sgemm per head);
// dnnl (the default) batches them on oneDNN. Another value is named in a warning, as MEGATUNE_KERNELS.
static int f32_attention_on(void) {
    const char *e = getenv("MEGATUNE_ATTENTION");
    if (e && *e && strcmp(e, "blas") && strcmp(e, "dnnl")) {
        mt_warn("MEGATUNE_ATTENTION=%s is not an attention path; use dnnl (the default) or blas. Using the default", e);
        return 1;
    }
    return !(e && !strcmp(e, "blas"));
}
#endif

static mt_kernels hw_table, emu_table, f32_table;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static void tables_init(void) {
    hw_table = *mt_kernels_opt();
    hw_table.name = "bf16";
    hw_table.linear_fwd = hw_linear_fwd;
    hw_table.linear_bwd = hw_linear_bwd;
#ifdef MEGATUNE_HAVE_DNNL
    hw_table.attention_fwd = hw_attention_fwd;
    hw_table.attention_bwd = hw_attention_bwd;
    hw_table.linear_act_fwd = hw_linear_act_fwd;
    hw_table.linear_residual_fwd = hw_linear_residual_fwd;
    hw_table.layernorm_fwd = hw_layernorm_fwd;
    hw_table.handoff_begin = hw_handoff_begin;
    hw_table.handoff_end = hw_handoff_end;
    hw_table.handoff_attach = hw_handoff_attach;
#endif
    emu_table = *mt_kernels_opt();
    emu_table.name = "bf16emu";
    emu_table.linear_fwd = emu_linear_fwd;
    emu_table.linear_bwd = emu_linear_bwd;
    emu_table.attention_fwd = emu_attention_fwd;
    emu_table.attention_bwd = emu_attention_bwd;
#ifdef MEGATUNE_HAVE_DNNL
    f32_table = *mt_kernels_opt();
    f32_table.name = "opt-dnnl";
    f32_table.linear_fwd = f32_linear_fwd;
    f32_table.linear_bwd = f32_linear_bwd;
    f32_table.linear_act_fwd = f32_linear_act_fwd;
    f32_table.linear_residual_fwd = f32_linear_residual_fwd;
    if (f32_attention_on()) {
        f32_table.attention_fwd = f32_attention_fwd;
        f32_table.attention_bwd = f32_attention_bwd;
    }
#endif
}

const mt_kernels *mt_kernels_opt_dnnl(void) {
#ifdef MEGATUNE_HAVE_DNNL
    pthread_once(&tables_once, tables_init);
    return &f32_table;
#else
    return NULL;
#endif
}

const mt_kernels *mt_kernels_bf16(void) {
    if (!mt_bf16_available(NULL)) return NULL;
    pthread_once(&tables_once, tables_init);
    return &hw_table;
}
const mt_kernels *mt_kernels_bf16emu(void) {
    pthread_once(&tables_once, tables_init);
    return &emu_table;
}
