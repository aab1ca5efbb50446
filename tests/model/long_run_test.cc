// Long-run stability: 20,000 generated tokens through the chat session API
// the REPL uses, across many turns and resets, with sampling on. After a
// warm-up (every arena page and the whole working set touched once), the
// process's anonymous resident memory must stay flat (no growth beyond a few
// pages) and the arena's high-water mark and bytes in use must not move: a
// runtime that leaked, or that took arena memory per turn, fails here.
//
// One growth is not a leak: the KV pool is planned arena memory, but the
// arena is an anonymous mapping, so a KV block's pages become resident the
// first time the cache reaches that block. Sampling decides how deep a turn
// goes, so the warm-up cannot promise to have reached the deepest block the
// run ever will. A turn that takes the cache into blocks never used before
// may add exactly the pages those blocks span (counted from the pool's
// addresses: blocks are reused lowest first after a reset, so the touched ones
// are always 0 .. deepest-1); every other byte of growth counts against the
// few-pages allowance.
//
// Reduced scale (the sanitizer job, scripts/sanitize_test.sh, where 20,000
// tokens cost many minutes): TERN_LONG_RUN_TOKENS=N generates N tokens
// instead (N >= 2 x the 1,500-token warm-up, so at least as many tokens are
// checked after the warm-up as went into it). The warm-up, the flat-memory
// and arena checks and the >= 10 resets stay as they are; the count is
// printed. Unset: 20,000.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "port/clock.h"
#include "port/process_stats.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

constexpr uint32_t kTotalTokens = 20000;  // the full run
constexpr uint32_t kWarmupTokens = 1500;
constexpr uint32_t kMinTokens = 2 * kWarmupTokens;  // least TERN_LONG_RUN_TOKENS
constexpr size_t kAllowedGrowth = 64 * 1024;  // a few pages

// Tokens to generate: TERN_LONG_RUN_TOKENS (kMinTokens..kTotalTokens) or
// kTotalTokens; 0 (and a message in *why) for a value that is not a number in range.
uint32_t total_tokens(std::string* why) {
  const char* env = std::getenv("TERN_LONG_RUN_TOKENS");
  if (env == nullptr || *env == '\0') return kTotalTokens;
  char* end = nullptr;
  const unsigned long n = std::strtoul(env, &end, 10);
  if (*end != '\0' || n < kMinTokens || n > kTotalTokens) {
    *why = std::string("TERN_LONG_RUN_TOKENS='") + env + "' is not a token count in " + std::to_string(kMinTokens) +
           ".." + std::to_string(kTotalTokens);
    return 0;
  }
  return uint32_t(n);
}

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

// Pages the KV pool's blocks [0, blocks) span: K and V slices of every layer.
// Pages of the KV pools holding positions [0, positions) of sequence 0,
// whose blocks are the pool's first ones in order (one sequence, a LIFO free
// list): a page is touched only once a position in it is written, so a
// partly written last block counts only up to its last position (counting
// whole blocks over-counted or under-counted by a page per pool, depending
// on where the pools start within their pages).
size_t kv_pages_spanned(Engine& engine, uint32_t positions) {
  if (positions == 0) return 0;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const KvSequence& seq = *engine.sequence(0);
  size_t pages = 0;
  for (uint32_t l = 0; l < engine.hparams().layers; ++l) {
    const PagedKv v = engine.model().kv().layer_view(seq, l);
    const size_t position_elems = size_t(v.kv_heads) * v.head_dim;
    const size_t end_elem = size_t(positions / v.block_tokens) * v.block_stride + (positions % v.block_tokens) * position_elems;
    for (const uint16_t* base : {v.k_pool, v.v_pool}) {
      const uintptr_t begin = reinterpret_cast<uintptr_t>(base);
      const uintptr_t end = reinterpret_cast<uintptr_t>(base + end_elem);
      pages += (end + page - 1) / page - begin / page;
    }
  }
  return pages * page;
}

TEST(LongRun, TwentyThousandTokensKeepMemoryFlat) {
  std::string why;
  const uint32_t total = total_tokens(&why);
  ASSERT_GT(total, 0u) << why;
  if (total != kTotalTokens) std::printf("reduced run: %u tokens (TERN_LONG_RUN_TOKENS)\n", total);
  static Engine engine;  // static: large
  EngineOptions o;
  const std::string path = testing::model_path("smollm2-135m-int4.tern");
  o.model_path = path.c_str();
  // The host's best kernels, as a user runs them (TERN_ISA picks another):
  // under ASan the AVX-512 decode is 3x the AVX2 one, and this test is the
  // sanitizer job's longest.
  const char* isa = std::getenv("TERN_ISA");
  o.isa = isa != nullptr && *isa != '\0' ? isa : nullptr;
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
  // KV positions reached so far, and the pages first made resident by
  // positions reached only after the warm-up (allowed on top of kAllowedGrowth).
  uint32_t deepest = 0, deepest_at_warm = 0, deeper_turns = 0;
  size_t kv_first_touch = 0;
  long long max_excess = 0;  // largest anon growth over warm-up beyond kv_first_touch
  bool warm = false;
  const uint32_t kMaxReply = 160;
  while (generated < total) {
    const char* msg = kMessages[turns % (sizeof(kMessages) / sizeof(kMessages[0]))];
    // Reset when the next turn might not fit, and every 6th turn regardless.
    if (chat.context_used() + 64 + kMaxReply > chat.context_max() || (turns % 6 == 5 && chat.context_used() > 0)) {
      chat.reset();
      ++resets;
    }
    GenerateStats st;
    const uint32_t want = total - generated < kMaxReply ? total - generated : kMaxReply;
    const Status s = chat.turn(msg, std::strlen(msg), want, discard, nullptr, &st);
    ASSERT_TRUE(s.is_ok() || s.code() == StatusCode::kContextFull) << s.message();
    const uint32_t reached = engine.sequence(0)->n_past;  // positions written this turn (no rewinds)
    if (reached > deepest) {
      if (warm) {
        kv_first_touch += kv_pages_spanned(engine, reached) - kv_pages_spanned(engine, deepest);
        ++deeper_turns;
      }
      deepest = reached;
    }
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
      deepest_at_warm = deepest;
    } else if (warm) {
      const size_t a = current_anon_rss_bytes();
      if (a > max_anon_after_warmup) max_anon_after_warmup = a;
      const long long excess = (long long)a - (long long)warm_anon - (long long)kv_first_touch;
      if (excess > max_excess) max_excess = excess;
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
  std::printf("KV positions reached: %u by the warm-up, %u in all (%u later turns went deeper, first-touching %zu "
              "bytes of KV pages)\n",
              deepest_at_warm, deepest, deeper_turns, kv_first_touch);
  EXPECT_GE(generated, total);
  EXPECT_GE(resets, 10u);
  EXPECT_LE(max_excess, (long long)kAllowedGrowth)
      << "anon RSS grew beyond the warm-up by more than the KV pages first reached after it";
  EXPECT_LE(end_anon, warm_anon + kv_first_touch + kAllowedGrowth);
  // File-backed pages may still grow a little as rarely used token texts of
  // the mapped blob are first read; that is bounded by the tokenizer section.
  EXPECT_LE(end_rss, warm_rss + kv_first_touch + kAllowedGrowth + engine.file().tokenizer_bytes);
  EXPECT_EQ(engine.arena().high_water(), warm_high_water);
}

}  // namespace
}  // namespace tern
