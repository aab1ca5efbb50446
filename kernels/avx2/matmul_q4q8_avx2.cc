// AVX2 matmul, kInt4G32 and kInt5G32 weights x two-plane int8 activations;
// two groups share one 256-bit step, the nibbles (int5: with the high bit
// OR'ed in, see high_bits_int5) as i16 against x16 = 254 q + r with
// madd_epi16 (kernels/avx2/matmul_q8_tiles_avx2.h). Decode has its own
// bandwidth-oriented 4-row kernel below; prefill uses the 2-row x 4-token
// tiles of the header; all in the header's one float order. int5 is the int4 code instantiated with kInt5, so the
// int4 instantiation is unchanged. int5 bounds: a lane adds 8 products
// |q5 * x16| <= 31 * 32385, 8 * 31 * 32385 = 8031480 < 2^23: exact in int32
// and exact when converted to float.
#include "kernels/avx2/matmul_q8_tiles_avx2.h"

namespace tern {
namespace avx2 {

namespace {

using namespace tiles;

// Decode (one token) with int4 weights, R rows at a time, rows [r, r+R) and
// groups [gb, ge) of the x16 slice `xs` (built by build_x16_int4 from gb).
// Per pair of groups and row: the pair's 32 bytes read as 16-bit words give
// the nibbles as four i16 vectors (two and/shift each), multiplied by the
// matching x16 = 254 q + r with madd_epi16: 8 lanes of 8 products each,
// |.| <= 8 * 15 * 32385 < 2^24, exact; group g in lanes 0..3, g+1 in 4..7.
// Per chunk of 8 groups a row needs only its f16 {d, m} converted once; the
// chunk's m * x.s terms go first (lane k: group k), then the pairs, with the
// per-pair scales permuted out of one register: the fused prefill tile's
// float steps, folded at its slices (the one float order of
// matmul_q8_tiles_avx2.h). y[r+i] = partial (accumulate: y[r+i] += partial).
// kInt5: the rows' high-bit planes too (4 bytes per group, a third stream per
// row, prefetched as far ahead as the nibbles).
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
  __m256 acc[R];
  unrolled<R>([&](auto i) { acc[i] = _mm256_setzero_ps(); });
  DecodeFold<R> fold(y + r, accumulate);

  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    fold.at_chunk(g0, gb, acc);
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    __m256 c[R];  // d_w[g] * x.d[g] for the chunk's 8 groups (0 past n)
    decode_chunk_start<R, kInt5>(ws, wh, x, g0, n, tiles_ahead * R * row_scales, ahead_high, acc, c);
    const __m256i* xv = reinterpret_cast<const __m256i*>(xs.v + (g0 - gb) * kGroup);
    // One pair of groups, all R rows: gi = pair's first group in the chunk.
    auto pair = [&](uint32_t gi, bool full, __m256i idx, bool prefetch) __attribute__((always_inline)) {
      const uint32_t g = g0 + gi;
      const __m256i x0 = _mm256_load_si256(xv + 2 * gi);
      const __m256i x1 = _mm256_load_si256(xv + 2 * gi + 1);
      const __m256i x2 = _mm256_load_si256(xv + 2 * gi + 2);
      const __m256i x3 = _mm256_load_si256(xv + 2 * gi + 3);
      unrolled<R>([&](auto i) {
        const uint8_t* p = wq[i] + g * (kGroup / 2);
        // Weights kDecodePrefetchBytes ahead, into L2: keeps DRAM requests in
        // flight ahead of the loads (measured better than T0, which evicts
        // from the 32 KB L1 before use).
        if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(p + ahead), _MM_HINT_T1);
        __m256i w16[4];
        if constexpr (kInt5)
          load_w16_int5(p, wh[i] + g * (kGroup / 8), full, w16);
        else
          load_w16_int4(p, full, w16);
        const __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(w16[0], x0), _mm256_madd_epi16(w16[1], x1)),
                                             _mm256_add_epi32(_mm256_madd_epi16(w16[2], x2), _mm256_madd_epi16(w16[3], x3)));
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_permutevar8x32_ps(c[i], idx), acc[i]);
      });
    };
    if (n == kChunk) {
      // Whole chunk: four pairs unrolled, so the scale permutes use constant
      // indices and one prefetch per row covers two pairs (a 64-byte line).
      unrolled<kChunk / 2>([&](auto q) {
        constexpr int a = 2 * q, b = 2 * q + 1;
        pair(2 * q, true, _mm256_setr_epi32(a, a, a, a, b, b, b, b), q % 2 == 0);
      });
    } else {
      __m256i pair_idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);  // {c[g] x4, c[g+1] x4}
      const __m256i two = _mm256_set1_epi32(2);
      for (uint32_t gi = 0; gi < n; gi += 2) {
        pair(gi, gi + 2 <= n, pair_idx, true);  // an odd last group pairs with zeros
        pair_idx = _mm256_add_epi32(pair_idx, two);
      }
    }
  }
  fold.fold(acc);
  unrolled<R>([&](auto i) { y[r + i] = fold.y[i]; });
}

// Both products: kInt5 selects the high-bit plane.
template <bool kInt5>
void matmul_q4q5(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                 uint32_t r1, float* y, size_t y_stride) {
  const ActRowsQ8& x = in.q8;
  if (n_tokens >= kUnpackMinTokens) {
    if (kInt5) prefill_u5g32_unpacked(w, x, n_tokens, r0, r1, y, y_stride);
    else prefill_u4g32_unpacked(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  if (n_tokens > 1) {
    matmul_prefill<true, kInt5>(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  const uint32_t groups = w.cols / kGroup;
  X16Decode xs;
  for (uint32_t gb = 0; gb < groups; gb += kDecodeSliceGroups) {
    const uint32_t ge = groups - gb < kDecodeSliceGroups ? groups : gb + kDecodeSliceGroups;
    build_x16_int4(x.q + gb * kGroup, x.r + gb * kGroup, ge - gb, xs.v);
    const bool accumulate = gb > 0;
    uint32_t r = r0;
    for (; r + 4 <= r1; r += 4) decode_int4<kInt5, 4>(w, x, xs, gb, ge, r, y, accumulate);
    for (; r < r1; ++r) decode_int4<kInt5, 1>(w, x, xs, gb, ge, r, y, accumulate);
  }
}

}  // namespace

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  matmul_q4q5<false>(w, in, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  matmul_q4q5<true>(w, in, n_tokens, r0, r1, y, y_stride);
}

}  // namespace avx2
}  // namespace tern
