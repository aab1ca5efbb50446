// AVX-512 matrix products against the two-plane activations (kernels/blocks.h:
// x ~= d (254 q + r)): prefill of every integer weight type through
// interleaved 16-row blocks and vpdpwssd; fewer tokens (decode included) go
// to matmul_q8_small_avx512.cc.
//
// Every path sums each output in one float order (batch invariance, see
// matmul_q8_small_avx512.cc): per slice of kSliceGroups groups a = 0, then per
// group in order a = fma(float(isum), d_w * x.d, a) (and a = fma(m_w, x.s, a)
// for u4 / u5), then y = first slice ? a : y + a. The tile below is that
// order with 16 rows in the lanes; the small-n kernels and the AMX tiles
// (kernels/amx/) reproduce it bit for bit, so kSliceGroups, the per-group
// steps and their order must not change here alone.
//
// Prefill (n_tokens >= kPrefillMinTokens): the AVX2 tiles spend three of
// every five ops per group on widening, a horizontal layout and converting
// one row's partials at a time. Here the weights of 16 rows are interleaved
// (repacked once per call, into a stack block) so that one zmm holds the same
// two columns of 16 rows:
//   block.w[g][k][i] = the int16 pair (w[r+i, 32g + 2k], w[r+i, 32g + 2k + 1])
// and the activations are x16 = 254 q + r (exact, |x16| <= 32385), so per
// token one broadcast 32-bit pair of x16 feeds all 16 rows:
//   s[i] += w16[i, 2k] x16[2k] + w16[i, 2k + 1] x16[2k + 1]   (vpdpwssd)
// After the 16 pairs of a group each lane holds the reference's exact
//   isum = 254 sum(w q) + sum(w r)
// of one row (|isum| <= 32 * 127 * 32385 < 2^31), converted to float once
// and scaled by the 16 rows' d_w times the token's x.d (plus m_w x.s for the
// u4 / u5 types, whose values 0..31 are their own int16). No horizontal sums:
// a lane is a row, and a tile's 16 outputs are stored as one vector. Per row,
// token and group that is 16 vpdpwssd / 16 + 3 ops, against ~5 ymm ops (int8)
// in the AVX2 tile. Register tile: two blocks (32 rows) x up to 6 tokens
// (12 int32 + 12 float accumulators: 12 independent vpdpwssd chains, enough
// to cover its 5-cycle latency at two per cycle; 16 rows x 8 tokens covered
// 8 and one broadcast fed one block), or 16 rows x 8 tokens for a last lone
// block; the blocks (16 rows x 16 groups, 16 KB each) stay in L1 while every
// token passes over them.
//
// The repack (unpack to int16, a 16x16 transpose per group) costs ~1/8 op per
// weight per token block; a token block is up to kTokenBlock tokens, so below
// kPrefillMinTokens tokens the small-n kernels, which need no repack, are
// used instead.
//
// Only the float accumulation order differs from the scalar reference
// (kernels/ref/matmul_q8_ref.cc): every integer partial is the reference's.
#include "kernels/avx512/kernels_avx512.h"
#include "kernels/avx512/simd_avx512.h"
#include "kernels/avx512/weight_rows_avx512.h"

namespace tern {
namespace TERN_AVX512_NS {

namespace {

constexpr uint32_t kRows = 16;         // rows per interleaved block: one per 32-bit lane
constexpr uint32_t kSliceGroups = 16;  // groups per column slice of a block
constexpr uint32_t kTokenBlock = 64;   // tokens whose x16 is built per slice
constexpr uint32_t kTileTokens = 8;    // tokens per register tile

// x16 = 254 q + r of kTokenBlock tokens x one slice, [token][slice columns].
struct X16Block {
  alignas(64) int16_t v[kTokenBlock][kSliceGroups * kGroup];  // 64 KB
};

// 16 rows x one slice, interleaved (see the top of the file); rows past the
// matrix are zeros with d = m = 0.
struct RowBlock {
  alignas(64) int32_t w[kSliceGroups][kGroup / 2][kRows];  // 16 KB
  alignas(64) float d[kSliceGroups][kRows];
  alignas(64) float m[kSliceGroups][kRows];
};

// x16 of columns [c0, c0 + n) of one token row (n % 16 == 0).
inline void build_x16(const int8_t* q, const int8_t* r, uint32_t n, int16_t* out) {
  const __m256i k254 = _mm256_set1_epi16(int16_t(kResidualScale));
  for (uint32_t c = 0; c < n; c += 16) {
    const __m256i vq = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + c)));
    const __m256i vr = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + c)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm256_add_epi16(_mm256_mullo_epi16(vq, k254), vr));
  }
}

// Rows [r, r + nr) (nr <= 16), groups [gb, ge) of w into `blk`.
template <Kind K>
void repack_block(const WeightMatrix& w, uint32_t r, uint32_t nr, uint32_t gb, uint32_t ge, RowBlock* blk) {
  const uint32_t groups = w.cols / kGroup;
  for (uint32_t g = gb; g < ge; ++g) {
    V16i rows[kRows];
    for (uint32_t i = 0; i < kRows; ++i) rows[i] = i < nr ? widen_i8(group_bytes<K>(w, r + i, g)) : zero_i();
    store_transposed_16x16(rows, blk->w[g - gb][0]);
    for (uint32_t i = 0; i < kRows; ++i) {
      float d = 0.0f, m = 0.0f;
      if (i < nr) {
        if constexpr (K == Kind::kI8) {
          d = f16_scalar(w.scales[size_t(r + i) * groups + g]);
        } else {
          d = f16_scalar(w.scales[(size_t(r + i) * groups + g) * 2]);
          m = f16_scalar(w.scales[(size_t(r + i) * groups + g) * 2 + 1]);
        }
      }
      blk->d[g - gb][i] = d;
      blk->m[g - gb][i] = m;
    }
  }
}

// Tokens [t, t + nv) (x16 rows xt.. of xb; nv <= T) x B row blocks (16 rows
// each; B = 2: rows r.. and r + 16..), ng groups of the slice starting at
// group gb. y rows r + 16 b .. (nr[b] valid) = partial, or +=. B x T
// independent vpdpwssd chains (its latency is 5 cycles and two can issue per
// cycle, so 16 rows x 8 tokens left half the port idle), and one broadcast of
// a token's pair feeds both blocks. Columns nv.. of the tile repeat token
// nv - 1 and are not stored: a tail of 3 or 5 tokens runs the 4- or 6-token
// tile, so only T = 1, 2, 4, 6 (8 for B = 1) are instantiated (each T is a
// large unrolled body; 14 per kind took most of the sanitizer builds' time).
template <Kind K, int B, int T>
void tile(const RowBlock* blk, const X16Block& xb, uint32_t xt, uint32_t nv, const ActRowsQ8& x, uint32_t groups,
          uint32_t t, uint32_t gb, uint32_t ng, uint32_t r, const uint32_t* nr, float* y, size_t y_stride,
          bool accumulate) {
  const int16_t* xv16[T];  // token j's x16 row in xb
  size_t xo[T];            // token j's first group in x.d / x.s
  unrolled<T>([&](auto j) {
    const uint32_t tj = uint32_t(j) < nv ? uint32_t(j) : nv - 1;
    xv16[j] = xb.v[xt + tj];
    xo[j] = size_t(t + tj) * groups + gb;
  });
  V16f acc[B][T];
  unrolled<B>([&](auto b) { unrolled<T>([&](auto j) { acc[b][j] = zero_f(); }); });
  for (uint32_t g = 0; g < ng; ++g) {
    V16i s[B][T];
    unrolled<B>([&](auto b) { unrolled<T>([&](auto j) { s[b][j] = zero_i(); }); });
    // Unrolled: as a loop, GCC copied every accumulator once per iteration.
    unrolled<kGroup / 2>([&](auto k) {
      V16i wv[B];
      unrolled<B>([&](auto b) { wv[b] = load_i(blk[b].w[g][k]); });
      unrolled<T>([&](auto j) {
        const V16i xv = bcast_pair(xv16[j] + g * kGroup + 2 * k);
        unrolled<B>([&](auto b) { s[b][j] = dpwssd(s[b][j], wv[b], xv); });
      });
    });
    unrolled<B>([&](auto b) {
      const V16f d = load_f(blk[b].d[g]);
      unrolled<T>([&](auto j) {
        const float xd = x.d[xo[j] + g];
        acc[b][j] = fmadd_f(cvt_f(s[b][j]), mul_f(d, set1_f(xd)), acc[b][j]);
      });
      if constexpr (K != Kind::kI8) {
        const V16f m = load_f(blk[b].m[g]);
        unrolled<T>([&](auto j) { acc[b][j] = fmadd_f(m, set1_f(x.s[xo[j] + g]), acc[b][j]); });
      }
    });
  }
  unrolled<B>([&](auto b) {
    unrolled<T>([&](auto j) {
      if (uint32_t(j) < nv) store_rows_f(y + size_t(t + j) * y_stride + r + b * kRows, acc[b][j], nr[b], accumulate);
    });
  });
}

// Register tiles: 32 rows x 6 tokens (12 int + 12 float accumulators), or
// for a last lone 16-row block 16 rows x 8 tokens.
constexpr uint32_t kPairTileTokens = 6;

template <Kind K, int B>
void tile_tokens(uint32_t nt, const RowBlock* blk, const X16Block& xb, uint32_t xt, const ActRowsQ8& x,
                 uint32_t groups, uint32_t t, uint32_t gb, uint32_t ng, uint32_t r, const uint32_t* nr, float* y,
                 size_t y_stride, bool accumulate) {
  constexpr uint32_t kMax = B == 2 ? kPairTileTokens : kTileTokens;
  static_assert(kMax == 6 || kMax == 8, "tile sizes below: 1, 2, 4 and kMax tokens");
  if (nt == 1) {
    tile<K, B, 1>(blk, xb, xt, nt, x, groups, t, gb, ng, r, nr, y, y_stride, accumulate);
  } else if (nt == 2) {
    tile<K, B, 2>(blk, xb, xt, nt, x, groups, t, gb, ng, r, nr, y, y_stride, accumulate);
  } else if (nt <= 4) {
    tile<K, B, 4>(blk, xb, xt, nt, x, groups, t, gb, ng, r, nr, y, y_stride, accumulate);
  } else {
    tile<K, B, kMax>(blk, xb, xt, nt, x, groups, t, gb, ng, r, nr, y, y_stride, accumulate);
  }
}

// Slices of 16 groups; per slice, blocks of up to 64 tokens (their x16 built
// once), and per pair of 16-row blocks one repack that every tile reuses.
template <Kind K>
void prefill(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0, uint32_t r1, float* y,
             size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  X16Block xb;
  RowBlock blk[2];
  for (uint32_t gb = 0; gb < groups; gb += kSliceGroups) {
    const uint32_t ng = groups - gb < kSliceGroups ? groups - gb : kSliceGroups;
    for (uint32_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
      const uint32_t nt = n_tokens - t0 < kTokenBlock ? n_tokens - t0 : kTokenBlock;
      for (uint32_t j = 0; j < nt; ++j) {
        const size_t off = size_t(t0 + j) * x.cols + size_t(gb) * kGroup;
        build_x16(x.q + off, x.r + off, ng * kGroup, xb.v[j]);
      }
      for (uint32_t r = r0; r < r1; r += 2 * kRows) {
        const uint32_t left = r1 - r;
        const uint32_t nr[2] = {left < kRows ? left : kRows, left <= kRows ? 0 : left - kRows < kRows ? left - kRows : kRows};
        repack_block<K>(w, r, nr[0], gb, gb + ng, &blk[0]);
        if (nr[1] > 0) repack_block<K>(w, r + kRows, nr[1], gb, gb + ng, &blk[1]);
        // The next blocks' weights come from DRAM while these tiles run (the
        // repack's loads stalled on them: ~4% of a Gemma prefill).
        if (r + 2 * kRows < r1) {
          const uint32_t next = r1 - r - 2 * kRows < 2 * kRows ? r1 - r - 2 * kRows : 2 * kRows;
          prefetch_rows<K>(w, r + 2 * kRows, next, gb, gb + ng);
        }
        const uint32_t step = nr[1] > 0 ? kPairTileTokens : kTileTokens;
        for (uint32_t j = 0; j < nt; j += step) {
          const uint32_t tt = nt - j < step ? nt - j : step;
          if (nr[1] > 0)
            tile_tokens<K, 2>(tt, blk, xb, j, x, groups, t0 + j, gb, ng, r, nr, y, y_stride, gb > 0);
          else
            tile_tokens<K, 1>(tt, blk, xb, j, x, groups, t0 + j, gb, ng, r, nr, y, y_stride, gb > 0);
        }
      }
    }
  }
}

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  if (n_tokens < kPrefillMinTokens) return small_matmul_i8g32_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kI8>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  if (n_tokens < kPrefillMinTokens) return small_matmul_u4g32_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kU4>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  if (n_tokens < kPrefillMinTokens) return small_matmul_u5g32_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kU5>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

}  // namespace TERN_AVX512_NS
}  // namespace tern
