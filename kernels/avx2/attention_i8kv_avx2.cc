// AVX2 attention over the paged int8 KV cache (layout and algorithm:
// kernels/kernels.h, kernels/ref/attention_i8kv_ref.cc). The G (<= 4) query
// heads that read one KV head are done together, each tile loaded once:
//   scores: a 32-byte load holds 4 dims of 8 positions; the stored q + 128 is
//           turned back to int8 (xor 0x80), given the sign of the query
//           (vpsignb) and multiplied with |q| (vpmaddubsw: |q| <= 127, so a
//           pair of products never saturates int16), then vpmaddwd with ones
//           sums the pairs into one int32 lane per position;
//   values: a 32-byte load holds 8 dims of 4 positions; vpmaddubsw of the
//           tile's 7-bit weights (unsigned) with the int8 values, vpmaddwd
//           with ones: one int32 per dimension for the 4 positions.
// Integer sums are exact; floats differ from the reference in order and exp.
// Also the int8 attention of the avx512vnni-emulated table (tests only).
#include "kernels/kv_head_runs.h"
#include "kernels/avx2/kernels_avx2.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace avx2 {

namespace {

inline int32_t load_i32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

template <int G>
void attention_heads(const PagedKv& kv, const AttentionArgs& a, uint32_t kvh, uint32_t hb) {
  const uint32_t hd = kv.head_dim, bt = kv.block_tokens;
  alignas(32) int8_t q8[G][1024];  // head_dim <= 1024 (blob limits)
  alignas(32) int8_t qa[G][1024];  // |q8|
  float c[G], m[G], l[G];
  float* out[G];
  float qrot[1024];  // one head's query in the cache's rotated basis (ref::kv_rotate)
  for (int h = 0; h < G; ++h) {
    c[h] = ref::quantize_i8_query(a.q + size_t(hb + h) * hd, hd, qrot, q8[h]) * a.scale;
    for (uint32_t d = 0; d < hd; ++d) qa[h][d] = int8_t(q8[h][d] < 0 ? -q8[h][d] : q8[h][d]);
    out[h] = a.out + size_t(hb + h) * hd;
    for (uint32_t d = 0; d < hd; ++d) out[h][d] = 0.0f;
    m[h] = -__builtin_inff();
    l[h] = 0.0f;
  }
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_inff());
  const size_t tile_bytes = size_t(kKvTile) * hd;
  const size_t scale_plane = size_t(bt) * kv.kv_heads * hd;
  for (uint32_t t0 = a.first - a.first % kKvTile; t0 < a.n_ctx; t0 += kKvTile) {
    const size_t block = size_t(kv.block_table[t0 / bt]) * kv.block_stride;
    const uint32_t r0 = t0 % bt;
    const size_t tile_off = (size_t(kvh) * (bt / kKvTile) + r0 / kKvTile) * tile_bytes;
    const uint8_t* kt = kv.k_i8 + block + tile_off;
    const uint8_t* vt = kv.v_i8 + block + tile_off;
    const size_t scale_off = scale_plane + (size_t(kvh) * bt + r0) * sizeof(float);
    // The K, V and scales two tiles ahead (as the AVX-512 kernel does, where
    // it measured 1.1-1.2x at context 4096): the next block can be anywhere.
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
    const int32_t lo = int32_t((a.first > t0 ? a.first : t0) - t0);
    const int32_t hi = int32_t((a.n_ctx < t0 + kKvTile ? a.n_ctx : t0 + kKvTile) - t0);
    // Lanes lo <= i < hi of each half (positions i and 8 + i).
    __m256 valid[2];
    for (int half = 0; half < 2; ++half) {
      const __m256i i = _mm256_add_epi32(idx, _mm256_set1_epi32(8 * half));
      const __m256i ge = _mm256_cmpgt_epi32(i, _mm256_set1_epi32(lo - 1));
      const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), i);
      valid[half] = _mm256_castsi256_ps(_mm256_and_si256(ge, lt));
    }

    __m256i acc[G][2];
    for (int h = 0; h < G; ++h) acc[h][0] = acc[h][1] = _mm256_setzero_si256();
    for (uint32_t d = 0; d < hd; d += 4) {
      const __m256i k0 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + size_t(d) * kKvTile)), flip);
      const __m256i k1 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + size_t(d) * kKvTile + 32)), flip);
      for (int h = 0; h < G; ++h) {
        const __m256i qs = _mm256_set1_epi32(load_i32(q8[h] + d));
        const __m256i qu = _mm256_set1_epi32(load_i32(qa[h] + d));
        acc[h][0] = _mm256_add_epi32(acc[h][0], _mm256_madd_epi16(_mm256_maddubs_epi16(qu, _mm256_sign_epi8(k0, qs)), ones));
        acc[h][1] = _mm256_add_epi32(acc[h][1], _mm256_madd_epi16(_mm256_maddubs_epi16(qu, _mm256_sign_epi8(k1, qs)), ones));
      }
    }
    const float* kd = reinterpret_cast<const float*>(kv.k_i8 + block + scale_off);
    const float* vd = reinterpret_cast<const float*>(kv.v_i8 + block + scale_off);
    const __m256 kd0 = _mm256_loadu_ps(kd), kd1 = _mm256_loadu_ps(kd + 8);
    const __m256 vd0 = _mm256_and_ps(_mm256_loadu_ps(vd), valid[0]);
    const __m256 vd1 = _mm256_and_ps(_mm256_loadu_ps(vd + 8), valid[1]);
    alignas(16) uint8_t w8[G][kKvTile];
    float rescale[G], wd[G];
    for (int h = 0; h < G; ++h) {
      const __m256 ch = _mm256_set1_ps(c[h]);
      __m256 s0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[h][0]), ch), kd0);
      __m256 s1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[h][1]), ch), kd1);
      s0 = _mm256_blendv_ps(neg_inf, s0, valid[0]);
      s1 = _mm256_blendv_ps(neg_inf, s1, valid[1]);
      const float mx = hmax(_mm256_max_ps(s0, s1));
      const float m_new = mx > m[h] ? mx : m[h];
      rescale[h] = m[h] == -__builtin_inff() ? 0.0f : __builtin_expf(m[h] - m_new);
      m[h] = m_new;
      const __m256 mv = _mm256_set1_ps(m_new);
      const __m256 p0 = _mm256_and_ps(exp_ps(_mm256_sub_ps(s0, mv)), valid[0]);
      const __m256 p1 = _mm256_and_ps(exp_ps(_mm256_sub_ps(s1, mv)), valid[1]);
      l[h] = l[h] * rescale[h] + hsum(_mm256_add_ps(p0, p1));
      const __m256 w0 = _mm256_mul_ps(p0, vd0), w1 = _mm256_mul_ps(p1, vd1);
      wd[h] = hmax(_mm256_max_ps(w0, w1)) / 127.0f;
      const __m256 iw = _mm256_set1_ps(wd[h] > 0.0f ? 1.0f / wd[h] : 0.0f);
      const __m256i wi0 = _mm256_cvtps_epi32(_mm256_mul_ps(w0, iw));
      const __m256i wi1 = _mm256_cvtps_epi32(_mm256_mul_ps(w1, iw));
      const __m128i h0 = _mm_packs_epi32(_mm256_castsi256_si128(wi0), _mm256_extracti128_si256(wi0, 1));
      const __m128i h1 = _mm_packs_epi32(_mm256_castsi256_si128(wi1), _mm256_extracti128_si256(wi1, 1));
      _mm_store_si128(reinterpret_cast<__m128i*>(w8[h]), _mm_packus_epi16(h0, h1));
    }
    for (uint32_t d0 = 0; d0 < hd; d0 += 16) {
      __m256i va[G][2];
      for (int h = 0; h < G; ++h) va[h][0] = va[h][1] = _mm256_setzero_si256();
      for (uint32_t t4 = 0; t4 < 4; ++t4) {
        const uint8_t* vr = vt + size_t(t4) * hd * 4 + size_t(d0) * 4;
        const __m256i v0 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vr)), flip);
        const __m256i v1 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vr + 32)), flip);
        for (int h = 0; h < G; ++h) {
          const __m256i wb = _mm256_set1_epi32(load_i32(w8[h] + 4 * t4));
          va[h][0] = _mm256_add_epi32(va[h][0], _mm256_madd_epi16(_mm256_maddubs_epi16(wb, v0), ones));
          va[h][1] = _mm256_add_epi32(va[h][1], _mm256_madd_epi16(_mm256_maddubs_epi16(wb, v1), ones));
        }
      }
      for (int h = 0; h < G; ++h) {
        const __m256 r = _mm256_set1_ps(rescale[h]), w = _mm256_set1_ps(wd[h]);
        for (int j = 0; j < 2; ++j) {
          float* o = out[h] + d0 + 8 * j;
          _mm256_storeu_ps(o, _mm256_fmadd_ps(w, _mm256_cvtepi32_ps(va[h][j]), _mm256_mul_ps(_mm256_loadu_ps(o), r)));
        }
      }
    }
  }
  for (int h = 0; h < G; ++h) {
    const __m256 inv = _mm256_set1_ps(1.0f / l[h]);
    for (uint32_t d = 0; d < hd; d += 8) _mm256_storeu_ps(out[h] + d, _mm256_mul_ps(_mm256_loadu_ps(out[h] + d), inv));
    ref::kv_rotate(out[h], hd, ref::kv_rotation_block(hd));  // back from the cache's basis
  }
}

}  // namespace

void attention_i8kv(const PagedKv& kv, const AttentionArgs& a) {
  for_kv_head_runs(a.heads, kv.kv_heads, a.h0, a.h1,
                   [&](auto g, uint32_t kvh, uint32_t h) { attention_heads<decltype(g)::value>(kv, a, kvh, h); });
}

}  // namespace avx2
}  // namespace tern
