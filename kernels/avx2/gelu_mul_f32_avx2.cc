// AVX2 GeGLU gate: gelu_tanh(g) * up. 0.5 g (1 + tanh(u)) = g / (1 + exp(-2u)),
// so the SiLU kernel's exp_ps and one divide do it; differs from the
// reference's tanh only by rounding and the exp error (~1e-6 relative).
#include <cmath>

#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void gelu_mul(float* gate, const float* up, uint32_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 m2c = _mm256_set1_ps(-2.0f * 0.7978845608028654f);  // -2 sqrt(2/pi)
  const __m256 k = _mm256_set1_ps(0.044715f);
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 g3 = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
    const __m256 e = exp_ps(_mm256_mul_ps(m2c, _mm256_fmadd_ps(k, g3, g)));  // exp(-2u)
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    gate[i] = 0.5f * g * (1.0f + std::tanh(0.7978845608028654f * (g + 0.044715f * g * g * g))) * up[i];
  }
}

}  // namespace avx2
}  // namespace tern
