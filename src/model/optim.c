#include "model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mt_optimizer {
    mt_optim_config cfg;
    size_t n;          // floats in the span
    float *m, *v;      // exp_avg, exp_avg_sq
    uint8_t *decay;    // per-float weight-decay flag (0 or 1, a byte: a quarter of a float mask); NULL when every float decays
    int64_t steps;
};

void mt_optim_config_default(mt_optim_config *c, mt_optim_kind kind) {
    c->kind = kind;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = kind == MT_OPTIM_ADAMW ? 0.01f : 0.0f;
    c->decay_all = 1;
}

mt_status mt_optim_kind_parse(const char *name, mt_optim_kind *out) {
    if (!strcasecmp(name, "adam")) *out = MT_OPTIM_ADAM;
    else if (!strcasecmp(name, "adamw")) *out = MT_OPTIM_ADAMW;
    else
        return mt_fail(MT_ERR_INVALID, "model.optim.name: unknown optimizer '%s'; use adam or adamw", name);
    return MT_OK;
}

mt_status mt_optimizer_create(const mt_optim_config *c, const mt_param_table *t, mt_optimizer **out) {
    *out = NULL;
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1))
        return mt_fail(MT_ERR_INVALID, "model.optim.betas must be in [0, 1), got [%g, %g]", c->beta1, c->beta2);
    if (!(c->eps > 0) || !(c->weight_decay >= 0))
        return mt_fail(MT_ERR_INVALID, "model.optim: eps must be > 0 and weight_decay >= 0 (eps %g, weight_decay %g)",
                       c->eps, c->weight_decay);
    mt_optimizer *o = mt_calloc(1, sizeof *o);
    if (!o) return MT_ERR_NOMEM;
    o->cfg = *c;
    o->n = t->total;
    o->m = mt_alloc_aligned(o->n * sizeof(float));
    o->v = mt_alloc_aligned(o->n * sizeof(float));
    if (!o->m || !o->v) {
        mt_optimizer_free(o);
        return MT_ERR_NOMEM;
    }
    if (!c->decay_all && c->weight_decay > 0) {
        o->decay = mt_alloc_aligned(o->n);
        if (!o->decay) {
            mt_optimizer_free(o);
            return MT_ERR_NOMEM;
        }
        for (int i = 0; i < t->count; i++)
            if (t->params[i].weight_decay)
                memset(o->decay + t->params[i].offset, 1, t->params[i].numel);
    }
    *out = o;
    return MT_OK;
}

void mt_optimizer_free(mt_optimizer *o) {
    if (!o) return;
    mt_free_aligned(o->m);
    mt_free_aligned(o->v);
    mt_free_aligned(o->decay);
    free(o);
}

// The step's scalars, in double as torch computes them in Python before the fp32 tensor ops.
typedef struct {
    float step_size, bc2_sqrt, b1, b2, eps, wd, lr;
    int adamw;
} adam_consts;

static adam_consts adam_consts_of(const mt_optimizer *o, float lr) {
    const mt_optim_config *c = &o->cfg;
    const double bc1 = 1.0 - pow((double)c->beta1, (double)o->steps);
    const double bc2 = 1.0 - pow((double)c->beta2, (double)o->steps);
    adam_consts k = {(float)((double)lr / bc1), (float)sqrt(bc2), c->beta1, c->beta2, c->eps, c->weight_decay, lr,
                     c->kind == MT_OPTIM_ADAMW};
    return k;
}

// One element's update (k by value: through a pointer its floats could alias p, m, v and defeat
// vectorisation); every path (whole span, ranges, sparse rows) runs this same expression,
// which is what makes them equal bit for bit.
static inline void adam_element(const adam_consts k, float *p, float *m, float *v, float gi, float wdi) {
    float pi = *p;
    if (k.adamw) pi *= 1.0f - k.lr * wdi;
    else gi += wdi * pi;
    float mi = k.b1 * *m + (1.0f - k.b1) * gi;
    float vi = k.b2 * *v + (1.0f - k.b2) * gi * gi;
    *m = mi;
    *v = vi;
    float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
    *p = pi - k.step_size * (mi / denom);
}

// gscale != 1 multiplies each gradient as mt_clip_grad_norm would (the same fp32 product, so the
// result is bitwise that of clip-then-step); zero_grads clears each gradient once read. One pass
// instead of three over the gradients (clip's scaling, the step, the clear). Elements [lo, lo+n)
// of the span; g[0] is element lo's gradient. The step count was advanced by the caller.
static void optimizer_range(mt_optimizer *o, float *p, float *g, size_t lo, size_t n, float lr, float gscale,
                            int zero_grads) {
    const adam_consts k = adam_consts_of(o, lr);
    const float wd = k.wd;
    const uint8_t *decay = o->decay ? o->decay + lo : NULL;
    float *m = o->m + lo, *v = o->v + lo;
    p += lo;
    const long nn = (long)n;
#pragma omp parallel for schedule(static) firstprivate(k)
    for (long i = 0; i < nn; i++) {
        float wdi = decay ? wd * (float)decay[i] : wd; // the same product as with a float mask
        float gi = g[i];
        if (gscale != 1.0f) gi *= gscale;
        if (zero_grads) g[i] = 0.0f;
        adam_element(k, p + i, m + i, v + i, gi, wdi);
    }
}

void mt_optimizer_step(mt_optimizer *o, float *p, const float *g, float lr) {
    o->steps++;
    optimizer_range(o, p, (float *)g, 0, o->n, lr, 1.0f, 0); // g is only written when zero_grads is set
}

void mt_optimizer_step_fused(mt_optimizer *o, float *p, float *g, float lr, float gscale) {
    o->steps++;
    optimizer_range(o, p, g, 0, o->n, lr, gscale, 1);
}

void mt_optimizer_begin_step(mt_optimizer *o) { o->steps++; }

mt_status mt_optimizer_step_range(mt_optimizer *o, float *p, const float *g, size_t lo, size_t n, float lr) {
    if (lo > o->n || n > o->n - lo)
        return mt_fail(MT_ERR_INVALID, "optimizer: span [%zu, %zu) is outside its %zu parameters", lo, lo + n, o->n);
    optimizer_range(o, p, (float *)g, lo, n, lr, 1.0f, 0);
    return MT_OK;
}

mt_status mt_optimizer_step_rows(mt_optimizer *o, float *p, size_t lo, size_t rows, size_t width, const int32_t *slot,
                                 const float *g, float lr) {
    if (lo > o->n || (width && rows > (o->n - lo) / width))
        return mt_fail(MT_ERR_INVALID, "optimizer: %zu rows of %zu from %zu are outside its %zu parameters", rows, width,
                       lo, o->n);
    const adam_consts k = adam_consts_of(o, lr);
    const float wd = k.wd;
    const long nr = (long)rows;
#pragma omp parallel for schedule(static) firstprivate(k)
    for (long r = 0; r < nr; r++) {
        const size_t e0 = lo + (size_t)r * width;
        const uint8_t *decay = o->decay ? o->decay + e0 : NULL;
        float *pr = p + e0, *mr = o->m + e0, *vr = o->v + e0;
        if (slot[r] >= 0) {
            const float *gr = g + (size_t)slot[r] * width;
            for (size_t i = 0; i < width; i++)
                adam_element(k, pr + i, mr + i, vr + i, gr[i], decay ? wd * (float)decay[i] : wd);
        } else {
            for (size_t i = 0; i < width; i++)
                adam_element(k, pr + i, mr + i, vr + i, 0.0f, decay ? wd * (float)decay[i] : wd);
        }
    }
    return MT_OK;
}

float *mt_optimizer_exp_avg(mt_optimizer *o) { return o->m; }
float *mt_optimizer_exp_avg_sq(mt_optimizer *o) { return o->v; }
int64_t mt_optimizer_steps(const mt_optimizer *o) { return o->steps; }
void mt_optimizer_set_steps(mt_optimizer *o, int64_t steps) { o->steps = steps; }

// Sum of squares in double over eight running sums (element k goes to sum k % 8) added in a
// fixed order: one running sum is a chain of dependent adds (latency-bound, a quarter of the
// memory speed); eight independent ones vectorize, and the result is still the same every run.
static double sum_squares(const float *x, size_t n) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0.0;
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)x[k + j] * x[k + j];
    for (; k < n; k++) tail += (double)x[k] * x[k];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

static float clip_or_norm(float *grads, const mt_param_table *t, float max_norm, mt_comm *tp, int clip);

float mt_clip_grad_norm(float *grads, const mt_param_table *t, float max_norm, mt_comm *tp) {
    return clip_or_norm(grads, t, max_norm, tp, 1);
}

float mt_grad_norm(const float *grads, const mt_param_table *t, mt_comm *tp) {
    return clip_or_norm((float *)grads, t, 0.0f, tp, 0); // max_norm 0: nothing is written
}

static float clip_or_norm(float *grads, const mt_param_table *t, float max_norm, mt_comm *tp, int clip) {
    double sq = 0.0;
    const int tp_rank = tp ? tp->rank : 0;
    if (tp_rank == 0) {
        // Every parameter counts here, so one parallel pass over the span (gaps hold zeros).
        // Fixed chunks summed in a fixed order: the norm, and so a run, is bit-reproducible
        // (an OpenMP reduction combines partial sums in arrival order).
        enum { CHUNKS = 64 };
        double part[CHUNKS];
        const size_t n = t->total, per = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < CHUNKS; c++) {
            size_t lo = (size_t)c * per, hi = lo + per < n ? lo + per : n;
            part[c] = lo < hi ? sum_squares(grads + lo, hi - lo) : 0.0;
        }
        for (int c = 0; c < CHUNKS; c++) sq += part[c];
    } else {
        for (int i = 0; i < t->count; i++) {
            const mt_param *p = &t->params[i];
            if (p->split == MT_SPLIT_REPLICATED) continue; // counted once, on TP rank 0
            sq += sum_squares(grads + p->offset, p->numel);
        }
    }
    float sqf = (float)sq;
    (void)mt_all_reduce(tp, &sqf, 1, MT_REDUCE_SUM);
    float norm = sqrtf(sqf);
    float coef = clip ? mt_clip_coef(norm, max_norm) : 1.0f;
    if (coef != 1.0f) {
        const long n = (long)t->total;
#pragma omp parallel for schedule(static)
        for (long k = 0; k < n; k++) grads[k] *= coef;
    }
    return norm;
}

float mt_clip_coef(float norm, float max_norm) {
    if (max_norm <= 0.0f) return 1.0f;
    float coef = max_norm / (norm + 1e-6f);
    return coef < 1.0f ? coef : 1.0f;
}
