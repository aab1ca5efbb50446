// AVX-VNNI matrix products for kInt4G32 and kInt5G32 weights with vpdpbusd,
// decode (one token) and prefill; int8 weights run the AVX2 kernels, which
// this table reuses.
//
// Why only int4 and int5: they are the compute-bound cases. With AVX2 a pair of int4
// groups (32 weight bytes) costs ~15 vector ops per row and token (nibbles to
// four i16 vectors, 4 vpmaddwd against x16 = 254 q + r, adds, scaling); int8
// decode is bound by DRAM bandwidth already (AVX2 reaches ~97% of it), and
// vpdpbusd saves only one op of five per int8 group. Here the int4 pair costs
// ~11:
//   x16 = 254 q + r (exact, |x16| <= 32385) is split into bytes
//   x16 = 256 h + l,   h = x16 >> 8 in [-127, 126] (s8),  l = x16 & 255 (u8),
// so with nibbles w in 0..15
//   sum w x16 = 256 sum(w h) + sum(l w)
// = dpbusd(dpbusd(256 * dpbusd(dpbusd(0, w_lo, h_A), w_hi, h_B), l_A, w_lo), l_B, w_hi)
// (vpdpbusd is u8 x s8: w is the unsigned operand against h, and the signed
// one, 0..15, against the unsigned l). Each int32 lane holds the products of 4
// elements of each nibble half: |sum w h| <= 8 * 15 * 128, so 256 * that plus
// sum l w (<= 8 * 255 * 15) stays below 2^22: exact in int32 and exact when
// converted to float. The four lanes of a group add up to the reference's
//   isum = 254 sum(w q) + sum(w r)
// exactly.
//
// kInt5G32 is the same code with the high-bit plane OR'ed into w_lo / w_hi
// (avx2::tiles::high_bits_int5: 16 or 0 per byte, in the nibble bytes'
// order), so w = q5 in 0..31. Still exact: q5 <= 31 fits both operand types
// of vpdpbusd (u8 against h; s8, <= 127, against the unsigned l), and per
// int32 lane |sum w h| <= 8 * 31 * 127 = 31496 (h in [-127, 126]), so
// 256 * 31496 + 8 * 255 * 31 = 8126216 < 2^23: exact in int32 (the shifted
// partial and every dpbusd step included) and exact when converted to float.
// The unpack costs 9 more ops per pair of groups and row (7 for the high
// bits, 2 ORs) on top of int4's ~11.
//
// The float side (combined scales, the m * x.s term, 8-lane FMA
// accumulators, decode 4 rows x 1 token, prefill 2 rows x 4 tokens over
// panels) is the AVX2 kernels' (kernels/avx2/matmul_q8_tiles_avx2.h).
#include "kernels/avx2/matmul_q8_tiles_avx2.h"
#include "kernels/avxvnni/kernels_avxvnni.h"

namespace tern {
namespace TERN_AVXVNNI_NS {

namespace {

using namespace avx2::tiles;

// Per pair of groups (g, g+1) four ymm of bytes, each {group g | group g+1}:
//   h_A = h of elements 0..15, h_B = h of 16..31, l_A, l_B likewise,
// matching the int4 layout (byte k of a group: element k low nibble, k+16
// high). An odd last group pairs with zeros. n groups from q, r; 64 bytes per
// group, the size of X16Decode's slice.
inline void build_hl_int4(const int8_t* q, const int8_t* r, uint32_t n, int16_t* out16) {
  const __m256i byte_mask = _mm256_set1_epi16(0x00ff);
  // h and l of one group, elements 0..31 in order.
  auto split = [&](uint32_t i, __m256i* h, __m256i* l) {
    const avx2::tiles::Wide16 v = load_wide16(q + i * kGroup, r + i * kGroup);  // 0..15, 16..31
    // packs/packus interleave 128-bit lanes: [0..7 16..23 | 8..15 24..31].
    const __m256i hp = _mm256_packs_epi16(_mm256_srai_epi16(v.lo, 8), _mm256_srai_epi16(v.hi, 8));
    const __m256i lp = _mm256_packus_epi16(_mm256_and_si256(v.lo, byte_mask), _mm256_and_si256(v.hi, byte_mask));
    *h = _mm256_permute4x64_epi64(hp, 0xd8);
    *l = _mm256_permute4x64_epi64(lp, 0xd8);
  };
  __m256i* dst = reinterpret_cast<__m256i*>(out16);
  for (uint32_t i = 0; i < n; i += 2) {
    __m256i h0, l0, h1 = _mm256_setzero_si256(), l1 = h1;
    split(i, &h0, &l0);
    if (i + 1 < n) split(i + 1, &h1, &l1);
    dst[2 * i + 0] = _mm256_permute2x128_si256(h0, h1, 0x20);
    dst[2 * i + 1] = _mm256_permute2x128_si256(h0, h1, 0x31);
    dst[2 * i + 2] = _mm256_permute2x128_si256(l0, l1, 0x20);
    dst[2 * i + 3] = _mm256_permute2x128_si256(l0, l1, 0x31);
  }
}

// Rows [r, r+R), groups [gb, ge) of the slice `xs` (built from gb by
// build_hl_int4). y[r+i] = partial (accumulate: y[r+i] += partial). Scales,
// the m * x.s term and the slice folds as in the AVX2 decode_int4 (one float
// order with the tiles: the lanes of dot_hl hold the elements of the AVX2
// dot_int4's lanes, 4k..4k+3 and 16+4k..19+4k of each group). kInt5: q5 weights, the
// high-bit plane a third stream per row (prefetched like the nibbles).
template <bool kInt5, int R>
void decode_int4(const WeightMatrix& w, const ActRowsQ8& x, const X16Decode& xs, uint32_t gb,
                 uint32_t ge, uint32_t r, float* y, bool accumulate) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = w.cols / 2;
  const size_t row_high = w.cols / 8;
  const size_t tiles_ahead = decode_tiles_ahead(R * (kInt5 ? row_bytes + row_high : row_bytes));
  const size_t ahead = tiles_ahead * R * row_bytes;
  const size_t ahead_high = tiles_ahead * R * row_high;
  const size_t row_scales = 2 * groups;
  const uint8_t* wq[R];
  const uint8_t* wh[R];
  const uint16_t* ws[R];
  unrolled<R>([&](auto i) {
    wq[i] = static_cast<const uint8_t*>(w.data) + (r + i) * row_bytes;
    wh[i] = kInt5 ? int5_high_bits(w) + (r + i) * row_high : nullptr;
    ws[i] = w.scales + (r + i) * row_scales;
  });
  const __m256i nib = _mm256_set1_epi8(0x0f);
  __m256 acc[R];
  unrolled<R>([&](auto i) { acc[i] = _mm256_setzero_ps(); });
  DecodeFold<R> fold(y + r, accumulate);

  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    fold.at_chunk(g0, gb, acc);
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    __m256 c[R];  // d_w[g] * x.d[g] for the chunk's 8 groups (0 past n)
    decode_chunk_start<R, kInt5>(ws, wh, x, g0, n, tiles_ahead * R * row_scales, ahead_high, acc, c);
    const __m256i* xv = reinterpret_cast<const __m256i*>(xs.v + (g0 - gb) * kGroup);
    __m256i pair_idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);  // {c[g] x4, c[g+1] x4}
    const __m256i two = _mm256_set1_epi32(2);
    for (uint32_t gi = 0; gi < n; gi += 2) {
      const uint32_t g = g0 + gi;
      const bool full = gi + 2 <= n;  // else an odd last group, paired with zeros
      const __m256i h_a = _mm256_load_si256(xv + 2 * gi);
      const __m256i h_b = _mm256_load_si256(xv + 2 * gi + 1);
      const __m256i l_a = _mm256_load_si256(xv + 2 * gi + 2);
      const __m256i l_b = _mm256_load_si256(xv + 2 * gi + 3);
      unrolled<R>([&](auto i) {
        const uint8_t* p = wq[i] + g * (kGroup / 2);
        // The same column of the next tile's rows, into L2 (as in AVX2).
        _mm_prefetch(reinterpret_cast<const char*>(p + ahead), _MM_HINT_T1);
        const __m256i bytes = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                   : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        __m256i w_lo = _mm256_and_si256(bytes, nib);                         // elements 0..15
        __m256i w_hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nib);   // elements 16..31
        if constexpr (kInt5) {
          __m256i hb_lo, hb_hi;
          high_bits_int5(wh[i] + g * (kGroup / 8), full, &hb_lo, &hb_hi);
          w_lo = _mm256_or_si256(w_lo, hb_lo);
          w_hi = _mm256_or_si256(w_hi, hb_hi);
        }
        const __m256i wh = dpbusd(dpbusd(_mm256_setzero_si256(), w_lo, h_a), w_hi, h_b);
        const __m256i s32 = dpbusd(dpbusd(_mm256_slli_epi32(wh, 8), l_a, w_lo), l_b, w_hi);
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_permutevar8x32_ps(c[i], pair_idx), acc[i]);
      });
      pair_idx = _mm256_add_epi32(pair_idx, two);
    }
  }
  fold.fold(acc);
  unrolled<R>([&](auto i) { y[r + i] = fold.y[i]; });
}

template <bool kInt5>
void decode_q4q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t r0, uint32_t r1, float* y) {
  const uint32_t groups = w.cols / kGroup;
  X16Decode xs;  // 64 bytes per group: h_A h_B l_A l_B per pair
  for (uint32_t gb = 0; gb < groups; gb += kDecodeSliceGroups) {
    const uint32_t ge = groups - gb < kDecodeSliceGroups ? groups : gb + kDecodeSliceGroups;
    build_hl_int4(x.q + gb * kGroup, x.r + gb * kGroup, ge - gb, xs.v);
    const bool accumulate = gb > 0;
    uint32_t r = r0;
    for (; r + 4 <= r1; r += 4) decode_int4<kInt5, 4>(w, x, xs, gb, ge, r, y, accumulate);
    for (; r < r1; ++r) decode_int4<kInt5, 1>(w, x, xs, gb, ge, r, y, accumulate);
  }
}

// The int4 hl product of one pair of groups: w_lo/w_hi the pair's nibbles
// (elements 0..15 / 16..31 of each group), xv its h_A h_B l_A l_B.
inline __m256i dot_hl(__m256i w_lo, __m256i w_hi, const __m256i* xv) {
  const __m256i wh = dpbusd(dpbusd(_mm256_setzero_si256(), w_lo, _mm256_load_si256(xv)), w_hi, _mm256_load_si256(xv + 1));
  return dpbusd(dpbusd(_mm256_slli_epi32(wh, 8), _mm256_load_si256(xv + 2), w_lo), _mm256_load_si256(xv + 3), w_hi);
}

// One R x T prefill tile (rows [r, r+R), tokens [t, t+T), groups [gb, ge) of
// the slices in xb, built from gb by build_hl_int4): the AVX2 tile<true, R, T>
// with dot_hl for the integer part. y = partial (accumulate: y += partial).
// kInt5: q5 weights (high-bit plane OR'ed in, as in decode).
template <bool kInt5, int R, int T>
void tile_int4(const WeightMatrix& w, const ActRowsQ8& x, const X16Prefill& xb, uint32_t gb,
               uint32_t ge, uint32_t r, uint32_t t, float* y, size_t y_stride, bool accumulate) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = w.cols / 2;
  const size_t row_scales = 2 * groups;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const uint8_t* wq[R];
  const uint8_t* wh[R];
  const uint16_t* ws[R];
  unrolled<R>([&](auto i) {
    wq[i] = static_cast<const uint8_t*>(w.data) + (r + i) * row_bytes;
    wh[i] = kInt5 ? int5_high_bits(w) + (r + i) * (w.cols / 8) : nullptr;
    ws[i] = w.scales + (r + i) * row_scales;
  });
  const float* xd[T];
  const float* xs[T];
  unrolled<T>([&](auto j) {
    xd[j] = x.d + size_t(t + j) * groups;
    xs[j] = x.s + size_t(t + j) * groups;
  });
  __m256 acc[R][T];
  unrolled<R>([&](auto i) { unrolled<T>([&](auto j) { acc[i][j] = _mm256_setzero_ps(); }); });

  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    // Combined scales d_w * x.d, [R][T][4 pairs][8] = {s_g x4, s_g+1 x4}.
    alignas(32) float sc[R][T][kChunk / 2][kChunk];
    const __m256i mask = lane_mask(n);
    __m256 xd8[T];
    unrolled<T>([&](auto j) { xd8[j] = load_partial(xd[j] + g0, n, mask); });
    unrolled<R>([&](auto i) {
      __m256 d, m;
      load_scales_int4(ws[i] + 2 * g0, n, mask, &d, &m);
      unrolled<T>([&](auto j) {
        acc[i][j] = _mm256_fmadd_ps(m, load_partial(xs[j] + g0, n, mask), acc[i][j]);
        const __m256 c = _mm256_mul_ps(d, xd8[j]);
        unrolled<kChunk / 2>([&](auto q) {
          const __m256i idx = _mm256_setr_epi32(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1);
          _mm256_store_ps(sc[i][j][q], _mm256_permutevar8x32_ps(c, idx));
        });
      });
    });
    const uint32_t off = (g0 - gb) * kGroup;  // this chunk in the slice
    for (uint32_t gi = 0; gi < n; gi += 2) {
      __m256i w_lo[R], w_hi[R];
      unrolled<R>([&](auto i) {
        const uint8_t* p = wq[i] + (g0 + gi) * (kGroup / 2);
        const __m256i bytes = gi + 2 <= n ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                          : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        w_lo[i] = _mm256_and_si256(bytes, nib);
        w_hi[i] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nib);
        if constexpr (kInt5) {
          __m256i hb_lo, hb_hi;
          high_bits_int5(wh[i] + (g0 + gi) * (kGroup / 8), gi + 2 <= n, &hb_lo, &hb_hi);
          w_lo[i] = _mm256_or_si256(w_lo[i], hb_lo);
          w_hi[i] = _mm256_or_si256(w_hi[i], hb_hi);
        }
      });
      unrolled<T>([&](auto j) {
        const __m256i* xv = reinterpret_cast<const __m256i*>(xb.v[j] + off + gi * kGroup);
        unrolled<R>([&](auto i) {
          const __m256 p = _mm256_cvtepi32_ps(dot_hl(w_lo[i], w_hi[i], xv));
          acc[i][j] = _mm256_fmadd_ps(p, _mm256_load_ps(sc[i][j][gi / 2]), acc[i][j]);
        });
      });
    }
  }
  unrolled<R>([&](auto i) {
    unrolled<T>([&](auto j) {
      float* out = &y[(t + j) * y_stride + r + i];
      const float v = avx2::hsum(acc[i][j]);
      *out = accumulate ? *out + v : v;
    });
  });
}

template <bool kInt5, int R>
void tile_int4_tokens(const WeightMatrix& w, const ActRowsQ8& x, const X16Prefill& xb, uint32_t gb,
                      uint32_t ge, uint32_t nt, uint32_t r, uint32_t t, float* y, size_t y_stride,
                      bool accumulate) {
  switch (nt) {
    case 1: tile_int4<kInt5, R, 1>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
    case 2: tile_int4<kInt5, R, 2>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
    case 3: tile_int4<kInt5, R, 3>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
    default: tile_int4<kInt5, R, 4>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
  }
}

// Prefill, the loop structure of the AVX2 matmul_prefill: panels of ~64 KB of
// weights stay in L2 while every block of 4 tokens passes over them.
template <bool kInt5>
void prefill_q4q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                  uint32_t r1, float* y, size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = kInt5 ? w.cols / 2 + w.cols / 8 : w.cols / 2;
  uint32_t panel = uint32_t((size_t(64) << 10) / (row_bytes ? row_bytes : 1));
  panel = panel < 2 ? 2 : panel & ~1u;
  X16Prefill xb;
  for (uint32_t p0 = r0; p0 < r1; p0 += panel) {
    const uint32_t p1 = r1 - p0 < panel ? r1 : p0 + panel;
    for (uint32_t t = 0; t < n_tokens; t += 4) {
      const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
      for (uint32_t gb = 0; gb < groups; gb += kPrefillSliceGroups) {
        const uint32_t ge = groups - gb < kPrefillSliceGroups ? groups : gb + kPrefillSliceGroups;
        for (uint32_t j = 0; j < nt; ++j)
          build_hl_int4(x.q + size_t(t + j) * x.cols + gb * kGroup, x.r + size_t(t + j) * x.cols + gb * kGroup,
                        ge - gb, xb.v[j]);
        uint32_t r = p0;
        for (; r + 2 <= p1; r += 2) tile_int4_tokens<kInt5, 2>(w, x, xb, gb, ge, nt, r, t, y, y_stride, gb > 0);
        if (r < p1) tile_int4_tokens<kInt5, 1>(w, x, xb, gb, ge, nt, r, t, y, y_stride, gb > 0);
      }
    }
  }
}

}  // namespace

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  const ActRowsQ8& x = in.q8;
  if (n_tokens == 1)
    decode_q4q8<false>(w, x, r0, r1, y);
  else if (n_tokens >= avx2::kUnpackMinTokens)
    avx2::prefill_u4g32_unpacked(w, x, n_tokens, r0, r1, y, y_stride);
  else
    prefill_q4q8<false>(w, x, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  const ActRowsQ8& x = in.q8;
  if (n_tokens == 1)
    decode_q4q8<true>(w, x, r0, r1, y);
  else if (n_tokens >= avx2::kUnpackMinTokens)
    avx2::prefill_u5g32_unpacked(w, x, n_tokens, r0, r1, y, y_stride);
  else
    prefill_q4q8<true>(w, x, n_tokens, r0, r1, y, y_stride);
}

}  // namespace TERN_AVXVNNI_NS
}  // namespace tern
