// AVX-512 matrix products of 1 .. kPrefillMinTokens - 1 tokens (decode, a
// batched step's rows and short prefill) for every integer weight type,
// each output computed in the one float order that every AVX-512 and AMX
// path shares, so that a token's y[t][r] is the same bits whatever
// n_tokens, the other tokens of the call and the row range [r0, r1) (batch
// invariance):
//   for each slice s of 16 groups (kSliceGroups, the prefill's slices):
//     a = 0
//     for each group g of the slice, in order:
//       a = fma(float(isum[r, g]), d_w[r, g] * x.d[t, g], a)   (one float multiply, then the fma)
//       a = fma(m_w[r, g], x.s[t, g], a)                      (u4 / u5 only)
//     y = s == 0 ? a : y + a
// with isum = 254 sum(w q) + sum(w r), the reference's exact int32 group sum
// (kernels/blocks.h). The prefill (matmul_q8_avx512.cc) and the AMX tiles
// (kernels/amx/matmul_q8_amx.cc) finish groups that way with one row per
// 32-bit lane; so do these kernels: 16 rows at a time, row i in lane i, the
// float steps the prefill tile's instruction for instruction. Only the
// exact integer sums are formed differently.
//
// Integer sums. A row is read a step at a time: one zmm of weights, int8 a
// pair of groups (64 bytes), u4 / u5 a quad (64 nibble bytes). The
// activations are split as x16 = 254 q + r = 256 h + l, h = x16 >> 8 in
// [-127, 126] (int8) and l = x16 & 255 (uint8), and per row and token
//   P = dpbusd(dpbusd(0, wu, h) << 8, l, w)
// (vpdpbusd multiplies unsigned by signed bytes: u4 / u5 values 0..31 are
// both; int8 weights go in as wu = w ^ 0x80 = w + 128 against h, which adds
// 32768 sum(h) per group, a constant of the token (corr) subtracted once per
// group for all 16 rows). Every int32 lane of P holds a few columns of one
// group (|lane| < 2^25):
//   int8:  the pair's 64 bytes as stored, so 128-bit lanes {g, g, g+1, g+1};
//   u4/u5: two zmm per quad, lo = elements 0..15 and hi = 16..31 of the 4
//          groups (128-bit lane j: group j; the nibbles' low and high halves,
//          no shuffle), both fed to the same P (u5: 16 added to the bytes
//          whose high-bit plane bit is set, the 4 groups' 16-bit halves picked
//          by vpshufb and tested into a mask); h and l stored in that order.
// Four vector ops per row and int8 pair (8 per u4 quad, 14 per u5 quad):
// 2 to 3.5 per row and group, where the AVX2 / AVX-VNNI decode took ~4 to 5.5.
//
// The 16 rows' P of a step are then reduced to one vector of 16 exact
// per-row isums per group by a transpose-and-add tree, merged as the rows
// come so few registers stay live: pairs of rows by 32-bit unpacks + add,
// pairs of those by 64-bit unpacks + add (a 128-bit lane then holds 4 rows),
// then 128-bit lane shuffles (int8 with one add folding each group's two
// lanes). 44 ops per 16 rows and step: ~1.4 per row and group for int8, ~0.7
// for u4 / u5. Integer adds are exact in any order.
//
// Scales: per slice and 16 rows, each row's 16 f16 d (or 16 {d, m} pairs)
// converted and transposed once into [group][row] vectors. Rows past the
// call's range are lanes with zero scales, computed on a repeat of the last
// row (valid memory) and never stored.
//
// Memory: a block streams 16 rows (and their scales, u5 high bits) with
// software prefetch into L2 (struct Prefetch below); the activations of up
// to 256 groups (64 for 2..4 tokens) are split into h / l once per pass and
// stay in L1 while the rows pass. With several tokens each row's weights are
// loaded and unpacked once for all of them.
#include "kernels/avx512/kernels_avx512.h"
#include "kernels/avx512/simd_avx512.h"
#include "kernels/avx512/weight_rows_avx512.h"

namespace tern {
namespace TERN_AVX512_NS {

namespace {

constexpr uint32_t kRows = 16;         // rows per block: one per 32-bit lane
constexpr uint32_t kSliceGroups = 16;  // the prefill's column slice (same float order)
// Prefetch distance in weight bytes of one row stream, as the AVX2 decode
// (kernels/avx2/matmul_q8_tiles_avx2.h): rounded up to whole 16-row blocks.
constexpr size_t kDecodePrefetchBytes = 8192;

// Groups of activations split per pass over the rows: 17 KB for one token
// (h, l and corr), the same for up to 4 tokens of 64 groups. A multiple of
// kSliceGroups, so a pass never splits a slice.
template <int T>
constexpr uint32_t kChunkGroups = T == 1 ? 256 : 64;

// A pass's activations, per token: h and l in the kind's step layout (see the
// top of the file: int8 in element order, u4 / u5 per quad elements 0..15 of
// its 4 groups then 16..31); a last step's missing groups are zeros.
// corr[g] = 32768 sum(h) of group g (int8 only).
template <int T>
struct XChunk {
  alignas(64) int8_t h[T][kChunkGroups<T> * kGroup];
  alignas(64) uint8_t l[T][kChunkGroups<T> * kGroup];
  alignas(64) int32_t corr[T][kChunkGroups<T>];
};

// Groups per step of a row: int8 a pair (one zmm of weights), u4 / u5 a
// quad (one zmm of nibbles).
template <Kind K>
constexpr uint32_t kStepGroups = K == Kind::kI8 ? 2 : 4;

// h, l (and corr) of n groups of one token's q, r planes, in the kind's
// layout; the groups that complete the last step are zeros.
template <Kind K>
void build_x(const int8_t* q, const int8_t* r, uint32_t n, int8_t* h, uint8_t* l, int32_t* corr) {
  const __m256i k254 = _mm256_set1_epi16(int16_t(kResidualScale));
  const __m256i low8 = _mm256_set1_epi16(0x00ff);
  for (uint32_t g = 0; g < n; ++g) {
    const int8_t* qg = q + size_t(g) * kGroup;
    const int8_t* rg = r + size_t(g) * kGroup;
    // x16 of elements 0..15 and 16..31 (exact: |x16| <= 32385).
    __m256i x[2];
    for (int k = 0; k < 2; ++k) {
      const __m256i vq = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qg + 16 * k)));
      const __m256i vr = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rg + 16 * k)));
      x[k] = _mm256_add_epi16(_mm256_mullo_epi16(vq, k254), vr);
    }
    const __m256i h0 = _mm256_srai_epi16(x[0], 8), h1 = _mm256_srai_epi16(x[1], 8);
    // packs interleave 128-bit lanes ({0..7 16..23 | 8..15 24..31}); 0xd8 restores element order.
    const __m256i hb = _mm256_permute4x64_epi64(_mm256_packs_epi16(h0, h1), 0xd8);
    const __m256i lb = _mm256_permute4x64_epi64(
        _mm256_packus_epi16(_mm256_and_si256(x[0], low8), _mm256_and_si256(x[1], low8)), 0xd8);
    if constexpr (K == Kind::kI8) {
      const __m256i s = _mm256_madd_epi16(_mm256_add_epi16(h0, h1), _mm256_set1_epi16(1));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
      corr[g] = 32768 * _mm_cvtsi128_si32(s4);  // |sum h| <= 32 * 127: < 2^28
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + size_t(g) * kGroup), hb);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(l + size_t(g) * kGroup), lb);
    } else {
      // Quad layout: elements 0..15 of its 4 groups, then elements 16..31.
      const size_t o = size_t(g / 4) * 4 * kGroup + (g % 4) * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(h + o), _mm256_castsi256_si128(hb));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(h + o + 64), _mm256_extracti128_si256(hb, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(l + o), _mm256_castsi256_si128(lb));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(l + o + 64), _mm256_extracti128_si256(lb, 1));
    }
  }
  // The last step's missing groups: zeros, so whatever the weight load puts
  // in their lanes adds nothing (their sums are not used either).
  for (uint32_t g = n; g % kStepGroups<K> != 0; ++g) {
    if constexpr (K == Kind::kI8) {
      __builtin_memset(h + size_t(g) * kGroup, 0, kGroup);
      __builtin_memset(l + size_t(g) * kGroup, 0, kGroup);
      corr[g] = 0;
    } else {
      const size_t o = size_t(g / 4) * 4 * kGroup + (g % 4) * 16;
      __builtin_memset(h + o, 0, 16);
      __builtin_memset(h + o + 64, 0, 16);
      __builtin_memset(l + o, 0, 16);
      __builtin_memset(l + o + 64, 0, 16);
    }
  }
}

// Bytes of one group in the q plane.
template <Kind K>
constexpr size_t kGroupBytes = K == Kind::kI8 ? kGroup : kGroup / 2;

// The int8 weights of a pair of groups of one row (64 bytes at q); kHalf:
// group g alone (the last, odd one), nothing past it read, the partner's
// lanes zero.
template <bool kHalf>
inline V16i load_pair_i8(const uint8_t* q) {
#if TERN_AVX512_EMULATE
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  return V16i{a, kHalf ? _mm256_setzero_si256() : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32))};
#else
  return kHalf ? _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)))
               : _mm512_loadu_si512(q);
#endif
}

// The u4 / u5 weights of nv <= 4 groups of one row (nibbles at q, u5 high
// bits at hb) as two zmm of values: lo = elements 0..15 of each group, hi =
// elements 16..31 (128-bit lane j: group j). Lanes of groups past nv are
// zero; nothing past them is read.
template <Kind K, bool kFull>
inline void load_quad(const uint8_t* q, const uint8_t* hb, uint32_t nv, V16i* lo, V16i* hi) {
#if TERN_AVX512_EMULATE
  alignas(32) uint8_t buf[64] = {};
  const uint8_t* p = q;
  if (!kFull) {
    __builtin_memcpy(buf, q, 16 * nv);
    p = buf;
  }
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  *lo = V16i{_mm256_and_si256(v0, m4), _mm256_and_si256(v1, m4)};
  *hi = V16i{_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)};
  if constexpr (K == Kind::kU5) {
    __m256i hbit[4];  // per group: 16 or 0 per element, elements 0..31
    for (uint32_t j = 0; j < 4; ++j) hbit[j] = kFull || j < nv ? high_bit_bytes(hb + 4 * j) : _mm256_setzero_si256();
    auto lanes = [&](int half, uint32_t j0) {  // elements 16 half .. of groups j0, j0 + 1
      return half == 0 ? _mm256_permute2x128_si256(hbit[j0], hbit[j0 + 1], 0x20)
                       : _mm256_permute2x128_si256(hbit[j0], hbit[j0 + 1], 0x31);
    };
    lo->lo = _mm256_or_si256(lo->lo, lanes(0, 0));
    lo->hi = _mm256_or_si256(lo->hi, lanes(0, 2));
    hi->lo = _mm256_or_si256(hi->lo, lanes(1, 0));
    hi->hi = _mm256_or_si256(hi->hi, lanes(1, 2));
  }
#else
  const __m512i z = kFull ? _mm512_loadu_si512(q) : _mm512_maskz_loadu_epi8(_cvtu64_mask64(~0ull >> (64 - 16 * nv)), q);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  *lo = _mm512_and_si512(z, m4);
  *hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
  if constexpr (K == Kind::kU5) {
    // The 4 groups' high-bit words (bit k of word j: element k of group j)
    // in every 128-bit lane; byte k of lane j takes byte 4j + k / 8 (lo) or
    // 4j + 2 + k / 8 (hi) and tests its bit k % 8; 16 added where set.
    const __m128i w = kFull ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(hb))
                            : _mm_maskz_loadu_epi8(_cvtu32_mask16(0xffffu >> (16 - 4 * nv)), hb);
    const __m512i words = _mm512_broadcast_i32x4(w);
    const __m512i idx_lo = _mm512_set_epi64(0x0d0d0d0d0d0d0d0d, 0x0c0c0c0c0c0c0c0c, 0x0909090909090909,
                                            0x0808080808080808, 0x0505050505050505, 0x0404040404040404,
                                            0x0101010101010101, 0x0000000000000000);
    const __m512i idx_hi = _mm512_add_epi8(idx_lo, _mm512_set1_epi8(2));
    const __m512i bit = _mm512_set1_epi64(int64_t(0x8040201008040201ull));
    const __m512i k16 = _mm512_set1_epi8(16);
    *lo = _mm512_mask_add_epi8(*lo, _mm512_test_epi8_mask(_mm512_shuffle_epi8(words, idx_lo), bit), *lo, k16);
    *hi = _mm512_mask_add_epi8(*hi, _mm512_test_epi8_mask(_mm512_shuffle_epi8(words, idx_hi), bit), *hi, k16);
  }
#endif
}

// One row's exact partial sums P of a step (kStepGroups groups) against
// one token's h, l there: int8 P = dpbusd(dpbusd(0, w + 128, h) << 8, l, w)
// (the w + 128 offset removed per group later, corr); u4 / u5 the same over
// the lo and hi halves of the quad.
template <Kind K>
struct StepWeights {
  V16i a, b;  // int8: w + 128, w; u4 / u5: lo, hi
};

template <Kind K>
inline V16i step_dot(const StepWeights<K>& wv, const int8_t* xh, const uint8_t* xl) {
  if constexpr (K == Kind::kI8) {
    return dpbusd(slli_i32<8>(dpbusd(zero_i(), wv.a, load_i(xh))), load_i(xl), wv.b);
  } else {
    const V16i ph = dpbusd(dpbusd(zero_i(), wv.a, load_i(xh)), wv.b, load_i(xh + 64));
    return dpbusd(dpbusd(slli_i32<8>(ph), load_i(xl), wv.a), load_i(xl + 64), wv.b);
  }
}

// The tree of one step and token (top of the file), fed row by row:
// p0 (row 2k), a0 (rows 4k, 4k+1), b0 (4 rows; rows 4m .. 4m+3 in the 32-bit
// lanes of every 128-bit lane), then
//   int8 (128-bit lanes {g, g, g+1, g+1}): c0 = {rows 0..3 g, g+1, rows
//     4..7 g, g+1} folded, then e[0], e[1] = rows 0..15 of g, g + 1;
//   u4 / u5 (128-bit lane j: group g + j): c0, c1 = groups {0, 1}, {2, 3} of
//     rows 0..7, then e[0..3] = rows 0..15 of each group.
struct Tree {
  V16i p0, a0, b0, c0, c1;
  V16i e[4];
};

template <Kind K, int I>
inline void tree_push(Tree& s, V16i p) {
  if constexpr (I % 2 == 0) {
    s.p0 = p;
  } else {
    const V16i a = add_i(unpacklo_i32(s.p0, p), unpackhi_i32(s.p0, p));
    if constexpr (I % 4 == 1) {
      s.a0 = a;
    } else {
      const V16i b = add_i(unpacklo_i64(s.a0, a), unpackhi_i64(s.a0, a));
      if constexpr (I % 8 == 3) {
        s.b0 = b;
      } else if constexpr (K == Kind::kI8) {
        const V16i c = add_i(shuffle_i128<0, 2, 0, 2>(s.b0, b), shuffle_i128<1, 3, 1, 3>(s.b0, b));
        if constexpr (I == 7) {
          s.c0 = c;
        } else {
          s.e[0] = shuffle_i128<0, 2, 0, 2>(s.c0, c);
          s.e[1] = shuffle_i128<1, 3, 1, 3>(s.c0, c);
        }
      } else if constexpr (I == 7) {
        s.c0 = shuffle_i128<0, 1, 0, 1>(s.b0, b);
        s.c1 = shuffle_i128<2, 3, 2, 3>(s.b0, b);
      } else {
        const V16i u0 = shuffle_i128<0, 1, 0, 1>(s.b0, b);  // rows 8..11, 12..15
        const V16i u1 = shuffle_i128<2, 3, 2, 3>(s.b0, b);
        s.e[0] = shuffle_i128<0, 2, 0, 2>(s.c0, u0);
        s.e[1] = shuffle_i128<1, 3, 1, 3>(s.c0, u0);
        s.e[2] = shuffle_i128<0, 2, 0, 2>(s.c1, u1);
        s.e[3] = shuffle_i128<1, 3, 1, 3>(s.c1, u1);
      }
    }
  }
}

// Software prefetch, into L2, of the rows `ahead` rows down (the hardware
// prefetcher alone left decode at half the DRAM bandwidth: 16 rows read a
// line at a time each are not streams it follows). Two ways, chosen by
// measurement on a Sapphire-Rapids-class Xeon (KVM, one core; weights in the
// page cache as a mapped blob is, and in anonymous memory):
//   per row: each row's line of the step, `ahead` and 1.5 x `ahead` rows
//            down: best for int8 (576 to 8192 columns: 5 to 25% over address
//            order) and for u4 / u5 rows of 2 KB and more; the second,
//            redundant request gained ~3% on int8 rows of 576 to 1024 columns;
//   address order: the block ahead's bytes from its start, 16 lines per step
//            (a block has at most 16 q-plane lines per step), one ascending
//            stream per plane that the hardware prefetcher follows too: best
//            for shorter u4 / u5 rows (5 to 15%) and for the scales and high
//            bits of every kind (kScaleLines, kHighLines per step: their
//            bytes per block over its steps).
// A pass that splits the rows into chunks (cn < groups) prefetches per row
// only: the block ahead in address order would cover other chunks' columns.
struct Prefetch {
  const char* q;  // the block ahead's first q-plane byte in address order, or null: per row
  size_t aq;      // per row: the distance in bytes
  const char* s;  // the block ahead's first scale byte, or null: per row, at each slice
  const char* h;  // its first u5 high-bit byte
};

template <Kind K>
constexpr int kScaleLines = K == Kind::kI8 ? 1 : 4;  // 16 rows x 2 B x (1 or 2) x kStepGroups / 64
template <Kind K>
constexpr int kHighLines = K == Kind::kU5 ? 4 : 0;   // 16 rows x 4 B x 4 groups / 64

// One step (kStepGroups groups from g) of 16 rows x T tokens: row by row, the
// row's weights fed to every token's tree; then each group's canonical float
// steps into acc[t], groups in order. !kFull: only the first nv groups of the
// step (the last, short one of the matrix); nothing past them is read.
//   wq, wh: the rows' q plane and u5 high bits at group 0;
//   xc, xg: the pass's activations and g's index in them;
//   sd: the slice's transposed scales at group g (int8: d, 16 floats per
//       group; u4 / u5: d then m, 32 floats per group).
template <Kind K, int T, bool kFull>
inline void step(const uint8_t* const* wq, const uint8_t* const* wh, const Prefetch& pf, uint32_t g, uint32_t nv,
                 const XChunk<T>& xc, uint32_t xg, const float* sd, const ActRowsQ8& x, uint32_t groups,
                 V16f* acc) {
  constexpr bool kI8 = K == Kind::kI8;
  constexpr uint32_t kG = kStepGroups<K>;
  const size_t si = g / kG;  // the step's index in the row
  Tree tree[T];
  unrolled<kRows>([&](auto ii) {
    constexpr int i = decltype(ii)::value;
    const uint8_t* q = wq[i] + size_t(g) * kGroupBytes<K>;
    if (pf.q != nullptr) {
      _mm_prefetch(pf.q + (si * kRows + i) * 64, _MM_HINT_T1);
    } else {
      _mm_prefetch(reinterpret_cast<const char*>(q + pf.aq), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(q + pf.aq + pf.aq / 2), _MM_HINT_T1);
    }
    if (pf.s != nullptr) {
      if constexpr (i < kScaleLines<K>) _mm_prefetch(pf.s + (si * kScaleLines<K> + i) * 64, _MM_HINT_T1);
      if constexpr (i < kHighLines<K>) _mm_prefetch(pf.h + (si * kHighLines<K> + i) * 64, _MM_HINT_T1);
    }
    StepWeights<K> wv;
    if constexpr (kI8) {
      wv.b = load_pair_i8<!kFull>(q);             // short: the odd last group alone
      wv.a = xor_i(wv.b, set1_i8(int8_t(0x80)));  // w + 128: the unsigned operand against h
    } else {
      load_quad<K, kFull>(q, K == Kind::kU5 ? wh[i] + size_t(g) * (kGroup / 8) : nullptr, nv, &wv.a, &wv.b);
    }
    unrolled<T>([&](auto t) {
      const size_t xo = size_t(xg) * kGroup;
      tree_push<K, i>(tree[t], step_dot<K>(wv, xc.h[t] + xo, xc.l[t] + xo));
    });
  });
  constexpr size_t kScaleStride = kI8 ? kRows : 2 * kRows;  // floats per group in sd
  unrolled<T>([&](auto t) {
    unrolled<kG>([&](auto j) {
      if (!kFull && uint32_t(j) >= nv) return;
      V16i s = tree[t].e[j];
      if constexpr (kI8) s = sub_i(s, set1_i32(xc.corr[t][xg + j]));  // the w + 128 offset
      const float* sg = sd + j * kScaleStride;
      const size_t xo = size_t(t) * groups + g + j;
      acc[t] = fmadd_f(cvt_f(s), mul_f(load_f(sg), set1_f(x.d[xo])), acc[t]);
      if constexpr (!kI8) acc[t] = fmadd_f(load_f(sg + kRows), set1_f(x.s[xo]), acc[t]);
    });
  });
}

// Rows [r, r + nr) (nr <= 16) x T tokens over the pass's groups [cg, cg + cn),
// slice by slice; y rows of each token = the slice partial (first slice of
// the matrix) or += it.
template <Kind K, int T>
void row_block(const WeightMatrix& w, const ActRowsQ8& x, const XChunk<T>& xc, uint32_t cg, uint32_t cn,
               uint32_t r, uint32_t nr, size_t ahead_rows, float* y, size_t y_stride) {
  constexpr bool kI8 = K == Kind::kI8;
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = size_t(groups) * kGroupBytes<K>;
  const size_t high_row = w.cols / 8;               // u5 high-bit plane bytes per row
  const size_t scale_row = kI8 ? groups : 2 * size_t(groups);  // f16 per row
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const uint8_t* high = base + size_t(w.rows) * (w.cols / 2);
  const uint8_t* wq[kRows];
  const uint8_t* wh[kRows];
  const uint16_t* ws[kRows];
  for (uint32_t i = 0; i < kRows; ++i) {
    // Lanes past the range compute on the last row again (valid memory;
    // zero scales, never stored).
    const size_t row = r + (i < nr ? i : nr - 1);
    wq[i] = base + row * row_bytes;
    wh[i] = high + row * high_row;
    ws[i] = w.scales + row * scale_row;
  }
  Prefetch pf{nullptr, ahead_rows * row_bytes, nullptr, nullptr};
  if (cn == groups) {
    const size_t ra = r + ahead_rows;
    if (!kI8 && row_bytes < 2048) pf.q = reinterpret_cast<const char*>(base + ra * row_bytes);
    pf.s = reinterpret_cast<const char*>(w.scales + ra * scale_row);
    pf.h = reinterpret_cast<const char*>(high + ra * high_row);
  }
  for (uint32_t sb = cg; sb < cg + cn; sb += kSliceGroups) {
    const uint32_t ng = cg + cn - sb < kSliceGroups ? cg + cn - sb : kSliceGroups;
    // The slice's scales as [group][row] (u4 / u5: d, m per group), rows past
    // nr zero: each row's f16 (16 per vector) converted, 16 rows transposed.
    constexpr uint32_t kPer = kI8 ? 1 : 2;  // f16 per group and row
    const uint32_t n16 = ng * kPer;         // f16 per row of the slice
    alignas(64) float sd[kPer * kSliceGroups][kRows];
    for (uint32_t c0 = 0; c0 < n16; c0 += 16) {
      const uint32_t n = n16 - c0 < 16 ? n16 - c0 : 16;
      V16i rows[kRows];
      for (uint32_t i = 0; i < kRows; ++i) {
        const uint16_t* s = ws[i] + size_t(sb) * kPer + c0;
        if (pf.s == nullptr) {
          // Per-row prefetch: the next blocks' scale rows (and u5 high bits)
          // of this slice, into L2.
          _mm_prefetch(reinterpret_cast<const char*>(s + ahead_rows * scale_row), _MM_HINT_T1);
          if constexpr (K == Kind::kU5) {
            if (c0 == 0)
              _mm_prefetch(reinterpret_cast<const char*>(wh[i] + size_t(sb) * (kGroup / 8) + ahead_rows * high_row),
                           _MM_HINT_T1);
          }
        }
        if (i >= nr) {
          rows[i] = zero_i();
        } else if (n == 16) {
          rows[i] = bits_i(load_f16(s));
        } else {
#if TERN_AVX512_EMULATE
          alignas(64) float f[16] = {};
          for (uint32_t k = 0; k < n; ++k) f[k] = f16_scalar(s[k]);
          rows[i] = bits_i(load_f(f));
#else
          rows[i] = bits_i(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(_cvtu32_mask16(0xffffu >> (16 - n)), s)));
#endif
        }
      }
      store_transposed_16x16(rows, reinterpret_cast<int32_t*>(sd[c0]));
    }
    V16f acc[T];
    unrolled<T>([&](auto t) { acc[t] = zero_f(); });
    constexpr uint32_t kG = kStepGroups<K>;
    uint32_t k = 0;
    for (; k + kG <= ng; k += kG)
      step<K, T, true>(wq, wh, pf, sb + k, kG, xc, sb + k - cg, sd[k * kPer], x, groups, acc);
    if (k < ng) step<K, T, false>(wq, wh, pf, sb + k, ng - k, xc, sb + k - cg, sd[k * kPer], x, groups, acc);
    unrolled<T>([&](auto t) { store_rows_f(y + size_t(t) * y_stride + r, acc[t], nr, sb > 0); });
  }
}

// Rows ahead that decode prefetches: kDecodePrefetchBytes rounded up to
// whole 16-row blocks.
template <Kind K>
size_t prefetch_ahead_rows(uint32_t groups) {
  const size_t tile_bytes = kRows * size_t(groups) * kGroupBytes<K>;
  return kRows * (tile_bytes >= kDecodePrefetchBytes ? 1 : (kDecodePrefetchBytes + tile_bytes - 1) / tile_bytes);
}

template <Kind K, int T>
void small(const WeightMatrix& w, const ActRowsQ8& x, uint32_t r0, uint32_t r1, float* y, size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  const size_t ahead_rows = prefetch_ahead_rows<K>(groups);
  XChunk<T> xc;
  for (uint32_t cg = 0; cg < groups; cg += kChunkGroups<T>) {
    const uint32_t cn = groups - cg < kChunkGroups<T> ? groups - cg : kChunkGroups<T>;
    for (uint32_t t = 0; t < uint32_t(T); ++t) {
      const size_t off = size_t(t) * x.cols + size_t(cg) * kGroup;
      build_x<K>(x.q + off, x.r + off, cn, xc.h[t], xc.l[t], xc.corr[t]);
    }
    for (uint32_t r = r0; r < r1; r += kRows)
      row_block<K, T>(w, x, xc, cg, cn, r, r1 - r < kRows ? r1 - r : kRows, ahead_rows, y, y_stride);
  }
}

// 5..8 tokens (a batched decode step of up to 8 sequences): tokens 0..3 and
// 4..4+T2-1 as two passes over each block of 16 rows, the second reading the
// rows from L1 / L2, so the weights stream from DRAM once and nothing is
// repacked (the prefill's per-call repack made an 8-row step 5x one row's).
// Each pass is small<K, T>'s, so every output keeps the one float order.
template <Kind K, int T2>
void small_two_passes(const WeightMatrix& w, const ActRowsQ8& x, uint32_t r0, uint32_t r1, float* y,
                      size_t y_stride) {
  constexpr uint32_t kChunk = kChunkGroups<4>;  // both passes over the same groups
  static_assert(kChunkGroups<T2> >= kChunk, "the second pass's activations hold a chunk");
  const uint32_t groups = w.cols / kGroup;
  const size_t ahead_rows = prefetch_ahead_rows<K>(groups);
  const ActRowsQ8 x2{x.q + 4 * size_t(x.cols), x.r + 4 * size_t(x.cols), x.d + 4 * size_t(groups),
                     x.s + 4 * size_t(groups), x.cols};
  float* y2 = y + 4 * y_stride;
  XChunk<4> xa;
  XChunk<T2> xb;
  for (uint32_t cg = 0; cg < groups; cg += kChunk) {
    const uint32_t cn = groups - cg < kChunk ? groups - cg : kChunk;
    for (uint32_t t = 0; t < 4; ++t) {
      const size_t off = size_t(t) * x.cols + size_t(cg) * kGroup;
      build_x<K>(x.q + off, x.r + off, cn, xa.h[t], xa.l[t], xa.corr[t]);
    }
    for (uint32_t t = 0; t < uint32_t(T2); ++t) {
      const size_t off = size_t(t) * x.cols + size_t(cg) * kGroup;
      build_x<K>(x2.q + off, x2.r + off, cn, xb.h[t], xb.l[t], xb.corr[t]);
    }
    for (uint32_t r = r0; r < r1; r += kRows) {
      const uint32_t nr = r1 - r < kRows ? r1 - r : kRows;
      row_block<K, 4>(w, x, xa, cg, cn, r, nr, ahead_rows, y, y_stride);
      row_block<K, T2>(w, x2, xb, cg, cn, r, nr, ahead_rows, y2, y_stride);
    }
  }
}

template <Kind K>
void small_n(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0, uint32_t r1, float* y,
             size_t y_stride) {
  static_assert(kPrefillMinTokens == 9, "instantiated for 1..8 tokens");
  switch (n_tokens) {
    case 1: return small<K, 1>(w, x, r0, r1, y, y_stride);
    case 2: return small<K, 2>(w, x, r0, r1, y, y_stride);
    case 3: return small<K, 3>(w, x, r0, r1, y, y_stride);
    case 4: return small<K, 4>(w, x, r0, r1, y, y_stride);
    case 5: return small_two_passes<K, 1>(w, x, r0, r1, y, y_stride);
    case 6: return small_two_passes<K, 2>(w, x, r0, r1, y, y_stride);
    case 7: return small_two_passes<K, 3>(w, x, r0, r1, y, y_stride);
    default: return small_two_passes<K, 4>(w, x, r0, r1, y, y_stride);
  }
}

}  // namespace

void small_matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride) {
  small_n<Kind::kI8>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void small_matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride) {
  small_n<Kind::kU4>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

void small_matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride) {
  small_n<Kind::kU5>(w, in.q8, n_tokens, r0, r1, y, y_stride);
}

}  // namespace TERN_AVX512_NS
}  // namespace tern
