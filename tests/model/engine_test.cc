// Engine-level behaviour on the real int4 blob: the arena equals the plan,
// bad blobs and bad requests fail with their own errors, and generation is
// deterministic across runs and thread counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/score.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

const std::vector<uint8_t>& blob() {
  static std::vector<uint8_t> b = read_file(testing::model_path("smollm2-135m-int4.tern"));
  return b;
}

Status open_memory(Engine* e, const std::vector<uint8_t>& bytes, bool verify = false) {
  EngineOptions o;
  o.blob_data = bytes.data();
  o.blob_size = bytes.size();
  o.limits.max_context = 256;
  o.verify_weights = verify;
  return e->open(o);
}

std::vector<int32_t> greedy(Engine* e, const char* prompt, uint32_t n) {
  KvSequence* seq = e->sequence(0);
  e->reset(seq);
  TokenHistory h{e->history(0), 0, e->limits().max_context};
  size_t got = 0;
  EXPECT_TRUE(e->tokenizer().encode(prompt, std::strlen(prompt), false, h.ids, h.cap, &got).is_ok());
  h.n = uint32_t(got);
  GenerateRequest req;
  req.max_new_tokens = n;
  GenerateStats st;
  EXPECT_TRUE(generate(e, seq, &h, req, &st).is_ok());
  return std::vector<int32_t>(h.ids + got, h.ids + h.n);
}

TEST(Engine, ArenaMatchesThePlan) {
  ASSERT_FALSE(blob().empty()) << "pack the model first (ctest -L model runs tern-pack)";
  auto e = std::make_unique<Engine>();
  ASSERT_TRUE(open_memory(e.get(), blob()).is_ok());
  const Arena& a = e->arena();
  const MemoryPlan& p = e->plan();
  EXPECT_EQ(a.capacity(), p.total);
  EXPECT_LE(a.used(), p.total);
  EXPECT_EQ(a.high_water(), a.used()) << "nothing may be taken after init";
  // Regions record requested bytes; the plan adds each allocation's 64-byte alignment.
  EXPECT_LE(a.region_bytes("kv_blocks"), p.kv_blocks);
  EXPECT_GE(a.region_bytes("kv_blocks") + 64 * 4, p.kv_blocks);
  EXPECT_LE(a.region_bytes("model") + a.region_bytes("activations"), p.activations);
  EXPECT_GE(a.region_bytes("model") + a.region_bytes("activations") + 64 * 20, p.activations);
  EXPECT_LE(a.region_bytes("logits"), p.logits);
  EXPECT_LE(a.region_bytes("tokenizer") + a.region_bytes("tokens"), p.tokenizer);
  EXPECT_LE(a.region_bytes("sampler"), p.sampler);
  // Generating does not move the arena.
  const size_t used = a.used();
  greedy(e.get(), "Hello", 8);
  EXPECT_EQ(a.used(), used);
  EXPECT_EQ(a.high_water(), used);
}

TEST(Engine, CallerArenaTooSmallNamesTheShortfall) {
  auto e = std::make_unique<Engine>();
  std::vector<uint8_t> arena(1 << 20);
  EngineOptions o;
  o.blob_data = blob().data();
  o.blob_size = blob().size();
  o.limits.max_context = 256;
  o.arena_buffer = arena.data();
  o.arena_bytes = arena.size();
  const Status s = e->open(o);
  EXPECT_EQ(s.code(), StatusCode::kArenaTooSmall);
  EXPECT_NE(std::string(s.message()).find("short"), std::string::npos) << s.message();
}

TEST(Engine, CorruptBlobsFailWithTheirOwnError) {
  auto e = std::make_unique<Engine>();
  std::vector<uint8_t> b = blob();
  b[0] = 'X';
  EXPECT_EQ(open_memory(e.get(), b).code(), StatusCode::kBadMagic);
  b = blob();
  b[blob::hdr::kVersion] = 9;
  EXPECT_EQ(open_memory(e.get(), b).code(), StatusCode::kBadVersion);
  b = blob();
  b[blob::hdr::kSectionCount] ^= 1;
  EXPECT_EQ(open_memory(e.get(), b).code(), StatusCode::kBadChecksum);
  b = std::vector<uint8_t>(blob().begin(), blob().begin() + blob().size() / 2);
  EXPECT_EQ(open_memory(e.get(), b).code(), StatusCode::kTruncated);
  b = std::vector<uint8_t>(blob().begin(), blob().begin() + 100);
  EXPECT_EQ(open_memory(e.get(), b).code(), StatusCode::kTruncated);
  // A flipped weight byte is only seen when weights are verified.
  b = blob();
  b[b.size() - 100] ^= 0x10;
  EXPECT_TRUE(open_memory(e.get(), b).is_ok());
  EXPECT_EQ(open_memory(e.get(), b, true).code(), StatusCode::kBadChecksum);
  // A GGUF (or any other file) is not a blob.
  EngineOptions o;
  const std::string gguf = testing::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  o.model_path = gguf.c_str();
  EXPECT_EQ(e->open(o).code(), StatusCode::kBadMagic);
  o.model_path = "/nonexistent/blob.tern";
  EXPECT_EQ(e->open(o).code(), StatusCode::kIoError);
}

TEST(Engine, BadRequestsAreRejected) {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  o.blob_data = blob().data();
  o.blob_size = blob().size();
  o.isa = "no-such-isa";
  const Status s = e->open(o);
  EXPECT_EQ(s.code(), StatusCode::kUnsupportedIsa);
  EXPECT_NE(std::string(s.message()).find("scalar"), std::string::npos) << s.message();
  o.isa = nullptr;
  o.limits.kv_block_tokens = 3;
  EXPECT_EQ(e->open(o).code(), StatusCode::kInvalidArgument);
  o.limits.kv_block_tokens = 0;
  o.sampling.top_p = 2.0f;
  EXPECT_EQ(e->open(o).code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(open_memory(e.get(), blob()).is_ok());
  KvSequence* seq = e->sequence(0);
  EXPECT_EQ(e->prefill(seq, nullptr, 0).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> long_prompt(300, 198);
  EXPECT_EQ(e->prefill(seq, long_prompt.data(), long_prompt.size()).code(), StatusCode::kPromptTooLong);
  EXPECT_EQ(seq->n_past, 0u);
  const int32_t bad[2] = {198, 49152};
  EXPECT_EQ(e->prefill(seq, bad, 2).code(), StatusCode::kInvalidToken);
  EXPECT_EQ(seq->n_past, 0u);
}

TEST(Engine, GreedyIsDeterministicAcrossRunsAndThreads) {
  auto e1 = std::make_unique<Engine>();
  ASSERT_TRUE(open_memory(e1.get(), blob()).is_ok());
  const auto a = greedy(e1.get(), "Edge devices are", 32);
  const auto b = greedy(e1.get(), "Edge devices are", 32);
  EXPECT_EQ(a, b);
  e1->close();
  auto e2 = std::make_unique<Engine>();
  EngineOptions o;
  o.blob_data = blob().data();
  o.blob_size = blob().size();
  o.limits.max_context = 256;
  o.threads = 2;
  ASSERT_TRUE(e2->open(o).is_ok());
  EXPECT_EQ(greedy(e2.get(), "Edge devices are", 32), a);
}

TEST(Engine, SeededSamplingRepeats) {
  std::vector<int32_t> runs[2];
  for (auto& r : runs) {
    auto e = std::make_unique<Engine>();
    EngineOptions o;
    o.blob_data = blob().data();
    o.blob_size = blob().size();
    o.limits.max_context = 256;
    o.sampling.temperature = 0.9f;
    o.sampling.top_p = 0.9f;
    o.sampling.seed = 1234;
    ASSERT_TRUE(e->open(o).is_ok());
    r = greedy(e.get(), "Once upon a time", 32);
  }
  EXPECT_EQ(runs[0], runs[1]);
}


// Issue 19 item 1: every library entry point that takes token ids checks
// them against the vocabulary before any use and leaves the sequence as it was.
TEST(Engine, OutOfVocabularyIdsAreRejectedAndChangeNothing) {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  o.blob_data = blob().data();
  o.blob_size = blob().size();
  o.limits.max_context = 256;
  o.limits.prefill_chunk = 16;
  o.limits.logit_rows = 16;
  ASSERT_TRUE(e->open(o).is_ok());
  const int32_t vocab = int32_t(e->hparams().vocab);
  KvSequence* seq = e->sequence(0);
  const int32_t start[2] = {504, 3575};
  ASSERT_TRUE(e->prefill(seq, start, 2).is_ok());
  const uint32_t used = e->model().kv().used_blocks();

  for (int32_t bad : {-1, vocab, 60000, 2000000000, INT32_MIN}) {
    Status s = e->decode(seq, bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidToken) << bad;
    EXPECT_EQ(seq->n_past, 2u);
    // A bad id in a later prefill chunk (position 40 of 50, chunk 16): nothing is run.
    std::vector<int32_t> ids(50, 198);
    ids[40] = bad;
    s = e->prefill(seq, ids.data(), ids.size());
    EXPECT_EQ(s.code(), StatusCode::kInvalidToken) << bad;
    EXPECT_NE(std::string(s.message()).find("position 40"), std::string::npos) << s.message();
    EXPECT_NE(std::string(s.message()).find(std::to_string(bad)), std::string::npos) << s.message();
    EXPECT_EQ(seq->n_past, 2u);
    EXPECT_EQ(e->model().kv().used_blocks(), used);
    EXPECT_EQ(e->check_tokens(ids.data(), ids.size()).code(), StatusCode::kInvalidToken);
  }

  // generate() over a history with a bad id: nothing generated, nothing moved.
  TokenHistory h{e->history(0), 0, e->limits().max_context};
  h.ids[0] = 504;
  h.ids[1] = 3575;
  h.ids[2] = 282;
  h.ids[3] = vocab + 7;
  h.n = 4;
  GenerateRequest req;
  req.max_new_tokens = 4;
  GenerateStats st;
  EXPECT_EQ(generate(e.get(), seq, &h, req, &st).code(), StatusCode::kInvalidToken);
  EXPECT_EQ(h.n, 4u);
  EXPECT_EQ(st.generated, 0u);
  EXPECT_EQ(seq->n_past, 2u);

  // score_tokens: the bad id is the next token of position 0 (issue 19 read
  // its log-prob from row[id]); no position is reported, the sequence stays.
  e->reset(seq);
  struct Calls {
    int n = 0;
  } calls;
  auto count = [](void* c, const ScorePosition&) {
    ++static_cast<Calls*>(c)->n;
    return true;
  };
  for (int32_t bad : {60000, 2000000000, -3}) {
    const int32_t ids[3] = {1, bad, 2};
    ScoreSummary sum;
    const Status s = score_tokens(e.get(), seq, ids, 3, count, &calls, &sum);
    EXPECT_EQ(s.code(), StatusCode::kInvalidToken) << bad;
    EXPECT_NE(std::string(s.message()).find("position 1"), std::string::npos) << s.message();
    EXPECT_EQ(calls.n, 0);
    EXPECT_EQ(sum.positions, 0u);
    EXPECT_EQ(seq->n_past, 0u);
  }
}

TEST(Engine, ScoreTokensTeacherForces) {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  o.blob_data = blob().data();
  o.blob_size = blob().size();
  o.limits.max_context = 256;
  o.limits.prefill_chunk = 4;  // 6 ids: two chunks
  o.limits.logit_rows = 4;
  ASSERT_TRUE(e->open(o).is_ok());
  const int32_t ids[6] = {504, 3575, 282, 4649, 314, 7042};  // "The capital of France is Paris"
  struct Seen {
    std::vector<ScorePosition> p;
  } seen;
  auto keep = [](void* c, const ScorePosition& p) {
    static_cast<Seen*>(c)->p.push_back(p);
    return true;
  };
  ScoreSummary sum;
  ASSERT_TRUE(score_tokens(e.get(), e->sequence(0), ids, 6, keep, &seen, &sum).is_ok());
  ASSERT_EQ(seen.p.size(), 5u);
  EXPECT_EQ(sum.positions, 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(seen.p[i].pos, i);
    EXPECT_EQ(seen.p[i].next, ids[i + 1]);
    EXPECT_LE(seen.p[i].logprob, 0.0);
  }
  EXPECT_EQ(seen.p[4].top1, 7042) << "top-1 after 'is' is ' Paris'";
  EXPECT_NEAR(sum.perplexity(), std::exp(-sum.mean_logprob()), 1e-9);
  EXPECT_EQ(e->sequence(0)->n_past, 6u);
  // Too short, too long for the context left.
  ScoreSummary s2;
  EXPECT_EQ(score_tokens(e.get(), e->sequence(0), ids, 1, nullptr, nullptr, &s2).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> many(300, 198);
  EXPECT_EQ(score_tokens(e.get(), e->sequence(0), many.data(), many.size(), nullptr, nullptr, &s2).code(),
            StatusCode::kPromptTooLong);
  EXPECT_EQ(e->sequence(0)->n_past, 6u);
}

}  // namespace
}  // namespace tern
