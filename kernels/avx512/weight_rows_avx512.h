// Reading one row's groups of each integer weight type as 32 bytes, and
// prefetching rows: shared by the AVX-512 prefill (matmul_q8_avx512.cc), the
// AMX prefill (kernels/amx/matmul_q8_amx.cc), which both repack 16 rows at a
// time, and the emulated build of the small-n kernels (matmul_q8_small_avx512.cc). AVX2 instructions only; internal linkage (simd_avx512.h says why).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {
namespace {

enum class Kind { kI8, kU4, kU5 };

// The 16 nibble bytes of a u4 / u5 group at p as its 32 values' low 4 bits,
// in element order: byte k holds element k (low nibble) and k + 16 (high).
inline __m256i nibble_bytes(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m4), _mm_and_si128(b, m4));
}

// A u5 group's high-bit plane at hp (4 bytes: bit i of byte b is bit 4 of
// element 8b + i) as 16 or 0 per element, in element order. Byte k of the
// result takes byte k / 8's bit k % 8: broadcast, shuffle byte k / 8 into
// place, test the bit.
inline __m256i high_bit_bytes(const uint8_t* hp) {
  int32_t h;
  __builtin_memcpy(&h, hp, 4);
  const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                       2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i spread = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(h), idx), bit);
  return _mm256_and_si256(_mm256_cmpeq_epi8(spread, bit), _mm256_set1_epi8(16));
}

// The 32 values of group g of row `row` as bytes in element order (int8:
// signed; u4 0..15, u5 0..31: unsigned, so sign-extension is exact too).
template <Kind K>
inline __m256i group_bytes(const WeightMatrix& w, uint32_t row, uint32_t g) {
  if constexpr (K == Kind::kI8) {
    const int8_t* p = static_cast<const int8_t*>(w.data) + size_t(row) * w.cols + size_t(g) * kGroup;
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  } else {
    const uint8_t* p = static_cast<const uint8_t*>(w.data) + size_t(row) * (w.cols / 2) + size_t(g) * (kGroup / 2);
    __m256i v = nibble_bytes(p);
    if constexpr (K == Kind::kU5) {
      // High-bit plane after the nibbles, cols / 8 bytes per row.
      const uint8_t* hp = static_cast<const uint8_t*>(w.data) + size_t(w.rows) * (w.cols / 2) +
                          size_t(row) * (w.cols / 8) + size_t(g) * (kGroup / 8);
      v = _mm256_or_si256(v, high_bit_bytes(hp));
    }
    return v;
  }
}

// Bytes of one row's slice [gb, ge) in each plane, for prefetching.
template <Kind K>
void prefetch_rows(const WeightMatrix& w, uint32_t r, uint32_t nr, uint32_t gb, uint32_t ge) {
  const size_t q_row = K == Kind::kI8 ? w.cols : w.cols / 2;
  const size_t q_per_group = K == Kind::kI8 ? kGroup : kGroup / 2;
  const char* q = static_cast<const char*>(w.data);
  for (uint32_t i = 0; i < nr; ++i) {
    const char* p = q + size_t(r + i) * q_row + gb * q_per_group;
    for (size_t b = 0; b < (ge - gb) * q_per_group; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
    if constexpr (K == Kind::kU5) {
      const char* h = q + size_t(w.rows) * (w.cols / 2) + size_t(r + i) * (w.cols / 8) + gb * (kGroup / 8);
      for (size_t b = 0; b < (ge - gb) * (kGroup / 8); b += 64) _mm_prefetch(h + b, _MM_HINT_T0);
    }
  }
}

}  // namespace
}  // namespace tern
