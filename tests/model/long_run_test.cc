// Long-run stability: 20,000 generated tokens through the chat session API
// the REPL uses, across many turns and resets, with sampling on. After a
// warm-up (every arena page and the whole working set touched once), the
// process's anonymous resident memory must stay flat (no growth beyond a few
// pages) and the arena's high-water mark and bytes in use must not move: a
// runtime that leaked, or that took arena memory per turn, fails here.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "kernels/dispatch.h"
#include "port/clock.h"
#include "port/process_stats.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

constexpr uint32_t kTotalTokens = 20000;
constexpr uint32_t kWarmupTokens = 1500;
constexpr size_t kAllowedGrowth = 64 * 1024;  // a few pages

const char* const kMessages[] = {
    "Tell me a story about a dragon who learns to bake bread.",
    "What are the planets of the solar system?",
    "Write a short poem about the sea.",
    "Explain how a bicycle works.",
    "Give me three tips for learning a new language.",
    "Describe a busy market in the morning.",
    "Why is the sky blue?",
    "List some fruits and what color they are.",
    "What should I pack for a trip to the mountains?",
    "Tell me about your favorite book.",
};

void discard(void*, const char*, size_t) {}

TEST(LongRun, TwentyThousandTokensKeepMemoryFlat) {
  static Engine engine;  // static: large
  EngineOptions o;
  const std::string path = testing::model_path("smollm2-135m-int4.tern");
  o.model_path = path.c_str();
  o.isa = (host_isa_bits() & kIsaAvx2) ? "avx2" : nullptr;
  o.limits.max_context = 512;  // short contexts: many resets, cheap attention
  o.sampling.temperature = 0.8f;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95f;
  o.sampling.repetition_penalty = 1.1f;
  o.sampling.seed = 1234;
  ASSERT_TRUE(engine.open(o).is_ok());
  static ChatSession chat;
  ASSERT_TRUE(chat.init(&engine, 0).is_ok());

  const uint64_t t0 = now_ns();
  uint32_t generated = 0, turns = 0, resets = 0, full = 0;
  size_t warm_anon = 0, warm_rss = 0, warm_high_water = 0, warm_used = 0;
  size_t max_anon_after_warmup = 0;
  bool warm = false;
  const uint32_t kMaxReply = 160;
  while (generated < kTotalTokens) {
    const char* msg = kMessages[turns % (sizeof(kMessages) / sizeof(kMessages[0]))];
    // Reset when the next turn might not fit, and every 6th turn regardless.
    if (chat.context_used() + 64 + kMaxReply > chat.context_max() || (turns % 6 == 5 && chat.context_used() > 0)) {
      chat.reset();
      ++resets;
    }
    GenerateStats st;
    const uint32_t want = kTotalTokens - generated < kMaxReply ? kTotalTokens - generated : kMaxReply;
    const Status s = chat.turn(msg, std::strlen(msg), want, discard, nullptr, &st);
    ASSERT_TRUE(s.is_ok() || s.code() == StatusCode::kContextFull) << s.message();
    if (!s.is_ok()) {
      ++full;
      chat.reset();
      ++resets;
    }
    generated += st.generated;
    ++turns;
    if (!warm && generated >= kWarmupTokens && resets >= 2) {
      warm = true;
      warm_anon = current_anon_rss_bytes();
      warm_rss = current_rss_bytes();
      warm_high_water = engine.arena().high_water();
      warm_used = engine.arena().used();
    } else if (warm) {
      const size_t a = current_anon_rss_bytes();
      if (a > max_anon_after_warmup) max_anon_after_warmup = a;
      ASSERT_EQ(engine.arena().high_water(), warm_high_water) << "after " << generated << " tokens";
      ASSERT_EQ(engine.arena().used(), warm_used) << "after " << generated << " tokens";
    }
  }
  chat.reset();
  const double seconds = ns_to_ms(now_ns() - t0) / 1000.0;
  const size_t end_anon = current_anon_rss_bytes();
  const size_t end_rss = current_rss_bytes();
  ASSERT_TRUE(warm);
  ASSERT_GT(warm_anon, 0u) << "no /proc/self/statm";
  std::printf("long run: %u tokens, %u turns, %u resets (%u on a full context) in %.1f s (%.1f tok/s)\n"
              "anon RSS warm %zu -> end %zu (max %zu); total RSS warm %zu -> end %zu; arena high-water %zu\n",
              generated, turns, resets, full, seconds, generated / seconds, warm_anon, end_anon,
              max_anon_after_warmup, warm_rss, end_rss, warm_high_water);
  EXPECT_GE(generated, kTotalTokens);
  EXPECT_GE(resets, 10u);
  EXPECT_LE(max_anon_after_warmup, warm_anon + kAllowedGrowth);
  EXPECT_LE(end_anon, warm_anon + kAllowedGrowth);
  // File-backed pages may still grow a little as rarely used token texts of
  // the mapped blob are first read; that is bounded by the tokenizer section.
  EXPECT_LE(end_rss, warm_rss + kAllowedGrowth + engine.file().tokenizer_bytes);
  EXPECT_EQ(engine.arena().high_water(), warm_high_water);
}

}  // namespace
}  // namespace tern
