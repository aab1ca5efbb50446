// Stop strings and finish reasons of the shared generation loop
// (runtime/generate.h): the matcher alone over every way of cutting a text
// into pieces, then generate() on the real int4 blob.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

void append(void* ctx, const char* s, size_t n) { static_cast<std::string*>(ctx)->append(s, n); }

struct Filtered {
  std::string text;
  int32_t match = -1;
};

// Feed `text` cut at the positions in `cuts`, through a filter of `stops`.
Filtered run_filter(const std::vector<std::string>& stops, const std::string& text, const std::vector<size_t>& cuts) {
  std::vector<const char*> s;
  std::vector<uint32_t> lens;
  for (const std::string& x : stops) {
    s.push_back(x.data());
    lens.push_back(uint32_t(x.size()));
  }
  StopStringFilter f;
  EXPECT_TRUE(f.init(s.data(), lens.data(), uint32_t(s.size())).is_ok());
  Filtered out;
  size_t at = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : text.size();
    const int32_t m = f.feed(text.data() + at, end - at, append, &out.text);
    EXPECT_LE(f.held(), GenerateRequest::kMaxStopStringBytes - 1);
    at = end;
    if (m >= 0) {
      out.match = m;
      return out;
    }
  }
  f.flush(append, &out.text);
  return out;
}

// The expected result, read byte by byte: the first stop string to be
// complete (on a tie the one that started first); the text before it.
Filtered reference(const std::vector<std::string>& stops, const std::string& text) {
  Filtered r;
  for (size_t end = 1; end <= text.size(); ++end) {
    size_t best = std::string::npos;
    for (size_t k = 0; k < stops.size(); ++k) {
      const size_t L = stops[k].size();
      if (L <= end && text.compare(end - L, L, stops[k]) == 0 && (best == std::string::npos || end - L < best)) {
        best = end - L;
        r.match = int32_t(k);
      }
    }
    if (best != std::string::npos) {
      r.text = text.substr(0, best);
      return r;
    }
  }
  r.text = text;
  return r;
}

TEST(StopStringFilter, EveryCutGivesTheReference) {
  const std::vector<std::vector<std::string>> stop_sets = {
      {"abc"}, {"aab"}, {"\n\n"}, {"b", "abc"}, {"xyz", "ca"}, {"aaaa"}, {std::string(64, 'a')}};
  const std::vector<std::string> texts = {"", "abc", "xxabcxx", "aaab", "aabaab", "ab\n\nc", "cacab", "abab",
                                          std::string(70, 'a'), "aaaxaaaa", "no match here at all"};
  for (const auto& stops : stop_sets) {
    for (const std::string& text : texts) {
      const Filtered want = reference(stops, text);
      // Whole, byte by byte, and every single cut.
      std::vector<size_t> bytes;
      for (size_t i = 1; i < text.size(); ++i) bytes.push_back(i);
      for (const auto& cuts : {std::vector<size_t>{}, bytes}) {
        const Filtered got = run_filter(stops, text, cuts);
        EXPECT_EQ(got.text, want.text) << stops[0] << " | " << text;
        EXPECT_EQ(got.match, want.match) << stops[0] << " | " << text;
      }
      for (size_t c = 1; c < text.size(); ++c) {
        const Filtered got = run_filter(stops, text, {c});
        EXPECT_EQ(got.text, want.text) << stops[0] << " | " << text << " cut " << c;
        EXPECT_EQ(got.match, want.match);
      }
    }
  }
}

TEST(StopStringFilter, LongPiecesAndLimits) {
  // A piece far longer than the hold-back buffer, the match near its end.
  const std::string text = std::string(1000, 'x') + "STOP" + std::string(50, 'y');
  const Filtered got = run_filter({"STOP"}, text, {});
  EXPECT_EQ(got.text, std::string(1000, 'x'));
  EXPECT_EQ(got.match, 0);
  StopStringFilter f;
  const char* s[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  uint32_t lens[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_TRUE(f.init(s, lens, 8).is_ok());
  EXPECT_EQ(f.init(s, lens, 9).code(), StatusCode::kInvalidArgument);
  lens[0] = 0;
  EXPECT_EQ(f.init(s, lens, 1).code(), StatusCode::kInvalidArgument);
  lens[0] = 65;
  EXPECT_EQ(f.init(s, lens, 1).code(), StatusCode::kInvalidArgument);
  // No stop strings: everything passes straight through.
  EXPECT_TRUE(f.init(nullptr, nullptr, 0).is_ok());
  std::string out;
  EXPECT_EQ(f.feed("abc", 3, append, &out), -1);
  EXPECT_EQ(out, "abc");
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

class Generate : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::vector<uint8_t> b = read_file(testing::model_path("smollm2-135m-int4.tern"));
    ASSERT_FALSE(b.empty()) << "pack the model first";
    e_ = std::make_unique<Engine>();
    EngineOptions o;
    o.blob_data = b.data();
    o.blob_size = b.size();
    o.limits.max_context = 64;
    ASSERT_TRUE(e_->open(o).is_ok());
  }
  // Greedy continuation of "The capital of France is": " Paris.\n\nThe answer is: ..."
  Status run(const std::vector<std::string>& stops, uint32_t n, std::string* text, GenerateStats* st,
             uint32_t cap = 0) {
    KvSequence* seq = e_->sequence(0);
    e_->reset(seq);
    TokenHistory h{e_->history(0), 0, cap ? cap : e_->limits().max_context};
    const int32_t ids[5] = {504, 3575, 282, 4649, 314};
    for (int i = 0; i < 5; ++i) h.ids[i] = ids[i];
    h.n = 5;
    std::vector<const char*> s;
    std::vector<uint32_t> lens;
    for (const std::string& x : stops) {
      s.push_back(x.data());
      lens.push_back(uint32_t(x.size()));
    }
    const int32_t stop_ids[2] = {e_->hparams().eos, e_->hparams().im_end};
    GenerateRequest req;
    req.max_new_tokens = n;
    req.stop_ids = stop_ids;
    req.n_stop = 2;
    req.stop_strings = s.data();
    req.stop_string_lens = lens.data();
    req.n_stop_strings = uint32_t(s.size());
    req.on_text = append;
    req.text_ctx = text;
    return generate(e_.get(), seq, &h, req, st);
  }
  std::unique_ptr<Engine> e_;
};

TEST_F(Generate, StopStringsAndFinishReasons) {
  std::string text;
  GenerateStats st;
  ASSERT_TRUE(run({}, 6, &text, &st).is_ok());
  EXPECT_EQ(text.substr(0, 9), " Paris.\n\n");
  EXPECT_EQ(st.finish, FinishReason::kLength);
  EXPECT_STREQ(finish_reason_name(st.finish), "length");

  text.clear();
  ASSERT_TRUE(run({"zzz", "s.\n"}, 30, &text, &st).is_ok());
  EXPECT_EQ(text, " Pari");
  EXPECT_EQ(st.finish, FinishReason::kStopString);
  EXPECT_EQ(st.stop_string, 1);
  EXPECT_TRUE(st.stopped);

  // Held-back text that turns out not to be a stop string is released.
  text.clear();
  ASSERT_TRUE(run({"Paris!"}, 2, &text, &st).is_ok());
  EXPECT_EQ(text, " Paris.");
  EXPECT_EQ(st.finish, FinishReason::kLength);

  // Context full: kContextFull with finish kContext, the text flushed.
  text.clear();
  EXPECT_EQ(run({"Paris?"}, 30, &text, &st, 7).code(), StatusCode::kContextFull);
  EXPECT_EQ(st.finish, FinishReason::kContext);
  EXPECT_EQ(st.generated, 2u);
  EXPECT_EQ(text, " Paris.");

  // A bad stop string is refused before any work.
  text.clear();
  EXPECT_EQ(run({std::string(65, 'x')}, 4, &text, &st).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e_->sequence(0)->n_past, 0u);
}

// Cancel after `after` polls (0: at the first).
struct CancelAfter {
  int polls = 0;
  int after = 0;
};
bool cancel_after(void* p) {
  CancelAfter* c = static_cast<CancelAfter*>(p);
  return c->polls++ >= c->after;
}

// A cancel request (Ctrl-C in the REPL) is seen between prefill chunks and
// before each decode step; what was prefilled stays, and the next call
// prefills the rest and continues exactly as an uninterrupted call would.
TEST_F(Generate, CancelBetweenPrefillChunksAndDecodeSteps) {
  EngineOptions o;
  static std::vector<uint8_t> b = read_file(testing::model_path("smollm2-135m-int4.tern"));
  o.blob_data = b.data();
  o.blob_size = b.size();
  o.limits.max_context = 128;
  o.limits.prefill_chunk = 8;
  Engine e;
  ASSERT_TRUE(e.open(o).is_ok());
  KvSequence* seq = e.sequence(0);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 30; ++i) prompt.push_back(504 + 7 * i);  // 30 tokens: 4 chunks of 8
  auto fresh = [&](TokenHistory* h) {
    e.reset(seq);
    *h = TokenHistory{e.history(0), uint32_t(prompt.size()), e.limits().max_context};
    for (size_t i = 0; i < prompt.size(); ++i) h->ids[i] = prompt[i];
  };
  GenerateRequest req;
  req.max_new_tokens = 6;
  GenerateStats st;
  TokenHistory h;

  // Uninterrupted: the reference continuation.
  fresh(&h);
  ASSERT_TRUE(generate(&e, seq, &h, req, &st).is_ok());
  const std::vector<int32_t> want(h.ids + prompt.size(), h.ids + h.n);
  ASSERT_EQ(want.size(), 6u);

  // Cancelled before the first chunk: nothing ran.
  CancelAfter c0;
  req.cancel = cancel_after;
  req.cancel_ctx = &c0;
  fresh(&h);
  ASSERT_TRUE(generate(&e, seq, &h, req, &st).is_ok());
  EXPECT_EQ(st.finish, FinishReason::kCaller);
  EXPECT_EQ(st.prompt_tokens, 0u);
  EXPECT_EQ(st.generated, 0u);
  EXPECT_EQ(seq->n_past, 0u);

  // Cancelled after two chunks: 16 tokens in the KV cache; the next call
  // prefills the other 14 and gives the reference tokens.
  CancelAfter c2;
  c2.after = 2;
  req.cancel_ctx = &c2;
  fresh(&h);
  ASSERT_TRUE(generate(&e, seq, &h, req, &st).is_ok());
  EXPECT_EQ(st.finish, FinishReason::kCaller);
  EXPECT_EQ(st.prompt_tokens, 16u);
  EXPECT_EQ(seq->n_past, 16u);
  req.cancel = nullptr;
  ASSERT_TRUE(generate(&e, seq, &h, req, &st).is_ok());
  EXPECT_EQ(st.prompt_tokens, 14u);
  EXPECT_EQ(std::vector<int32_t>(h.ids + prompt.size(), h.ids + h.n), want);

  // Cancelled during decoding: 4 chunk polls pass, then the first token is
  // sampled, then the poll before the second decode step ends the call.
  CancelAfter c4;
  c4.after = 5;
  req.cancel = cancel_after;
  req.cancel_ctx = &c4;
  fresh(&h);
  ASSERT_TRUE(generate(&e, seq, &h, req, &st).is_ok());
  EXPECT_EQ(st.finish, FinishReason::kCaller);
  EXPECT_EQ(st.generated, 2u);
  EXPECT_EQ(std::vector<int32_t>(h.ids + prompt.size(), h.ids + h.n),
            std::vector<int32_t>(want.begin(), want.begin() + 2));
}

}  // namespace
}  // namespace tern
