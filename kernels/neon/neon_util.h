// Small NEON helpers shared by the kernels/neon files, with ARMv7 fallbacks
// for the AArch64-only intrinsics (across-vector reductions, rounding
// conversions, f16 conversion), so the *_neon.cc files compile for both.
//
// Everything here is `static inline`: the *_neondot.cc files include this
// header too and are compiled with -march=armv8.2-a+dotprod+fp16. A plain
// `inline` function would be one COMDAT symbol, and the linker could keep the
// armv8.2 copy for the baseline callers (SIGILL on a Cortex-A53).
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/blocks.h"

namespace tern {
namespace neon {

// Sum of the 4 lanes.
static inline int32_t hsum_s32(int32x4_t v) {
#if defined(__aarch64__)
  return vaddvq_s32(v);
#else
  const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
  return vget_lane_s32(vpadd_s32(s, s), 0);
#endif
}

// Sum of the 4 lanes: (v0 + v1) + (v2 + v3) on both architectures.
static inline float hsum_f32(float32x4_t v) {
#if defined(__aarch64__)
  return vaddvq_f32(v);
#else
  const float32x2_t s = vpadd_f32(vget_low_f32(v), vget_high_f32(v));
  return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}

// [a0+a1+a2+a3, b0+.., c0+.., d0+..]: four int32 group sums in one vector.
static inline int32x4_t hsum4_s32(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
#if defined(__aarch64__)
  return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
#else
  const int32x2_t ab = vpadd_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)),
                                 vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
  const int32x2_t cd = vpadd_s32(vpadd_s32(vget_low_s32(c), vget_high_s32(c)),
                                 vpadd_s32(vget_low_s32(d), vget_high_s32(d)));
  return vcombine_s32(ab, cd);
#endif
}

// The quantizer's rounding: nearbyint(v) (ties to even) clamped to
// [-127, 127], as an int32. AArch64 rounds and clamps in float exactly as the
// reference does (fminnm/fmaxnm like std::fmin/fmax, so a NaN product, from an
// inf input, also lands on -127). ARMv7 NEON has only truncating conversions:
// adding and subtracting 1.5 * 2^23 rounds exactly to an integer for
// |v| < 2^22, which covers the ~+-127 products of finite inputs; a NaN
// product maps to -127 by a compare (denormal products flush to 0 here; the
// quantizer sends groups where that matters to the scalar path).
static inline int32x4_t round_clamp_127(float32x4_t v) {
#if defined(__aarch64__)
  const float32x4_t r = vrndnq_f32(v);
  return vcvtq_s32_f32(vminnmq_f32(vdupq_n_f32(127.0f), vmaxnmq_f32(vdupq_n_f32(-127.0f), r)));
#else
  const float32x4_t magic = vdupq_n_f32(12582912.0f);
  int32x4_t q = vcvtq_s32_f32(vsubq_f32(vaddq_f32(v, magic), magic));
  q = vminq_s32(vdupq_n_s32(127), vmaxq_s32(vdupq_n_s32(-127), q));
  return vbslq_s32(vceqq_f32(v, v), q, vdupq_n_s32(-127));  // NaN -> -127, as fmax(-127, NaN)
#endif
}

#if defined(__aarch64__)
// exp(x) for 4 lanes, within ~2 ulp of std::exp over the float range
// (AArch64 only: uses fused multiply-add and vrndnq).
// exp(x) = 2^n * exp(r) with n = round(x / ln 2), r = x - n ln 2 (two-part ln 2,
// |r| <= ln2 / 2), exp(r) by the degree-6 Cephes expf polynomial. 2^n is
// applied as two factors 2^(n/2) * 2^(n - n/2), so results that overflow
// become inf and results in the denormal range round like std::exp's; the
// clamp to [-104, 88.8] keeps n in [-150, 129]. NaN stays NaN.
static inline float32x4_t exp_f32(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(88.8f));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  const float32x4_t e = vaddq_f32(vfmaq_f32(r, vmulq_f32(r, r), p), vdupq_n_f32(1.0f));
  const int32x4_t ni = vcvtq_s32_f32(n);
  const int32x4_t n1 = vshrq_n_s32(ni, 1);
  const int32x4_t n2 = vsubq_s32(ni, n1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
  return vmulq_f32(vmulq_f32(e, s1), s2);
}
#endif

// One f16 scale to float (exact). AArch64 has a conversion instruction in the
// base ISA; ARMv7 without the fp16 extension uses the portable bit version.
static inline float scale_to_f32(uint16_t h) {
#if defined(__aarch64__)
  __fp16 f;
  std::memcpy(&f, &h, sizeof f);
  return float(f);
#else
  return f16_to_f32(h);
#endif
}

}  // namespace neon
}  // namespace tern
