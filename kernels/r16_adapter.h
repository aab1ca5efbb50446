// The kInt8G32R16 and kInt4G32R16 products for kernel variants without a native one (AVX2,
// AVX-VNNI, NEON): a few rows at a time are de-interleaved into the kInt8G32
// (kInt4G32) layout in a stack buffer and multiplied by the variant's own
// i8g32 (u4g32) product.
// Same integer sums, and the row kernel's float order, so the outputs equal
// that variant's on a row-layout blob bit for bit; the copy costs about one
// byte moved per weight, so a blob packed with --layout r16 runs everywhere
// but is fastest where the interleave is read natively (scalar, avx512vnni,
// amx; see kernels/avx512/matmul_q8_r16_avx512.cc). No allocation.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {

// y rows [r0, r1) of the kInt8G32R16 (kInt4G32R16) matrix w through
// `rows_kernel`, the variant's i8g32 (u4g32) product (kernels.h's MatmulFn
// contract).
void matmul_i8g32r16_via_rows(MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
                              uint32_t r0, uint32_t r1, float* y, size_t y_stride);
void matmul_u4g32r16_via_rows(MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
                              uint32_t r0, uint32_t r1, float* y, size_t y_stride);

// The table entry: matmul_r16_via<avx2::matmul_i8g32_q8r> (only forwards;
// the adapter itself is compiled for the baseline ISA). Internal linkage, as
// every function of an ISA-flagged object must have (no weak copy the linker
// could merge into code for another CPU: tests/CMakeLists.txt checks).
namespace {
template <MatmulFn RowsKernel>
void matmul_r16_via(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                    float* y, size_t y_stride) {
  matmul_i8g32r16_via_rows(RowsKernel, w, x, n_tokens, r0, r1, y, y_stride);
}
template <MatmulFn RowsKernel>
void matmul_u4r16_via(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0, uint32_t r1,
                      float* y, size_t y_stride) {
  matmul_u4g32r16_via_rows(RowsKernel, w, x, n_tokens, r0, r1, y, y_stride);
}
}  // namespace

}  // namespace tern
