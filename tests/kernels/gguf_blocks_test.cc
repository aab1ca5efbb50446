// The GGUF block layouts and dequantizers (kernels/gguf_blocks.h), bit
// packing: blocks built here from chosen quants and scales (an encoder
// written from the format description, not from the decoder) decode to
// exactly scale * quant - min, for every type. The real files are checked in
// tests/model/gguf_dequant_test.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/blocks.h"
#include "kernels/gguf_blocks.h"
#include "tests/support/sha256.h"

namespace tern {
namespace {

using namespace gguf;

template <typename Block>
std::vector<uint8_t> bytes_of(const std::vector<Block>& blocks) {
  std::vector<uint8_t> out(blocks.size() * sizeof(Block));
  std::memcpy(out.data(), blocks.data(), out.size());
  return out;
}

// Halves with exact float values, so the expected products are exact too.
uint16_t h(float f) { return f32_to_f16(f); }

// The 12-byte scales field of a Q4_K / Q5_K block from 8 six-bit scales and mins.
void pack_scales_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST(GgufDequant, ScaleMinK4RoundTripsEverySixBitValue) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 1000; ++trial) {
    uint8_t sc[8], m[8], packed[12];
    for (int j = 0; j < 8; ++j) { sc[j] = uint8_t(rng() & 63); m[j] = uint8_t(rng() & 63); }
    pack_scales_k4(sc, m, packed);
    for (uint32_t j = 0; j < 8; ++j) {
      uint8_t s2, m2;
      scale_min_k4(j, packed, &s2, &m2);
      ASSERT_EQ(s2, sc[j]) << "sub-block " << j;
      ASSERT_EQ(m2, m[j]) << "sub-block " << j;
    }
  }
}

TEST(GgufDequant, Q5_0AndQ5_1PutBitFourOfWeightJInBitJ) {
  std::mt19937 rng(1);
  BlockQ5_0 b0{};
  BlockQ5_1 b1{};
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = uint8_t(rng() & 31);
  q[0] = 0; q[31] = 31; q[15] = 16; q[16] = 15;  // edges of both nibble halves and the high bit
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) b0.qs[j] = uint8_t((q[j] & 15) | ((q[j + 16] & 15) << 4));
  for (int j = 0; j < 32; ++j) qh |= uint32_t(q[j] >> 4) << j;
  for (int i = 0; i < 4; ++i) b0.qh[i] = uint8_t(qh >> (8 * i));
  b0.d = h(0.5f);
  std::memcpy(b1.qs, b0.qs, 16);
  std::memcpy(b1.qh, b0.qh, 4);
  b1.d = h(0.25f);
  b1.m = h(-3.0f);
  float out0[32], out1[32];
  dequantize_row_q5_0(bytes_of(std::vector<BlockQ5_0>{b0}).data(), 1, out0);
  dequantize_row_q5_1(bytes_of(std::vector<BlockQ5_1>{b1}).data(), 1, out1);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(out0[j], 0.5f * float(int(q[j]) - 16)) << "Q5_0 weight " << j;
    EXPECT_EQ(out1[j], 0.25f * float(q[j]) - 3.0f) << "Q5_1 weight " << j;
  }
}

TEST(GgufDequant, Q4_KAndQ5_KSubBlockOrder) {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 50; ++trial) {
    uint8_t sc[8], m[8], q[256];
    for (int j = 0; j < 8; ++j) { sc[j] = uint8_t(rng() & 63); m[j] = uint8_t(rng() & 63); }
    for (int j = 0; j < 256; ++j) q[j] = uint8_t(rng() & 31);
    BlockQ4_K b4{};
    BlockQ5_K b5{};
    b4.d = b5.d = h(0.125f);
    b4.dmin = b5.dmin = h(0.0625f);
    pack_scales_k4(sc, m, b4.scales);
    std::memcpy(b5.scales, b4.scales, 12);
    // Sub-block s, weight l: nibble (s & 1) of qs[32 (s / 2) + l]; Q5_K bit s of qh[l].
    for (int s = 0; s < 8; ++s) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t v = q[32 * s + l];
        uint8_t& byte4 = b4.qs[32 * (s / 2) + l];
        uint8_t& byte5 = b5.qs[32 * (s / 2) + l];
        byte4 = uint8_t(byte4 | ((v & 15) << (4 * (s & 1))));
        byte5 = uint8_t(byte5 | ((v & 15) << (4 * (s & 1))));
        b5.qh[l] = uint8_t(b5.qh[l] | ((v >> 4) << s));
      }
    }
    float out4[256], out5[256];
    dequantize_row_q4_K(bytes_of(std::vector<BlockQ4_K>{b4}).data(), 1, out4);
    dequantize_row_q5_K(bytes_of(std::vector<BlockQ5_K>{b5}).data(), 1, out5);
    for (int s = 0; s < 8; ++s) {
      for (int l = 0; l < 32; ++l) {
        const int i = 32 * s + l;
        const float ds = 0.125f * float(sc[s]), dm = 0.0625f * float(m[s]);
        ASSERT_EQ(out4[i], ds * float(q[i] & 15) - dm) << "Q4_K sub-block " << s << " weight " << l;
        ASSERT_EQ(out5[i], ds * float(q[i]) - dm) << "Q5_K sub-block " << s << " weight " << l;
      }
    }
  }
}

TEST(GgufDequant, Q6_KWeightOrderAndScales) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    int8_t scales[16];
    uint8_t q[256];
    for (int j = 0; j < 16; ++j) scales[j] = int8_t(int(rng() % 255) - 127);
    scales[0] = -128;
    for (int j = 0; j < 256; ++j) q[j] = uint8_t(rng() & 63);
    BlockQ6_K b{};
    b.d = h(0.03125f);
    std::memcpy(b.scales, scales, 16);
    // Weight i = 128 half + 32 k + l: low nibble in ql[64 half + 32 (k & 1) + l]
    // (low half of the byte for k < 2), high two bits at bit 2k of qh[32 half + l].
    for (int i = 0; i < 256; ++i) {
      const int half = i / 128, k = (i % 128) / 32, l = i % 32;
      uint8_t& lo = b.ql[64 * half + 32 * (k & 1) + l];
      lo = uint8_t(lo | ((q[i] & 15) << (k < 2 ? 0 : 4)));
      uint8_t& hi = b.qh[32 * half + l];
      hi = uint8_t(hi | ((q[i] >> 4) << (2 * k)));
    }
    float out[256];
    dequantize_row_q6_K(bytes_of(std::vector<BlockQ6_K>{b}).data(), 1, out);
    for (int i = 0; i < 256; ++i) {
      const float ds = 0.03125f * float(scales[i / 16]);
      ASSERT_EQ(out[i], ds * float(int(q[i]) - 32)) << "weight " << i;
    }
  }
}

TEST(GgufDequant, UnknownTypeIsRefused) {
  float out[32] = {};
  const uint8_t zeros[256] = {};
  EXPECT_FALSE(dequantize_gguf(10 /* Q2_K */, zeros, 256, out));
  EXPECT_FALSE(dequantize_gguf(9999, zeros, 32, out));
}

TEST(Sha256, KnownVectors) {
  test::Sha256 empty;
  EXPECT_EQ(empty.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  test::Sha256 abc;
  abc.update("abc", 3);
  EXPECT_EQ(abc.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  test::Sha256 two_blocks;  // 56 bytes: the padding spills into a second block
  const char* m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  two_blocks.update(m, std::strlen(m));
  EXPECT_EQ(two_blocks.hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace tern
