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
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

namespace {

float row_dot_int8(const int8_t* wq, const uint16_t* wd, const int8_t* xq, const int8_t* xr, const float* xd,
                   uint32_t groups) {
  float y = 0.0f;
  for (uint32_t g = 0; g < groups; ++g) {
    int32_t sum_q = 0, sum_r = 0;
    for (uint32_t j = 0; j < kGroup; ++j) {
      sum_q += int32_t(wq[g * kGroup + j]) * int32_t(xq[g * kGroup + j]);
      sum_r += int32_t(wq[g * kGroup + j]) * int32_t(xr[g * kGroup + j]);
    }
    const int32_t isum = kResidualScale * sum_q + sum_r;
    y += f16_to_f32(wd[g]) * xd[g] * float(isum);
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
    int32_t sum_q = 0, sum_r = 0;
    for (uint32_t j = 0; j < kGroup / 2; ++j) {
      sum_q += int32_t(b[j] & 0x0f) * int32_t(xg[j]) + int32_t(b[j] >> 4) * int32_t(xg[j + kGroup / 2]);
      sum_r += int32_t(b[j] & 0x0f) * int32_t(rg[j]) + int32_t(b[j] >> 4) * int32_t(rg[j + kGroup / 2]);
    }
    const int32_t isum = kResidualScale * sum_q + sum_r;
    const float d = f16_to_f32(wdm[2 * g]);
    const float m = f16_to_f32(wdm[2 * g + 1]);
    y += d * xd[g] * float(isum) + m * xs[g];
  }
  return y;
}

// wq as in int4; wh: [cols/8] high bits, per group 4 bytes, bit i of byte b
// is bit 4 of element 8b + i.
float row_dot_int5(const uint8_t* wq, const uint8_t* wh, const uint16_t* wdm, const int8_t* xq, const int8_t* xr,
                   const float* xd, const float* xs, uint32_t groups) {
  float y = 0.0f;
  for (uint32_t g = 0; g < groups; ++g) {
    const uint8_t* b = wq + g * (kGroup / 2);
    const uint8_t* h = wh + g * (kGroup / 8);
    const int8_t* xg = xq + g * kGroup;
    const int8_t* rg = xr + g * kGroup;
    int32_t sum_q = 0, sum_r = 0;
    for (uint32_t j = 0; j < kGroup; ++j) {
      const uint32_t nibble = j < kGroup / 2 ? b[j] & 0x0f : b[j - kGroup / 2] >> 4;
      const int32_t v = int32_t(nibble | (((h[j / 8] >> (j % 8)) & 1u) << 4));
      sum_q += v * int32_t(xg[j]);
      sum_r += v * int32_t(rg[j]);
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
  const uint32_t groups = w.cols / kGroup;
  for (uint32_t t = 0; t < n_tokens; ++t) {
    const int8_t* xq = x.q + size_t(t) * x.cols;  // [cols]
    const int8_t* xr = x.r + size_t(t) * x.cols;  // [cols]
    const float* xd = x.d + size_t(t) * groups;   // [groups]
    const float* xs = x.s + size_t(t) * groups;   // [groups]
    for (uint32_t r = r0; r < r1; ++r) y[t * y_stride + r] = row_dot(r, groups, xq, xr, xd, xs);
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
