// Register-tile machinery shared by the AVX2 quantized matmuls
// (matmul_q8q8_avx2.cc for int8 weights, matmul_q4q8_avx2.cc for int4).
//
// Inner step for one group of 32 (one weight row r, one token t):
//   int8 weights: maddubs(|w|, sign(x, w))  -- u8 x s8 -> 16 x i16 pair sums
//   int4 weights: maddubs(q4, x)             -- q4 in 0..15 is already unsigned
//   then madd_epi16 with ones -> 8 x i32 partial sums of the group (each exact:
//   |pair| <= 2*127*127 < 2^15), converted to float (exact: < 2^24) and FMA'd
//   with the combined scale d_w[r,g] * x.d[t,g] into an 8-lane accumulator.
// So every integer partial of the reference's group sum is exact; only the
// float accumulation order differs (lanes, then a horizontal sum per output).
// For int4 the m_w[r,g] * x.s[t,g] term is FMA'd 8 groups at a time into the
// same accumulator.
//
// Register tiles: decode (n_tokens == 1) runs 4 rows x 1 token so four weight
// streams are in flight (with software prefetch of the next tile's rows into
// L2); prefill runs 2 rows x 4 tokens so each weight group is loaded (and, for
// int8, its |w| computed) once and used for 4 tokens. Only files under
// kernels/avx2/ include this header.
#pragma once
#include <type_traits>
#include <utility>

#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {
namespace tiles {

constexpr uint32_t kChunk = 8;  // groups whose scales are converted together

// Lanes [0, n) set: masked loads read a partial chunk without touching memory
// past it and without a store-to-load round trip through a stack buffer.
inline __m256i lane_mask(uint32_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Up to 8 consecutive floats (zero past n) as a vector.
inline __m256 load_partial(const float* p, uint32_t n, __m256i mask) {
  if (n == kChunk) return _mm256_loadu_ps(p);
  return _mm256_maskload_ps(p, mask);
}

// f16 scales of groups [g0, g0+n) of one row as floats (zero past n).
// int8: ws = d[groups]; int4: ws = {d, m}[groups], split into d and m.
inline __m256 load_scales_int8(const uint16_t* ws, uint32_t n) {
  if (n == kChunk) return load_f16x8(ws);
  // n/2 whole dwords by mask, then the odd last half inserted.
  const __m128i m = _mm256_castsi256_si128(lane_mask(n / 2));
  __m128i h = _mm_maskload_epi32(reinterpret_cast<const int*>(ws), m);
  switch (n) {  // the insert lane must be an immediate
    case 1: h = _mm_insert_epi16(h, ws[0], 0); break;
    case 3: h = _mm_insert_epi16(h, ws[2], 2); break;
    case 5: h = _mm_insert_epi16(h, ws[4], 4); break;
    case 7: h = _mm_insert_epi16(h, ws[6], 6); break;
    default: break;
  }
  return _mm256_cvtph_ps(h);
}

inline void load_scales_int4(const uint16_t* ws, uint32_t n, __m256i mask, __m256* d, __m256* m) {
  // 8 {d, m} pairs = 8 dwords: d0 m0 d1 m1 d2 m2 d3 m3 | d4 m4 d5 m5 d6 m6 d7 m7
  const __m256i dm = n == kChunk ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ws))
                                 : _mm256_maskload_epi32(reinterpret_cast<const int*>(ws), mask);
  const __m256 a = _mm256_cvtph_ps(_mm256_castsi256_si128(dm));
  const __m256 b = _mm256_cvtph_ps(_mm256_extracti128_si256(dm, 1));
  // shuffle gives d0 d1 d4 d5 | d2 d3 d6 d7; the 64-bit permute restores order.
  *d = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
  *m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}

// 32 int4 weights of one group in element order (low nibbles = 0..15, high =
// 16..31): the 16 bytes go to both 128-bit lanes, the upper lane shifted by 4.
inline __m256i load_q4(const uint8_t* p) {
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i shifted = _mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f));
}

// Calls f(integral_constant<int, 0>) ... f(integral_constant<int, N-1>): loops
// over the register tile with compile-time indices, so the accumulator array
// is split into registers (a runtime-indexed array stays in memory in GCC).
template <class F, int... I>
inline void unrolled_impl(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
inline void unrolled(F&& f) {
  unrolled_impl(f, std::make_integer_sequence<int, N>{});
}

// One R x T tile: rows [r, r+R), tokens [t, t+T), all groups.
template <bool kInt4, int R, int T>
void tile(const WeightMatrix& w, const ActRowsQ8& x, uint32_t r, uint32_t t, float* y,
          size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = kInt4 ? w.cols / 2 : w.cols;
  const size_t row_scales = kInt4 ? 2 * groups : groups;
  constexpr size_t bytes_per_group = kInt4 ? kGroup / 2 : kGroup;
  const uint8_t* wq[R];
  const uint16_t* ws[R];
  unrolled<R>([&](auto i) {
    wq[i] = static_cast<const uint8_t*>(w.data) + (r + i) * row_bytes;
    ws[i] = w.scales + (r + i) * row_scales;
  });
  const int8_t* xq[T];
  const float* xd[T];
  const float* xs[T];
  unrolled<T>([&](auto j) {
    xq[j] = x.q + size_t(t + j) * x.cols;
    xd[j] = x.d + size_t(t + j) * groups;
    xs[j] = x.s + size_t(t + j) * groups;
  });
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][T];
  unrolled<R>([&](auto i) { unrolled<T>([&](auto j) { acc[i][j] = _mm256_setzero_ps(); }); });

  for (uint32_t g0 = 0; g0 < groups; g0 += kChunk) {
    const uint32_t n = groups - g0 < kChunk ? groups - g0 : kChunk;
    // Combined scales d_w * x.d for this chunk: [R][T][8].
    alignas(32) float sc[R][T][kChunk];
    alignas(32) float sc2[R][T][kInt4 ? kChunk / 2 : 1][kChunk];
    const __m256i mask = lane_mask(n);
    __m256 xd8[T];
    unrolled<T>([&](auto j) { xd8[j] = load_partial(xd[j] + g0, n, mask); });
    unrolled<R>([&](auto i) {
      if (T == 1)  // the next tile's scales, as for the weights below
        _mm_prefetch(reinterpret_cast<const char*>(ws[i] + (kInt4 ? 2 : 1) * g0 + R * row_scales), _MM_HINT_T1);
      __m256 d, m;
      if (kInt4) {
        load_scales_int4(ws[i] + 2 * g0, n, mask, &d, &m);
        unrolled<T>([&](auto j) {
          acc[i][j] = _mm256_fmadd_ps(m, load_partial(xs[j] + g0, n, mask), acc[i][j]);
        });
      } else {
        d = load_scales_int8(ws[i] + g0, n);
      }
      unrolled<T>([&](auto j) {
        const __m256 c = _mm256_mul_ps(d, xd8[j]);
        _mm256_store_ps(sc[i][j], c);
        // int4 group pairs: {s_g x4, s_g+1 x4} per pair of groups.
        if (kInt4)
          unrolled<kChunk / 2>([&](auto q) {
            const __m256i idx = _mm256_setr_epi32(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1);
            _mm256_store_ps(sc2[i][j][q], _mm256_permutevar8x32_ps(c, idx));
          });
      });
    });
    uint32_t gi = 0;
    if (kInt4) {
      // Two groups per step: the 32 bytes of groups g, g+1 give lo = their
      // elements 0..15 and hi = their elements 16..31, matched by x rearranged
      // the same way; the two maddubs results add without overflow
      // (2 * 2 * 15 * 127 < 2^15), and madd leaves group g in lanes 0..3 and
      // g+1 in lanes 4..7, scaled by sc2 = {s_g x4, s_g+1 x4}.
      const __m256i m4 = _mm256_set1_epi8(0x0f);
      for (; gi + 2 <= n; gi += 2) {
        const uint32_t g = g0 + gi;
        __m256i lo[R], hi[R];
        unrolled<R>([&](auto i) {
          if (T == 1) _mm_prefetch(reinterpret_cast<const char*>(wq[i] + g * bytes_per_group + R * row_bytes), _MM_HINT_T1);
          const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq[i] + g * (kGroup / 2)));
          lo[i] = _mm256_and_si256(b, m4);
          hi[i] = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
        });
        unrolled<T>([&](auto j) {
          const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[j] + g * kGroup));
          const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[j] + (g + 1) * kGroup));
          const __m256i xlo = _mm256_permute2x128_si256(x0, x1, 0x20);
          const __m256i xhi = _mm256_permute2x128_si256(x0, x1, 0x31);
          unrolled<R>([&](auto i) {
            const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[i], xlo), _mm256_maddubs_epi16(hi[i], xhi));
            const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[i][j] = _mm256_fmadd_ps(p, _mm256_load_ps(sc2[i][j][gi / 2]), acc[i][j]);
          });
        });
      }
    }
    for (; gi < n; ++gi) {
      const uint32_t g = g0 + gi;
      __m256i wv[R], aw[R];
      unrolled<R>([&](auto i) {
        // Decode streams the weights once: fetch the same column of the next
        // tile's rows (R rows ahead) into L2 so DRAM requests stay in flight.
        if (T == 1) _mm_prefetch(reinterpret_cast<const char*>(wq[i] + g * bytes_per_group + R * row_bytes), _MM_HINT_T1);
        if (kInt4) {
          wv[i] = load_q4(wq[i] + g * (kGroup / 2));
        } else {
          wv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq[i] + g * kGroup));
          aw[i] = _mm256_sign_epi8(wv[i], wv[i]);  // |w|; w != -128
        }
      });
      unrolled<T>([&](auto j) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[j] + g * kGroup));
        unrolled<R>([&](auto i) {
          const __m256i p16 = kInt4 ? _mm256_maddubs_epi16(wv[i], xv)
                                    : _mm256_maddubs_epi16(aw[i], _mm256_sign_epi8(xv, wv[i]));
          const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
          acc[i][j] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(&sc[i][j][gi]), acc[i][j]);
        });
      });
    }
  }
  unrolled<R>([&](auto i) {
    unrolled<T>([&](auto j) { y[(t + j) * y_stride + r + i] = hsum(acc[i][j]); });
  });
}


template <bool kInt4, int R>
void tile_tokens(const WeightMatrix& w, const ActRowsQ8& x, uint32_t nt, uint32_t r, uint32_t t,
                 float* y, size_t y_stride) {
  switch (nt) {
    case 1: tile<kInt4, R, 1>(w, x, r, t, y, y_stride); break;
    case 2: tile<kInt4, R, 2>(w, x, r, t, y, y_stride); break;
    case 3: tile<kInt4, R, 3>(w, x, r, t, y, y_stride); break;
    default: tile<kInt4, R, 4>(w, x, r, t, y, y_stride); break;
  }
}


// Prefill (n_tokens > 1): 2 rows x 4 tokens tiles over panels of rows. A
// panel's weights (~64 KB) stay in L2 while every token block passes over
// them, so each weight byte comes from DRAM once per call, not once per token
// block; the token blocks' activations stay in L1/L2 meanwhile.
template <bool kInt4>
void matmul_prefill(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                    uint32_t r1, float* y, size_t y_stride) {
  const size_t row_bytes = kInt4 ? w.cols / 2 : w.cols;
  uint32_t panel = uint32_t((size_t(64) << 10) / (row_bytes ? row_bytes : 1));
  panel = panel < 2 ? 2 : panel & ~1u;
  for (uint32_t p0 = r0; p0 < r1; p0 += panel) {
    const uint32_t p1 = r1 - p0 < panel ? r1 : p0 + panel;
    for (uint32_t t = 0; t < n_tokens; t += 4) {
      const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
      uint32_t r = p0;
      for (; r + 2 <= p1; r += 2) tile_tokens<kInt4, 2>(w, x, nt, r, t, y, y_stride);
      if (r < p1) tile_tokens<kInt4, 1>(w, x, nt, r, t, y, y_stride);
    }
  }
}

}  // namespace tiles
}  // namespace avx2
}  // namespace tern
