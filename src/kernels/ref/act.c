#include "kernels/ref/ref.h"

// inp (n) -> out (n)
void mt_ref_act_fwd(float *out, const float *inp, size_t n, mt_kact kind) {
    for (size_t i = 0; i < n; i++) out[i] = mt_kact_scalar(inp[i], kind);
}

// dout (n), inp (n) -> dinp (n) = dout * act'(inp)
void mt_ref_act_bwd(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * mt_kact_grad_scalar(inp[i], kind);
}
