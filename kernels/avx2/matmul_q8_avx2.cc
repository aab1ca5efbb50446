// AVX2 matmul_q8 slot: picks the kernel for the weight type.
#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

void matmul_q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
               uint32_t r1, float* y, size_t y_stride) {
  if (w.type == WeightType::kInt4G32)
    matmul_q4q8(w, x, n_tokens, r0, r1, y, y_stride);
  else
    matmul_q8q8(w, x, n_tokens, r0, r1, y, y_stride);
}

}  // namespace avx2
}  // namespace tern
