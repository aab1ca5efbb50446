// Model::forward_batch (issue 16): rows of several sequences in one step.
//   - On the scalar kernels every sequence's logits are bit for bit those it
//     gets alone, whatever shares the step: prompts prefilled whole or in
//     pieces beside other sequences' prefill chunks and decode rows, at 1
//     and 2 threads.
//   - On every SIMD variant the host runs the same, bit for bit (every
//     kernel table is batch-invariant, kernels/kernels.h), with f16 and int8
//     KV; and on Gemma 3 past its sliding window (blocks recycled per
//     sequence in the window pool).
//   - A step that cannot run changes nothing: KV pool exhausted by one of its
//     sequences, malformed batches (rows of a sequence apart or out of order,
//     too many logit rows, a bad token, too many rows).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/batch.h"
#include "runtime/engine.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

struct Setup {
  const char* blob;
  const char* isa;
  uint32_t threads;
  uint32_t max_context;
  uint32_t kv_blocks = 0;
  int32_t kv_type = -1;  // the blob's default (f16), or a KvType
};

std::unique_ptr<Engine> open_engine(const Setup& s) {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  const std::string path = testing::model_path(s.blob);
  o.model_path = path.c_str();
  o.isa = s.isa;
  o.threads = s.threads;
  o.limits.max_context = s.max_context;
  o.limits.max_sequences = 4;
  o.limits.prefill_chunk = 64;
  o.limits.logit_rows = 8;
  o.limits.kv_blocks = s.kv_blocks;
  o.kv_type = s.kv_type;
  const Status st = e->open(o);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return st.is_ok() ? std::move(e) : nullptr;
}

std::vector<int32_t> encode(Engine* e, const std::string& text) { return testing::encode_text(e, text); }

int32_t argmax(const float* l, uint32_t n) { return int32_t(std::max_element(l, l + n) - l); }

// Each sequence's logits after its prompt and after each of `steps` greedy
// decode steps, concatenated, and its tokens.
struct Trace {
  std::vector<float> logits;
  std::vector<int32_t> tokens;
};

// The sequence alone: Engine::prefill (chunks of one sequence), then decode steps.
Trace run_alone(Engine* e, uint32_t s, const std::vector<int32_t>& prompt, uint32_t steps) {
  Trace t;
  KvSequence* seq = e->sequence(s);
  e->reset(seq);
  const uint32_t vocab = e->hparams().vocab;
  EXPECT_TRUE(e->prefill(seq, prompt.data(), prompt.size()).is_ok());
  for (uint32_t i = 0;; ++i) {
    t.logits.insert(t.logits.end(), e->logits(), e->logits() + vocab);
    t.tokens.push_back(argmax(e->logits(), vocab));
    if (i == steps) break;
    EXPECT_TRUE(e->decode(seq, t.tokens.back()).is_ok());
  }
  return t;
}

// A batch under construction.
struct BatchRows {
  std::vector<int32_t> token;
  std::vector<uint32_t> pos;
  std::vector<KvSequence*> seq;
  std::vector<uint8_t> want;
  std::vector<uint32_t> owner;  // which sequence index each logits row belongs to
  void add(KvSequence* s, uint32_t index, const int32_t* ids, uint32_t n, bool logits_of_last) {
    const uint32_t p0 = s->n_past + uint32_t(std::count(seq.begin(), seq.end(), s));
    for (uint32_t i = 0; i < n; ++i) {
      token.push_back(ids[i]);
      pos.push_back(p0 + i);
      seq.push_back(s);
      const bool w = logits_of_last && i + 1 == n;
      want.push_back(w);
      if (w) owner.push_back(index);
    }
  }
  Batch view() const { return Batch{token.data(), pos.data(), seq.data(), want.data(), uint32_t(token.size())}; }
};

// One step; each logits row goes to its sequence's trace.
void take_step(Engine* e, const BatchRows& b, std::vector<Trace>* t) {
  const uint32_t vocab = e->hparams().vocab;
  const Status st = e->model().forward_batch(b.view());
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (size_t r = 0; r < b.owner.size(); ++r) {
    const float* l = e->logits() + r * vocab;
    Trace& tr = (*t)[b.owner[r]];
    tr.logits.insert(tr.logits.end(), l, l + vocab);
    tr.tokens.push_back(argmax(l, vocab));
  }
}

// Three sequences together: the prompts go in pieces beside each other and
// beside decode rows, then every sequence decodes in lockstep.
std::vector<Trace> run_batched(Engine* e, const std::vector<std::vector<int32_t>>& prompts, uint32_t steps) {
  std::vector<Trace> t(prompts.size());
  for (uint32_t s = 0; s < prompts.size(); ++s) e->reset(e->sequence(s));
  auto take = [&](const BatchRows& b) { take_step(e, b, &t); };
  KvSequence* s0 = e->sequence(0);
  KvSequence* s1 = e->sequence(1);
  KvSequence* s2 = e->sequence(2);
  const auto& p0 = prompts[0];
  const auto& p1 = prompts[1];
  const auto& p2 = prompts[2];
  {  // step 1: prompt 0 whole, the first 3 tokens of prompt 1
    BatchRows b;
    b.add(s0, 0, p0.data(), uint32_t(p0.size()), true);
    b.add(s1, 1, p1.data(), 3, false);
    take(b);
  }
  {  // step 2: sequence 0's first decode row, the rest of prompt 1, prompt 2 but its last 2 tokens
    BatchRows b;
    b.add(s0, 0, &t[0].tokens.back(), 1, true);
    b.add(s1, 1, p1.data() + 3, uint32_t(p1.size() - 3), true);
    b.add(s2, 2, p2.data(), uint32_t(p2.size() - 2), false);
    take(b);
  }
  {  // step 3: the last 2 tokens of prompt 2 between two decode rows
    BatchRows b;
    b.add(s1, 1, &t[1].tokens.back(), 1, true);
    b.add(s2, 2, p2.data() + p2.size() - 2, 2, true);
    b.add(s0, 0, &t[0].tokens.back(), 1, true);
    take(b);
  }
  // Lockstep decode, the row order rotating, until every sequence has `steps`.
  for (uint32_t i = 0; t[2].tokens.size() <= steps; ++i) {
    BatchRows b;
    for (uint32_t k = 0; k < 3; ++k) {
      const uint32_t s = (i + k) % 3;
      if (t[s].tokens.size() <= steps) b.add(e->sequence(s), s, &t[s].tokens.back(), 1, true);
    }
    take(b);
  }
  return t;
}

std::vector<std::vector<int32_t>> prompts(Engine* e) {
  return {encode(e, "The capital of France is"), encode(e, "def fibonacci(n):\n    if n < 2:"),
          encode(e, "Once upon a time, in a small village by the sea, there lived")};
}

constexpr uint32_t kSteps = 6;

TEST(BatchForward, ScalarRowsBitIdenticalToEachSequenceAlone) {
  for (uint32_t threads : {1u, 2u}) {
    auto e = open_engine({"smollm2-135m-int4.tern", "scalar", threads, 96});
    ASSERT_TRUE(e);
    const auto ps = prompts(e.get());
    std::vector<Trace> alone;
    for (uint32_t s = 0; s < 3; ++s) alone.push_back(run_alone(e.get(), s, ps[s], kSteps));
    const std::vector<Trace> mixed = run_batched(e.get(), ps, kSteps);
    for (uint32_t s = 0; s < 3; ++s) {
      ASSERT_EQ(mixed[s].tokens, alone[s].tokens) << "sequence " << s << ", " << threads << " threads";
      ASSERT_EQ(mixed[s].logits.size(), alone[s].logits.size());
      EXPECT_EQ(0, std::memcmp(mixed[s].logits.data(), alone[s].logits.data(), alone[s].logits.size() * 4))
          << "sequence " << s << ": batched logits differ from the sequence alone, " << threads << " threads";
    }
  }
}

// Bit for bit: tokens and logits.
void expect_same(const std::vector<Trace>& mixed, const std::vector<Trace>& alone, Engine& e) {
  for (size_t s = 0; s < alone.size(); ++s) {
    EXPECT_EQ(mixed[s].tokens, alone[s].tokens) << e.isa_name() << " sequence " << s;
    ASSERT_EQ(mixed[s].logits.size(), alone[s].logits.size());
    EXPECT_EQ(0, std::memcmp(mixed[s].logits.data(), alone[s].logits.data(), alone[s].logits.size() * 4))
        << e.isa_name() << ": sequence " << s << "'s batched logits differ from it alone";
  }
}

// SmolLM2's sequences alone and batched on every SIMD variant this CPU runs
// (the best one is what users get; the others are what users of other CPUs
// get: AVX2 on a Zen 3, AVX-VNNI), with the KV cache `kv_type`.
void check_simd_variants(int32_t kv_type) {
  for (const std::string& isa : testing::host_simd_variants()) {
    auto e = open_engine({"smollm2-135m-int4.tern", isa.c_str(), 2, 96, 0, kv_type});
    ASSERT_TRUE(e);
    if (kv_type == int32_t(KvType::kInt8)) {
      ASSERT_EQ(e->model().kv().shape().type, KvType::kInt8);
    }
    const auto ps = prompts(e.get());
    std::vector<Trace> alone;
    for (uint32_t s = 0; s < 3; ++s) alone.push_back(run_alone(e.get(), s, ps[s], kSteps));
    expect_same(run_batched(e.get(), ps, kSteps), alone, *e);
  }
}

TEST(BatchForward, SimdKernelsAgreeWithEachSequenceAlone) { check_simd_variants(-1); }

// The same with the int8 KV cache: its attention is per row too.
TEST(BatchForward, SimdKernelsAgreeWithEachSequenceAloneInt8Kv) { check_simd_variants(int32_t(KvType::kInt8)); }

// Gemma 3: sliding-window layers in their own pool of recycled blocks. The
// first prompt is past the 512-token window, so its window blocks recycle
// while the other sequences' do not.
TEST(BatchForward, GemmaWindowPoolPerSequence) {
  auto e = open_engine({"gemma3-270m-int4.tern", nullptr, 2, 768});
  ASSERT_TRUE(e);
  ASSERT_NE(e->model().window_kv(), nullptr);
  std::string longer;
  auto ps = prompts(e.get());
  while (ps[0].size() < 560) {
    longer += "The river runs past the old mill and under the stone bridge. ";
    ps[0] = encode(e.get(), longer);
  }
  ASSERT_GT(ps[0].size(), 520u);
  ASSERT_LT(ps[0].size(), 640u);
  // The long prompt in prefill_chunk pieces: add all but its last 40 tokens
  // to sequence 0 first (alone, both runs), so one batch step holds the rest.
  std::vector<Trace> alone;
  for (uint32_t s = 0; s < 3; ++s) alone.push_back(run_alone(e.get(), s, ps[s], kSteps));
  const std::vector<int32_t> head(ps[0].begin(), ps[0].end() - 40);
  std::vector<std::vector<int32_t>> rest = ps;
  rest[0].assign(ps[0].end() - 40, ps[0].end());
  // Sequence 0 alone up to its last 40 tokens (as in its lone run).
  for (uint32_t s = 0; s < 3; ++s) e->reset(e->sequence(s));
  ASSERT_TRUE(e->prefill(e->sequence(0), head.data(), head.size()).is_ok());
  // The rest of the long prompt beside a whole short one, then the third
  // prompt beside two decode rows, then lockstep decode.
  std::vector<Trace> mixed(3);
  auto take = [&](const BatchRows& b) { take_step(e.get(), b, &mixed); };
  KvSequence* s0 = e->sequence(0);
  {
    BatchRows b;
    b.add(s0, 0, rest[0].data(), 40, true);
    b.add(e->sequence(1), 1, rest[1].data(), uint32_t(rest[1].size()), true);
    take(b);
  }
  {
    BatchRows b;
    b.add(e->sequence(2), 2, rest[2].data(), uint32_t(rest[2].size()), true);
    b.add(s0, 0, &mixed[0].tokens.back(), 1, true);
    b.add(e->sequence(1), 1, &mixed[1].tokens.back(), 1, true);
    take(b);
  }
  while (mixed[2].tokens.size() <= kSteps) {
    BatchRows b;
    for (uint32_t s = 0; s < 3; ++s)
      if (mixed[s].tokens.size() <= kSteps) b.add(e->sequence(s), s, &mixed[s].tokens.back(), 1, true);
    take(b);
  }
  // The window pool holds at most window_blocks per sequence.
  const uint32_t per_seq = KvPool::window_blocks(512, 64, e->limits().kv_block_tokens);
  EXPECT_LE(e->model().window_kv()->used_blocks(), 3 * per_seq);
  EXPECT_GT(s0->window->first_block, 0u) << "the long sequence's window blocks were never recycled";
  expect_same(mixed, alone, *e);
}

struct Snapshot {
  uint32_t n_past[3];
  uint32_t used;
};
Snapshot snap(Engine* e) {
  return {{e->sequence(0)->n_past, e->sequence(1)->n_past, e->sequence(2)->n_past}, e->model().kv().used_blocks()};
}
void expect_unchanged(const Snapshot& a, const Snapshot& b, const char* what) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.n_past[i], b.n_past[i]) << what << ": sequence " << i;
  EXPECT_EQ(a.used, b.used) << what << ": KV blocks in use";
}

TEST(BatchForward, FailedStepChangesNothing) {
  // 6 blocks of 16 tokens for three sequences.
  auto e = open_engine({"smollm2-135m-int4.tern", nullptr, 1, 96, 6});
  ASSERT_TRUE(e);
  const auto ps = prompts(e.get());
  KvSequence* s0 = e->sequence(0);
  KvSequence* s1 = e->sequence(1);
  std::vector<int32_t> filler(40, ps[2][1]);
  ASSERT_TRUE(e->prefill(s0, ps[0].data(), ps[0].size()).is_ok());
  ASSERT_TRUE(e->prefill(e->sequence(2), filler.data(), filler.size()).is_ok());  // 3 blocks
  const Trace reference = [&] {  // what sequence 0's next decode step gives
    auto r = open_engine({"smollm2-135m-int4.tern", nullptr, 1, 96, 6});
    return run_alone(r.get(), 0, ps[0], 1);
  }();
  const Snapshot before = snap(e.get());
  // Sequence 0's decode row fits; sequence 1's 40 tokens need 3 blocks, 2 are free.
  {
    BatchRows b;
    b.add(s0, 0, &reference.tokens[0], 1, true);
    b.add(s1, 1, filler.data(), 40, true);
    const Status st = e->model().forward_batch(b.view());
    EXPECT_EQ(st.code(), StatusCode::kKvFull) << st.message();
    expect_unchanged(before, snap(e.get()), "KV pool exhausted");
  }
  {  // sequence 1 takes the 2 free blocks, then sequence 3 finds none: 1 gives them back
    BatchRows b;
    b.add(s1, 1, filler.data(), 20, true);
    b.add(e->sequence(3), 3, filler.data(), 5, true);
    const Status st = e->model().forward_batch(b.view());
    EXPECT_EQ(st.code(), StatusCode::kKvFull) << st.message();
    expect_unchanged(before, snap(e.get()), "KV pool exhausted by the second sequence");
    EXPECT_EQ(e->sequence(3)->n_past, 0u);
  }
  // Malformed batches, each refused before any change.
  auto refused = [&](BatchRows b, StatusCode code, const char* what) {
    const Status st = e->model().forward_batch(b.view());
    EXPECT_EQ(st.code(), code) << what << ": " << st.message();
    expect_unchanged(before, snap(e.get()), what);
  };
  {
    BatchRows b;
    b.add(s0, 0, ps[0].data(), 1, false);
    b.add(s1, 1, ps[1].data(), 1, false);
    b.add(s0, 0, ps[0].data(), 1, false);
    b.pos.back() = s0->n_past + 1;
    refused(b, StatusCode::kInvalidArgument, "a sequence's rows apart");
  }
  {
    BatchRows b;
    b.add(s0, 0, ps[0].data(), 2, false);
    b.pos[1] += 1;
    refused(b, StatusCode::kInvalidArgument, "a gap in positions");
  }
  {
    BatchRows b;
    b.add(s1, 1, ps[1].data(), 3, false);
    b.pos[0] = 5;
    b.pos[1] = 6;
    b.pos[2] = 7;
    refused(b, StatusCode::kInvalidArgument, "not starting at the sequence's length");
  }
  {
    BatchRows b;
    for (int i = 0; i < 9; ++i) b.add(s1, 1, ps[1].data(), 1, true);
    refused(b, StatusCode::kInvalidArgument, "more logit rows than the arena holds");
  }
  {
    BatchRows b;
    b.add(s0, 0, ps[0].data(), 1, true);
    b.add(s1, 1, ps[1].data(), 2, true);
    b.token[2] = int32_t(e->hparams().vocab);
    refused(b, StatusCode::kInvalidToken, "a token outside the vocabulary");
  }
  {
    BatchRows b;
    b.add(s1, 1, filler.data(), 40, false);
    b.add(s0, 0, filler.data(), 30, false);
    refused(b, StatusCode::kInvalidArgument, "more rows than prefill_chunk");
  }
  {
    BatchRows b;
    refused(b, StatusCode::kInvalidArgument, "an empty batch");
  }
  // Nothing was harmed: sequence 0 decodes exactly as a fresh engine does
  // (same kernels, same one-row call).
  ASSERT_TRUE(e->decode(s0, reference.tokens[0]).is_ok());
  EXPECT_EQ(0, std::memcmp(e->logits(), reference.logits.data() + e->hparams().vocab, e->hparams().vocab * 4));
}

}  // namespace
}  // namespace tern
