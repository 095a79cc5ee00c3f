#include "kernels/opt/opt.h"

// inp (n) -> out (n)
void mt_opt_act_fwd(float *out, const float *inp, size_t n, mt_kact kind) {
    if (kind == MT_KACT_RELU) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = mt_kact_scalar(inp[i], kind);
}

// dinp (n) = dout * act'(inp)
void mt_opt_act_bwd(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind) {
    if (kind == MT_KACT_RELU) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * mt_kact_grad_scalar(inp[i], kind);
}
