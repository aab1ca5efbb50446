// Whole-model equivalence of the kernel variants: on the real model, for the
// int4 and int8 blobs, greedy decoding of every golden prompt for 64 tokens
// gives the same tokens with the scalar reference kernels and with every SIMD
// variant this CPU runs (x86: avx2, avxvnni, ...; aarch64: neon-dotprod, neon).
//
// The integer dot products are bit-exact across variants; the float parts
// (rmsnorm, softmax, rope, attention, activation scales) may differ in the
// last bits, so a near-tie between the top two logits could flip a token. If
// that happens the test fails and prints the position, both tokens, the
// scalar logit gap between them and the SIMD run's own top-2 gap there.
//
// Cost. Scalar decoding is ~10 tok/s, so running scalar greedy for 8 prompts
// x 64 tokens x 2 blobs would dominate the suite. Instead:
//   1. each SIMD variant decodes greedily (cheap), giving S = s_1..s_64 per
//      prompt;
//   2. the scalar kernels score prompt + S once, in batched forward passes
//      with every row's logits (teacher forcing), and check that the scalar
//      argmax after prompt + s_1..s_{i-1} is s_i for every i.
// Why 2 proves scalar greedy == S: scalar greedy picks
// t_i = argmax scalar_logits(prompt + t_1..t_{i-1}). If the argmax at every
// prefix prompt + s_1..s_{i-1} is s_i, then by induction t_1 = s_1, and
// t_1..t_{i-1} = s_1..s_{i-1} gives t_i = s_i. This needs the batched pass
// to compute the same logits a prefill + one-token-decode run would: every
// op of Model::forward is row-wise (per-token rmsnorm/quantize/matmul rows,
// per-(token, head) attention over the KV cache up to that token), so a row
// does not depend on how many tokens share the call. That premise is checked
// here too (ScalarBatchedRowsEqualDecodeSteps, bit for bit), so the shortcut
// cannot silently go wrong. Variants whose token sequences are identical
// (e.g. avx2 and avxvnni) share one scalar scoring pass.
//
// Reduced scale (the sanitizer job, scripts/sanitize_test.sh, where the full
// run costs many minutes per blob): TERN_GOLDEN_PROMPTS=name,... restricts the
// prompts (tests/support/goldens.h), and TERN_EQUIV_TOKENS=N (1..64, default
// 64) compares N greedy tokens per prompt instead of 64. Every check stays
// on; the selection is printed. Unset: the full run above.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "runtime/engine.h"
#include "runtime/score.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

using testing::GreedyGolden;

constexpr size_t kGenTokens = 64;  // greedy tokens per prompt compared (the full run)

// Greedy tokens per prompt for this run: TERN_EQUIV_TOKENS (1..kGenTokens) or
// kGenTokens; 0 (and a message in *why) for a value that is not a number in range.
size_t gen_tokens(std::string* why) {
  const char* env = std::getenv("TERN_EQUIV_TOKENS");
  if (env == nullptr || *env == '\0') return kGenTokens;
  char* end = nullptr;
  const unsigned long n = std::strtoul(env, &end, 10);
  if (*end != '\0' || n < 1 || n > kGenTokens) {
    *why = std::string("TERN_EQUIV_TOKENS='") + env + "' is not a token count in 1.." + std::to_string(kGenTokens);
    return 0;
  }
  return size_t(n);
}

const char* short_blob(const std::string& blob) { return blob.find("int4") != std::string::npos ? "int4" : "int8"; }

std::string blob_name(const ::testing::TestParamInfo<const char*>& info) { return short_blob(info.param); }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// First index of the largest logit (the greedy choice; ties take the lower id
// in every run, so ties cannot make two runs differ).
int32_t argmax(const float* row, uint32_t vocab) {
  int32_t best = 0;
  for (uint32_t v = 1; v < vocab; ++v) if (row[v] > row[best]) best = int32_t(v);
  return best;
}

float top2_gap(const float* row, uint32_t vocab) {
  const int32_t best = argmax(row, vocab);
  float second = -INFINITY;
  for (uint32_t v = 0; v < vocab; ++v) if (int32_t(v) != best && row[v] > second) second = row[v];
  return row[best] - second;
}

// A greedy run of every prompt: tokens and the top-2 logit gap at each step.
struct GreedyRun {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> gaps;
};

class IsaEquivalenceTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    for (const GreedyGolden& g : testing::read_greedy()) {
      if (testing::prompt_selected(g.name)) prompts_.push_back(g);  // TERN_GOLDEN_PROMPTS, for emulators
    }
    ASSERT_FALSE(prompts_.empty()) << "no golden prompt (tests/goldens/model_greedy.tsv, TERN_GOLDEN_PROMPTS)";
    std::string why;
    gen_tokens_ = gen_tokens(&why);
    ASSERT_GT(gen_tokens_, 0u) << why;
    if (gen_tokens_ != kGenTokens || (std::getenv("TERN_GOLDEN_PROMPTS") && *std::getenv("TERN_GOLDEN_PROMPTS"))) {
      std::printf("reduced run: %zu prompt(s) (TERN_GOLDEN_PROMPTS), %zu greedy tokens each (TERN_EQUIV_TOKENS)\n",
                  prompts_.size(), gen_tokens_);
    }
  }

  // Opens an engine for this blob with kernel variant `isa`.
  void open(const char* isa, std::unique_ptr<Engine>* out) {
    const std::string path = testing::model_path(GetParam());
    EngineOptions o;
    o.model_path = path.c_str();
    o.isa = isa;
    o.limits.max_context = 1024;
    o.limits.prefill_chunk = 64;
    o.limits.logit_rows = 64;
    auto e = std::make_unique<Engine>();
    Status s = e->open(o);
    ASSERT_TRUE(s.is_ok()) << path << " (" << isa << "): " << s.message()
                           << "\n(fetch and pack the model: scripts/fetch_model.sh, then ctest -L model)";
    *out = std::move(e);
  }

  void greedy(Engine& e, GreedyRun* run) {
    const uint32_t vocab = e.hparams().vocab;
    for (const GreedyGolden& g : prompts_) {
      KvSequence* seq = e.sequence(0);
      e.reset(seq);
      Status s = e.prefill(seq, g.prompt_ids.data(), g.prompt_ids.size());
      ASSERT_TRUE(s.is_ok()) << g.name << ": " << s.message();
      std::vector<int32_t> toks;
      std::vector<float> gaps;
      for (size_t i = 0; i < gen_tokens_; ++i) {
        const float* row = e.model().logits();
        toks.push_back(argmax(row, vocab));
        gaps.push_back(top2_gap(row, vocab));
        if (i + 1 < gen_tokens_) {
          s = e.decode(seq, toks.back());
          ASSERT_TRUE(s.is_ok()) << g.name << " step " << i << ": " << s.message();
        }
      }
      run->tokens.push_back(toks);
      run->gaps.push_back(gaps);
    }
  }

  // Teacher-forces prompt + run.tokens through `e` (the scalar engine) and
  // checks its argmax at every generated position; reports every prompt's
  // first disagreement.
  void score(Engine& e, const GreedyRun& run, const std::string& variants) {
    const uint32_t vocab = e.hparams().vocab;
    float closest = INFINITY;  // smallest scalar top-2 gap met: how near a flip came
    size_t n_diverged = 0;
    for (size_t p = 0; p < prompts_.size(); ++p) {
      const GreedyGolden& g = prompts_[p];
      const std::vector<int32_t>& gen = run.tokens[p];
      KvSequence* seq = e.sequence(0);
      e.reset(seq);
      // All prompt tokens but the last only fill the KV cache.
      if (g.prompt_ids.size() > 1) {
        Status s = e.prefill(seq, g.prompt_ids.data(), g.prompt_ids.size() - 1);
        ASSERT_TRUE(s.is_ok()) << g.name << ": " << s.message();
      }
      // Scored with the runtime's teacher-forcing loop (runtime/score.h):
      // position i of [last prompt token, s_1 .. s_N] predicts s_{i+1}, and
      // the scalar argmax there must be the SIMD variants' token s_{i+1}.
      std::vector<int32_t> in{g.prompt_ids.back()};
      in.insert(in.end(), gen.begin(), gen.end());
      struct Check {
        const std::vector<int32_t>* gen;
        uint32_t vocab;
        float* closest;
        bool diverged = false;
        size_t at = 0;
        int32_t want = 0;
        float logit_gap = 0;
      } c{&gen, vocab, &closest};
      ScoreSummary sum;
      Status s = score_tokens(
          &e, seq, in.data(), in.size(),
          [](void* ctx, const ScorePosition& sp) {
            Check* c = static_cast<Check*>(ctx);
            *c->closest = std::min(*c->closest, top2_gap(sp.logits, c->vocab));
            if (sp.top1 == sp.next) return true;
            c->diverged = true;
            c->at = sp.pos;
            c->want = sp.top1;
            c->logit_gap = sp.logits[sp.top1] - sp.logits[sp.next];
            return false;
          },
          &c, &sum);
      ASSERT_TRUE(s.is_ok()) << g.name << ": " << s.message();
      if (c.diverged) {
        const size_t i = c.at;
        std::printf("%s %s: prompt %s diverges at generated token %zu: %s chose %d, scalar %d; scalar logit gap "
                    "%.6f (logit %d minus logit %d), %s top-2 gap there %.6f\n",
                    short_blob(GetParam()), variants.c_str(), g.name.c_str(), i, variants.c_str(), gen[i], c.want,
                    double(c.logit_gap), c.want, gen[i], variants.c_str(), double(run.gaps[p][i]));
        ADD_FAILURE() << g.name << ": " << variants << " greedy differs from scalar at generated token " << i << " ("
                      << gen[i] << " vs scalar " << c.want << ", scalar logit gap " << c.logit_gap << ")";
        ++n_diverged;
      }
    }
    std::printf("%s %s: %zu prompts x %zu greedy tokens identical to scalar? %s (smallest scalar top-2 gap %.4f)\n",
                short_blob(GetParam()), variants.c_str(), prompts_.size(), gen_tokens_,
                n_diverged == 0 ? "yes" : "NO", double(closest));
  }

  std::vector<GreedyGolden> prompts_;
  size_t gen_tokens_ = kGenTokens;  // greedy tokens per prompt (TERN_EQUIV_TOKENS)
};

TEST_P(IsaEquivalenceTest, GreedyTokensEqualScalar) {
  const std::vector<std::string> variants = testing::host_simd_variants();
  if (variants.empty()) {
    GTEST_SKIP() << "no SIMD variant runs on this CPU";
  }

  // Distinct greedy outcomes and the variants that produced each.
  std::vector<GreedyRun> runs;
  std::vector<std::string> who;
  for (const std::string& isa : variants) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<Engine> e;
    open(isa.c_str(), &e);
    if (HasFatalFailure()) return;
    GreedyRun run;
    greedy(*e, &run);
    if (HasFatalFailure()) return;
    std::printf("%s %s: greedy %zu prompts x %zu tokens in %.1f s\n", short_blob(GetParam()), isa.c_str(),
                prompts_.size(), gen_tokens_, seconds_since(t0));
    size_t k = 0;
    while (k < runs.size() && runs[k].tokens != run.tokens) ++k;
    if (k == runs.size()) {
      runs.push_back(run);
      who.push_back(isa);
    } else {
      who[k] += "," + isa;
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> scalar;
  open("scalar", &scalar);
  if (HasFatalFailure()) return;
  for (size_t k = 0; k < runs.size(); ++k) {
    score(*scalar, runs[k], who[k]);
    if (HasFatalFailure()) return;
  }
  std::printf("%s scalar: scored %zu distinct greedy outcome(s) in %.1f s\n", short_blob(GetParam()), runs.size(),
              seconds_since(t0));
}

// The premise of the teacher-forced shortcut above: with the scalar kernels,
// a token's logits from a batched all-rows forward equal, bit for bit, those
// of prefill + one-token decode steps. Checked on the first golden prompt.
TEST_P(IsaEquivalenceTest, ScalarBatchedRowsEqualDecodeSteps) {
  constexpr size_t kSteps = 6;
  std::unique_ptr<Engine> e;
  open("scalar", &e);
  if (HasFatalFailure()) return;
  const uint32_t vocab = e->hparams().vocab;
  const GreedyGolden& g = prompts_[0];
  ASSERT_GE(g.gen_ids.size(), kSteps);
  KvSequence* seq = e->sequence(0);

  // Incremental: prefill the prompt, then decode the reference tokens.
  std::vector<std::vector<float>> step_rows;
  e->reset(seq);
  ASSERT_TRUE(e->prefill(seq, g.prompt_ids.data(), g.prompt_ids.size()).is_ok());
  for (size_t i = 0; i < kSteps; ++i) {
    step_rows.emplace_back(e->model().logits(), e->model().logits() + vocab);
    if (i + 1 < kSteps) {
      ASSERT_TRUE(e->decode(seq, g.gen_ids[i]).is_ok());
    }
  }

  // Batched: the whole prompt + those tokens in one forward with every row.
  std::vector<int32_t> all = g.prompt_ids;
  all.insert(all.end(), g.gen_ids.begin(), g.gen_ids.begin() + (kSteps - 1));
  ASSERT_LE(all.size(), e->limits().logit_rows);
  e->reset(seq);
  ASSERT_TRUE(e->model().forward(seq, all.data(), uint32_t(all.size()), Model::Logits::kAll).is_ok());
  for (size_t i = 0; i < kSteps; ++i) {
    const float* row = e->model().logits() + (g.prompt_ids.size() - 1 + i) * vocab;
    EXPECT_EQ(0, std::memcmp(row, step_rows[i].data(), vocab * sizeof(float)))
        << g.name << ": batched row for generated token " << i << " differs from the decode step's logits";
  }
}

INSTANTIATE_TEST_SUITE_P(Model, IsaEquivalenceTest,
                         ::testing::Values("smollm2-135m-int4.tern", "smollm2-135m-int8.tern"), blob_name);

}  // namespace
}  // namespace tern
