#include "model/sched.h"

#include <math.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    mt_sched_kind kind;
} sched_names[] = {
    {"WarmupAnnealing", MT_SCHED_WARMUP_ANNEALING},
    {"SquareRootAnnealing", MT_SCHED_SQRT_ANNEALING},
    {"CosineAnnealing", MT_SCHED_COSINE_ANNEALING},
    {"constant", MT_SCHED_CONSTANT},
    {"none", MT_SCHED_CONSTANT},
};

mt_status mt_sched_kind_parse(const char *name, mt_sched_kind *out) {
    for (size_t i = 0; i < sizeof sched_names / sizeof sched_names[0]; i++)
        if (!strcasecmp(name, sched_names[i].name)) {
            *out = sched_names[i].kind;
            return MT_OK;
        }
    return mt_fail(MT_ERR_INVALID, "model.optim.sched.name: unknown schedule '%s'; use WarmupAnnealing, "
                   "SquareRootAnnealing, CosineAnnealing or constant", name);
}

const char *mt_sched_kind_name(mt_sched_kind k) {
    for (size_t i = 0; i < sizeof sched_names / sizeof sched_names[0]; i++)
        if (sched_names[i].kind == k) return sched_names[i].name;
    return "?";
}

int64_t mt_sched_warmup(const mt_sched_config *c) {
    if (c->warmup_steps >= 0) return c->warmup_steps;
    return (int64_t)(c->warmup_ratio * (double)c->max_steps); // int() truncates, as Python does for >= 0
}

mt_status mt_sched_validate(const mt_sched_config *c) {
    if (!(c->lr >= 0)) return mt_fail(MT_ERR_INVALID, "model.optim.lr must be >= 0, got %g", c->lr);
    if (!(c->min_lr >= 0)) return mt_fail(MT_ERR_INVALID, "model.optim.sched.min_lr must be >= 0, got %g", c->min_lr);
    if (c->warmup_steps < 0 && !(c->warmup_ratio >= 0 && c->warmup_ratio <= 1))
        return mt_fail(MT_ERR_INVALID, "model.optim.sched.warmup_ratio must be in [0, 1], got %g", c->warmup_ratio);
    if (c->max_steps < 0) return mt_fail(MT_ERR_INVALID, "schedule: max_steps must be >= 0");
    return MT_OK;
}

double mt_sched_lr(const mt_sched_config *c, int64_t i) {
    const int64_t w = mt_sched_warmup(c);
    const double max = (double)c->max_steps;
    if (w > 0 && i <= w) return c->lr * (double)(i + 1) / (double)(w + 1);
    if (c->kind == MT_SCHED_CONSTANT) return c->lr;
    if (i > c->max_steps) return c->min_lr;
    switch (c->kind) {
    case MT_SCHED_WARMUP_ANNEALING: {
        // Linear decay from lr at the end of warmup to min_lr at max_steps:
        // min_lr + (1 - (i-w)/(max-w)) * (lr - min_lr). With min_lr = 0 (the default) this is
        // v1.0.0's lr * max((i/max - 1)/(w/max - 1), 0).
        if (w >= c->max_steps) return c->min_lr;
        double mult = (double)(i - w) / (max - (double)w);
        return c->min_lr + (1.0 - mult) * (c->lr - c->min_lr);
    }
    case MT_SCHED_SQRT_ANNEALING: {
        double out = c->lr * sqrt((max - (double)i) / max);
        return out > c->min_lr ? out : c->min_lr;
    }
    case MT_SCHED_COSINE_ANNEALING: {
        if (w >= c->max_steps) return c->min_lr;
        double mult = 0.5 * (1.0 + cos(M_PI * (double)(i - w) / (max - (double)w)));
        return (c->lr - c->min_lr) * mult + c->min_lr;
    }
    case MT_SCHED_CONSTANT: break;
    }
    return c->lr;
}
