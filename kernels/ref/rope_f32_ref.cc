// Rotary position embedding, in place, on the first rope_dim dims of each head.
// Pair i rotates by (c, s) = cos_sin[i]: x0' = x0*c - x1*s, x1' = x0*s + x1*c,
// with (x0, x1) = (x[2i], x[2i+1]) for adjacent pairs, else (x[i], x[i+rope_dim/2]).
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void rope(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim, const float* cos_sin,
          bool adjacent_pairs) {
  const uint32_t half = rope_dim / 2;
  for (uint32_t h = 0; h < n_heads; ++h) {
    float* xh = x + size_t(h) * head_dim;  // [head_dim]
    for (uint32_t i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i];
      const float s = cos_sin[2 * i + 1];
      float* p0 = adjacent_pairs ? &xh[2 * i] : &xh[i];
      float* p1 = adjacent_pairs ? &xh[2 * i + 1] : &xh[i + half];
      const float x0 = *p0, x1 = *p1;
      *p0 = x0 * c - x1 * s;
      *p1 = x0 * s + x1 * c;
    }
  }
}

}  // namespace ref
}  // namespace tern
