// Rotary position embedding with NEON, 4 pairs per step. Per pair the
// arithmetic is the reference's (x0*c - x1*s, x0*s + x1*c, no fused
// multiply-add), so results are bit-identical to kernels/ref/rope_f32_ref.cc.
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"

namespace tern {
namespace neon {

void rope(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim, const float* cos_sin,
          bool adjacent_pairs) {
  const uint32_t half = rope_dim / 2;
  for (uint32_t h = 0; h < n_heads; ++h) {
    float* xh = x + size_t(h) * head_dim;  // [head_dim]
    uint32_t i = 0;
    for (; i + 4 <= half; i += 4) {
      const float32x4x2_t cs = vld2q_f32(cos_sin + 2 * i);  // val[0] = cos, val[1] = sin
      float32x4_t x0, x1;
      float32x4x2_t adj;
      if (adjacent_pairs) {
        adj = vld2q_f32(xh + 2 * i);  // (x[2i], x[2i+1]) deinterleaved
        x0 = adj.val[0];
        x1 = adj.val[1];
      } else {
        x0 = vld1q_f32(xh + i);
        x1 = vld1q_f32(xh + i + half);
      }
      const float32x4_t y0 = vsubq_f32(vmulq_f32(x0, cs.val[0]), vmulq_f32(x1, cs.val[1]));
      const float32x4_t y1 = vaddq_f32(vmulq_f32(x0, cs.val[1]), vmulq_f32(x1, cs.val[0]));
      if (adjacent_pairs) {
        adj.val[0] = y0;
        adj.val[1] = y1;
        vst2q_f32(xh + 2 * i, adj);
      } else {
        vst1q_f32(xh + i, y0);
        vst1q_f32(xh + i + half, y1);
      }
    }
    for (; i < half; ++i) {
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

}  // namespace neon
}  // namespace tern
