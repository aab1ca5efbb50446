// One token's attention over the paged f16 KV cache. For each head h in
// [h0, h1) with kv head kvh = h / (heads / kv_heads):
//   score[t] = dot(q_h, K[t, kvh]) * scale   for first <= t < n_ctx (scratch[t - first])
//   p = softmax(score);  out_h = sum_t p[t] * V[t, kvh].
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void attention(const PagedKv& kv, const AttentionArgs& a) {
  const uint32_t hd = kv.head_dim;
  const uint32_t group = a.heads / kv.kv_heads;
  for (uint32_t h = a.h0; h < a.h1; ++h) {
    const uint32_t kvh = h / group;
    const float* q = a.q + size_t(h) * hd;  // [head_dim]
    float* out = a.out + size_t(h) * hd;    // [head_dim]
    for (uint32_t t = a.first; t < a.n_ctx; ++t) {
      const uint16_t* k = kv.k_pool + kv_offset(kv, t, kvh);
      float dot = 0.0f;
      for (uint32_t d = 0; d < hd; ++d) dot += q[d] * f16_to_f32(k[d]);
      a.scratch[t - a.first] = dot * a.scale;
    }
    softmax(a.scratch, a.n_ctx - a.first);
    for (uint32_t d = 0; d < hd; ++d) out[d] = 0.0f;
    for (uint32_t t = a.first; t < a.n_ctx; ++t) {
      const uint16_t* v = kv.v_pool + kv_offset(kv, t, kvh);
      const float p = a.scratch[t - a.first];
      for (uint32_t d = 0; d < hd; ++d) out[d] += p * f16_to_f32(v[d]);
    }
  }
}

}  // namespace ref
}  // namespace tern
