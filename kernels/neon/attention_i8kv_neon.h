// AArch64 NEON attention over the paged int8 KV cache (layout and algorithm:
// kernels/kernels.h, kernels/ref/attention_i8kv_ref.cc), one template over a
// 4-way int8 dot product policy, instantiated by attention_i8kv_neon.cc
// (vmull_s8 + pairwise adds, base ARMv8.0) and attention_i8kv_neondot.cc
// (sdot). Both tile layouts are made for it: 16 bytes of a K tile are 4 dims
// of 4 positions, of a V tile 4 positions of 4 dims, so dot4(acc, tile
// bytes, 4 query values or 4 weights repeated) gives 4 int32 results (per
// position, resp. per dimension) with no horizontal sums. The G (<= 4)
// query heads of one KV head share each load. Integer sums are exact; the
// floats differ from the reference in order and exp.
// Everything is static / in an unnamed namespace: the dotprod file includes
// this with -march=armv8.2-a+dotprod (see neon_util.h).
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/kv_head_runs.h"
#include "kernels/neon/neon_util.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace {

inline int32_t i8kv_load_i32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

template <class Dot, int G>
void i8kv_attention_heads(const PagedKv& kv, const AttentionArgs& a, uint32_t kvh, uint32_t hb) {
  const uint32_t hd = kv.head_dim, bt = kv.block_tokens;
  alignas(16) int8_t q8[G][1024];  // head_dim <= 1024 (blob limits)
  float c[G], m[G], l[G];
  float* out[G];
  float qrot[1024];  // one head's query in the cache's rotated basis (ref::kv_rotate)
  for (int h = 0; h < G; ++h) {
    c[h] = ref::quantize_i8_query(a.q + size_t(hb + h) * hd, hd, qrot, q8[h]) * a.scale;
    out[h] = a.out + size_t(hb + h) * hd;
    for (uint32_t d = 0; d < hd; ++d) out[h][d] = 0.0f;
    m[h] = -__builtin_inff();
    l[h] = 0.0f;
  }
  const uint8x16_t flip = vdupq_n_u8(0x80);
  const size_t tile_bytes = size_t(kKvTile) * hd;
  const size_t scale_plane = size_t(bt) * kv.kv_heads * hd;
  const int32_t lane_idx[4] = {0, 1, 2, 3};
  const int32x4_t idx = vld1q_s32(lane_idx);
  for (uint32_t t0 = a.first - a.first % kKvTile; t0 < a.n_ctx; t0 += kKvTile) {
    const size_t block = size_t(kv.block_table[t0 / bt]) * kv.block_stride;
    const uint32_t r0 = t0 % bt;
    const size_t tile_off = (size_t(kvh) * (bt / kKvTile) + r0 / kKvTile) * tile_bytes;
    const uint8_t* kt = kv.k_i8 + block + tile_off;
    const uint8_t* vt = kv.v_i8 + block + tile_off;
    const size_t scale_off = scale_plane + (size_t(kvh) * bt + r0) * sizeof(float);
    const int32_t lo = int32_t((a.first > t0 ? a.first : t0) - t0);
    const int32_t hi = int32_t((a.n_ctx < t0 + kKvTile ? a.n_ctx : t0 + kKvTile) - t0);
    uint32x4_t valid[4];
    for (int r = 0; r < 4; ++r) {
      const int32x4_t i = vaddq_s32(idx, vdupq_n_s32(4 * r));
      valid[r] = vandq_u32(vcgeq_s32(i, vdupq_n_s32(lo)), vcltq_s32(i, vdupq_n_s32(hi)));
    }

    int32x4_t acc[G][4];
    for (int h = 0; h < G; ++h)
      for (int r = 0; r < 4; ++r) acc[h][r] = vdupq_n_s32(0);
    for (uint32_t d = 0; d < hd; d += 4) {
      int8x16_t k[4];
      for (int r = 0; r < 4; ++r) k[r] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(kt + size_t(d) * kKvTile + 16 * r), flip));
      for (int h = 0; h < G; ++h) {
        const int8x16_t qv = vreinterpretq_s8_s32(vdupq_n_s32(i8kv_load_i32(q8[h] + d)));
        for (int r = 0; r < 4; ++r) acc[h][r] = Dot::dot4(acc[h][r], k[r], qv);
      }
    }
    const float* kd = reinterpret_cast<const float*>(kv.k_i8 + block + scale_off);
    const float* vd = reinterpret_cast<const float*>(kv.v_i8 + block + scale_off);
    alignas(16) int8_t w8[G][kKvTile];
    float rescale[G], wd[G];
    for (int h = 0; h < G; ++h) {
      const float32x4_t ch = vdupq_n_f32(c[h]);
      const float32x4_t neg_inf = vdupq_n_f32(-__builtin_inff());
      float32x4_t s[4];
      float32x4_t mxv = neg_inf;
      for (int r = 0; r < 4; ++r) {
        s[r] = vmulq_f32(vmulq_f32(vcvtq_f32_s32(acc[h][r]), ch), vld1q_f32(kd + 4 * r));
        s[r] = vbslq_f32(valid[r], s[r], neg_inf);
        mxv = vmaxq_f32(mxv, s[r]);
      }
      const float mx = vmaxvq_f32(mxv);
      const float m_new = mx > m[h] ? mx : m[h];
      rescale[h] = m[h] == -__builtin_inff() ? 0.0f : __builtin_expf(m[h] - m_new);
      m[h] = m_new;
      const float32x4_t mv = vdupq_n_f32(m_new);
      float32x4_t sum = vdupq_n_f32(0.0f), wmx = vdupq_n_f32(0.0f);
      float32x4_t w[4];
      for (int r = 0; r < 4; ++r) {
        const float32x4_t p =
            vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(neon::exp_f32(vsubq_f32(s[r], mv))), valid[r]));
        sum = vaddq_f32(sum, p);
        const float32x4_t vdr = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(vd + 4 * r)), valid[r]));
        w[r] = vmulq_f32(p, vdr);
        wmx = vmaxq_f32(wmx, w[r]);
      }
      l[h] = l[h] * rescale[h] + vaddvq_f32(sum);
      wd[h] = vmaxvq_f32(wmx) / 127.0f;
      const float32x4_t iw = vdupq_n_f32(wd[h] > 0.0f ? 1.0f / wd[h] : 0.0f);
      int16x4_t n16[4];
      for (int r = 0; r < 4; ++r) n16[r] = vmovn_s32(vcvtnq_s32_f32(vmulq_f32(w[r], iw)));
      vst1_s8(w8[h], vmovn_s16(vcombine_s16(n16[0], n16[1])));
      vst1_s8(w8[h] + 8, vmovn_s16(vcombine_s16(n16[2], n16[3])));
    }
    for (uint32_t d0 = 0; d0 < hd; d0 += 16) {
      int32x4_t va[G][4];
      for (int h = 0; h < G; ++h)
        for (int j = 0; j < 4; ++j) va[h][j] = vdupq_n_s32(0);
      for (uint32_t t4 = 0; t4 < 4; ++t4) {
        const uint8_t* vr = vt + size_t(t4) * hd * 4 + size_t(d0) * 4;
        int8x16_t v[4];
        for (int j = 0; j < 4; ++j) v[j] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(vr + 16 * j), flip));
        for (int h = 0; h < G; ++h) {
          const int8x16_t wv = vreinterpretq_s8_s32(vdupq_n_s32(i8kv_load_i32(w8[h] + 4 * t4)));
          for (int j = 0; j < 4; ++j) va[h][j] = Dot::dot4(va[h][j], v[j], wv);
        }
      }
      for (int h = 0; h < G; ++h) {
        const float32x4_t r = vdupq_n_f32(rescale[h]), w = vdupq_n_f32(wd[h]);
        for (int j = 0; j < 4; ++j) {
          float* o = out[h] + d0 + 4 * j;
          vst1q_f32(o, vfmaq_f32(vmulq_f32(vld1q_f32(o), r), w, vcvtq_f32_s32(va[h][j])));
        }
      }
    }
  }
  for (int h = 0; h < G; ++h) {
    const float32x4_t inv = vdupq_n_f32(1.0f / l[h]);
    for (uint32_t d = 0; d < hd; d += 4) vst1q_f32(out[h] + d, vmulq_f32(vld1q_f32(out[h] + d), inv));
    ref::kv_rotate(out[h], hd, ref::kv_rotation_block(hd));  // back from the cache's basis
  }
}

template <class Dot>
void i8kv_attention(const PagedKv& kv, const AttentionArgs& a) {
  for_kv_head_runs(a.heads, kv.kv_heads, a.h0, a.h1, [&](auto g, uint32_t kvh, uint32_t h) {
    i8kv_attention_heads<Dot, decltype(g)::value>(kv, a, kvh, h);
  });
}

}  // namespace
}  // namespace tern
#endif  // __aarch64__
