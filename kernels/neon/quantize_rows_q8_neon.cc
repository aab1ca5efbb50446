// Activation quantization to ActRowsQ8 (coarse plane q, residual plane r) with
// NEON. Bit-identical to kernels/ref/quantize_rows_q8_ref.cc: the same amax,
// the same IEEE divisions for the scales, one multiply per value, round-to-
// nearest-even, clamp to [-127, 127], the residual x - coarse * q with a single
// rounding, s = d * float(exact int sum), also for NaN, inf and denormal
// inputs (on ARMv7, whose NEON flushes denormals to zero, groups that small
// take the scalar path).
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

// The per-group scales, computed exactly as the reference computes them.
struct GroupScales {
  float coarse;  // amax / 127: step of the q plane
  float d;       // amax / (127 * 254): step of the r plane
  float id;      // 127 / amax (0 for an all-zero group)
  float id_res;  // id * 254
};

inline GroupScales group_scales(float amax) {
  GroupScales s;
  s.coarse = amax / 127.0f;
  s.d = amax / float(127 * kResidualScale);
  s.id = amax != 0.0f ? 127.0f / amax : 0.0f;
  s.id_res = s.id * float(kResidualScale);
  return s;
}

#if !defined(__aarch64__)
// res[j] = fma(-coarse, v[j], x[j]) without a fused multiply-add (ARMv7 NEON
// has none, and std::fma would be a libm call per value): in double, the
// product coarse * v (24 x 7 significant bits) is exact, and so is x - p,
// because every operand is a multiple of min(ulp(coarse), ulp(x)) and the
// result spans under 53 bits: |x|, |p| <= ~2 amax, ulp(coarse) >= ulp(amax)
// / 2^7, and v != 0 only for |x| >= ~amax / 254 (ulp(x) >= ulp(amax) / 2^9);
// for v == 0 the result is x itself. The one rounding to float is then the
// fused operation's single rounding, for inf and NaN operands too.
inline void residual_exact(const float* x, const float* v, float coarse, float* res) {
  const double c = double(coarse);
  for (uint32_t j = 0; j < kGroup; ++j) res[j] = float(double(x[j]) - c * double(v[j]));
}
#endif

}  // namespace

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out) {
  const uint32_t groups = cols / kGroup;
  for (uint32_t row = 0; row < n_rows; ++row) {
    const float* xr = x + size_t(row) * cols;     // [cols]
    int8_t* qr = out.q + size_t(row) * cols;      // [cols]
    int8_t* rr = out.r + size_t(row) * cols;      // [cols]
    float* dr = out.d + size_t(row) * groups;     // [groups]
    float* sr = out.s + size_t(row) * groups;     // [groups]
    for (uint32_t g = 0; g < groups; ++g) {
      const float* xg = xr + g * kGroup;
      int8_t* qg = qr + g * kGroup;
      int8_t* rg = rr + g * kGroup;
      float32x4_t v[8];
      for (int i = 0; i < 8; ++i) v[i] = vld1q_f32(xg + 4 * i);
      const float amax_raw = group_amax(v);
      const float amax = amax_raw < kTinyGroupAmax ? 0.0f : amax_raw;  // as the reference
      const GroupScales s = group_scales(amax);
      dr[g] = s.d;
#if !defined(__aarch64__)
      // NEON flushes denormals, the reference does not: with amax 0 or
      // >= kTinyGroupAmax (2^-100) that cannot change q (x * id < 2^-19 for a
      // denormal x), and a residual NEON would flush (< 2^-126) is far below
      // d / 2 >= 2^-116, so r rounds to 0 either way.
      // q plane in NEON, its residual on the VFP (exact, see residual_exact).
      float vq[kGroup], res[kGroup];
      int32x4_t q[8];
      for (int i = 0; i < 8; ++i) {
        q[i] = round_clamp_127(vmulq_n_f32(v[i], s.id));
        vst1q_f32(vq + 4 * i, vcvtq_f32_s32(q[i]));
      }
      residual_exact(xg, vq, s.coarse, res);
      for (int i = 0; i < 8; ++i) v[i] = vld1q_f32(res + 4 * i);
#else
      int32x4_t q[8];
      for (int i = 0; i < 8; ++i) {
        q[i] = round_clamp_127(vmulq_n_f32(v[i], s.id));
        // x - coarse * q with one rounding, as the reference's fma(-coarse, q, x).
        v[i] = vfmsq_f32(v[i], vdupq_n_f32(s.coarse), vcvtq_f32_s32(q[i]));
      }
#endif
      int32x4_t sum = vdupq_n_s32(0);
      for (int i = 0; i < 8; i += 2) {
        const int32x4_t r0 = round_clamp_127(vmulq_n_f32(v[i], s.id_res));
        const int32x4_t r1 = round_clamp_127(vmulq_n_f32(v[i + 1], s.id_res));
        // 254 * q + r per lane: |sum| <= 32 * 127 * 255, exact in int32.
        sum = vmlaq_n_s32(sum, vaddq_s32(q[i], q[i + 1]), kResidualScale);
        sum = vaddq_s32(sum, vaddq_s32(r0, r1));
        const int16x8_t q16 = vcombine_s16(vmovn_s32(q[i]), vmovn_s32(q[i + 1]));
        const int16x8_t r16 = vcombine_s16(vmovn_s32(r0), vmovn_s32(r1));
        vst1_s8(qg + 4 * i, vmovn_s16(q16));
        vst1_s8(rg + 4 * i, vmovn_s16(r16));
      }
      sr[g] = s.d * float(hsum_s32(sum));
    }
  }
}

}  // namespace neon
}  // namespace tern
