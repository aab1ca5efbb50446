// Scalar dequantizers of the GGUF block types (kernels/gguf_blocks.h). Every
// product and sum is one float32 operation in the order the header states;
// CMake compiles this file with -ffp-contract=off so no compiler fuses them.
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/gguf_blocks.h"

namespace tern::gguf {

namespace {

template <typename Block>
Block load_block(const uint8_t* src, size_t i) {
  Block b;
  std::memcpy(&b, src + i * sizeof(Block), sizeof(Block));
  return b;
}

uint32_t load_u32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

// The 5-bit quant of weight j (0..31) of a Q5_0 / Q5_1 block.
inline uint32_t q5(const uint8_t* qs, uint32_t qh, uint32_t j) {
  const uint32_t low = j < 16 ? (qs[j] & 0x0fu) : (qs[j - 16] >> 4);
  return low | (((qh >> j) & 1u) << 4);
}

}  // namespace

void dequantize_row_q4_0(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kLegacyBlock) {
    const BlockQ4_0 b = load_block<BlockQ4_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (uint32_t j = 0; j < 16; ++j) {
      out[j] = d * float(int(b.qs[j] & 0x0f) - 8);
      out[j + 16] = d * float(int(b.qs[j] >> 4) - 8);
    }
  }
}

void dequantize_row_q4_1(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kLegacyBlock) {
    const BlockQ4_1 b = load_block<BlockQ4_1>(src, i);
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    for (uint32_t j = 0; j < 16; ++j) {
      out[j] = d * float(b.qs[j] & 0x0f) + m;
      out[j + 16] = d * float(b.qs[j] >> 4) + m;
    }
  }
}

void dequantize_row_q5_0(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kLegacyBlock) {
    const BlockQ5_0 b = load_block<BlockQ5_0>(src, i);
    const float d = f16_to_f32(b.d);
    const uint32_t qh = load_u32(b.qh);
    for (uint32_t j = 0; j < 32; ++j) out[j] = d * float(int(q5(b.qs, qh, j)) - 16);
  }
}

void dequantize_row_q5_1(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kLegacyBlock) {
    const BlockQ5_1 b = load_block<BlockQ5_1>(src, i);
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    const uint32_t qh = load_u32(b.qh);
    for (uint32_t j = 0; j < 32; ++j) out[j] = d * float(q5(b.qs, qh, j)) + m;
  }
}

void dequantize_row_q8_0(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kLegacyBlock) {
    const BlockQ8_0 b = load_block<BlockQ8_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (uint32_t j = 0; j < 32; ++j) out[j] = d * float(b.qs[j]);
  }
}

// One Q4_K / Q5_K block: 8 sub-blocks of 32 with 6-bit scales and mins;
// qh (Q5_K only, else nullptr) holds the fifth bit of weight l of sub-block
// `sub` at bit `sub` of qh[l].
static void dequantize_k4_block(uint16_t d16, uint16_t dmin16, const uint8_t* scales, const uint8_t* qs, const uint8_t* qh,
                                float* out) {
  const float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
  for (uint32_t sub = 0; sub < 8; ++sub, out += 32) {
    uint8_t sc, m;
    scale_min_k4(sub, scales, &sc, &m);
    const float ds = d * float(sc), dm = dmin * float(m);
    const uint8_t* q = qs + 32 * (sub / 2);
    const unsigned shift = (sub & 1) * 4;
    for (uint32_t l = 0; l < 32; ++l) {
      const uint32_t high = qh ? ((qh[l] >> sub) & 1u) << 4 : 0;
      out[l] = ds * float(((q[l] >> shift) & 0x0fu) | high) - dm;
    }
  }
}

void dequantize_row_q4_K(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kSuperBlock) {
    const BlockQ4_K b = load_block<BlockQ4_K>(src, i);
    dequantize_k4_block(b.d, b.dmin, b.scales, b.qs, nullptr, out);
  }
}

void dequantize_row_q5_K(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i, out += kSuperBlock) {
    const BlockQ5_K b = load_block<BlockQ5_K>(src, i);
    dequantize_k4_block(b.d, b.dmin, b.scales, b.qs, b.qh, out);
  }
}

void dequantize_row_q6_K(const uint8_t* src, size_t n_blocks, float* out) {
  for (size_t i = 0; i < n_blocks; ++i) {
    const BlockQ6_K b = load_block<BlockQ6_K>(src, i);
    const float d = f16_to_f32(b.d);
    // Two halves of 128 weights; in half h, weight 32k + l (k = 0..3) takes
    // the low (k = 0, 1) or high (k = 2, 3) nibble of ql[64h + 32(k & 1) + l]
    // and bits 2k, 2k+1 of qh[32h + l]; its scale is scales[8h + 2k + l/16].
    for (uint32_t h = 0; h < 2; ++h, out += 128) {
      const uint8_t* ql = b.ql + 64 * h;
      const uint8_t* qh = b.qh + 32 * h;
      for (uint32_t k = 0; k < 4; ++k) {
        for (uint32_t l = 0; l < 32; ++l) {
          const uint32_t low = (ql[32 * (k & 1) + l] >> (k < 2 ? 0 : 4)) & 0x0fu;
          const uint32_t high = (qh[l] >> (2 * k)) & 3u;
          const float ds = d * float(b.scales[8 * h + 2 * k + l / 16]);
          out[32 * k + l] = ds * float(int(low | high << 4) - 32);
        }
      }
    }
  }
}

bool dequantize_gguf(uint32_t type, const uint8_t* src, uint64_t n_elems, float* out) {
  switch (GgmlType(type)) {
    case GgmlType::kF32:
      std::memcpy(out, src, n_elems * 4);  // little-endian hosts only (the blob format's rule too)
      return true;
    case GgmlType::kF16:
      for (uint64_t j = 0; j < n_elems; ++j) out[j] = f16_to_f32(uint16_t(src[2 * j] | src[2 * j + 1] << 8));
      return true;
    case GgmlType::kBF16:
      for (uint64_t j = 0; j < n_elems; ++j) {
        const uint32_t bits = uint32_t(src[2 * j] | src[2 * j + 1] << 8) << 16;
        std::memcpy(&out[j], &bits, 4);
      }
      return true;
    case GgmlType::kQ4_0: dequantize_row_q4_0(src, n_elems / kLegacyBlock, out); return true;
    case GgmlType::kQ4_1: dequantize_row_q4_1(src, n_elems / kLegacyBlock, out); return true;
    case GgmlType::kQ5_0: dequantize_row_q5_0(src, n_elems / kLegacyBlock, out); return true;
    case GgmlType::kQ5_1: dequantize_row_q5_1(src, n_elems / kLegacyBlock, out); return true;
    case GgmlType::kQ8_0: dequantize_row_q8_0(src, n_elems / kLegacyBlock, out); return true;
    case GgmlType::kQ4_K: dequantize_row_q4_K(src, n_elems / kSuperBlock, out); return true;
    case GgmlType::kQ5_K: dequantize_row_q5_K(src, n_elems / kSuperBlock, out); return true;
    case GgmlType::kQ6_K: dequantize_row_q6_K(src, n_elems / kSuperBlock, out); return true;
  }
  return false;
}

}  // namespace tern::gguf
