// AVX2 attention over the paged f16 KV cache, one query head at a time:
//   scores: four K rows per step, each converted 8 values at a time with F16C
//           and FMA'd against q into its own accumulator (four independent
//           chains instead of one), the four reduced together with hadd;
//   softmax: the AVX2 softmax over the scores;
//   out:    out_h = sum_t p[t] * V[t] with the output held in up to 8 ymm
//           registers (64 floats) across a block's positions, so no value
//           makes a store-to-load round trip per position.
// Positions are walked block by block (no divide per position). head_dim % 8
// tails are handled in scalar. The float summation order differs from the
// scalar reference (lanes, four-row reduction); the attention test states the
// tolerance.
//
// Measured (SmolLM2 shapes, 30 layers, one thread): one accumulator chain per
// row and `out` updated through memory per position cost 1.2x (context 4096)
// to 2x (context 256) this version's time.
// What bounds it now is FMA throughput: 2 * head_dim multiply-adds per
// position and head, as many as all the weight matrices together at context
// 4096. Doing the query heads of a GQA group in one pass (each K/V row
// converted once) measured no faster on this x86; int8 K/V with integer dot
// products is the way to go further.
#include "kernels/avx2/kernels_avx2.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace avx2 {

namespace {

// Sum of the 8 lanes of each of a, b, c, d -> {sum a, sum b, sum c, sum d}.
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b);  // a01 a23 b01 b23 | a45 a67 b45 b67
  const __m256 cd = _mm256_hadd_ps(c, d);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 ...
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

inline float dot_tail(const float* q, const uint16_t* k, uint32_t d0, uint32_t hd) {
  float s = 0.0f;
  for (uint32_t d = d0; d < hd; ++d) s += q[d] * f16_to_f32(k[d]);
  return s;
}

// scores[i] = dot(q, K row i) * scale for `n` rows `stride` elements apart.
void scores_rows(const float* q, const uint16_t* k, size_t stride, uint32_t n, uint32_t hd, float scale,
                 float* scores) {
  const uint32_t hd8 = hd & ~7u;
  const __m128 vscale = _mm_set1_ps(scale);
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint16_t* k0 = k + i * stride;
    const uint16_t* k1 = k0 + stride;
    const uint16_t* k2 = k1 + stride;
    const uint16_t* k3 = k2 + stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t d = 0; d < hd8; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + d);
      a0 = _mm256_fmadd_ps(qv, load_f16x8(k0 + d), a0);
      a1 = _mm256_fmadd_ps(qv, load_f16x8(k1 + d), a1);
      a2 = _mm256_fmadd_ps(qv, load_f16x8(k2 + d), a2);
      a3 = _mm256_fmadd_ps(qv, load_f16x8(k3 + d), a3);
    }
    __m128 s = hsum4(a0, a1, a2, a3);
    if (hd8 < hd)
      s = _mm_add_ps(s, _mm_setr_ps(dot_tail(q, k0, hd8, hd), dot_tail(q, k1, hd8, hd), dot_tail(q, k2, hd8, hd),
                                    dot_tail(q, k3, hd8, hd)));
    _mm_storeu_ps(scores + i, _mm_mul_ps(s, vscale));
  }
  for (; i < n; ++i) {
    const uint16_t* ki = k + i * stride;
    __m256 a = _mm256_setzero_ps();
    for (uint32_t d = 0; d < hd8; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_f16x8(ki + d), a);
    scores[i] = (hsum(a) + dot_tail(q, ki, hd8, hd)) * scale;
  }
}

// out[0, 8 NR) += sum_i p[i] * V row i [0, 8 NR) for `n` rows `stride` apart,
// the NR output vectors in registers throughout.
template <int NR>
void accumulate_v(const float* p, const uint16_t* v, size_t stride, uint32_t n, float* out) {
  __m256 acc[NR];
  for (int j = 0; j < NR; ++j) acc[j] = _mm256_loadu_ps(out + 8 * j);
  for (uint32_t i = 0; i < n; ++i) {
    const __m256 pv = _mm256_set1_ps(p[i]);
    const uint16_t* vi = v + i * stride;
    for (int j = 0; j < NR; ++j) acc[j] = _mm256_fmadd_ps(pv, load_f16x8(vi + 8 * j), acc[j]);
  }
  for (int j = 0; j < NR; ++j) _mm256_storeu_ps(out + 8 * j, acc[j]);
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
    default: accumulate_v<8>(p, v, stride, n, out); break;
  }
}

}  // namespace

void attention(const PagedKv& kv, const AttentionArgs& a) {
  const uint32_t hd = kv.head_dim;
  const uint32_t hd8 = hd & ~7u;
  const uint32_t group = a.heads / kv.kv_heads;
  const size_t row_stride = size_t(kv.kv_heads) * hd;  // between positions of one block
  const uint32_t n_blocks = (a.n_ctx + kv.block_tokens - 1) / kv.block_tokens;
  const uint32_t b_first = a.first / kv.block_tokens;
  for (uint32_t h = a.h0; h < a.h1; ++h) {
    const uint32_t kvh = h / group;
    const float* q = a.q + size_t(h) * hd;
    float* out = a.out + size_t(h) * hd;
    for (uint32_t b = b_first; b < n_blocks; ++b) {
      // Positions [t0, t0 + n) of block b; the first block may start inside.
      const uint32_t t0 = b == b_first ? a.first : b * kv.block_tokens;
      const uint32_t end = (b + 1) * kv.block_tokens < a.n_ctx ? (b + 1) * kv.block_tokens : a.n_ctx;
      const uint32_t n = end - t0;
      const uint16_t* k = kv.k_pool + size_t(kv.block_table[b]) * kv.block_stride +
                          size_t(t0 - b * kv.block_tokens) * row_stride + size_t(kvh) * hd;
      scores_rows(q, k, row_stride, n, hd, a.scale, a.scratch + (t0 - a.first));
    }
    softmax(a.scratch, a.n_ctx - a.first);
    for (uint32_t d = 0; d < hd; ++d) out[d] = 0.0f;
    for (uint32_t b = b_first; b < n_blocks; ++b) {
      const uint32_t t0 = b == b_first ? a.first : b * kv.block_tokens;
      const uint32_t end = (b + 1) * kv.block_tokens < a.n_ctx ? (b + 1) * kv.block_tokens : a.n_ctx;
      const uint32_t n = end - t0;
      const uint16_t* v = kv.v_pool + size_t(kv.block_table[b]) * kv.block_stride +
                          size_t(t0 - b * kv.block_tokens) * row_stride + size_t(kvh) * hd;
      const float* p = a.scratch + (t0 - a.first);
      for (uint32_t d0 = 0; d0 < hd8; d0 += 64) {
        const uint32_t vecs = (hd8 - d0) / 8 < 8 ? (hd8 - d0) / 8 : 8;
        accumulate_v_any(p, v + d0, row_stride, n, vecs, out + d0);
      }
      for (uint32_t i = 0; i < n; ++i)
        for (uint32_t d = hd8; d < hd; ++d) out[d] += p[i] * f16_to_f32(v[i * row_stride + d]);
    }
  }
}

}  // namespace avx2
}  // namespace tern
