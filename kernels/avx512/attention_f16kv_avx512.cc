// AVX-512 attention over the paged f16 KV cache. The query heads that read
// one KV head (GQA: Gemma 3 has 4 per KV head, SmolLM2 3) are done together,
// so each K and V row is converted from f16 (vcvtph2ps) once for all of them
// where the AVX2 kernel converts it once per head; and the positions are
// walked in chunks of 32 with a running max and sum per head (online
// softmax, as flash attention does), so the chunk's scores live on the stack:
//   scores: 4 K rows x G heads per step, 16 dims at a time;
//   out:    out_h = out_h * rescale_h + sum_t p_h[t] V[t], 64 dims x G heads
//           of accumulators in registers across the chunk.
// In a 512-token Gemma 3 270M prefill attention went from 16% of the time
// (AVX2 kernel) to 11%. head_dim not a multiple of 16 goes to the AVX2
// kernel. The float summation order differs from the scalar reference; the
// attention test states the tolerance.
#include "kernels/kv_head_runs.h"
#include "kernels/avx512/kernels_avx512.h"
#include "kernels/avx512/simd_avx512.h"

namespace tern {
namespace TERN_AVX512_NS {

namespace {

// ---- query heads of one KV head together, online softmax ---------------------------
//
// The G (<= 4) query heads that read one KV head (GQA) are done in one pass,
// so each K and V row is converted from f16 once for all of them (the
// conversions were half the work per head), and the positions are walked in
// chunks of kChunk with a running max and sum per head (online softmax, as
// flash attention does), so no per-head score row of the whole context is
// needed: a chunk's G x kChunk scores live on the stack.
constexpr uint32_t kChunk = 32;

// scores[h][i] = dot(q_h, K row i) * scale, rows `stride` apart, n <= kChunk.
template <int G>
void chunk_scores(const float* const* q, const uint16_t* k, size_t stride, uint32_t n, uint32_t hd, float scale,
                  float (*scores)[kChunk]) {
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V16f acc[G][4];
    unrolled<G>([&](auto h) { unrolled<4>([&](auto r) { acc[h][r] = zero_f(); }); });
    for (uint32_t d = 0; d < hd; d += 16) {
      V16f kr[4];
      unrolled<4>([&](auto r) { kr[r] = load_f16(k + (i + r) * stride + d); });
      unrolled<G>([&](auto h) {
        const V16f qv = load_f(q[h] + d);
        unrolled<4>([&](auto r) { acc[h][r] = fmadd_f(qv, kr[r], acc[h][r]); });
      });
    }
    unrolled<G>([&](auto h) {
      unrolled<4>([&](auto r) { scores[h][i + r] = reduce_add_f(acc[h][r]) * scale; });
    });
  }
  for (; i < n; ++i) {
    V16f acc[G];
    unrolled<G>([&](auto h) { acc[h] = zero_f(); });
    for (uint32_t d = 0; d < hd; d += 16) {
      const V16f kr = load_f16(k + i * stride + d);
      unrolled<G>([&](auto h) { acc[h] = fmadd_f(load_f(q[h] + d), kr, acc[h]); });
    }
    unrolled<G>([&](auto h) { scores[h][i] = reduce_add_f(acc[h]) * scale; });
  }
}

// out_h = out_h * rescale[h] + sum_i p[h][i] V row i, 64 dims at a time
// (G x 4 accumulators), n <= kChunk rows `stride` apart.
template <int G>
void chunk_values(float (*p)[kChunk], const float* rescale, const uint16_t* v, size_t stride, uint32_t n,
                  uint32_t hd, float* const* out) {
  uint32_t d0 = 0;
  for (; d0 + 64 <= hd; d0 += 64) {
    V16f acc[G][4];
    unrolled<G>([&](auto h) {
      const V16f c = set1_f(rescale[h]);
      unrolled<4>([&](auto j) { acc[h][j] = mul_f(load_f(out[h] + d0 + 16 * j), c); });
    });
    for (uint32_t i = 0; i < n; ++i) {
      V16f vr[4];
      unrolled<4>([&](auto j) { vr[j] = load_f16(v + i * stride + d0 + 16 * j); });
      unrolled<G>([&](auto h) {
        const V16f pv = set1_f(p[h][i]);
        unrolled<4>([&](auto j) { acc[h][j] = fmadd_f(pv, vr[j], acc[h][j]); });
      });
    }
    unrolled<G>([&](auto h) { unrolled<4>([&](auto j) { store_f(out[h] + d0 + 16 * j, acc[h][j]); }); });
  }
  for (; d0 < hd; d0 += 16) {  // head_dim % 64 tail, 16 at a time
    V16f acc[G];
    unrolled<G>([&](auto h) { acc[h] = mul_f(load_f(out[h] + d0), set1_f(rescale[h])); });
    for (uint32_t i = 0; i < n; ++i) {
      const V16f vr = load_f16(v + i * stride + d0);
      unrolled<G>([&](auto h) { acc[h] = fmadd_f(set1_f(p[h][i]), vr, acc[h]); });
    }
    unrolled<G>([&](auto h) { store_f(out[h] + d0, acc[h]); });
  }
}

// Query heads [hb, hb + G) of one token, all reading KV head kvh.
template <int G>
void attention_heads(const PagedKv& kv, const AttentionArgs& a, uint32_t kvh, uint32_t hb) {
  const uint32_t hd = kv.head_dim;
  const size_t row_stride = size_t(kv.kv_heads) * hd;
  const float* q[G];
  float* out[G];
  float m[G], l[G];
  for (int h = 0; h < G; ++h) {
    q[h] = a.q + size_t(hb + h) * hd;
    out[h] = a.out + size_t(hb + h) * hd;
    for (uint32_t d = 0; d < hd; ++d) out[h][d] = 0.0f;
    m[h] = -__builtin_inff();
    l[h] = 0.0f;
  }
  alignas(64) float p[G][kChunk];
  const uint32_t n_blocks = (a.n_ctx + kv.block_tokens - 1) / kv.block_tokens;
  for (uint32_t b = a.first / kv.block_tokens; b < n_blocks; ++b) {
    const uint32_t b0 = b * kv.block_tokens;
    const uint32_t end = b0 + kv.block_tokens < a.n_ctx ? b0 + kv.block_tokens : a.n_ctx;
    const size_t base = size_t(kv.block_table[b]) * kv.block_stride + size_t(kvh) * hd;
#if !TERN_AVX512_EMULATE
    // This KV head's rows of the next block, while this one computes (the
    // next block can be anywhere in the pool; its rows are row_stride apart).
    // SmolLM2 at context 4096, one thread, on the Xeon: 1.4-1.6x the decode
    // tok/s without it (bench/results/kv-int8-xeon-2026-12-07.md).
    if (b + 1 < n_blocks) {
      const size_t next = size_t(kv.block_table[b + 1]) * kv.block_stride + size_t(kvh) * hd;
      const uint32_t rows = kv.block_tokens < 64 ? kv.block_tokens : 64;
      for (uint32_t i = 0; i < rows; ++i) {
        for (uint32_t d = 0; d < hd; d += 32) {  // 32 f16 = one 64-byte line
          _mm_prefetch(reinterpret_cast<const char*>(kv.k_pool + next + i * row_stride + d), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(kv.v_pool + next + i * row_stride + d), _MM_HINT_T0);
        }
      }
    }
#endif
    for (uint32_t t0 = b0 > a.first ? b0 : a.first; t0 < end; t0 += kChunk) {
      const uint32_t n = end - t0 < kChunk ? end - t0 : kChunk;
      const size_t off = base + size_t(t0 - b0) * row_stride;
      chunk_scores<G>(q, kv.k_pool + off, row_stride, n, hd, a.scale, p);
      float rescale[G];
      for (int h = 0; h < G; ++h) {
        float mx = p[h][0];
        for (uint32_t i = 1; i < n; ++i) mx = p[h][i] > mx ? p[h][i] : mx;
        const float m_new = mx > m[h] ? mx : m[h];
        rescale[h] = m[h] == -__builtin_inff() ? 0.0f : __builtin_expf(m[h] - m_new);
        m[h] = m_new;
        // p = exp(s - m), 16 at a time; lanes past n are not used.
        float sum = 0.0f;
        for (uint32_t i = 0; i < n; i += 16) {
          alignas(64) float e[16];
          store_f(e, exp_f(add_f(load_f(p[h] + i), set1_f(-m_new))));
          const uint32_t k_end = n - i < 16 ? n - i : 16;
          for (uint32_t k = 0; k < k_end; ++k) {
            p[h][i + k] = e[k];
            sum += e[k];
          }
        }
        l[h] = l[h] * rescale[h] + sum;
      }
      chunk_values<G>(p, rescale, kv.v_pool + off, row_stride, n, hd, out);
    }
  }
  for (int h = 0; h < G; ++h) {
    const V16f inv = set1_f(1.0f / l[h]);
    for (uint32_t d = 0; d < hd; d += 16) store_f(out[h] + d, mul_f(load_f(out[h] + d), inv));
  }
}

}  // namespace

void attention(const PagedKv& kv, const AttentionArgs& a) {
  if (kv.head_dim % 16 != 0) {  // no model tern runs has such heads; the AVX2 kernel covers them
    avx2::attention(kv, a);
    return;
  }
  for_kv_head_runs(a.heads, kv.kv_heads, a.h0, a.h1,
                   [&](auto g, uint32_t kvh, uint32_t h) { attention_heads<decltype(g)::value>(kv, a, kvh, h); });
}

}  // namespace TERN_AVX512_NS
}  // namespace tern
