// RMS normalization: out = x / sqrt(mean(x^2) + eps) * weight. The sum of
// squares is taken in double so the reference is as exact as practical.
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void rmsnorm(const float* x, const float* weight, uint32_t n, float eps, float* out) {
  double ss = 0.0;
  for (uint32_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (uint32_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

}  // namespace ref
}  // namespace tern
