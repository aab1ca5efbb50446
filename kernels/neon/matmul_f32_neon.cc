// Float matrix product for kF32 weights with NEON: per (token, row) a dot
// product in 8 float lanes (two vectors), reduced at the end. Summation order
// differs from the sequential reference (float tolerance, not bit-exact).
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void matmul_f32_f32(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                    uint32_t r1, float* y, size_t y_stride) {
  const float* x = in.f32;
  const float* W = static_cast<const float*>(w.data);  // [rows, cols]
  const uint32_t cols = w.cols;
  for (uint32_t t = 0; t < n_tokens; ++t) {
    const float* xt = x + size_t(t) * cols;  // [cols]
    for (uint32_t r = r0; r < r1; ++r) {
      const float* wr = W + size_t(r) * cols;
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
      uint32_t c = 0;
      for (; c + 8 <= cols; c += 8) {
        a0 = vmlaq_f32(a0, vld1q_f32(wr + c), vld1q_f32(xt + c));
        a1 = vmlaq_f32(a1, vld1q_f32(wr + c + 4), vld1q_f32(xt + c + 4));
      }
      float acc = hsum_f32(vaddq_f32(a0, a1));
      for (; c < cols; ++c) acc += wr[c] * xt[c];
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace neon
}  // namespace tern
