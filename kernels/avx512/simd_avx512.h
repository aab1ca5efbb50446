// The 512-bit vector operations the AVX-512 kernels use, in two builds:
//   native   (kernels/avx512/*.cc, -mavx512f/bw/vl/vnni): one zmm each;
//   emulated (kernels/avx512/emulated/, AVX2 flags, TERN_AVX512_EMULATE):
//            each 512-bit value is a pair of ymm and every operation is done
//            with AVX2 on both halves, bit for bit the same result.
// The emulated build is the "avx512vnni-emulated" table (tests only, never
// selectable), so CPUs without AVX-512 check the kernels' logic, as
// avxvnni-emulated does for AVX-VNNI.
//
// Everything here has internal linkage (an unnamed namespace): these inline
// functions are compiled with AVX-512 enabled, and an external inline copy
// could be merged by the linker into code that runs on CPUs without it.
// For the same reason the kernels that include this call no inline function
// of the shared headers (kernels/blocks.h's f16 helpers and the like).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/avx512/kernels_avx512.h"  // TERN_AVX512_NS
#include "kernels/unrolled.h"

// GCC 12's _mm512_cvtepi32_ps and friends pass _mm512_undefined_ps(), which
// it then reports as "used uninitialized" at every inlined call (a known
// false positive of its headers); only the files that include this one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tern {
namespace TERN_AVX512_NS {
namespace {

#if TERN_AVX512_EMULATE
struct V16i {  // 16 x int32 or 32 x int16
  __m256i lo, hi;
};
struct V16f {
  __m256 lo, hi;
};
#else
using V16i = __m512i;
using V16f = __m512;
#endif

// ---- integers --------------------------------------------------------------------

inline V16i zero_i() {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_setzero_si256(), _mm256_setzero_si256()};
#else
  return _mm512_setzero_si512();
#endif
}

inline V16i load_i(const void* p) {
#if TERN_AVX512_EMULATE
  const __m256i* q = static_cast<const __m256i*>(p);
  return V16i{_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)};
#else
  return _mm512_loadu_si512(p);
#endif
}

// 32 int8 bytes sign-extended to 32 x int16.
inline V16i widen_i8(__m256i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1))};
#else
  return _mm512_cvtepi8_epi16(b);
#endif
}

// 16 x int32 pair sums of 32 x int16 products (vpmaddwd).
inline V16i madd16(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_madd_epi16(a.lo, b.lo), _mm256_madd_epi16(a.hi, b.hi)};
#else
  return _mm512_madd_epi16(a, b);
#endif
}

// The two int16 at x (one 32-bit pair) in every lane.
inline V16i bcast_pair(const int16_t* x) {
  int32_t pair;
  __builtin_memcpy(&pair, x, 4);
#if TERN_AVX512_EMULATE
  const __m256i b = _mm256_set1_epi32(pair);
  return V16i{b, b};
#else
  return _mm512_set1_epi32(pair);
#endif
}

// acc + pair sums of w times x (32 x int16 each; vpdpwssd, without
// saturation: every use keeps the lanes far from int32 overflow).
inline V16i dpwssd(V16i acc, V16i w, V16i x) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_add_epi32(acc.lo, _mm256_madd_epi16(w.lo, x.lo)), _mm256_add_epi32(acc.hi, _mm256_madd_epi16(w.hi, x.hi))};
#else
  return _mm512_dpwssd_epi32(acc, w, x);
#endif
}

// dst[c * 16 + i] = lane c of rows[i]: 16 rows of 16 int32 written as 16
// columns (the interleaved weight layout of matmul_q8_avx512.cc).
inline void store_transposed_16x16(const V16i* rows, int32_t* dst) {
#if TERN_AVX512_EMULATE
  alignas(32) int32_t tmp[16][16];
  for (int i = 0; i < 16; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp[i]), rows[i].lo);
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp[i] + 8), rows[i].hi);
  }
  for (int c = 0; c < 16; ++c)
    for (int i = 0; i < 16; ++i) dst[c * 16 + i] = tmp[i][c];
#else
  // 32-bit, then 64-bit unpacks within 128-bit lanes: b[4k + c], lane L =
  // rows 4k..4k+3 of column 4L + c; then two 128-bit shuffles gather the
  // four lanes L of b[c], b[4 + c], b[8 + c], b[12 + c] into column 4L + c.
  __m512i a[16], b[16];
  for (int k = 0; k < 8; ++k) {
    a[2 * k] = _mm512_unpacklo_epi32(rows[2 * k], rows[2 * k + 1]);
    a[2 * k + 1] = _mm512_unpackhi_epi32(rows[2 * k], rows[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    b[4 * k + 0] = _mm512_unpacklo_epi64(a[4 * k], a[4 * k + 2]);
    b[4 * k + 1] = _mm512_unpackhi_epi64(a[4 * k], a[4 * k + 2]);
    b[4 * k + 2] = _mm512_unpacklo_epi64(a[4 * k + 1], a[4 * k + 3]);
    b[4 * k + 3] = _mm512_unpackhi_epi64(a[4 * k + 1], a[4 * k + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i c1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x44);
    const __m512i c2 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xee);
    const __m512i c3 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x44);
    const __m512i c4 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xee);
    _mm512_storeu_si512(dst + (0 + c) * 16, _mm512_shuffle_i32x4(c1, c3, 0x88));
    _mm512_storeu_si512(dst + (4 + c) * 16, _mm512_shuffle_i32x4(c1, c3, 0xdd));
    _mm512_storeu_si512(dst + (8 + c) * 16, _mm512_shuffle_i32x4(c2, c4, 0x88));
    _mm512_storeu_si512(dst + (12 + c) * 16, _mm512_shuffle_i32x4(c2, c4, 0xdd));
  }
#endif
}

// Two ymm as one value: lo is lanes 0..7, hi lanes 8..15.
inline V16i join_i(__m256i lo, __m256i hi) {
#if TERN_AVX512_EMULATE
  return V16i{lo, hi};
#else
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
#endif
}

// kResidualScale q + r per int32 lane: the exact sum against x16 from the sums against
// the two activation planes (kernels/blocks.h, kResidualScale).
inline V16i combine_planes(V16i q, V16i r) {
#if TERN_AVX512_EMULATE
  const __m256i k = _mm256_set1_epi32(kResidualScale);
  return V16i{_mm256_add_epi32(_mm256_mullo_epi32(q.lo, k), r.lo), _mm256_add_epi32(_mm256_mullo_epi32(q.hi, k), r.hi)};
#else
  return _mm512_add_epi32(_mm512_mullo_epi32(q, _mm512_set1_epi32(kResidualScale)), r);
#endif
}

inline V16i add_i(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)};
#else
  return _mm512_add_epi32(a, b);
#endif
}

inline V16i sub_i(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)};
#else
  return _mm512_sub_epi32(a, b);
#endif
}

inline V16i xor_i(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_xor_si256(a.lo, b.lo), _mm256_xor_si256(a.hi, b.hi)};
#else
  return _mm512_xor_si512(a, b);
#endif
}

inline void store_i(void* p, V16i v) {
#if TERN_AVX512_EMULATE
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v.lo);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p) + 1, v.hi);
#else
  _mm512_storeu_si512(p, v);
#endif
}

inline V16i and_i(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)};
#else
  return _mm512_and_si512(a, b);
#endif
}

// Each 16-bit lane shifted right by N bits, zeros in (the high nibbles of
// bytes to the low ones, masked after).
template <int N>
inline V16i srli_i16(V16i v) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_srli_epi16(v.lo, N), _mm256_srli_epi16(v.hi, N)};
#else
  return _mm512_srli_epi16(v, N);
#endif
}

inline V16i set1_i8(int8_t v) {
#if TERN_AVX512_EMULATE
  const __m256i b = _mm256_set1_epi8(v);
  return V16i{b, b};
#else
  return _mm512_set1_epi8(v);
#endif
}

inline V16i set1_i32(int32_t v) {
#if TERN_AVX512_EMULATE
  const __m256i b = _mm256_set1_epi32(v);
  return V16i{b, b};
#else
  return _mm512_set1_epi32(v);
#endif
}

// Each int32 lane shifted left by N bits.
template <int N>
inline V16i slli_i32(V16i v) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_slli_epi32(v.lo, N), _mm256_slli_epi32(v.hi, N)};
#else
  return _mm512_slli_epi32(v, N);
#endif
}

// acc[i] + sum_{k<4} u8(a[4i+k]) * s8(b[4i+k]) per int32 lane, without
// saturation (vpdpbusd; every use keeps the lanes far from int32 overflow).
// The emulation widens both to int16 (exact: |pair sum| <= 2 * 255 * 128),
// vpmaddwd's pair sums, then hadd to sums of four bytes in lane order.
inline V16i dpbusd(V16i acc, V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  auto half = [](__m256i c, __m256i ua, __m256i sb) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i a_lo = _mm256_unpacklo_epi8(ua, zero);
    const __m256i a_hi = _mm256_unpackhi_epi8(ua, zero);
    const __m256i b_lo = _mm256_srai_epi16(_mm256_unpacklo_epi8(sb, sb), 8);
    const __m256i b_hi = _mm256_srai_epi16(_mm256_unpackhi_epi8(sb, sb), 8);
    // unpack{lo,hi} take bytes 0..7 / 8..15 of each 128-bit lane, so the
    // hadd of their pair sums is lanes {0,1 | 2,3} of each 128 bits in order.
    return _mm256_add_epi32(c, _mm256_hadd_epi32(_mm256_madd_epi16(a_lo, b_lo), _mm256_madd_epi16(a_hi, b_hi)));
  };
  return V16i{half(acc.lo, a.lo, b.lo), half(acc.hi, a.hi, b.hi)};
#else
  return _mm512_dpbusd_epi32(acc, a, b);
#endif
}

// Per 128-bit lane (as the AVX2 forms): 32-bit / 64-bit interleaves of the
// low or high halves of a and b.
inline V16i unpacklo_i32(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_unpacklo_epi32(a.lo, b.lo), _mm256_unpacklo_epi32(a.hi, b.hi)};
#else
  return _mm512_unpacklo_epi32(a, b);
#endif
}

inline V16i unpackhi_i32(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_unpackhi_epi32(a.lo, b.lo), _mm256_unpackhi_epi32(a.hi, b.hi)};
#else
  return _mm512_unpackhi_epi32(a, b);
#endif
}

inline V16i unpacklo_i64(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_unpacklo_epi64(a.lo, b.lo), _mm256_unpacklo_epi64(a.hi, b.hi)};
#else
  return _mm512_unpacklo_epi64(a, b);
#endif
}

inline V16i unpackhi_i64(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_unpackhi_epi64(a.lo, b.lo), _mm256_unpackhi_epi64(a.hi, b.hi)};
#else
  return _mm512_unpackhi_epi64(a, b);
#endif
}

// 128-bit lanes {a[L0], a[L1], b[L2], b[L3]} (vshufi32x4 with imm
// L0 | L1 << 2 | L2 << 4 | L3 << 6).
template <int L0, int L1, int L2, int L3>
inline V16i shuffle_i128(V16i a, V16i b) {
#if TERN_AVX512_EMULATE
  // vperm2i128 selects from {x lane 0, 1, y lane 0, 1}: with x, y = v.lo,
  // v.hi that is lanes 0..3 of v.
  return V16i{_mm256_permute2x128_si256(a.lo, a.hi, L0 | (L1 << 4)),
              _mm256_permute2x128_si256(b.lo, b.hi, L2 | (L3 << 4))};
#else
  return _mm512_shuffle_i32x4(a, b, L0 | (L1 << 2) | (L2 << 4) | (L3 << 6));
#endif
}

// ---- floats ----------------------------------------------------------------------

inline V16f zero_f() {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_setzero_ps(), _mm256_setzero_ps()};
#else
  return _mm512_setzero_ps();
#endif
}

inline V16f set1_f(float v) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_set1_ps(v), _mm256_set1_ps(v)};
#else
  return _mm512_set1_ps(v);
#endif
}

inline V16f load_f(const float* p) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
#else
  return _mm512_loadu_ps(p);
#endif
}

inline void store_f(float* p, V16f v) {
#if TERN_AVX512_EMULATE
  _mm256_storeu_ps(p, v.lo);
  _mm256_storeu_ps(p + 8, v.hi);
#else
  _mm512_storeu_ps(p, v);
#endif
}

// 16 f16 values as floats.
inline V16f load_f16(const uint16_t* p) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
#else
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#endif
}

inline V16f cvt_f(V16i v) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_cvtepi32_ps(v.lo), _mm256_cvtepi32_ps(v.hi)};
#else
  return _mm512_cvtepi32_ps(v);
#endif
}

// The float bits as integers (for transposes).
inline V16i bits_i(V16f v) {
#if TERN_AVX512_EMULATE
  return V16i{_mm256_castps_si256(v.lo), _mm256_castps_si256(v.hi)};
#else
  return _mm512_castps_si512(v);
#endif
}

inline V16f mul_f(V16f a, V16f b) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
#else
  return _mm512_mul_ps(a, b);
#endif
}

inline V16f add_f(V16f a, V16f b) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
#else
  return _mm512_add_ps(a, b);
#endif
}

// a * b + c, one rounding.
inline V16f fmadd_f(V16f a, V16f b, V16f c) {
#if TERN_AVX512_EMULATE
  return V16f{_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
#else
  return _mm512_fmadd_ps(a, b, c);
#endif
}

// out[0 .. n) = v's first n lanes, or += them (n <= 16): a tile's outputs
// for one token, rows past the matrix left alone.
inline void store_rows_f(float* out, V16f v, uint32_t n, bool accumulate) {
  if (n == 16) {
    store_f(out, accumulate ? add_f(load_f(out), v) : v);
    return;
  }
  alignas(64) float tmp[16];
  store_f(tmp, v);
  for (uint32_t i = 0; i < n; ++i) out[i] = accumulate ? out[i] + tmp[i] : tmp[i];
}

// Sum of the 16 lanes: the two halves added, then 8 lanes pairwise. The
// native build adds in the same order, so both builds give the same float.
inline float reduce_add_f(V16f v) {
#if TERN_AVX512_EMULATE
  const __m256 s8 = _mm256_add_ps(v.lo, v.hi);
#else
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
#endif
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) per lane: avx2::exp_ps's method (Cephes-style, x = n ln2 + r,
// degree-6 polynomial, inputs clamped to [-87.3, 88.7], relative error
// ~2e-7) on 16 lanes, written out again rather than called on two halves:
// calling the AVX2 header's inline function from an AVX-512 file would emit
// a mergeable copy of it compiled for AVX-512 (see the top of this file).
// The emulated build, compiled for AVX2 only, may call it.
inline V16f exp_f(V16f x) {
#if TERN_AVX512_EMULATE
  return V16f{avx2::exp_ps(x.lo), avx2::exp_ps(x.hi)};
#else
  x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // 2^n as 2^(n/2) * 2^(n - n/2): finite at both ends of the clamp.
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
  return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
#endif
}

// One f16 as a float (F16C), for scalar scale reads: kernels/blocks.h's
// f16_to_f32 is an external inline function (see the top of this file).
inline float f16_scalar(uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

}  // namespace
}  // namespace TERN_AVX512_NS
}  // namespace tern
