// Every kernel variant compiled in, run through the same test bodies against
// the scalar reference (or, for the quantized matmul, against an exact
// double-precision evaluation of the reference formula). Variants the host CPU
// cannot run are skipped with the reason.
//
// Tolerances (each stated where it is checked):
//   quantize_rows_q8, kv_store                     bit-exact (q, r, d, s)
//   quantize+dequantize  |x - d (254 q + r)| <= d * (1/2 + 2^-7)   (d/2 from
//               rounding r; 2^-7 d covers the float rounding of d, coarse step
//               and residual, ~0.004 d at most)
//   matmul (int8, int4, int5 weights)
//               |y - exact| <= (groups + 10) * 2^-24 * sum_g term_g, with
//               term_g = |d_w x_d| (254 sum_j |w_j q_j| + sum_j |w_j r_j|)
//               (+ |m x_s|): a rigorous bound for float accumulation, in any
//               order, of exact integer partials (isum = 254 sum w q + sum w r).
//               Bit-exact to the exact value, and to scalar for a single group
//               (cols = 32), when all scales are powers of two and
//               sum_g term_g < 2^24 units (every float operation is then exact).
//   matmul_f32  |y - ref| <= 1e-5 * sum_c |w x|
//   rmsnorm     |y - ref| <= 1e-5 * |ref| + 1e-6
//   rope        |y - ref| <= 1e-6 * (|x0| + |x1|)   (FMA vs separate rounding)
//   softmax     |y - ref| <= 2e-6 * ref + 1e-9      (polynomial exp, ~2e-7 rel)
//   silu_mul    |y - ref| <= 2e-6 * |ref|              (polynomial exp + division)
//   gelu_mul    |y - ref| <= 4e-6 * |ref| + 1e-6 * |up| (exp form vs the reference's tanh)
//   attention   |y - ref| <= 4e-5 + 1e-6 absolute      (|v| <= 2, sum p = 1: 2e-5 relative)
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/weight_quant.h"
#include "runtime/engine.h"  // host_isa_bits

namespace tern {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The one mapping of CPU features to kernel ISA bits (runtime/engine.cc).
uint32_t host_isa() { return host_isa_bits(); }

// The selectable variants (kernel_variants) followed by the test-only
// emulated stand-ins (emulated_kernel_variants, e.g. "avxvnni-emulated": the
// AVX-VNNI kernels with vpdpbusd computed in AVX2), so the kernel logic of a
// variant this CPU lacks is still checked here.
size_t variant_count() {
  size_t n = 0, e = 0;
  kernel_variants(&n);
  emulated_kernel_variants(&e);
  return n + e;
}

const KernelVariant& variant(size_t i) {
  size_t n = 0, e = 0;
  const KernelVariant* v = kernel_variants(&n);
  if (i < n) return v[i];
  return emulated_kernel_variants(&e)[i - n];
}

class KernelVariantTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    const KernelVariant& v = variant(GetParam());
    if ((v.required_isa & host_isa()) != v.required_isa)
      GTEST_SKIP() << "variant '" << v.name << "' needs ISA bits 0x" << std::hex << v.required_isa
                   << " but this CPU has 0x" << host_isa();
    k = v.table;
  }
  const KernelTable* k = nullptr;
  const KernelTable& s = scalar_kernels();
  std::mt19937 rng{12345};

  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
  int irand(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
};

std::string where(const KernelTable* k, const char* op, const std::string& shape) {
  return std::string("variant=") + k->name + " op=" + op + " " + shape;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// ---- quantize_rows_q8 ---------------------------------------------------------

TEST_P(KernelVariantTest, QuantizeRowsQ8BitExact) {
  for (uint32_t cols : {32u, 64u, 96u, 576u, 1536u, 4128u}) {
    for (uint32_t rows : {1u, 3u}) {
      const uint32_t groups = cols / kGroup;
      // +1: the activations start at an odd float offset (unaligned).
      std::vector<float> xbuf(size_t(rows) * cols + 1);
      float* x = xbuf.data() + 1;
      for (uint32_t i = 0; i < rows * cols; ++i) {
        const uint32_t g = i / kGroup;
        switch (g % 5) {
          case 0: x[i] = uniform(-3.0f, 3.0f); break;
          case 1: x[i] = 0.0f; break;                                 // zero group
          case 2: x[i] = float(irand(-254, 254)) * 0.5f; break;       // exact .5 ties when amax = 127
          case 3: x[i] = uniform(-1e-20f, 1e-20f); break;             // tiny
          default: x[i] = uniform(-1e4f, 1e4f); break;
        }
      }
      // Make the tie groups' amax exactly 127 so id == 1 and x * id hits .5.
      for (uint32_t g = 2; g < rows * groups; g += 5) x[g * kGroup] = 127.0f;
      // Denormal territory (kernels/blocks.h, kTinyGroupAmax = 2^-100): every
      // other zero group becomes a group below the threshold (normal values
      // under 2^-100 mixed with denormals), which must quantize to all zeros;
      // every other tiny group becomes denormals with amax exactly 2^-100
      // (kept, the denormals quantize to 0).
      for (uint32_t g = 0; g < rows * groups; ++g) {
        float* xg = x + size_t(g) * kGroup;
        if (g % 5 == 1 && (g / 5) % 2 == 1) {
          for (uint32_t j = 0; j < kGroup; ++j) xg[j] = j % 2 ? uniform(-7e-31f, 7e-31f) : uniform(-1e-39f, 1e-39f);
        } else if (g % 5 == 3 && (g / 5) % 2 == 1) {
          for (uint32_t j = 0; j < kGroup; ++j) xg[j] = uniform(-1e-39f, 1e-39f);
          xg[kGroup / 2] = -kTinyGroupAmax;
        }
      }
      // Non-finite inputs must quantize identically too (and never to -128).
      if (groups > 5) {
        x[4 * kGroup + 3] = std::numeric_limits<float>::quiet_NaN();
        x[5 * kGroup + 7] = std::numeric_limits<float>::infinity();
      }
      struct Out {
        std::vector<int8_t> q, r;
        std::vector<float> d, s;
        ActRowsQ8 act(uint32_t c) { return ActRowsQ8{q.data() + 1, r.data() + 1, d.data() + 1, s.data() + 1, c}; }
      } out[2];
      for (Out& o : out) {  // +1: outputs start unaligned; prefilled with garbage
        o.q.assign(size_t(rows) * cols + 1, int8_t(99));
        o.r.assign(size_t(rows) * cols + 1, int8_t(-99));
        o.d.assign(size_t(rows) * groups + 1, kNaN);
        o.s.assign(size_t(rows) * groups + 1, kNaN);
      }
      s.quantize_rows_q8(x, rows, cols, out[0].act(cols));
      k->quantize_rows_q8(x, rows, cols, out[1].act(cols));
      const std::string at = where(k, "quantize_rows_q8", "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
      for (size_t i = 0; i < out[0].q.size(); ++i) {
        ASSERT_EQ(out[0].q[i], out[1].q[i]) << at << " q[" << int64_t(i) - 1 << "]";
        ASSERT_EQ(out[0].r[i], out[1].r[i]) << at << " r[" << int64_t(i) - 1 << "] (q " << int(out[0].q[i]) << ")";
      }
      for (size_t i = 1; i < out[0].d.size(); ++i) {
        ASSERT_TRUE(same_bits(out[0].d[i], out[1].d[i])) << at << " d[" << i - 1 << "]";
        ASSERT_TRUE(same_bits(out[0].s[i], out[1].s[i])) << at << " s[" << i - 1 << "]";
      }
      // Properties of the reference itself.
      for (uint32_t g = 0; g < rows * groups; ++g) {
        int qmax = 0, sum = 0;
        for (uint32_t j = 0; j < kGroup; ++j) {
          const int q = out[0].q[1 + g * kGroup + j];
          const int rr = out[0].r[1 + g * kGroup + j];
          ASSERT_LE(std::abs(q), 127) << at << " group " << g;
          ASSERT_LE(std::abs(rr), 127) << at << " group " << g;
          qmax = std::max(qmax, std::abs(q));
          sum += kResidualScale * q + rr;
        }
        const float d = out[0].d[1 + g];
        float amax = 0.0f;
        for (uint32_t j = 0; j < kGroup; ++j) amax = std::fmax(amax, std::fabs(x[g * kGroup + j]));
        if (amax < kTinyGroupAmax) {
          ASSERT_EQ(d, 0.0f) << at << " group " << g << " below kTinyGroupAmax must be all zeros";
          ASSERT_EQ(out[0].s[1 + g], 0.0f) << at << " group " << g;
          ASSERT_EQ(qmax, 0) << at << " group " << g;
        } else if (amax == kTinyGroupAmax) {
          ASSERT_GT(d, 0.0f) << at << " group " << g << " at kTinyGroupAmax is kept";
        }
        if (!std::isfinite(d)) continue;  // the group with an inf
        ASSERT_EQ(qmax, d == 0.0f ? 0 : 127) << at << " group " << g;
        ASSERT_TRUE(same_bits(out[0].s[1 + g], d * float(sum))) << at << " group " << g;
      }
    }
  }
}

// x ~= d * (254 q + r) to within half a unit d per value (blocks.h), for
// ordinary groups and the edges: all-zero groups, one huge outlier, tiny and
// denormal values. Checked on every variant (they are bit-exact to scalar, so
// this is a property of the format and of the reference arithmetic).
//
// Below amax = 2^-100 (kTinyGroupAmax) d/2 accuracy is not kept: d would be
// near-subnormal and 127 / amax overflows, so such groups quantize to all
// zeros (kernels/blocks.h); for them the bound is |x - x~| = |x| <= amax.
TEST_P(KernelVariantTest, QuantizeDequantizeWithinHalfUnit) {
  enum Kind { kUniform, kWide, kZero, kOutlier, kHugeOutlier, kTiny, kMinNormal, kDenormal, kMixedDenormal, kKinds };
  const char* names[kKinds] = {"uniform", "wide", "zero", "outlier", "huge-outlier", "tiny", "min-normal", "denormal", "mixed-denormal"};
  const uint32_t cols = 4 * kGroup, rows = 2;
  for (int kind = 0; kind < kKinds; ++kind)
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<float> xbuf(size_t(rows) * cols + 1);
      float* x = xbuf.data() + 1;  // unaligned
      for (uint32_t i = 0; i < rows * cols; ++i) {
        switch (kind) {
          case kUniform: x[i] = uniform(-2.0f, 2.0f); break;
          case kWide: x[i] = uniform(-1.0f, 1.0f) * std::ldexp(1.0f, irand(-30, 30)); break;
          case kZero: x[i] = (i / kGroup) % 2 ? 0.0f : -0.0f; break;
          case kOutlier: x[i] = i % kGroup == 5 ? 300.0f * (rep % 2 ? 1 : -1) : uniform(-1.0f, 1.0f); break;
          case kHugeOutlier: x[i] = i % kGroup == 31 ? 3e38f : uniform(-1.0f, 1.0f); break;
          case kTiny: x[i] = uniform(-1.0f, 1.0f) * 1e-30f; break;
          case kMinNormal: x[i] = uniform(-1.0f, 1.0f) * 1e-33f; break;
          case kDenormal: x[i] = uniform(-1.0f, 1.0f) * 1e-39f; break;
          default: x[i] = i % 3 ? uniform(-1.0f, 1.0f) * 1e-40f : uniform(-1.0f, 1.0f); break;
        }
      }
      const uint32_t groups = cols / kGroup;
      std::vector<int8_t> q(size_t(rows) * cols), r(q.size());
      std::vector<float> d(size_t(rows) * groups, kNaN), sm(d.size(), kNaN);
      k->quantize_rows_q8(x, rows, cols, ActRowsQ8{q.data(), r.data(), d.data(), sm.data(), cols});
      const std::string at = where(k, "quantize_rows_q8 (dequantize)", std::string("kind=") + names[kind] +
                                                                       " rep=" + std::to_string(rep));
      for (uint32_t g = 0; g < rows * groups; ++g) {
        const double dg = d[g];
        ASSERT_TRUE(std::isfinite(dg) && dg >= 0.0) << at << " group " << g << " d " << dg;
        double amax = 0.0;
        for (uint32_t j = 0; j < kGroup; ++j) amax = std::max(amax, std::fabs(double(x[g * kGroup + j])));
        const bool tiny = amax > 0.0 && amax < double(kTinyGroupAmax);
        const double tol = tiny ? amax : dg * (0.5 + 1.0 / 128);
        if (tiny) {
          ASSERT_EQ(dg, 0.0) << at << " group " << g << " below kTinyGroupAmax must be flushed";
        }
        if (kind == kUniform || kind == kOutlier || kind == kZero) {
          ASSERT_FALSE(tiny) << at;
        }
        double xsum = 0.0;
        for (uint32_t j = 0; j < kGroup; ++j) {
          const size_t i = size_t(g) * kGroup + j;
          const double back = dg * (double(kResidualScale) * q[i] + r[i]);
          xsum += back;
          ASSERT_LE(std::fabs(back - double(x[i])), tol)
              << at << " group " << g << " j " << j << " x " << x[i] << " q " << int(q[i]) << " r " << int(r[i])
              << " d " << dg << (tiny ? " (tiny group: weak bound)" : "");
        }
        // s is the group sum of the dequantized values, rounded once.
        ASSERT_EQ(double(sm[g]), double(float(xsum))) << at << " group " << g;
      }
    }
}

// ---- matmul by quantized weight type ------------------------------------------------------------------

// kAllMax / kAllMin: weights, q and r all at their maximum / minimum;
// kOpposite: weights at max, q = -127 and r = +127 (the planes' signs differ);
// kPow2: power-of-two scales, q in {-1, 0, 1} and r in [-31, 31] so that many
// shapes stay in the range where every float operation is exact.
enum class Fill { kRandom, kAllMax, kAllMin, kOpposite, kZeroGroups, kPow2 };
const char* fill_name(Fill f) {
  switch (f) {
    case Fill::kRandom: return "random";
    case Fill::kAllMax: return "all-max";
    case Fill::kAllMin: return "all-min";
    case Fill::kOpposite: return "opposite-planes";
    case Fill::kZeroGroups: return "zero-groups";
    default: return "pow2-scales";
  }
}

// A quantized weight matrix and activations built directly in their storage
// layouts, so edge values (+-127, 0, 15) can be placed exactly.
struct QProblem {
  WeightType type;
  uint32_t rows, cols, n_tokens;
  std::vector<uint8_t> wq;      // +1 byte: data starts unaligned
  std::vector<uint16_t> ws;     // f16 scales
  std::vector<int8_t> xq, xr;   // +1 byte: coarse and residual planes
  std::vector<float> xd, xs;    // +1 float
  WeightMatrix w() const {
    return WeightMatrix{type, rows, cols, wq.data() + 1, ws.data()};
  }
  ActRowsQ8 x() const {
    return ActRowsQ8{const_cast<int8_t*>(xq.data()) + 1, const_cast<int8_t*>(xr.data()) + 1,
                     const_cast<float*>(xd.data()) + 1, const_cast<float*>(xs.data()) + 1, cols};
  }
  // s = d * float(254 sum q + sum r), as the quantizer makes it.
  void set_sums() {
    const uint32_t groups = cols / kGroup;
    for (uint32_t t = 0; t < n_tokens; ++t)
      for (uint32_t g = 0; g < groups; ++g) {
        int sum = 0;
        for (uint32_t j = 0; j < kGroup; ++j) {
          const size_t i = 1 + size_t(t) * cols + g * kGroup + j;
          sum += kResidualScale * xq[i] + xr[i];
        }
        xs[1 + size_t(t) * groups + g] = xd[1 + size_t(t) * groups + g] * float(sum);
      }
  }
};

QProblem make_problem(WeightType type, uint32_t rows, uint32_t cols, uint32_t n_tokens, Fill fill,
                      std::mt19937& rng) {
  QProblem p{type, rows, cols, n_tokens, {}, {}, {}, {}, {}, {}};
  const uint32_t groups = cols / kGroup;
  const bool int4 = type != WeightType::kInt8G32;  // unsigned q with {d, m}: int4 and int5
  const int umax = type == WeightType::kInt5G32 ? 31 : 15;
  auto ir = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto fr = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  const float pow2[] = {0.25f, 0.5f, 1.0f, 2.0f};
  // Weights: element values w_e[r][c] first, then packed.
  std::vector<int> we(size_t(rows) * cols);
  for (uint32_t r = 0; r < rows; ++r)
    for (uint32_t c = 0; c < cols; ++c) {
      int v;
      const bool zero_group = fill == Fill::kZeroGroups && ((c / kGroup + r) % 3 == 0);
      switch (fill) {
        case Fill::kAllMax: case Fill::kOpposite: v = int4 ? umax : 127; break;
        case Fill::kAllMin: v = int4 ? 0 : -127; break;
        default: v = int4 ? ir(0, umax) : ir(-127, 127); break;
      }
      if (zero_group) v = int4 ? 0 : 0;
      we[size_t(r) * cols + c] = v;
    }
  if (int4) {
    // Nibble plane, then (int5) the high-bit plane right after it.
    const size_t nibbles = size_t(rows) * cols / 2;
    p.wq.assign(1 + nibbles + (type == WeightType::kInt5G32 ? size_t(rows) * cols / 8 : 0), 0);
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t g = 0; g < groups; ++g)
        for (uint32_t j = 0; j < 16; ++j) {
          const int lo = we[size_t(r) * cols + g * 32 + j], hi = we[size_t(r) * cols + g * 32 + j + 16];
          p.wq[1 + size_t(r) * cols / 2 + g * 16 + j] = uint8_t((lo & 15) | ((hi & 15) << 4));
        }
    if (type == WeightType::kInt5G32)
      for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t c = 0; c < cols; ++c)
          if (we[size_t(r) * cols + c] & 16) p.wq[1 + nibbles + size_t(r) * cols / 8 + c / 8] |= uint8_t(1u << (c % 8));
    p.ws.resize(size_t(rows) * groups * 2);
  } else {
    p.wq.assign(size_t(rows) * cols + 1, 0);
    for (size_t i = 0; i < we.size(); ++i) p.wq[1 + i] = uint8_t(int8_t(we[i]));
    p.ws.resize(size_t(rows) * groups);
  }
  for (size_t i = 0; i < p.ws.size(); ++i) {
    const bool is_m = int4 && (i % 2 == 1);
    float v;
    if (fill == Fill::kPow2) v = is_m ? -pow2[ir(0, 3)] * 4.0f : pow2[ir(0, 3)];
    else if (fill == Fill::kAllMax || fill == Fill::kAllMin || fill == Fill::kOpposite) v = is_m ? -0.5f : 0.0123f;
    else v = is_m ? fr(-0.2f, 0.0f) : fr(0.0f, 0.02f);
    if (fill == Fill::kZeroGroups && ((i / (int4 ? 2 : 1)) % 7 == 3)) v = 0.0f;  // zero scales
    p.ws[i] = f32_to_f16(v);
  }
  // Activations: q, r in [-127, 127], d > 0, s = d * (254 sum q + sum r).
  p.xq.assign(size_t(n_tokens) * cols + 1, 0);
  p.xr.assign(size_t(n_tokens) * cols + 1, 0);
  p.xd.assign(size_t(n_tokens) * groups + 1, 0.0f);
  p.xs.assign(size_t(n_tokens) * groups + 1, 0.0f);
  for (uint32_t t = 0; t < n_tokens; ++t)
    for (uint32_t g = 0; g < groups; ++g) {
      const bool zero_group = fill == Fill::kZeroGroups && ((g + t) % 4 == 1);
      // Only the residual plane zero (a group whose values sit on the coarse grid).
      const bool zero_r = fill == Fill::kZeroGroups && ((g + t) % 4 == 2);
      for (uint32_t j = 0; j < kGroup; ++j) {
        int vq, vr;
        switch (fill) {
          case Fill::kAllMax: vq = 127; vr = 127; break;
          case Fill::kAllMin: vq = -127; vr = -127; break;
          case Fill::kOpposite: vq = -127; vr = 127; break;
          case Fill::kPow2: vq = ir(-1, 1); vr = ir(-31, 31); break;
          default: vq = ir(-127, 127); vr = ir(-127, 127); break;
        }
        if (zero_group) vq = vr = 0;
        if (zero_r) vr = 0;
        p.xq[1 + size_t(t) * cols + g * kGroup + j] = int8_t(vq);
        p.xr[1 + size_t(t) * cols + g * kGroup + j] = int8_t(vr);
      }
      float d = fill == Fill::kPow2 ? pow2[ir(1, 3)] : fr(0.001f, 0.05f) / float(kResidualScale);
      if (zero_group) d = 0.0f;
      p.xd[1 + size_t(t) * groups + g] = d;
    }
  p.set_sums();
  return p;
}

// Exact value of one output by the reference formula, and its magnitude
// sum_g |d_w x_d| * (254 sum_j |w_j q_j| + sum_j |w_j r_j|) (+ |m x_s|): a
// bound on every partial sum a variant may form, whichever way it splits a
// group's integer products between lanes and planes.
void exact_output(const QProblem& p, uint32_t r, uint32_t t, double* y, double* mag) {
  const uint32_t groups = p.cols / kGroup;
  const bool int4 = p.type != WeightType::kInt8G32;  // int4 and int5: {d, m}
  double acc = 0.0, m = 0.0;
  for (uint32_t g = 0; g < groups; ++g) {
    int64_t isum = 0, iabs = 0;  // 254 sum w*q + sum w*r, and the same of |w*q|, |w*r|
    for (uint32_t j = 0; j < kGroup; ++j) {
      const uint32_t c = g * kGroup + j;
      int wv;
      if (int4) {
        const uint8_t b = p.wq[1 + size_t(r) * p.cols / 2 + g * 16 + (j % 16)];
        wv = j < 16 ? (b & 15) : (b >> 4);
        if (p.type == WeightType::kInt5G32) {
          const uint8_t h = p.wq[1 + size_t(p.rows) * p.cols / 2 + size_t(r) * p.cols / 8 + c / 8];
          wv |= ((h >> (c % 8)) & 1) << 4;
        }
      } else {
        wv = int8_t(p.wq[1 + size_t(r) * p.cols + c]);
      }
      const int64_t wq_j = int64_t(wv) * p.xq[1 + size_t(t) * p.cols + c];
      const int64_t wr_j = int64_t(wv) * p.xr[1 + size_t(t) * p.cols + c];
      isum += kResidualScale * wq_j + wr_j;
      iabs += kResidualScale * std::abs(wq_j) + std::abs(wr_j);
    }
    const double xd = p.xd[1 + size_t(t) * groups + g];
    double term;
    if (int4) {
      const double d = f16_to_f32(p.ws[(size_t(r) * groups + g) * 2]);
      const double mm = f16_to_f32(p.ws[(size_t(r) * groups + g) * 2 + 1]);
      const double xs = p.xs[1 + size_t(t) * groups + g];
      term = d * xd * double(isum) + mm * xs;
      m += std::fabs(d * xd) * double(iabs) + std::fabs(mm * xs);
    } else {
      const double d = f16_to_f32(p.ws[size_t(r) * groups + g]);
      term = d * xd * double(isum);
      m += std::fabs(d * xd) * double(iabs);
    }
    acc += term;
  }
  *y = acc;
  *mag = m;
}

void check_matmul(const KernelTable* k, const QProblem& p, Fill fill, uint32_t r0, uint32_t r1) {
  const size_t y_stride = p.rows + 3;  // odd stride between token rows
  std::vector<float> y(size_t(p.n_tokens) * y_stride, kNaN);
  matmul_for(*k, p.type)(p.w(), MatmulInput{nullptr, p.x()}, p.n_tokens, r0, r1, y.data(), y_stride);
  const uint32_t groups = p.cols / kGroup;
  const std::string shape = std::string(weight_type_name(p.type)) +
                            " rows=" + std::to_string(p.rows) + " cols=" + std::to_string(p.cols) +
                            " n_tokens=" + std::to_string(p.n_tokens) + " r=[" + std::to_string(r0) +
                            "," + std::to_string(r1) + ") fill=" + fill_name(fill);
  const std::string at = where(k, "matmul", shape);
  for (uint32_t t = 0; t < p.n_tokens; ++t)
    for (size_t i = 0; i < y_stride; ++i) {
      const float got = y[t * y_stride + i];
      if (i < r0 || i >= r1) {
        ASSERT_TRUE(std::isnan(got)) << at << " wrote outside its rows: t=" << t << " i=" << i;
        continue;
      }
      double ex, mag;
      exact_output(p, uint32_t(i), t, &ex, &mag);
      // Rigorous float-accumulation bound (see the top of the file).
      const double tol = double(groups + 10) * std::ldexp(1.0, -24) * mag;
      ASSERT_FALSE(std::isnan(got)) << at << " row " << i << " token " << t << " not written";
      ASSERT_LE(std::fabs(double(got) - ex), tol) << at << " row " << i << " token " << t
                                                  << " got " << got << " exact " << ex;
      // Powers of two everywhere: every product and partial sum is exact while
      // the magnitudes stay under 2^24 units of the smallest product (1/8).
      if (fill == Fill::kPow2 && mag < std::ldexp(1.0, 24) * 0.125) {
        ASSERT_EQ(double(got), ex) << at << " row " << i << " token " << t << " (exact case)";
      }
    }
}

// The quantized weight types, each run only where the variant has its product
// (SelectKernels.EveryVariantCoversEveryWeightType asserts that they all do).
const WeightType kQuantTypes[] = {WeightType::kInt8G32, WeightType::kInt4G32, WeightType::kInt5G32};

TEST_P(KernelVariantTest, MatmulQ8MatchesExactGroupSums) {
  for (WeightType type : kQuantTypes)
    for (uint32_t cols : {32u, 64u, 96u, 576u, 1536u, 4128u, 8224u})  // 8224: longer than an AVX2 decode slice
      for (uint32_t rows : {1u, 3u, 7u, 8u, 9u, 33u})
        for (uint32_t n_tokens : {1u, 2u, 3u, 5u, 17u})
          for (Fill fill : {Fill::kRandom, Fill::kAllMax, Fill::kAllMin, Fill::kOpposite, Fill::kZeroGroups, Fill::kPow2}) {
            // Keep the big shapes to fewer fills so the test stays quick.
            if (cols >= 1536 && rows * n_tokens > 40 && fill != Fill::kRandom && fill != Fill::kPow2) continue;
            if (cols > 4128 && rows * n_tokens > 40 && fill != Fill::kRandom) continue;
            if (!matmul_for(*k, type)) continue;
            const QProblem p = make_problem(type, rows, cols, n_tokens, fill, rng);
            check_matmul(k, p, fill, 0, rows);
            if (HasFatalFailure()) return;
          }
}

// Prefill past one register tile (6 tokens x 32 rows on AVX-512, 8 x 16 for
// a lone last block; 7 tokens run that 8-token tile padded), one x16 block
// (64 tokens) and one 16-row block, with rows and columns that leave tails.
TEST_P(KernelVariantTest, MatmulQ8LongPrefill) {
  for (WeightType type : kQuantTypes)
    for (uint32_t cols : {96u, 608u})
      for (uint32_t n_tokens : {7u, 9u, 64u, 70u, 131u}) {
        if (!matmul_for(*k, type)) continue;
        const QProblem p = make_problem(type, 37, cols, n_tokens, Fill::kRandom, rng);
        check_matmul(k, p, Fill::kRandom, 0, 37);
        check_matmul(k, p, Fill::kRandom, 3, 20);
        if (HasFatalFailure()) return;
      }
}

TEST_P(KernelVariantTest, MatmulQ8RowSubrange) {
  for (WeightType type : kQuantTypes)
    for (uint32_t n_tokens : {1u, 5u}) {
      if (!matmul_for(*k, type)) continue;
      const QProblem p = make_problem(type, 33, 576, n_tokens, Fill::kRandom, rng);
      check_matmul(k, p, Fill::kRandom, 5, 30);
      check_matmul(k, p, Fill::kRandom, 7, 8);
      if (HasFatalFailure()) return;
    }
}

// Batch invariance (issue 16): a token's outputs must not depend on which
// other tokens share the call, on how many there are, or on the row range a
// worker was given. Every token of a batch is recomputed in calls of 1 (the
// decode kernel) to 9 tokens from varying first rows, and compared bit for
// bit, for every variant (KernelTable::matmul's contract).
// kInt8G32R16 / kInt4G32R16 hold kInt8G32's / kInt4G32's bytes with rows
// interleaved by 16 (packed by tern-pack --layout r16). Every variant's
// product over them must equal the same variant's row-layout product bit for
// bit: the native AVX-512 / AMX kernels keep that variant's float order, the
// scalar one the reference's, and the others read them through the
// de-interleaving adapter. Token counts cover decode, the small-n and prefill
// paths (AMX tiles from 32), row ranges unaligned to 16 (a worker's share),
// and cols past one activation split (8224).
TEST_P(KernelVariantTest, MatmulR16EqualsRowLayoutBitExact) {
  uint32_t compared = 0;
  for (WeightType type : {WeightType::kInt8G32, WeightType::kInt4G32}) {
    const bool int8 = type == WeightType::kInt8G32;
    const WeightType r16_type = int8 ? WeightType::kInt8G32R16 : WeightType::kInt4G32R16;
    const MatmulFn rows_fn = matmul_for(*k, type), r16_fn = matmul_for(*k, r16_type);
    ASSERT_NE(r16_fn, nullptr) << k->name << " lacks the " << weight_type_name(r16_type) << " product";
    for (Fill fill : {Fill::kRandom, Fill::kAllMax, Fill::kOpposite, Fill::kZeroGroups})
      for (uint32_t cols : {32u, 576u, 1536u, 8224u})
        for (uint32_t n_tokens : {1u, 2u, 3u, 4u, 5u, 8u, 9u, 17u, 40u, 70u}) {
          if (cols == 8224 && n_tokens > 9) continue;  // keeps the emulated twins quick
          const uint32_t rows = cols == 8224 ? 32 : 48;
          const QProblem p = make_problem(type, rows, cols, n_tokens, fill, rng);
          const size_t q_bytes = int8 ? size_t(rows) * cols : size_t(rows) * cols / 2;
          std::vector<uint8_t> q16(q_bytes + 64);
          std::vector<uint16_t> s16(p.ws.size());
          if (int8)
            interleave_rows_int8_g32(reinterpret_cast<const int8_t*>(p.wq.data() + 1), p.ws.data(), rows, cols,
                                     reinterpret_cast<int8_t*>(q16.data() + 64), s16.data());
          else
            interleave_rows_int4_g32(p.wq.data() + 1, p.ws.data(), rows, cols, q16.data() + 64, s16.data());
          // +64: aligned as the blob's tensors are.
          const WeightMatrix w16{r16_type, rows, cols, q16.data() + 64, s16.data()};
          for (const auto& range : {std::pair<uint32_t, uint32_t>{0, rows}, {5, rows - 3}, {16, 32}, {17, 18}}) {
            std::vector<float> want(size_t(n_tokens) * rows, kNaN), got(size_t(n_tokens) * rows, kNaN);
            rows_fn(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, range.first, range.second, want.data(), rows);
            r16_fn(w16, MatmulInput{nullptr, p.x()}, n_tokens, range.first, range.second, got.data(), rows);
            for (size_t i = 0; i < got.size(); ++i) {
              ++compared;
              ASSERT_TRUE(same_bits(got[i], want[i]) || (std::isnan(got[i]) && std::isnan(want[i])))
                  << where(k, weight_type_name(r16_type), "cols=" + std::to_string(cols) + " fill " + fill_name(fill))
                  << " " << n_tokens << " tokens, rows [" << range.first << ", " << range.second << "): output " << i
                  << " (token " << i / rows << ", row " << i % rows << ") " << got[i] << " vs " << want[i];
            }
          }
        }
  }
  EXPECT_GT(compared, 200000u);
}

TEST_P(KernelVariantTest, MatmulTokenIndependentOfTheBatch) {
  uint32_t compared = 0;
  for (WeightType type : kQuantTypes)
    for (uint32_t cols : {64u, 576u, 1536u, 8224u})  // 8224: past one column slice of every variant
      for (uint32_t n_tokens : {2u, 3u, 8u, 17u, 70u}) {
        if (!matmul_for(*k, type)) continue;
        const uint32_t rows = 37, groups = cols / kGroup;
        const QProblem p = make_problem(type, rows, cols, n_tokens, Fill::kRandom, rng);
        std::vector<float> all(size_t(n_tokens) * rows, kNaN);
        matmul_for(*k, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, rows, all.data(), rows);
        const ActRowsQ8 x = p.x();
        for (uint32_t t0 = 0; t0 < n_tokens; t0 += 1 + t0 % 5) {
          const uint32_t span = std::min<uint32_t>(n_tokens - t0, 1 + (t0 * 7) % 9);
          const ActRowsQ8 xs{x.q + size_t(t0) * cols, x.r + size_t(t0) * cols, x.d + size_t(t0) * groups,
                             x.s + size_t(t0) * groups, cols};
          std::vector<float> part(size_t(span) * rows, kNaN);
          const uint32_t r0 = (t0 * 5) % 13;  // a worker's row range
          matmul_for(*k, type)(p.w(), MatmulInput{nullptr, xs}, span, r0, rows, part.data(), rows);
          for (uint32_t t = 0; t < span; ++t)
            for (uint32_t r = r0; r < rows; ++r) {
              const float got = part[size_t(t) * rows + r], want = all[size_t(t0 + t) * rows + r];
              ++compared;
              if (same_bits(got, want)) continue;
              FAIL() << where(k, "matmul", std::string(weight_type_name(type)) + " cols=" + std::to_string(cols))
                  << " token " << t0 + t << " of " << n_tokens << " computed in a call of " << span
                  << " from row " << r0 << ": row " << r << " " << got << " vs " << want;
            }
        }
      }
  EXPECT_GT(compared, 10000u);
}

// Single group, power-of-two scales: when every partial sum of the group is
// exactly representable (sum_g term_g < 2^24 units of 1/8, see check_matmul)
// no float operation rounds, so the variant must equal the scalar reference
// bit for bit. Edge planes (all-max etc.) with the 254 factor exceed that range
// (|isum| up to 32 * 127 * 127 * 255 ~ 2^27); those outputs are checked
// against the rigorous bound instead, and the test counts that the exact case
// is actually reached.
TEST_P(KernelVariantTest, MatmulQ8SingleGroupBitExactToScalar) {
  int exact_checked = 0;
  for (WeightType type : kQuantTypes)
    for (uint32_t n_tokens : {1u, 3u, 17u})
      for (Fill fill : {Fill::kPow2, Fill::kAllMax, Fill::kAllMin, Fill::kOpposite}) {
        if (!matmul_for(*k, type)) continue;
        QProblem p = make_problem(type, 9, 32, n_tokens, Fill::kPow2, rng);
        if (fill != Fill::kPow2) {  // edge values with power-of-two scales
          const QProblem e = make_problem(type, 9, 32, n_tokens, fill, rng);
          p.wq = e.wq;
          p.xq = e.xq;
          p.xr = e.xr;
          p.set_sums();
        }
        std::vector<float> ya(size_t(n_tokens) * 9, kNaN), yb(size_t(n_tokens) * 9, kNaN);
        matmul_for(s, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, 9, ya.data(), 9);
        matmul_for(*k, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, 9, yb.data(), 9);
        const std::string at = where(k, "matmul", std::string(weight_type_name(type)) +
                                                         " rows=9 cols=32 n_tokens=" + std::to_string(n_tokens) +
                                                         " fill=" + fill_name(fill));
        for (size_t i = 0; i < ya.size(); ++i) {
          double ex, mag;
          exact_output(p, uint32_t(i % 9), uint32_t(i / 9), &ex, &mag);
          if (mag < std::ldexp(1.0, 24) * 0.125) {
            ASSERT_TRUE(same_bits(ya[i], yb[i])) << at << " i=" << i << " scalar " << ya[i] << " variant " << yb[i];
            ASSERT_EQ(double(yb[i]), ex) << at << " i=" << i;
            ++exact_checked;
          } else {
            ASSERT_LE(std::fabs(double(yb[i]) - ex), 11 * std::ldexp(1.0, -24) * mag) << at << " i=" << i;
          }
        }
      }
  EXPECT_GT(exact_checked, 100) << where(k, "matmul", "single group") << " too few exact cases";
}

// quantize then matmul, end to end, against float math on the dequantized
// operands (catches a layout disagreement between the two kernels).
TEST_P(KernelVariantTest, QuantizeThenMatmulAgreesWithScalar) {
  const uint32_t rows = 17, cols = 576, n_tokens = 3;
  for (WeightType type : kQuantTypes) {
  if (!matmul_for(*k, type)) continue;
  const QProblem p = make_problem(type, rows, cols, n_tokens, Fill::kRandom, rng);
  std::vector<float> x(size_t(n_tokens) * cols);
  for (float& v : x) v = uniform(-2.0f, 2.0f);
  const uint32_t groups = cols / kGroup;
  std::vector<int8_t> q(size_t(n_tokens) * cols), r(q.size());
  std::vector<float> d(size_t(n_tokens) * groups), sm(size_t(n_tokens) * groups);
  std::vector<float> ya(size_t(n_tokens) * rows, kNaN), yb(size_t(n_tokens) * rows, kNaN);
  const ActRowsQ8 act{q.data(), r.data(), d.data(), sm.data(), cols};
  s.quantize_rows_q8(x.data(), n_tokens, cols, act);
  matmul_for(s, type)(p.w(), MatmulInput{nullptr, act}, n_tokens, 0, rows, ya.data(), rows);
  k->quantize_rows_q8(x.data(), n_tokens, cols, act);
  matmul_for(*k, type)(p.w(), MatmulInput{nullptr, act}, n_tokens, 0, rows, yb.data(), rows);
  for (size_t i = 0; i < ya.size(); ++i)
    ASSERT_NEAR(ya[i], yb[i], 1e-4f * (1.0f + std::fabs(ya[i])))  // float order only
        << where(k, "quantize+matmul", std::string(weight_type_name(type)) + " rows=17 cols=576 n_tokens=3")
        << " i=" << i;
  }
}

// ---- float ops --------------------------------------------------------------------

TEST_P(KernelVariantTest, MatmulF32) {
  for (uint32_t cols : {1u, 7u, 16u, 33u, 576u})
    for (uint32_t rows : {1u, 5u, 9u})
      for (uint32_t n_tokens : {1u, 4u}) {
        std::vector<float> W(size_t(rows) * cols), x(size_t(n_tokens) * cols + 1);
        for (float& v : W) v = uniform(-1, 1);
        for (float& v : x) v = uniform(-1, 1);
        const WeightMatrix w{WeightType::kF32, rows, cols, W.data(), nullptr};
        std::vector<float> ya(size_t(n_tokens) * rows, kNaN), yb(ya);
        const MatmulInput in{x.data() + 1, ActRowsQ8{}};
        matmul_for(s, WeightType::kF32)(w, in, n_tokens, 0, rows, ya.data(), rows);
        matmul_for(*k, WeightType::kF32)(w, in, n_tokens, 0, rows, yb.data(), rows);
        for (uint32_t t = 0; t < n_tokens; ++t)
          for (uint32_t r = 0; r < rows; ++r) {
            double mag = 0;
            for (uint32_t c = 0; c < cols; ++c) mag += std::fabs(W[r * cols + c] * x[1 + t * cols + c]);
            ASSERT_NEAR(ya[t * rows + r], yb[t * rows + r], 1e-5 * mag + 1e-30)
                << where(k, "matmul_f32", "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                                               " n_tokens=" + std::to_string(n_tokens));
          }
      }
}

TEST_P(KernelVariantTest, Rmsnorm) {
  for (uint32_t n : {1u, 7u, 8u, 33u, 576u, 1536u}) {
    std::vector<float> x(n + 1), w(n), ya(n, kNaN), yb(n, kNaN);
    for (float& v : x) v = uniform(-10, 10);
    for (float& v : w) v = uniform(0.5f, 1.5f);
    s.rmsnorm(x.data() + 1, w.data(), n, 1e-5f, ya.data());
    k->rmsnorm(x.data() + 1, w.data(), n, 1e-5f, yb.data());
    for (uint32_t i = 0; i < n; ++i)
      ASSERT_NEAR(ya[i], yb[i], 1e-5f * std::fabs(ya[i]) + 1e-6f) << where(k, "rmsnorm", "n=" + std::to_string(n)) << " i=" << i;
    // In place (out aliases x).
    std::vector<float> z(x.begin() + 1, x.end());
    k->rmsnorm(z.data(), w.data(), n, 1e-5f, z.data());
    for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(z[i], yb[i]) << where(k, "rmsnorm", "in place n=" + std::to_string(n));
  }
}

TEST_P(KernelVariantTest, Rope) {
  struct Shape { uint32_t heads, head_dim, rope_dim; };
  for (Shape sh : {Shape{9, 64, 64}, Shape{3, 64, 32}, Shape{2, 10, 10}, Shape{1, 40, 24}, Shape{4, 128, 128}})
    for (bool adjacent : {true, false}) {
      const size_t n = size_t(sh.heads) * sh.head_dim;
      std::vector<float> x(n), cs(sh.rope_dim);
      for (float& v : x) v = uniform(-3, 3);
      for (uint32_t i = 0; i < sh.rope_dim / 2; ++i) {
        const float a = uniform(-100, 100);
        cs[2 * i] = std::cos(a);
        cs[2 * i + 1] = std::sin(a);
      }
      std::vector<float> ya(x), yb(x);
      s.rope(ya.data(), sh.heads, sh.head_dim, sh.rope_dim, cs.data(), adjacent);
      k->rope(yb.data(), sh.heads, sh.head_dim, sh.rope_dim, cs.data(), adjacent);
      const std::string at = where(k, "rope", "heads=" + std::to_string(sh.heads) + " head_dim=" + std::to_string(sh.head_dim) +
                                                  " rope_dim=" + std::to_string(sh.rope_dim) + (adjacent ? " adjacent" : " halves"));
      for (size_t i = 0; i < n; ++i) {
        const uint32_t d = uint32_t(i % sh.head_dim);
        if (d >= sh.rope_dim) {
          ASSERT_EQ(yb[i], x[i]) << at << " touched dim " << d;
          continue;
        }
        // The two inputs of the pair this element belongs to.
        const uint32_t half = sh.rope_dim / 2;
        const size_t base = i - d;
        uint32_t a0, a1;
        if (adjacent) { a0 = d & ~1u; a1 = a0 + 1; } else { a0 = d % half; a1 = a0 + half; }
        const float mag = std::fabs(x[base + a0]) + std::fabs(x[base + a1]);
        ASSERT_NEAR(ya[i], yb[i], 1e-6f * mag + 1e-30f) << at << " i=" << i;
      }
    }
}

TEST_P(KernelVariantTest, Softmax) {
  for (uint32_t n : {1u, 5u, 8u, 17u, 100u, 1000u})
    for (float range : {1.0f, 30.0f, 200.0f}) {
      std::vector<float> x(n + 1);
      for (float& v : x) v = uniform(-range, range);
      std::vector<float> ya(x.begin() + 1, x.end()), yb(ya);
      s.softmax(ya.data(), n);
      k->softmax(yb.data(), n);
      for (uint32_t i = 0; i < n; ++i)
        ASSERT_NEAR(ya[i], yb[i], 2e-6f * ya[i] + 1e-9f)
            << where(k, "softmax", "n=" + std::to_string(n) + " range=" + std::to_string(range)) << " i=" << i;
    }
}

TEST_P(KernelVariantTest, SiluMul) {
  for (uint32_t n : {1u, 9u, 64u, 1536u}) {
    std::vector<float> g(n), up(n);
    for (uint32_t i = 0; i < n; ++i) {
      g[i] = (i % 13 == 0) ? uniform(-120, 120) : uniform(-20, 20);
      up[i] = uniform(-4, 4);
    }
    std::vector<float> ya(g), yb(g);
    s.silu_mul(ya.data(), up.data(), n);
    k->silu_mul(yb.data(), up.data(), n);
    for (uint32_t i = 0; i < n; ++i)
      ASSERT_NEAR(ya[i], yb[i], 2e-6f * std::fabs(ya[i]) + 1e-30f)
          << where(k, "silu_mul", "n=" + std::to_string(n)) << " i=" << i << " gate=" << g[i];
  }
}

TEST_P(KernelVariantTest, GeluMul) {
  // Odd sizes, large |g| (tanh saturates, exp(-2u) overflows to inf), tiny g,
  // and exact zeros.
  for (uint32_t n : {1u, 7u, 9u, 64u, 2049u}) {
    std::vector<float> g(n), up(n);
    for (uint32_t i = 0; i < n; ++i) {
      g[i] = (i % 13 == 0) ? uniform(-120, 120) : (i % 17 == 0) ? uniform(-1e-5f, 1e-5f) : uniform(-8, 8);
      if (i % 29 == 0) g[i] = 0.0f;
      up[i] = uniform(-4, 4);
    }
    std::vector<float> ya(g), yb(g);
    s.gelu_mul(ya.data(), up.data(), n);
    k->gelu_mul(yb.data(), up.data(), n);
    for (uint32_t i = 0; i < n; ++i)
      // Absolute term: for g < -4 the reference's 1 + tanh(u) cancels
      // (|error| <= |g up| 2^-24 ~ 5e-7 |up|); the sigmoid form does not.
      ASSERT_NEAR(ya[i], yb[i], 4e-6f * std::fabs(ya[i]) + 1e-6f * std::fabs(up[i]) + 1e-30f)
          << where(k, "gelu_mul", "n=" + std::to_string(n)) << " i=" << i << " gate=" << g[i];
  }
  // The reference itself against double-precision GELU-tanh.
  for (float x : {-6.0f, -2.5f, -1.0f, -0.1f, 0.0f, 0.3f, 1.0f, 2.0f, 5.0f}) {
    float g = x;
    const float up = 1.0f;
    s.gelu_mul(&g, &up, 1);
    const double u = std::sqrt(2.0 / M_PI) * (double(x) + 0.044715 * double(x) * x * x);
    ASSERT_NEAR(g, 0.5 * x * (1.0 + std::tanh(u)), 1e-6) << "x=" << x;
  }
}

// ---- paged KV ------------------------------------------------------------------------

struct KvFixture {
  uint32_t kv_heads, head_dim, block_tokens, n_blocks;
  std::vector<uint16_t> k, v;
  std::vector<uint32_t> table;
  size_t stride() const { return size_t(block_tokens) * kv_heads * head_dim + 5; }  // padded blocks
  PagedKv view() const {
    return PagedKv{k.data(), v.data(), stride(), table.data(), block_tokens, kv_heads, head_dim};
  }
};

KvFixture make_kv(uint32_t kv_heads, uint32_t head_dim, uint32_t block_tokens, uint32_t n_ctx, std::mt19937& rng) {
  KvFixture f{kv_heads, head_dim, block_tokens, 0, {}, {}, {}};
  const uint32_t used = (n_ctx + block_tokens - 1) / block_tokens;
  f.n_blocks = used + 3;
  for (uint32_t b = 0; b < used; ++b) f.table.push_back(f.n_blocks - 1 - b * 1);  // reversed blocks
  std::shuffle(f.table.begin(), f.table.end(), rng);
  f.k.assign(f.n_blocks * f.stride(), 0x7e00);  // NaN f16 in slots never written
  f.v.assign(f.n_blocks * f.stride(), 0x7e00);
  return f;
}

TEST_P(KernelVariantTest, KvStoreBitExact) {
  for (uint32_t head_dim : {64u, 12u}) {
    KvFixture a = make_kv(3, head_dim, 16, 40, rng), b = a;
    std::vector<float> kk(3 * head_dim), vv(3 * head_dim);
    for (uint32_t pos = 0; pos < 40; ++pos) {
      for (uint32_t i = 0; i < kk.size(); ++i) {
        kk[i] = uniform(-4, 4) * (i % 7 == 0 ? 1e-6f : 1.0f);  // some f16 subnormals
        vv[i] = (i % 11 == 0) ? uniform(-7e4f, 7e4f) : uniform(-4, 4);  // some overflow to inf
      }
      s.kv_store(a.view(), a.k.data(), a.v.data(), pos, kk.data(), vv.data());
      k->kv_store(b.view(), b.k.data(), b.v.data(), pos, kk.data(), vv.data());
    }
    ASSERT_TRUE(a.k == b.k) << where(k, "kv_store", "kv_heads=3 head_dim=" + std::to_string(head_dim));
    ASSERT_TRUE(a.v == b.v) << where(k, "kv_store", "kv_heads=3 head_dim=" + std::to_string(head_dim));
  }
}

TEST_P(KernelVariantTest, Attention) {
  struct Shape { uint32_t heads, kv_heads, head_dim, block_tokens, n_ctx; };
  for (Shape sh : {Shape{9, 3, 64, 16, 1}, Shape{9, 3, 64, 16, 17}, Shape{9, 3, 64, 16, 100},
                   Shape{4, 4, 12, 3, 10}, Shape{8, 2, 128, 32, 65},
                   // head_dim 72: one full 64-float register tile and one of 8;
                   // 1000 positions: long sums; 5 rows per block: a 4-row step and one left over
                   Shape{6, 2, 72, 8, 33}, Shape{9, 3, 64, 16, 1000}, Shape{3, 1, 20, 5, 23},
                   // Gemma 3's heads (4 per KV head, 256 dims); 7 heads per KV head
                   // (done 4 + 3) with 64-token blocks (two 32-position chunks each)
                   Shape{4, 1, 256, 16, 600}, Shape{14, 2, 256, 64, 300}})
    for (uint32_t h_split : {0u, 1u}) {
      KvFixture kv = make_kv(sh.kv_heads, sh.head_dim, sh.block_tokens, sh.n_ctx, rng);
      std::vector<float> kk(sh.kv_heads * sh.head_dim), vv(kk.size());
      for (uint32_t pos = 0; pos < sh.n_ctx; ++pos) {
        for (float& x : kk) x = uniform(-2, 2);
        for (float& x : vv) x = uniform(-2, 2);
        s.kv_store(kv.view(), kv.k.data(), kv.v.data(), pos, kk.data(), vv.data());
      }
      std::vector<float> q(size_t(sh.heads) * sh.head_dim);
      for (float& x : q) x = uniform(-2, 2);
      const uint32_t h0 = h_split ? 1 : 0, h1 = h_split ? sh.heads - 1 : sh.heads;
      // Sliding windows: from the start, inside the first block, at a block
      // boundary, mid-way, only the last position.
      const uint32_t firsts[] = {0, 1, sh.block_tokens, sh.n_ctx / 2 + 1, sh.n_ctx - 1};
      for (uint32_t first : firsts) {
      if (first >= sh.n_ctx) continue;
      std::vector<float> oa(q.size(), kNaN), ob(q.size(), kNaN), scratch(sh.n_ctx - first, kNaN);
      const float scale = 1.0f / std::sqrt(float(sh.head_dim));
      AttentionArgs args{q.data(), oa.data(), scratch.data(), sh.heads, h0, h1, sh.n_ctx, scale};
      args.first = first;
      s.attention(kv.view(), args);
      args.out = ob.data();
      k->attention(kv.view(), args);
      const std::string at = where(k, "attention", "heads=" + std::to_string(sh.heads) + " kv_heads=" + std::to_string(sh.kv_heads) +
                                                       " head_dim=" + std::to_string(sh.head_dim) + " n_ctx=" + std::to_string(sh.n_ctx) +
                                                       " first=" + std::to_string(first) +
                                                       " h=[" + std::to_string(h0) + "," + std::to_string(h1) + ")");
      for (size_t i = 0; i < q.size(); ++i) {
        const uint32_t h = uint32_t(i / sh.head_dim);
        if (h < h0 || h >= h1) {
          ASSERT_TRUE(std::isnan(ob[i])) << at << " wrote head " << h;
          continue;
        }
        // |v| <= 2 (stored as f16) and the p sum to 1: 2e-5 * 2 + 1e-6.
        ASSERT_NEAR(oa[i], ob[i], 4e-5f + 1e-6f) << at << " i=" << i;
      }
      }
    }
}

// A window over the last positions equals full attention over a cache that
// holds only those positions: the scalar reference's `first` checked
// against itself, by content rather than by index arithmetic.
TEST_P(KernelVariantTest, AttentionWindowEqualsShorterCache) {
  const uint32_t heads = 4, kv_heads = 2, head_dim = 32, block_tokens = 4, n_ctx = 23, first = 9;
  KvFixture full = make_kv(kv_heads, head_dim, block_tokens, n_ctx, rng);
  KvFixture tail = make_kv(kv_heads, head_dim, block_tokens, n_ctx - first, rng);
  std::vector<float> kk(kv_heads * head_dim), vv(kk.size());
  for (uint32_t pos = 0; pos < n_ctx; ++pos) {
    for (float& x : kk) x = uniform(-2, 2);
    for (float& x : vv) x = uniform(-2, 2);
    s.kv_store(full.view(), full.k.data(), full.v.data(), pos, kk.data(), vv.data());
    if (pos >= first) s.kv_store(tail.view(), tail.k.data(), tail.v.data(), pos - first, kk.data(), vv.data());
  }
  std::vector<float> q(heads * head_dim), oa(q.size()), ob(q.size()), scratch(n_ctx);
  for (float& x : q) x = uniform(-2, 2);
  AttentionArgs args{q.data(), oa.data(), scratch.data(), heads, 0, heads, n_ctx, 0.2f};
  args.first = first;
  k->attention(full.view(), args);
  AttentionArgs whole{q.data(), ob.data(), scratch.data(), heads, 0, heads, n_ctx - first, 0.2f};
  s.attention(tail.view(), whole);
  for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(oa[i], ob[i], 5e-5f) << where(k, "attention", "window") << " i=" << i;
}

std::string variant_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n = variant(info.param).name;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, KernelVariantTest, ::testing::Range<size_t>(0, variant_count()), variant_name);

// ---- dispatch ---------------------------------------------------------------------------

TEST(SelectKernels, ScalarIsLastAndAlwaysAvailable) {
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  ASSERT_GE(n, 1u);
  EXPECT_STREQ(v[n - 1].name, "scalar");
  EXPECT_EQ(v[n - 1].required_isa, 0u);
  EXPECT_EQ(v[n - 1].table, &scalar_kernels());
  EXPECT_EQ(select_kernels(0, nullptr), &scalar_kernels());
  EXPECT_EQ(select_kernels(0, "auto"), &scalar_kernels());
  EXPECT_EQ(select_kernels(0, "scalar"), &scalar_kernels());
  for (size_t i = 0; i < n; ++i) {
    EXPECT_STREQ(v[i].name, v[i].table->name);
    const KernelTable& t = *v[i].table;
    EXPECT_TRUE(t.quantize_rows_q8 && t.rmsnorm && t.rope && t.softmax && t.silu_mul && t.attention &&
                t.kv_store && t.gelu_mul)
        << "variant " << t.name << " has an empty slot";
  }
}

// The runtime refuses a blob whose weight type the chosen variant lacks
// (tests/model/kernel_coverage_test.cc); every variant shipped here covers all
// of them, so no blob tern-pack writes is refused on any CPU.
TEST(SelectKernels, EveryVariantCoversEveryWeightType) {
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  size_t ne = 0;
  const KernelVariant* e = emulated_kernel_variants(&ne);
  std::vector<const KernelVariant*> all;
  for (size_t i = 0; i < n; ++i) all.push_back(&v[i]);
  for (size_t i = 0; i < ne; ++i) all.push_back(&e[i]);
  for (const KernelVariant* kv : all)
    for (uint32_t t = 0; t < kWeightTypeCount; ++t)
      EXPECT_NE(matmul_for(*kv->table, WeightType(t)), nullptr)
          << "variant " << kv->name << " lacks the " << weight_type_name(WeightType(t)) << " product";
  EXPECT_EQ(matmul_for(scalar_kernels(), WeightType(kWeightTypeCount)), nullptr) << "out-of-range type";
}

// An emulated twin ("X-emulated") stands in for X on CPUs without it, so it
// must compute what X computes, bit for bit: where this CPU has X, compare
// the two on every quantized product, decode and prefill shapes with tails.
TEST(SelectKernels, EmulatedTwinsBitExactToTheirVariant) {
  size_t ne = 0;
  const KernelVariant* e = emulated_kernel_variants(&ne);
  std::mt19937 rng(777);
  size_t compared = 0;
  for (size_t i = 0; i < ne; ++i) {
    std::string name = e[i].name;
    const std::string suffix = "-emulated";
    ASSERT_GT(name.size(), suffix.size()) << name;
    ASSERT_EQ(name.substr(name.size() - suffix.size()), suffix) << name;
    name.resize(name.size() - suffix.size());
    const KernelTable* native = select_kernels(host_isa(), name.c_str());
    if (native == nullptr) continue;  // this CPU lacks it: only the emulation runs
    for (WeightType type : kQuantTypes)
      for (uint32_t cols : {32u, 608u, 8224u})
        for (uint32_t n_tokens : {1u, 3u, 5u, 17u, 70u}) {
          if (cols == 8224u && n_tokens > 5) continue;
          const QProblem p = make_problem(type, 35, cols, n_tokens, Fill::kRandom, rng);
          std::vector<float> a(size_t(n_tokens) * 35), b(a.size());
          matmul_for(*native, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, 35, a.data(), 35);
          matmul_for(*e[i].table, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, 35, b.data(), 35);
          ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0)
              << name << " vs " << e[i].name << " " << weight_type_name(type) << " cols=" << cols
              << " n_tokens=" << n_tokens;
          ++compared;
        }
  }
  if (compared == 0) GTEST_SKIP() << "this CPU has none of the emulated variants";
}

// Weight value of row r, column c, as the reference reads it.
int weight_value(const QProblem& p, uint32_t r, uint32_t c) {
  if (p.type == WeightType::kInt8G32) return int8_t(p.wq[1 + size_t(r) * p.cols + c]);
  const uint8_t b = p.wq[1 + size_t(r) * p.cols / 2 + (c / kGroup) * 16 + (c % 16)];
  int v = (c % kGroup) < 16 ? (b & 15) : (b >> 4);
  if (p.type == WeightType::kInt5G32) {
    const uint8_t h = p.wq[1 + size_t(p.rows) * p.cols / 2 + size_t(r) * p.cols / 8 + c / 8];
    v |= ((h >> (c % 8)) & 1) << 4;
  }
  return v;
}

// The reference formula with every float operation rounded on its own
// (volatile intermediates: no multiply-add can be fused, whatever the
// compiler's -ffp-contract default on this target):
//   y += (d_w * x_d) * float(isum) [+ m_w * x_s], groups in order, from 0.
float unfused_reference(const QProblem& p, uint32_t r, uint32_t t) {
  const uint32_t groups = p.cols / kGroup;
  const bool with_min = p.type != WeightType::kInt8G32;
  volatile float y = 0.0f;
  for (uint32_t g = 0; g < groups; ++g) {
    int32_t sum_q = 0, sum_r = 0;
    for (uint32_t j = 0; j < kGroup; ++j) {
      const uint32_t c = g * kGroup + j;
      sum_q += weight_value(p, r, c) * p.xq[1 + size_t(t) * p.cols + c];
      sum_r += weight_value(p, r, c) * p.xr[1 + size_t(t) * p.cols + c];
    }
    const float xd = p.xd[1 + size_t(t) * groups + g];
    const float d = f16_to_f32(p.ws[(size_t(r) * groups + g) * (with_min ? 2 : 1)]);
    volatile float scale = d * xd;
    volatile float term = scale * float(kResidualScale * sum_q + sum_r);
    if (with_min) {
      const float m = f16_to_f32(p.ws[(size_t(r) * groups + g) * 2 + 1]);
      volatile float ms = m * p.xs[1 + size_t(t) * groups + g];
      term = term + ms;
    }
    y = y + term;
  }
  return y;
}

// neon-i8mm's prefill keeps the reference's float steps in its order (a slice
// of groups resumes from the y the previous one stored) and is built with
// -ffp-contract=off, so it and its emulated twin must equal the unfused
// reference formula bit for bit, not only within the float bound. Shapes
// around its edges: 2x2 smmla blocks (odd rows and tokens), 6-row x 4-token
// tiles, 24-row panels, 16-group slices, the 4-token prefill threshold (3
// tokens: the dotprod / scalar decode, skipped here), row subranges; edge
// planes (all-max: the largest integer group sums).
TEST(SelectKernels, NeonI8mmPrefillBitExactToUnfusedReference) {
  std::vector<const KernelVariant*> runnable;
  size_t n = 0, ne = 0;
  const KernelVariant* v = kernel_variants(&n);
  const KernelVariant* e = emulated_kernel_variants(&ne);
  for (size_t i = 0; i < n + ne; ++i) {
    const KernelVariant* kv = i < n ? &v[i] : &e[i - n];
    if (std::string(kv->name).rfind("neon-i8mm", 0) == 0 && (kv->required_isa & host_isa()) == kv->required_isa)
      runnable.push_back(kv);
  }
  if (runnable.empty()) GTEST_SKIP() << "neon-i8mm and its twin are not built or this CPU cannot run them";
  std::mt19937 rng(4242);
  size_t compared = 0;
  for (WeightType type : kQuantTypes)
    for (uint32_t rows : {1u, 2u, 5u, 6u, 7u, 12u, 25u, 31u, 49u})
      for (uint32_t cols : {32u, 512u, 544u, 1056u})
        for (uint32_t n_tokens : {4u, 5u, 6u, 7u, 8u, 13u})
          for (Fill fill : {Fill::kRandom, Fill::kAllMax, Fill::kOpposite, Fill::kZeroGroups}) {
            if (fill != Fill::kRandom && (cols > 544 || rows > 25)) continue;
            const QProblem p = make_problem(type, rows, cols, n_tokens, fill, rng);
            const uint32_t r0 = rows > 7 ? 3 : 0;
            std::vector<float> want(size_t(n_tokens) * (rows + 1), kNaN);
            for (uint32_t t = 0; t < n_tokens; ++t)
              for (uint32_t r = r0; r < rows; ++r) want[size_t(t) * (rows + 1) + r] = unfused_reference(p, r, t);
            for (const KernelVariant* kv : runnable) {
              std::vector<float> got(want.size(), kNaN);
              matmul_for(*kv->table, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, r0, rows, got.data(),
                                           rows + 1);
              for (size_t i = 0; i < want.size(); ++i)
                ASSERT_TRUE(same_bits(want[i], got[i]))
                    << kv->name << " " << weight_type_name(type) << " rows=" << rows << " cols=" << cols
                    << " n_tokens=" << n_tokens << " fill=" << fill_name(fill) << " token " << i / (rows + 1)
                    << " row " << i % (rows + 1) << ": want " << want[i] << " got " << got[i];
              ++compared;
            }
          }
  EXPECT_GE(compared, 900u * runnable.size());
}

// The AMX prefill finishes each group's exact integer sums with the float
// operations of the AVX-512 prefill, in the same order and slices, so the two
// variants agree bit for bit on every shape (the emulated pair where the CPU
// lacks them): a switch between the two changes no output.
TEST(SelectKernels, AmxPrefillBitExactToAvx512Vnni) {
  size_t ne = 0;
  const KernelVariant* e = emulated_kernel_variants(&ne);
  const KernelTable* amx = select_kernels(host_isa(), "amx");
  const KernelTable* vnni512 = select_kernels(host_isa(), "avx512vnni");
  if (amx == nullptr || vnni512 == nullptr) {
    amx = vnni512 = nullptr;
    for (size_t i = 0; i < ne; ++i) {
      if (std::string(e[i].name) == "amx-emulated") amx = e[i].table;
      if (std::string(e[i].name) == "avx512vnni-emulated") vnni512 = e[i].table;
    }
  }
  if (amx == nullptr || vnni512 == nullptr) GTEST_SKIP() << "no AMX build (the compiler lacks -mamx-int8)";
  SCOPED_TRACE(std::string(amx->name) + " vs " + vnni512->name);
  std::mt19937 rng(4242);
  for (WeightType type : kQuantTypes)
    for (uint32_t rows : {16u, 35u, 131u})
      for (uint32_t cols : {32u, 96u, 608u, 1056u})
        for (uint32_t n_tokens : {16u, 31u, 70u}) {
          if (rows == 131u && cols > 96u) continue;
          const QProblem p = make_problem(type, rows, cols, n_tokens, Fill::kRandom, rng);
          std::vector<float> a(size_t(n_tokens) * rows), b(a.size());
          matmul_for(*amx, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, rows, a.data(), rows);
          matmul_for(*vnni512, type)(p.w(), MatmulInput{nullptr, p.x()}, n_tokens, 0, rows, b.data(), rows);
          ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0)
              << weight_type_name(type) << " rows=" << rows << " cols=" << cols << " n_tokens=" << n_tokens;
        }
}

TEST(SelectKernels, AutoPicksFirstSupportedAndNamesRespectIsa) {
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  const uint32_t isa = host_isa();
  const KernelTable* best = nullptr;
  for (size_t i = 0; i < n && !best; ++i)
    if ((v[i].required_isa & isa) == v[i].required_isa) best = v[i].table;
  EXPECT_EQ(select_kernels(isa, nullptr), best);
  EXPECT_EQ(select_kernels(isa, "auto"), best);
  // Every variant is selectable by name with all ISA bits, and refused without them.
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(select_kernels(0xffffffffu, v[i].name), v[i].table) << v[i].name;
    if (v[i].required_isa != 0) {
      EXPECT_EQ(select_kernels(0, v[i].name), nullptr) << v[i].name;
      EXPECT_EQ(select_kernels(~v[i].required_isa, v[i].name), nullptr) << v[i].name;
    }
  }
  // With everything available, auto is the first listed.
  EXPECT_EQ(select_kernels(0xffffffffu, "auto"), v[0].table);
  EXPECT_EQ(select_kernels(isa, "no-such-variant"), nullptr);
  EXPECT_EQ(select_kernels(isa, ""), nullptr);
#if defined(__x86_64__)
  if (isa & kIsaAvx2) {
    ASSERT_NE(select_kernels(isa, "avx2"), nullptr) << "x86 build with an AVX2 CPU must list avx2";
    // amx / avxvnni / avx512vnni are compiled in whenever the compiler knows
    // -mamx-int8 (GCC >= 11) / -mavxvnni (GCC >= 11) / -mavx512vnni (GCC >= 8);
    // AMX is preferred, then AVX-512.
    const bool amx = (isa & kIsaAmxInt8) != 0 && select_kernels(isa, "amx") != nullptr;
    const bool vnni512 = (isa & kIsaAvx512Vnni) != 0 && select_kernels(isa, "avx512vnni") != nullptr;
    const bool vnni = (isa & kIsaAvxVnni) != 0 && select_kernels(isa, "avxvnni") != nullptr;
    EXPECT_STREQ(select_kernels(isa, nullptr)->name,
                 amx ? "amx" : vnni512 ? "avx512vnni" : vnni ? "avxvnni" : "avx2");
  }
  // AMX needs the AVX-512 VNNI kernels it falls back to, and the OS grant.
  if (select_kernels(0xffffffffu, "amx") != nullptr) {
    EXPECT_EQ(select_kernels(kIsaAvx2 | kIsaAvx512Vnni, "amx"), nullptr);
    EXPECT_EQ(select_kernels(kIsaAvx2 | kIsaAmxInt8, "amx"), nullptr);
    EXPECT_NE(select_kernels(kIsaAvx2 | kIsaAvx512Vnni | kIsaAmxInt8, "amx"), nullptr);
  }
  // A CPU with AVX2 (and AVX-VNNI) but without AVX-512 VNNI is refused it by name.
  if (select_kernels(0xffffffffu, "avx512vnni") != nullptr) {
    EXPECT_EQ(select_kernels(kIsaAvx2 | kIsaAvxVnni, "avx512vnni"), nullptr);
    EXPECT_NE(select_kernels(kIsaAvx2 | kIsaAvx512Vnni, "avx512vnni"), nullptr);
  }
  // A CPU with AVX2 but without AVX-VNNI is refused "avxvnni" by name.
  if (select_kernels(0xffffffffu, "avxvnni") != nullptr) {
    EXPECT_EQ(select_kernels(kIsaAvx2, "avxvnni"), nullptr);
    EXPECT_NE(select_kernels(kIsaAvx2 | kIsaAvxVnni, "avxvnni"), nullptr);
  }
#endif
  // Emulated stand-ins are never selectable and never shadow a real variant.
  size_t ne = 0;
  const KernelVariant* e = emulated_kernel_variants(&ne);
  for (size_t i = 0; i < ne; ++i) {
    EXPECT_EQ(select_kernels(0xffffffffu, e[i].name), nullptr) << e[i].name;
    EXPECT_STREQ(e[i].name, e[i].table->name);
  }
#if defined(__x86_64__)
  EXPECT_GE(ne, 3u) << "x86 builds test the AVX-VNNI, AVX-512 VNNI and AMX kernels through their emulated twins";
#endif
}

}  // namespace
}  // namespace tern
