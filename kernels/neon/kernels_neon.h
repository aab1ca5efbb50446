// The NEON kernels (kernels/neon), one function per KernelTable slot they
// improve on; the tables in kernel_table_neon*.cc point the other slots at the
// scalar reference (kernels/ref). `neon` is ARMv8.0 Advanced SIMD (and ARMv7
// NEON); `neondot` needs the ARMv8.2 dot product (sdot), `neoni8mm` also the
// ARMv8.6 int8 matrix multiply (smmla).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {

namespace neon {
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
void rmsnorm(const float* x, const float* weight, uint32_t n, float eps, float* out);
void rope(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim, const float* cos_sin,
          bool adjacent_pairs);
// AArch64 only: f16 conversions, vector divide and rounding are not in ARMv7 NEON.
#if defined(__aarch64__)
void softmax(float* x, uint32_t n);
void silu_mul(float* gate, const float* up, uint32_t n);
void gelu_mul(float* gate, const float* up, uint32_t n);
void attention(const PagedKv& kv, const AttentionArgs& args);
void kv_store(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos, const float* k,
              const float* v);
void attention_i8kv(const PagedKv& kv, const AttentionArgs& args);  // attention_i8kv_neon.cc
#endif
}  // namespace neon

namespace neondot {
void attention_i8kv(const PagedKv& kv, const AttentionArgs& args);  // attention_i8kv_neondot.cc
void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
}  // namespace neondot

// ARMv8.6 i8mm (smmla) prefill, decode by neondot (matmul_q8_neoni8mm.cc);
// neoni8mm_emulated: the same source on the plain C++ intrinsics of
// kernels/neon/emulated/neon_emulation.h, for tests on any host.
namespace neoni8mm {
void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
}  // namespace neoni8mm
namespace neoni8mm_emulated {
void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                      uint32_t r1, float* y, size_t y_stride);
}  // namespace neoni8mm_emulated

}  // namespace tern
