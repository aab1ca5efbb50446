// Activation quantization to ActRowsQ8 with NEON. Bit-identical to
// kernels/ref/quantize_rows_q8_ref.cc: the same amax, the same two IEEE
// divisions for d and id, one multiply per value, round-to-nearest-even,
// clamp to [-127, 127], s = d * float(exact int sum).
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  const int32x4_t lo = vdupq_n_s32(-127), hi = vdupq_n_s32(127);
  for (uint32_t r = 0; r < n_rows; ++r) {
    const float* xr = x + size_t(r) * cols;  // [cols]
    int8_t* qr = out.q + size_t(r) * cols;   // [cols]
    float* dr = out.d + size_t(r) * groups;  // [groups]
    float* sr = out.s + size_t(r) * groups;  // [groups]
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      float32x4_t v[8];
      for (int i = 0; i < 8; ++i) v[i] = vld1q_f32(xg + 4 * i);
      float32x4_t m = vabsq_f32(v[0]);
      for (int i = 1; i < 8; ++i) m = max_f32(m, vabsq_f32(v[i]));
      const float amax = hmax_f32(m);
      const float d = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      int32x4_t sum = vdupq_n_s32(0);
      for (int i = 0; i < 8; i += 2) {
        int32x4_t q0 = cvt_nearest_s32(vmulq_n_f32(v[i], id));
        int32x4_t q1 = cvt_nearest_s32(vmulq_n_f32(v[i + 1], id));
        q0 = vminq_s32(hi, vmaxq_s32(lo, q0));
        q1 = vminq_s32(hi, vmaxq_s32(lo, q1));
        sum = vaddq_s32(sum, vaddq_s32(q0, q1));
        const int16x8_t q16 = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
        vst1_s8(qr + g * kGroup + 4 * i, vmovn_s16(q16));
      }
      dr[g] = d;
      sr[g] = d * float(hsum_s32(sum));
    }
  }
}

}  // namespace neon
}  // namespace tern
