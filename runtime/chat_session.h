// One conversation in the KV cache, turn by turn: each user message is
// formatted with the model's chat format, only the new tokens are prefilled,
// and the reply streams out as UTF-8 text. The REPL (tools/tern_chat.cc) is a
// thin loop around this, so tests can drive exactly what the REPL does.
//
// The history is [BOS][system turn][turn 1][turn 2]...: the opening (the
// BOS when the model adds one, and the system turn: the template's default,
// or one set with set_system) is encoded at reset and counts against the
// context from the start. A reply that ends without its end-of-turn token
// (the token budget, a stop request, a full context) is closed in the
// history before the next turn, as the chat format closes a turn. With
// context shift on, a message that does not fit drops the oldest whole turns
// after the system turn; the KV sequence is then reset and what is kept is
// prefilled again (simple and correct with paged KV). Gemma has no system
// role: its system text opens turn 1 (chat_format.h), so a context shift
// keeps turn 1 and drops from turn 2 on.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/status.h"
#include "runtime/text_tokenizer.h"
#include "runtime/utf8.h"

namespace tern {

// Receives reply text as it decodes (complete UTF-8 only).
using TextFn = void (*)(void* ctx, const char* text, size_t len);
// Polled after every reply token; true stops the reply (e.g. Ctrl-C).
using StopCheckFn = bool (*)(void* ctx);

// How the last turn went, beyond GenerateStats.
struct ChatTurnInfo {
  enum class End : uint8_t {
    kNone,         // no reply (the message was refused)
    kEndOfTurn,    // the model ended its turn
    kLength,       // cut off at max_new_tokens
    kStopped,      // cut off by the stop check (Ctrl-C)
    kContextFull,  // cut off by the end of the context
    kError,        // cut off by another error (KV pool exhausted)
  };
  End end = End::kNone;
  uint32_t dropped_turns = 0;   // context shift before this turn: whole turns dropped
  uint32_t dropped_tokens = 0;  // ... and their tokens
  uint32_t refilled_tokens = 0; // tokens kept that the shift made prefill again (in prompt_tokens)
};

class ChatSession {
 public:
  // Binds sequence `sequence_index` of the engine; the system prompt is the
  // chat template's default.
  Status init(Engine* engine, uint32_t sequence_index);
  // Run one turn. Refused, nothing changed: kPromptTooLong (the message does
  // not fit even in the context left after the system prompt, or with no
  // turn to drop) and kContextFull (the conversation so far leaves no room;
  // /reset, or context shift). On kContextFull / kKvFull during the reply,
  // what was streamed stays and the turn is closed before the next one.
  Status turn(const char* message, size_t len, uint32_t max_new_tokens, TextFn on_text, void* ctx,
              GenerateStats* stats);
  // Forget the conversation; the system turn stays.
  void reset();

  // Set the system prompt and start a new conversation. text == nullptr: the
  // template's default; len == 0: no system turn. kPromptTooLong when it would
  // leave under 16 tokens of context: the conversation is then reset with no
  // system turn (set it again).
  Status set_system(const char* text, size_t len);
  // Drop the oldest turns when a message does not fit (off by default).
  void set_context_shift(bool on) { context_shift_ = on; }
  // Print special tokens (e.g. <|im_start|>) in replies; off by default.
  void set_show_special(bool on) { show_special_ = on; }
  // Polled after each reply token; nullptr for none.
  void set_stop_check(StopCheckFn fn, void* ctx) {
    stop_fn_ = fn;
    stop_ctx_ = ctx;
  }

  uint32_t turns() const { return turns_; }                   // turns since the last reset
  uint32_t turns_in_context() const { return n_marks_; }      // turns still in the history
  uint32_t context_used() const { return history_.n; }        // system turn included
  uint32_t context_max() const { return history_.cap; }
  // Tokens before the first turn: the BOS (if the model adds one) and the
  // system turn (Gemma: the system text that opens the first user turn).
  uint32_t system_tokens() const { return system_tokens_; }
  bool has_system() const { return has_system_; }
  bool system_is_default() const { return system_default_; }
  bool context_shift() const { return context_shift_; }
  const ChatTurnInfo& last_turn() const { return info_; }
  const KvSequence& sequence() const { return *seq_; }
  const TokenHistory& history() const { return history_; }

 private:
  static constexpr uint32_t kMaxMarks = 256;  // turn starts remembered; beyond, the oldest two merge
  static constexpr uint32_t kMinRoom = 16;    // context a system prompt must leave free
  // A new turn is encoded here first, so its exact size is known before
  // anything in the history changes. A longer turn is encoded in place and
  // cannot shift the context.
  static constexpr uint32_t kScratchTokens = 8192;

  static bool on_token(void* self, int32_t token, bool is_stop);
  void drop_oldest_turn();
  // Turns a context shift never drops: the first one when it holds the
  // system text (Gemma), else none.
  uint32_t kept_turns() const { return open_user_turn_ ? 1 : 0; }
  void add_mark(uint32_t at);

  Engine* engine_ = nullptr;
  KvSequence* seq_ = nullptr;
  TokenHistory history_;
  uint32_t turns_ = 0;
  uint32_t system_tokens_ = 0;
  bool system_default_ = true;
  bool has_system_ = false;       // a non-empty system text
  bool open_user_turn_ = false;   // the system text opened the first user turn (Gemma)
  bool reply_cut_ = false;  // the last reply in the history lacks its end-of-turn token
  bool context_shift_ = false;
  bool show_special_ = false;
  bool stop_requested_ = false;
  uint32_t marks_[kMaxMarks] = {};  // history index of each turn's first own token (its user header)
  uint32_t n_marks_ = 0;
  int32_t scratch_[kScratchTokens];
  ChatTurnInfo info_;
  Utf8Stream utf8_;
  TextFn on_text_ = nullptr;
  void* text_ctx_ = nullptr;
  StopCheckFn stop_fn_ = nullptr;
  void* stop_ctx_ = nullptr;
};

}  // namespace tern
