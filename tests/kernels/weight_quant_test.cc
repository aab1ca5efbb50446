// Reference weight quantizers: round-trip error bounds, edge values, layouts.
#include "kernels/weight_quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace tern {
namespace {

struct Int8Row {
  std::vector<int8_t> q;
  std::vector<uint16_t> d;
  WeightMatrix view(uint32_t cols) const { return {WeightType::kInt8G32, 1, cols, q.data(), d.data()}; }
};
struct Int4Row {
  std::vector<uint8_t> q;
  std::vector<uint16_t> dm;
  WeightMatrix view(uint32_t cols) const { return {WeightType::kInt4G32, 1, cols, q.data(), dm.data()}; }
};

Int8Row quant8(const std::vector<float>& x) {
  Int8Row r{std::vector<int8_t>(x.size(), 99), std::vector<uint16_t>(x.size() / 32, 0xffff)};
  quantize_row_int8_g32(x.data(), uint32_t(x.size()), r.q.data(), r.d.data());
  return r;
}
Int4Row quant4(const std::vector<float>& x) {
  Int4Row r{std::vector<uint8_t>(x.size() / 2, 0xaa), std::vector<uint16_t>(x.size() / 16, 0xffff)};
  quantize_row_int4_g32(x.data(), uint32_t(x.size()), r.q.data(), r.dm.data());
  return r;
}
std::vector<float> dequant(const WeightMatrix& w) {
  std::vector<float> out(w.cols, std::nanf(""));
  dequantize_row(w, 0, out.data());
  return out;
}

std::vector<float> random_row(uint32_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

TEST(WeightQuant, Int8RoundTripWithinHalfStep) {
  for (uint32_t n : {32u, 64u, 576u, 1536u}) {
    for (float scale : {1e-3f, 0.05f, 3.0f}) {
      const auto x = random_row(n, scale, 1234 + n);
      const auto r = quant8(x);
      const auto y = dequant(r.view(n));
      for (uint32_t g = 0; g < n / 32; ++g) {
        const float d = f16_to_f32(r.d[g]);
        float amax = 0;
        for (uint32_t i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[g * 32 + i]));
        // d is amax/127 rounded to nearest f16 (relative 2^-11, or 2^-25 absolute
        // when subnormal).
        EXPECT_NEAR(d, amax / 127.0f, amax / 127.0f * 4.9e-4f + 3e-8f) << "n=" << n << " g=" << g;
        // Half a step; plus, when f16 rounding made 127 d < amax, the clamp at 127.
        const float clamp = std::fmax(0.0f, amax - 127.0f * d);
        for (uint32_t i = 0; i < 32; ++i) {
          const uint32_t k = g * 32 + i;
          ASSERT_GE(r.q[k], -127);
          ASSERT_LE(std::fabs(x[k] - y[k]), d * 0.5f + clamp + amax * 1e-6f) << "n=" << n << " scale=" << scale << " k=" << k;
        }
      }
    }
  }
}

TEST(WeightQuant, Int4RoundTripWithinHalfStep) {
  for (uint32_t n : {32u, 64u, 576u, 1536u}) {
    for (float scale : {1e-3f, 0.05f, 3.0f}) {
      const auto x = random_row(n, scale, 99 + n);
      const auto r = quant4(x);
      const auto y = dequant(r.view(n));
      for (uint32_t g = 0; g < n / 32; ++g) {
        const float d = f16_to_f32(r.dm[2 * g]);
        const float m = f16_to_f32(r.dm[2 * g + 1]);
        float mn = x[g * 32], mx = x[g * 32];
        for (uint32_t i = 0; i < 32; ++i) { mn = std::fmin(mn, x[g * 32 + i]); mx = std::fmax(mx, x[g * 32 + i]); }
        // Half a step, plus the f16 rounding of m (it shifts the clamped ends), plus float slack.
        const float bound = d * 0.5f + std::fabs(m - mn) + (mx - mn) * 1e-3f;
        for (uint32_t i = 0; i < 32; ++i) {
          const uint32_t k = g * 32 + i;
          ASSERT_LE(std::fabs(x[k] - y[k]), bound) << "n=" << n << " scale=" << scale << " k=" << k;
        }
      }
    }
  }
}

// int5: the q plane (low 4 bits) and the high-bit plane contiguous, as the
// blob stores them (int5_high_bits reads the bits right after the nibbles).
struct Int5Row {
  std::vector<uint8_t> qh;  // [n/2] nibbles then [n/8] high bits
  std::vector<uint16_t> dm;
  WeightMatrix view(uint32_t cols) const { return {WeightType::kInt5G32, 1, cols, qh.data(), dm.data()}; }
};
Int5Row quant5(const std::vector<float>& x) {
  const size_t n = x.size();
  Int5Row r{std::vector<uint8_t>(n / 2 + n / 8, 0xaa), std::vector<uint16_t>(n / 16, 0xffff)};
  quantize_row_int5_g32(x.data(), uint32_t(n), r.qh.data(), r.qh.data() + n / 2, r.dm.data());
  return r;
}

TEST(WeightQuant, Int5RoundTripWithinHalfStep) {
  for (uint32_t n : {32u, 64u, 576u, 1536u}) {
    for (float scale : {1e-3f, 0.05f, 3.0f}) {
      const auto x = random_row(n, scale, 77 + n);
      const auto r5 = quant5(x);
      const auto y = dequant(r5.view(n));
      const auto y4 = dequant(quant4(x).view(n));
      double err5 = 0, err4 = 0;
      for (uint32_t g = 0; g < n / 32; ++g) {
        const float d = f16_to_f32(r5.dm[2 * g]);
        const float m = f16_to_f32(r5.dm[2 * g + 1]);
        float mn = x[g * 32], mx = x[g * 32];
        for (uint32_t i = 0; i < 32; ++i) { mn = std::fmin(mn, x[g * 32 + i]); mx = std::fmax(mx, x[g * 32 + i]); }
        EXPECT_NEAR(d, (mx - mn) / 31.0f, (mx - mn) / 31.0f * 4.9e-4f + 3e-8f) << "31 steps, n=" << n << " g=" << g;
        const float bound = d * 0.5f + std::fabs(m - mn) + (mx - mn) * 1e-3f;
        for (uint32_t i = 0; i < 32; ++i) {
          const uint32_t k = g * 32 + i;
          ASSERT_LE(std::fabs(x[k] - y[k]), bound) << "n=" << n << " scale=" << scale << " k=" << k;
          err5 += std::fabs(x[k] - y[k]);
          err4 += std::fabs(x[k] - y4[k]);
        }
      }
      EXPECT_LT(err5, 0.6 * err4) << "int5 should halve int4's error, n=" << n << " scale=" << scale;
    }
  }
}

// Every value 0..31 lands in its element: low nibble in the int4 order, bit 4
// at bit i of byte b for element 8b + i.
TEST(WeightQuant, Int5BitPlaneOrder) {
  std::vector<float> x(32);
  for (uint32_t i = 0; i < 32; ++i) x[i] = float((i * 7) % 32);  // a permutation of 0..31
  const auto r = quant5(x);
  EXPECT_EQ(f16_to_f32(r.dm[0]), 1.0f);
  EXPECT_EQ(f16_to_f32(r.dm[1]), 0.0f);
  for (uint32_t i = 0; i < 32; ++i) {
    const uint32_t v = uint32_t(x[i]);
    const uint8_t nib = i < 16 ? r.qh[i] & 15 : r.qh[i - 16] >> 4;
    EXPECT_EQ(nib, v & 15) << i;
    EXPECT_EQ((r.qh[16 + i / 8] >> (i % 8)) & 1, v >> 4) << i;
  }
  const auto y = dequant(r.view(32));
  for (uint32_t i = 0; i < 32; ++i) EXPECT_EQ(y[i], x[i]) << i;
}

TEST(WeightQuant, AllZeroGroup) {
  const std::vector<float> x(64, 0.0f);
  const auto r8 = quant8(x);
  const auto r4 = quant4(x);
  for (int8_t q : r8.q) EXPECT_EQ(q, 0);
  for (uint16_t d : r8.d) EXPECT_EQ(d, 0);
  for (float v : dequant(r8.view(64))) EXPECT_EQ(v, 0.0f);
  for (float v : dequant(r4.view(64))) EXPECT_EQ(v, 0.0f);
  for (uint8_t q : r4.q) EXPECT_EQ(q, 0);
}

TEST(WeightQuant, ConstantGroupIsExactWhenF16Representable) {
  for (float c : {0.75f, -2.5f, 1.0f / 64.0f}) {
    const std::vector<float> x(32, c);
    const auto y4 = dequant(quant4(x).view(32));
    for (float v : y4) EXPECT_EQ(v, c) << "int4 constant " << c;
    const auto y8 = dequant(quant8(x).view(32));
    // int8: |c| = 127 d, d rounded to f16: within one f16 rounding of c.
    for (float v : y8) EXPECT_NEAR(v, c, std::fabs(c) * 1e-3f) << "int8 constant " << c;
  }
}

TEST(WeightQuant, PlusMinusMaxHitTheEnds) {
  std::vector<float> x(32, 0.0f);
  x[3] = 127.0f;
  x[20] = -127.0f;
  const auto r8 = quant8(x);
  EXPECT_EQ(f16_to_f32(r8.d[0]), 1.0f);
  EXPECT_EQ(r8.q[3], 127);
  EXPECT_EQ(r8.q[20], -127);
  const auto r4 = quant4(x);
  const float d = f16_to_f32(r4.dm[0]);
  const float m = f16_to_f32(r4.dm[1]);
  EXPECT_EQ(m, -127.0f);
  EXPECT_NEAR(d, 254.0f / 15.0f, 0.01f);
  EXPECT_EQ(r4.q[3] & 0x0f, 15);   // element 3: low nibble of byte 3
  EXPECT_EQ(r4.q[4] >> 4, 0);      // element 20: high nibble of byte 4
}

TEST(WeightQuant, Int4NibbleOrder) {
  // Element i = i % 16 for i < 16 and 15 - (i - 16) above: byte j must hold
  // element j low and element j + 16 high.
  std::vector<float> x(32);
  for (int i = 0; i < 16; ++i) x[i] = float(i);
  for (int i = 16; i < 32; ++i) x[i] = float(31 - i);
  const auto r = quant4(x);
  EXPECT_EQ(f16_to_f32(r.dm[0]), 1.0f);
  EXPECT_EQ(f16_to_f32(r.dm[1]), 0.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(r.q[j] & 0x0f, j) << "byte " << j;
    EXPECT_EQ(r.q[j] >> 4, 15 - j) << "byte " << j;
  }
  const auto y = dequant(r.view(32));
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], x[i]) << "element " << i;
}

TEST(WeightQuant, DequantizeRowPicksTheRightRow) {
  // Three rows, int4 and int8 and f32: row r must read its own q and scales.
  const uint32_t rows = 3, cols = 64;
  std::vector<float> all;
  for (uint32_t r = 0; r < rows; ++r) {
    const auto x = random_row(cols, float(r + 1), 7 + r);
    all.insert(all.end(), x.begin(), x.end());
  }
  std::vector<int8_t> q8(rows * cols);
  std::vector<uint16_t> d8(rows * cols / 32);
  std::vector<uint8_t> q4(rows * cols / 2);
  std::vector<uint16_t> dm4(rows * cols / 16);
  for (uint32_t r = 0; r < rows; ++r) {
    quantize_row_int8_g32(&all[r * cols], cols, &q8[r * cols], &d8[r * cols / 32]);
    quantize_row_int4_g32(&all[r * cols], cols, &q4[r * cols / 2], &dm4[r * cols / 16]);
  }
  const WeightMatrix w8{WeightType::kInt8G32, rows, cols, q8.data(), d8.data()};
  const WeightMatrix w4{WeightType::kInt4G32, rows, cols, q4.data(), dm4.data()};
  const WeightMatrix wf{WeightType::kF32, rows, cols, all.data(), nullptr};
  for (uint32_t r = 0; r < rows; ++r) {
    std::vector<float> y8(cols), y4(cols), yf(cols);
    dequantize_row(w8, r, y8.data());
    dequantize_row(w4, r, y4.data());
    dequantize_row(wf, r, yf.data());
    for (uint32_t c = 0; c < cols; ++c) {
      const float x = all[r * cols + c];
      EXPECT_EQ(yf[c], x);
      EXPECT_NEAR(y8[c], x, f16_to_f32(d8[r * 2 + c / 32]) * 0.5f + 1e-5f) << "row " << r << " col " << c;
      EXPECT_NEAR(y4[c], x, f16_to_f32(dm4[r * 4 + (c / 32) * 2]) * 0.5f + 0.01f) << "row " << r << " col " << c;
    }
  }
}

// --layout r16: the interleave is a permutation (de-interleaving any row range
// gives the rows back) and a row dequantizes to the same floats in both layouts.
TEST(WeightQuant, R16InterleaveRoundTripAndRows) {
  std::mt19937 rng(7);
  const uint32_t rows = 48, cols = 96, groups = cols / kGroup;
  std::vector<int8_t> q(size_t(rows) * cols), q16(q.size()), back(q.size());
  std::vector<uint16_t> d(size_t(rows) * groups), d16(d.size()), dback(d.size());
  for (auto& v : q) v = int8_t(std::uniform_int_distribution<int>(-128, 127)(rng));
  for (auto& v : d) v = f32_to_f16(std::uniform_real_distribution<float>(0.001f, 0.1f)(rng));
  interleave_rows_int8_g32(q.data(), d.data(), rows, cols, q16.data(), d16.data());
  EXPECT_NE(q, q16) << "not interleaved";
  // Row 17, column 32 * 2 + 4 * 3 + 1: block 1, lane 1, group 2, chunk 3, byte 1.
  EXPECT_EQ(q16[size_t(1) * cols * 16 + (2 * 8 + 3) * 64 + 4 * 1 + 1], q[size_t(17) * cols + 77]);
  EXPECT_EQ(d16[(size_t(1) * groups + 2) * 16 + 1], d[size_t(17) * groups + 2]);
  const WeightMatrix w16{WeightType::kInt8G32R16, rows, cols, q16.data(), d16.data()};
  const WeightMatrix w8{WeightType::kInt8G32, rows, cols, q.data(), d.data()};
  deinterleave_rows_int8_g32(w16, 0, rows, back.data(), dback.data());
  EXPECT_EQ(back, q);
  EXPECT_EQ(dback, d);
  deinterleave_rows_int8_g32(w16, 13, 7, back.data(), dback.data());  // an unaligned range
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 7 * cols, q.begin() + 13 * cols));
  EXPECT_TRUE(std::equal(dback.begin(), dback.begin() + 7 * groups, d.begin() + 13 * groups));
  std::vector<float> a(cols), b(cols);
  for (uint32_t r = 0; r < rows; ++r) {
    dequantize_row(w8, r, a.data());
    dequantize_row(w16, r, b.data());
    ASSERT_EQ(a, b) << "row " << r;
  }
}

// The int4 interleave: 4-byte units (8 values) of a row move together and
// both scales (d, m) follow; rows dequantize to the same floats.
TEST(WeightQuant, Int4R16InterleaveRoundTripAndRows) {
  std::mt19937 rng(11);
  const uint32_t rows = 32, cols = 64, groups = cols / kGroup;
  std::vector<uint8_t> q(size_t(rows) * cols / 2), q16(q.size()), back(q.size());
  std::vector<uint16_t> dm(size_t(rows) * groups * 2), dm16(dm.size()), dmback(dm.size());
  for (auto& v : q) v = uint8_t(rng());
  for (auto& v : dm) v = f32_to_f16(std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng));
  interleave_rows_int4_g32(q.data(), dm.data(), rows, cols, q16.data(), dm16.data());
  // Row 18, byte 16 * 1 + 4 * 2 + 3 (group 1, unit 2): block 1, lane 2, unit 1 * 4 + 2.
  EXPECT_EQ(q16[size_t(1) * (cols / 2) * 16 + (1 * 4 + 2) * 64 + 4 * 2 + 3], q[size_t(18) * (cols / 2) + 16 + 8 + 3]);
  EXPECT_EQ(dm16[((size_t(1) * groups + 1) * 2 + 1) * 16 + 2], dm[(size_t(18) * groups + 1) * 2 + 1]) << "m of row 18, group 1";
  const WeightMatrix w16{WeightType::kInt4G32R16, rows, cols, q16.data(), dm16.data()};
  const WeightMatrix w4{WeightType::kInt4G32, rows, cols, q.data(), dm.data()};
  deinterleave_rows_int4_g32(w16, 0, rows, back.data(), dmback.data());
  EXPECT_EQ(back, q);
  EXPECT_EQ(dmback, dm);
  std::vector<float> a(cols), b(cols);
  for (uint32_t r = 0; r < rows; ++r) {
    dequantize_row(w4, r, a.data());
    dequantize_row(w16, r, b.data());
    ASSERT_EQ(a, b) << "row " << r;
  }
}

}  // namespace
}  // namespace tern

