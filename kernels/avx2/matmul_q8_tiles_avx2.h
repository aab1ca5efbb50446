// Machinery shared by the AVX2 quantized matmuls (matmul_q8q8_avx2.cc for
// int8 weights, matmul_q4q8_avx2.cc for int4 and int5) against the two-plane
// activations of kernels/blocks.h (coarse q, residual r, x ~= d (254 q + r)).
//
// The planes are combined once per call into 16-bit activations
//   x16 = 254 q + r        |x16| <= 254 * 127 + 127 = 32385 < 2^15 (exact)
// (maddubs of the constant bytes (254, 1) against q and r interleaved), kept in
// a stack buffer, so the per-weight work is one madd_epi16 per 16 weights:
//   int8 weights: sign-extended to i16 (vpmovsxbw), 2 madd per group of 32;
//   int4 weights: the nibbles of 32 bytes (two groups) read as 16-bit words
//                 b give four i16 vectors with two and/shift ops each:
//                 b & 0xf, (b >> 4) & 0xf, (b >> 8) & 0xf, b >> 12,
//                 4 madd per two groups; x16 is stored in the matching order.
//   int5 weights: the int4 unpack with the high-bit plane OR'ed into the
//                 nibble bytes first (high_bits_int5, load_w16_int5), then
//                 even/odd bytes as words: the same four i16 vectors.
// The madd results of a group add to 8 x i32 partials of
//   isum = 254 sum(w q) + sum(w r)
// of 4 (int8: 4 * 127 * 32385 = 16451580) or 8 (int4: 8 * 15 * 32385; int5:
// 8 * 31 * 32385 = 8031480) products each, all < 2^24: exact in int32 and
// exact when converted to float. They are FMA'd with the combined scale
// d_w[r,g] * x.d[t,g] into 8-lane accumulators, so every integer partial of the reference's group sum is exact and only the
// float accumulation order differs (lanes, a horizontal sum per output, and
// per slice of columns). For int4 the m_w[r,g] * x.s[t,g] term is FMA'd 8
// groups at a time into the same accumulator. (Against the maddubs route,
// maddubs(|w|, sign(q, w)) and the same for r, then madd by 254 and by 1,
// this halves the integer multiplies per weight: 2 vs 4 per 32 int8 weights.)
//
// Register tiles: decode (n_tokens == 1, in the two .cc files) runs 4 rows x
// 1 token so four weight streams are in flight (with software prefetch of the
// next tile's rows into L2); prefill runs 2 rows x 4 tokens so each weight
// group is loaded (and widened or unpacked) once and used for 4 tokens.
//
// One float order (batch invariance): every path of the AVX2 and AVX-VNNI
// tables (decode, the fused tiles below, the unpacked int4 / int5 prefill of
// prefill_unpacked_avx2.cc) computes y[t][r] with the same float operations
// in the same order, so a token's outputs are the same bits whatever else is
// in the call:
//   per slice of kPrefillSliceGroups groups: acc = 0 (8 lanes), then per
//   chunk of kChunk groups:
//     int4 / int5: acc = fma(m_w[g], x.s[g], acc), lane k = group g0 + k;
//     per group (int8) or pair of groups (int4 / int5): acc = fma(float(p),
//       d_w[g] * x.d[g], acc), p the exact int32 lane partials (int8: lane k
//       = elements 2k, 2k+1, 16+2k, 17+2k; int4 / int5: group g in lanes
//       0..3, g+1 in 4..7, lane k = elements 4k..4k+3 and 16+4k..19+4k);
//   y = hsum(acc) for the first slice, else y + hsum(acc).
// The integer partials are exact, so it does not matter how they are formed
// (vpmaddwd against x16 here, vpdpbusd against h / l in AVX-VNNI, int8
// panels in the unpacked prefill): the lanes' element sets are what is fixed.
// Decode reads whole rows (kDecodeSliceGroups) and folds at the same slice
// boundaries (DecodeFold).
// Only files under kernels/avx2/ and kernels/avxvnni/ include this header.
#pragma once
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/avx2/kernels_avx2.h"
#include "kernels/unrolled.h"

namespace tern {
namespace avx2 {
namespace tiles {

constexpr uint32_t kChunk = 8;  // groups whose scales are converted together

// ---- x16 = 254 q + r -------------------------------------------------------------

// x16 of one group: lo = elements 0..15, hi = 16..31.
struct Wide16 {
  __m256i lo, hi;
};
inline Wide16 load_wide16(const int8_t* q, const int8_t* r) {
  const __m256i vq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  const __m256i vr = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r));
  const __m256i k = _mm256_set1_epi16(int16_t(0x0100 | (kResidualScale & 0xff)));  // bytes 254, 1
  const __m256i a = _mm256_maddubs_epi16(k, _mm256_unpacklo_epi8(vq, vr));  // elements 0..7 | 16..23
  const __m256i b = _mm256_maddubs_epi16(k, _mm256_unpackhi_epi8(vq, vr));  // elements 8..15 | 24..31
  return Wide16{_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31)};
}

// Columns are processed in slices whose x16 fits a stack buffer; rows longer
// than a slice are done slice by slice, accumulating into y. Decode slices
// must cover typical rows whole: reading rows in pieces strided by the row
// length cost ~25% of DRAM bandwidth (2048 of 4096 columns, measured).
constexpr uint32_t kDecodeSliceGroups = 256;  // 8192 columns: 16 KB of x16
constexpr uint32_t kPrefillSliceGroups = 64;  // x 4 tokens: 16 KB of x16
// Decode prefetches the weights this many bytes (rounded up to whole tiles of
// R rows) ahead of the loads. One tile ahead was enough for rows of 4096
// columns (16 KB per 4-row int8 tile) but not for the model's rows of 576:
// 2.3 KB ahead left DRAM idle and int8 decode of a 576-column matrix streamed
// 13 GB/s; 8 KB ahead streams 19-20 GB/s (4 KB: 18, 16 KB: no better).
constexpr size_t kDecodePrefetchBytes = 8192;
inline size_t decode_tiles_ahead(size_t tile_bytes) {
  return tile_bytes >= kDecodePrefetchBytes ? 1 : (kDecodePrefetchBytes + tile_bytes - 1) / tile_bytes;
}
struct X16Decode {
  alignas(32) int16_t v[kDecodeSliceGroups * kGroup];
};
struct X16Prefill {
  alignas(32) int16_t v[4][kPrefillSliceGroups * kGroup];  // [token][slice cols]
};

// int8 layout: per group, x16 of elements 0..31 in order (two ymm).
// q, r: the slice's first group of one token; n groups.
inline void build_x16_int8(const int8_t* q, const int8_t* r, uint32_t n, int16_t* out) {
  for (uint32_t i = 0; i < n; ++i) {
    const Wide16 v = load_wide16(q + i * kGroup, r + i * kGroup);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + i * kGroup), v.lo);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + i * kGroup + 16), v.hi);
  }
}

// int4 layout, per pair of groups (g, g+1) four ymm matching the nibbles of
// the pair's 32 bytes read as 16-bit words b (group g in the low 128-bit
// lane, g+1 in the high one; byte k holds elements k and k+16):
//   b & 0xf -> elements 0,2,..,14   (b >> 4) & 0xf -> 16,18,..,30
//   (b >> 8) & 0xf -> 1,3,..,15      b >> 12        -> 17,19,..,31
// so the pair's x16 is stored as [evens 0..14], [evens 16..30], [odds 1..15],
// [odds 17..31], each as {group g | group g+1}. An odd last group pairs with
// zeros (and its weights are loaded as 16 bytes, zero-extended).
inline void build_x16_int4(const int8_t* q, const int8_t* r, uint32_t n, int16_t* out) {
  // Within each 128-bit lane: i16 evens to the low qword, odds to the high.
  const __m256i deint = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                         0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i zero = _mm256_setzero_si256();
  // ev[0]/od[0]: evens/odds of elements 0..15, ev[1]/od[1]: of 16..31, each
  // in the low 128 bits.
  auto evens_odds = [&](uint32_t i, __m256i* ev, __m256i* od) {
    const Wide16 v = load_wide16(q + i * kGroup, r + i * kGroup);
    const __m256i a = _mm256_shuffle_epi8(v.lo, deint);
    const __m256i b = _mm256_shuffle_epi8(v.hi, deint);
    ev[0] = _mm256_permute4x64_epi64(a, 0x88);
    od[0] = _mm256_permute4x64_epi64(a, 0xdd);
    ev[1] = _mm256_permute4x64_epi64(b, 0x88);
    od[1] = _mm256_permute4x64_epi64(b, 0xdd);
  };
  for (uint32_t i = 0; i < n; i += 2) {
    __m256i e0[2], o0[2], e1[2] = {zero, zero}, o1[2] = {zero, zero};
    evens_odds(i, e0, o0);
    if (i + 1 < n) evens_odds(i + 1, e1, o1);
    __m256i* dst = reinterpret_cast<__m256i*>(out + i * kGroup);  // 4 ymm per pair
    dst[0] = _mm256_permute2x128_si256(e0[0], e1[0], 0x20);
    dst[1] = _mm256_permute2x128_si256(e0[1], e1[1], 0x20);
    dst[2] = _mm256_permute2x128_si256(o0[0], o1[0], 0x20);
    dst[3] = _mm256_permute2x128_si256(o0[1], o1[1], 0x20);
  }
}

// ---- weights ---------------------------------------------------------------------

// One int8 group widened to i16: elements 0..15, 16..31.
inline void load_w16_int8(const int8_t* p, __m256i* w16) {
  w16[0] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  w16[1] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
}

// The nibbles of a pair of int4 groups (or one group, zero-extended) as four
// i16 vectors, in the order of build_x16_int4.
inline void load_w16_int4(const uint8_t* p, bool pair, __m256i* w16) {
  const __m256i m4 = _mm256_set1_epi16(0x000f);
  const __m256i b = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                         : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  w16[0] = _mm256_and_si256(b, m4);
  w16[1] = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
  w16[2] = _mm256_and_si256(_mm256_srli_epi16(b, 8), m4);
  w16[3] = _mm256_srli_epi16(b, 12);
}

// ---- int5: the high-bit plane ----------------------------------------------------
//
// A kInt5G32 group adds 4 bytes H of high bits (bit k of H = bit 4 of element
// k, little-endian) to the int4 nibbles. They are spread to one byte per
// element, 16 or 0, in the nibble bytes' order (byte k of the "lo" vector:
// element k, low nibble; of the "hi" vector: element k + 16, high nibble) and
// OR'ed into the unpacked nibbles, so the products see q5 = nibble | hb << 4
// and everything after the unpack is the int4 code. Per pair of groups it
// costs 7 ops (one shift, then shuffle, and, min per vector) plus one OR per
// vector:
//   src   = the pair's 8 bytes [H_g H_g+1] in each 64-bit lane, the odd lanes
//           shifted left by 4 (vpsllvq), so every bit of H sits at bit 4..7 of
//           some source byte: bit i >= 4 of byte t in the even qword, bit i < 4
//           (as i + 4) in the odd one;
//   byte  = shuffle(src): per output byte that source byte (in-lane, so the
//           low lane reads H_g and the high lane H_g+1);
//   hb16  = min_epu8(byte & (1 << (4 + i % 4)), 16): the bit, isolated, is 16,
//           32, 64 or 128 when set and 0 when clear; min makes it 16 or 0.
// (The obvious and + cmpeq + and needs one op more per vector; AVX2 has no
// per-byte variable shift.)
// h: the pair's first group's 4 high-bit bytes; `pair` false: one group only,
// the high lane zero (as the nibbles of an odd last group).
inline void high_bits_int5(const uint8_t* h, bool pair, __m256i* lo, __m256i* hi) {
  // vbroadcastsd from memory is a pure load (a broadcast of a register is a
  // shuffle-port op); the lone group is loaded as 4 bytes, zero-extended.
  __m256i h8;
  if (pair) {
    h8 = _mm256_castpd_si256(_mm256_broadcast_sd(reinterpret_cast<const double*>(h)));
  } else {
    uint32_t v4;
    std::memcpy(&v4, h, 4);
    h8 = _mm256_set1_epi64x(int64_t(v4));
  }
  const __m256i src = _mm256_sllv_epi64(h8, _mm256_setr_epi64x(0, 4, 0, 4));
  // Element k's byte: H byte k / 8, bit i = k % 8; i >= 4 from byte k / 8,
  // i < 4 from byte 8 + k / 8 (shifted). High lane: H_g+1, 4 bytes further.
  const __m256i idx_lo = _mm256_setr_epi8(8, 8, 8, 8, 0, 0, 0, 0, 9, 9, 9, 9, 1, 1, 1, 1,
                                          12, 12, 12, 12, 4, 4, 4, 4, 13, 13, 13, 13, 5, 5, 5, 5);
  const __m256i idx_hi = _mm256_add_epi8(idx_lo, _mm256_set1_epi8(2));  // H bytes 2, 3: elements 16..31
  const __m256i bit = _mm256_set1_epi32(int32_t(0x80402010u));
  const __m256i sixteen = _mm256_set1_epi8(16);
  *lo = _mm256_min_epu8(_mm256_and_si256(_mm256_shuffle_epi8(src, idx_lo), bit), sixteen);
  *hi = _mm256_min_epu8(_mm256_and_si256(_mm256_shuffle_epi8(src, idx_hi), bit), sixteen);
}

// The q5 values of a pair of int5 groups (or one group, zero-extended) as four
// i16 vectors in the order of build_x16_int4 (the int4 layout): the nibble
// bytes with the high bits OR'ed in, lo5 (elements k) and hi5 (k + 16), then
// even bytes (& 0x00ff) and odd bytes (>> 8) of each as words. 16 ops per
// pair against int4's 7.
inline void load_w16_int5(const uint8_t* p, const uint8_t* h, bool pair, __m256i* w16) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m8 = _mm256_set1_epi16(0x00ff);
  const __m256i b = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                         : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  __m256i hb_lo, hb_hi;
  high_bits_int5(h, pair, &hb_lo, &hb_hi);
  const __m256i lo5 = _mm256_or_si256(_mm256_and_si256(b, m4), hb_lo);
  const __m256i hi5 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), hb_hi);
  w16[0] = _mm256_and_si256(lo5, m8);    // elements 0, 2, .., 14
  w16[1] = _mm256_and_si256(hi5, m8);    // 16, 18, .., 30
  w16[2] = _mm256_srli_epi16(lo5, 8);    // 1, 3, .., 15
  w16[3] = _mm256_srli_epi16(hi5, 8);    // 17, 19, .., 31
}

// 8 x i32 partials of a group (int8) or a pair of groups (int4) against x16.
inline __m256i dot_int8(const __m256i* w16, const __m256i* x16) {
  return _mm256_add_epi32(_mm256_madd_epi16(w16[0], _mm256_load_si256(x16)),
                          _mm256_madd_epi16(w16[1], _mm256_load_si256(x16 + 1)));
}
inline __m256i dot_int4(const __m256i* w16, const __m256i* x16) {
  return _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(w16[0], _mm256_load_si256(x16)),
                                           _mm256_madd_epi16(w16[1], _mm256_load_si256(x16 + 1))),
                          _mm256_add_epi32(_mm256_madd_epi16(w16[2], _mm256_load_si256(x16 + 2)),
                                           _mm256_madd_epi16(w16[3], _mm256_load_si256(x16 + 3))));
}

// ---- decode's slice fold ----------------------------------------------------------

// Decode reads a row whole but folds its 8-lane sums into y at the prefill's
// slice boundaries, as the tiles do: y = hsum(acc) after the first slice,
// y + hsum(acc) after the others (accumulate: y holds earlier slices).
template <int R>
struct DecodeFold {
  float y[R];
  bool first;
  DecodeFold(const float* y0, bool accumulate) : first(!accumulate) {
    unrolled<R>([&](auto i) { y[i] = accumulate ? y0[i] : 0.0f; });
  }
  // Before the chunk at group g0 (decode's slice starts at gb): fold if a
  // prefill slice ends there.
  void at_chunk(uint32_t g0, uint32_t gb, __m256* acc) {
    if (g0 != gb && g0 % kPrefillSliceGroups == 0) fold(acc);
  }
  void fold(__m256* acc) {
    unrolled<R>([&](auto i) {
      const float v = hsum(acc[i]);
      y[i] = first ? v : y[i] + v;
      acc[i] = _mm256_setzero_ps();
    });
    first = false;
  }
};

// ---- scales ----------------------------------------------------------------------

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

// ---- int4 / int5 decode: a chunk's scales ------------------------------------------

// The start of decode's chunk [g0, g0 + n) for R rows (AVX2 and AVX-VNNI):
// prefetch the rows' scales (and u5 high bits) that far ahead, add the
// chunk's m * x.s terms to acc (lane k = group g0 + k: the tiles' first float
// step) and give d_w[g] * x.d[g] per group in c (0 past n).
template <int R, bool kInt5>
inline void decode_chunk_start(const uint16_t* const* ws, const uint8_t* const* wh, const ActRowsQ8& x, uint32_t g0,
                               uint32_t n, size_t scales_ahead, size_t high_ahead, __m256* acc, __m256* c) {
  const __m256i mask = lane_mask(n);
  const __m256 xd8 = load_partial(x.d + g0, n, mask);
  const __m256 xs8 = load_partial(x.s + g0, n, mask);
  unrolled<R>([&](auto i) {
    _mm_prefetch(reinterpret_cast<const char*>(ws[i] + 2 * g0 + scales_ahead), _MM_HINT_T1);
    // A chunk's high bits are 32 bytes: half a line, prefetched twice.
    if constexpr (kInt5) _mm_prefetch(reinterpret_cast<const char*>(wh[i] + g0 * (kGroup / 8) + high_ahead), _MM_HINT_T1);
    __m256 d, m;
    load_scales_int4(ws[i] + 2 * g0, n, mask, &d, &m);
    acc[i] = _mm256_fmadd_ps(m, xs8, acc[i]);
    c[i] = _mm256_mul_ps(d, xd8);
  });
}

// ---- tiles -----------------------------------------------------------------------

// One R x T prefill tile: rows [r, r+R), tokens [t, t+T), groups [gb, ge)
// whose x16 is in xb (built from gb). y = partial (accumulate: y += partial).
// kInt5 (with kInt4): the int4 tile with the high-bit plane OR'ed in.
template <bool kInt4, int R, int T, bool kInt5 = false>
void tile(const WeightMatrix& w, const ActRowsQ8& x, const X16Prefill& xb, uint32_t gb,
          uint32_t ge, uint32_t r, uint32_t t, float* y, size_t y_stride, bool accumulate) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = kInt4 ? w.cols / 2 : w.cols;
  const size_t row_scales = kInt4 ? 2 * groups : groups;
  const uint8_t* wq[R];
  const uint8_t* wh[R];  // kInt5: the rows' high-bit planes
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
    // Combined scales d_w * x.d for this chunk: int8 [R][T][8] (broadcast per
    // group); int4 [R][T][4 pairs][8] = {s_g x4, s_g+1 x4} per pair of groups.
    alignas(32) float sc[R][T][kInt4 ? kChunk / 2 : 1][kChunk];
    const __m256i mask = lane_mask(n);
    __m256 xd8[T];
    unrolled<T>([&](auto j) { xd8[j] = load_partial(xd[j] + g0, n, mask); });
    unrolled<R>([&](auto i) {
      __m256 d, m;
      if constexpr (kInt4) {
        load_scales_int4(ws[i] + 2 * g0, n, mask, &d, &m);
        unrolled<T>([&](auto j) {
          acc[i][j] = _mm256_fmadd_ps(m, load_partial(xs[j] + g0, n, mask), acc[i][j]);
        });
      } else {
        d = load_scales_int8(ws[i] + g0, n);
      }
      unrolled<T>([&](auto j) {
        const __m256 c = _mm256_mul_ps(d, xd8[j]);
        if constexpr (kInt4) {
          unrolled<kChunk / 2>([&](auto q) {
            const __m256i idx = _mm256_setr_epi32(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1);
            _mm256_store_ps(sc[i][j][q], _mm256_permutevar8x32_ps(c, idx));
          });
        } else {
          _mm256_store_ps(sc[i][j][0], c);
        }
      });
    });
    const uint32_t off = (g0 - gb) * kGroup;  // this chunk in the x16 slice
    if constexpr (kInt4) {
      for (uint32_t gi = 0; gi < n; gi += 2) {
        __m256i w16[R][4];
        unrolled<R>([&](auto i) {
          if constexpr (kInt5)
            load_w16_int5(wq[i] + (g0 + gi) * (kGroup / 2), wh[i] + (g0 + gi) * (kGroup / 8), gi + 2 <= n, w16[i]);
          else
            load_w16_int4(wq[i] + (g0 + gi) * (kGroup / 2), gi + 2 <= n, w16[i]);
        });
        unrolled<T>([&](auto j) {
          const __m256i* xv = reinterpret_cast<const __m256i*>(xb.v[j] + off + gi * kGroup);
          unrolled<R>([&](auto i) {
            const __m256 p = _mm256_cvtepi32_ps(dot_int4(w16[i], xv));
            acc[i][j] = _mm256_fmadd_ps(p, _mm256_load_ps(sc[i][j][gi / 2]), acc[i][j]);
          });
        });
      }
    } else {
      for (uint32_t gi = 0; gi < n; ++gi) {
        __m256i w16[R][2];
        unrolled<R>([&](auto i) {
          load_w16_int8(reinterpret_cast<const int8_t*>(wq[i]) + (g0 + gi) * kGroup, w16[i]);
        });
        unrolled<T>([&](auto j) {
          const __m256i* xv = reinterpret_cast<const __m256i*>(xb.v[j] + off + gi * kGroup);
          unrolled<R>([&](auto i) {
            const __m256 p = _mm256_cvtepi32_ps(dot_int8(w16[i], xv));
            acc[i][j] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(&sc[i][j][0][gi]), acc[i][j]);
          });
        });
      }
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

template <bool kInt4, int R, bool kInt5 = false>
void tile_tokens(const WeightMatrix& w, const ActRowsQ8& x, const X16Prefill& xb, uint32_t gb,
                 uint32_t ge, uint32_t nt, uint32_t r, uint32_t t, float* y, size_t y_stride,
                 bool accumulate) {
  switch (nt) {
    case 1: tile<kInt4, R, 1, kInt5>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
    case 2: tile<kInt4, R, 2, kInt5>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
    case 3: tile<kInt4, R, 3, kInt5>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
    default: tile<kInt4, R, 4, kInt5>(w, x, xb, gb, ge, r, t, y, y_stride, accumulate); break;
  }
}

// Prefill (n_tokens > 1): 2 rows x 4 tokens tiles over panels of rows. A
// panel's weights (~64 KB) stay in L2 while every token block passes over
// them, so each weight byte comes from DRAM once per call, not once per token
// block; a token block's x16 (one column slice, 16 KB) is built once and used
// by every row of the panel. kInt5 (with kInt4): int5 weights, the int4 x16
// layout (panels sized by both planes).
template <bool kInt4, bool kInt5 = false>
void matmul_prefill(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                    uint32_t r1, float* y, size_t y_stride) {
  static_assert(kInt4 || !kInt5, "int5 is the int4 path plus a high-bit plane");
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = kInt5 ? w.cols / 2 + w.cols / 8 : kInt4 ? w.cols / 2 : w.cols;
  uint32_t panel = uint32_t((size_t(64) << 10) / (row_bytes ? row_bytes : 1));
  panel = panel < 2 ? 2 : panel & ~1u;
  X16Prefill xb;
  for (uint32_t p0 = r0; p0 < r1; p0 += panel) {
    const uint32_t p1 = r1 - p0 < panel ? r1 : p0 + panel;
    for (uint32_t t = 0; t < n_tokens; t += 4) {
      const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
      for (uint32_t gb = 0; gb < groups; gb += kPrefillSliceGroups) {
        const uint32_t ge = groups - gb < kPrefillSliceGroups ? groups : gb + kPrefillSliceGroups;
        for (uint32_t j = 0; j < nt; ++j) {
          const int8_t* q = x.q + size_t(t + j) * x.cols + gb * kGroup;
          const int8_t* r = x.r + size_t(t + j) * x.cols + gb * kGroup;
          if (kInt4) build_x16_int4(q, r, ge - gb, xb.v[j]);
          else build_x16_int8(q, r, ge - gb, xb.v[j]);
        }
        uint32_t r = p0;
        for (; r + 2 <= p1; r += 2) tile_tokens<kInt4, 2, kInt5>(w, x, xb, gb, ge, nt, r, t, y, y_stride, gb > 0);
        if (r < p1) tile_tokens<kInt4, 1, kInt5>(w, x, xb, gb, ge, nt, r, t, y, y_stride, gb > 0);
      }
    }
  }
}

}  // namespace tiles
}  // namespace avx2
}  // namespace tern
