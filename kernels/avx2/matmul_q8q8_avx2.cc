// AVX2 matmul, kInt8G32 weights x int8 activations (sign trick + maddubs).
// Decode: 4-row x 1-token tiles; prefill: 2-row x 4-token tiles
// (kernels/avx2/matmul_q8_tiles_avx2.h).
#include "kernels/avx2/matmul_q8_tiles_avx2.h"

namespace tern {
namespace avx2 {

void matmul_q8q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                 uint32_t r1, float* y, size_t y_stride) {
  using namespace tiles;
  if (n_tokens > 1) {
    matmul_prefill<false>(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  uint32_t r = r0;
  for (; r + 4 <= r1; r += 4) tile<false, 4, 1>(w, x, r, 0, y, y_stride);
  for (; r < r1; ++r) tile<false, 1, 1>(w, x, r, 0, y, y_stride);
}

}  // namespace avx2
}  // namespace tern
