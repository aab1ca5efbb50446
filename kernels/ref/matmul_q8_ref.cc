// Quantized matrix products y = W x for kInt8G32, kInt4G32 and kInt5G32
// weights against int8 activations (ActRowsQ8: coarse plane q, residual
// plane r). Per row r,
// token t and group g the integer dot product of the group is exact in int32,
//   isum = 254 * sum(w * q) + sum(w * r),
// and it is scaled once per group:
//   int8: y += d_w[r,g] * x.d[t,g] * isum
//   int4: y += d_w[r,g] * x.d[t,g] * isum + m_w[r,g] * x.s[t,g]   (q4 in 0..15)
//   int5: the same with q5 in 0..31 (low nibble | high bit << 4)
// accumulated in float over groups in order.
#include <cstring>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

namespace {

// x16 = 254 q + r of one activation, exact in int16 (|x16| <= 32,385); a
// group's isum = 254 sum(w q) + sum(w r) = sum(w x16), every partial sum in
// int32, so both forms are exact and equal. One multiply per weight (the
// compiler vectorizes it as int16 products, pmaddwd on SSE2), and no
// temporary arrays: under ASan each of their stores and loads is checked.
inline int32_t x16(const int8_t* xg, const int8_t* rg, uint32_t j) {
  return kResidualScale * int32_t(xg[j]) + int32_t(rg[j]);
}

float row_dot_int8(const int8_t* wq, const uint16_t* wd, const int8_t* xq, const int8_t* xr, const float* xd,
                   uint32_t groups) {
  float y = 0.0f;
  for (uint32_t g = 0; g < groups; ++g) {
    const int8_t* w = wq + g * kGroup;
    const int8_t* xg = xq + g * kGroup;
    const int8_t* rg = xr + g * kGroup;
    int32_t isum = 0;
    for (uint32_t j = 0; j < kGroup; ++j) isum += int32_t(w[j]) * x16(xg, rg, j);
    y += f16_to_f32(wd[g]) * xd[g] * float(isum);
  }
  return y;
}

// One row of a kInt8G32R16 matrix (kernels/kernels.h): the same sums in the
// same order as row_dot_int8, each group's 32 values gathered from the 8
// chunks of its row block (lane i: 4 bytes at 64 k + 4 i), so both layouts
// give the same bits.
float row_dot_int8_r16(const int8_t* blk, const uint16_t* db, uint32_t i, const int8_t* xq, const int8_t* xr,
                       const float* xd, uint32_t groups) {
  float y = 0.0f;
  int8_t w[kGroup];
  for (uint32_t g = 0; g < groups; ++g) {
    for (uint32_t k = 0; k < kGroup / 4; ++k) std::memcpy(w + 4 * k, blk + (size_t(g) * 8 + k) * 64 + 4 * i, 4);
    const int8_t* xg = xq + g * kGroup;
    const int8_t* rg = xr + g * kGroup;
    int32_t isum = 0;
    for (uint32_t j = 0; j < kGroup; ++j) isum += int32_t(w[j]) * x16(xg, rg, j);
    y += f16_to_f32(db[size_t(g) * kInterleaveRows + i]) * xd[g] * float(isum);
  }
  return y;
}

// wq: [cols/2] bytes, per group 16 bytes: low nibble = element j, high = j+16.
// wdm: [groups][2] f16 {d, m}.
float row_dot_int4(const uint8_t* wq, const uint16_t* wdm, const int8_t* xq, const int8_t* xr, const float* xd,
                   const float* xs, uint32_t groups) {
  float y = 0.0f;
  for (uint32_t g = 0; g < groups; ++g) {
    const uint8_t* b = wq + g * (kGroup / 2);
    const int8_t* xg = xq + g * kGroup;
    const int8_t* rg = xr + g * kGroup;
    int32_t isum = 0;
    for (uint32_t j = 0; j < kGroup / 2; ++j) {
      isum += int32_t(b[j] & 0x0f) * x16(xg, rg, j) + int32_t(b[j] >> 4) * x16(xg, rg, j + kGroup / 2);
    }
    const float d = f16_to_f32(wdm[2 * g]);
    const float m = f16_to_f32(wdm[2 * g + 1]);
    y += d * xd[g] * float(isum) + m * xs[g];
  }
  return y;
}

// One row of a kInt4G32R16 matrix: each group's 16 bytes gathered from the
// 4 units of its row block (unit L at 64 L + 4 i), then row_dot_int4's sums
// in its order: the same bits in both layouts.
float row_dot_int4_r16(const uint8_t* blk, const uint16_t* dmb, uint32_t i, const int8_t* xq, const int8_t* xr,
                       const float* xd, const float* xs, uint32_t groups) {
  float y = 0.0f;
  uint8_t b[kGroup / 2];
  for (uint32_t g = 0; g < groups; ++g) {
    for (uint32_t L = 0; L < 4; ++L) std::memcpy(b + 4 * L, blk + (size_t(g) * 4 + L) * 64 + 4 * i, 4);
    const int8_t* xg = xq + g * kGroup;
    const int8_t* rg = xr + g * kGroup;
    int32_t isum = 0;
    for (uint32_t j = 0; j < kGroup / 2; ++j) {
      isum += int32_t(b[j] & 0x0f) * x16(xg, rg, j) + int32_t(b[j] >> 4) * x16(xg, rg, j + kGroup / 2);
    }
    const float d = f16_to_f32(dmb[(size_t(g) * 2 + 0) * kInterleaveRows + i]);
    const float m = f16_to_f32(dmb[(size_t(g) * 2 + 1) * kInterleaveRows + i]);
    y += d * xd[g] * float(isum) + m * xs[g];
  }
  return y;
}

// kHighBitSpread.words[b]: 8 bytes whose byte i (in memory order) is bit i
// of b moved to bit 4, the fifth bit of value i of the 8 that an int5
// group's high-bit byte b covers: one 64-bit OR per 8 values.
struct HighBitSpread {
  uint64_t words[256];
  constexpr HighBitSpread() : words() {
    for (uint32_t b = 0; b < 256; ++b) {
      for (uint32_t i = 0; i < 8; ++i) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        const uint32_t shift = 8 * (7 - i);
#else
        const uint32_t shift = 8 * i;
#endif
        words[b] |= uint64_t((b >> i) & 1u) << (shift + 4);
      }
    }
  }
};
constexpr HighBitSpread kHighBitSpread;

// wq as in int4; wh: [cols/8] high bits, per group 4 bytes, bit i of byte b
// is bit 4 of element 8b + i. The values are merged in a 32-byte buffer
// (the high bits eight at a time, one 64-bit OR each; per value they cost
// two thirds of the scalar Gemma prefill), and the two plane sums kept apart:
// over that buffer the x16 form measured a third slower (GCC 12, SSE2).
float row_dot_int5(const uint8_t* wq, const uint8_t* wh, const uint16_t* wdm, const int8_t* xq, const int8_t* xr,
                   const float* xd, const float* xs, uint32_t groups) {
  float y = 0.0f;
  int8_t v[kGroup];
  for (uint32_t g = 0; g < groups; ++g) {
    const uint8_t* b = wq + g * (kGroup / 2);
    const uint8_t* h = wh + g * (kGroup / 8);
    for (uint32_t j = 0; j < kGroup / 2; ++j) {
      v[j] = int8_t(b[j] & 0x0f);
      v[j + kGroup / 2] = int8_t(b[j] >> 4);
    }
    for (uint32_t k = 0; k < kGroup / 8; ++k) {  // 8 values per high-bit byte: one 64-bit OR
      uint64_t lo;
      std::memcpy(&lo, v + 8 * k, 8);
      lo |= kHighBitSpread.words[h[k]];
      std::memcpy(v + 8 * k, &lo, 8);
    }
    int32_t sum_q = 0, sum_r = 0;
    for (uint32_t j = 0; j < kGroup; ++j) {
      sum_q += int32_t(v[j]) * int32_t(xq[g * kGroup + j]);
      sum_r += int32_t(v[j]) * int32_t(xr[g * kGroup + j]);
    }
    const int32_t isum = kResidualScale * sum_q + sum_r;
    const float d = f16_to_f32(wdm[2 * g]);
    const float m = f16_to_f32(wdm[2 * g + 1]);
    y += d * xd[g] * float(isum) + m * xs[g];
  }
  return y;
}

// Every token and row of [r0, r1): y[t * y_stride + r] = row_dot(row r, token t).
template <class RowDot>
void for_rows(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
              float* y, size_t y_stride, RowDot row_dot) {
  // Rows outer, tokens inner: a weight row is read from memory once per call
  // and then from L1 for every token (each (row, token) result is computed
  // alone, so the order does not change it).
  const uint32_t groups = w.cols / kGroup;
  for (uint32_t r = r0; r < r1; ++r) {
    for (uint32_t t = 0; t < n_tokens; ++t) {
      const int8_t* xq = x.q + size_t(t) * x.cols;  // [cols]
      const int8_t* xr = x.r + size_t(t) * x.cols;  // [cols]
      const float* xd = x.d + size_t(t) * groups;   // [groups]
      const float* xs = x.s + size_t(t) * groups;   // [groups]
      y[t * y_stride + r] = row_dot(r, groups, xq, xr, xd, xs);
    }
  }
}

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  for_rows(w, in.q8, n_tokens, r0, r1, y, y_stride,
           [&](uint32_t r, uint32_t groups, const int8_t* xq, const int8_t* xr, const float* xd, const float*) {
             const int8_t* wq = static_cast<const int8_t*>(w.data) + size_t(r) * w.cols;
             return row_dot_int8(wq, w.scales + size_t(r) * groups, xq, xr, xd, groups);
           });
}

void matmul_i8g32r16_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                         uint32_t r1, float* y, size_t y_stride) {
  for_rows(w, in.q8, n_tokens, r0, r1, y, y_stride,
           [&](uint32_t r, uint32_t groups, const int8_t* xq, const int8_t* xr, const float* xd, const float*) {
             const uint32_t b = r / kInterleaveRows;
             const int8_t* blk = static_cast<const int8_t*>(w.data) + size_t(b) * w.cols * kInterleaveRows;
             const uint16_t* db = w.scales + size_t(b) * groups * kInterleaveRows;
             return row_dot_int8_r16(blk, db, r % kInterleaveRows, xq, xr, xd, groups);
           });
}

void matmul_u4g32r16_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                         uint32_t r1, float* y, size_t y_stride) {
  for_rows(w, in.q8, n_tokens, r0, r1, y, y_stride,
           [&](uint32_t r, uint32_t groups, const int8_t* xq, const int8_t* xr, const float* xd, const float* xs) {
             const uint32_t b = r / kInterleaveRows;
             const uint8_t* blk = static_cast<const uint8_t*>(w.data) + size_t(b) * (w.cols / 2) * kInterleaveRows;
             const uint16_t* dmb = w.scales + size_t(b) * groups * 2 * kInterleaveRows;
             return row_dot_int4_r16(blk, dmb, r % kInterleaveRows, xq, xr, xd, xs, groups);
           });
}

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  for_rows(w, in.q8, n_tokens, r0, r1, y, y_stride,
           [&](uint32_t r, uint32_t groups, const int8_t* xq, const int8_t* xr, const float* xd, const float* xs) {
             const uint8_t* wq = static_cast<const uint8_t*>(w.data) + size_t(r) * (w.cols / 2);
             return row_dot_int4(wq, w.scales + size_t(r) * groups * 2, xq, xr, xd, xs, groups);
           });
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  for_rows(w, in.q8, n_tokens, r0, r1, y, y_stride,
           [&](uint32_t r, uint32_t groups, const int8_t* xq, const int8_t* xr, const float* xd, const float* xs) {
             const uint8_t* wq = static_cast<const uint8_t*>(w.data) + size_t(r) * (w.cols / 2);
             const uint8_t* wh = int5_high_bits(w) + size_t(r) * (w.cols / 8);
             return row_dot_int5(wq, wh, w.scales + size_t(r) * groups * 2, xq, xr, xd, xs, groups);
           });
}

}  // namespace ref
}  // namespace tern
