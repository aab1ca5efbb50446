// NEON GeGLU gate, AArch64 only (like silu_mul: a vector divide):
// 0.5 g (1 + tanh(u)) = g / (1 + exp(-2u)) with the NEON exp.
#if defined(__aarch64__)
#include <cmath>

#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void gelu_mul(float* gate, const float* up, uint32_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t m2c = vdupq_n_f32(-2.0f * 0.7978845608028654f);
  const float32x4_t k = vdupq_n_f32(0.044715f);
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t g3 = vmulq_f32(vmulq_f32(g, g), g);
    const float32x4_t e = exp_f32(vmulq_f32(m2c, vfmaq_f32(g, k, g3)));
    vst1q_f32(gate + i, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), vld1q_f32(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    gate[i] = 0.5f * g * (1.0f + std::tanh(0.7978845608028654f * (g + 0.044715f * g * g * g))) * up[i];
  }
}

}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
