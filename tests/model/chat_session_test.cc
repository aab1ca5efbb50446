// ChatSession on the real model (issue 18, chat parts): the system turn is in
// the history from the start and counts against the context; a reply cut off
// (token budget, stop check) is closed in the history before the next turn;
// a full context is refused with "context is full" (no shift) or shifted
// (drop the oldest whole turns, keep the system turn, prefill again).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

std::string g_reply;
void collect(void*, const char* s, size_t n) { g_reply.append(s, n); }

class ChatSessionTest : public ::testing::Test {
 protected:
  void open(uint32_t max_context) {
    path_ = testing::model_path("smollm2-135m-int4.tern");
    EngineOptions o;
    o.model_path = path_.c_str();
    o.limits.max_context = max_context;
    o.limits.max_sequences = 1;
    o.threads = 1;
    engine_ = std::make_unique<Engine>();
    Status s = engine_->open(o);
    ASSERT_TRUE(s.is_ok()) << s.message();
    chat_ = std::make_unique<ChatSession>();
    ASSERT_TRUE(chat_->init(engine_.get(), 0).is_ok());
    size_t n = 0;
    ASSERT_TRUE(engine_->tokenizer().encode("\n", 1, false, &newline_, 1, &n).is_ok());
  }
  Status say(const char* msg, uint32_t max_new, GenerateStats* st) {
    g_reply.clear();
    return chat_->turn(msg, std::strlen(msg), max_new, collect, nullptr, st);
  }
  int32_t id(uint32_t i) const { return chat_->history().ids[i]; }

  std::string path_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ChatSession> chat_;
  int32_t newline_ = -1;
};

TEST_F(ChatSessionTest, SystemTurnCountsFromTheStart) {
  open(256);
  const uint32_t sys = chat_->system_tokens();
  EXPECT_GT(sys, 10u) << "SmolLM2's template has a default system prompt";
  EXPECT_TRUE(chat_->system_is_default());
  EXPECT_EQ(chat_->context_used(), sys) << "the hidden system prompt uses context before any message";
  EXPECT_EQ(id(0), engine_->chat().im_start);

  ASSERT_TRUE(chat_->set_system("Be brief.", 9).is_ok());
  EXPECT_FALSE(chat_->system_is_default());
  EXPECT_LT(chat_->system_tokens(), sys);
  EXPECT_EQ(chat_->context_used(), chat_->system_tokens());
  ASSERT_TRUE(chat_->set_system("", 0).is_ok());
  EXPECT_EQ(chat_->system_tokens(), 0u);
  EXPECT_EQ(chat_->context_used(), 0u);

  std::string huge;
  for (int i = 0; i < 300; ++i) huge += "word ";
  Status s = chat_->set_system(huge.data(), huge.size());
  EXPECT_EQ(s.code(), StatusCode::kPromptTooLong) << s.message();
  EXPECT_NE(std::string(s.message()).find("system prompt too long"), std::string::npos) << s.message();
  ASSERT_TRUE(chat_->set_system(nullptr, 0).is_ok());
  EXPECT_EQ(chat_->system_tokens(), sys);

  // /reset keeps the system turn.
  GenerateStats st;
  ASSERT_TRUE(say("Hi.", 4, &st).is_ok());
  EXPECT_EQ(st.prompt_tokens, chat_->history().n - st.generated) << "the system turn is prefilled with turn 1";
  chat_->reset();
  EXPECT_EQ(chat_->context_used(), sys);
  EXPECT_EQ(chat_->turns(), 0u);
}

// Issue 18 item 2: a reply stopped at -n left its turn open, and the next
// turn was appended inside it.
TEST_F(ChatSessionTest, CutOffReplyIsClosedBeforeTheNextTurn) {
  open(512);
  GenerateStats st;
  ASSERT_TRUE(say("Tell me a story about a cat.", 8, &st).is_ok());
  EXPECT_FALSE(st.stopped);
  EXPECT_EQ(chat_->last_turn().end, ChatTurnInfo::End::kLength);
  const uint32_t n1 = chat_->history().n;
  EXPECT_NE(id(n1 - 1), engine_->chat().im_end);
  ASSERT_TRUE(say("What was the cat called?", 8, &st).is_ok());
  // ... reply, <|im_end|>, "\n", <|im_start|>user ...
  EXPECT_EQ(id(n1), engine_->chat().im_end);
  EXPECT_EQ(id(n1 + 1), newline_);
  EXPECT_EQ(id(n1 + 2), engine_->chat().im_start);
  EXPECT_EQ(st.prompt_tokens, chat_->history().n - n1 - st.generated + 1)
      << "the cut reply's last token, its closing tokens and the new turn are prefilled";
  EXPECT_EQ(g_reply.find("<|im_start|>"), std::string::npos) << g_reply;
}

TEST_F(ChatSessionTest, FinishedReplyIsNotClosedTwice) {
  open(512);
  GenerateStats st;
  ASSERT_TRUE(say("Say OK.", 64, &st).is_ok());
  ASSERT_TRUE(st.stopped) << "expected the model to end its turn: " << g_reply;
  EXPECT_EQ(chat_->last_turn().end, ChatTurnInfo::End::kEndOfTurn);
  const uint32_t n1 = chat_->history().n;
  EXPECT_EQ(id(n1 - 1), engine_->chat().im_end);
  ASSERT_TRUE(say("Thanks.", 4, &st).is_ok());
  EXPECT_EQ(id(n1), newline_);
  EXPECT_EQ(id(n1 + 1), engine_->chat().im_start);
}

// Stop once the reply has shown some text (the check is also polled before
// each prefill chunk, where nothing has been shown yet).
bool stop_after_first_text(void*) { return !g_reply.empty(); }

TEST_F(ChatSessionTest, StopCheckEndsTheReplyAndClosesTheTurn) {
  open(512);
  chat_->set_stop_check(stop_after_first_text, nullptr);
  GenerateStats st;
  ASSERT_TRUE(say("Tell me a long story about a dragon.", 64, &st).is_ok());
  EXPECT_EQ(st.generated, 1u);
  EXPECT_EQ(chat_->last_turn().end, ChatTurnInfo::End::kStopped);
  EXPECT_FALSE(g_reply.empty());
  chat_->set_stop_check(nullptr, nullptr);
  const uint32_t n1 = chat_->history().n;
  ASSERT_TRUE(say("Hello.", 4, &st).is_ok());
  EXPECT_EQ(id(n1), engine_->chat().im_end);
}

bool stop_now(void*) { return true; }

// Ctrl-C while a long message is still being prefilled: generate() polls the
// same check between prefill chunks, so the turn ends before any reply token,
// is closed, and the next turn prefills what was left and answers.
TEST_F(ChatSessionTest, StopDuringPrefillClosesTheTurn) {
  open(512);
  chat_->set_stop_check(stop_now, nullptr);
  GenerateStats st;
  ASSERT_TRUE(say("Tell me a long story about a dragon.", 64, &st).is_ok());
  EXPECT_EQ(st.generated, 0u);
  EXPECT_EQ(st.finish, FinishReason::kCaller);
  EXPECT_EQ(chat_->last_turn().end, ChatTurnInfo::End::kStopped);
  EXPECT_TRUE(g_reply.empty()) << g_reply;
  chat_->set_stop_check(nullptr, nullptr);
  const uint32_t n1 = chat_->history().n;
  ASSERT_TRUE(say("Hello.", 4, &st).is_ok());
  EXPECT_EQ(id(n1), engine_->chat().im_end);
  EXPECT_GT(st.generated, 0u);
}

// Issue 18 item 6: a full context said "message too long: ... 0 tokens left"
// for every later message.
TEST_F(ChatSessionTest, FullContextIsSaidAndResetHelps) {
  open(128);
  GenerateStats st;
  Status s;
  int turns = 0;
  for (; turns < 20; ++turns) {
    s = say("Tell me about dragons.", 24, &st);
    if (!s.is_ok() && chat_->last_turn().end == ChatTurnInfo::End::kNone) break;
  }
  ASSERT_LT(turns, 20);
  EXPECT_EQ(s.code(), StatusCode::kContextFull) << s.message();
  EXPECT_NE(std::string(s.message()).find("context is full"), std::string::npos) << s.message();
  EXPECT_NE(std::string(s.message()).find("/reset"), std::string::npos) << s.message();
  const uint32_t used = chat_->context_used();
  s = say("Tell me about dragons.", 24, &st);
  EXPECT_EQ(s.code(), StatusCode::kContextFull);
  EXPECT_EQ(chat_->context_used(), used) << "a refused message changes nothing";
  chat_->reset();
  EXPECT_TRUE(say("Tell me about dragons.", 24, &st).is_ok());
}

TEST_F(ChatSessionTest, MessageLongerThanTheContextIsTooLong) {
  open(128);
  std::string msg;
  for (int i = 0; i < 200; ++i) msg += "word ";
  GenerateStats st;
  const uint32_t used = chat_->context_used();
  Status s = say(msg.c_str(), 4, &st);
  EXPECT_EQ(s.code(), StatusCode::kPromptTooLong) << s.message();
  EXPECT_NE(std::string(s.message()).find("message too long"), std::string::npos) << s.message();
  EXPECT_EQ(chat_->context_used(), used);
  EXPECT_EQ(chat_->last_turn().end, ChatTurnInfo::End::kNone);
  // Over the session's scratch (8,192 tokens): encoded in place, same verdict.
  std::string huge;
  for (int i = 0; i < 10000; ++i) huge += "word ";
  s = say(huge.c_str(), 4, &st);
  EXPECT_EQ(s.code(), StatusCode::kPromptTooLong) << s.message();
  EXPECT_EQ(chat_->context_used(), used);
  // ... and with the context filled to the last token.
  for (int i = 0; i < 20 && chat_->context_used() < chat_->context_max(); ++i) {
    (void)say("Tell me a long story about dragons.", 200, &st);
  }
  ASSERT_EQ(chat_->context_used(), chat_->context_max());
  s = say(huge.c_str(), 4, &st);
  EXPECT_EQ(s.code(), StatusCode::kContextFull) << s.message();
  EXPECT_EQ(chat_->context_used(), chat_->context_max());
}

// Issue 18 item 9: with context shift, the oldest whole turns go; the system
// turn stays; the KV sequence is prefilled again from what is kept.
TEST_F(ChatSessionTest, ContextShiftDropsOldestTurnsAndKeepsTheSystemTurn) {
  open(160);
  chat_->set_context_shift(true);
  const uint32_t sys = chat_->system_tokens();
  std::vector<int32_t> system(chat_->history().ids, chat_->history().ids + sys);
  GenerateStats st;
  bool shifted = false;
  for (int i = 0; i < 10; ++i) {
    const std::string msg = "Tell me a fact about the number " + std::to_string(i) + ".";
    Status s = say(msg.c_str(), 16, &st);
    ASSERT_TRUE(s.is_ok()) << "turn " << i << ": " << s.message();
    const ChatTurnInfo& info = chat_->last_turn();
    if (info.dropped_turns > 0) {
      shifted = true;
      EXPECT_GT(info.dropped_tokens, 0u);
      EXPECT_EQ(st.prompt_tokens, chat_->history().n - st.generated) << "everything kept is prefilled again";
      EXPECT_LT(info.refilled_tokens, st.prompt_tokens);
    }
    EXPECT_TRUE(std::equal(system.begin(), system.end(), chat_->history().ids)) << "system turn changed at " << i;
    EXPECT_EQ(id(sys), engine_->chat().im_start) << "the first kept turn starts whole";
    EXPECT_EQ(chat_->sequence().n_past + 1, chat_->history().n);
    EXPECT_LE(chat_->context_used(), chat_->context_max());
  }
  EXPECT_TRUE(shifted);
  EXPECT_LT(chat_->turns_in_context(), chat_->turns());
}

}  // namespace
}  // namespace tern
