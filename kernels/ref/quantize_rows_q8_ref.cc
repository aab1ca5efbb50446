// Activation quantization to ActRowsQ8, per group of 32 values:
//   amax = max|x|, d = amax / 127, id = 127 / amax (0 for an all-zero group),
//   q = nearbyint(x * id) clamped to [-127, 127], s = d * float(sum q).
// Every SIMD variant uses exactly these float operations (one IEEE division
// each for d and id, one multiply per value, round-to-nearest-even in the
// current rounding mode), so q, d and s are bit-identical across variants.
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  for (uint32_t r = 0; r < n_rows; ++r) {
    const float* xr = x + size_t(r) * cols;     // [cols]
    int8_t* qr = out.q + size_t(r) * cols;      // [cols]
    float* dr = out.d + size_t(r) * groups;     // [groups]
    float* sr = out.s + size_t(r) * groups;     // [groups]
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      float amax = 0.0f;
      for (uint32_t j = 0; j < kGroup; ++j) amax = std::fmax(amax, std::fabs(xg[j]));
      const float d = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      int32_t sum = 0;
      for (uint32_t j = 0; j < kGroup; ++j) {
        float v = std::nearbyint(xg[j] * id);
        v = std::fmin(127.0f, std::fmax(-127.0f, v));
        const int32_t q = int32_t(v);
        qr[g * kGroup + j] = int8_t(q);
        sum += q;
      }
      dr[g] = d;
      sr[g] = d * float(sum);
    }
  }
}

}  // namespace ref
}  // namespace tern
