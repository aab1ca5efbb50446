// Softmax in place with a NEON exp (neon_util.h exp_f32, ~2 ulp), AArch64
// only. The sum is kept in double lanes like the reference's double sum, so
// the result differs from it only by the exp error (~2e-7 relative).
#if defined(__aarch64__)
#include <cmath>

#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void softmax(float* x, uint32_t n) {
  if (n == 0) return;
  const uint32_t n4 = n / 4 * 4;
  float mx = x[0];
  if (n4 > 0) {
    float32x4_t m = vld1q_f32(x);
    for (uint32_t i = 4; i < n4; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
    mx = vmaxvq_f32(m);
  }
  for (uint32_t i = n4; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const float32x4_t vmx = vdupq_n_f32(mx);
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  for (uint32_t i = 0; i < n4; i += 4) {
    const float32x4_t e = exp_f32(vsubq_f32(vld1q_f32(x + i), vmx));
    vst1q_f32(x + i, e);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (uint32_t i = n4; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  uint32_t i = 0;
  for (; i < n4; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
