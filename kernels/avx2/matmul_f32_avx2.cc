// AVX2 float matmul for kF32 weights (small models and tests): per output an
// 8-lane FMA dot product, 2 accumulators; scalar tail for cols % 16.
#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void matmul_f32_f32(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                    uint32_t r1, float* y, size_t y_stride) {
  const float* x = in.f32;
  const float* W = static_cast<const float*>(w.data);  // [rows, cols]
  const uint32_t n = w.cols;
  for (uint32_t t = 0; t < n_tokens; ++t) {
    const float* xt = x + size_t(t) * n;
    for (uint32_t r = r0; r < r1; ++r) {
      const float* wr = W + size_t(r) * n;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      uint32_t c = 0;
      for (; c + 16 <= n; c += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + c), _mm256_loadu_ps(xt + c), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + c + 8), _mm256_loadu_ps(xt + c + 8), a1);
      }
      float acc = hsum(_mm256_add_ps(a0, a1));
      for (; c < n; ++c) acc += wr[c] * xt[c];
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace avx2
}  // namespace tern
