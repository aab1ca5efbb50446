// y = W x for int8 / int4 / int5 weights with the ARMv8.2 dot product: one sdot
// (vdotq_s32) per 16 bytes adds four 4-byte dot products into int32 lanes; the
// same weight registers feed one accumulator per activation plane (coarse q,
// residual r), combined as 254 * q-part + r-part.
// Compiled with -march=armv8.2-a+dotprod+fp16 (kernels/CMakeLists.txt); only
// reached through neondot_kernels() when the CPU reports asimddp.
// Tiling and float work: matmul_q8_tiles.h.
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/matmul_q8_tiles.h"

namespace tern {
namespace neondot {
namespace {

struct DotSdot {
  static inline int32x4_t group(int8x16_t lo, int8x16_t hi, const int8_t* xq, const int8_t* xr) {
    int32x4_t acc_q = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(xq));
    int32x4_t acc_r = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(xr));
    acc_q = vdotq_s32(acc_q, hi, vld1q_s8(xq + 16));
    acc_r = vdotq_s32(acc_r, hi, vld1q_s8(xr + 16));
    return vmlaq_n_s32(acc_r, acc_q, kResidualScale);
  }
};

}  // namespace

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  neon::matmul_q8_typed<DotSdot, neon::QKind::kI8>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  neon::matmul_q8_typed<DotSdot, neon::QKind::kU4>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride) {
  neon::matmul_q8_typed<DotSdot, neon::QKind::kU5>(w, x.q8, n_tokens, r0, r1, y, y_stride);
}

}  // namespace neondot
}  // namespace tern
