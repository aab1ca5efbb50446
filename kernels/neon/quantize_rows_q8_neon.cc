// Activation quantization to ActRowsQ8 with NEON. Bit-identical to
// kernels/ref/quantize_rows_q8_ref.cc: the same amax, the same two IEEE
// divisions for d and id, one multiply per value, round-to-nearest-even,
// clamp to [-127, 127], s = d * float(exact int sum), also for NaN, inf and
// denormal inputs (on ARMv7, whose NEON flushes denormals to zero, groups that
// small take the scalar path).
#include <cmath>

#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

namespace {

// max |x| of a group of 32 (v[8]), ignoring NaN like std::fmax.
inline float group_amax(const float32x4_t* v) {
#if defined(__aarch64__)
  float32x4_t m = vabsq_f32(v[0]);
  for (int i = 1; i < 8; ++i) m = vmaxnmq_f32(m, vabsq_f32(v[i]));
  return vmaxnmvq_f32(m);
#else
  // ARMv7 NEON float max propagates NaN and flushes denormals: compare the
  // magnitude bit patterns as integers instead (ordered like the values for
  // every non-NaN float), with NaN patterns masked to 0.
  const uint32x4_t abs_mask = vdupq_n_u32(0x7fffffffu), inf = vdupq_n_u32(0x7f800000u);
  uint32x4_t m = vdupq_n_u32(0);
  for (int i = 0; i < 8; ++i) {
    const uint32x4_t b = vandq_u32(vreinterpretq_u32_f32(v[i]), abs_mask);
    m = vmaxq_u32(m, vbicq_u32(b, vcgtq_u32(b, inf)));
  }
  uint32x2_t h = vpmax_u32(vget_low_u32(m), vget_high_u32(m));
  h = vpmax_u32(h, h);
  const uint32_t bits = vget_lane_u32(h, 0);
  float amax;
  std::memcpy(&amax, &bits, sizeof amax);
  return amax;
#endif
}

#if !defined(__aarch64__)
// The reference's arithmetic for one group, on the (IEEE, non-flushing) VFP.
inline int32_t quantize_group_scalar(const float* xg, float id, int8_t* qg) {
  int32_t sum = 0;
  for (uint32_t j = 0; j < kGroup; ++j) {
    const float v = std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(xg[j] * id)));
    qg[j] = int8_t(v);
    sum += int32_t(v);
  }
  return sum;
}
#endif

}  // namespace

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  for (uint32_t r = 0; r < n_rows; ++r) {
    const float* xr = x + size_t(r) * cols;  // [cols]
    int8_t* qr = out.q + size_t(r) * cols;   // [cols]
    float* dr = out.d + size_t(r) * groups;  // [groups]
    float* sr = out.s + size_t(r) * groups;  // [groups]
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      float32x4_t v[8];
      for (int i = 0; i < 8; ++i) v[i] = vld1q_f32(xg + 4 * i);
      const float amax = group_amax(v);
      const float d = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
#if !defined(__aarch64__)
      // Below 2^-100 a flushed denormal input could change q: x * id is >= 0.5
      // for some denormal x once amax <= 254 * 2^-126.
      if (amax < 0x1p-100f) {
        const int32_t sum = quantize_group_scalar(xg, id, qr + g * kGroup);
        dr[g] = d;
        sr[g] = d * float(sum);
        continue;
      }
#endif
      int32x4_t sum = vdupq_n_s32(0);
      for (int i = 0; i < 8; i += 2) {
        const int32x4_t q0 = round_clamp_127(vmulq_n_f32(v[i], id));
        const int32x4_t q1 = round_clamp_127(vmulq_n_f32(v[i + 1], id));
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
