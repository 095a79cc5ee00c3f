// NeMo's learning-rate schedules (nemo/core/optim/lr_scheduler.py, v1.0.0), by optimizer step.
// Step i (0-based, the scheduler's last_epoch) is the lr used by the i-th optimizer step.
#ifndef MT_MODEL_SCHED_H
#define MT_MODEL_SCHED_H

#include <stdint.h>
#include "core/status.h"

typedef enum {
    MT_SCHED_CONSTANT = 0,          // lr (after warmup when warmup > 0)
    MT_SCHED_WARMUP_ANNEALING = 1,  // linear decay to 0
    MT_SCHED_SQRT_ANNEALING = 2,    // lr*sqrt((max-i)/max), floored at min_lr
    MT_SCHED_COSINE_ANNEALING = 3,  // cosine from lr to min_lr after warmup
} mt_sched_kind;

typedef struct {
    mt_sched_kind kind;
    double lr;           // model.optim.lr
    double min_lr;       // model.optim.sched.min_lr (0)
    int64_t max_steps;   // total optimizer steps
    int64_t warmup_steps; // model.optim.sched.warmup_steps; < 0 means "use warmup_ratio"
    double warmup_ratio; // model.optim.sched.warmup_ratio
} mt_sched_config;

// NeMo's names: WarmupAnnealing, SquareRootAnnealing, CosineAnnealing, constant / none.
mt_status mt_sched_kind_parse(const char *name, mt_sched_kind *out) MT_WARN_UNUSED;
const char *mt_sched_kind_name(mt_sched_kind k);
// Warmup steps actually used: warmup_steps if >= 0, else int(warmup_ratio * max_steps).
int64_t mt_sched_warmup(const mt_sched_config *c);
mt_status mt_sched_validate(const mt_sched_config *c) MT_WARN_UNUSED;
double mt_sched_lr(const mt_sched_config *c, int64_t step);

#endif
