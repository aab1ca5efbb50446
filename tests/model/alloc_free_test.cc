// Proves the runtime touches no heap after init: malloc/calloc/realloc/free
// and operator new/delete are interposed in this binary and counted while a
// real workload runs on the real model: tokenizing, prefill, 256 decode steps
// with sampling, a REPL turn, and the error paths (KV pool full, context
// full, prompt too long, invalid token). Then the REPL's own paths: a reply
// cut off and closed, a stop request (Ctrl-C), a new system prompt, a full
// context refused, context shift, and tern-chat's input handling (line
// editor, message joiner, command parser). Any count above zero fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/scheduler.h"
#include "tests/support/goldens.h"
#include "tools/cli/line_editor.h"
#include "tools/cli/repl_line.h"

#if defined(__SANITIZE_ADDRESS__)
#define TERN_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_NO_INTERPOSE 1
#endif
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
inline void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if !defined(TERN_NO_INTERPOSE)
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
void* malloc(size_t n) { count(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { count(); return __libc_realloc(p, n); }
void free(void* p) { if (p) count(); __libc_free(p); }
}
void* operator new(size_t n) { count(); void* p = __libc_malloc(n ? n : 1); if (!p) std::abort(); return p; }
void* operator new[](size_t n) { count(); void* p = __libc_malloc(n ? n : 1); if (!p) std::abort(); return p; }
void operator delete(void* p) noexcept { if (p) count(); __libc_free(p); }
void operator delete[](void* p) noexcept { if (p) count(); __libc_free(p); }
void operator delete(void* p, size_t) noexcept { if (p) count(); __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { if (p) count(); __libc_free(p); }
#endif

namespace tern {
namespace {

struct Counting {
  Counting() { g_allocs = 0; g_counting = true; }
  ~Counting() { g_counting = false; }
  long stop() { g_counting = false; return g_allocs.load(); }
};

bool ignore_text(void*, int32_t, bool) { return true; }
void ignore_chat(void*, const char*, size_t) {}

class AllocFreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(TERN_NO_INTERPOSE)
    GTEST_SKIP() << "allocation interposition is disabled under AddressSanitizer";
#endif
    path_ = testing::model_path("smollm2-135m-int4.tern");
  }
  std::string path_;
};

// The counter itself must see allocations, or the zero below proves nothing.
TEST_F(AllocFreeTest, CounterSeesAllocations) {
  long allocs = 0;
  {
    Counting counting;
    void* p = std::malloc(64);
    auto* q = new std::string(200, 'x');
    delete q;
    std::free(p);
    allocs = counting.stop();
  }
  EXPECT_GE(allocs, 4);
}

void prefill_decode_and_errors(const std::string& path_, int32_t kv_type) {
  EngineOptions o;
  o.model_path = path_.c_str();
  o.kv_type = kv_type;
  o.limits.max_context = 512;
  o.limits.max_sequences = 2;
  o.limits.kv_block_tokens = 16;
  o.limits.kv_blocks = 32 + 4;  // one full context plus 4 blocks: the second sequence can run the pool dry
  o.threads = 2;
  o.sampling.temperature = 0.8f;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95f;
  o.sampling.min_p = 0.05f;
  o.sampling.repetition_penalty = 1.1f;
  o.sampling.seed = 7;
  auto engine = std::make_unique<Engine>();
  Status s = engine->open(o);
  ASSERT_TRUE(s.is_ok()) << s.message();
  static ChatSession chat;
  ASSERT_TRUE(chat.init(engine.get(), 1).is_ok());
  const std::string text =
      "The quick brown fox jumps over the lazy dog. Edge devices run language models from a static arena; "
      "nothing may grow while they run, so every buffer is planned before the first token.";

  Status prefill_s, decode_s, kv_full_s, ctx_full_s, too_long_s, bad_token_s, turn_s, after_reset_s;
  uint32_t decoded = 0;
  long allocs = 0;
  {
    Counting counting;
    // Tokenize and prefill sequence 0, then 256 sampled decode steps.
    KvSequence* seq = engine->sequence(0);
    TokenHistory h{engine->history(0), 0, engine->limits().max_context};
    size_t n = 0;
    prefill_s = engine->tokenizer().encode(text.data(), text.size(), false, h.ids, h.cap, &n);
    h.n = uint32_t(n);
    GenerateRequest req;
    req.max_new_tokens = 256;
    req.on_token = ignore_text;
    GenerateStats st;
    decode_s = generate(engine.get(), seq, &h, req, &st);
    decoded = st.generated;
    // Context full: keep decoding sequence 0 past max_context.
    for (int i = 0; i < 600 && ctx_full_s.is_ok(); ++i) ctx_full_s = engine->decode(seq, 198);
    // A REPL turn on sequence 1.
    GenerateStats ts;
    turn_s = chat.turn("Name three colors.", 18, 24, ignore_chat, nullptr, &ts);
    // KV pool full: sequence 1 grows until the shared pool is empty.
    KvSequence* seq1 = engine->sequence(1);
    for (int i = 0; i < 600 && kv_full_s.is_ok(); ++i) kv_full_s = engine->decode(seq1, 198);
    // Prompt longer than the context, and an invalid token.
    int32_t small[8];
    size_t got = 0;
    too_long_s = engine->tokenizer().encode(text.data(), text.size(), false, small, 8, &got);
    int32_t bad = -5;
    bad_token_s = engine->decode(seq1, bad);
    // After reset the sequence works again.
    chat.reset();
    engine->reset(seq);
    after_reset_s = engine->decode(seq1, 198);
    allocs = counting.stop();
  }
  EXPECT_TRUE(prefill_s.is_ok()) << prefill_s.message();
  EXPECT_TRUE(decode_s.is_ok()) << decode_s.message();
  EXPECT_EQ(decoded, 256u);
  EXPECT_EQ(ctx_full_s.code(), StatusCode::kContextFull) << ctx_full_s.message();
  EXPECT_TRUE(turn_s.is_ok()) << turn_s.message();
  EXPECT_EQ(kv_full_s.code(), StatusCode::kKvFull) << kv_full_s.message();
  EXPECT_EQ(too_long_s.code(), StatusCode::kPromptTooLong);
  EXPECT_EQ(bad_token_s.code(), StatusCode::kInvalidToken);
  EXPECT_TRUE(after_reset_s.is_ok()) << after_reset_s.message();
  EXPECT_EQ(allocs, 0) << "heap allocations after init";
  std::printf("heap allocations after init: %ld (KV full said: %s)\n", allocs, kv_full_s.message());
}
TEST_F(AllocFreeTest, PrefillDecodeSamplingAndErrorsAllocateNothing) { prefill_decode_and_errors(path_, -1); }
// The same with the int8 KV cache (its blocks, scales and integer attention).
TEST_F(AllocFreeTest, PrefillDecodeSamplingAndErrorsAllocateNothingInt8Kv) { prefill_decode_and_errors(path_, int32_t(KvType::kInt8)); }

// Batched steps (issue 16): prompts of four sequences prefilled together,
// 100 lockstep decode steps of four rows, and a step refused for lack of KV
// blocks (all or nothing), all in the arena.
TEST_F(AllocFreeTest, BatchedStepsAllocateNothing) {
  EngineOptions o;
  o.model_path = path_.c_str();
  o.limits.max_context = 256;
  o.limits.max_sequences = 4;
  o.limits.logit_rows = 4;
  o.limits.kv_blocks = 30;  // 4 x (12 + 100) tokens take 4 x 7 blocks; the refused step asks for 5 more
  o.threads = 2;
  auto engine = std::make_unique<Engine>();
  Status s = engine->open(o);
  ASSERT_TRUE(s.is_ok()) << s.message();
  const char* text = "Four rooms ask the same small box for help at once.";
  Status prefill_s, decode_s, full_s;
  uint32_t steps = 0;
  long allocs = 0;
  {
    Counting counting;
    int32_t ids[64];
    size_t n = 0;
    prefill_s = engine->tokenizer().encode(text, std::strlen(text), false, ids, 16, &n);
    if (n != 12) prefill_s = Status::error(StatusCode::kInternal, "the prompt should be 12 tokens");
    int32_t token[64];
    uint32_t pos[64];
    KvSequence* seq[64];
    uint8_t want[64];
    uint32_t rows = 0;
    for (uint32_t q = 0; q < 4 && prefill_s.is_ok(); ++q)
      for (uint32_t i = 0; i < n; ++i, ++rows) {
        token[rows] = ids[i];
        pos[rows] = i;
        seq[rows] = engine->sequence(q);
        want[rows] = i + 1 == n;
      }
    if (prefill_s.is_ok()) prefill_s = engine->model().forward_batch(Batch{token, pos, seq, want, rows});
    for (; steps < 100 && decode_s.is_ok() && prefill_s.is_ok(); ++steps) {
      for (uint32_t q = 0; q < 4; ++q) {
        const float* l = engine->logits() + size_t(q) * engine->hparams().vocab;
        token[q] = int32_t(std::max_element(l, l + engine->hparams().vocab) - l);
        seq[q] = engine->sequence(q);
        pos[q] = seq[q]->n_past;
        want[q] = 1;
      }
      decode_s = engine->model().forward_batch(Batch{token, pos, seq, want, 4});
    }
    // 60 more tokens of sequence 0 need 4 blocks, 4 of sequence 1 one: 2 are free.
    for (uint32_t r = 0; r < 64; ++r) {
      const uint32_t q = r < 60 ? 0 : 1;
      token[r] = ids[0];
      seq[r] = engine->sequence(q);
      pos[r] = seq[r]->n_past + (q == 0 ? r : r - 60);
      want[r] = 0;
    }
    full_s = engine->model().forward_batch(Batch{token, pos, seq, want, 64});  // 60 + 4 rows
    allocs = counting.stop();
  }
  EXPECT_TRUE(prefill_s.is_ok()) << prefill_s.message();
  EXPECT_TRUE(decode_s.is_ok()) << decode_s.message();
  EXPECT_EQ(steps, 100u);
  EXPECT_EQ(full_s.code(), StatusCode::kKvFull) << full_s.message();
  EXPECT_EQ(engine->sequence(0)->n_past, 112u) << "a refused step changes nothing";
  EXPECT_EQ(allocs, 0) << "heap allocations after init";
}

// The scheduler (issue 16): six requests for four sequences (two wait), a
// pool too small for all of them (preemption and recomputation), seeded
// sampling per request, stop strings, one cancelled: submit and step only
// use the scheduler's arrays and the arena.
void count_events(void* ctx, const SchedulerEvent& e) {
  if (e.finished) ++*static_cast<uint32_t*>(ctx);
}

void scheduler_steps(const std::string& path_, int32_t kv_type) {
  EngineOptions o;
  o.model_path = path_.c_str();
  o.kv_type = kv_type;
  o.limits.max_context = 256;
  o.limits.max_sequences = 4;
  o.limits.logit_rows = 4;
  o.limits.kv_blocks = 12;  // 192 tokens for four sequences of up to ~110
  o.threads = 2;
  auto engine = std::make_unique<Engine>();
  Status s = engine->open(o);
  ASSERT_TRUE(s.is_ok()) << s.message();
  static Scheduler sch;  // ~100 KB of request slots: made before counting
  ASSERT_TRUE(sch.init(engine.get(), SchedulerOptions{}).is_ok());
  static int32_t prompts[6][24];
  for (int i = 0; i < 6; ++i)
    for (int k = 0; k < 24; ++k) prompts[i][k] = 100 + 37 * i + 11 * k;
  const char* stops[1] = {"The end."};  // rare: the requests run long
  const uint32_t stop_lens[1] = {8};
  Status submit_s, step_s, cancel_s;
  uint32_t finished = 0, preempted = 0, steps = 0;
  long allocs = 0;
  {
    Counting counting;
    uint32_t ids[6] = {};
    for (int i = 0; i < 6 && submit_s.is_ok(); ++i) {
      SequenceRequest r;
      r.prompt = prompts[i];
      r.n_prompt = uint32_t(8 + 3 * i);
      r.max_new_tokens = 80;
      r.sampling.temperature = i % 2 ? 0.8f : 0.0f;
      r.sampling.seed = uint64_t(i);
      r.stop_strings = stops;
      r.stop_string_lens = stop_lens;
      r.n_stop_strings = 1;
      submit_s = sch.submit(r, &ids[i]);
    }
    for (; steps < 2000 && !sch.idle() && step_s.is_ok(); ++steps) {
      StepStats st;
      step_s = sch.step(count_events, &finished, &st);
      preempted += st.preempted;
      if (steps == 10) cancel_s = sch.cancel(ids[1]);
    }
    allocs = counting.stop();
  }
  EXPECT_TRUE(submit_s.is_ok()) << submit_s.message();
  EXPECT_TRUE(step_s.is_ok()) << step_s.message();
  EXPECT_TRUE(cancel_s.is_ok()) << cancel_s.message();
  EXPECT_TRUE(sch.idle());
  EXPECT_EQ(finished, 6u);
  EXPECT_GT(preempted, 0u) << "the pool should have run out";
  EXPECT_EQ(allocs, 0) << "heap allocations after init";
  std::printf("scheduler: %u steps, %u preemptions, heap allocations %ld\n", steps, preempted, allocs);
}
TEST_F(AllocFreeTest, SchedulerAllocatesNothing) { scheduler_steps(path_, -1); }
// The same with the int8 KV cache (its blocks, scales and integer attention).
TEST_F(AllocFreeTest, SchedulerAllocatesNothingInt8Kv) { scheduler_steps(path_, int32_t(KvType::kInt8)); }

// Gemma 3 (issue 14): the sliding-window pool recycles blocks as the window
// moves, from the arena, with no heap: a prompt past the 512-token window,
// 200 sampled tokens, a forked sequence, a rewind past the window (refused
// with a clear error, the sequence unchanged), a reset and a second run.
void gemma3_sliding_window(const std::string&, int32_t kv_type) {
  const std::string path = testing::model_path("gemma3-270m-int4.tern");
  EngineOptions o;
  o.model_path = path.c_str();
  o.kv_type = kv_type;
  o.limits.max_context = 2048;
  o.limits.max_sequences = 2;
  o.threads = 2;
  o.sampling.temperature = 0.8f;
  o.sampling.seed = 11;
  auto engine = std::make_unique<Engine>();
  Status s = engine->open(o);
  ASSERT_TRUE(s.is_ok()) << s.message();
  ASSERT_NE(engine->model().window_kv(), nullptr) << "Gemma's sliding layers should have their own pool";
  std::string text;
  for (int i = 0; i < 50; ++i) text += "Sliding windows keep only the last few hundred positions of a layer. ";
  Status prefill_s, gen_s, fork_s, rewound_s, after_reset_s;
  uint32_t generated = 0, prompt_tokens = 0, window_used_max = 0;
  long allocs = 0;
  {
    Counting counting;
    KvSequence* seq = engine->sequence(0);
    TokenHistory h{engine->history(0), 0, engine->limits().max_context};
    size_t n = 0;
    prefill_s = engine->tokenizer().encode_prompt(text.data(), text.size(), false, true, h.ids, h.cap, &n);
    h.n = uint32_t(n);
    prompt_tokens = h.n;
    GenerateRequest req;
    req.max_new_tokens = 200;
    req.on_token = ignore_text;
    GenerateStats st;
    gen_s = generate(engine.get(), seq, &h, req, &st);
    generated = st.generated;
    window_used_max = engine->model().window_kv()->used_blocks();
    fork_s = engine->model().kv().fork(*seq, engine->sequence(1));
    if (fork_s.is_ok()) fork_s = engine->decode(engine->sequence(1), 818);
    // Rewind sequence 0 to position 100 (its window there was recycled long ago).
    engine->model().kv().truncate(seq, 100);
    rewound_s = engine->decode(seq, 818);
    engine->reset(seq);
    after_reset_s = engine->prefill(seq, h.ids, 40);
    allocs = counting.stop();
  }
  EXPECT_TRUE(prefill_s.is_ok()) << prefill_s.message();
  EXPECT_GT(prompt_tokens, 600u);
  EXPECT_TRUE(gen_s.is_ok()) << gen_s.message();
  EXPECT_EQ(generated, 200u);
  EXPECT_TRUE(fork_s.is_ok()) << fork_s.message();
  EXPECT_EQ(rewound_s.code(), StatusCode::kInvalidArgument) << rewound_s.message();
  EXPECT_NE(std::string(rewound_s.message()).find("sliding-window"), std::string::npos) << rewound_s.message();
  EXPECT_TRUE(after_reset_s.is_ok()) << after_reset_s.message();
  // Each sequence holds at most window_blocks(512, chunk 64, 16) = 37 blocks of the window pool.
  EXPECT_LE(window_used_max, 37u);
  EXPECT_EQ(allocs, 0) << "heap allocations after init";
  std::printf("gemma3: %u prompt + %u generated tokens, window pool %u blocks in use, heap allocations %ld\n",
              prompt_tokens, generated, window_used_max, allocs);
}
TEST_F(AllocFreeTest, Gemma3SlidingWindowRecyclingAllocatesNothing) { gemma3_sliding_window(path_, -1); }
// The same with the int8 KV cache (its blocks, scales and integer attention).
TEST_F(AllocFreeTest, Gemma3SlidingWindowRecyclingAllocatesNothingInt8Kv) { gemma3_sliding_window(path_, int32_t(KvType::kInt8)); }

bool g_stop = false;
bool stop_check(void*) { return g_stop; }

TEST_F(AllocFreeTest, ReplPathsAllocateNothing) {
  EngineOptions o;
  o.model_path = path_.c_str();
  o.limits.max_context = 128;
  o.limits.max_sequences = 1;
  o.threads = 1;
  auto engine = std::make_unique<Engine>();
  ASSERT_TRUE(engine->open(o).is_ok());
  static ChatSession chat;
  ASSERT_TRUE(chat.init(engine.get(), 0).is_ok());
  chat.set_stop_check(stop_check, nullptr);
  static char line[8192], stash[8192], hist[4096], joined[8192], clean[cli::repl_clean_bytes(8192)];
  static char render[cli::LineEditor::render_max(2)];
  static cli::LineEditor editor;
  static cli::MessageJoiner joiner;
  const char keys[] = "Hello w\xc3\xa9rld\x1b[D\x1b[D\x7f\x01\x05\x17\x15" "again \xe4\xb8\xad\x1b[A\x1b[B\x0b\r";
  const char* msg = "Tell me a story about a cat.";
  const size_t msg_len = std::strlen(msg);

  GenerateStats st;
  Status cut_s, closed_s, stopped_s, system_s, full_s, shift_s;
  ChatTurnInfo::End cut_end = ChatTurnInfo::End::kNone, stopped_end = ChatTurnInfo::End::kNone;
  uint32_t shifted_turns = 0;
  cli::LineEditor::Event ev = cli::LineEditor::Event::kNone;
  cli::ReplInput parsed;
  size_t rendered = 0;
  long allocs = 0;
  {
    Counting counting;
    // tern-chat's input: keys through the editor, the line through the joiner and parser.
    editor.init(line, stash, sizeof(line), hist, sizeof(hist));
    editor.history_add("earlier", 7);
    editor.begin();
    size_t at = 0;
    while (at < sizeof(keys) - 1 && ev == cli::LineEditor::Event::kNone) {
      const size_t left = sizeof(keys) - 1 - at;
      at += editor.feed(keys + at, left < 3 ? left : 3, &ev);  // a few bytes per read, as a terminal gives them
      rendered += editor.render("> ", 2, 80, render, sizeof(render));
    }
    joiner.init(joined, sizeof(joined));
    (void)joiner.add("\"\"\"", 3);
    (void)joiner.add(editor.line(), editor.len());
    (void)joiner.add("\"\"\"", 3);
    parsed = cli::parse_repl_line(joiner.text(), joiner.len(), clean, sizeof(clean), joiner.was_block());
    // A reply cut off at the token budget, then the turn that closes it.
    cut_s = chat.turn(msg, msg_len, 4, ignore_chat, nullptr, &st);
    cut_end = chat.last_turn().end;
    closed_s = chat.turn("Go on.", 6, 4, ignore_chat, nullptr, &st);
    // A stop request (Ctrl-C) during the reply.
    g_stop = true;
    stopped_s = chat.turn(msg, msg_len, 8, ignore_chat, nullptr, &st);
    stopped_end = chat.last_turn().end;
    g_stop = false;
    // A new system prompt, then turns until the context is full.
    system_s = chat.set_system("Be brief.", 9);
    for (int i = 0; i < 20 && full_s.is_ok(); ++i) {
      full_s = chat.turn(msg, msg_len, 16, ignore_chat, nullptr, &st);
      if (!full_s.is_ok() && chat.last_turn().end != ChatTurnInfo::End::kNone) full_s = Status::ok();
    }
    // Context shift: the same turns go on, dropping the oldest.
    chat.set_context_shift(true);
    for (int i = 0; i < 6 && shift_s.is_ok(); ++i) {
      shift_s = chat.turn(msg, msg_len, 16, ignore_chat, nullptr, &st);
      shifted_turns += chat.last_turn().dropped_turns;
    }
    chat.reset();
    allocs = counting.stop();
  }
  EXPECT_EQ(ev, cli::LineEditor::Event::kEnter);
  EXPECT_GT(rendered, 0u);
  EXPECT_EQ(parsed.kind, cli::ReplInputKind::kMessage);
  EXPECT_TRUE(cut_s.is_ok()) << cut_s.message();
  EXPECT_EQ(cut_end, ChatTurnInfo::End::kLength);
  EXPECT_TRUE(closed_s.is_ok()) << closed_s.message();
  EXPECT_TRUE(stopped_s.is_ok()) << stopped_s.message();
  EXPECT_EQ(stopped_end, ChatTurnInfo::End::kStopped);
  EXPECT_TRUE(system_s.is_ok()) << system_s.message();
  EXPECT_EQ(full_s.code(), StatusCode::kContextFull) << full_s.message();
  EXPECT_TRUE(shift_s.is_ok()) << shift_s.message();
  EXPECT_GT(shifted_turns, 0u);
  EXPECT_EQ(allocs, 0) << "heap allocations in the REPL paths";
}

}  // namespace
}  // namespace tern
