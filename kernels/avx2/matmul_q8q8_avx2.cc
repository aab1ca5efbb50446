// AVX2 matmul, kInt8G32 weights x two-plane int8 activations.
// Decode: 4-row x 1-token tiles against x16 = 254 q + r built once per call
// (kernels/avx2/matmul_q8_tiles_avx2.h), the weights sign-extended to i16 and
// multiplied by madd_epi16; prefill: 2-row x 4-token tiles. Both in the one
// float order of the header (decode folds at the prefill's slices).
#include "kernels/avx2/matmul_q8_tiles_avx2.h"

namespace tern {
namespace avx2 {

namespace {

using namespace tiles;

// Rows [r, r+R), groups [gb, ge) of the slice `xs` (which starts at gb).
// y[r+i] = partial (accumulate: y[r+i] += partial). Per group and row:
// i32 = madd(w[0..15], x16[0..15]) + madd(w[16..31], x16[16..31]), 8 lanes of
// 4 products each, |.| <= 4 * 127 * 32385 < 2^24: exact in int32 and float.
template <int R>
void decode_int8(const WeightMatrix& w, const ActRowsQ8& x, const X16Decode& xs, uint32_t gb,
                 uint32_t ge, uint32_t r, float* y, bool accumulate) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = w.cols;
  const size_t tiles_ahead = decode_tiles_ahead(R * row_bytes);
  const size_t ahead = tiles_ahead * R * row_bytes;
  const int8_t* wq[R];
  const uint16_t* ws[R];
  unrolled<R>([&](auto i) {
    wq[i] = static_cast<const int8_t*>(w.data) + (r + i) * row_bytes;
    ws[i] = w.scales + (r + i) * groups;
  });
  __m256 acc[R];
  unrolled<R>([&](auto i) { acc[i] = _mm256_setzero_ps(); });
  DecodeFold<R> fold(y + r, accumulate);  // the prefill tiles' slices: one float order
  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    fold.at_chunk(g0, gb, acc);
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    const __m256i mask = lane_mask(n);
    const __m256 xd8 = load_partial(x.d + g0, n, mask);
    alignas(32) float sc[R][kChunk];  // d_w[g] * x.d[g]
    unrolled<R>([&](auto i) {
      _mm_prefetch(reinterpret_cast<const char*>(ws[i] + g0 + tiles_ahead * R * groups), _MM_HINT_T1);
      _mm256_store_ps(sc[i], _mm256_mul_ps(load_scales_int8(ws[i] + g0, n), xd8));
    });
    const __m256i* xv = reinterpret_cast<const __m256i*>(xs.v + (g0 - gb) * kGroup);
    for (uint32_t gi = 0; gi < n; ++gi) {
      const __m256i x_lo = _mm256_load_si256(xv + 2 * gi);
      const __m256i x_hi = _mm256_load_si256(xv + 2 * gi + 1);
      unrolled<R>([&](auto i) {
        const int8_t* p = wq[i] + (g0 + gi) * kGroup;
        // Weights kDecodePrefetchBytes ahead, into L2: keeps DRAM requests in
        // flight ahead of the loads.
        _mm_prefetch(reinterpret_cast<const char*>(p + ahead), _MM_HINT_T1);
        __m256i w16[2];
        load_w16_int8(p, w16);
        const __m256i s32 = _mm256_add_epi32(_mm256_madd_epi16(w16[0], x_lo), _mm256_madd_epi16(w16[1], x_hi));
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_broadcast_ss(&sc[i][gi]), acc[i]);
      });
    }
  }
  fold.fold(acc);
  unrolled<R>([&](auto i) { y[r + i] = fold.y[i]; });
}

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  const ActRowsQ8& x = in.q8;
  if (n_tokens > 1) {
    matmul_prefill<false>(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  const uint32_t groups = w.cols / kGroup;
  X16Decode xs;
  for (uint32_t gb = 0; gb < groups; gb += kDecodeSliceGroups) {
    const uint32_t ge = groups - gb < kDecodeSliceGroups ? groups : gb + kDecodeSliceGroups;
    build_x16_int8(x.q + gb * kGroup, x.r + gb * kGroup, ge - gb, xs.v);
    const bool accumulate = gb > 0;
    uint32_t r = r0;
    for (; r + 4 <= r1; r += 4) decode_int8<4>(w, x, xs, gb, ge, r, y, accumulate);
    for (; r < r1; ++r) decode_int8<1>(w, x, xs, gb, ge, r, y, accumulate);
  }
}

}  // namespace avx2
}  // namespace tern
