// AMX prefill of every integer weight type against the two-plane activations
// (kernels/blocks.h: x ~= d (254 q + r)).
//
// The AVX-512 prefill (kernels/avx512/matmul_q8_avx512.cc) issues one
// vpdpwssd per 32 weight x token products; a tdpbssd tile op does 16 tokens x
// 16 rows x 32 columns of int8 products at once. Both planes are int8, so per
// group of 32 columns two tile products give the reference's exact
//   isum = 254 sum(w q) + sum(w r)
// for 16 tokens x 16 rows:
//   A = 16 tokens x 32 bytes of the q (then r) plane, loaded straight from
//       the activation rows (stride x.cols);
//   B = the 16 rows' 32 weights of the group as int8 in the VNNI layout
//       B[k / 4][4 i + k % 4] = w[r + i, 32 g + k] (repacked once per call,
//       row block and slice of 16 groups; u4 / u5 values 0..31 are int8 too);
//   C = 16 tokens x 16 rows of int32: row j of C is token j, lane i is row i.
// C goes through memory to zmm (tilestored) and each token row is finished
// exactly as the AVX-512 tile finishes it: combined (254 Cq + Cr), converted
// to float once per group and scaled by the 16 rows' d_w times the token's
// x.d (plus m_w x.s for u4 / u5). Same slices of 16 groups, same per-group
// order of float operations, so the results equal the avx512vnni variant's
// bit for bit (tested), and every integer partial is the scalar reference's.
// Below kAmxMinTokens the AVX-512 kernels run (decode and short prefill in
// matmul_q8_small_avx512.cc, in the same order too): a token's outputs are
// the same bits whichever path its call takes (batch invariance).
//
// Per group and 16 x 16 tile that is 2 tile products, 2 tile stores and ~8
// zmm ops per token, where the AVX-512 tile spends 16 vpdpwssd + 3 per token.
// The stores and the epilogue bound it, not the tile unit: tdpbssd is used at
// half depth (K = 32, one group, because every group has its own scales) and
// both 16 x 16 int32 results must leave the tile registers per group. What
// the schedule does about it:
//   - the products run two groups ahead of the epilogue, alternating between
//     two tile sets, into a 4-slot ring (8 KB) that stays in L1 (a ring of a
//     whole slice, 32 KB, spilled L1 and ran at half speed);
//   - row blocks are repacked four at a time and every token tile runs over
//     all four, so its activations (16 KB for both planes) stay in L1.
// Measured on a Sapphire-Rapids-class Xeon (one core, 1536 x 576 int8,
// 512 tokens): 261 GOP/s against 216 for the AVX-512 prefill; SmolLM2 pp512
// +8% (int4) to +17% (int8), Gemma 3 +8%. Below 16 tokens a tile is mostly
// padding and the AVX-512 kernels are faster.
//
// Tail tokens (fewer than 16 left) are copied into a zero-padded block, so no
// tile load reads past the activation rows; tail rows are zeros in B.
#include "kernels/amx/amx_tiles.h"
#include "kernels/amx/kernels_amx.h"
#include "kernels/avx512/simd_avx512.h"
#include "kernels/avx512/weight_rows_avx512.h"

namespace tern {
namespace TERN_AMX_NS {

namespace {

using namespace ::tern::TERN_AVX512_NS;  // the 512-bit operations (simd_avx512.h)

constexpr uint32_t kRows = 16;         // weight rows per tile: int32 lanes of a C row
constexpr uint32_t kTileTokens = 16;   // tokens per tile: rows of A and C
constexpr uint32_t kSliceGroups = 16;  // groups per slice, as the AVX-512 prefill (same float order)
constexpr uint32_t kSliceBytes = kSliceGroups * kGroup;
constexpr uint32_t kPassBlocks = 4;     // row blocks repacked together (40 KB)

// Tile numbers.
constexpr int kCq = 0, kCr = 1, kCq2 = 2, kCr2 = 3, kAq = 4, kAr = 5, kB = 6, kB2 = 7;

// 16 rows x one slice in the tdpbssd B layout; rows past the matrix are zeros
// with d = m = 0.
struct RowBlock {
  alignas(64) int32_t w[kSliceGroups][kGroup / 4][kRows];  // 8 KB: dword (k / 4, i) = w[r + i][4 (k / 4) ..]
  alignas(64) float d[kSliceGroups][kRows];
  alignas(64) float m[kSliceGroups][kRows];
};

// The last tokens of a call when fewer than 16 remain, zero-padded.
struct TailTokens {
  alignas(64) int8_t q[kTileTokens][kSliceBytes];
  alignas(64) int8_t r[kTileTokens][kSliceBytes];
};

// Rows [r, r + nr), groups [gb, ge) of w into `blk`: per pair of groups, each
// row's 64 bytes are 16 dwords; their 16 x 16 transpose is the two groups'
// B tiles (dwords 0..7: group g, 8..15: group g + 1).
template <Kind K>
void repack_block(const WeightMatrix& w, uint32_t r, uint32_t nr, uint32_t gb, uint32_t ge, RowBlock* blk) {
  const uint32_t groups = w.cols / kGroup;
  for (uint32_t g = gb; g < ge; g += 2) {
    const bool pair = g + 1 < ge;
    V16i rows[kRows];
    for (uint32_t i = 0; i < kRows; ++i) {
      if (i >= nr) {
        rows[i] = zero_i();
        continue;
      }
      const __m256i lo = group_bytes<K>(w, r + i, g);
      rows[i] = join_i(lo, pair ? group_bytes<K>(w, r + i, g + 1) : _mm256_setzero_si256());
    }
    alignas(64) int32_t t[2][kGroup / 4][kRows];
    store_transposed_16x16(rows, t[0][0]);
    __builtin_memcpy(blk->w[g - gb], t[0], sizeof(t[0]));
    if (pair) __builtin_memcpy(blk->w[g + 1 - gb], t[1], sizeof(t[1]));
    for (uint32_t h = g; h < (pair ? g + 2 : g + 1); ++h) {
      for (uint32_t i = 0; i < kRows; ++i) {
        float d = 0.0f, m = 0.0f;
        if (i < nr) {
          if constexpr (K == Kind::kI8) {
            d = f16_scalar(w.scales[size_t(r + i) * groups + h]);
          } else {
            d = f16_scalar(w.scales[(size_t(r + i) * groups + h) * 2]);
            m = f16_scalar(w.scales[(size_t(r + i) * groups + h) * 2 + 1]);
          }
        }
        blk->d[h - gb][i] = d;
        blk->m[h - gb][i] = m;
      }
    }
  }
}

// kInt8G32R16 / kInt4G32R16 (packed interleaved, kernels/kernels.h): the
// block is already in the B layout (int8: one 512-byte copy per group) or
// one nibble split away from it (int4: the low nibbles of each 64-byte unit
// are the B rows of columns 4L .., the high ones of 16 + 4L ..), plus the
// scales' conversion. r % 16 == 0; the matrix has whole blocks, rows past
// the call's range are computed and never stored.
template <Kind K>
constexpr size_t kR16GroupBytes = K == Kind::kI8 ? kGroup * kRows : kGroup / 2 * kRows;

template <Kind K>
void copy_block_r16(const WeightMatrix& w, uint32_t r, uint32_t gb, uint32_t ge, RowBlock* blk) {
  const uint32_t groups = w.cols / kGroup;
  const int8_t* q = static_cast<const int8_t*>(w.data) + size_t(r / kRows) * groups * kR16GroupBytes<K>;
  constexpr uint32_t per = K == Kind::kI8 ? 1 : 2;  // f16 scale runs of 16 per group: d (and m)
  const uint16_t* s = w.scales + size_t(r / kRows) * groups * per * kRows;
  const V16i nibble = set1_i8(0x0f);
  for (uint32_t g = gb; g < ge; ++g) {
    const int8_t* src = q + size_t(g) * kR16GroupBytes<K>;
    if constexpr (K == Kind::kI8) {
      __builtin_memcpy(blk->w[g - gb], src, kGroup * kRows);
    } else {
      for (uint32_t L = 0; L < 4; ++L) {
        const V16i raw = load_i(src + 64 * L);
        store_i(blk->w[g - gb][L], and_i(raw, nibble));
        store_i(blk->w[g - gb][L + 4], and_i(srli_i16<4>(raw), nibble));
      }
    }
    store_f(blk->d[g - gb], load_f16(s + size_t(g) * per * kRows));
    if constexpr (K != Kind::kI8) store_f(blk->m[g - gb], load_f16(s + size_t(g) * per * kRows + kRows));
  }
}

template <Kind K>
void prefetch_blocks_r16(const WeightMatrix& w, uint32_t r, uint32_t nr, uint32_t gb, uint32_t ge) {
  const size_t block = size_t(w.cols / kGroup) * kR16GroupBytes<K>;
  for (uint32_t b = r; b < r + nr; b += kRows) {
    const char* q = static_cast<const char*>(w.data) + size_t(b / kRows) * block + size_t(gb) * kR16GroupBytes<K>;
    for (size_t off = 0; off < size_t(ge - gb) * kR16GroupBytes<K>; off += 64) _mm_prefetch(q + off, _MM_HINT_T0);
  }
}

// Ring of the int32 sums of the last few groups: [slot][token][row]. Small
// enough to stay in L1 beside the row block: tile stores into a buffer of a
// whole slice (32 KB, with its twin 64 KB) spilled L1 and ran at half speed.
constexpr uint32_t kRingSlots = 4;
constexpr uint32_t kAhead = 2;  // groups whose products are in flight ahead of the epilogue
struct SumRing {
  alignas(64) int32_t q[kRingSlots][kTileTokens][kRows];  // 4 KB
  alignas(64) int32_t r[kRingSlots][kTileTokens][kRows];  // 4 KB
};

// 16 tokens (nt valid) whose activation planes start at q, r (group gb of the
// slice, `stride` bytes per token), first token t.
struct TokenTile {
  const int8_t* q;
  const int8_t* r;
  size_t stride;
  uint32_t t, nt;
};

// Tile products of group g of token tile tt into ring slot g % kRingSlots
// (tile set P: group parity, so the tile unit starts on the next group while
// this one's stores drain).
template <int P>
inline void group_products(TileRegs& regs, const RowBlock& blk, const TokenTile& tt, uint32_t g, SumRing& ring) {
  constexpr int Cq = P == 0 ? kCq : kCq2, Cr = P == 0 ? kCr : kCr2, B = P == 0 ? kB : kB2;
  tile_zero<Cq>(regs);
  tile_zero<Cr>(regs);
  tile_load<kAq>(regs, tt.q + g * kGroup, tt.stride);
  tile_load<kAr>(regs, tt.r + g * kGroup, tt.stride);
  tile_load<B>(regs, blk.w[g], kRows * 4);
  tile_dpbssd<Cq, kAq, B>(regs);
  tile_dpbssd<Cr, kAr, B>(regs);
  tile_store<Cq>(regs, ring.q[g % kRingSlots], kRows * 4);
  tile_store<Cr>(regs, ring.r[g % kRingSlots], kRows * 4);
}

inline void issue_group(TileRegs& regs, const RowBlock& blk, const TokenTile& tt, uint32_t g, SumRing& ring) {
  if (g % 2 == 0)
    group_products<0>(regs, blk, tt, g, ring);
  else
    group_products<1>(regs, blk, tt, g, ring);
}

// One token tile x the block's 16 rows over the ng groups of the slice at gb;
// y rows [row, row + nr) of its tokens = the partial, or += it. The tile
// products run kAhead groups ahead of the epilogue, which finishes each
// group as the AVX-512 prefill does (same float operations, same order).
template <Kind K>
void token_tile(TileRegs& regs, const RowBlock& blk, const TokenTile& tt, const ActRowsQ8& x, uint32_t groups,
                uint32_t gb, uint32_t ng, uint32_t row, uint32_t nr, float* y, size_t y_stride, bool accumulate,
                SumRing& ring) {
  for (uint32_t g = 0; g < kAhead && g < ng; ++g) issue_group(regs, blk, tt, g, ring);
  V16f acc[kTileTokens];
  unrolled<kTileTokens>([&](auto j) { acc[j] = zero_f(); });
  for (uint32_t g = 0; g < ng; ++g) {
    if (g + kAhead < ng) issue_group(regs, blk, tt, g + kAhead, ring);
    const uint32_t slot = g % kRingSlots;
    const V16f d = load_f(blk.d[g]);
    const V16f m = load_f(blk.m[g]);
    unrolled<kTileTokens>([&](auto j) {
      if (uint32_t(j) >= tt.nt) return;
      const V16i s = combine_planes(load_i(ring.q[slot][j]), load_i(ring.r[slot][j]));
      const float xd = x.d[size_t(tt.t + j) * groups + gb + g];
      acc[j] = fmadd_f(cvt_f(s), mul_f(d, set1_f(xd)), acc[j]);
      if constexpr (K != Kind::kI8) acc[j] = fmadd_f(m, set1_f(x.s[size_t(tt.t + j) * groups + gb + g]), acc[j]);
    });
  }
  unrolled<kTileTokens>([&](auto j) {
    if (uint32_t(j) >= tt.nt) return;
    store_rows_f(y + size_t(tt.t + j) * y_stride + row, acc[j], nr, accumulate);
  });
}

template <Kind K, bool kR16 = false>
void prefill(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0, uint32_t r1, float* y,
             size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  TileRegs regs;
  const TileShape c{uint8_t(kTileTokens), uint16_t(kRows * 4)};
  const TileShape a{uint8_t(kTileTokens), uint16_t(kGroup)};
  const TileShape b{uint8_t(kGroup / 4), uint16_t(kRows * 4)};
  tile_config(regs, {c, c, c, c, a, a, b, b});
  RowBlock blk[kPassBlocks];
  TailTokens tail;
  SumRing ring;
  constexpr uint32_t kMaxTiles = 64;  // token tiles per pass: 1024 tokens
  TokenTile tiles[kMaxTiles];
  for (uint32_t t0 = 0; t0 < n_tokens; t0 += kMaxTiles * kTileTokens) {
    const uint32_t n = n_tokens - t0 < kMaxTiles * kTileTokens ? n_tokens - t0 : kMaxTiles * kTileTokens;
    const uint32_t full = n / kTileTokens * kTileTokens;
    for (uint32_t gb = 0; gb < groups; gb += kSliceGroups) {
      const uint32_t ng = groups - gb < kSliceGroups ? groups - gb : kSliceGroups;
      uint32_t n_tiles = 0;
      for (uint32_t t = 0; t < full; t += kTileTokens) {
        const size_t off = size_t(t0 + t) * x.cols + size_t(gb) * kGroup;
        tiles[n_tiles++] = {x.q + off, x.r + off, x.cols, t0 + t, kTileTokens};
      }
      if (full < n) {
        __builtin_memset(&tail, 0, sizeof(tail));
        for (uint32_t j = 0; j < n - full; ++j) {
          const size_t off = size_t(t0 + full + j) * x.cols + size_t(gb) * kGroup;
          __builtin_memcpy(tail.q[j], x.q + off, ng * kGroup);
          __builtin_memcpy(tail.r[j], x.r + off, ng * kGroup);
        }
        tiles[n_tiles++] = {tail.q[0], tail.r[0], kSliceBytes, t0 + full, n - full};
      }
      // Row blocks in passes of kPassBlocks: every token tile runs over the
      // pass's blocks while its activations (16 tokens x the slice, both
      // planes: 16 KB) stay in L1.
      for (uint32_t rp = r0; rp < r1; rp += kPassBlocks * kRows) {
        const uint32_t pe = r1 - rp < kPassBlocks * kRows ? r1 : rp + kPassBlocks * kRows;
        uint32_t nb = 0;
        for (uint32_t r = rp; r < pe; r += kRows, ++nb) {
          if constexpr (kR16)
            copy_block_r16<K>(w, r, gb, gb + ng, &blk[nb]);
          else
            repack_block<K>(w, r, pe - r < kRows ? pe - r : kRows, gb, gb + ng, &blk[nb]);
        }
        // The next pass's weights come from DRAM while this one's tiles run.
        if (pe < r1) {
          const uint32_t next = r1 - pe < kPassBlocks * kRows ? r1 - pe : kPassBlocks * kRows;
          if constexpr (kR16)
            prefetch_blocks_r16<K>(w, pe, next, gb, gb + ng);
          else
            prefetch_rows<K>(w, pe, next, gb, gb + ng);
        }
        for (uint32_t k = 0; k < n_tiles; ++k)
          for (uint32_t b = 0; b < nb; ++b) {
            const uint32_t r = rp + b * kRows;
            token_tile<K>(regs, blk[b], tiles[k], x, groups, gb, ng, r, pe - r < kRows ? pe - r : kRows, y, y_stride,
                          gb > 0, ring);
          }
      }
    }
  }
  tile_release(regs);
}

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  if (n_tokens < kAmxMinTokens) return TERN_AVX512_NS::matmul_i8g32_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kI8>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

// Interleaved int8 and int4: tiles from kAmxMinTokensR16 tokens (no transposing
// repack to amortize, so a batched step of a few rows gains too); a row range
// that does not start on a block (never with the runtime's 16-row split of
// 16-row-multiple matrices) takes the AVX-512 kernel, same bits.
void matmul_i8g32r16_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride) {
  if (n_tokens < kAmxMinTokensR16 || r0 % kRows != 0)
    return TERN_AVX512_NS::matmul_i8g32r16_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kI8, true>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32r16_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride) {
  if (n_tokens < kAmxMinTokensR16 || r0 % kRows != 0)
    return TERN_AVX512_NS::matmul_u4g32r16_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kU4, true>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  if (n_tokens < kAmxMinTokens) return TERN_AVX512_NS::matmul_u4g32_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kU4>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  if (n_tokens < kAmxMinTokens) return TERN_AVX512_NS::matmul_u5g32_q8r(w, in, n_tokens, r0, r1, y, y_stride);
  prefill<Kind::kU5>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

}  // namespace TERN_AMX_NS
}  // namespace tern
