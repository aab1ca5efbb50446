// Prefill (n_tokens >= kUnpackMinTokens) of kInt4G32 and kInt5G32 weights by
// unpacking once per panel: the AVX2 and AVX-VNNI tables both call these.
//
// The fused int4 / int5 tiles (matmul_q8_tiles_avx2.h, matmul_q4q8_avxvnni.cc)
// unpack a pair of groups (nibbles, int5: plus the high-bit plane, 16 ops per
// pair and row) for every block of 4 tokens: 16 times per 64-token chunk. Here
// each panel of weight rows x slice of groups is unpacked once into a stack
// buffer, and a tile runs over it for every token of the call, reading each
// vector of the unpack with one vpmovsxbw: the unpack costs 1/n_tokens per
// weight instead of 1/4, and the scales are converted once per panel.
//
// Batch invariance: the buffer holds the fused tiles' own i16 vectors
// (load_w16_int4 / load_w16_int5) narrowed to int8 (values 0..31 are exact in
// int8), and the tile takes the fused tiles' float steps in their order (the
// one float order at the top of matmul_q8_tiles_avx2.h): per chunk the m *
// x.s FMA, then per pair one FMA of the exact int32 lanes times d_w * x.d
// (each lane's product computed as the fused tile computes it, one float
// multiply), per slice one horizontal sum into y. So a token's outputs are
// the same bits as in decode and in the fused tiles. The values stay
// unsigned, every integer partial and the m * x.s term the reference's own.
// Bounds per int32 lane of a pair: 8 products |q * x16| with q <= 31, |x16|
// <= 32385: 8 * 31 * 32385 = 8031480 < 2^23, exact in int32 and in float.
//
// Sizes: a panel is kUnpackBytes (rows x slice: values, expanded d, m),
// unpacked from DRAM once and then read from L1/L2 by every 4-token block; a
// block's x16 and expanded x.d / x.s (4 tokens x slice, ~21 KB) stay in L1.
#include "kernels/avx2/matmul_q8_tiles_avx2.h"

namespace tern {
namespace avx2 {

namespace {

using namespace tiles;

constexpr size_t kUnpackBytes = size_t(32) << 10;
constexpr uint32_t kSlicePairs = kPrefillSliceGroups / 2;
constexpr uint32_t kSliceChunks = kPrefillSliceGroups / kChunk;
constexpr uint32_t kChunkPairs = kChunk / 2;

struct UnpackedPanel {
  alignas(32) int8_t v[kUnpackBytes];
};

// A panel row: the slice's pairs of groups (64 bytes of int8 values each:
// the four i16 vectors of the fused tile, 16 bytes each), then per pair the
// weights' d expanded to the pair's lanes ({d_g x4, d_g+1 x4}, floats), then
// per chunk the 8 groups' m (floats); zeros past the slice's groups.
struct RowLayout {
  size_t stride;  // bytes between rows (a multiple of 32)
  size_t d_off;   // bytes to the expanded d
  size_t m_off;   // bytes to the m
};
inline RowLayout row_layout(uint32_t slice) {
  const size_t pairs = (slice + 1) / 2, chunks = (slice + kChunk - 1) / kChunk;
  const size_t q = pairs * 2 * kGroup, d = pairs * kChunk * sizeof(float);
  return RowLayout{q + d + chunks * kChunk * sizeof(float), q, q + d};
}

// {v[2q] x4, v[2q+1] x4}: a chunk's per-group vector spread to pair q's lanes.
template <int Q>
inline __m256 pair_lanes(__m256 v) {
  return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(2 * Q, 2 * Q, 2 * Q, 2 * Q, 2 * Q + 1, 2 * Q + 1, 2 * Q + 1, 2 * Q + 1));
}

// Groups [gb, ge) of row r into dst (layout above).
template <bool kInt5>
inline void unpack_row(const WeightMatrix& w, uint32_t r, uint32_t gb, uint32_t ge, const RowLayout& lay,
                       int8_t* dst) {
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + size_t(r) * (w.cols / 2);
  const uint8_t* h = kInt5 ? int5_high_bits(w) + size_t(r) * (w.cols / 8) : nullptr;
  for (uint32_t g = gb; g < ge; g += 2) {
    const bool pair = g + 2 <= ge;
    __m256i w16[4];
    if constexpr (kInt5)
      load_w16_int5(p + g * (kGroup / 2), h + g * (kGroup / 8), pair, w16);
    else
      load_w16_int4(p + g * (kGroup / 2), pair, w16);
    // packs interleaves 128-bit lanes ({a.lo b.lo | a.hi b.hi}); 0xd8 gives {a | b}.
    __m256i* out = reinterpret_cast<__m256i*>(dst + (g - gb) * kGroup);
    out[0] = _mm256_permute4x64_epi64(_mm256_packs_epi16(w16[0], w16[1]), 0xd8);
    out[1] = _mm256_permute4x64_epi64(_mm256_packs_epi16(w16[2], w16[3]), 0xd8);
  }
  const uint16_t* ws = w.scales + size_t(r) * 2 * (w.cols / kGroup);
  float* d = reinterpret_cast<float*>(dst + lay.d_off);
  float* m = reinterpret_cast<float*>(dst + lay.m_off);
  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    __m256 dv, mv;  // zero past n
    load_scales_int4(ws + 2 * g0, n, lane_mask(n), &dv, &mv);
    _mm256_store_ps(m + (g0 - gb), mv);
    float* dp = d + (g0 - gb) / 2 * kChunk;
    unrolled<kChunkPairs>([&](auto q) {
      if (2 * q < n) _mm256_store_ps(dp + q * kChunk, pair_lanes<q>(dv));
    });
  }
}

// One block of up to 4 tokens over a slice: x16 in the int4 layout, x.d
// expanded per pair as the weights' d is, and x.s per chunk (zeros past the
// slice's groups, as load_partial gives the fused tiles).
struct XBlock {
  X16Prefill x16;
  alignas(32) float d[4][kSlicePairs][kChunk];
  alignas(32) float s[4][kSliceChunks][kChunk];
};

inline void build_block(const ActRowsQ8& x, uint32_t groups, uint32_t t, uint32_t nt, uint32_t gb, uint32_t ge,
                        XBlock* xb) {
  for (uint32_t j = 0; j < nt; ++j) {
    const size_t tok = t + j;
    build_x16_int4(x.q + tok * x.cols + gb * kGroup, x.r + tok * x.cols + gb * kGroup, ge - gb, xb->x16.v[j]);
    for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
      const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
      const __m256i mask = lane_mask(n);
      const uint32_t c = (g0 - gb) / kChunk;
      const __m256 xd8 = load_partial(x.d + tok * groups + g0, n, mask);
      _mm256_store_ps(xb->s[j][c], load_partial(x.s + tok * groups + g0, n, mask));
      unrolled<kChunkPairs>([&](auto q) { _mm256_store_ps(xb->d[j][c * kChunkPairs + q], pair_lanes<q>(xd8)); });
    }
  }
}

// One R x T tile: rows [r, r+R) (their panel rows at wb, lay.stride bytes
// apart), tokens [t, t+T), the slice's ng groups. y = partial (accumulate:
// y += partial). The fused tile's float steps (top of the file).
template <int R, int T>
void tile_unpacked(const int8_t* wb, const RowLayout& lay, const XBlock& xb, uint32_t ng, uint32_t r,
                   uint32_t t, float* y, size_t y_stride, bool accumulate) {
  __m256 acc[R][T];
  unrolled<R>([&](auto i) { unrolled<T>([&](auto j) { acc[i][j] = _mm256_setzero_ps(); }); });
  const uint32_t pairs = (ng + 1) / 2;
  for (uint32_t c = 0; c * kChunk < ng; ++c) {
    unrolled<R>([&](auto i) {
      const __m256 m = _mm256_load_ps(reinterpret_cast<const float*>(wb + i * lay.stride + lay.m_off) + c * kChunk);
      unrolled<T>([&](auto j) { acc[i][j] = _mm256_fmadd_ps(m, _mm256_load_ps(xb.s[j][c]), acc[i][j]); });
    });
    const uint32_t pe = pairs - c * kChunkPairs < kChunkPairs ? pairs : (c + 1) * kChunkPairs;
    for (uint32_t pi = c * kChunkPairs; pi < pe; ++pi) {
      // Row by row, so only one row's four weight vectors are live beside
      // the 8 accumulators (all of them at once spilled).
      unrolled<R>([&](auto i) {
        const int8_t* wq = wb + i * lay.stride + size_t(pi) * 2 * kGroup;
        __m256i w16[4];
        unrolled<4>([&](auto k) {
          w16[k] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(wq + 16 * k)));
        });
        const __m256 d = _mm256_load_ps(reinterpret_cast<const float*>(wb + i * lay.stride + lay.d_off) + pi * kChunk);
        unrolled<T>([&](auto j) {
          const __m256i* xv = reinterpret_cast<const __m256i*>(xb.x16.v[j] + size_t(pi) * 2 * kGroup);
          const __m256 p = _mm256_cvtepi32_ps(dot_int4(w16, xv));
          acc[i][j] = _mm256_fmadd_ps(p, _mm256_mul_ps(d, _mm256_load_ps(xb.d[j][pi])), acc[i][j]);
        });
      });
    }
  }
  unrolled<R>([&](auto i) {
    unrolled<T>([&](auto j) {
      float* out = &y[(t + j) * y_stride + r + i];
      const float v = hsum(acc[i][j]);
      *out = accumulate ? *out + v : v;
    });
  });
}

template <int R>
void tile_unpacked_tokens(const int8_t* wb, const RowLayout& lay, const XBlock& xb, uint32_t ng, uint32_t nt,
                          uint32_t r, uint32_t t, float* y, size_t y_stride, bool accumulate) {
  switch (nt) {
    case 1: tile_unpacked<R, 1>(wb, lay, xb, ng, r, t, y, y_stride, accumulate); break;
    case 2: tile_unpacked<R, 2>(wb, lay, xb, ng, r, t, y, y_stride, accumulate); break;
    case 3: tile_unpacked<R, 3>(wb, lay, xb, ng, r, t, y, y_stride, accumulate); break;
    default: tile_unpacked<R, 4>(wb, lay, xb, ng, r, t, y, y_stride, accumulate); break;
  }
}

// Panels of rows x slices of kPrefillSliceGroups groups: unpack the panel's
// slice once, then every block of 4 tokens runs 2-row x 4-token tiles over it.
template <bool kInt5>
void prefill_unpacked(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  static_assert(kUnpackBytes >= 2 * (kPrefillSliceGroups * (kGroup + 8) + kSliceChunks * kChunk * sizeof(float)),
                "a panel holds at least two rows of a full slice");
  const uint32_t groups = w.cols / kGroup;
  const uint32_t slice = groups < kPrefillSliceGroups ? groups : kPrefillSliceGroups;
  const RowLayout lay = row_layout(slice);
  const uint32_t panel = uint32_t(kUnpackBytes / lay.stride) & ~1u;  // >= 2 (static_assert above)
  UnpackedPanel buf;
  XBlock xb;
  for (uint32_t p0 = r0; p0 < r1; p0 += panel) {
    const uint32_t p1 = r1 - p0 < panel ? r1 : p0 + panel;
    for (uint32_t gb = 0; gb < groups; gb += slice) {
      const uint32_t ge = groups - gb < slice ? groups : gb + slice;
      for (uint32_t r = p0; r < p1; ++r) unpack_row<kInt5>(w, r, gb, ge, lay, buf.v + (r - p0) * lay.stride);
      for (uint32_t t = 0; t < n_tokens; t += 4) {
        const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
        build_block(x, groups, t, nt, gb, ge, &xb);
        uint32_t r = p0;
        for (; r + 2 <= p1; r += 2)
          tile_unpacked_tokens<2>(buf.v + (r - p0) * lay.stride, lay, xb, ge - gb, nt, r, t, y, y_stride, gb > 0);
        if (r < p1)
          tile_unpacked_tokens<1>(buf.v + (r - p0) * lay.stride, lay, xb, ge - gb, nt, r, t, y, y_stride, gb > 0);
      }
    }
  }
}

}  // namespace

void prefill_u4g32_unpacked(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride) {
  prefill_unpacked<false>(w, x, n_tokens, r0, r1, y, y_stride);
}

void prefill_u5g32_unpacked(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride) {
  prefill_unpacked<true>(w, x, n_tokens, r0, r1, y, y_stride);
}

}  // namespace avx2
}  // namespace tern
