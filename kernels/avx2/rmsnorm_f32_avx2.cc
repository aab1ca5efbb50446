// AVX2 RMS normalization: float sum of squares in 4 x 8 lanes (the reference
// sums in double; the test tolerance covers the difference).
#include <cmath>

#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void rmsnorm(const float* x, const float* weight, uint32_t n, float eps, float* out) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  uint32_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_loadu_ps(x + i + 8 * k);
      a[k] = _mm256_fmadd_ps(v, v, a[k]);
    }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    a[0] = _mm256_fmadd_ps(v, v, a[0]);
  }
  float ss = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
  for (; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  const __m256 vinv = _mm256_set1_ps(inv);
  i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv),
                                            _mm256_loadu_ps(weight + i)));
  for (; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

}  // namespace avx2
}  // namespace tern
