// One token's attention over the paged f16 KV cache, AArch64 NEON. K and V
// rows are widened 4 at a time with vcvt_f32_f16 (base ARMv8.0; ARMv7 NEON
// without the fp16 extension has no such conversion, so the ARMv7 table keeps
// the scalar reference). Scores: q.k in two fused-multiply-add vectors, then
// the NEON softmax; the V sum is the reference's per-element
// out[d] += p * v[d] (unfused), so only the q.k summation order differs.
#if defined(__aarch64__)
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace neon {

namespace {

inline float32x4_t load_f16x4(const uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

}  // namespace

void attention(const PagedKv& kv, const AttentionArgs& a) {
  const uint32_t hd = kv.head_dim;
  const uint32_t group = a.heads / kv.kv_heads;
  const uint32_t hd8 = hd / 8 * 8, hd4 = hd / 4 * 4;
  for (uint32_t h = a.h0; h < a.h1; ++h) {
    const uint32_t kvh = h / group;
    const float* q = a.q + size_t(h) * hd;  // [head_dim]
    float* out = a.out + size_t(h) * hd;    // [head_dim]
    for (uint32_t t = 0; t < a.n_ctx; ++t) {
      const uint16_t* k = kv.k_pool + ref::kv_offset(kv, t, kvh);  // [head_dim] f16
      float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
      uint32_t d = 0;
      for (; d < hd8; d += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(q + d), load_f16x4(k + d));
        s1 = vfmaq_f32(s1, vld1q_f32(q + d + 4), load_f16x4(k + d + 4));
      }
      float dot = vaddvq_f32(vaddq_f32(s0, s1));
      for (; d < hd; ++d) dot += q[d] * f16_to_f32(k[d]);
      a.scratch[t] = dot * a.scale;
    }
    softmax(a.scratch, a.n_ctx);  // neon::softmax
    for (uint32_t d = 0; d < hd; ++d) out[d] = 0.0f;
    for (uint32_t t = 0; t < a.n_ctx; ++t) {
      const uint16_t* v = kv.v_pool + ref::kv_offset(kv, t, kvh);  // [head_dim] f16
      const float p = a.scratch[t];
      uint32_t d = 0;
      for (; d < hd4; d += 4)
        vst1q_f32(out + d, vaddq_f32(vld1q_f32(out + d), vmulq_n_f32(load_f16x4(v + d), p)));
      for (; d < hd; ++d) out[d] += p * f16_to_f32(v[d]);
    }
  }
}

}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
