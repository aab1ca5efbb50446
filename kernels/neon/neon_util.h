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

// Lane-wise max ignoring NaN where the ISA can (AArch64 fmaxnm, like fmax).
static inline float32x4_t max_f32(float32x4_t a, float32x4_t b) {
#if defined(__aarch64__)
  return vmaxnmq_f32(a, b);
#else
  return vmaxq_f32(a, b);
#endif
}

static inline float hmax_f32(float32x4_t v) {
#if defined(__aarch64__)
  return vmaxnmvq_f32(v);
#else
  const float32x2_t m = vpmax_f32(vget_low_f32(v), vget_high_f32(v));
  return vget_lane_f32(vpmax_f32(m, m), 0);
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

// Round to nearest, ties to even (std::nearbyint in the default mode).
// ARMv7 NEON has only truncating conversions: adding and subtracting 1.5 * 2^23
// rounds exactly to an integer for |v| < 2^22, which covers the +-127 range
// the quantizer feeds in (the result is then clamped anyway).
static inline int32x4_t cvt_nearest_s32(float32x4_t v) {
#if defined(__aarch64__)
  return vcvtnq_s32_f32(v);
#else
  const float32x4_t magic = vdupq_n_f32(12582912.0f);
  return vcvtq_s32_f32(vsubq_f32(vaddq_f32(v, magic), magic));
#endif
}

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
