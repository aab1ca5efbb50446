// AVX2 (+FMA +F16C) kernels and the small vector helpers they share. Only
// files under kernels/avx2/ (compiled with -mavx2 -mfma -mf16c) include this.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {
namespace avx2 {

void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out);
// The matrix products by weight type (KernelTable::matmul).
void matmul_f32_f32(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                    uint32_t r1, float* y, size_t y_stride);
void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
// Prefill of kInt4G32 / kInt5G32 weights by panels unpacked once to int8 and
// the int4 prefill tile (prefill_unpacked_avx2.cc); the AVX2 and AVX-VNNI
// products call it from kUnpackMinTokens tokens on (below, the fused tiles:
// with one block of 4 tokens there is nothing to amortize the unpack over).
constexpr uint32_t kUnpackMinTokens = 5;
void prefill_u4g32_unpacked(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride);
void prefill_u5g32_unpacked(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride);
void rmsnorm(const float* x, const float* weight, uint32_t n, float eps, float* out);
void rope(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim, const float* cos_sin,
          bool adjacent_pairs);
void softmax(float* x, uint32_t n);
void silu_mul(float* gate, const float* up, uint32_t n);
void gelu_mul(float* gate, const float* up, uint32_t n);
void attention(const PagedKv& kv, const AttentionArgs& args);
void kv_store(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos, const float* k,
              const float* v);
void attention_i8kv(const PagedKv& kv, const AttentionArgs& args);  // attention_i8kv_avx2.cc

// Sum of the 8 lanes.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) for x in float range, Cephes-style: x = n ln2 + r, |r| <= ln2/2,
// degree-6 polynomial for e^r, times 2^n. Inputs are clamped to
// [-87.3, 88.7] (outputs near FLT_MIN / FLT_MAX instead of 0 / inf).
// Max relative error ~2e-7 over the clamped range (checked in
// tests/kernels/kernel_variants_test.cc at 1e-6).
inline __m256 exp_ps(__m256 x) {
  x = _mm256_min_ps(x, _mm256_set1_ps(88.7f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n*ln2 in two steps (ln2 split hi/lo) to keep r accurate.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n via the exponent field; n in [-126, 128] after the clamp, so build
  // it as 2^(n/2) * 2^(n - n/2) to stay finite at the ends.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// 8 f16 -> 8 f32 (exact).
inline __m256 load_f16x8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace avx2
}  // namespace tern
