// Sampler tests: greedy, seeded reproducibility, the distribution at a
// temperature, each filter's support (top-k, top-p, min-p) against a
// brute-force reference, the repetition penalty, parameter validation and
// non-finite logits. All random inputs and draws use fixed seeds.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>
#include <vector>

namespace tern {
namespace {

// A sampler with its own arena buffer (test convenience).
struct TestSampler {
  std::vector<uint8_t> buffer;
  Arena arena;
  Sampler sampler;

  TestSampler(const SamplerParams& p, uint32_t vocab) {
    buffer.resize(Sampler::arena_bytes(vocab));
    arena.init(buffer.data(), buffer.size());
    const Status s = sampler.init(p, vocab, &arena);
    EXPECT_TRUE(s.is_ok()) << s.message();
  }
  // Samples from a copy, so the caller's logits stay as given.
  int32_t sample(const std::vector<float>& logits, const std::vector<int32_t>& recent = {}) {
    std::vector<float> row = logits;
    return sampler.sample(row.data(), recent.empty() ? nullptr : recent.data(),
                          uint32_t(recent.size()));
  }
};

std::vector<float> random_logits(uint32_t vocab, uint64_t seed, float scale) {
  Pcg32 rng(seed);
  std::vector<float> v(vocab);
  for (auto& x : v) x = (rng.next_float() * 2.0f - 1.0f) * scale;
  return v;
}

// Token ids ordered by logit descending, ties by id: the reference order.
std::vector<int32_t> ranked(const std::vector<float>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return ids;
}

// Reference nucleus: smallest ranked prefix with softmax mass >= p (double).
std::set<int32_t> reference_top_p(const std::vector<float>& logits, double p) {
  const std::vector<int32_t> ids = ranked(logits);
  const double mx = logits[ids[0]];
  double total = 0.0;
  for (float x : logits) total += std::exp(double(x) - mx);
  std::set<int32_t> keep;
  double cum = 0.0;
  for (int32_t id : ids) {
    keep.insert(id);
    cum += std::exp(double(logits[id]) - mx) / total;
    if (cum >= p) break;
  }
  return keep;
}

std::set<int32_t> support(TestSampler& ts, const std::vector<float>& logits, int draws) {
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) seen.insert(ts.sample(logits));
  return seen;
}

// Pearson chi-square of `draws` samples against softmax(logits / temperature).
double chi_square(TestSampler& ts, const std::vector<float>& logits, float temperature, int draws) {
  std::vector<double> expected(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) total += expected[i] = std::exp(logits[i] / temperature);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[ts.sample(logits)];
  double chi2 = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double e = expected[i] / total * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST(Rng, Pcg32MatchesReferenceStream) {
  // pcg32-demo (pcg-c-basic): pcg32_srandom_r(&rng, 42u, 54u), first six outputs.
  Pcg32 rng(42u, 54u);
  const uint32_t expected[] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                               0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
  for (uint32_t e : expected) EXPECT_EQ(rng.next_u32(), e);
  Pcg32 r2(7);
  for (int i = 0; i < 10000; ++i) {
    const float f = r2.next_float();
    const double d = r2.next_double();
    ASSERT_TRUE(f >= 0.0f && f < 1.0f) << f;
    ASSERT_TRUE(d >= 0.0 && d < 1.0) << d;
  }
}

TEST(Sampler, GreedyIsArgmaxWithTiesToLowestId) {
  SamplerParams p;  // temperature 0
  TestSampler ts(p, 8);
  EXPECT_EQ(ts.sample({0, 1, 5, 2, 5, -1, 3, 5}), 2);
  EXPECT_EQ(ts.sample({9, 1, 5, 2, 5, -1, 3, 9}), 0);
  EXPECT_EQ(ts.sample({-3, -2, -9, -2, -5, -1.5f, -3, -8}), 5);
  const std::vector<float> big = random_logits(49152, 11, 10.0f);
  TestSampler tb(p, 49152);
  EXPECT_EQ(tb.sample(big), ranked(big)[0]);
}

// A row of 1,001 (not a multiple of the 16 lanes or the 64-entry blocks the
// greedy pass vectorizes over): the max in a full block, in the tail, tied
// across blocks; a NaN or +inf in the lanes' part and in the tail, replaced
// in place (-inf, FLT_MAX) as sanitize_and_max promises.
TEST(Sampler, GreedyAndNonFiniteOverALargeOddRow) {
  const uint32_t n = 1001;
  SamplerParams p;  // temperature 0
  TestSampler ts(p, n);
  std::vector<float> row = random_logits(n, 5, 3.0f);
  for (float& x : row) x = std::min(x, 10.0f);
  for (uint32_t at : {0u, 63u, 64u, 700u, 959u, 960u, 1000u}) {
    std::vector<float> r = row;
    r[at] = 20.0f;
    EXPECT_EQ(ts.sample(r), int32_t(at)) << "max at " << at;
    if (at < 900) {
      r[at + 90] = 20.0f;  // a tie later on: the lower id
      EXPECT_EQ(ts.sample(r), int32_t(at)) << "tie at " << at;
    }
  }
  for (uint32_t at : {17u, 500u, 999u}) {
    std::vector<float> r = row;
    r[at] = std::nanf("");
    r[at / 2] = 20.0f;
    EXPECT_EQ(ts.sampler.sample(r.data(), nullptr, 0), int32_t(at / 2)) << "NaN at " << at;
    EXPECT_EQ(r[at], -INFINITY) << "NaN at " << at << " not sanitized in place";
    r[at] = INFINITY;
    EXPECT_EQ(ts.sampler.sample(r.data(), nullptr, 0), int32_t(at)) << "+inf at " << at;
    EXPECT_EQ(r[at], FLT_MAX) << "+inf at " << at << " not sanitized in place";
  }
}

TEST(Sampler, SameSeedSameStreamDifferentSeedDifferent) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 1234;
  const std::vector<float> logits = random_logits(1000, 3, 2.0f);
  TestSampler a(p, 1000), b(p, 1000);
  p.seed = 1235;
  TestSampler c(p, 1000);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a.sample(logits));
    sb.push_back(b.sample(logits));
    sc.push_back(c.sample(logits));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  // reseed restarts the stream.
  a.sampler.reseed(1234);
  EXPECT_EQ(a.sampler.params().seed, 1234u);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(a.sample(logits), sa[i]) << "draw " << i;
}

TEST(Sampler, TemperatureMatchesSoftmaxDistribution) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f};
  for (float t : {0.5f, 1.0f, 2.5f}) {
    SamplerParams p;
    p.temperature = t;
    p.seed = 99;
    TestSampler ts(p, 5);
    // 4 degrees of freedom: P(chi2 > 30) < 1e-5, so this fails only on a real bias.
    EXPECT_LT(chi_square(ts, logits, t, 40000), 30.0) << "temperature " << t;
  }
}

TEST(Sampler, DrawAcrossManyBlocksMatchesSoftmax) {
  // 300 tokens: the draw walks block sums (64 tokens each) before one block.
  const std::vector<float> logits = random_logits(300, 12, 1.5f);
  SamplerParams p;
  p.temperature = 1.3f;
  p.seed = 31;
  TestSampler ts(p, 300);
  // 299 degrees of freedom: mean 299, sd ~24.5; 450 is > 6 sd.
  EXPECT_LT(chi_square(ts, logits, 1.3f, 150000), 450.0);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplerParams p;
  p.temperature = 1.5f;
  p.top_k = 1;
  p.seed = 5;
  TestSampler ts(p, 300);
  for (uint64_t s = 0; s < 20; ++s) {
    std::vector<float> logits = random_logits(300, s, 4.0f);
    logits[17 + s] = logits[200 + s] = 100.0f;  // a tie at the top: lower id wins
    EXPECT_EQ(ts.sample(logits), int32_t(17 + s)) << "seed " << s;
  }
}

TEST(Sampler, TopKRestrictsSupportAndKeepsDistribution) {
  SamplerParams p;
  p.temperature = 1e6f;  // flat over the survivors, so every one shows up
  p.top_k = 5;
  p.seed = 8;
  const std::vector<float> logits = random_logits(100, 21, 3.0f);
  TestSampler ts(p, 100);
  const std::vector<int32_t> ids = ranked(logits);
  EXPECT_EQ(support(ts, logits, 2000), std::set<int32_t>(ids.begin(), ids.begin() + 5));

  // Renormalized softmax over the top 3 of 6 at temperature 0.8.
  const std::vector<float> small = {0.3f, 2.0f, -1.0f, 1.0f, 1.5f, 0.0f};
  p.temperature = 0.8f;
  p.top_k = 3;
  TestSampler t3(p, 6);
  const std::vector<float> top3 = {2.0f, 1.0f, 1.5f};
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 30000; ++i) ++counts[t3.sample(small)];
  EXPECT_EQ(counts[0] + counts[2] + counts[5], 0);
  double z = 0;
  for (float x : top3) z += std::exp(x / 0.8);
  double chi2 = 0;
  const int idx[3] = {1, 3, 4};
  for (int j = 0; j < 3; ++j) {
    const double e = std::exp(top3[j] / 0.8) / z * 30000;
    chi2 += (counts[idx[j]] - e) * (counts[idx[j]] - e) / e;
  }
  EXPECT_LT(chi2, 25.0);  // 2 dof
}

TEST(Sampler, TopKWideRangeAndTiesMatchReference) {
  // Logits far beyond the histogram range, and a flat row (one bin holds
  // everything): the exact selection must still pick the reference top-k.
  SamplerParams p;
  p.temperature = 1e6f;
  p.seed = 3;
  {
    const std::vector<float> logits = random_logits(5000, 4, 200.0f);
    p.top_k = 700;
    TestSampler ts(p, 5000);
    const std::vector<int32_t> ids = ranked(logits);
    EXPECT_EQ(support(ts, logits, 15000), std::set<int32_t>(ids.begin(), ids.begin() + 700));
  }
  {
    const std::vector<float> flat(1000, 1.0f);
    p.top_k = 3;
    TestSampler ts(p, 1000);
    EXPECT_EQ(support(ts, flat, 500), (std::set<int32_t>{0, 1, 2}));
  }
}

TEST(Sampler, TopPKeepsSmallestSetReachingP) {
  SamplerParams p;
  p.temperature = 1e6f;
  p.seed = 17;
  // probabilities 0.5, 0.25, 0.15, 0.1 (ids shuffled)
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.1f),
                                     std::log(0.25f)};
  const struct { float top_p; std::set<int32_t> keep; } cases[] = {
      {0.3f, {1}}, {0.7f, {1, 3}}, {0.8f, {1, 3, 0}}, {0.95f, {1, 3, 0, 2}}, {1.0f, {1, 3, 0, 2}}};
  for (const auto& c : cases) {
    p.top_p = c.top_p;
    TestSampler ts(p, 4);
    EXPECT_EQ(support(ts, logits, 400), c.keep) << "top_p " << c.top_p;
  }
  // Large vocabulary with a heavy tail: the nucleus is a few tokens, the
  // normalizer covers all 49152.
  std::vector<float> big = random_logits(49152, 5, 1.0f);
  for (int i = 0; i < 12; ++i) big[1000 + 3000 * i] = 10.0f + 0.1f * i;
  for (float top_p : {0.5f, 0.7f, 0.75f}) {
    p.top_p = top_p;
    TestSampler ts(p, 49152);
    const std::set<int32_t> ref = reference_top_p(big, top_p);
    ASSERT_LT(ref.size(), 13u) << "top_p " << top_p;
    EXPECT_EQ(support(ts, big, 800), ref) << "top_p " << top_p << " nucleus " << ref.size();
  }
  // Flat row: 1000 equal tokens, 1.05% of the mass needs 11 of them, lowest ids.
  p.top_p = 0.0105f;
  TestSampler tf(p, 1000);
  std::set<int32_t> first11;
  for (int32_t i = 0; i < 11; ++i) first11.insert(i);
  EXPECT_EQ(support(tf, std::vector<float>(1000, 0.0f), 2000), first11);
}

TEST(Sampler, TopPAfterTopKUsesTopKNormalization) {
  // Top-2 of {0.5, 0.25, 0.15, 0.1} renormalizes to {2/3, 1/3}; top_p 0.6 keeps
  // only the first (it would keep two without top-k: 0.5 < 0.6).
  SamplerParams p;
  p.temperature = 1e6f;
  p.seed = 2;
  p.top_k = 2;
  p.top_p = 0.6f;
  const std::vector<float> logits = {std::log(0.1f), std::log(0.25f), std::log(0.5f),
                                     std::log(0.15f)};
  TestSampler ts(p, 4);
  EXPECT_EQ(support(ts, logits, 300), (std::set<int32_t>{2}));
  p.top_k = 0;
  TestSampler tn(p, 4);
  EXPECT_EQ(support(tn, logits, 300), (std::set<int32_t>{2, 1}));
}

TEST(Sampler, MinPFiltersRelativeToMax) {
  SamplerParams p;
  p.temperature = 1e6f;
  p.seed = 4;
  // p / p_max = 1, 0.5, 0.2, 0.05, 0.01 plus a constant shift (irrelevant).
  const std::vector<float> logits = {3.0f + std::log(0.05f), 3.0f, 3.0f + std::log(0.2f),
                                     3.0f + std::log(0.01f), 3.0f + std::log(0.5f)};
  const struct { float min_p; std::set<int32_t> keep; } cases[] = {
      {0.0f, {0, 1, 2, 3, 4}}, {0.03f, {0, 1, 2, 4}}, {0.1f, {1, 2, 4}}, {0.3f, {1, 4}}, {1.0f, {1}}};
  for (const auto& c : cases) {
    for (int32_t top_k : {0, 4}) {  // unsorted and sorted code paths
      p.min_p = c.min_p;
      p.top_k = top_k;
      TestSampler ts(p, 5);
      std::set<int32_t> keep = c.keep;
      if (top_k == 4) keep.erase(3);
      EXPECT_EQ(support(ts, logits, 500), keep) << "min_p " << c.min_p << " top_k " << top_k;
    }
  }
}

TEST(Sampler, RepetitionPenaltyScalesPositiveAndNegativeLogits) {
  SamplerParams p;
  p.repetition_penalty = 2.0f;
  p.repeat_last_n = 3;
  TestSampler ts(p, 5);
  float logits[5] = {2.0f, -2.0f, 1.0f, 0.5f, 1.5f};
  // Window = last 3 entries {1, 0, 0}: token 0 repeated is penalized once; 4 is
  // outside the window; -1 and 99 are out of range and ignored.
  const int32_t recent[] = {4, 99, -1, 1, 0, 0};
  EXPECT_EQ(ts.sampler.sample(logits, recent, 6), 4);  // 1.5 now beats 2/2 = 1
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[1], -4.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.0f);
  EXPECT_FLOAT_EQ(logits[4], 1.5f);
  // The dedup bitmap is clean again: the same call gives the same result.
  float again[5] = {2.0f, -2.0f, 1.0f, 0.5f, 1.5f};
  EXPECT_EQ(ts.sampler.sample(again, recent, 6), 4);
  EXPECT_FLOAT_EQ(again[0], 1.0f);

  // A penalty < 1 boosts instead; a negative logit moves toward 0.
  p.repetition_penalty = 0.5f;
  TestSampler tb(p, 5);
  float boost[5] = {2.0f, -2.0f, 1.0f, 0.5f, 1.5f};
  const int32_t last[] = {1, 3};
  EXPECT_EQ(tb.sampler.sample(boost, last, 2), 0);
  EXPECT_FLOAT_EQ(boost[1], -1.0f);
  EXPECT_FLOAT_EQ(boost[3], 1.0f);

  // Off when the window is empty or the penalty is 1.
  p.repeat_last_n = 0;
  p.repetition_penalty = 2.0f;
  TestSampler to(p, 5);
  float off[5] = {2.0f, -2.0f, 1.0f, 0.5f, 1.5f};
  EXPECT_EQ(to.sampler.sample(off, recent, 6), 0);
  EXPECT_FLOAT_EQ(off[0], 2.0f);
}

TEST(Sampler, ValidateRejectsEachBadParameterByName) {
  const float nan = std::nanf("");
  const struct { const char* name; SamplerParams p; } bad[] = {
      {"temperature", [] { SamplerParams p; p.temperature = -0.1f; return p; }()},
      {"temperature", [&] { SamplerParams p; p.temperature = nan; return p; }()},
      {"temperature", [] { SamplerParams p; p.temperature = INFINITY; return p; }()},
      {"top_k", [] { SamplerParams p; p.top_k = -1; return p; }()},
      {"top_p", [] { SamplerParams p; p.top_p = 0.0f; return p; }()},
      {"top_p", [] { SamplerParams p; p.top_p = 1.01f; return p; }()},
      {"top_p", [&] { SamplerParams p; p.top_p = nan; return p; }()},
      {"min_p", [] { SamplerParams p; p.min_p = -0.01f; return p; }()},
      {"min_p", [] { SamplerParams p; p.min_p = 1.5f; return p; }()},
      {"min_p", [&] { SamplerParams p; p.min_p = nan; return p; }()},
      {"repetition_penalty", [] { SamplerParams p; p.repetition_penalty = 0.0f; return p; }()},
      {"repetition_penalty", [] { SamplerParams p; p.repetition_penalty = -1.0f; return p; }()},
      {"repetition_penalty", [&] { SamplerParams p; p.repetition_penalty = nan; return p; }()},
  };
  std::vector<uint8_t> buffer(Sampler::arena_bytes(16));
  for (const auto& c : bad) {
    const Status s = validate(c.p);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(std::strstr(s.message(), c.name), nullptr) << c.name << ": " << s.message();
    Arena arena;
    arena.init(buffer.data(), buffer.size());
    Sampler sampler;
    EXPECT_EQ(sampler.init(c.p, 16, &arena).code(), StatusCode::kInvalidArgument) << c.name;
  }
  // Edges that are allowed.
  SamplerParams ok;
  ok.temperature = 0.0f;
  ok.top_p = 1.0f;
  ok.min_p = 1.0f;
  ok.top_k = 0;
  EXPECT_TRUE(validate(ok).is_ok());
  ok.min_p = 0.0f;
  ok.top_p = 1e-6f;
  ok.repetition_penalty = 1e-3f;
  EXPECT_TRUE(validate(ok).is_ok());
}

TEST(Sampler, InitChecksVocabAndArena) {
  SamplerParams p;
  std::vector<uint8_t> buffer(Sampler::arena_bytes(49152) + 7);
  Arena arena;
  Sampler s;
  arena.init(buffer.data() + 7, buffer.size() - 7);  // misaligned base still fits
  EXPECT_TRUE(s.init(p, 49152, &arena).is_ok());
  EXPECT_LE(arena.used(), Sampler::arena_bytes(49152));
  arena.init(buffer.data(), Sampler::arena_bytes(49152) / 2);
  EXPECT_EQ(s.init(p, 49152, &arena).code(), StatusCode::kArenaTooSmall);
  EXPECT_EQ(arena.used(), 0u);  // nothing left behind on failure
  EXPECT_EQ(s.init(p, 0, &arena).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.init(p, 16, nullptr).code(), StatusCode::kInvalidArgument);
  Sampler fresh;  // never initialized
  float row[2] = {0.0f, 1.0f};
  EXPECT_EQ(fresh.sample(row, nullptr, 0), 0);
}

TEST(Sampler, NonFiniteLogits) {
  const float nan = std::nanf("");
  for (float t : {0.0f, 1.0f}) {
    SamplerParams p;
    p.temperature = t;
    p.top_k = t > 0 ? 2 : 0;
    TestSampler ts(p, 6);
    // All NaN / -inf: token 0, deterministically.
    EXPECT_EQ(ts.sample(std::vector<float>(6, nan)), 0) << "T " << t;
    EXPECT_EQ(ts.sample(std::vector<float>(6, -INFINITY)), 0) << "T " << t;
    // NaN is never chosen; +inf always wins (greedy: ties among +inf -> lowest id;
    // sampling: the +inf tokens tie at FLT_MAX and share the mass).
    for (int i = 0; i < 50; ++i) {
      const int32_t id = ts.sample({nan, -INFINITY, nan, 0.5f, nan, -1.0f});
      EXPECT_TRUE(id == 3 || (t > 0 && id == 5)) << "T " << t << " id " << id;
      const int32_t top = ts.sample({nan, 1.0f, INFINITY, 0.5f, INFINITY, 2.0f});
      EXPECT_TRUE(top == 2 || (t > 0 && top == 4)) << "T " << t << " id " << top;
    }
    float row[3] = {nan, INFINITY, 1.0f};
    TestSampler t3(p, 3);
    EXPECT_EQ(t3.sampler.sample(row, nullptr, 0), 1);
    EXPECT_EQ(row[0], -INFINITY);
    EXPECT_EQ(row[1], FLT_MAX);
  }
  // Sampling with every filter on over a row with NaN holes and -inf: only
  // finite tokens come out.
  SamplerParams p;
  p.temperature = 5.0f;
  p.top_p = 0.9f;
  p.min_p = 0.01f;
  p.seed = 77;
  std::vector<float> logits = random_logits(512, 9, 1.0f);
  for (size_t i = 0; i < logits.size(); i += 3) logits[i] = (i % 2) ? nan : -INFINITY;
  TestSampler ts(p, 512);
  for (int32_t id : support(ts, logits, 3000)) EXPECT_NE(id % 3, 0) << id;
}

}  // namespace
}  // namespace tern
