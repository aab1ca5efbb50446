// Chat formatting without a template engine. The blob carries the model's
// Jinja chat template as text; tern recognizes the ChatML family from it
// (`<|im_start|>role\n...<|im_end|>\n`) and reproduces what the template
// renders: an optional default system turn (taken from the template text),
// one turn per message, and the assistant header as generation prompt.
// Turns are emitted as token ids piece by piece: role markers are special
// tokens, user text is always encoded as plain text, so a user typing
// "<|im_start|>" cannot forge a turn.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/status.h"
#include "runtime/tokenizer.h"

namespace tern {

struct ChatFormat {
  bool chatml = false;
  char system_prompt[512] = {0};  // default system message from the template, "" if none
  size_t system_len = 0;
  int32_t im_start = -1, im_end = -1;
};

// Recognize the template. Fails with kUnsupported for a template that is not
// ChatML or a vocabulary without <|im_start|>/<|im_end|>.
Status chat_format_init(const char* tmpl, size_t tmpl_len, int32_t im_start, int32_t im_end, ChatFormat* out);

// Token ids for one user turn followed by the assistant header. With
// `first_turn`, the default system turn comes first (as the template does
// when the conversation has no system message). After the assistant's reply
// (which ends in <|im_end|>), the next turn starts with "\n" to close it, so
// pass `after_reply` = true for every turn but the first.
Status chat_encode_user_turn(Tokenizer* tok, const ChatFormat& fmt, bool first_turn, bool after_reply,
                             const char* text, size_t len, int32_t* out, size_t cap, size_t* n_out);

}  // namespace tern
