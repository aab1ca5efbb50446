// One token's attention over the paged int8 KV cache (layout in
// kernels/kernels.h); the specification of every attention_i8kv variant.
// K and V are stored rotated (kv_rotate, kernels/ref/kernels_ref.h), so the
// query is rotated the same way and the output rotated back. For each head h
// in [h0, h1) with kv head kvh = h / (heads / kv_heads):
//   q8, qd = quantize_i8_query(q_h)               (H q_h in int8, one scale)
//   s[t] = float(dot(q8, K8[t])) * (qd * scale) * kd[t]   (int32 dot, exact)
// Positions are walked in tiles of 16 (aligned to the block, so a tile never
// straddles two blocks) with an online softmax (running max m, sum l, as
// flash attention does): per tile
//   m' = max(m, max s);  out *= exp(m - m');  p[t] = exp(s[t] - m')
//   l  = l * exp(m - m') + sum p
//   w[t] = p[t] * vd[t];  wd = max w / 127;  w8[t] = round(w[t] / wd) in [0, 127]
//   out[d] += wd * float(sum_t w8[t] * V8[t, d])        (int32 sum, exact)
// and out = H (out / l) at the end. Quantizing the tile's weights w to 7 bits
// lets V be accumulated with integer dot products over 4 positions at a time
// (the V tile stores 4 positions of a dimension together): the error of a weight is
// at most wd / 2 = max w / 254 of its tile, the same relative step as V's own
// int8 rounding (absmax / 254). Variants compute the integer dots exactly and
// the floats in their own order and exp; the tests state the tolerance.
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void attention_i8kv(const PagedKv& kv, const AttentionArgs& a) {
  const uint32_t hd = kv.head_dim;
  const uint32_t bt = kv.block_tokens;
  const uint32_t group = a.heads / kv.kv_heads;
  int8_t q8[1024];  // head_dim <= 1024 (blob limits)
  float qrot[1024];
  for (uint32_t h = a.h0; h < a.h1; ++h) {
    const uint32_t kvh = h / group;
    const float c = quantize_i8_query(a.q + size_t(h) * hd, hd, qrot, q8) * a.scale;
    float* out = a.out + size_t(h) * hd;  // [head_dim]
    for (uint32_t d = 0; d < hd; ++d) out[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (uint32_t t0 = a.first - a.first % kKvTile; t0 < a.n_ctx; t0 += kKvTile) {
      const size_t block = size_t(kv.block_table[t0 / bt]) * kv.block_stride;
      const uint8_t* kb = kv.k_i8 + block;
      const uint8_t* vb = kv.v_i8 + block;
      const uint32_t r0 = t0 % bt;
      const uint32_t lo = (a.first > t0 ? a.first : t0) - t0;
      const uint32_t hi = (a.n_ctx < t0 + kKvTile ? a.n_ctx : t0 + kKvTile) - t0;
      float s[kKvTile], w[kKvTile];
      int32_t w8[kKvTile] = {};
      float mx = -INFINITY;
      for (uint32_t i = lo; i < hi; ++i) {
        int32_t dot = 0;
        for (uint32_t d = 0; d < hd; ++d) dot += int32_t(q8[d]) * (int32_t(kb[kv_i8_k_offset(kv, r0 + i, kvh, d)]) - 128);
        float kd;
        __builtin_memcpy(&kd, kb + kv_i8_scale_offset(kv, r0 + i, kvh), sizeof(float));
        s[i] = float(dot) * c * kd;
        mx = s[i] > mx ? s[i] : mx;
      }
      const float m_new = mx > m ? mx : m;
      const float rescale = m == -INFINITY ? 0.0f : std::exp(m - m_new);
      m = m_new;
      float sum = 0.0f, wmax = 0.0f;
      for (uint32_t i = lo; i < hi; ++i) {
        const float p = std::exp(s[i] - m_new);
        sum += p;
        float vd;
        __builtin_memcpy(&vd, vb + kv_i8_scale_offset(kv, r0 + i, kvh), sizeof(float));
        w[i] = p * vd;
        wmax = w[i] > wmax ? w[i] : wmax;
      }
      l = l * rescale + sum;
      const float wd = wmax / 127.0f;
      const float iw = wd > 0.0f ? 1.0f / wd : 0.0f;
      for (uint32_t i = lo; i < hi; ++i) w8[i] = int32_t(round_nearest_even(w[i] * iw));
      for (uint32_t d = 0; d < hd; ++d) {
        int32_t acc = 0;
        for (uint32_t i = lo; i < hi; ++i) acc += w8[i] * (int32_t(vb[kv_i8_v_offset(kv, r0 + i, kvh, d)]) - 128);
        out[d] = out[d] * rescale + wd * float(acc);
      }
    }
    const float inv = 1.0f / l;
    for (uint32_t d = 0; d < hd; ++d) out[d] *= inv;
    kv_rotate(out, hd, kv_rotation_block(hd));  // back from the cache's basis
  }
}

}  // namespace ref
}  // namespace tern
