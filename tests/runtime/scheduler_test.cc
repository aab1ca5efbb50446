// The continuous-batching scheduler (runtime/scheduler.h, issue 16), on the
// tiny llama (tests/support/tiny_model.h) with the scalar kernels (and, for
// the mixed-batch test, every SIMD variant the CPU runs), whose matrix
// products are batch-invariant (kernels/kernels.h): a request's tokens must
// be exactly those it gets alone, whatever runs beside it, whatever the
// token budget (how prompts are chunked) and the thread count, greedy and
// seeded sampling alike. And the edge cases: more requests than sequences,
// a pool too small for everyone (preemption and recomputation), a request
// too big for the pool, cancellation while running and while waiting, stop
// tokens and strings, refused requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/scheduler.h"
#include "tests/support/goldens.h"  // host_simd_variants
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

const std::vector<uint8_t>& tiny() {
  static const std::vector<uint8_t> blob = [] {
    std::vector<uint8_t> b;
    EXPECT_TRUE(testing::tiny_blob(&b, 3, blob::WeightKind::kInt8).is_ok());
    return b;
  }();
  return blob;
}

struct Config {
  uint32_t threads = 1;
  uint32_t kv_blocks = 0;  // 0: every sequence's full context
  uint32_t max_context = 96;
  uint32_t max_sequences = 4;
  uint32_t logit_rows = 4;
  const char* isa = "scalar";
};

std::unique_ptr<Engine> open_engine(const Config& c) {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  o.blob_data = tiny().data();
  o.blob_size = tiny().size();
  o.isa = c.isa;
  o.threads = c.threads;
  o.limits.max_context = c.max_context;
  o.limits.max_sequences = c.max_sequences;
  o.limits.prefill_chunk = 16;
  o.limits.kv_block_tokens = 16;
  o.limits.logit_rows = c.logit_rows;
  o.limits.kv_blocks = c.kv_blocks;
  const Status s = e->open(o);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return s.is_ok() ? std::move(e) : nullptr;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  StatusCode error = StatusCode::kOk;
  uint32_t preemptions = 0;
  uint32_t prefix_hits = 0;
  int events_after_finish = 0;
  bool finished = false;
};
using Outcomes = std::map<uint32_t, Outcome>;  // by request id

void record(void* ctx, const SchedulerEvent& e) {
  Outcome& o = (*static_cast<Outcomes*>(ctx))[e.request];
  if (o.finished) ++o.events_after_finish;
  if (e.token >= 0) o.tokens.push_back(e.token);
  o.text.append(e.text, e.text_len);
  if (e.finished) {
    o.finished = true;
    o.finish = e.finish;
    o.error = e.error;
    o.preemptions = e.preemptions;
    o.prefix_hits = e.prefix_hit_tokens;
  }
}

// Test requests: prompts of varied lengths (random ids below the special
// tokens), varied lengths of output, greedy and seeded sampling.
struct Spec {
  std::vector<int32_t> prompt;
  uint32_t max_new;
  SamplerParams sampling;
};

std::vector<Spec> specs(uint32_t n, uint32_t seed = 5) {
  std::mt19937 rng(seed);
  std::vector<Spec> out;
  const uint32_t lengths[] = {3, 40, 17, 1, 29, 8, 23, 12};
  const uint32_t news[] = {12, 5, 20, 30, 1, 16, 9, 25};
  for (uint32_t i = 0; i < n; ++i) {
    Spec s;
    for (uint32_t k = 0; k < lengths[i % 8]; ++k) s.prompt.push_back(int32_t(rng() % 256));
    s.max_new = news[i % 8];
    if (i % 2 == 1) {
      s.sampling.temperature = 0.9f;
      s.sampling.top_k = 40;
      s.sampling.top_p = 0.95f;
      s.sampling.repetition_penalty = 1.1f;
      s.sampling.seed = 1000 + i;
    }
    out.push_back(s);
  }
  return out;
}

SequenceRequest request_of(const Spec& s) {
  SequenceRequest r;
  r.prompt = s.prompt.data();
  r.n_prompt = uint32_t(s.prompt.size());
  r.max_new_tokens = s.max_new;
  r.sampling = s.sampling;
  return r;
}

// Run every spec through one scheduler until idle; outcomes in spec order.
std::vector<Outcome> run(Engine* e, const std::vector<Spec>& ss, uint32_t budget, uint32_t* preempted = nullptr,
                         uint32_t max_steps = 10000) {
  Scheduler sch;
  SchedulerOptions so;
  so.token_budget = budget;
  EXPECT_TRUE(sch.init(e, so).is_ok());
  std::vector<uint32_t> ids;
  for (const Spec& s : ss) {
    uint32_t id = 0;
    const Status st = sch.submit(request_of(s), &id);
    EXPECT_TRUE(st.is_ok()) << st.message();
    ids.push_back(id);
  }
  Outcomes got;
  uint32_t steps = 0, pre = 0;
  while (!sch.idle() && steps++ < max_steps) {
    StepStats st;
    const Status s = sch.step(record, &got, &st);
    EXPECT_TRUE(s.is_ok()) << s.message();
    EXPECT_LE(st.decode_rows + st.prefill_rows, budget == 0 ? 16u : budget);
    pre += st.preempted;
  }
  EXPECT_TRUE(sch.idle()) << "requests still live after " << max_steps << " steps";
  EXPECT_EQ(e->model().kv().used_blocks(), 0u) << "every finished request gives its blocks back";
  if (preempted) *preempted = pre;
  std::vector<Outcome> out;
  for (uint32_t id : ids) out.push_back(got[id]);
  return out;
}

// Steps until idle, at most max_steps (a stuck scheduler fails, not hangs).
void drain(Scheduler* sch, Outcomes* got, uint32_t max_steps = 10000) {
  for (uint32_t i = 0; i < max_steps && !sch->idle(); ++i) ASSERT_TRUE(sch->step(record, got, nullptr).is_ok());
  ASSERT_TRUE(sch->idle()) << "requests still live after " << max_steps << " steps";
}

std::vector<Outcome> alone(Engine* e, const std::vector<Spec>& ss) {
  std::vector<Outcome> out;
  for (const Spec& s : ss) out.push_back(run(e, {s}, 16)[0]);
  return out;
}

void expect_same_tokens(const std::vector<Outcome>& a, const std::vector<Outcome>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(b[i].finished) << what << " request " << i;
    EXPECT_EQ(a[i].tokens, b[i].tokens) << what << " request " << i;
    EXPECT_EQ(int(a[i].finish), int(b[i].finish)) << what << " request " << i;
    EXPECT_EQ(b[i].events_after_finish, 0) << what << " request " << i;
  }
}

TEST(Scheduler, AloneEqualsTheOneSequenceGenerate) {
  auto e = open_engine({});
  ASSERT_TRUE(e);
  for (const Spec& s : specs(2)) {
    const Outcome o = run(e.get(), {s}, 16)[0];
    // The same by hand on one sequence: Engine::prefill (chunks of one
    // sequence), decode steps, and a SamplingState of the request's parameters.
    Engine& eng = *e;
    SamplingState st;
    st.reset(s.sampling);
    KvSequence* seq = eng.sequence(0);
    eng.reset(seq);
    ASSERT_TRUE(eng.prefill(seq, s.prompt.data(), s.prompt.size()).is_ok());
    std::vector<int32_t> hist = s.prompt, toks;
    for (uint32_t i = 0; i < s.max_new; ++i) {
      if (i > 0) {
        ASSERT_TRUE(eng.decode(seq, hist.back()).is_ok());
      }
      const uint32_t w = s.sampling.repeat_last_n, recent = uint32_t(hist.size()) < w ? uint32_t(hist.size()) : w;
      const int32_t t = eng.sampler().sample(eng.logits(), hist.data() + hist.size() - recent, recent, &st);
      hist.push_back(t);
      toks.push_back(t);
    }
    eng.reset(seq);
    EXPECT_EQ(o.tokens, toks);
    EXPECT_EQ(int(o.finish), int(FinishReason::kLength));
  }
}

// On the scalar kernels and on every SIMD variant this CPU runs.
TEST(Scheduler, MixedEqualsAloneAcrossBudgetsAndThreads) {
  const std::vector<Spec> ss = specs(7);  // 7 requests, 4 sequences: three wait at first
  std::vector<std::string> isas = testing::host_simd_variants();
  isas.insert(isas.begin(), "scalar");
  for (const std::string& isa : isas) {
    Config base;
    base.isa = isa.c_str();
    std::vector<Outcome> ref;
    {
      auto e = open_engine(base);
      ASSERT_TRUE(e);
      ref = alone(e.get(), ss);
    }
    for (uint32_t threads : {1u, 2u}) {
      Config c = base;
      c.threads = threads;
      auto e = open_engine(c);
      ASSERT_TRUE(e);
      for (uint32_t budget : {4u, 7u, 16u}) {
        expect_same_tokens(ref, run(e.get(), ss, budget),
                           isa + " threads " + std::to_string(threads) + " budget " + std::to_string(budget));
      }
    }
  }
}

TEST(Scheduler, PoolExhaustionPreemptsAndResumesByRecomputation) {
  const std::vector<Spec> ss = specs(6);
  std::vector<Outcome> ref;
  {
    auto e = open_engine({});
    ASSERT_TRUE(e);
    ref = alone(e.get(), ss);
  }
  // 5 blocks of 16 tokens for 4 sequences of up to 70 tokens (5 blocks each).
  auto e = open_engine({1, 5});
  ASSERT_TRUE(e);
  uint32_t preempted = 0;
  const std::vector<Outcome> got = run(e.get(), ss, 16, &preempted);
  EXPECT_GT(preempted, 0u) << "the pool should have run out";
  expect_same_tokens(ref, got, "small pool");
  uint32_t resumed = 0;
  for (const Outcome& o : got) resumed += o.preemptions;
  EXPECT_EQ(resumed, preempted);
}

TEST(Scheduler, RequestTooBigForThePoolEndsWithKvFullAlone) {
  std::vector<Spec> ss = specs(2);
  ss[0].max_new = 60;  // 3 + 60 tokens: 4 blocks
  ss[1].max_new = 8;
  std::vector<Outcome> ref;
  {
    auto e = open_engine({});
    ASSERT_TRUE(e);
    ref = alone(e.get(), ss);
  }
  auto e = open_engine({1, 3});  // 48 tokens in all
  ASSERT_TRUE(e);
  const std::vector<Outcome> got = run(e.get(), ss, 16);
  EXPECT_EQ(int(got[0].finish), int(FinishReason::kError));
  EXPECT_EQ(got[0].error, StatusCode::kKvFull);
  ASSERT_LE(got[0].tokens.size(), ref[0].tokens.size());
  EXPECT_TRUE(std::equal(got[0].tokens.begin(), got[0].tokens.end(), ref[0].tokens.begin()))
      << "what it generated before the pool ran out is what it generates alone";
  EXPECT_EQ(got[1].tokens, ref[1].tokens) << "the neighbour is unharmed";
  EXPECT_EQ(int(got[1].finish), int(FinishReason::kLength));
}

TEST(Scheduler, CancelRunningAndWaitingRequests) {
  auto e = open_engine({1, 0, 96, 2, 2});  // two sequences: the third request waits
  ASSERT_TRUE(e);
  std::vector<Spec> ss = specs(3);
  for (Spec& s : ss) s.max_new = 20;
  const std::vector<Outcome> ref = alone(e.get(), ss);
  Scheduler sch;
  ASSERT_TRUE(sch.init(e.get(), SchedulerOptions{}).is_ok());
  uint32_t ids[3];
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sch.submit(request_of(ss[size_t(i)]), &ids[i]).is_ok());
  Outcomes got;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(sch.step(record, &got, nullptr).is_ok());
  EXPECT_EQ(sch.waiting(), 1u);
  ASSERT_TRUE(sch.cancel(ids[0]).is_ok());  // running
  ASSERT_TRUE(sch.cancel(ids[2]).is_ok());  // waiting: never admitted
  EXPECT_EQ(sch.cancel(12345).code(), StatusCode::kInvalidArgument);
  drain(&sch, &got);
  EXPECT_EQ(int(got[ids[0]].finish), int(FinishReason::kCaller));
  EXPECT_LT(got[ids[0]].tokens.size(), 20u);
  EXPECT_TRUE(std::equal(got[ids[0]].tokens.begin(), got[ids[0]].tokens.end(), ref[0].tokens.begin()));
  EXPECT_EQ(int(got[ids[2]].finish), int(FinishReason::kCaller));
  EXPECT_TRUE(got[ids[2]].tokens.empty());
  EXPECT_EQ(got[ids[1]].tokens, ref[1].tokens);
  EXPECT_EQ(e->model().kv().used_blocks(), 0u);
  EXPECT_EQ(sch.cancel(ids[1]).code(), StatusCode::kInvalidArgument) << "finished requests are gone";
}

TEST(Scheduler, StopTokensAndStopStrings) {
  auto e = open_engine({});
  ASSERT_TRUE(e);
  std::vector<Spec> ss = specs(1);
  ss[0].max_new = 12;
  const Outcome ref = alone(e.get(), ss)[0];
  ASSERT_EQ(ref.tokens.size(), 12u);
  // Stop at the first occurrence of the 5th token.
  const int32_t stop = ref.tokens[4];
  const size_t at = size_t(std::find(ref.tokens.begin(), ref.tokens.end(), stop) - ref.tokens.begin());
  // The text of tokens 7..8 as a stop string (byte tokens: one byte each... or a merge).
  std::string tail;
  for (size_t i = 7; i < 9; ++i) {
    const char* b = nullptr;
    size_t n = 0;
    ASSERT_TRUE(e->tokenizer().token_bytes(ref.tokens[i], &b, &n));
    tail.append(b, n);
  }
  Scheduler sch;
  ASSERT_TRUE(sch.init(e.get(), SchedulerOptions{}).is_ok());
  SequenceRequest a = request_of(ss[0]);
  a.stop_ids = &stop;
  a.n_stop = 1;
  SequenceRequest b = request_of(ss[0]);
  const char* strings[1] = {tail.c_str()};
  const uint32_t lens[1] = {uint32_t(tail.size())};
  b.stop_strings = strings;
  b.stop_string_lens = lens;
  b.n_stop_strings = 1;
  uint32_t ia = 0, ib = 0;
  ASSERT_TRUE(sch.submit(a, &ia).is_ok());
  ASSERT_TRUE(sch.submit(b, &ib).is_ok());
  Outcomes got;
  drain(&sch, &got);
  EXPECT_EQ(int(got[ia].finish), int(FinishReason::kStopToken));
  EXPECT_EQ(got[ia].tokens, std::vector<int32_t>(ref.tokens.begin(), ref.tokens.begin() + long(at) + 1));
  EXPECT_EQ(int(got[ib].finish), int(FinishReason::kStopString));
  EXPECT_EQ(got[ib].text.find(tail), std::string::npos) << "the stop string is cut from the text";
  EXPECT_LE(got[ib].tokens.size(), 9u);
}

TEST(Scheduler, RefusedRequestsAndContextEdges) {
  auto e = open_engine({1, 4, 64});  // 64 tokens of context, 4 blocks of 16
  ASSERT_TRUE(e);
  Scheduler sch;
  ASSERT_TRUE(sch.init(e.get(), SchedulerOptions{}).is_ok());
  std::vector<int32_t> prompt(64, 65);
  SequenceRequest r;
  r.prompt = prompt.data();
  uint32_t id = 0;
  r.n_prompt = 0;
  EXPECT_EQ(sch.submit(r, &id).code(), StatusCode::kInvalidArgument) << "empty prompt";
  std::vector<int32_t> longer(65, 65);
  r.prompt = longer.data();
  r.n_prompt = 65;
  EXPECT_EQ(sch.submit(r, &id).code(), StatusCode::kPromptTooLong);
  r.prompt = prompt.data();
  r.n_prompt = 3;
  prompt[1] = int32_t(testing::kTinyVocab);
  EXPECT_EQ(sch.submit(r, &id).code(), StatusCode::kInvalidToken);
  prompt[1] = 65;
  r.sampling.temperature = -1.0f;
  EXPECT_EQ(sch.submit(r, &id).code(), StatusCode::kInvalidArgument) << "bad sampling parameters";
  r.sampling = SamplerParams{};
  EXPECT_TRUE(sch.idle()) << "refused requests are not queued";
  // A prompt of exactly the context: prefilled, then no room for a token.
  r.n_prompt = 64;
  ASSERT_TRUE(sch.submit(r, &id).is_ok());
  Outcomes got;
  drain(&sch, &got);
  EXPECT_EQ(int(got[id].finish), int(FinishReason::kContext));
  EXPECT_EQ(got[id].error, StatusCode::kContextFull);
  EXPECT_TRUE(got[id].tokens.empty());
  // One token short of the context: one token, then the context is full.
  r.n_prompt = 63;
  r.max_new_tokens = 10;
  ASSERT_TRUE(sch.submit(r, &id).is_ok());
  drain(&sch, &got);
  EXPECT_EQ(got[id].tokens.size(), 1u);
  EXPECT_EQ(int(got[id].finish), int(FinishReason::kContext));
  // The queue's limit.
  r.n_prompt = 2;
  uint32_t accepted = 0;
  Status last;
  for (uint32_t i = 0; i <= Scheduler::kMaxRequests && last.is_ok(); ++i) {
    last = sch.submit(r, &id);
    accepted += last.is_ok();
  }
  EXPECT_EQ(accepted, Scheduler::kMaxRequests);
  EXPECT_EQ(last.code(), StatusCode::kBusy);
}

}  // namespace
}  // namespace tern

namespace tern {
namespace {

// Four requests whose prompts share their first 40 tokens (a system prompt),
// then differ.
std::vector<Spec> shared_prefix_specs() {
  std::vector<Spec> ss = specs(4, 11);
  for (Spec& sp : ss) {
    sp.prompt.resize(48);
    for (uint32_t k = 0; k < 40; ++k) sp.prompt[k] = int32_t(10 + (k * 37) % 240);
  }
  return ss;
}

// Each request in a fresh engine: nothing cached.
std::vector<Outcome> fresh_alone(const std::vector<Spec>& ss, const Config& c = {}) {
  std::vector<Outcome> out;
  for (const Spec& s : ss) {
    auto e = open_engine(c);
    out.push_back(run(e.get(), {s}, 16)[0]);
  }
  return out;
}

void step_until_first_token(Scheduler* sch, Outcomes* got, uint32_t id) {
  for (int i = 0; i < 100 && (*got)[id].tokens.empty(); ++i) ASSERT_TRUE(sch->step(record, got, nullptr).is_ok());
  ASSERT_FALSE((*got)[id].tokens.empty());
}

// The shared-prefix requests, their lone results, and a scheduler on a fresh
// engine where the first has been prefilled (its blocks registered).
struct PrefixSetup {
  std::vector<Spec> ss = shared_prefix_specs();
  std::vector<Outcome> ref = fresh_alone(ss);
  std::unique_ptr<Engine> e = open_engine({});
  Scheduler sch;
  uint32_t ids[4] = {};
  Outcomes got;
  void start() {
    ASSERT_TRUE(e);
    ASSERT_TRUE(sch.init(e.get(), SchedulerOptions{}).is_ok());
    ASSERT_TRUE(sch.submit(request_of(ss[0]), &ids[0]).is_ok());
    step_until_first_token(&sch, &got, ids[0]);
  }
};

TEST(SchedulerPrefixCache, SharedPrefixIsPrefilledOnce) {
  PrefixSetup p;
  p.start();
  if (::testing::Test::HasFatalFailure()) return;
  auto& [ss, ref, e, sch, ids, got] = p;
  uint32_t step_hits = 0;
  for (int i = 1; i < 4; ++i) ASSERT_TRUE(sch.submit(request_of(ss[size_t(i)]), &ids[i]).is_ok());
  while (!sch.idle()) {
    StepStats st;
    ASSERT_TRUE(sch.step(record, &got, &st).is_ok());
    step_hits += st.prefix_hit_tokens;
  }
  EXPECT_EQ(got[ids[0]].prefix_hits, 0u);
  for (int i = 1; i < 4; ++i) {
    // Two whole blocks of 16 lie inside the 40 shared tokens.
    EXPECT_EQ(got[ids[i]].prefix_hits, 32u) << "request " << i;
  }
  EXPECT_EQ(step_hits, 96u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got[ids[i]].tokens, ref[size_t(i)].tokens) << "request " << i;
  EXPECT_EQ(e->model().kv().used_blocks(), 0u);
  EXPECT_GT(e->model().kv().cached_idle_blocks(), 0u) << "finished requests leave their blocks cached";
  // Later, the whole first prompt (48 tokens: 2 full blocks before its last
  // token... and its third, 32..47, ends at the last token: not matched) hits again.
  const Outcome again = run(e.get(), {ss[0]}, 16)[0];
  EXPECT_EQ(again.prefix_hits, 32u);
  EXPECT_EQ(again.tokens, ref[0].tokens);
}

// All four submitted at once: the three that share the first request's
// prefix wait for its blocks instead of prefilling them too.
TEST(SchedulerPrefixCache, RequestsArrivingTogetherPrefillTheSharedPrefixOnce) {
  const std::vector<Spec> ss = shared_prefix_specs();
  const std::vector<Outcome> ref = fresh_alone(ss);
  for (uint32_t budget : {16u, 64u}) {
    auto e = open_engine({});
    ASSERT_TRUE(e);
    Scheduler sch;
    SchedulerOptions so;
    so.token_budget = budget;
    ASSERT_TRUE(sch.init(e.get(), so).is_ok());
    Outcomes got;
    uint32_t ids[4] = {};
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(sch.submit(request_of(ss[size_t(i)]), &ids[i]).is_ok());
    uint32_t prefill_rows = 0;
    while (!sch.idle()) {
      StepStats st;
      ASSERT_TRUE(sch.step(record, &got, &st).is_ok());
      prefill_rows += st.prefill_rows;
    }
    EXPECT_EQ(got[ids[0]].prefix_hits, 0u);
    for (int i = 1; i < 4; ++i) EXPECT_EQ(got[ids[i]].prefix_hits, 32u) << "request " << i << " budget " << budget;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got[ids[i]].tokens, ref[size_t(i)].tokens) << "request " << i;
    EXPECT_EQ(prefill_rows, 4u * 48 - 3 * 32) << "budget " << budget;
  }
}

TEST(SchedulerPrefixCache, CancellingASharerLeavesTheOthersAndTheCache) {
  PrefixSetup p;
  p.start();
  if (::testing::Test::HasFatalFailure()) return;
  auto& [ss, ref, e, sch, ids, got] = p;
  ASSERT_TRUE(sch.submit(request_of(ss[1]), &ids[1]).is_ok());
  ASSERT_TRUE(sch.submit(request_of(ss[2]), &ids[2]).is_ok());
  step_until_first_token(&sch, &got, ids[1]);
  ASSERT_TRUE(sch.cancel(ids[1]).is_ok());  // it shares blocks with 0 and 2
  drain(&sch, &got);
  EXPECT_EQ(int(got[ids[1]].finish), int(FinishReason::kCaller));
  EXPECT_EQ(got[ids[0]].tokens, ref[0].tokens);
  EXPECT_EQ(got[ids[2]].tokens, ref[2].tokens);
  EXPECT_EQ(got[ids[2]].prefix_hits, 32u);
  const Outcome later = run(e.get(), {ss[3]}, 16)[0];
  EXPECT_EQ(later.prefix_hits, 32u) << "the shared blocks are still cached";
  EXPECT_EQ(later.tokens, ref[3].tokens);
}

TEST(SchedulerPrefixCache, IdleCachedBlocksAreEvictedLeastRecentFirst) {
  // 6 blocks of 16 tokens: a finished request's cached blocks must make way.
  const Config small{1, 6};
  std::vector<Spec> ss = shared_prefix_specs();
  ss[0].max_new = 20;  // 48 + 20 tokens: 5 blocks
  std::vector<Spec> other = specs(1, 99);
  other[0].prompt.resize(60, 7);
  other[0].max_new = 20;  // 80 tokens: 5 blocks, nothing in common
  const std::vector<Outcome> ref = fresh_alone({ss[0], other[0]}, small);
  auto e = open_engine(small);
  ASSERT_TRUE(e);
  const Outcome a = run(e.get(), {ss[0]}, 16)[0];
  EXPECT_EQ(a.tokens, ref[0].tokens);
  const uint32_t cached = e->model().kv().cached_idle_blocks();
  EXPECT_GE(cached, 4u);
  const Outcome b = run(e.get(), {other[0]}, 16)[0];
  EXPECT_EQ(b.tokens, ref[1].tokens) << "evicted blocks come back clean";
  EXPECT_EQ(b.prefix_hits, 0u);
  EXPECT_GE(e->model().kv().evictions(), 3u);
  EXPECT_EQ(e->model().kv().used_blocks(), 0u);
  // Evicted blocks left the hash table: the first prompt again matches only
  // what is still cached of it, and generates what it did.
  const Outcome a2 = run(e.get(), {ss[0]}, 16)[0];
  EXPECT_EQ(a2.tokens, ref[0].tokens);
}

}  // namespace
}  // namespace tern
