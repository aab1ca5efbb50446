// Float matrix product for kF32 weights: y[t, r] = sum_c W[r, c] * x[t, c].
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void matmul_f32_f32(const WeightMatrix& w, const MatmulInput& in, uint32_t n_tokens, uint32_t r0,
                    uint32_t r1, float* y, size_t y_stride) {
  const float* x = in.f32;
  const float* W = static_cast<const float*>(w.data);  // [rows, cols]
  for (uint32_t t = 0; t < n_tokens; ++t) {
    const float* xt = x + size_t(t) * w.cols;  // [cols]
    for (uint32_t r = r0; r < r1; ++r) {
      const float* wr = W + size_t(r) * w.cols;
      float acc = 0.0f;
      for (uint32_t c = 0; c < w.cols; ++c) acc += wr[c] * xt[c];
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace ref
}  // namespace tern
