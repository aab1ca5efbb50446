// Quantized matrix product y = W x for kInt8G32 and kInt4G32 weights against
// int8 activations (ActRowsQ8: coarse plane q, residual plane r). Per row r,
// token t and group g the integer dot product of the group is exact in int32,
//   isum = 254 * sum(w * q) + sum(w * r),
// and it is scaled once per group:
//   int8: y += d_w[r,g] * x.d[t,g] * isum
//   int4: y += d_w[r,g] * x.d[t,g] * isum + m_w[r,g] * x.s[t,g]   (q4 in 0..15)
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

}  // namespace

void matmul_q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
               uint32_t r1, float* y, size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  for (uint32_t t = 0; t < n_tokens; ++t) {
    const int8_t* xq = x.q + size_t(t) * x.cols;   // [cols]
    const int8_t* xr = x.r + size_t(t) * x.cols;   // [cols]
    const float* xd = x.d + size_t(t) * groups;    // [groups]
    const float* xs = x.s + size_t(t) * groups;    // [groups]
    for (uint32_t r = r0; r < r1; ++r) {
      float v;
      if (w.type == WeightType::kInt8G32) {
        const int8_t* wq = static_cast<const int8_t*>(w.data) + size_t(r) * w.cols;
        v = row_dot_int8(wq, w.scales + size_t(r) * groups, xq, xr, xd, groups);
      } else {
        const uint8_t* wq = static_cast<const uint8_t*>(w.data) + size_t(r) * (w.cols / 2);
        v = row_dot_int4(wq, w.scales + size_t(r) * groups * 2, xq, xr, xd, xs, groups);
      }
      y[t * y_stride + r] = v;
    }
  }
}

}  // namespace ref
}  // namespace tern
