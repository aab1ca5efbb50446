// Reference weight quantizers and dequantizers for the blob's storage types.
// The packer quantizes with these; the runtime dequantizes embedding rows with
// them. One implementation, so packer and runtime agree bit for bit.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {

// Symmetric int8, groups of 32: d = max|x| / 127 (as f16), q = round(x / d)
// clamped to [-127, 127]. n % 32 == 0. q[n], d[n/32].
void quantize_row_int8_g32(const float* x, uint32_t n, int8_t* q, uint16_t* d);

// Asymmetric int4, groups of 32: m = min(x), d = (max(x) - m) / 15 (both f16),
// q = round((x - m) / d) clamped to [0, 15]; nibble order as in blob_format.h.
// n % 32 == 0. q[n/2], dm[n/32][2].
void quantize_row_int4_g32(const float* x, uint32_t n, uint8_t* q, uint16_t* dm);

// Asymmetric int5, groups of 32: as int4 with 31 steps, q in [0, 31]; the
// low 4 bits to q[n/2] (int4 order), bit 4 to h[n/8] (bit i of byte b: value
// 8b + i of its group; see int5_high_bits). n % 32 == 0. dm[n/32][2].
void quantize_row_int5_g32(const float* x, uint32_t n, uint8_t* q, uint8_t* h, uint16_t* dm);

// kInt8G32 [rows, cols] (q[rows][cols], d[rows][cols/32]) in the kInt8G32R16
// layout (kernels/kernels.h): out_q[rows * cols], out_d[rows * cols/32].
// rows % 16 == 0, cols % 32 == 0. A permutation: same bytes, same values.
void interleave_rows_int8_g32(const int8_t* q, const uint16_t* d, uint32_t rows, uint32_t cols, int8_t* out_q,
                              uint16_t* out_d);

// Rows [r, r + n) of a kInt8G32R16 matrix back in the kInt8G32 layout:
// q[n][w.cols], d[n][w.cols/32] (r and n need not be multiples of 16).
void deinterleave_rows_int8_g32(const WeightMatrix& w, uint32_t r, uint32_t n, int8_t* q, uint16_t* d);

// The same for kInt4G32 (q[rows][cols/2], dm[rows][cols/32][2]) and
// kInt4G32R16 (out_dm per block and group: 16 d, then 16 m).
void interleave_rows_int4_g32(const uint8_t* q, const uint16_t* dm, uint32_t rows, uint32_t cols, uint8_t* out_q,
                              uint16_t* out_dm);
void deinterleave_rows_int4_g32(const WeightMatrix& w, uint32_t r, uint32_t n, uint8_t* q, uint16_t* dm);

// Row `row` of w as floats: out[w.cols].
void dequantize_row(const WeightMatrix& w, uint32_t row, float* out);

}  // namespace tern
