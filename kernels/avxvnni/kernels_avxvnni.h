// AVX-VNNI kernels (256-bit, VEX-encoded vpdpbusd) and the one primitive they
// add to AVX2. Only files under kernels/avxvnni/ (compiled with -mavx2 -mfma
// -mf16c -mavxvnni) include this.
//
// The same sources are compiled a second time with TERN_AVXVNNI_EMULATE
// (kernels/avxvnni/emulated/, plain AVX2 flags): vpdpbusd is then computed
// with AVX2 instructions and the table is named "avxvnni-emulated". It is not a
// runtime variant; it lets tests/kernels/kernel_variants_test.cc check the
// kernels' logic bit for bit on CPUs without AVX-VNNI (the instruction's
// semantics are the only thing the emulation stands in for).

#pragma once
#include "kernels/avx2/kernels_avx2.h"

#if TERN_AVXVNNI_EMULATE
#define TERN_AVXVNNI_NS avxvnni_emulated
#else
#define TERN_AVXVNNI_NS avxvnni
#endif

namespace tern {
namespace TERN_AVXVNNI_NS {

// acc[i] + sum_{k<4} u8(a[4i+k]) * s8(b[4i+k]) for each of the 8 int32 lanes,
// without saturation (vpdpbusd; the saturating form is vpdpbusds). Every use
// here keeps the lanes far from int32 overflow.
inline __m256i dpbusd(__m256i acc, __m256i a, __m256i b) {
#if TERN_AVXVNNI_EMULATE
  // u8 and s8 widened to i16, madd to pair sums (exact: |.| <= 2 * 255 * 128),
  // hadd to the sums of four consecutive bytes, in lane order per 128 bits.
  const __m256i zero = _mm256_setzero_si256();
  const __m256i a_lo = _mm256_unpacklo_epi8(a, zero);
  const __m256i a_hi = _mm256_unpackhi_epi8(a, zero);
  const __m256i b_lo = _mm256_srai_epi16(_mm256_unpacklo_epi8(b, b), 8);
  const __m256i b_hi = _mm256_srai_epi16(_mm256_unpackhi_epi8(b, b), 8);
  return _mm256_add_epi32(acc, _mm256_hadd_epi32(_mm256_madd_epi16(a_lo, b_lo), _mm256_madd_epi16(a_hi, b_hi)));
#else
  return _mm256_dpbusd_avx_epi32(acc, a, b);
#endif
}

// kInt4G32 and kInt5G32 weights (int8 weights run the AVX2 kernel, see the table).
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);

}  // namespace TERN_AVXVNNI_NS
}  // namespace tern
