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

// Offset (in f16 elements) of token `t`'s kv head `kvh` inside a K or V pool:
// block = block_table[t / block_tokens], row t % block_tokens of that block.
inline size_t kv_offset(const PagedKv& kv, uint32_t t, uint32_t kvh) {
  const size_t block = kv.block_table[t / kv.block_tokens];
  const size_t row = t % kv.block_tokens;
  return block * kv.block_stride + (row * kv.kv_heads + kvh) * kv.head_dim;
}

}  // namespace ref
}  // namespace tern
