// int8 KV cache kernels (KernelTable::kv_store_i8, attention_i8kv; layout in
// kernels/kernels.h): every variant compiled in against the scalar reference,
// and the reference against f16 attention for the accuracy int8 costs.
//
// Tolerances (each stated where it is checked):
//   kv_store_i8  bit-exact to the reference; |H x - d q| <= d / 2, d = absmax(H x) / 127
//   attention_i8kv vs the reference: the integer dot products are exact, the
//                floats differ in order and exp (~2e-7 relative), which can
//                move a 7-bit tile weight w8 across a rounding boundary: one
//                step changes out by at most wd * 127 / l <= amax(V) / (127 l)
//                (l = sum of exp(s - max s) >= 1). Bound: 1e-4 * amax(V) +
//                2 such steps.
//   int8 vs f16 attention (random data, |x| <= 2): max |diff| <= 0.03
//                (measured 0.005-0.019 on the shapes below; 0.004-0.014
//                without the rotation: uniform data has no outliers to
//                spread, and its rotation is Gaussian, with a larger absmax);
//                with a K and a V channel at +-40: <= 0.4 (measured 0.10 and
//                0.27; 0.54 and 1.7 without the rotation).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ref/kernels_ref.h"  // kv_rotate, kv_rotation_block
#include "runtime/engine.h"  // host_isa_bits

namespace tern {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

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

// Blocks of int8 KV: bytes never written are 0xff (values 127, NaN scales),
// so a kernel that reads a lane outside [first, n_ctx) and uses it shows.
struct KvI8 {
  uint32_t kv_heads, head_dim, block_tokens, n_blocks;
  std::vector<uint8_t> k, v;
  std::vector<uint32_t> table;
  size_t stride() const { return kv_i8_block_bytes(block_tokens, kv_heads, head_dim) + 64; }  // padded blocks
  PagedKv view() const {
    PagedKv p{nullptr, nullptr, stride(), table.data(), block_tokens, kv_heads, head_dim};
    p.type = KvType::kInt8;
    p.k_i8 = k.data();
    p.v_i8 = v.data();
    return p;
  }
  void store(const KernelTable& t, uint32_t pos, const float* kk, const float* vv) {
    t.kv_store_i8(view(), k.data(), v.data(), pos, kk, vv);
  }
};

KvI8 make_kv(uint32_t kv_heads, uint32_t head_dim, uint32_t block_tokens, uint32_t n_ctx, std::mt19937& rng) {
  KvI8 f{kv_heads, head_dim, block_tokens, 0, {}, {}, {}};
  const uint32_t used = (n_ctx + block_tokens - 1) / block_tokens;
  f.n_blocks = used + 3;
  for (uint32_t b = 0; b < used; ++b) f.table.push_back(f.n_blocks - 1 - b);
  std::shuffle(f.table.begin(), f.table.end(), rng);
  f.k.assign(f.n_blocks * f.stride(), 0xff);
  f.v.assign(f.n_blocks * f.stride(), 0xff);
  return f;
}

// f16 KV with the same contents, for the accuracy comparison.
struct KvF16 {
  uint32_t kv_heads, head_dim, block_tokens;
  std::vector<uint16_t> k, v;
  std::vector<uint32_t> table;
  PagedKv view() const {
    return PagedKv{k.data(), v.data(), size_t(block_tokens) * kv_heads * head_dim, table.data(), block_tokens,
                   kv_heads, head_dim};
  }
};

class AttentionI8Test : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    const KernelVariant& v = variant(GetParam());
    if ((v.required_isa & host_isa_bits()) != v.required_isa)
      GTEST_SKIP() << "variant '" << v.name << "' needs ISA bits 0x" << std::hex << v.required_isa
                   << " but this CPU has 0x" << host_isa_bits();
    k = v.table;
  }
  const KernelTable* k = nullptr;
  const KernelTable& s = scalar_kernels();
  std::mt19937 rng{4242};
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
};

std::string where(const KernelTable* k, const char* op, const std::string& shape) {
  return std::string("variant=") + k->name + " op=" + op + " " + shape;
}

float f32_at(const uint8_t* p) {
  float x;
  std::memcpy(&x, p, 4);
  return x;
}

// H x for the Walsh-Hadamard rotation of kernels.h, written independently of
// ref::kv_rotate: H[i][j] = (-1)^popcount(i & j) / sqrt(b) on each run of b.
std::vector<double> hadamard(const float* x, uint32_t n, uint32_t b) {
  std::vector<double> y(n, 0.0);
  for (uint32_t o = 0; o < n; o += b)
    for (uint32_t i = 0; i < b; ++i)
      for (uint32_t j = 0; j < b; ++j)
        y[o + i] += (__builtin_popcount(i & j) % 2 ? -1.0 : 1.0) * double(x[o + j]) / std::sqrt(double(b));
  return y;
}

// The rotation's block: the largest power of two dividing head_dim.
TEST(KvStoreI8, RotationBlock) {
  EXPECT_EQ(ref::kv_rotation_block(64), 64u);
  EXPECT_EQ(ref::kv_rotation_block(256), 256u);
  EXPECT_EQ(ref::kv_rotation_block(80), 16u);
  EXPECT_EQ(ref::kv_rotation_block(48), 16u);
  EXPECT_EQ(ref::kv_rotation_block(96), 32u);
}

// kv_rotate against the matrix, on a head of 80 (blocks of 16) and one of
// 64; applied twice it gives the input back (H H = I).
TEST(KvStoreI8, RotationIsHadamardAndItsOwnInverse) {
  std::mt19937 rng(3);
  for (uint32_t hd : {80u, 64u}) {
    std::vector<float> x(hd);
    for (float& v : x) v = std::uniform_real_distribution<float>(-3, 3)(rng);
    x[5] = 40.0f;  // an outlier channel
    std::vector<float> y = x;
    const uint32_t b = ref::kv_rotation_block(hd);
    ref::kv_rotate(y.data(), hd, b);
    const std::vector<double> want = hadamard(x.data(), hd, b);
    for (uint32_t i = 0; i < hd; ++i) EXPECT_NEAR(y[i], want[i], 1e-5 * 40) << "hd=" << hd << " i=" << i;
    ref::kv_rotate(y.data(), hd, b);
    for (uint32_t i = 0; i < hd; ++i) EXPECT_NEAR(y[i], x[i], 1e-5 * 40) << "hd=" << hd << " i=" << i;
  }
}

// The layout of kernels.h written out by hand for one case, and the store's
// rotation and rounding: independent of the offset helpers the kernels use.
TEST(KvStoreI8, LayoutAndRounding) {
  std::mt19937 rng(7);
  KvI8 kv = make_kv(2, 16, 16, 20, rng);
  std::vector<float> kk(32), vv(32);
  for (uint32_t i = 0; i < 32; ++i) {
    kk[i] = float(int(i) - 10) * 0.25f;
    vv[i] = i == 17 ? -3.0f : 0.0f;  // head 1: one value, head 0: all zero
  }
  kv.store(scalar_kernels(), 5, kk.data(), vv.data());
  const uint8_t* kb = kv.k.data() + size_t(kv.table[0]) * kv.stride();
  const uint8_t* vb = kv.v.data() + size_t(kv.table[0]) * kv.stride();
  // K per head: H k (b = 16), then d = absmax / 127 and q = round(x / d).
  for (uint32_t h = 0; h < 2; ++h) {
    const std::vector<double> r = hadamard(kk.data() + 16 * h, 16, 16);
    double amax = 0;
    for (double x : r) amax = std::max(amax, std::fabs(x));
    const float d = f32_at(kb + 512 + (16 * h + 5) * 4);  // scales after the 2 x 256 value bytes: [kv head][row]
    EXPECT_NEAR(d, amax / 127.0, 1e-6 * amax / 127.0) << "head " << h;
    for (uint32_t i = 0; i < 16; ++i) {
      // Tile h of the block (16 rows x 16 dims = 256 bytes each), dims
      // 4 (i / 4).. (64 bytes each), row 5, byte i % 4.
      const int q = int(kb[256 * h + (i / 4) * 64 + 5 * 4 + i % 4]) - 128;
      EXPECT_LE(std::fabs(r[i] - double(d) * q), d / 2 + 1e-6) << "head " << h << " dim " << i;
    }
  }
  // V head 1: H of a single -3 at dim 1 is -3 (-1)^popcount(i & 1) / 4 =
  // -+0.75, every |value| the absmax: q = -127 at even dims, +127 at odd.
  // Tile 1, quad 1 (16 dims x 4 rows = 64 bytes), dim i (4 bytes), row 1 of the quad.
  EXPECT_EQ(f32_at(vb + 512 + (16 + 5) * 4), 0.75f / 127.0f);
  for (uint32_t i = 0; i < 16; ++i) EXPECT_EQ(vb[256 + 64 + i * 4 + 1], uint8_t(i % 2 ? 127 + 128 : -127 + 128)) << i;
  // An all-zero head: scale 0, values 0 (+128).
  EXPECT_EQ(f32_at(vb + 512 + 5 * 4), 0.0f);
  EXPECT_EQ(vb[64 + 4 * 3 + 1], 128);
}

TEST_P(AttentionI8Test, KvStoreBitExact) {
  for (uint32_t head_dim : {64u, 16u, 256u}) {
    KvI8 a = make_kv(3, head_dim, 32, 70, rng), b = a;
    std::vector<float> kk(3 * head_dim), vv(3 * head_dim);
    for (uint32_t pos = 0; pos < 70; ++pos) {
      for (uint32_t i = 0; i < kk.size(); ++i) {
        kk[i] = uniform(-4, 4) * (i % 7 == 0 ? 1e-6f : 1.0f);
        vv[i] = (i % 11 == 0) ? uniform(-7e4f, 7e4f) : uniform(-4, 4);
      }
      if (pos % 9 == 0)
        for (uint32_t i = 0; i < head_dim; ++i) kk[i] = 0.0f;  // an all-zero head
      a.store(s, pos, kk.data(), vv.data());
      b.store(*k, pos, kk.data(), vv.data());
    }
    ASSERT_TRUE(a.k == b.k) << where(k, "kv_store_i8", "head_dim=" + std::to_string(head_dim));
    ASSERT_TRUE(a.v == b.v) << where(k, "kv_store_i8", "head_dim=" + std::to_string(head_dim));
  }
}

// l = sum_t exp(s_t - max s) of head h over [first, n_ctx), in double from
// the unquantized data: what the one-step bound above divides by.
double softmax_mass(const std::vector<float>& q, const std::vector<std::vector<float>>& keys, uint32_t h,
                    uint32_t kvh, uint32_t hd, uint32_t kv_heads, uint32_t first, float scale) {
  std::vector<double> sc;
  double mx = -1e300;
  for (size_t t = first; t < keys.size(); ++t) {
    double dot = 0;
    for (uint32_t d = 0; d < hd; ++d) dot += double(q[size_t(h) * hd + d]) * keys[t][size_t(kvh) * hd + d];
    sc.push_back(dot * scale);
    mx = std::max(mx, sc.back());
  }
  double l = 0;
  for (double x : sc) l += std::exp(x - mx);
  (void)kv_heads;
  return l;
}

enum class Fill { kRandom, kZeros, kHuge, kEqual, kZeroQuery };

void run_case(const KernelTable& s, const KernelTable& k, std::mt19937& rng, uint32_t heads, uint32_t kv_heads,
              uint32_t hd, uint32_t bt, uint32_t n_ctx, Fill fill) {
  auto uniform = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  KvI8 kv = make_kv(kv_heads, hd, bt, n_ctx, rng);
  std::vector<std::vector<float>> keys;
  float vmax = 0.0f;
  std::vector<float> kk(size_t(kv_heads) * hd), vv(kk.size());
  for (uint32_t pos = 0; pos < n_ctx; ++pos) {
    for (size_t i = 0; i < kk.size(); ++i) {
      switch (fill) {
        case Fill::kZeros: kk[i] = 0.0f; vv[i] = 0.0f; break;
        case Fill::kHuge: kk[i] = uniform(-1e6f, 1e6f); vv[i] = uniform(-3e7f, 3e7f); break;
        case Fill::kEqual: kk[i] = 1.5f; vv[i] = -0.75f; break;  // every value of a head equal
        default: kk[i] = uniform(-2, 2); vv[i] = uniform(-2, 2); break;
      }
      vmax = std::max(vmax, std::fabs(vv[i]));
    }
    keys.push_back(kk);
    kv.store(s, pos, kk.data(), vv.data());
  }
  std::vector<float> q(size_t(heads) * hd);
  for (float& x : q) x = fill == Fill::kZeroQuery ? 0.0f : fill == Fill::kHuge ? uniform(-1e-5f, 1e-5f) : uniform(-2, 2);
  const float scale = 1.0f / std::sqrt(float(hd));
  for (uint32_t h_split : {0u, 1u}) {
    const uint32_t h0 = h_split && heads > 2 ? 1 : 0, h1 = h_split && heads > 2 ? heads - 1 : heads;
    const uint32_t firsts[] = {0, 1, 15, 16, bt, n_ctx / 2 + 1, n_ctx - 1};
    for (uint32_t first : firsts) {
      if (first >= n_ctx) continue;
      std::vector<float> oa(q.size(), kNaN), ob(q.size(), kNaN);
      AttentionArgs args{q.data(), oa.data(), nullptr, heads, h0, h1, n_ctx, scale};
      args.first = first;
      s.attention_i8kv(kv.view(), args);
      args.out = ob.data();
      k.attention_i8kv(kv.view(), args);
      const std::string at =
          where(&k, "attention_i8kv",
                "heads=" + std::to_string(heads) + " kv_heads=" + std::to_string(kv_heads) + " head_dim=" +
                    std::to_string(hd) + " block=" + std::to_string(bt) + " n_ctx=" + std::to_string(n_ctx) +
                    " first=" + std::to_string(first) + " fill=" + std::to_string(int(fill)) + " h=[" +
                    std::to_string(h0) + "," + std::to_string(h1) + ")");
      for (uint32_t h = 0; h < heads; ++h) {
        const double l = fill == Fill::kRandom
                             ? softmax_mass(q, keys, h, h / (heads / kv_heads), hd, kv_heads, first, scale)
                             : 1.0;
        const double tol = 1e-4 * vmax + 2.0 * vmax / (127.0 * l);
        for (uint32_t d = 0; d < hd; ++d) {
          const size_t i = size_t(h) * hd + d;
          if (h < h0 || h >= h1) {
            ASSERT_TRUE(std::isnan(ob[i])) << at << " wrote head " << h;
            continue;
          }
          ASSERT_TRUE(std::isfinite(oa[i]) && std::isfinite(ob[i])) << at << " i=" << i << " ref " << oa[i] << " got " << ob[i];
          ASSERT_NEAR(oa[i], ob[i], tol) << at << " i=" << i;
        }
      }
    }
  }
}

TEST_P(AttentionI8Test, MatchesReference) {
  struct Shape { uint32_t heads, kv_heads, head_dim, block_tokens, n_ctx; };
  for (Shape sh : {Shape{9, 3, 64, 16, 1}, Shape{9, 3, 64, 16, 17}, Shape{9, 3, 64, 16, 100},
                   Shape{4, 4, 16, 16, 10},      // no GQA, the smallest head
                   Shape{8, 2, 128, 32, 65},     // 2 tiles per block
                   Shape{6, 2, 80, 16, 33},      // 64 dims and a 16-dim tail
                   Shape{5, 1, 48, 16, 47},      // 5 heads per KV head (4 + 1), 48 = 3 x 16 dims
                   Shape{14, 2, 256, 64, 300},   // 7 per KV head (4 + 3), Gemma 3's head_dim
                   Shape{9, 3, 64, 16, 1000},    // long sums
                   Shape{4, 1, 256, 16, 600}})
    run_case(s, *k, rng, sh.heads, sh.kv_heads, sh.head_dim, sh.block_tokens, sh.n_ctx, Fill::kRandom);
}

TEST_P(AttentionI8Test, EdgeValues) {
  for (Fill f : {Fill::kZeros, Fill::kHuge, Fill::kEqual, Fill::kZeroQuery}) {
    run_case(s, *k, rng, 6, 2, 64, 16, 37, f);
    run_case(s, *k, rng, 3, 3, 32, 32, 70, f);
  }
}

// Edge values have known answers: all-zero V gives 0; a query of zeros (or
// all-equal keys) gives the mean of V; all-equal V gives that value.
TEST_P(AttentionI8Test, EdgeValuesExact) {
  const uint32_t heads = 4, kv_heads = 2, hd = 32, n_ctx = 21;
  for (Fill f : {Fill::kZeros, Fill::kEqual}) {
    KvI8 kv = make_kv(kv_heads, hd, 16, n_ctx, rng);
    std::vector<float> kk(kv_heads * hd, f == Fill::kZeros ? 0.0f : 1.5f), vv(kk.size(), f == Fill::kZeros ? 0.0f : -0.75f);
    for (uint32_t pos = 0; pos < n_ctx; ++pos) kv.store(s, pos, kk.data(), vv.data());
    std::vector<float> q(heads * hd), out(q.size(), kNaN);
    for (float& x : q) x = uniform(-2, 2);
    AttentionArgs args{q.data(), out.data(), nullptr, heads, 0, heads, n_ctx, 0.25f};
    args.first = 3;
    k->attention_i8kv(kv.view(), args);
    for (float o : out) ASSERT_NEAR(o, f == Fill::kZeros ? 0.0f : -0.75f, 1e-6f) << where(k, "attention_i8kv", "edge");
  }
}

std::string variant_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n = variant(info.param).name;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, AttentionI8Test, ::testing::Range<size_t>(0, variant_count()), variant_name);

// Every selectable variant has the int8 KV slots.
TEST(AttentionI8, EveryVariantHasInt8Kv) {
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  for (size_t i = 0; i < n; ++i)
    EXPECT_TRUE(v[i].table->attention_i8kv && v[i].table->kv_store_i8) << "variant " << v[i].name;
}

// What int8 KV costs against f16 KV, both through the scalar reference, on
// random data (|k|, |v|, |q| <= 2, 1/sqrt(head_dim) scale).
TEST(AttentionI8, AccuracyAgainstF16) {
  std::mt19937 rng(99);
  auto uniform = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  const KernelTable& s = scalar_kernels();
  // outlier: one K channel and one V channel of every head at +-40 (as
  // SmolLM2's and Gemma's K have): the case the rotation is for.
  struct Shape { uint32_t heads, kv_heads, hd, n_ctx; bool outlier; float bound; };
  double worst = 0;
  for (Shape sh : {Shape{9, 3, 64, 17, false, 0.03f}, Shape{9, 3, 64, 300, false, 0.03f},
                   Shape{9, 3, 64, 1000, false, 0.03f}, Shape{4, 1, 256, 600, false, 0.03f},
                   Shape{9, 3, 64, 300, true, 0.4f}, Shape{4, 1, 256, 600, true, 0.4f}}) {
    KvI8 a = make_kv(sh.kv_heads, sh.hd, 16, sh.n_ctx, rng);
    KvF16 f{sh.kv_heads, sh.hd, 16, {}, {}, {}};
    const uint32_t blocks = (sh.n_ctx + 15) / 16;
    for (uint32_t b = 0; b < blocks; ++b) f.table.push_back(b);
    f.k.assign(size_t(blocks) * 16 * sh.kv_heads * sh.hd, 0);
    f.v.assign(f.k.size(), 0);
    std::vector<float> kk(sh.kv_heads * sh.hd), vv(kk.size());
    for (uint32_t pos = 0; pos < sh.n_ctx; ++pos) {
      for (float& x : kk) x = uniform(-2, 2);
      for (float& x : vv) x = uniform(-2, 2);
      if (sh.outlier) {
        for (uint32_t h = 0; h < sh.kv_heads; ++h) {
          kk[size_t(h) * sh.hd + 5] = uniform(-1, 1) < 0 ? -40.0f : 40.0f;
          vv[size_t(h) * sh.hd + 9] = uniform(-1, 1) < 0 ? -40.0f : 40.0f;
        }
      }
      a.store(s, pos, kk.data(), vv.data());
      s.kv_store(f.view(), f.k.data(), f.v.data(), pos, kk.data(), vv.data());
    }
    std::vector<float> q(sh.heads * sh.hd), o8(q.size()), o16(q.size()), scratch(sh.n_ctx);
    for (float& x : q) x = uniform(-2, 2);
    AttentionArgs args{q.data(), o8.data(), scratch.data(), sh.heads, 0, sh.heads, sh.n_ctx, 1.0f / std::sqrt(float(sh.hd))};
    s.attention_i8kv(a.view(), args);
    args.out = o16.data();
    s.attention(f.view(), args);
    double m = 0;
    for (size_t i = 0; i < q.size(); ++i) m = std::max(m, double(std::fabs(o8[i] - o16[i])));
    std::printf("int8 vs f16 KV: heads=%u kv_heads=%u head_dim=%u n_ctx=%u outlier=%d max |diff| %.5f\n", sh.heads,
                sh.kv_heads, sh.hd, sh.n_ctx, int(sh.outlier), m);
    worst = std::max(worst, m);
    EXPECT_LE(m, sh.bound) << "n_ctx=" << sh.n_ctx << " outlier=" << sh.outlier;
  }
  EXPECT_GT(worst, 0.0);  // int8 is not f16: the comparison compared something
}

}  // namespace
}  // namespace tern
