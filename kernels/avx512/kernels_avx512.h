// The AVX-512 VNNI table's matrix products (kernels/avx512/): zmm prefill of
// every integer weight type and zmm int8 decode (matmul_q8_avx512.cc); int4 /
// int5 decode is the AVX-VNNI code with the EVEX vpdpbusd on ymm
// (ymm/matmul_q4q8_avx512vnni_ymm.cc); attention on zmm
// (attention_f16kv_avx512.cc); every other slot is the AVX2 kernel.
//
// Compiled twice: natively (-mavx512f/bw/vl/vnni, namespace avx512vnni) and
// with TERN_AVX512_EMULATE on AVX2 flags (namespace avx512vnni_emulated, the
// "avx512vnni-emulated" test table; see simd_avx512.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {

// Kernels of other tables this one calls (each compiled with its own flags).
namespace avx2 {
void quantize_rows_q8(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out);
void matmul_f32_f32(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                    float* y, size_t y_stride);
void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void rmsnorm(const float* x, const float* weight, uint32_t n, float eps, float* out);
void rope(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim, const float* cos_sin,
          bool adjacent_pairs);
void softmax(float* x, uint32_t n);
void silu_mul(float* gate, const float* up, uint32_t n);
void gelu_mul(float* gate, const float* up, uint32_t n);
void attention(const PagedKv& kv, const AttentionArgs& args);
void kv_store(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos, const float* k,
              const float* v);
}  // namespace avx2

#if TERN_AVX512_EMULATE
#define TERN_AVX512_NS avx512vnni_emulated
#define TERN_AVX512_VNNI_YMM_NS avxvnni_emulated  // vpdpbusd computed in AVX2
#else
#define TERN_AVX512_NS avx512vnni
#define TERN_AVX512_VNNI_YMM_NS avx512vnni_ymm
#endif

namespace TERN_AVX512_VNNI_YMM_NS {
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
}  // namespace TERN_AVX512_VNNI_YMM_NS

namespace TERN_AVX512_NS {

// From this many tokens prefill repacks the weights into interleaved blocks;
// below, the AVX2 / AVX-VNNI tiles (nothing to amortize the repack over).
constexpr uint32_t kPrefillMinTokens = 5;

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void attention(const PagedKv& kv, const AttentionArgs& args);  // attention_f16kv_avx512.cc

}  // namespace TERN_AVX512_NS
}  // namespace tern
