// Activation quantization to ActRowsQ8 (kernels/blocks.h), per group of 32:
//   amax = max|x| (0 if below kTinyGroupAmax, kernels/blocks.h),
//   id = 127 / amax (0 for an all-zero group),
//   q = nearbyint(x * id) clamped to [-127, 127],
//   res = fma(-(amax / 127), q, x)          the coarse plane's rounding error
//   r = nearbyint(res * (id * 254)) clamped to [-127, 127],
//   d = amax / (127 * 254), s = d * float(254 * sum q + sum r).
// Every SIMD variant uses exactly these float operations (IEEE division for
// the scales, one multiply or fused multiply-add per value, round-to-nearest-
// even in the current rounding mode), so q, r, d and s are bit-identical.
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  for (uint32_t r = 0; r < n_rows; ++r) {
    const float* xr = x + size_t(r) * cols;     // [cols]
    int8_t* qr = out.q + size_t(r) * cols;      // [cols]
    int8_t* rr = out.r + size_t(r) * cols;      // [cols]
    float* dr = out.d + size_t(r) * groups;     // [groups]
    float* sr = out.s + size_t(r) * groups;     // [groups]
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      float amax = 0.0f;
      for (uint32_t j = 0; j < kGroup; ++j) amax = std::fmax(amax, std::fabs(xg[j]));
      if (amax < kTinyGroupAmax) amax = 0.0f;  // denormal territory: all zeros
      const float coarse = amax / 127.0f;                   // step of the q plane
      const float d = amax / float(127 * kResidualScale);   // step of the r plane
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      const float id_res = id * float(kResidualScale);
      int32_t sum = 0;
      for (uint32_t j = 0; j < kGroup; ++j) {
        float v = std::nearbyint(xg[j] * id);
        v = std::fmin(127.0f, std::fmax(-127.0f, v));
        const float res = std::fma(-coarse, v, xg[j]);
        float u = std::nearbyint(res * id_res);
        u = std::fmin(127.0f, std::fmax(-127.0f, u));
        qr[g * kGroup + j] = int8_t(v);
        rr[g * kGroup + j] = int8_t(u);
        sum += kResidualScale * int32_t(v) + int32_t(u);
      }
      dr[g] = d;
      sr[g] = d * float(sum);
    }
  }
}

}  // namespace ref
}  // namespace tern
