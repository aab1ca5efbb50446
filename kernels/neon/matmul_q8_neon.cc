// y = W x for int8 / int4 / int5 weights with ARMv8.0 (and ARMv7) NEON: the group
// dot product multiplies int8 x int8 into int16 with vmull_s8/vmlal_s8 (two
// products per lane: |2 * 127 * 127| < 2^15, exact) and widens into int32 with
// vpadalq_s16, once per activation plane (coarse q, residual r) with the same
// weight registers; the lanes are combined as 254 * q-part + r-part.
// Tiling and float work: matmul_q8_tiles.h.
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/matmul_q8_tiles.h"

namespace tern {
namespace neon {
namespace {

struct DotMull {
  // 4 int32 lanes summing to sum(w * x) over the group's 32 values at x.
  static inline int32x4_t plane(int8x16_t lo, int8x16_t hi, const int8_t* x) {
    const int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
    int16x8_t p0 = vmull_s8(vget_low_s8(lo), vget_low_s8(x0));
    p0 = vmlal_s8(p0, vget_high_s8(lo), vget_high_s8(x0));
    int16x8_t p1 = vmull_s8(vget_low_s8(hi), vget_low_s8(x1));
    p1 = vmlal_s8(p1, vget_high_s8(hi), vget_high_s8(x1));
    return vpadalq_s16(vpaddlq_s16(p0), p1);
  }
  static inline int32x4_t group(int8x16_t lo, int8x16_t hi, const int8_t* xq, const int8_t* xr) {
    return vmlaq_n_s32(plane(lo, hi, xr), plane(lo, hi, xq), kResidualScale);
  }
};

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  matmul_q8_typed<DotMull, QKind::kI8>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  matmul_q8_typed<DotMull, QKind::kU4>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  matmul_q8_typed<DotMull, QKind::kU5>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

}  // namespace neon
}  // namespace tern
