// Gemma 3 270M (Q4_K_M GGUF, packed with --weights int4) against an
// independent float32 reference: transformers on the dequantized GGUF
// (tests/goldens/make_gemma3_goldens.py; goldens gemma3_*.tsv). For every
// kernel variant this CPU runs (NEON under qemu: scripts/cross_test.sh), the
// issue's bars:
//   - every prompt tokenizes to the reference's ids (BOS + SentencePiece);
//   - teacher-forced over every golden position (>= 2,000, one prompt longer
//     than the 512-token sliding window): top-1 agreement >= 99%;
//   - greedy continuations equal the reference for the first 32 tokens, unless
//     the reference's own top-2 gap at the first divergence is < 0.1 (a near-
//     tie, either side may take it); position and gap are printed.
// llama.cpp itself agrees with this reference on about 97% of the positions
// (tests/goldens/README.md, peer_agreement.py).
//
// The scalar variant is 5-10x slower than the SIMD ones and Gemma's 262,144-
// row output head runs for every teacher-forced position: when this CPU also
// runs a SIMD variant, scalar runs the ten short prompts and long_recall (547
// tokens: past the window), about 1,500 positions and 4 greedy prompts, to
// stay within CI time (the bar stays 99%); TERN_GEMMA_SCALAR_FULL=1 runs all.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "runtime/engine.h"
#include "runtime/score.h"
#include "tests/support/forced_agreement.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

using testing::ForcedGolden;
using testing::GreedyGolden;

constexpr const char* kBlob = "gemma3-270m-int4.tern";

// The prompts this variant runs (see the top).
bool runs_prompt(const std::string& variant, const std::string& name, bool greedy) {
  if (!testing::prompt_selected(name)) return false;
  const char* full = std::getenv("TERN_GEMMA_SCALAR_FULL");
  if (variant != "scalar" || !testing::host_runs_simd_variant() || (full && std::string(full) == "1")) return true;
  if (greedy) return name == "capital" || name == "py_code" || name == "zh_prose" || name == "long_recall";
  return name != "long_prose" && name != "long_code";
}

bool subset_run(const std::string& variant) {
  const char* sel = std::getenv("TERN_GOLDEN_PROMPTS");
  return (sel && *sel) || !runs_prompt(variant, "long_prose", false);
}

std::vector<std::string> variants() {
  std::vector<std::string> out;
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  for (size_t i = 0; i < n; ++i) out.push_back(v[i].name);
  return out;
}

class Gemma3GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    size_t n = 0;
    const KernelVariant* v = kernel_variants(&n);
    for (size_t i = 0; i < n; ++i) {
      if (GetParam() == v[i].name && (v[i].required_isa & ~host_isa_bits()) != 0) {
        GTEST_SKIP() << "CPU lacks " << GetParam();
      }
    }
    const std::string path = testing::model_path(kBlob);
    EngineOptions o;
    o.model_path = path.c_str();
    o.isa = GetParam().c_str();
    o.limits.max_context = 1024;
    o.limits.prefill_chunk = 64;
    o.limits.logit_rows = 64;
    engine_ = std::make_unique<Engine>();
    const Status s = engine_->open(o);
    ASSERT_TRUE(s.is_ok()) << path << ": " << s.message();
  }
  std::unique_ptr<Engine> engine_;
};

TEST_P(Gemma3GoldenTest, PromptsTokenizeLikeReference) {
  for (const GreedyGolden& g : testing::read_greedy("gemma3")) {
    std::vector<int32_t> ids(8192);
    size_t n = 0;
    const Status s = engine_->tokenizer().encode_prompt(g.prompt.data(), g.prompt.size(), false, true, ids.data(), ids.size(), &n);
    ASSERT_TRUE(s.is_ok()) << s.message();
    ids.resize(n);
    EXPECT_EQ(ids, g.prompt_ids) << g.name;
  }
}

TEST_P(Gemma3GoldenTest, TeacherForcedMatchesReference) {
  const testing::ForcedAgreement a = testing::score_goldens(
      engine_.get(), "gemma3", [&](const std::string& name) { return runs_prompt(GetParam(), name, false); },
      512);
  ASSERT_GT(a.prompts, 0u) << "TERN_GOLDEN_PROMPTS selects no golden prompt";
  const size_t total = a.total, longest = a.longest;
  const double agreement = a.agreement();
  std::printf("[gemma3 %s] teacher-forced over %zu positions of %zu prompts (longest %zu tokens): top-1 agreement "
              "%.4f, mean |dlogp| %.4f, max %.4f; %zu positions past the 512-token window, agreement %.4f\n",
              GetParam().c_str(), total, a.prompts, longest, agreement, a.mean_abs, a.max_abs, a.beyond,
              a.agreement_beyond());
  if (!subset_run(GetParam())) {
    EXPECT_GE(total, 2000u);
  }
  const char* sel = std::getenv("TERN_GOLDEN_PROMPTS");
  if (!(sel && *sel)) {
    EXPECT_GE(agreement, 0.99);  // every prompt (scalar: its 1,500-position subset)
  } else {
    // A prompt or two (qemu, sanitizers): too few positions for a percentage
    // to mean much (one near-tie in 69 is 98.6%), so every disagreement must
    // be at a near-tie of the reference instead.
    for (const std::string& m : a.misses_not_near_tie) ADD_FAILURE() << "top-1 differs where the reference is no near-tie: " << m;
  }
  if (!(std::getenv("TERN_GOLDEN_PROMPTS") && *std::getenv("TERN_GOLDEN_PROMPTS"))) {
    EXPECT_GT(longest, 600u) << "no prompt reaches past the sliding window";
  }
}

TEST_P(Gemma3GoldenTest, GreedyContinuationsMatchReference) {
  for (const GreedyGolden& g : testing::read_greedy("gemma3")) {
    if (!runs_prompt(GetParam(), g.name, true)) continue;
    KvSequence* seq = engine_->sequence(0);
    engine_->reset(seq);
    ASSERT_TRUE(engine_->prefill(seq, g.prompt_ids.data(), g.prompt_ids.size()).is_ok());
    const uint32_t vocab = engine_->hparams().vocab;
    std::vector<int32_t> got;
    for (size_t i = 0; i < g.gen_ids.size(); ++i) {
      const float* row = engine_->model().logits();
      int32_t best = 0;
      for (uint32_t v = 1; v < vocab; ++v) {
        if (row[v] > row[best]) best = int32_t(v);
      }
      got.push_back(best);
      if (best != g.gen_ids[i]) break;
      if (i + 1 < g.gen_ids.size()) {
        ASSERT_TRUE(engine_->decode(seq, best).is_ok());
      }
    }
    size_t same = 0;
    while (same < got.size() && same < g.gen_ids.size() && got[same] == g.gen_ids[same]) ++same;
    const size_t need = std::min<size_t>(32, g.gen_ids.size());
    if (same < g.gen_ids.size()) {
      const double gap = g.gen_gaps[same];
      std::printf("[gemma3 %s] %s: diverges at generated token %zu (ref %d, got %d), reference top-2 gap %.4f\n",
                  GetParam().c_str(), g.name.c_str(), same, g.gen_ids[same], got[same], gap);
      if (same < need) {
        EXPECT_LT(gap, 0.1) << g.name << ": diverged at token " << same << " where the reference is not a near-tie";
      }
    } else {
      std::printf("[gemma3 %s] %s: all %zu generated tokens equal\n", GetParam().c_str(), g.name.c_str(), same);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, Gemma3GoldenTest, ::testing::ValuesIn(variants()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s;
                           for (char c : i.param) s += c == '-' ? '_' : c;
                           return s;
                         });

}  // namespace
}  // namespace tern
