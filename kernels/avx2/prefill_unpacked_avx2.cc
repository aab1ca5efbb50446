// Prefill (n_tokens >= kUnpackMinTokens) of kInt4G32 and kInt5G32 weights by
// unpacking once per panel: the AVX2 and AVX-VNNI tables both call these.
//
// The fused int4 / int5 tiles (matmul_q8_tiles_avx2.h, matmul_q4q8_avxvnni.cc)
// unpack a pair of groups (nibbles, int5: plus the high-bit plane, 16 ops per
// pair and row) for every block of 4 tokens: 16 times per 64-token chunk. Here
// each panel of weight rows x slice of groups is unpacked once into a stack
// buffer of int8 values in element order (the kInt8G32 layout), and the int8
// prefill tile runs over it for every token of the call, so the unpack costs
// 1/n_tokens per weight instead of 1/4 and the inner loop is int8 prefill's
// (vpmovsxbw + 2 vpmaddwd per group, row and 4 tokens against x16).
//
// The values stay unsigned: q in 0..15 (u4) or 0..31 (u5) is an int8 as it
// is, so every integer partial and the m * x.s term are the reference's own
// (w = d q + m, term = d_w x.d isum + m x.s): no offset re-centring (q - 16
// against m + 16 d would add terms |16 d x.s| that cancel, beyond the float
// bound the tests state in magnitudes of |w q|). Bounds per int32 lane of
// madd(w16[0], x16) + madd(w16[1], x16): 4 products |q * x16| with q <= 31,
// |x16| = |254 q_x + r_x| <= 32385: 4 * 31 * 32385 = 4015740 < 2^22, exact in
// int32 and exact when converted to float. Only the float accumulation order
// differs from the reference (8 lanes, m x.s per chunk of 8 groups, one
// horizontal sum per output and slice), within the bound of
// tests/kernels/kernel_variants_test.cc.
//
// Sizes: a panel is kUnpackBytes of int8 weights (rows x slice groups x 32),
// unpacked from DRAM once and then read from L1/L2 by every 4-token block; a
// block's x16 (4 tokens x slice, <= 16 KB) stays in L1 across the panel.
#include "kernels/avx2/matmul_q8_tiles_avx2.h"

namespace tern {
namespace avx2 {

namespace {

using namespace tiles;

constexpr size_t kUnpackBytes = size_t(32) << 10;
struct UnpackedPanel {
  alignas(32) uint8_t v[kUnpackBytes];
};

// The unpacked values stay int8 (the int8 tile widens them with vpmovsxbw):
// widening them to i16 in the buffer measured no faster (the 2-row x 4-token
// tile is bound by the vpmaddwd / convert / FMA ports), at twice the buffer.
using WElem = int8_t;

// A panel row in the buffer: the slice's q (32 per group, element order, as
// WElem), then its d and m as floats, padded with zeros to whole chunks of 8.
struct RowLayout {
  size_t stride;   // bytes between rows
  size_t d_off;    // bytes to the d floats
  size_t m_off;    // bytes to the m floats
};
inline RowLayout row_layout(uint32_t slice) {
  const size_t pad = (slice + kChunk - 1) / kChunk * kChunk;
  const size_t q = size_t(slice) * kGroup * sizeof(WElem);
  return RowLayout{q + 2 * pad * sizeof(float), q, q + pad * sizeof(float)};
}

// Groups [gb, ge) of row r into dst (layout above). Byte k of a group's 16
// nibble bytes holds element k (low nibble) and k + 16 (high nibble); a pair
// of groups gives lo = {g: 0..15 | g+1: 0..15}, hi = {g: 16..31 | g+1: 16..31}.
template <bool kInt5>
inline void unpack_row(const WeightMatrix& w, uint32_t r, uint32_t gb, uint32_t ge, const RowLayout& lay,
                       uint8_t* dst) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + size_t(r) * (w.cols / 2);
  const uint8_t* h = kInt5 ? int5_high_bits(w) + size_t(r) * (w.cols / 8) : nullptr;
  WElem* q = reinterpret_cast<WElem*>(dst);
  for (uint32_t g = gb; g < ge; g += 2) {
    const bool pair = g + 2 <= ge;
    const uint8_t* pg = p + g * (kGroup / 2);
    const __m256i b = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pg))
                           : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pg)));
    __m256i lo = _mm256_and_si256(b, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    if constexpr (kInt5) {
      __m256i hb_lo, hb_hi;
      high_bits_int5(h + g * (kGroup / 8), pair, &hb_lo, &hb_hi);
      lo = _mm256_or_si256(lo, hb_lo);
      hi = _mm256_or_si256(hi, hb_hi);
    }
    __m256i* out = reinterpret_cast<__m256i*>(q + (g - gb) * kGroup);
    _mm256_store_si256(out, _mm256_permute2x128_si256(lo, hi, 0x20));
    if (pair) _mm256_store_si256(out + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
  const uint16_t* ws = w.scales + size_t(r) * 2 * (w.cols / kGroup);
  float* d = reinterpret_cast<float*>(dst + lay.d_off);
  float* m = reinterpret_cast<float*>(dst + lay.m_off);
  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    __m256 dv, mv;  // zero past n
    load_scales_int4(ws + 2 * g0, n, lane_mask(n), &dv, &mv);
    _mm256_storeu_ps(d + (g0 - gb), dv);
    _mm256_storeu_ps(m + (g0 - gb), mv);
  }
}

// One R x T tile: rows [r, r+R) (their panel rows at wb, lay.stride bytes
// apart, from group gb), tokens [t, t+T), groups [gb, ge) whose x16 (int8
// layout) is in xb. The int8 prefill tile with {d, m} scales: per chunk of 8
// groups acc += m * x.s (8 lanes), then per group the exact i32 partials
// times d_w * x.d. y = partial (accumulate: y += partial).
template <int R, int T>
void tile_unpacked(const uint8_t* wb, const RowLayout& lay, const ActRowsQ8& x, const X16Prefill& xb,
                   uint32_t groups, uint32_t gb, uint32_t ge, uint32_t r, uint32_t t, float* y,
                   size_t y_stride, bool accumulate) {
  const WElem* wq[R];
  const float* wd[R];
  const float* wm[R];
  unrolled<R>([&](auto i) {
    wq[i] = reinterpret_cast<const WElem*>(wb + i * lay.stride);
    wd[i] = reinterpret_cast<const float*>(wb + i * lay.stride + lay.d_off);
    wm[i] = reinterpret_cast<const float*>(wb + i * lay.stride + lay.m_off);
  });
  const float* xd[T];
  const float* xs[T];
  unrolled<T>([&](auto j) {
    xd[j] = x.d + size_t(t + j) * groups;
    xs[j] = x.s + size_t(t + j) * groups;
  });
  __m256 acc[R][T];
  unrolled<R>([&](auto i) { unrolled<T>([&](auto j) { acc[i][j] = _mm256_setzero_ps(); }); });
  // The m * x.s terms first, in a pass of their own: inside the main loop
  // they add m and x.s vectors to the 8 live accumulators, which spilled
  // (measured 8% slower).
  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    const __m256i mask = lane_mask(n);
    unrolled<R>([&](auto i) {
      const __m256 m = _mm256_loadu_ps(wm[i] + (g0 - gb));  // zero-padded past the slice
      unrolled<T>([&](auto j) { acc[i][j] = _mm256_fmadd_ps(m, load_partial(xs[j] + g0, n, mask), acc[i][j]); });
    });
  }

  for (uint32_t g0 = gb; g0 < ge; g0 += kChunk) {
    const uint32_t n = ge - g0 < kChunk ? ge - g0 : kChunk;
    const uint32_t c0 = g0 - gb;  // this chunk's first group in the slice
    alignas(32) float sc[R][T][kChunk];  // d_w * x.d per group
    const __m256i mask = lane_mask(n);
    // x.d loaded where used (memory operands for whole chunks): with the
    // 8 accumulators live, more vectors of x would spill.
    unrolled<R>([&](auto i) {
      const __m256 d = _mm256_loadu_ps(wd[i] + c0);  // zero-padded past the slice
      unrolled<T>([&](auto j) { _mm256_store_ps(sc[i][j], _mm256_mul_ps(d, load_partial(xd[j] + g0, n, mask))); });
    });
    for (uint32_t gi = 0; gi < n; ++gi) {
      const uint32_t off = (c0 + gi) * kGroup;
      __m256i w16[R][2];
      unrolled<R>([&](auto i) {
        load_w16_int8(wq[i] + off, w16[i]);
      });
      unrolled<T>([&](auto j) {
        const __m256i* xv = reinterpret_cast<const __m256i*>(xb.v[j] + off);
        unrolled<R>([&](auto i) {
          const __m256 p = _mm256_cvtepi32_ps(dot_int8(w16[i], xv));
          acc[i][j] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(&sc[i][j][gi]), acc[i][j]);
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
void tile_unpacked_tokens(const uint8_t* wb, const RowLayout& lay, const ActRowsQ8& x, const X16Prefill& xb,
                          uint32_t groups, uint32_t gb, uint32_t ge, uint32_t nt, uint32_t r, uint32_t t,
                          float* y, size_t y_stride, bool accumulate) {
  switch (nt) {
    case 1: tile_unpacked<R, 1>(wb, lay, x, xb, groups, gb, ge, r, t, y, y_stride, accumulate); break;
    case 2: tile_unpacked<R, 2>(wb, lay, x, xb, groups, gb, ge, r, t, y, y_stride, accumulate); break;
    case 3: tile_unpacked<R, 3>(wb, lay, x, xb, groups, gb, ge, r, t, y, y_stride, accumulate); break;
    default: tile_unpacked<R, 4>(wb, lay, x, xb, groups, gb, ge, r, t, y, y_stride, accumulate); break;
  }
}

// Panels of rows x slices of kPrefillSliceGroups groups: unpack the panel's
// slice once, then every block of 4 tokens (x16 built per block and slice, as
// int8 prefill does) runs 2-row x 4-token tiles over it.
static_assert(kUnpackBytes >= 2 * (kPrefillSliceGroups * (kGroup * sizeof(WElem) + 2 * sizeof(float))),
              "a panel holds at least two rows of a full slice");

template <bool kInt5>
void prefill_unpacked(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  const uint32_t slice = groups < kPrefillSliceGroups ? groups : kPrefillSliceGroups;
  const RowLayout lay = row_layout(slice);
  const uint32_t panel = uint32_t(kUnpackBytes / lay.stride) & ~1u;  // >= 2 (static_assert below)
  UnpackedPanel buf;
  X16Prefill xb;
  for (uint32_t p0 = r0; p0 < r1; p0 += panel) {
    const uint32_t p1 = r1 - p0 < panel ? r1 : p0 + panel;
    for (uint32_t gb = 0; gb < groups; gb += slice) {
      const uint32_t ge = groups - gb < slice ? groups : gb + slice;
      for (uint32_t r = p0; r < p1; ++r) unpack_row<kInt5>(w, r, gb, ge, lay, buf.v + (r - p0) * lay.stride);
      for (uint32_t t = 0; t < n_tokens; t += 4) {
        const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
        for (uint32_t j = 0; j < nt; ++j)
          build_x16_int8(x.q + size_t(t + j) * x.cols + gb * kGroup, x.r + size_t(t + j) * x.cols + gb * kGroup,
                         ge - gb, xb.v[j]);
        uint32_t r = p0;
        for (; r + 2 <= p1; r += 2)
          tile_unpacked_tokens<2>(buf.v + (r - p0) * lay.stride, lay, x, xb, groups, gb, ge, nt, r, t, y,
                                  y_stride, gb > 0);
        if (r < p1)
          tile_unpacked_tokens<1>(buf.v + (r - p0) * lay.stride, lay, x, xb, groups, gb, ge, nt, r, t, y,
                                  y_stride, gb > 0);
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
