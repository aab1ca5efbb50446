// AVX2 activation quantization, bit-exact to kernels/ref/quantize_rows_q8_ref.cc:
// the same IEEE division for d and id, the same single multiply x * id, and
// _mm256_cvtps_epi32 rounding in the current mode (nearest-even by default),
// as std::nearbyint does in the reference.
#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 lim = _mm256_set1_ps(127.0f);
  const __m256 nlim = _mm256_set1_ps(-127.0f);
  // packs_epi32 / packs_epi16 interleave 128-bit lanes; this restores order.
  const __m256i unshuffle = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (uint32_t r = 0; r < n_rows; ++r) {
    const float* xr = x + size_t(r) * cols;
    int8_t* qr = out.q + size_t(r) * cols;
    float* dr = out.d + size_t(r) * groups;
    float* sr = out.s + size_t(r) * groups;
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      __m256 v[4];
      for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xg + 8 * i);
      // maxps returns its second operand when either is NaN, so with the
      // running max second a NaN input is skipped, as std::fmax does.
      __m256 m = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) m = _mm256_max_ps(_mm256_and_ps(v[i], abs_mask), m);
      const float amax = hmax(m);
      const float d = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      const __m256 vid = _mm256_set1_ps(id);
      __m256i q[4];
      for (int i = 0; i < 4; ++i) {
        __m256 s = _mm256_round_ps(_mm256_mul_ps(v[i], vid), _MM_FROUND_CUR_DIRECTION);
        // Clamp as fmin(127, fmax(-127, s)): a NaN product becomes -127.
        s = _mm256_min_ps(_mm256_max_ps(s, nlim), lim);
        q[i] = _mm256_cvtps_epi32(s);
      }
      // Sum of q in int32 (exact), then s = d * float(sum) as in the reference.
      __m256i isum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(isum), _mm256_extracti128_si256(isum, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
      const int32_t sum = _mm_cvtsi128_si32(s4);
      const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
      const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
      const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), unshuffle);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + g * kGroup), p8);
      dr[g] = d;
      sr[g] = d * float(sum);
    }
  }
}

}  // namespace avx2
}  // namespace tern
