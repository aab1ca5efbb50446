// The tiling of y = W x for int8 / int4 / int5 weights against ActRowsQ8,
// shared by matmul_q8_neon.cc (vmull_s8 + vpadalq_s16) and
// matmul_q8_neondot.cc (sdot).
// Each includer supplies `Dot::group(lo, hi, xq, xr)`: exact int32 partial
// sums (4 lanes) of 32 int8 weights — `lo` holds elements 0..15, `hi` 16..31 —
// against the group's two activation planes, lanes summing to
//   isum = kResidualScale * sum(w * q) + sum(w * r)
// (|isum| <= 255 * 32 * 127 * 127 < 2^31: exact). Each weight group is loaded
// once and feeds both planes.
//
// The weight kind (QKind) is a template parameter, so each type's loop is
// compiled on its own and int8 / int4 carry no test or load of int5's plane.
// int5 values 0..31 are unpacked to int8 lanes like int4's 0..15 (still
// non-negative int8, so the Dot products and their bounds are unchanged).
//
// Float work per (row, token, group) is the reference's, in its order:
//   int8:        acc += (d_w * d_x) * float(isum)
//   int4 / int5: acc += ((d_w * d_x) * float(isum) + m_w * s_x)
// so results are bit-identical to kernels/ref/matmul_q8_ref.cc: both
// includers are compiled with -ffp-contract=off (kernels/CMakeLists.txt), so
// no compiler fuses a multiply and an add. Every tile then gives a (row,
// token) the same bits, and so does the neon-i8mm prefill, which keeps the
// same order: the NEON tables are batch-invariant.
//
// Tiles: decode (one token) runs 4 rows at a time (one activation load feeds 4
// rows, 4 row results per vector); prefill runs 1 row x 4 tokens (one weight
// load feeds 4 tokens) over row blocks small enough to stay in L1 while all
// token tiles pass over them.
//
// Everything is in an unnamed namespace: the two includers are compiled with
// different -march flags and must not share (COMDAT-merge) any instantiation.
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {
namespace {

// The weight storage the tiles read (kernels.h): kI8 = kInt8G32 (int8 q,
// f16 d), kU4 = kInt4G32 (nibbles, f16 {d, m}), kU5 = kInt5G32 (kU4's nibbles
// plus a high-bit plane, f16 {d, m}).
enum class QKind { kI8, kU4, kU5 };

// Types with an offset m per group (w = d * q + m): scales are {d, m} pairs
// and the float step adds m_w * s_x.
constexpr bool has_min(QKind k) { return k != QKind::kI8; }

struct GroupW {
  int8x16_t lo, hi;  // elements 0..15, 16..31 of the group as int8
};

// One weight matrix, seen per row: q bytes, f16 scales ({d} or {d, m} per group).
struct QRows {
  const uint8_t* q;
  size_t row_bytes;
  const uint16_t* scales;
  size_t scales_per_row;
};

// QRows plus, for kU5 only, the high-bit plane (4 bytes per group). Only the
// kU5 struct has the extra fields, so the int8 / int4 tiles see exactly the
// struct they had before int5 existed (on ARMv7's 14 general registers even
// two dead fields shift register allocation and spills).
template <QKind K>
struct QRowsOf : QRows {};
template <>
struct QRowsOf<QKind::kU5> : QRows {
  const uint8_t* high;
  size_t high_row_bytes;
};

// Row r's high-bit plane (kU5), else null (never read).
template <QKind K>
inline const uint8_t* high_row(const QRowsOf<K>& w, uint32_t r) {
  if constexpr (K == QKind::kU5) {
    return w.high + size_t(r) * w.high_row_bytes;
  } else {
    (void)w;
    (void)r;
    return nullptr;
  }
}

// Bit 4 of the 32 elements of a group as byte masks in element order (0xff:
// set, 0x00: clear; `lo` elements 0..15, `hi` 16..31): `h` is the group's 4
// high-bit bytes (bit i of byte b = element 8b + i). Each byte is broadcast
// to the 8 lanes it covers, then lane i tests its own bit with vtst; only bit
// 4 of the mask is kept when it is merged into the nibble (load_group).
static inline void high_bits(const uint8_t* h, uint8x16_t* lo, uint8x16_t* hi) {
  // memcpy, not a uint32_t load: nothing aligns the plane (w.data may sit at
  // any byte of a blob), and the compiler makes it one 32-bit load anyway.
  uint32_t word;
  std::memcpy(&word, h, 4);
#if defined(__aarch64__)
  // One dup from the general register, then a table lookup per 16 lanes.
  const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(word));
  static const uint8_t kIdxLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static const uint8_t kIdxHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  const uint8x16_t blo = vqtbl1q_u8(bytes, vld1q_u8(kIdxLo));
  const uint8x16_t bhi = vqtbl1q_u8(bytes, vld1q_u8(kIdxHi));
#else
  // ARMv7 has no 16-lane table lookup, but a Q register is two D registers,
  // so lane broadcasts into each half are free to combine.
  const uint8x8_t bytes = vcreate_u8(uint64_t(word));
  const uint8x16_t blo = vcombine_u8(vdup_lane_u8(bytes, 0), vdup_lane_u8(bytes, 1));
  const uint8x16_t bhi = vcombine_u8(vdup_lane_u8(bytes, 2), vdup_lane_u8(bytes, 3));
#endif
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  *lo = vtstq_u8(blo, bit);
  *hi = vtstq_u8(bhi, bit);
}

// `high` is the row's high-bit plane (kU5 only).
template <QKind K>
inline GroupW load_group(const uint8_t* row, const uint8_t* high, uint32_t g) {
  if (K == QKind::kI8) {
    const int8_t* p = reinterpret_cast<const int8_t*>(row) + g * kGroup;
    return {vld1q_s8(p), vld1q_s8(p + 16)};
  }
  // 16 bytes: low nibble = element j, high nibble = element j + 16; 0..15 fit int8.
  const uint8x16_t b = vld1q_u8(row + g * (kGroup / 2));
  uint8x16_t lo = vandq_u8(b, vdupq_n_u8(0x0f));
  uint8x16_t hi = vshrq_n_u8(b, 4);
  if (K == QKind::kU5) {
    // Bit 4 of each nibble lane is 0, so one bit-select per vector (take bit
    // 4 from the 0xff / 0x00 test mask, bits 0..3 from the nibble) forms
    // q = nibble | high << 4, 0..31: still a non-negative int8.
    uint8x16_t hlo, hhi;
    high_bits(high + g * (kGroup / 8), &hlo, &hhi);
    const uint8x16_t bit4 = vdupq_n_u8(0x10);
    lo = vbslq_u8(bit4, hlo, lo);
    hi = vbslq_u8(bit4, hhi, hi);
  }
  return {vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)};
}

// One row x one token.
template <class Dot, QKind K>
inline float dot_1x1(const QRowsOf<K>& w, uint32_t r, const int8_t* xq, const int8_t* xr,
                     const float* xd, const float* xs, uint32_t groups) {
  const uint8_t* row = w.q + size_t(r) * w.row_bytes;
  const uint8_t* high = high_row<K>(w, r);
  const uint16_t* sc = w.scales + size_t(r) * w.scales_per_row;
  float acc = 0.0f;
  for (uint32_t g = 0; g < groups; ++g) {
    const GroupW wg = load_group<K>(row, high, g);
    const int32_t isum = hsum_s32(Dot::group(wg.lo, wg.hi, xq + g * kGroup, xr + g * kGroup));
    if (has_min(K)) {
      const float d = scale_to_f32(sc[2 * g]), m = scale_to_f32(sc[2 * g + 1]);
      acc += d * xd[g] * float(isum) + m * xs[g];
    } else {
      acc += scale_to_f32(sc[g]) * xd[g] * float(isum);
    }
  }
  return acc;
}

// Rows r..r+3 x one token -> y[r..r+3].
template <class Dot, QKind K>
inline void tile_4rows(const QRowsOf<K>& w, uint32_t r, const int8_t* xq, const int8_t* xr,
                       const float* xd, const float* xs, uint32_t groups, float* y) {
  const uint8_t* row[4];
  const uint8_t* high[4];
  const uint16_t* sc[4];
  for (int i = 0; i < 4; ++i) {
    row[i] = w.q + size_t(r + i) * w.row_bytes;
    high[i] = high_row<K>(w, r + i);
    sc[i] = w.scales + size_t(r + i) * w.scales_per_row;
  }
  const uint32_t step = has_min(K) ? 2 : 1;
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (uint32_t g = 0; g < groups; ++g) {
    const int8_t* xqg = xq + g * kGroup;
    const int8_t* xrg = xr + g * kGroup;
    int32x4_t part[4];
    for (int i = 0; i < 4; ++i) {
      const GroupW wg = load_group<K>(row[i], high[i], g);
      part[i] = Dot::group(wg.lo, wg.hi, xqg, xrg);
    }
    const int32x4_t isum = hsum4_s32(part[0], part[1], part[2], part[3]);
    float dw[4];
    for (int i = 0; i < 4; ++i) dw[i] = scale_to_f32(sc[i][step * g]);
    float32x4_t term = vmulq_f32(vmulq_n_f32(vld1q_f32(dw), xd[g]), vcvtq_f32_s32(isum));
    if (has_min(K)) {
      float mw[4];
      for (int i = 0; i < 4; ++i) mw[i] = scale_to_f32(sc[i][2 * g + 1]);
      term = vaddq_f32(term, vmulq_n_f32(vld1q_f32(mw), xs[g]));
    }
    acc = vaddq_f32(acc, term);
  }
  vst1q_f32(y, acc);
}

// Row r x tokens t..t+3 (activation rows x.q / x.r + i * cols) -> y[(t + i) * y_stride + r].
template <class Dot, QKind K>
inline void tile_4tokens(const QRowsOf<K>& w, uint32_t r, const ActRowsQ8& x, uint32_t t,
                         uint32_t groups, float* y, size_t y_stride) {
  const uint8_t* row = w.q + size_t(r) * w.row_bytes;
  const uint8_t* high = high_row<K>(w, r);
  const uint16_t* sc = w.scales + size_t(r) * w.scales_per_row;
  const int8_t* xq[4];
  const int8_t* xr[4];
  const float* xd[4];
  const float* xs[4];
  for (int i = 0; i < 4; ++i) {
    xq[i] = x.q + size_t(t + i) * x.cols;
    xr[i] = x.r + size_t(t + i) * x.cols;
    xd[i] = x.d + size_t(t + i) * groups;
    xs[i] = x.s + size_t(t + i) * groups;
  }
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (uint32_t g = 0; g < groups; ++g) {
    const GroupW wg = load_group<K>(row, high, g);
    const uint32_t o = g * kGroup;
    const int32x4_t isum = hsum4_s32(Dot::group(wg.lo, wg.hi, xq[0] + o, xr[0] + o),
                                     Dot::group(wg.lo, wg.hi, xq[1] + o, xr[1] + o),
                                     Dot::group(wg.lo, wg.hi, xq[2] + o, xr[2] + o),
                                     Dot::group(wg.lo, wg.hi, xq[3] + o, xr[3] + o));
    const float dx[4] = {xd[0][g], xd[1][g], xd[2][g], xd[3][g]};
    const float d = scale_to_f32(sc[has_min(K) ? 2 * g : g]);
    float32x4_t term = vmulq_f32(vmulq_f32(vdupq_n_f32(d), vld1q_f32(dx)), vcvtq_f32_s32(isum));
    if (has_min(K)) {
      const float sx[4] = {xs[0][g], xs[1][g], xs[2][g], xs[3][g]};
      term = vaddq_f32(term, vmulq_f32(vdupq_n_f32(scale_to_f32(sc[2 * g + 1])), vld1q_f32(sx)));
    }
    acc = vaddq_f32(acc, term);
  }
  float out[4];
  vst1q_f32(out, acc);
  for (int i = 0; i < 4; ++i) y[size_t(t + i) * y_stride + r] = out[i];
}

template <class Dot, QKind K>
void matmul_q8_typed(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                     uint32_t r1, float* y, size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  QRowsOf<K> q;
  static_cast<QRows&>(q) = {static_cast<const uint8_t*>(w.data),
                            K == QKind::kI8 ? w.cols : w.cols / 2, w.scales,
                            size_t(groups) * (has_min(K) ? 2 : 1)};
  if constexpr (K == QKind::kU5) {
    q.high = int5_high_bits(w);
    q.high_row_bytes = w.cols / 8;
  }
  // Prefill: 16 rows of weights (<= 16 * cols bytes) stay cached while every
  // 4-token tile passes over them.
  constexpr uint32_t kRowBlock = 16;
  const uint32_t t4 = n_tokens / 4 * 4;
  for (uint32_t rb = r0; rb < r1 && t4 > 0; rb += kRowBlock) {
    const uint32_t re = r1 - rb < kRowBlock ? r1 : rb + kRowBlock;
    for (uint32_t t = 0; t < t4; t += 4)
      for (uint32_t r = rb; r < re; ++r) tile_4tokens<Dot, K>(q, r, x, t, groups, y, y_stride);
  }
  // Decode, and the last n_tokens % 4 tokens of a prefill.
  for (uint32_t t = t4; t < n_tokens; ++t) {
    const int8_t* xq = x.q + size_t(t) * x.cols;  // [cols]
    const int8_t* xr = x.r + size_t(t) * x.cols;  // [cols]
    const float* xd = x.d + size_t(t) * groups;   // [groups]
    const float* xs = x.s + size_t(t) * groups;   // [groups]
    float* yt = y + size_t(t) * y_stride;
    uint32_t r = r0;
    for (; r + 4 <= r1; r += 4) tile_4rows<Dot, K>(q, r, xq, xr, xd, xs, groups, yt + r);
    for (; r < r1; ++r) yt[r] = dot_1x1<Dot, K>(q, r, xq, xr, xd, xs, groups);
  }
}

}  // namespace
}  // namespace neon
}  // namespace tern
