// AVX2 attention over the paged f16 KV cache: K rows converted 8 at a time
// with F16C for the q.k dot products, the AVX2 softmax over the scores, then
// out_h += p[t] * V[t] with FMA. head_dim % 8 tails are handled in scalar.
#include "kernels/avx2/kernels_avx2.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace avx2 {

void attention(const PagedKv& kv, const AttentionArgs& a) {
  const uint32_t hd = kv.head_dim;
  const uint32_t hd8 = hd & ~7u;
  const uint32_t group = a.heads / kv.kv_heads;
  for (uint32_t h = a.h0; h < a.h1; ++h) {
    const uint32_t kvh = h / group;
    const float* q = a.q + size_t(h) * hd;
    float* out = a.out + size_t(h) * hd;
    for (uint32_t t = 0; t < a.n_ctx; ++t) {
      const uint16_t* k = kv.k_pool + ref::kv_offset(kv, t, kvh);
      __m256 acc = _mm256_setzero_ps();
      for (uint32_t d = 0; d < hd8; d += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_f16x8(k + d), acc);
      float dot = hsum(acc);
      for (uint32_t d = hd8; d < hd; ++d) dot += q[d] * f16_to_f32(k[d]);
      a.scratch[t] = dot * a.scale;
    }
    softmax(a.scratch, a.n_ctx);
    for (uint32_t d = 0; d < hd; ++d) out[d] = 0.0f;
    for (uint32_t t = 0; t < a.n_ctx; ++t) {
      const uint16_t* v = kv.v_pool + ref::kv_offset(kv, t, kvh);
      const float p = a.scratch[t];
      const __m256 vp = _mm256_set1_ps(p);
      for (uint32_t d = 0; d < hd8; d += 8)
        _mm256_storeu_ps(out + d, _mm256_fmadd_ps(vp, load_f16x8(v + d), _mm256_loadu_ps(out + d)));
      for (uint32_t d = hd8; d < hd; ++d) out[d] += p * f16_to_f32(v[d]);
    }
  }
}

}  // namespace avx2
}  // namespace tern
