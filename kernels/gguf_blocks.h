// The block layouts of the GGUF (ggml) weight types tern reads, with their
// scalar dequantizers: the specification every faster path (the packer's
// conversion, a kernel that reads these blocks directly) must reproduce.
//
// Each block covers a fixed number of consecutive weights of one row (32 for
// the "legacy" types, 256 for the k-quants, kSuperBlock). Fields are
// little-endian; a block is copied out of the (possibly unaligned) file bytes
// with memcpy before it is read. The dequantized values are bit-identical to
// the `gguf` Python package's dequantization (checked on every tensor of the
// Gemma 3 270M Q4_K_M file by tests/kernels/gguf_dequant_test.cc): each
// formula below is evaluated in float32 in the order written, one rounding
// per operation (this file's .cc is compiled with -ffp-contract=off, so no
// multiply-add is fused).
#pragma once
#include <cstddef>
#include <cstdint>

namespace tern::gguf {

constexpr uint32_t kLegacyBlock = 32;   // weights per block of Q4_0 .. Q8_0
constexpr uint32_t kSuperBlock = 256;   // weights per block of the k-quants (QK_K)

// w = d * (q - 8), q = 4 bits: low nibbles are weights 0..15, high 16..31.
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
// w = d * q + m.
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };
// w = d * (q - 16), q = 5 bits: the low 4 as in Q4_0, bit 4 of weight j is
// bit j of qh (read as a little-endian u32).
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
// w = d * q + m, q as in Q5_0.
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
// w = d * q, q int8.
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };

// Q4_K: 8 sub-blocks of 32 weights, each with a 6-bit scale and a 6-bit min
// packed in `scales` (see scale_min_k4); w = (d * sc) * q - (dmin * m).
// Sub-block 2c is the low nibbles of qs[32c .. 32c+32), 2c+1 the high ones.
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
// Q5_K: Q4_K plus a fifth bit: bit i of qh[l] is bit 4 of weight l of sub-block i.
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
// Q6_K: 16 sub-blocks of 16 weights with int8 scales; w = (d * sc) * (q - 32),
// q = 6 bits: low 4 in ql, high 2 in qh (see dequantize_row_q6_K).
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };

// The layout is the file format: a compiler that pads these would misread it.
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block:
// j < 4: the low 6 bits of scales[j] and scales[j + 4]; j >= 4: a low nibble
// of scales[j + 4] plus the top 2 bits of scales[j - 4] (scale), a high
// nibble of scales[j + 4] plus the top 2 bits of scales[j] (min).
inline void scale_min_k4(uint32_t j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = uint8_t((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *m = uint8_t((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// GGML type ids as stored in a GGUF tensor info (the subset tern reads).
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};

// Dequantize n_elems consecutive weights of type `type` starting at a block
// boundary (n_elems a multiple of the type's block) into out[n_elems]. False
// for a type this file does not know (nothing written).
bool dequantize_gguf(uint32_t type, const uint8_t* src, uint64_t n_elems, float* out);

// Dequantize n_blocks consecutive blocks at `src` (file bytes, any alignment)
// into out[n_blocks * block weights].
void dequantize_row_q4_0(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q4_1(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q5_0(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q5_1(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q8_0(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q4_K(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q5_K(const uint8_t* src, size_t n_blocks, float* out);
void dequantize_row_q6_K(const uint8_t* src, size_t n_blocks, float* out);

}  // namespace tern::gguf
