#include "kernels/kernels.h"

#include <math.h>

#define MT_SQRT_2_OVER_PI 0.7978845608028654f
#define MT_INV_SQRT_2PI 0.3989422804014327f

float mt_kact_scalar(float x, mt_kact kind) {
    switch (kind) {
    case MT_KACT_RELU: return x > 0.0f ? x : 0.0f;
    case MT_KACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    case MT_KACT_GELU_ONNX: return 0.5f * x * (1.0f + erff(x / 1.41421f));
    case MT_KACT_GELU_TANH: {
        float u = MT_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case MT_KACT_TANH: return tanhf(x);
    }
    return x;
}

float mt_kact_grad_scalar(float x, mt_kact kind) {
    switch (kind) {
    case MT_KACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case MT_KACT_GELU_ERF: {
        float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
        return cdf + x * MT_INV_SQRT_2PI * expf(-0.5f * x * x);
    }
    case MT_KACT_GELU_ONNX: {
        // d/dx 0.5 x (1 + erf(x/k)) = 0.5 (1 + erf(x/k)) + x exp(-(x/k)^2) / (k sqrt(pi))
        const float k = 1.41421f;
        float z = x / k;
        return 0.5f * (1.0f + erff(z)) + x * expf(-z * z) * (0.5641895835477563f / k);
    }
    case MT_KACT_GELU_TANH: {
        float x2 = x * x;
        float u = MT_SQRT_2_OVER_PI * (x + 0.044715f * x2 * x);
        float th = tanhf(u);
        float du = MT_SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x2);
        return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
    }
    case MT_KACT_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    }
    return 1.0f;
}
