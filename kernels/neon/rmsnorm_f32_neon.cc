// RMS normalization with NEON. The sum of squares is kept in double as in the
// reference (AArch64: float64x2 lanes; ARMv7 NEON has no double lanes, so a
// scalar double loop). The scaling out = (x * inv) * w is the reference's
// per-element arithmetic, so only the summation order differs.
#include <cmath>

#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void rmsnorm(const float* x, const float* weight, uint32_t n, float eps, float* out) {
  double ss = 0.0;
  uint32_t i = 0;
#if defined(__aarch64__)
  float64x2_t a0 = vdupq_n_f64(0.0), a1 = vdupq_n_f64(0.0);
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v));
    const float64x2_t hi = vcvt_high_f64_f32(v);
    a0 = vaddq_f64(a0, vmulq_f64(lo, lo));
    a1 = vaddq_f64(a1, vmulq_f64(hi, hi));
  }
  ss = vaddvq_f64(vaddq_f64(a0, a1));
#endif
  for (; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), inv), vld1q_f32(weight + i)));
  for (; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

}  // namespace neon
}  // namespace tern
