// AVX2 activation quantization to the two-plane ActRowsQ8 (kernels/blocks.h),
// bit-exact to kernels/ref/quantize_rows_q8_ref.cc: the same IEEE divisions
// for the scales, the same single multiply x * id and res * id_res, the
// residual as one fused multiply-add (_mm256_fnmadd_ps(coarse, q, x) rounds
// -(coarse * q) + x once, exactly as std::fma(-coarse, q, x)), and
// _mm256_round_ps in the current rounding mode (nearest-even by default), as
// std::nearbyint does in the reference.
#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

namespace {

// nearbyint then clamp as fmin(127, fmax(-127, v)): maxps returns its second
// operand when either is NaN, so a NaN becomes -127 as in the reference.
inline __m256 round_clamp(__m256 v) {
  const __m256 s = _mm256_round_ps(v, _MM_FROUND_CUR_DIRECTION);
  return _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
}

// Four vectors of 8 int32 in [-127, 127] -> 32 int8 in element order
// (packs_epi32 / packs_epi16 interleave 128-bit lanes; the permute restores it).
inline __m256i pack_i8(const __m256i* v) {
  const __m256i p16a = _mm256_packs_epi32(v[0], v[1]);
  const __m256i p16b = _mm256_packs_epi32(v[2], v[3]);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  return _mm_cvtsi128_si32(s4);
}

}  // namespace

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (uint32_t row = 0; row < n_rows; ++row) {
    const float* xr = x + size_t(row) * cols;      // [cols]
    int8_t* qr = out.q + size_t(row) * cols;       // [cols]
    int8_t* rr = out.r + size_t(row) * cols;       // [cols]
    float* dr = out.d + size_t(row) * groups;      // [groups]
    float* sr = out.s + size_t(row) * groups;      // [groups]
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      __m256 v[4];
      for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xg + 8 * i);
      // maxps returns its second operand when either is NaN, so with the
      // running max second a NaN input is skipped, as std::fmax does.
      __m256 m = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) m = _mm256_max_ps(_mm256_and_ps(v[i], abs_mask), m);
      const float amax_raw = hmax(m);
      const float amax = amax_raw < kTinyGroupAmax ? 0.0f : amax_raw;  // as the reference
      const float coarse = amax / 127.0f;                   // step of the q plane
      const float d = amax / float(127 * kResidualScale);   // step of the r plane
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      const float id_res = id * float(kResidualScale);
      const __m256 vid = _mm256_set1_ps(id);
      const __m256 vid_res = _mm256_set1_ps(id_res);
      const __m256 vcoarse = _mm256_set1_ps(coarse);
      __m256i q[4], r[4];
      for (int i = 0; i < 4; ++i) {
        const __m256 qf = round_clamp(_mm256_mul_ps(v[i], vid));
        const __m256 res = _mm256_fnmadd_ps(vcoarse, qf, v[i]);  // x - coarse * q, one rounding
        const __m256 rf = round_clamp(_mm256_mul_ps(res, vid_res));
        q[i] = _mm256_cvtps_epi32(qf);  // exact: integers in [-127, 127]
        r[i] = _mm256_cvtps_epi32(rf);
      }
      // 254 * sum(q) + sum(r) in int32 (exact), then s = d * float(sum).
      const __m256i sq = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      const __m256i sr8 = _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]), _mm256_add_epi32(r[2], r[3]));
      const int32_t sum = kResidualScale * hsum_i32(sq) + hsum_i32(sr8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + g * kGroup), pack_i8(q));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(rr + g * kGroup), pack_i8(r));
      dr[g] = d;
      sr[g] = d * float(sum);
    }
  }
}

}  // namespace avx2
}  // namespace tern
