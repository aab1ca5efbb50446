// y = W x for int8 / int4 / int5 weights with the ARMv8.6 int8 matrix
// multiply (i8mm): prefill only. One smmla (vmmlaq_s32) multiplies a 2x8
// int8 block of two weight rows by the transpose of a 2x8 block of two
// tokens and adds the 2x2 int32 result, so a pair of rows meets a pair of
// tokens 8 elements at a time. Below kMinTokens tokens (decode) the product
// is the neon-dotprod one (matmul_q8_neondot.cc).
//
// Layout: a panel of up to kPanelRows rows x a slice of up to kSliceGroups
// groups is unpacked once (int4 / int5 to int8 values 0..15 / 0..31, int8
// as is) into a stack buffer in smmla order: per pair of rows and group, four
// 16-byte chunks {row a elements 8c..8c+7 | row b elements 8c..8c+7} and the
// f16 scales as floats in the lanes of the 2x2 result {d_a, d_a, d_b, d_b}
// (and m). Per block of 4 tokens the slice's activations are interleaved the
// same way per pair of tokens, both planes, with {d_t0, d_t1, d_t0, d_t1}
// (and s). Odd rows / tokens are paired with zeros and never stored.
//
// Tile: up to 6 rows x 4 tokens (3 row pairs x 2 token pairs), two int32
// accumulators per 2x2 block, one per activation plane (coarse q, residual
// r), filled by 4 + 4 smmla per group and combined once per group as
//   isum = kResidualScale * sum(w * q) + sum(w * r)
// (exact in int32: |isum| <= 255 * 32 * 127 * 127 < 2^31), the reference's
// integer group sum. Float work per (row, token, group) is the reference's
// and matmul_q8_tiles.h's, in its order:
//   int8:        acc += (d_w * d_x) * float(isum)
//   int4 / int5: acc += ((d_w * d_x) * float(isum) + m_w * s_x)
// over the groups in order; a slice after the first starts from the y the
// previous slice stored, so slicing changes no rounding. This file is
// compiled with -ffp-contract=off (kernels/CMakeLists.txt): every float
// operation rounds once as written, so the result does not depend on which
// multiply-adds a compiler fuses (neon-i8mm equals its emulated twin bit for
// bit, and on x86 the twin equals the scalar reference bit for bit).
//
// Compiled with -march=armv8.2-a+dotprod+i8mm+fp16; only reached through
// neoni8mm_kernels() when the CPU reports i8mm (and asimddp). Compiled a
// second time with TERN_NEON_I8MM_EMULATE (kernels/neon/emulated/, baseline
// flags, any host) against kernels/neon/emulated/neon_emulation.h: the
// test-only "neon-i8mm-emulated" table. Internal helpers are in an unnamed
// namespace and no inline function of a shared header is called (a COMDAT
// copy built with i8mm could be kept for baseline callers).
#if TERN_NEON_I8MM_EMULATE
#include "kernels/neon/emulated/neon_emulation.h"
#define TERN_NEON_I8MM_NS neoni8mm_emulated
#else
#include <arm_neon.h>
#define TERN_NEON_I8MM_NS neoni8mm
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/neon/kernels_neon.h"
#include "kernels/unrolled.h"
#if TERN_NEON_I8MM_EMULATE && !defined(__aarch64__)
#include "kernels/ref/kernels_ref.h"
#endif

namespace tern {
namespace TERN_NEON_I8MM_NS {

// Decode (and prefill below kMinTokens): the dotprod product; the emulated
// twin off AArch64 has only the scalar reference.
#if TERN_NEON_I8MM_EMULATE && !defined(__aarch64__)
namespace decode = ref;
#else
namespace decode = neondot;
#endif

namespace {

#if TERN_NEON_I8MM_EMULATE
using namespace neon_emulation;
#endif

// From this many tokens on the smmla tiles run (one block of 4 tokens; with
// 2 or 3 tokens the panel unpack has little to amortize over). Not measured
// on i8mm hardware: a first guess.
constexpr uint32_t kMinTokens = 4;
// Register tile: kTilePairs row pairs x 2 token pairs (6 rows x 4 tokens):
// 12 int32 and 6 float accumulators plus the operands fit the 32 vector
// registers; GCC 12 spills 4 row pairs x 2 token pairs.
constexpr int kTilePairs = 3;
// Panel and slice: the unpacked weights (kPanelRows / 2 pairs x kSliceGroups
// x 96 bytes = 18 KB) and one block's activations (2 pairs x kSliceGroups x
// 160 bytes = 5 KB) stay in L1 while every block of tokens passes.
constexpr uint32_t kPanelRows = 8 * kTilePairs;
constexpr uint32_t kSliceGroups = 16;

enum class QKind { kI8, kU4, kU5 };
constexpr bool has_min(QKind k) { return k != QKind::kI8; }

// One pair of rows, one group: 4 chunks of {row a 8 values | row b 8 values},
// then the scales in the 2x2 lane order (rows a, a, b, b).
template <bool kMin>
struct WRec {
  int8_t q[64];
  float d[4];
};
template <>
struct WRec<true> {
  int8_t q[64];
  float d[4];
  float m[4];
};

// One pair of tokens, one group: both planes as 4 chunks of {token 0 8 values
// | token 1 8 values}, then x.d (and x.s) in the 2x2 lane order (tokens 0, 1, 0, 1).
template <bool kMin>
struct XRec {
  int8_t q[64];
  int8_t r[64];
  float d[4];
};
template <>
struct XRec<true> {
  int8_t q[64];
  int8_t r[64];
  float d[4];
  float s[4];
};

// One f16 scale to float, exactly.
inline float half_to_float(uint16_t h) {
#if TERN_NEON_I8MM_EMULATE
  // Bit by bit, as blocks.h's f16_to_f32 (not called: its inline copy would
  // be one more weak symbol of this object).
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, nan
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    exp = 127 - 15 + 1;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#else
  __fp16 f;
  std::memcpy(&f, &h, sizeof f);
  return float(f);
#endif
}

// The weights as the kernel reads them: q bytes, high-bit plane (kU5), scales.
struct Weights {
  const uint8_t* q;
  size_t row_bytes;
  const uint8_t* high;  // kU5: [rows][cols / 8]
  size_t high_row_bytes;
  const uint16_t* scales;
  size_t scales_per_row;
};

// Bit 4 of a group's 32 int5 values as byte masks (0xff set, 0x00 clear), `lo`
// elements 0..15, `hi` 16..31, from its 4 high-bit bytes (bit i of byte b =
// element 8b + i): each byte broadcast to its 8 lanes, each lane tests its bit.
inline void high_bit_masks(const uint8_t* h, uint8x16_t* lo, uint8x16_t* hi) {
  uint32_t word;
  std::memcpy(&word, h, 4);
  const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(word));
  static const uint8_t kIdxLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static const uint8_t kIdxHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  *lo = vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kIdxLo)), bit);
  *hi = vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kIdxHi)), bit);
}

// Group g of row r as int8 values: lo = elements 0..15, hi = 16..31.
template <QKind K>
inline void load_group(const Weights& w, uint32_t r, uint32_t g, int8x16_t* lo, int8x16_t* hi) {
  const uint8_t* row = w.q + size_t(r) * w.row_bytes;
  if constexpr (K == QKind::kI8) {
    const int8_t* p = reinterpret_cast<const int8_t*>(row) + g * kGroup;
    *lo = vld1q_s8(p);
    *hi = vld1q_s8(p + 16);
  } else {
    // 16 bytes: low nibble = element j, high nibble = element j + 16.
    const uint8x16_t b = vld1q_u8(row + g * (kGroup / 2));
    uint8x16_t l = vandq_u8(b, vdupq_n_u8(0x0f));
    uint8x16_t h = vshrq_n_u8(b, 4);
    if constexpr (K == QKind::kU5) {
      // Bit 4 of every nibble lane is 0: take it from the mask, bits 0..3
      // from the nibble, q = nibble | high << 4 in 0..31.
      uint8x16_t ml, mh;
      high_bit_masks(w.high + size_t(r) * w.high_row_bytes + g * (kGroup / 8), &ml, &mh);
      const uint8x16_t bit4 = vdupq_n_u8(0x10);
      l = vbslq_u8(bit4, ml, l);
      h = vbslq_u8(bit4, mh, h);
    }
    *lo = vreinterpretq_s8_u8(l);
    *hi = vreinterpretq_s8_u8(h);
  }
}

// 16 + 16 values of a and b as the 4 smmla chunks {a 8c..8c+7 | b 8c..8c+7}.
inline void store_chunks(int8x16_t a_lo, int8x16_t a_hi, int8x16_t b_lo, int8x16_t b_hi, int8_t* out) {
  const int64x2_t al = vreinterpretq_s64_s8(a_lo), ah = vreinterpretq_s64_s8(a_hi);
  const int64x2_t bl = vreinterpretq_s64_s8(b_lo), bh = vreinterpretq_s64_s8(b_hi);
  vst1q_s8(out, vreinterpretq_s8_s64(vzip1q_s64(al, bl)));
  vst1q_s8(out + 16, vreinterpretq_s8_s64(vzip2q_s64(al, bl)));
  vst1q_s8(out + 32, vreinterpretq_s8_s64(vzip1q_s64(ah, bh)));
  vst1q_s8(out + 48, vreinterpretq_s8_s64(vzip2q_s64(ah, bh)));
}

// Rows ra and ra + 1 (has_b false: zeros for the second), groups [gb, ge),
// into out[0 .. ge - gb).
template <QKind K>
void unpack_pair(const Weights& w, uint32_t ra, bool has_b, uint32_t gb, uint32_t ge,
                 WRec<has_min(K)>* out) {
  const uint16_t* sa = w.scales + size_t(ra) * w.scales_per_row;
  const uint16_t* sb = sa + w.scales_per_row;
  for (uint32_t g = gb; g < ge; ++g) {
    WRec<has_min(K)>& o = out[g - gb];
    int8x16_t a_lo, a_hi, b_lo = vdupq_n_s8(0), b_hi = vdupq_n_s8(0);
    load_group<K>(w, ra, g, &a_lo, &a_hi);
    if (has_b) load_group<K>(w, ra + 1, g, &b_lo, &b_hi);
    store_chunks(a_lo, a_hi, b_lo, b_hi, o.q);
    const uint32_t step = has_min(K) ? 2 : 1;
    const float da = half_to_float(sa[step * g]);
    const float db = has_b ? half_to_float(sb[step * g]) : 0.0f;
    o.d[0] = o.d[1] = da;
    o.d[2] = o.d[3] = db;
    if constexpr (has_min(K)) {
      const float ma = half_to_float(sa[2 * g + 1]);
      const float mb = has_b ? half_to_float(sb[2 * g + 1]) : 0.0f;
      o.m[0] = o.m[1] = ma;
      o.m[2] = o.m[3] = mb;
    }
  }
}

// Tokens t0 and t0 + 1 (has_1 false: zeros for the second), groups [gb, ge),
// into out[0 .. ge - gb).
template <bool kMin>
void interleave_pair(const ActRowsQ8& x, uint32_t groups, uint32_t t0, bool has_1, uint32_t gb, uint32_t ge,
                     XRec<kMin>* out) {
  const size_t o0 = size_t(t0) * x.cols, o1 = o0 + x.cols;
  const float* d0 = x.d + size_t(t0) * groups;
  const float* s0 = x.s + size_t(t0) * groups;
  for (uint32_t g = gb; g < ge; ++g) {
    XRec<kMin>& o = out[g - gb];
    const size_t c = size_t(g) * kGroup;
    const int8x16_t zero = vdupq_n_s8(0);
    store_chunks(vld1q_s8(x.q + o0 + c), vld1q_s8(x.q + o0 + c + 16), has_1 ? vld1q_s8(x.q + o1 + c) : zero,
                 has_1 ? vld1q_s8(x.q + o1 + c + 16) : zero, o.q);
    store_chunks(vld1q_s8(x.r + o0 + c), vld1q_s8(x.r + o0 + c + 16), has_1 ? vld1q_s8(x.r + o1 + c) : zero,
                 has_1 ? vld1q_s8(x.r + o1 + c + 16) : zero, o.r);
    o.d[0] = o.d[2] = d0[g];
    o.d[1] = o.d[3] = has_1 ? d0[groups + g] : 0.0f;
    if constexpr (kMin) {
      o.s[0] = o.s[2] = s0[g];
      o.s[1] = o.s[3] = has_1 ? s0[groups + g] : 0.0f;
    }
  }
}

// Where a tile's 2x2 blocks live in y: rows [r, r1) and tokens [t, n_tokens)
// exist; lane 2i + j of block (pair p, pair q) is row r + 2p + i, token t + 2q + j.
struct TileOut {
  float* y;
  size_t y_stride;
  uint32_t r, r1, t, n_tokens;
  bool valid(uint32_t row, uint32_t token) const { return row < r1 && token < n_tokens; }
  float* at(uint32_t row, uint32_t token) const { return y + size_t(token) * y_stride + row; }
};

// RP row pairs (w[p][g]) x TP token pairs (x[q][g]) over ng groups; `resume`:
// start from the values in y (a slice after the first).
template <int RP, int TP, bool kMin>
void tile(const WRec<kMin> (*w)[kSliceGroups], const XRec<kMin> (*x)[kSliceGroups], uint32_t ng,
          const TileOut& out, bool resume) {
  float32x4_t acc[RP][TP];
  unrolled<RP>([&](auto p) {
    unrolled<TP>([&](auto q) {
      float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (resume) {
        for (uint32_t i = 0; i < 2; ++i)
          for (uint32_t j = 0; j < 2; ++j) {
            const uint32_t row = out.r + 2 * p + i, token = out.t + 2 * q + j;
            if (out.valid(row, token)) v[2 * i + j] = *out.at(row, token);
          }
      }
      acc[p][q] = vld1q_f32(v);
    });
  });
  for (uint32_t g = 0; g < ng; ++g) {
    int32x4_t aq[RP][TP], ar[RP][TP];
    unrolled<RP>([&](auto p) {
      unrolled<TP>([&](auto q) {
        aq[p][q] = vdupq_n_s32(0);
        ar[p][q] = vdupq_n_s32(0);
      });
    });
    unrolled<4>([&](auto c) {
      int8x16_t wc[RP];
      unrolled<RP>([&](auto p) { wc[p] = vld1q_s8(w[p][g].q + 16 * c); });
      unrolled<TP>([&](auto q) {
        const XRec<kMin>& xg = x[q][g];
        const int8x16_t xq = vld1q_s8(xg.q + 16 * c);
        const int8x16_t xr = vld1q_s8(xg.r + 16 * c);
        unrolled<RP>([&](auto p) {
          aq[p][q] = vmmlaq_s32(aq[p][q], wc[p], xq);
          ar[p][q] = vmmlaq_s32(ar[p][q], wc[p], xr);
        });
      });
    });
    unrolled<RP>([&](auto p) {
      const WRec<kMin>& wg = w[p][g];
      const float32x4_t dw = vld1q_f32(wg.d);
      unrolled<TP>([&](auto q) {
        const XRec<kMin>& xg = x[q][g];
        const int32x4_t isum = vmlaq_n_s32(ar[p][q], aq[p][q], kResidualScale);
        float32x4_t term = vmulq_f32(vmulq_f32(dw, vld1q_f32(xg.d)), vcvtq_f32_s32(isum));
        if constexpr (kMin) term = vaddq_f32(term, vmulq_f32(vld1q_f32(wg.m), vld1q_f32(xg.s)));
        acc[p][q] = vaddq_f32(acc[p][q], term);
      });
    });
  }
  unrolled<RP>([&](auto p) {
    unrolled<TP>([&](auto q) {
      float v[4];
      vst1q_f32(v, acc[p][q]);
      for (uint32_t i = 0; i < 2; ++i)
        for (uint32_t j = 0; j < 2; ++j) {
          const uint32_t row = out.r + 2 * p + i, token = out.t + 2 * q + j;
          if (out.valid(row, token)) *out.at(row, token) = v[2 * i + j];
        }
    });
  });
}

// Every row pair of the panel (pairs of them) against one block of TP token pairs.
template <int TP, bool kMin>
void tiles_over_panel(const WRec<kMin> (*w)[kSliceGroups], const XRec<kMin> (*x)[kSliceGroups], uint32_t pairs,
                      uint32_t ng, TileOut out, bool resume) {
  const uint32_t r = out.r;
  uint32_t p = 0;
  for (; p + kTilePairs <= pairs; p += kTilePairs) {
    out.r = r + 2 * p;
    tile<kTilePairs, TP, kMin>(w + p, x, ng, out, resume);
  }
  out.r = r + 2 * p;
  if (pairs - p == 1) tile<1, TP, kMin>(w + p, x, ng, out, resume);
  if (pairs - p == 2) tile<2, TP, kMin>(w + p, x, ng, out, resume);
}

template <QKind K>
void prefill(const WeightMatrix& wm, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0, uint32_t r1, float* y,
             size_t y_stride) {
  constexpr bool kMin = has_min(K);
  const uint32_t groups = wm.cols / kGroup;
  const uint8_t* q = static_cast<const uint8_t*>(wm.data);
  const size_t row_bytes = K == QKind::kI8 ? wm.cols : wm.cols / 2;
  // int5_high_bits(wm), written out (see the top of the file).
  const Weights w{q, row_bytes, q + size_t(wm.rows) * (wm.cols / 2), wm.cols / 8, wm.scales,
                  size_t(groups) * (kMin ? 2 : 1)};
  alignas(16) WRec<kMin> wbuf[kPanelRows / 2][kSliceGroups];
  alignas(16) XRec<kMin> xbuf[2][kSliceGroups];
  for (uint32_t p0 = r0; p0 < r1; p0 += kPanelRows) {
    const uint32_t p1 = r1 - p0 < kPanelRows ? r1 : p0 + kPanelRows;
    const uint32_t pairs = (p1 - p0 + 1) / 2;
    for (uint32_t gb = 0; gb < groups; gb += kSliceGroups) {
      const uint32_t ge = groups - gb < kSliceGroups ? groups : gb + kSliceGroups;
      for (uint32_t i = 0; i < pairs; ++i) unpack_pair<K>(w, p0 + 2 * i, p0 + 2 * i + 1 < p1, gb, ge, wbuf[i]);
      for (uint32_t t = 0; t < n_tokens; t += 4) {
        const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
        interleave_pair<kMin>(x, groups, t, nt >= 2, gb, ge, xbuf[0]);
        if (nt > 2) interleave_pair<kMin>(x, groups, t + 2, nt >= 4, gb, ge, xbuf[1]);
        const TileOut out{y, y_stride, p0, p1, t, n_tokens};
        if (nt > 2) {
          tiles_over_panel<2, kMin>(wbuf, xbuf, pairs, ge - gb, out, gb > 0);
        } else {
          tiles_over_panel<1, kMin>(wbuf, xbuf, pairs, ge - gb, out, gb > 0);
        }
      }
    }
  }
}

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  if (n_tokens < kMinTokens || w.cols < kGroup) return decode::matmul_i8g32_q8r(w, x, n_tokens, r0, r1, y, y_stride);
  prefill<QKind::kI8>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  if (n_tokens < kMinTokens || w.cols < kGroup) return decode::matmul_u4g32_q8r(w, x, n_tokens, r0, r1, y, y_stride);
  prefill<QKind::kU4>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  if (n_tokens < kMinTokens || w.cols < kGroup) return decode::matmul_u5g32_q8r(w, x, n_tokens, r0, r1, y, y_stride);
  prefill<QKind::kU5>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

}  // namespace TERN_NEON_I8MM_NS
}  // namespace tern
