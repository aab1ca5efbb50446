// AVX-512 VNNI attention over the paged int8 KV cache (layout and the
// algorithm it follows: kernels/kernels.h, kernels/ref/attention_i8kv_ref.cc).
// The G (<= 4) query heads that read one KV head are done together, each K
// and V tile loaded once for all of them:
//   scores: per 4 dims, one 64-byte load holds those 4 dims of the tile's 16
//           positions; vpdpbusd of it (unsigned: the stored q + 128) with the
//           query's 4 int8 values broadcast (signed) adds into 16 int32 lanes,
//           one per position, so no horizontal sums; minus 128 * sum(q8);
//   softmax: online, 16 positions per step, masked lanes for the tile's ends;
//   values: the tile's 7-bit weights, 4 positions broadcast as one int32,
//           vpdpbusd with 16 dims x 4 positions per load (the stored v + 128),
//           minus 128 * sum(w8); out = out * rescale + wd * float(acc).
// Integer sums are exact; floats differ from the reference in summation order
// and exp (the attention tests state the tolerance).
#include <immintrin.h>

#include "kernels/kv_head_runs.h"
#include "kernels/avx512/kernels_avx512.h"
#include "kernels/avx512/simd_avx512.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace avx512vnni {

namespace {

inline int32_t load_i32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// out_h[d0, d0 + 16 NJ) = out_h * rescale[h] + wd[h] * (sum_t w8[h][t] V[t] - 128 sum w8[h]).
template <int G, int NJ>
inline void tile_values(const uint8_t* vt, uint32_t hd, uint32_t d0, const uint8_t (*w8)[kKvTile],
                        const int32_t* wsum128, const float* rescale, const float* wd, float* const* out) {
  __m512i acc[G][NJ];
  for (int h = 0; h < G; ++h)
    for (int j = 0; j < NJ; ++j) acc[h][j] = _mm512_setzero_si512();
  for (uint32_t t4 = 0; t4 < 4; ++t4) {
    __m512i v[NJ];
    for (int j = 0; j < NJ; ++j) v[j] = _mm512_loadu_si512(vt + size_t(t4) * hd * 4 + size_t(d0 + 16 * j) * 4);
    for (int h = 0; h < G; ++h) {
      const __m512i wb = _mm512_set1_epi32(load_i32(w8[h] + 4 * t4));
      for (int j = 0; j < NJ; ++j) acc[h][j] = _mm512_dpbusd_epi32(acc[h][j], v[j], wb);
    }
  }
  for (int h = 0; h < G; ++h) {
    const __m512 r = _mm512_set1_ps(rescale[h]), w = _mm512_set1_ps(wd[h]);
    const __m512i bias = _mm512_set1_epi32(wsum128[h]);
    for (int j = 0; j < NJ; ++j) {
      float* o = out[h] + d0 + 16 * j;
      const __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[h][j], bias));
      _mm512_storeu_ps(o, _mm512_fmadd_ps(w, f, _mm512_mul_ps(_mm512_loadu_ps(o), r)));
    }
  }
}

template <int G>
void attention_heads(const PagedKv& kv, const AttentionArgs& a, uint32_t kvh, uint32_t hb) {
  const uint32_t hd = kv.head_dim, bt = kv.block_tokens;
  alignas(64) int8_t q8[G][1024];  // head_dim <= 1024 (blob limits)
  int32_t qsum128[G];
  float c[G], m[G], l[G];
  float* out[G];
  float qrot[1024];  // one head's query in the cache's rotated basis (ref::kv_rotate)
  for (int h = 0; h < G; ++h) {
    c[h] = ref::quantize_i8_query(a.q + size_t(hb + h) * hd, hd, qrot, q8[h]) * a.scale;
    int32_t sum = 0;
    for (uint32_t d = 0; d < hd; ++d) sum += q8[h][d];
    qsum128[h] = 128 * sum;
    out[h] = a.out + size_t(hb + h) * hd;
    for (uint32_t d = 0; d < hd; ++d) out[h][d] = 0.0f;
    m[h] = -__builtin_inff();
    l[h] = 0.0f;
  }
  const __m512 neg_inf = _mm512_set1_ps(-__builtin_inff());
  const size_t tile_bytes = size_t(kKvTile) * hd;
  const size_t scale_plane = size_t(bt) * kv.kv_heads * hd;
  for (uint32_t t0 = a.first - a.first % kKvTile; t0 < a.n_ctx; t0 += kKvTile) {
    const size_t block = size_t(kv.block_table[t0 / bt]) * kv.block_stride;
    const uint32_t r0 = t0 % bt;
    const size_t tile_off = (size_t(kvh) * (bt / kKvTile) + r0 / kKvTile) * tile_bytes;
    const uint8_t* kt = kv.k_i8 + block + tile_off;
    const uint8_t* vt = kv.v_i8 + block + tile_off;
    const size_t scale_off = scale_plane + (size_t(kvh) * bt + r0) * sizeof(float);
    const uint32_t lo = (a.first > t0 ? a.first : t0) - t0;
    const uint32_t hi = (a.n_ctx < t0 + kKvTile ? a.n_ctx : t0 + kKvTile) - t0;
    // The K, V and scales two tiles ahead, while this one computes (the
    // tiles of one KV head are 16 * head_dim bytes apart inside a block, and
    // the next block can be anywhere in the pool). SmolLM2 at context 4096,
    // one thread, on the Xeon: 1.1-1.2x the decode tok/s of no prefetch;
    // two tiles ahead measured a little above one.
    if (t0 + 2 * kKvTile < a.n_ctx) {
      const uint32_t t1 = t0 + 2 * kKvTile;
      const size_t nb = size_t(kv.block_table[t1 / bt]) * kv.block_stride;
      const size_t ntile = (size_t(kvh) * (bt / kKvTile) + (t1 % bt) / kKvTile) * tile_bytes;
      const char* nk = reinterpret_cast<const char*>(kv.k_i8 + nb + ntile);
      const char* nv = reinterpret_cast<const char*>(kv.v_i8 + nb + ntile);
      for (size_t off = 0; off < tile_bytes; off += 64) {
        _mm_prefetch(nk + off, _MM_HINT_T0);
        _mm_prefetch(nv + off, _MM_HINT_T0);
      }
      const size_t nscale = scale_plane + (size_t(kvh) * bt + t1 % bt) * sizeof(float);
      _mm_prefetch(reinterpret_cast<const char*>(kv.k_i8 + nb + nscale), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(kv.v_i8 + nb + nscale), _MM_HINT_T0);
    }
    const __mmask16 valid = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));

    __m512i acc[G];
    for (int h = 0; h < G; ++h) acc[h] = _mm512_setzero_si512();
    for (uint32_t d = 0; d < hd; d += 4) {
      const __m512i k = _mm512_loadu_si512(kt + size_t(d) * kKvTile);
      for (int h = 0; h < G; ++h) acc[h] = _mm512_dpbusd_epi32(acc[h], k, _mm512_set1_epi32(load_i32(q8[h] + d)));
    }
    const __m512 kd = _mm512_loadu_ps(reinterpret_cast<const float*>(kv.k_i8 + block + scale_off));
    const __m512 vd = _mm512_maskz_loadu_ps(valid, reinterpret_cast<const float*>(kv.v_i8 + block + scale_off));
    alignas(16) uint8_t w8[G][kKvTile];
    int32_t wsum128[G];
    float rescale[G], wd[G];
    for (int h = 0; h < G; ++h) {
      __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[h], _mm512_set1_epi32(qsum128[h])));
      s = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_set1_ps(c[h])), kd);
      s = _mm512_mask_mov_ps(neg_inf, valid, s);
      const float mx = _mm512_reduce_max_ps(s);
      const float m_new = mx > m[h] ? mx : m[h];
      rescale[h] = m[h] == -__builtin_inff() ? 0.0f : __builtin_expf(m[h] - m_new);
      m[h] = m_new;
      const __m512 p = _mm512_maskz_mov_ps(valid, exp_f(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
      l[h] = l[h] * rescale[h] + _mm512_reduce_add_ps(p);
      const __m512 w = _mm512_mul_ps(p, vd);
      const float wmax = _mm512_reduce_max_ps(w);
      wd[h] = wmax / 127.0f;
      const float iw = wd[h] > 0.0f ? 1.0f / wd[h] : 0.0f;
      const __m512i wi = _mm512_cvtps_epi32(_mm512_mul_ps(w, _mm512_set1_ps(iw)));
      _mm_store_si128(reinterpret_cast<__m128i*>(w8[h]), _mm512_cvtepi32_epi8(wi));
      wsum128[h] = 128 * _mm512_reduce_add_epi32(wi);
    }
    uint32_t d0 = 0;
    for (; d0 + 64 <= hd; d0 += 64) tile_values<G, 4>(vt, hd, d0, w8, wsum128, rescale, wd, out);
    switch ((hd - d0) / 16) {
      case 1: tile_values<G, 1>(vt, hd, d0, w8, wsum128, rescale, wd, out); break;
      case 2: tile_values<G, 2>(vt, hd, d0, w8, wsum128, rescale, wd, out); break;
      case 3: tile_values<G, 3>(vt, hd, d0, w8, wsum128, rescale, wd, out); break;
      default: break;
    }
  }
  for (int h = 0; h < G; ++h) {
    const __m512 inv = _mm512_set1_ps(1.0f / l[h]);
    for (uint32_t d = 0; d < hd; d += 16) _mm512_storeu_ps(out[h] + d, _mm512_mul_ps(_mm512_loadu_ps(out[h] + d), inv));
    ref::kv_rotate(out[h], hd, ref::kv_rotation_block(hd));  // back from the cache's basis
  }
}

}  // namespace

void attention_i8kv(const PagedKv& kv, const AttentionArgs& a) {
  for_kv_head_runs(a.heads, kv.kv_heads, a.h0, a.h1,
                   [&](auto g, uint32_t kvh, uint32_t h) { attention_heads<decltype(g)::value>(kv, a, kvh, h); });
}

}  // namespace avx512vnni
}  // namespace tern
