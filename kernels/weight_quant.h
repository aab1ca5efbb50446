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

// Row `row` of w as floats: out[w.cols].
void dequantize_row(const WeightMatrix& w, uint32_t row, float* out);

}  // namespace tern
