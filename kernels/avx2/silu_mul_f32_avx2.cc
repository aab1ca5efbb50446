// AVX2 SwiGLU gate: gate = gate / (1 + exp(-gate)) * up with exp_ps.
#include <cmath>

#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void silu_mul(float* gate, const float* up, uint32_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 zero = _mm256_setzero_ps();
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_ps(_mm256_sub_ps(zero, g));
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace avx2
}  // namespace tern
