// The AMX table's matrix products (kernels/amx/): prefill of every integer
// weight type through tdpbssd tiles (matmul_q8_amx.cc); decode, short
// prompts and every other slot are the AVX-512 VNNI kernels, which finish
// each output in the tiles' float order (batch-invariant table).
//
// Compiled twice: natively (-mavx512f/bw/vl/vnni -mamx-tile -mamx-int8,
// namespace amx) and with TERN_AMX_EMULATE + TERN_AVX512_EMULATE on AVX2
// flags (namespace amx_emulated, the "amx-emulated" test table over the
// "avx512vnni-emulated" kernels; see amx_tiles.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/avx512/kernels_avx512.h"  // the AVX-512 VNNI kernels this table reuses
#include "kernels/kernels.h"

namespace tern {

#if TERN_AMX_EMULATE
#define TERN_AMX_NS amx_emulated
#else
#define TERN_AMX_NS amx
#endif

namespace TERN_AMX_NS {

// From this many tokens (one full tile) the tiles beat the AVX-512 prefill;
// below, the AVX-512 VNNI kernels (decode included).
constexpr uint32_t kAmxMinTokens = 16;
// For kInt8G32R16 blobs the AVX-512 kernel reads the interleave without a
// repack, so it holds out longer: one core, int8 [1536, 576] and [576, 1536],
// GOP/s AVX-512 vs tiles: 16 tokens 261 vs 244, 64 tokens 267-291 vs
// 303-313, 512 tokens 253-272 vs 290-317.
constexpr uint32_t kAmxMinTokensR16 = 32;

void matmul_i8g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_i8g32r16_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride);
void matmul_u4g32r16_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                         float* y, size_t y_stride);
void matmul_u4g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);
void matmul_u5g32_q8r(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride);

}  // namespace TERN_AMX_NS
}  // namespace tern
