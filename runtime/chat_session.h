// One conversation in the KV cache, turn by turn: each user message is
// formatted with the model's chat format, only the new tokens are prefilled,
// and the reply streams out as UTF-8 text. The REPL (tools/tern_chat.cc) is a
// thin loop around this, so tests can drive exactly what the REPL does.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/status.h"
#include "runtime/tokenizer.h"
#include "runtime/utf8.h"

namespace tern {

// Receives reply text as it decodes (complete UTF-8 only).
using TextFn = void (*)(void* ctx, const char* text, size_t len);

class ChatSession {
 public:
  Status init(Engine* engine, uint32_t sequence_index);
  // Run one turn. On kPromptTooLong (message does not fit the remaining
  // context) nothing changes; on kContextFull / kKvFull during the reply,
  // what was streamed stays and the caller should /reset.
  Status turn(const char* message, size_t len, uint32_t max_new_tokens, TextFn on_text, void* ctx,
              GenerateStats* stats);
  void reset();

  uint32_t turns() const { return turns_; }
  uint32_t context_used() const { return history_.n; }
  uint32_t context_max() const { return history_.cap; }
  const KvSequence& sequence() const { return *seq_; }

 private:
  static bool on_token(void* self, int32_t token, bool is_stop);

  Engine* engine_ = nullptr;
  KvSequence* seq_ = nullptr;
  TokenHistory history_;
  uint32_t turns_ = 0;
  Utf8Stream utf8_;
  TextFn on_text_ = nullptr;
  void* text_ctx_ = nullptr;
};

}  // namespace tern
