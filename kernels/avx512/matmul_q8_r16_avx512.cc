// AVX-512 products of kInt8G32R16 and kInt4G32R16 weights (int8 / int4 rows
// interleaved by 16 at pack time, kernels/kernels.h) against the two-plane
// activations, for every number of tokens: decode, a batched step's few rows
// and long prefill.
//
// Why a pack-time layout: the row-layout kernels either sum each row
// horizontally (decode, matmul_q8_small_avx512.cc) or repack 16 rows into
// lanes on every call (prefill, matmul_q8_avx512.cc); at 8 tokens, a batched
// decode step, the repack was a quarter of the step. Here a zmm load is
// already 4 columns of 16 rows, one row per 32-bit lane, and one broadcast
// 4-byte group of activations feeds all 16 rows.
//
// Integer sums. vpdpbusd multiplies unsigned by signed bytes. The weights
// are stored signed (exact Q8_0 bytes, and the AMX B-tile layout), so each
// weight load is flipped to u = w + 128 (one xor, shared by the tile's
// tokens) and the activations are the signed operand. Per token, x16 =
// 254 q + r (exact, |x16| <= 32385) is split as x16 = 256 h + l with
// h = (x16 + 128) >> 8 in [-127, 127] and l = x16 - 256 h in [-128, 127]
// (both int8). Per row and group:
//   P1 = sum(u h) = sum(w h) + 128 sum(h),  P2 = sum(u l) = sum(w l) + 128 sum(l)
//   isum = (P1 << 8) + P2 - 128 sum(x16)
// the reference's exact isum = 254 sum(w q) + sum(w r) (kernels/blocks.h);
// every term stays below 2^31 (|P1 << 8| < 2^28.1, |128 sum(x16)| < 2^27.1).
// The correction 128 sum(x16) is the token's, per group, made once per call
// with the planes. Per 16 rows, group and token: 16 vpdpbusd (8 per plane) +
// 3 ops to finish; per 16 rows and group 8 loads and 8 xors.
//
// int4: the values 0..15 are unsigned already, so P1 = sum(w h), P2 =
// sum(w l) and isum = (P1 << 8) + P2 with no correction. A 64-byte load is 8
// columns of the 16 rows: its low nibbles columns 4L .. 4L + 3 of the group
// and its high nibbles 16 + 4L .. (kInt4G32's nibble order), split by one
// and, one shift and one more and; then the same 16 vpdpbusd per group and
// token, and the u4 finish a = fma(m_w, x.s, a) after the d_w term.
//
// Float order: per slice of kSliceGroups groups a = 0, then per group
// a = fma(float(isum), d_w * x.d, a), then y = first slice ? a : y + a: the
// order of every other AVX-512 and AMX path (matmul_q8_avx512.cc), so a
// token's outputs do not depend on the call's other tokens or row range
// (batch invariance) and equal the row-layout kInt8G32 / kInt4G32 products'
// bit for bit (tested).
//
// Loops: the activations of the call (or, when they exceed 32 KB per plane,
// of 64 tokens x one slice) are split into the hu / l planes once; then per
// pair of 16-row blocks and slice (16 KB of weights, kept in L1) every tile
// of up to 4 tokens passes over them; with 4 tokens or fewer the next pair is
// prefetched a line per chunk. Register tile: 2 blocks x 4 tokens =
// 16 int32 sums + 8 float accumulators.
#include <cstring>

#include "kernels/avx512/kernels_avx512.h"
#include "kernels/avx512/simd_avx512.h"

namespace tern {
namespace TERN_AVX512_NS {

namespace {

constexpr uint32_t kRows = 16;          // rows per interleaved block: one per 32-bit lane
constexpr uint32_t kSliceGroups = 16;   // the float order's slice (matmul_q8_avx512.cc)
constexpr uint32_t kBlocks = 2;         // row blocks per register tile
constexpr uint32_t kTileTokens = 4;     // tokens per register tile
constexpr uint32_t kChunkBytes = 64;    // 4 columns x 16 rows
constexpr uint32_t kPlaneBytes = 32 * 1024;
constexpr uint32_t kTokenBlock = kPlaneBytes / (kSliceGroups * kGroup);  // 64 tokens of one slice

// The split activations: per token a row of `row_bytes` bytes in each plane
// and `row_bytes / 32` corrections.
struct ActPlanes {
  alignas(64) int8_t h[kPlaneBytes];                // (x16 + 128) >> 8
  alignas(64) int8_t l[kPlaneBytes];                // x16 - 256 h
  alignas(64) int32_t corr[kPlaneBytes / kGroup];   // 128 sum(x16) per group
};

// Tokens [t0, t0 + nt), groups [gb, ge) of x into the planes (row_bytes =
// (ge - gb) * 32 per token).
void split_planes(const ActRowsQ8& x, uint32_t t0, uint32_t nt, uint32_t gb, uint32_t ge, ActPlanes* a) {
  const uint32_t n = (ge - gb) * kGroup;
  const __m256i k254 = _mm256_set1_epi16(int16_t(kResidualScale));
  const __m256i k128 = _mm256_set1_epi16(128);
  const __m256i ones = _mm256_set1_epi16(1);
  for (uint32_t t = 0; t < nt; ++t) {
    const size_t off = size_t(t0 + t) * x.cols + size_t(gb) * kGroup;
    const int8_t* q = x.q + off;
    const int8_t* r = x.r + off;
    int8_t* h = a->h + size_t(t) * n;
    int8_t* l = a->l + size_t(t) * n;
    int32_t* corr = a->corr + size_t(t) * (ge - gb);
    for (uint32_t c = 0; c < n; c += kGroup) {
      __m256i sum = _mm256_setzero_si256();
      for (uint32_t half = 0; half < kGroup; half += 16) {
        const __m256i vq = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + c + half)));
        const __m256i vr = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + c + half)));
        const __m256i x16 = _mm256_add_epi16(_mm256_mullo_epi16(vq, k254), vr);
        // x16 + 128 <= 32513: no int16 overflow.
        const __m256i hi = _mm256_srai_epi16(_mm256_add_epi16(x16, k128), 8);  // -127..127
        const __m256i lo = _mm256_sub_epi16(x16, _mm256_slli_epi16(hi, 8));    // -128..127
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(x16, ones));
        // packs per 128-bit lane: {hi 0..7, lo 0..7 | hi 8..15, lo 8..15}
        // (in range: exact); the 64-bit permute puts the hi bytes low.
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi16(hi, lo), 0xd8);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(h + c + half), _mm256_castsi256_si128(p));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(l + c + half), _mm256_extracti128_si256(p, 1));
      }
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum);
      int32_t total = 0;
      for (int i = 0; i < 8; ++i) total += lanes[i];
      corr[c / kGroup] = 128 * total;
    }
  }
}

// Four bytes at p in every 32-bit lane.
inline V16i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return set1_i32(v);
}

// One register tile: kBlocks row blocks x T tokens over ng groups.
struct Tile {
  const int8_t* w[kBlocks];     // each block's q at the slice's first group
  const uint16_t* d[kBlocks];   // each block's scales at the slice's first group
  const int8_t* prefetch[kBlocks];  // the next blocks' q at the same place, or null
  const int8_t* h[kTileTokens];   // each token's h plane at the slice's first group
  const int8_t* l[kTileTokens];
  const int32_t* corr[kTileTokens];  // each token's corrections at the slice's first group
  const float* xd[kTileTokens];   // each token's x.d at the slice's first group
  const float* xs[kTileTokens];   // and x.s (int4's m term)
  float* y[kTileTokens];          // each token's output row (y + t * y_stride)
  uint32_t row[kBlocks];          // each block's first row
  uint32_t lo[kBlocks], hi[kBlocks];  // rows [lo, hi) of the block are stored (hi == lo: none)
  uint32_t ng;
  uint32_t nv;                    // valid tokens (the rest repeat the last)
  bool accumulate;                // y += (a later slice) or y = (the first)
};

inline void store_lanes(float* out, V16f v, uint32_t lo, uint32_t hi, bool accumulate) {
  if (lo == 0 && hi == kRows) {
    store_f(out, accumulate ? add_f(load_f(out), v) : v);
    return;
  }
  alignas(64) float tmp[kRows];
  store_f(tmp, v);
  for (uint32_t i = lo; i < hi; ++i) out[i] = accumulate ? out[i] + tmp[i] : tmp[i];
}

enum class R16 { kI8, kU4 };

// Bytes of one row block per group, and f16 scale values per group (d, or d and m).
template <R16 K> constexpr uint32_t kGroupBytes = K == R16::kI8 ? kGroup * kRows : kGroup / 2 * kRows;
template <R16 K> constexpr uint32_t kScalesPerGroup = K == R16::kI8 ? kRows : 2 * kRows;

template <R16 K, int T>
void tile(const Tile& c) {
  const V16i flip = set1_i8(int8_t(-128));  // int8: w ^ 0x80 = w + 128 as an unsigned byte
  const V16i nibble = set1_i8(0x0f);
  V16f acc[kBlocks][T];
  unrolled<kBlocks>([&](auto b) { unrolled<T>([&](auto j) { acc[b][j] = zero_f(); }); });
  for (uint32_t g = 0; g < c.ng; ++g) {
    V16i p1[kBlocks][T], p2[kBlocks][T];
    unrolled<kBlocks>([&](auto b) { unrolled<T>([&](auto j) { p1[b][j] = zero_i(); p2[b][j] = zero_i(); }); });
    const size_t gw = size_t(g) * kGroupBytes<K>;
    // Unrolled: as a loop, GCC copied every accumulator once per iteration.
    // Per 64-byte unit k: int8 one set of weights (columns 4k ..), int4 two
    // (low nibbles columns 4k .., high nibbles 16 + 4k ..).
    constexpr int kSets = K == R16::kI8 ? 1 : 2;
    unrolled<kGroupBytes<K> / kChunkBytes>([&](auto k) {
      V16i wv[kSets][kBlocks];
      unrolled<kBlocks>([&](auto b) {
        const V16i raw = load_i(c.w[b] + gw + k * kChunkBytes);
        if (c.prefetch[b]) _mm_prefetch(reinterpret_cast<const char*>(c.prefetch[b] + gw + k * kChunkBytes), _MM_HINT_T0);
        if constexpr (K == R16::kI8) {
          wv[0][b] = xor_i(raw, flip);
        } else {
          wv[0][b] = and_i(raw, nibble);
          wv[kSets - 1][b] = and_i(srli_i16<4>(raw), nibble);
        }
      });
      unrolled<kSets>([&](auto set) {
        const uint32_t col = 4 * (uint32_t(k) + 4 * uint32_t(set));
        unrolled<T>([&](auto j) {
          const V16i hb = bcast4(c.h[j] + g * kGroup + col);
          const V16i lb = bcast4(c.l[j] + g * kGroup + col);
          unrolled<kBlocks>([&](auto b) {
            p1[b][j] = dpbusd(p1[b][j], wv[set][b], hb);
            p2[b][j] = dpbusd(p2[b][j], wv[set][b], lb);
          });
        });
      });
    });
    unrolled<kBlocks>([&](auto b) {
      const uint16_t* sg = c.d[b] + size_t(g) * kScalesPerGroup<K>;
      const V16f d = load_f16(sg);
      unrolled<T>([&](auto j) {
        V16i isum = add_i(slli_i32<8>(p1[b][j]), p2[b][j]);
        if constexpr (K == R16::kI8) isum = sub_i(isum, set1_i32(c.corr[j][g]));
        acc[b][j] = fmadd_f(cvt_f(isum), mul_f(d, set1_f(c.xd[j][g])), acc[b][j]);
      });
      if constexpr (K == R16::kU4) {
        const V16f m = load_f16(sg + kRows);
        unrolled<T>([&](auto j) { acc[b][j] = fmadd_f(m, set1_f(c.xs[j][g]), acc[b][j]); });
      }
    });
  }
  unrolled<kBlocks>([&](auto b) {
    unrolled<T>([&](auto j) {
      if (uint32_t(j) < c.nv && c.lo[b] < c.hi[b])
        store_lanes(c.y[j] + c.row[b], acc[b][j], c.lo[b], c.hi[b], c.accumulate);
    });
  });
}

template <R16 K>
void matmul_r16(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1, float* y,
                size_t y_stride) {
  const ActRowsQ8& x = in.q8;
  if (n_tokens == 0 || r0 >= r1) return;
  const uint32_t groups = w.cols / kGroup;
  const size_t block_q = size_t(groups) * kGroupBytes<K>;       // bytes of one row block's q
  const size_t block_s = size_t(groups) * kScalesPerGroup<K>;  // f16 scales of one row block
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  const uint32_t b0 = r0 / kRows, b1 = (r1 + kRows - 1) / kRows;
  // All the call's activations in one split when they fit (decode, batched
  // steps): then each block pair's weights are read once, in order.
  const bool whole = size_t(n_tokens) * w.cols <= kPlaneBytes;
  const uint32_t span = whole ? groups : kSliceGroups;
  const uint32_t token_block = whole ? n_tokens : kTokenBlock;
  ActPlanes act;
  for (uint32_t gb = 0; gb < groups; gb += span) {
    const uint32_t ge = groups - gb < span ? groups : gb + span;
    const uint32_t row_bytes = (ge - gb) * kGroup;
    for (uint32_t t0 = 0; t0 < n_tokens; t0 += token_block) {
      const uint32_t nt = n_tokens - t0 < token_block ? n_tokens - t0 : token_block;
      split_planes(x, t0, nt, gb, ge, &act);
      for (uint32_t bb = b0; bb < b1; bb += kBlocks) {
        Tile c;
        for (uint32_t b = 0; b < kBlocks; ++b) {
          const uint32_t blk = bb + b < b1 ? bb + b : bb;  // a missing block repeats the first, unstored
          c.row[b] = blk * kRows;
          const uint32_t first = c.row[b], last = first + kRows;
          c.lo[b] = bb + b < b1 ? (r0 > first ? r0 - first : 0) : 0;
          c.hi[b] = bb + b < b1 ? (r1 < last ? r1 - first : kRows) : 0;
        }
        for (uint32_t s = gb; s < ge; s += kSliceGroups) {
          c.ng = ge - s < kSliceGroups ? ge - s : kSliceGroups;
          c.accumulate = s > 0;
          for (uint32_t b = 0; b < kBlocks; ++b) {
            c.w[b] = wq + (c.row[b] / kRows) * block_q + size_t(s) * kGroupBytes<K>;
            c.d[b] = w.scales + (c.row[b] / kRows) * block_s + size_t(s) * kScalesPerGroup<K>;
            // Decode and a batched step's few tokens stream the weights at
            // DRAM speed: fetch the next pair's blocks while these run (the
            // hardware prefetcher stops at every 4 KB page). With more
            // tokens than a tile the first tile fetches them; the others
            // read this pair from L1 (8 tokens without it: a third of the
            // speed, the tiles waiting on DRAM).
            const bool streamed = whole || nt <= kTileTokens;
            c.prefetch[b] = streamed && bb + kBlocks + b < b1 ? c.w[b] + kBlocks * block_q : nullptr;
          }
          for (uint32_t j = 0; j < nt; j += kTileTokens) {
            if (j == kTileTokens)
              for (uint32_t b = 0; b < kBlocks; ++b) c.prefetch[b] = nullptr;
            c.nv = nt - j < kTileTokens ? nt - j : kTileTokens;
            for (uint32_t i = 0; i < kTileTokens; ++i) {
              const uint32_t tj = j + (i < c.nv ? i : c.nv - 1);
              c.h[i] = act.h + size_t(tj) * row_bytes + size_t(s - gb) * kGroup;
              c.l[i] = act.l + size_t(tj) * row_bytes + size_t(s - gb) * kGroup;
              c.corr[i] = act.corr + size_t(tj) * (ge - gb) + (s - gb);
              c.xd[i] = x.d + size_t(t0 + tj) * groups + s;
              c.xs[i] = x.s + size_t(t0 + tj) * groups + s;
              c.y[i] = y + size_t(t0 + tj) * y_stride;
            }
            if (c.nv == 1) {
              tile<K, 1>(c);
            } else if (c.nv == 2) {
              tile<K, 2>(c);
            } else {
              tile<K, 4>(c);  // 3 tokens: the fourth repeats the third, unstored
            }
          }
        }
      }
    }
  }
}

}  // namespace

void matmul_i8g32r16_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride) {
  matmul_r16<R16::kI8>(w, in, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32r16_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride) {
  matmul_r16<R16::kU4>(w, in, n_tokens, r0, r1, y, y_stride);
}

}  // namespace TERN_AVX512_NS
}  // namespace tern
