// SwiGLU gate with a NEON exp, AArch64 only (ARMv7 NEON has no vector divide
// or rounding instructions: that table keeps the reference).
// gate = gate / (1 + exp(-gate)) * up, with an IEEE divide; differs from the
// reference only by the exp error (~2e-7 relative).
#if defined(__aarch64__)
#include <cmath>

#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void silu_mul(float* gate, const float* up, uint32_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t den = vaddq_f32(one, exp_f32(vnegq_f32(g)));
    vst1q_f32(gate + i, vmulq_f32(vdivq_f32(g, den), vld1q_f32(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
