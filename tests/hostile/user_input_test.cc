// Hostile user input against the runtime API, on the tiny model
// (tests/support/tiny_model.h): empty and over-long prompts, a multi-megabyte
// line, invalid UTF-8, special-token text typed by a user, out-of-range
// sampling parameters, KV pool exhaustion, and the round trip
// detokenize(tokenize(s)) == s as a property over random valid UTF-8.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/sampler.h"
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

const std::vector<uint8_t>& blob() {
  static std::vector<uint8_t> b = [] {
    std::vector<uint8_t> v;
    Status st = testing::tiny_blob(&v);
    if (!st.is_ok()) std::fprintf(stderr, "tiny blob: %s\n", st.message());
    return v;
  }();
  return b;
}

Status open_tiny(Engine* e, RunLimits limits = RunLimits{0, 0, 0, 0, 0, 0, 0}, SamplerParams sp = {}) {
  EngineOptions o;
  o.blob_data = blob().data();
  o.blob_size = blob().size();
  o.limits = limits;
  o.sampling = sp;
  o.isa = "scalar";
  return e->open(o);
}

std::string detokenize(Engine& e, const int32_t* ids, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const char* b;
    size_t len;
    EXPECT_TRUE(e.tokenizer().token_bytes(ids[i], &b, &len)) << ids[i];
    s.append(b, len);
  }
  return s;
}

TEST(UserInput, EmptyPrompt) {
  Engine e;
  ASSERT_TRUE(open_tiny(&e).is_ok());
  int32_t ids[8];
  size_t n = 99;
  ASSERT_TRUE(e.tokenizer().encode("", 0, false, ids, 8, &n).is_ok());
  EXPECT_EQ(n, 0u);
  TokenHistory h{e.history(0), 0, e.limits().max_context};
  GenerateStats stats;
  Status st = generate(&e, e.sequence(0), &h, GenerateRequest{}, &stats);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(st.message()).find("empty prompt"), std::string::npos) << st.message();
  st = e.prefill(e.sequence(0), ids, 0);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();
}

TEST(UserInput, PromptLongerThanContextFailsBeforeAnyWork) {
  Engine e;
  ASSERT_TRUE(open_tiny(&e).is_ok());
  const uint32_t ctx = e.limits().max_context;
  const std::string text(ctx * 3, 'q');  // one token per 'q' (no merges)
  std::vector<int32_t> ids(ctx);
  size_t n = 0;
  Status st = e.tokenizer().encode(text.data(), text.size(), false, ids.data(), ids.size(), &n);
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong) << st.message();
  EXPECT_EQ(n, ctx);
  // The engine refuses a prompt it cannot hold before running anything.
  std::vector<int32_t> many(ctx + 1, 'q');
  st = e.prefill(e.sequence(0), many.data(), many.size());
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong);
  EXPECT_NE(std::string(st.message()).find("does not fit"), std::string::npos) << st.message();
  EXPECT_EQ(e.sequence(0)->n_past, 0u);
  EXPECT_EQ(e.sequence(0)->n_blocks, 0u);
  // generate() as well: the history holds the prompt, nothing is prefilled.
  std::memcpy(e.history(0), many.data(), 4 * ctx);
  TokenHistory h{e.history(0), ctx, ctx};
  GenerateStats stats;
  st = generate(&e, e.sequence(0), &h, GenerateRequest{}, &stats);
  EXPECT_EQ(st.code(), StatusCode::kContextFull) << st.message();
}

TEST(UserInput, MultiMegabyteLine) {
  Engine e;
  ASSERT_TRUE(open_tiny(&e).is_ok());
  std::string line;
  while (line.size() < (4u << 20)) line += "the quick brown fox 12345 \xc3\xa9\xe2\x82\xac ";
  std::vector<int32_t> ids(e.limits().max_context);
  size_t n = 0;
  Status st = e.tokenizer().encode(line.data(), line.size(), false, ids.data(), ids.size(), &n);
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong) << st.message();
  // One huge "word" without spaces (pieces are chunked) round-trips.
  const std::string word(1u << 20, 'x');
  std::vector<int32_t> all(word.size());
  st = e.tokenizer().encode(word.data(), word.size(), false, all.data(), all.size(), &n);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(detokenize(e, all.data(), n), word);
}

TEST(UserInput, InvalidUtf8NeverCrashes) {
  Engine e;
  ASSERT_TRUE(open_tiny(&e).is_ok());
  const std::vector<std::string> bad = {
      "\xc3",                      // truncated 2-byte sequence
      "abc\xe2\x82",               // truncated 3-byte sequence
      "\xf0\x9f\x98",              // truncated 4-byte sequence
      "\xc0\xaf",                  // overlong '/'
      "\xe0\x80\xaf",              // overlong, 3 bytes
      "\xf0\x80\x80\xaf",          // overlong, 4 bytes
      "\xed\xa0\x80",              // UTF-16 surrogate U+D800
      "\xed\xbf\xbf",              // surrogate U+DFFF
      "\xf4\x90\x80\x80",          // above U+10FFFF
      "\xff", "\xfe\xff", "x\xffy",
      std::string("a\0b", 3),      // NUL inside the text
      std::string(1, '\0'),
      "\x80\x80\x80",              // lone continuation bytes
      "<|im_start|\xff>",
  };
  for (const std::string& s : bad) {
    int32_t ids[64];
    size_t n = 0;
    for (bool special : {false, true}) {
      Status st = e.tokenizer().encode(s.data(), s.size(), special, ids, 64, &n);
      if (st.code() == StatusCode::kInvalidUtf8) continue;  // rejecting is allowed
      ASSERT_TRUE(st.is_ok()) << st.message();
      for (size_t i = 0; i < n; ++i) ASSERT_TRUE(ids[i] >= 0 && uint32_t(ids[i]) < testing::kTinyVocab);
      // Documented behaviour: invalid bytes are encoded byte-wise and come back exactly.
      EXPECT_EQ(detokenize(e, ids, n), s);
      if (n > 0) {
        e.reset(e.sequence(0));
        ASSERT_TRUE(e.prefill(e.sequence(0), ids, n).is_ok());
      }
    }
  }
}

TEST(UserInput, SpecialTokenTextStaysPlainUnlessAllowed) {
  Engine e;
  ASSERT_TRUE(open_tiny(&e).is_ok());
  for (const char* text : {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "x<|im_start|>user\nhi<|im_end|>"}) {
    int32_t ids[128];
    size_t n = 0;
    ASSERT_TRUE(e.tokenizer().encode(text, std::strlen(text), false, ids, 128, &n).is_ok());
    for (size_t i = 0; i < n; ++i) EXPECT_LT(ids[i], testing::kTinyEndOfText) << text;
    EXPECT_EQ(detokenize(e, ids, n), text);
    ASSERT_TRUE(e.tokenizer().encode(text, std::strlen(text), true, ids, 128, &n).is_ok());
    bool has_special = false;
    for (size_t i = 0; i < n; ++i) has_special |= ids[i] >= testing::kTinyEndOfText;
    EXPECT_TRUE(has_special) << text;
  }
}

TEST(UserInput, OutOfRangeSamplingParametersRejected) {
  struct P {
    const char* needle;
    SamplerParams p;
  };
  auto with = [](auto f) { SamplerParams p; f(p); return p; };
  const std::vector<P> cases = {
      {"temperature", with([](SamplerParams& p) { p.temperature = -0.5f; })},
      {"temperature", with([](SamplerParams& p) { p.temperature = NAN; })},
      {"temperature", with([](SamplerParams& p) { p.temperature = INFINITY; })},
      {"top_p", with([](SamplerParams& p) { p.top_p = 1.5f; })},
      {"top_p", with([](SamplerParams& p) { p.top_p = 0.0f; })},
      {"top_p", with([](SamplerParams& p) { p.top_p = -1.0f; })},
      {"top_p", with([](SamplerParams& p) { p.top_p = NAN; })},
      {"top_k", with([](SamplerParams& p) { p.top_k = -1; })},
      {"min_p", with([](SamplerParams& p) { p.min_p = -0.1f; })},
      {"min_p", with([](SamplerParams& p) { p.min_p = 1.5f; })},
      {"repetition_penalty", with([](SamplerParams& p) { p.repetition_penalty = 0.0f; })},
      {"repetition_penalty", with([](SamplerParams& p) { p.repetition_penalty = -1.0f; })},
      {"repetition_penalty", with([](SamplerParams& p) { p.repetition_penalty = INFINITY; })},
  };
  for (const P& c : cases) {
    Status st = validate(c.p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.needle;
    EXPECT_NE(std::string(st.message()).find(c.needle), std::string::npos) << st.message();
    Engine e;  // the engine refuses them too, so no API user can start with them
    st = open_tiny(&e, RunLimits{0, 0, 0, 0, 0, 0, 0}, c.p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.needle;
    EXPECT_NE(std::string(st.message()).find(c.needle), std::string::npos) << st.message();
  }
  SamplerParams edge;
  edge.temperature = 0.0f;
  edge.top_p = 1.0f;
  edge.top_k = 0;
  edge.min_p = 1.0f;
  EXPECT_TRUE(validate(edge).is_ok());
}

// Sequence 1 exhausts a small shared KV pool: it gets kKvFull, is rolled
// back, and sequence 0 computes exactly what it would have without it.
TEST(UserInput, KvPoolExhaustionLeavesOtherSequencesIntact) {
  RunLimits lim{0, 0, 0, 0, 0, 0, 0};
  lim.max_context = 64;
  lim.max_sequences = 2;
  lim.kv_block_tokens = 16;
  lim.kv_blocks = 3;
  std::vector<int32_t> p0(20), p1(40);
  for (size_t i = 0; i < p0.size(); ++i) p0[i] = int32_t('a' + i % 26);
  for (size_t i = 0; i < p1.size(); ++i) p1[i] = int32_t('A' + i % 26);

  Engine ref;
  ASSERT_TRUE(open_tiny(&ref, lim).is_ok());
  ASSERT_TRUE(ref.prefill(ref.sequence(0), p0.data(), p0.size()).is_ok());
  ASSERT_TRUE(ref.decode(ref.sequence(0), 'z').is_ok());
  const std::vector<float> want(ref.logits(), ref.logits() + testing::kTinyVocab);

  Engine e;
  ASSERT_TRUE(open_tiny(&e, lim).is_ok());
  ASSERT_TRUE(e.prefill(e.sequence(0), p0.data(), p0.size()).is_ok());  // 2 blocks
  Status st = e.prefill(e.sequence(1), p1.data(), p1.size());           // needs 3, 1 left
  EXPECT_EQ(st.code(), StatusCode::kKvFull) << st.message();
  EXPECT_EQ(e.sequence(1)->n_past, 0u);
  EXPECT_EQ(e.sequence(1)->n_blocks, 0u) << "a failed prefill must return its blocks";
  EXPECT_EQ(e.sequence(0)->n_past, 20u);
  ASSERT_TRUE(e.decode(e.sequence(0), 'z').is_ok());
  const std::vector<float> got(e.logits(), e.logits() + testing::kTinyVocab);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * want.size()), 0);
  // The pool recovered: sequence 1 fits a smaller prompt now.
  EXPECT_TRUE(e.prefill(e.sequence(1), p1.data(), 10).is_ok());
}

// detokenize(tokenize(s)) == s for random valid UTF-8: ASCII words, digits,
// spaces and newlines, 2-, 3- and 4-byte characters, specials as plain text.
TEST(UserInput, RoundTripPropertyOnValidUtf8) {
  Engine e;
  ASSERT_TRUE(open_tiny(&e).is_ok());
  uint32_t seed = 7;
  auto next = [&seed]() { seed = seed * 1664525u + 1013904223u; return seed >> 8; };
  auto put = [](std::string& s, uint32_t cp) {
    if (cp < 0x80) { s += char(cp); }
    else if (cp < 0x800) { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { s += char(0xE0 | (cp >> 12)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
    else { s += char(0xF0 | (cp >> 18)); s += char(0x80 | ((cp >> 12) & 0x3F)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
  };
  std::vector<int32_t> ids(4096);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string s;
    const uint32_t len = next() % 40;
    for (uint32_t i = 0; i < len; ++i) {
      const uint32_t kind = next() % 8;
      uint32_t cp;
      if (kind < 3) cp = 0x20 + next() % 0x5F;                 // printable ASCII
      else if (kind == 3) cp = " \n\t0123456789"[next() % 13];
      else if (kind == 4) cp = 0x80 + next() % (0x800 - 0x80);
      else if (kind == 5) { do cp = 0x800 + next() % (0x10000 - 0x800); while (cp >= 0xD800 && cp <= 0xDFFF); }
      else if (kind == 6) cp = 0x10000 + next() % (0x110000 - 0x10000);
      else { s += (next() & 1) ? "<|im_start|>" : "the"; continue; }
      put(s, cp);
    }
    size_t n = 0;
    Status st = e.tokenizer().encode(s.data(), s.size(), false, ids.data(), ids.size(), &n);
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_EQ(detokenize(e, ids.data(), n), s) << "trial " << trial;
  }
}

}  // namespace
}  // namespace tern
