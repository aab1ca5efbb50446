// The AVX-512 VNNI table's matrix products (kernels/avx512/): zmm prefill of
// every integer weight type (matmul_q8_avx512.cc), zmm decode and short
// prefill of every integer type (matmul_q8_small_avx512.cc), both in one
// float order, so the products are batch-invariant (see the small-n file);
// attention on zmm (attention_f16kv_avx512.cc); every other slot is the AVX2
// kernel.
//
// Compiled twice: natively (-mavx512f/bw/vl/vnni, namespace avx512vnni) and
// with TERN_AVX512_EMULATE on AVX2 flags (namespace avx512vnni_emulated, the
// "avx512vnni-emulated" test table; see simd_avx512.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/avx2/kernels_avx2.h"  // the AVX2 kernels this table reuses
#include "kernels/kernels.h"

// (kernels_avx2.h's inline helpers are never called from the AVX-512 files:
// compiled there with AVX-512 enabled, a merged copy could run on CPUs
// without it. tests/CMakeLists.txt checks that those files emit none.)

namespace tern {

#if TERN_AVX512_EMULATE
#define TERN_AVX512_NS avx512vnni_emulated
#else
#define TERN_AVX512_NS avx512vnni
#endif

namespace TERN_AVX512_NS {

// From this many tokens prefill repacks the weights into interleaved blocks;
// below, the small-n kernels (too little to amortize the repack over: at 8
// tokens, a batched decode step of 8 sequences, the repack path took 5x one
// row's step, the small kernels' two passes ~3x).
constexpr uint32_t kPrefillMinTokens = 9;

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
// kInt8G32R16 and kInt4G32R16, every number of tokens
// (matmul_q8_r16_avx512.cc): the same bits as matmul_i8g32_q8r /
// matmul_u4g32_q8r on the same values in the row layout.
void matmul_i8g32r16_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride);
void matmul_u4g32r16_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride);
void attention(const PagedKv& kv, const AttentionArgs& args);  // attention_f16kv_avx512.cc

// 1 .. kPrefillMinTokens - 1 tokens (matmul_q8_small_avx512.cc): the same
// outputs, bit for bit, as the prefill would give each of these tokens.
void small_matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride);
void small_matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride);
void small_matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                            uint32_t r1, float* y, size_t y_stride);

}  // namespace TERN_AVX512_NS
#if !TERN_AVX512_EMULATE
namespace avx512vnni {
void attention_i8kv(const PagedKv& kv, const AttentionArgs& args);  // attention_i8kv_avx512.cc (VNNI)
}  // namespace avx512vnni
// The int8 KV attention of a table (the emulated table, compiled for AVX2,
// takes the AVX2 kernel: vpdpbusd has no cheap emulation worth testing twice).
#define TERN_AVX512_ATTENTION_I8KV avx512vnni::attention_i8kv
#else
#define TERN_AVX512_ATTENTION_I8KV avx2::attention_i8kv
#endif
}  // namespace tern
