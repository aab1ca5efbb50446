// y = W x for int8 / int4 weights with the ARMv8.2 dot product: one sdot
// (vdotq_s32) per 16 bytes adds four 4-byte dot products into int32 lanes.
// Compiled with -march=armv8.2-a+dotprod+fp16 (kernels/CMakeLists.txt); only
// reached through neondot_kernels() when the CPU reports asimddp.
// Tiling and float work: matmul_q8_tiles.h.
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/matmul_q8_tiles.h"

namespace tern {
namespace neondot {
namespace {

struct DotSdot {
  static inline int32x4_t group(int8x16_t lo, int8x16_t hi, const int8_t* x) {
    const int32x4_t acc = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(x));
    return vdotq_s32(acc, hi, vld1q_s8(x + 16));
  }
};

}  // namespace

void matmul_q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
               uint32_t r1, float* y, size_t y_stride) {
  neon::matmul_q8_tiled<DotSdot>(w, x, n_tokens, r0, r1, y, y_stride);
}

}  // namespace neondot
}  // namespace tern
