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

// The system turn alone: "<|im_start|>system\n" TEXT "<|im_end|>\n", the text
// always plain. Nothing (n_out = 0) for an empty text.
Status chat_encode_system_turn(Tokenizer* tok, const ChatFormat& fmt, const char* text, size_t len, int32_t* out,
                               size_t cap, size_t* n_out);

// How the turn before a new user turn ended.
struct ChatTurnPrefix {
  bool after_reply = false;  // an assistant reply comes before (not the system turn or nothing)
  bool reply_cut = false;    // that reply ended without its end-of-turn token (-n, Ctrl-C, full context)
};

// Token ids for one user turn and the assistant header, after what `prefix`
// says precedes it. A reply cut off is closed first as the format closes a
// turn (ChatML: <|im_end|>, then the "\n" every reply is followed by), so the
// model sees a finished turn and never continues it. *user_at = the index in
// out of the turn's first own token (<|im_start|>user): what precedes it
// belongs to the previous turn.
Status chat_encode_turn(Tokenizer* tok, const ChatFormat& fmt, const ChatTurnPrefix& prefix, const char* text,
                        size_t len, int32_t* out, size_t cap, size_t* n_out, size_t* user_at);

}  // namespace tern
