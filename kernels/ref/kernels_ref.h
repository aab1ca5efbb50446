// The scalar reference kernels, one function per KernelTable slot. They are
// the specification every SIMD variant is tested against; SIMD tables may
// also point at them directly for ops where SIMD does not pay.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {
namespace ref {

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
void matmul_i8g32r16_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                         uint32_t r1, float* y, size_t y_stride);
void matmul_u4g32r16_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
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

// int8 KV (KernelTable::attention_i8kv, kv_store_i8; layout in kernels.h).
void attention_i8kv(const PagedKv& kv, const AttentionArgs& args);
void kv_store_i8(const PagedKv& kv, uint8_t* k_pool, uint8_t* v_pool, uint32_t pos, const float* k,
                 const float* v);

// (static inline, as kernels/neon/neon_util.h explains: files compiled for
// AVX-512 or dotprod include this, and a mergeable `inline` copy built with
// their flags could be the one the linker keeps for the scalar callers.)
// x rounded to the nearest integer, ties to even (as cvtps2dq and vcvtnq do
// in the default rounding mode), for |x| < 2^22.
static inline float round_nearest_even(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return x >= 0.0f ? (x + magic) - magic : -((-x + magic) - magic);
}

// Symmetric int8 quantization of n floats: d = absmax / 127, q = round(x / d)
// computed as round(x * (1 / d)), q in [-127, 127]; returns d (0 for an
// all-zero row, whose q are 0). Every variant quantizes with these exact
// float operations, so the int8 values are bit-identical across variants.
static inline float quantize_i8_row(const float* x, uint32_t n, int8_t* q) {
  float amax = 0.0f;
  for (uint32_t i = 0; i < n; ++i) {
    const float a = x[i] < 0.0f ? -x[i] : x[i];
    amax = a > amax ? a : amax;
  }
  const float d = amax / 127.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  for (uint32_t i = 0; i < n; ++i) {
    float v = x[i] * id;  // |v| <= 127 (+ rounding) for finite x; the clamp only keeps a NaN or inf defined
    v = v > 127.0f ? 127.0f : v;
    v = v < -127.0f ? -127.0f : v;
    q[i] = v == v ? int8_t(int32_t(round_nearest_even(v))) : int8_t(0);
  }
  return d;
}

// The int8 KV cache holds each head's K and V rotated (kernels.h): x' = H x
// with H the normalized Walsh-Hadamard matrix of order b (entries +-1 /
// sqrt(b)), b = kv_rotation_block(head_dim) the largest power of two that
// divides head_dim, applied to each run of b values (block diagonal when b <
// head_dim). H is orthonormal and symmetric, so it is its own inverse and
// keeps dot products: q.k = (H q).(H k) and sum p v = H (sum p H v). Why: K
// has a few outlier channels (SmolLM2's and Gemma's do) that set the absmax of
// a per-token scale and leave the other channels a few int8 steps; H spreads
// every channel over all b, so the step shrinks to the vector's RMS scale.
// Measured on SmolLM2 int4 at context 2,048 (bench/results): mean KLD against
// f16 KV 0.00119 -> 0.00038, same top-1 97.9% -> 98.9%.
static inline uint32_t kv_rotation_block(uint32_t head_dim) { return head_dim & (0u - head_dim); }

// x [n] (n a multiple of b, b a power of two) <- H x per run of b values:
// log2(b) butterfly passes (a, c) -> (a + c, a - c), then the 1 / sqrt(b)
// scale. Every variant calls this one function with the same float ops (no
// products to fuse), so the rotated values are bit-identical across variants.
static inline void kv_rotate(float* x, uint32_t n, uint32_t b) {
  const float norm = 1.0f / __builtin_sqrtf(float(b));
  for (uint32_t o = 0; o < n; o += b) {
    float* v = x + o;
    for (uint32_t h = 1; h < b; h *= 2) {
      for (uint32_t i = 0; i < b; i += 2 * h) {
        for (uint32_t j = i; j < i + h; ++j) {
          const float a = v[j], c = v[j + h];
          v[j] = a + c;
          v[j + h] = a - c;
        }
      }
    }
    for (uint32_t i = 0; i < b; ++i) v[i] *= norm;
  }
}

// The query of one head for int8 KV attention: rotated into the cache's basis
// (kv_rotate) in `rot`, then quantized to q (quantize_i8_row); returns its scale.
static inline float quantize_i8_query(const float* x, uint32_t head_dim, float* rot, int8_t* q) {
  for (uint32_t i = 0; i < head_dim; ++i) rot[i] = x[i];
  kv_rotate(rot, head_dim, kv_rotation_block(head_dim));
  return quantize_i8_row(rot, head_dim, q);
}

// Offset (in f16 elements) of token `t`'s kv head `kvh` inside a K or V pool:
// block = block_table[t / block_tokens], row t % block_tokens of that block.
inline size_t kv_offset(const PagedKv& kv, uint32_t t, uint32_t kvh) {
  const size_t block = kv.block_table[t / kv.block_tokens];
  const size_t row = t % kv.block_tokens;
  return block * kv.block_stride + (row * kv.kv_heads + kvh) * kv.head_dim;
}

}  // namespace ref
}  // namespace tern
