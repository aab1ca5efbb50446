// AVX2 rotary embedding. Adjacent pairs: 4 pairs per vector, the rotation is
// fmaddsub(x, cos, swap(x) * sin). Halves: 8 pairs per step, cos_sin
// de-interleaved into cos[8], sin[8]. Scalar tail as in the reference.
#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void rope(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim, const float* cos_sin,
          bool adjacent_pairs) {
  const uint32_t half = rope_dim / 2;
  for (uint32_t h = 0; h < n_heads; ++h) {
    float* xh = x + size_t(h) * head_dim;
    uint32_t i = 0;  // pair index
    if (adjacent_pairs) {
      for (; i + 4 <= half; i += 4) {
        const __m256 v = _mm256_loadu_ps(xh + 2 * i);        // x0 x1 x0' x1' ...
        const __m256 cs = _mm256_loadu_ps(cos_sin + 2 * i);  // c s c' s' ...
        const __m256 c = _mm256_moveldup_ps(cs);
        const __m256 s = _mm256_movehdup_ps(cs);
        const __m256 sw = _mm256_permute_ps(v, 0xb1);  // x1 x0 ...
        // even: x0*c - x1*s, odd: x1*c + x0*s
        _mm256_storeu_ps(xh + 2 * i, _mm256_fmaddsub_ps(v, c, _mm256_mul_ps(sw, s)));
      }
      for (; i < half; ++i) {
        const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
        xh[2 * i] = x0 * c - x1 * s;
        xh[2 * i + 1] = x0 * s + x1 * c;
      }
    } else {
      for (; i + 8 <= half; i += 8) {
        const __m256 a = _mm256_loadu_ps(cos_sin + 2 * i);
        const __m256 b = _mm256_loadu_ps(cos_sin + 2 * i + 8);
        const __m256 c = _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
        const __m256 s = _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
        const __m256 x0 = _mm256_loadu_ps(xh + i);
        const __m256 x1 = _mm256_loadu_ps(xh + i + half);
        _mm256_storeu_ps(xh + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
        _mm256_storeu_ps(xh + i + half, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
      }
      for (; i < half; ++i) {
        const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        const float x0 = xh[i], x1 = xh[i + half];
        xh[i] = x0 * c - x1 * s;
        xh[i + half] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace avx2
}  // namespace tern
