// One token's attention over the paged f16 KV cache, AArch64 NEON, one query
// head at a time. K and V rows are widened 4 at a time with vcvt_f32_f16
// (base ARMv8.0; ARMv7 NEON without the fp16 extension has no such
// conversion, so the ARMv7 table keeps the scalar reference).
//   scores: four K rows per step, each with its own pair of FMA accumulators
//           (independent chains), then the NEON softmax;
//   out:    out_h = sum_t p[t] * V[t] with FMA, the output held in up to 16
//           q registers (64 floats) across a block's positions instead of a
//           load/add/store of `out` per position.
// Positions are walked block by block (no divide per position); head_dim % 4
// tails in scalar. Summation order differs from the reference (lanes, fused
// multiply-adds); the attention test states the tolerance. Same structure as
// the AVX2 kernel, where it measured 1.2-2x the per-position version.
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

inline float dot_tail(const float* q, const uint16_t* k, uint32_t d0, uint32_t hd) {
  float s = 0.0f;
  for (uint32_t d = d0; d < hd; ++d) s += q[d] * f16_to_f32(k[d]);
  return s;
}

// scores[i] = dot(q, K row i) * scale for `n` rows `stride` elements apart.
void scores_rows(const float* q, const uint16_t* k, size_t stride, uint32_t n, uint32_t hd, float scale,
                 float* scores) {
  const uint32_t hd4 = hd & ~3u;
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint16_t* kr[4] = {k + i * stride, k + (i + 1) * stride, k + (i + 2) * stride, k + (i + 3) * stride};
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (uint32_t d = 0; d < hd4; d += 4) {
      const float32x4_t qv = vld1q_f32(q + d);
      for (int r = 0; r < 4; ++r) acc[r] = vfmaq_f32(acc[r], qv, load_f16x4(kr[r] + d));
    }
    for (int r = 0; r < 4; ++r) scores[i + r] = (vaddvq_f32(acc[r]) + dot_tail(q, kr[r], hd4, hd)) * scale;
  }
  for (; i < n; ++i) {
    const uint16_t* ki = k + i * stride;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (uint32_t d = 0; d < hd4; d += 4) acc = vfmaq_f32(acc, vld1q_f32(q + d), load_f16x4(ki + d));
    scores[i] = (vaddvq_f32(acc) + dot_tail(q, ki, hd4, hd)) * scale;
  }
}

// out[0, 4 NR) += sum_i p[i] * V row i [0, 4 NR), NR vectors in registers.
template <int NR>
void accumulate_v(const float* p, const uint16_t* v, size_t stride, uint32_t n, float* out) {
  float32x4_t acc[NR];
  for (int j = 0; j < NR; ++j) acc[j] = vld1q_f32(out + 4 * j);
  for (uint32_t i = 0; i < n; ++i) {
    const float32x4_t pv = vdupq_n_f32(p[i]);
    const uint16_t* vi = v + i * stride;
    for (int j = 0; j < NR; ++j) acc[j] = vfmaq_f32(acc[j], pv, load_f16x4(vi + 4 * j));
  }
  for (int j = 0; j < NR; ++j) vst1q_f32(out + 4 * j, acc[j]);
}

void accumulate_v_any(const float* p, const uint16_t* v, size_t stride, uint32_t n, uint32_t vecs, float* out) {
  switch (vecs) {
    case 1: accumulate_v<1>(p, v, stride, n, out); break;
    case 2: accumulate_v<2>(p, v, stride, n, out); break;
    case 3: accumulate_v<3>(p, v, stride, n, out); break;
    case 4: accumulate_v<4>(p, v, stride, n, out); break;
    case 5: accumulate_v<5>(p, v, stride, n, out); break;
    case 6: accumulate_v<6>(p, v, stride, n, out); break;
    case 7: accumulate_v<7>(p, v, stride, n, out); break;
    case 8: accumulate_v<8>(p, v, stride, n, out); break;
    case 9: accumulate_v<9>(p, v, stride, n, out); break;
    case 10: accumulate_v<10>(p, v, stride, n, out); break;
    case 11: accumulate_v<11>(p, v, stride, n, out); break;
    case 12: accumulate_v<12>(p, v, stride, n, out); break;
    case 13: accumulate_v<13>(p, v, stride, n, out); break;
    case 14: accumulate_v<14>(p, v, stride, n, out); break;
    case 15: accumulate_v<15>(p, v, stride, n, out); break;
    default: accumulate_v<16>(p, v, stride, n, out); break;
  }
}

}  // namespace

void attention(const PagedKv& kv, const AttentionArgs& a) {
  const uint32_t hd = kv.head_dim;
  const uint32_t hd4 = hd & ~3u;
  const uint32_t group = a.heads / kv.kv_heads;
  const size_t row_stride = size_t(kv.kv_heads) * hd;  // between positions of one block
  const uint32_t n_blocks = (a.n_ctx + kv.block_tokens - 1) / kv.block_tokens;
  const uint32_t b_first = a.first / kv.block_tokens;
  for (uint32_t h = a.h0; h < a.h1; ++h) {
    const uint32_t kvh = h / group;
    const float* q = a.q + size_t(h) * hd;  // [head_dim]
    float* out = a.out + size_t(h) * hd;    // [head_dim]
    for (uint32_t b = b_first; b < n_blocks; ++b) {
      // Positions [t0, t0 + n) of block b; the first block may start inside.
      const uint32_t t0 = b == b_first ? a.first : b * kv.block_tokens;
      const uint32_t end = (b + 1) * kv.block_tokens < a.n_ctx ? (b + 1) * kv.block_tokens : a.n_ctx;
      const uint32_t n = end - t0;
      const uint16_t* k = kv.k_pool + size_t(kv.block_table[b]) * kv.block_stride +
                          size_t(t0 - b * kv.block_tokens) * row_stride + size_t(kvh) * hd;
      scores_rows(q, k, row_stride, n, hd, a.scale, a.scratch + (t0 - a.first));
    }
    softmax(a.scratch, a.n_ctx - a.first);  // neon::softmax
    for (uint32_t d = 0; d < hd; ++d) out[d] = 0.0f;
    for (uint32_t b = b_first; b < n_blocks; ++b) {
      const uint32_t t0 = b == b_first ? a.first : b * kv.block_tokens;
      const uint32_t end = (b + 1) * kv.block_tokens < a.n_ctx ? (b + 1) * kv.block_tokens : a.n_ctx;
      const uint32_t n = end - t0;
      const uint16_t* v = kv.v_pool + size_t(kv.block_table[b]) * kv.block_stride +
                          size_t(t0 - b * kv.block_tokens) * row_stride + size_t(kvh) * hd;
      const float* p = a.scratch + (t0 - a.first);
      for (uint32_t d0 = 0; d0 < hd4; d0 += 64) {
        const uint32_t vecs = (hd4 - d0) / 4 < 16 ? (hd4 - d0) / 4 : 16;
        accumulate_v_any(p, v + d0, row_stride, n, vecs, out + d0);
      }
      for (uint32_t i = 0; i < n; ++i)
        for (uint32_t d = hd4; d < hd; ++d) out[d] += p[i] * f16_to_f32(v[i * row_stride + d]);
    }
  }
}

}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
