// The prefix cache on Gemma 3 (issue 16): its sliding-window layers keep
// their KV in a pool of recycled blocks, which the prefix cache shares too
// (runtime/kv_pages.h). Through the scheduler on the real model, greedy:
//   - a shared prefix longer than the 512-token window is prefilled once:
//     later requests take its global blocks and the window blocks their
//     next query sees, and generate exactly what they generate alone on a
//     fresh engine (batch invariance makes that bit for bit);
//   - a request sharing only the first 100 tokens takes those (a prefix
//     inside the window: every window block of it);
//   - hits are whole blocks of 16 before each prompt's last token.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

std::unique_ptr<Engine> open_gemma() {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  const std::string path = testing::model_path("gemma3-270m-int4.tern");
  o.model_path = path.c_str();
  o.threads = 2;
  o.limits.max_context = 1024;
  o.limits.max_sequences = 4;
  o.limits.prefill_chunk = 64;
  o.limits.logit_rows = 4;
  const Status st = e->open(o);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return st.is_ok() ? std::move(e) : nullptr;
}

std::vector<int32_t> encode(Engine* e, const std::string& text) { return testing::encode_text(e, text); }

struct Result {
  std::vector<int32_t> tokens;
  uint32_t prefix_hits = 0;
  bool finished = false;
};

using Results = std::map<uint32_t, Result>;  // by request id

void record(void* ctx, const SchedulerEvent& ev) {
  Result& r = (*static_cast<Results*>(ctx))[ev.request];
  if (ev.token >= 0) r.tokens.push_back(ev.token);
  if (ev.finished) {
    r.finished = true;
    r.prefix_hits = ev.prefix_hit_tokens;
  }
}

constexpr uint32_t kNew = 8;

// The prompts submitted together and run until idle on `sch`; appends
// their results, in submission order, to `out`.
void run_together(Scheduler* sch, const std::vector<const std::vector<int32_t>*>& prompts,
                  std::vector<Result>* out) {
  std::vector<uint32_t> ids;
  for (const auto* p : prompts) {
    SequenceRequest r;
    r.prompt = p->data();
    r.n_prompt = uint32_t(p->size());
    r.max_new_tokens = kNew;
    uint32_t id = 0;
    ASSERT_TRUE(sch->submit(r, &id).is_ok());
    ids.push_back(id);
  }
  Results got;
  for (int i = 0; i < 10000 && !sch->idle(); ++i) ASSERT_TRUE(sch->step(record, &got, nullptr).is_ok());
  ASSERT_TRUE(sch->idle());
  for (uint32_t id : ids) out->push_back(got[id]);
}

TEST(PrefixCacheGemma3, SharedPrefixPastTheWindowIsPrefilledOnce) {
  auto probe = open_gemma();
  ASSERT_TRUE(probe);
  ASSERT_NE(probe->model().window_kv(), nullptr) << "Gemma 3's sliding layers should have their own pool";
  std::string system;
  while (encode(probe.get(), system).size() < 560)
    system += "You are a careful assistant for a small museum of clocks and river boats. ";
  const std::vector<int32_t> sys = encode(probe.get(), system);
  ASSERT_GT(sys.size(), 520u);  // past the 512-token window
  const char* tails[] = {"\nQuestion: when does the museum open?", "\nQuestion: who built the oldest clock?",
                         "\nQuestion: can children ride the boats?"};
  std::vector<std::vector<int32_t>> prompts;
  for (const char* t : tails) prompts.push_back(encode(probe.get(), system + t));
  // A prompt that shares only its first 100 tokens with the others.
  std::vector<int32_t> short_prefix(sys.begin(), sys.begin() + 100);
  const std::vector<int32_t> tail = encode(probe.get(), "Summary of the visit in one line:");
  short_prefix.insert(short_prefix.end(), tail.begin() + 1, tail.end());  // without its BOS
  prompts.push_back(short_prefix);
  probe.reset();

  // Each alone on a fresh engine: nothing cached.
  std::vector<std::vector<int32_t>> ref;
  for (const auto& p : prompts) {
    auto e = open_gemma();
    ASSERT_TRUE(e);
    Scheduler sch;
    ASSERT_TRUE(sch.init(e.get(), SchedulerOptions{}).is_ok());
    std::vector<Result> r;
    run_together(&sch, {&p}, &r);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].prefix_hits, 0u);
    ref.push_back(r[0].tokens);
  }

  // One engine: the first request, then two sharing its prefix together,
  // then the short one.
  auto e = open_gemma();
  ASSERT_TRUE(e);
  Scheduler sch;
  ASSERT_TRUE(sch.init(e.get(), SchedulerOptions{}).is_ok());
  std::vector<Result> got;
  run_together(&sch, {&prompts[0]}, &got);
  run_together(&sch, {&prompts[1], &prompts[2]}, &got);
  run_together(&sch, {&prompts[3]}, &got);
  ASSERT_EQ(got.size(), 4u);
  // The prompts agree on the system text's tokens; hits are its whole blocks.
  uint32_t common = 0;
  while (common < prompts[0].size() && common < prompts[1].size() && prompts[0][common] == prompts[1][common])
    ++common;
  EXPECT_EQ(got[0].prefix_hits, 0u);
  EXPECT_EQ(got[1].prefix_hits, common / 16 * 16);
  EXPECT_EQ(got[2].prefix_hits, common / 16 * 16);
  EXPECT_GE(got[1].prefix_hits, 512u) << "a prefix past the window";
  EXPECT_EQ(got[3].prefix_hits, 96u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(got[i].finished);
    EXPECT_EQ(got[i].tokens, ref[i]) << "request " << i << " differs from itself alone";
  }
  EXPECT_EQ(e->model().kv().used_blocks(), 0u);
  EXPECT_EQ(e->model().window_kv()->used_blocks(), 0u);
}

}  // namespace
}  // namespace tern
