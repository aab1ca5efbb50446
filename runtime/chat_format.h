// Chat formatting without a template engine. tern knows two chat formats and
// picks one from what the blob has (chat_format_select):
//  - ChatML (`<|im_start|>role\n...<|im_end|>\n`, SmolLM2, Qwen): the chat
//    template is ChatML and the vocabulary has <|im_start|> / <|im_end|>. An
//    optional default system turn is taken from the template text.
//  - Gemma (`<start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n`):
//    the vocabulary has <start_of_turn> / <end_of_turn> as control tokens and
//    the template, if there is one, mentions <start_of_turn>. Gemma has no
//    system role: as its template does, a system text opens the first user
//    turn, followed by a blank line ("user\n" SYSTEM "\n\n" TEXT).
// Both reproduce what the model's template renders, with the BOS token first
// when the model adds one (TextTokenizer::prompt_bos). Turns are emitted as
// token ids piece by piece: role markers are special tokens, user text is
// always plain, so a user typing "<|im_start|>" or "<start_of_turn>" cannot
// forge a turn. Generation stops at the format's end-of-turn token
// (<|im_end|>, <end_of_turn>) or EOS.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/status.h"
#include "runtime/text_tokenizer.h"

namespace tern {

enum class ChatKind : uint8_t { kNone = 0, kChatMl = 1, kGemma = 2 };
// "none", "chatml", "gemma".
const char* chat_kind_name(ChatKind kind);

struct ChatFormat {
  ChatKind kind = ChatKind::kNone;
  char system_prompt[512] = {0};  // default system message from the template, "" if none
  size_t system_len = 0;
  int32_t im_start = -1, im_end = -1;      // ChatML role markers
  int32_t turn_start = -1, turn_end = -1;  // Gemma <start_of_turn>, <end_of_turn>
  int32_t bos = -1;                        // first token of a conversation; -1: none

  // The token that ends a turn: a reply stops there (or at EOS).
  int32_t end_of_turn() const { return kind == ChatKind::kGemma ? turn_end : im_end; }
  // False for Gemma: the system text goes into the first user turn.
  bool has_system_role() const { return kind == ChatKind::kChatMl; }
};

// Recognize a ChatML template (bos stays -1). Fails with kUnsupported for a
// template that is not ChatML or a vocabulary without <|im_start|>/<|im_end|>.
Status chat_format_init(const char* tmpl, size_t tmpl_len, int32_t im_start, int32_t im_end, ChatFormat* out);

// Choose the format from the blob: ChatML (chat_format_init) first, else
// Gemma; the conversation starts with tok.prompt_bos(). kUnsupported, naming
// both, when neither fits (plain prompts still run).
Status chat_format_select(const char* tmpl, size_t tmpl_len, int32_t im_start, int32_t im_end,
                          const TextTokenizer& tok, ChatFormat* out);

// The opening of a conversation: the BOS token if the model adds one, then
// the system text. ChatML: "<|im_start|>system\n" TEXT "<|im_end|>\n".
// Gemma: "<start_of_turn>user\n" TEXT "\n\n", a user turn left open that the
// first chat_encode_turn continues (ChatTurnPrefix::in_user_turn). The text
// is always plain; an empty text adds nothing after the BOS.
Status chat_encode_system_turn(TextTokenizer* tok, const ChatFormat& fmt, const char* text, size_t len, int32_t* out,
                               size_t cap, size_t* n_out);

// How the turn before a new user turn ended.
struct ChatTurnPrefix {
  bool after_reply = false;   // an assistant reply comes before (not the system turn or nothing)
  bool reply_cut = false;     // that reply ended without its end-of-turn token (-n, Ctrl-C, full context)
  bool in_user_turn = false;  // Gemma: the system text opened this user turn (no header again)
};

// Token ids for one user turn and the model's header, after what `prefix`
// says precedes it. A reply cut off is closed first as the format closes a
// turn (its end-of-turn token, then the "\n" every turn is followed by), so
// the model sees a finished turn and never continues it. *user_at = the
// index in out of the turn's first own token (the user header, or the text
// when the turn was opened before): what precedes it belongs to the previous
// turn. ChatML: "<|im_start|>user\n" TEXT "<|im_end|>\n<|im_start|>assistant\n";
// Gemma: "<start_of_turn>user\n" TEXT "<end_of_turn>\n<start_of_turn>model\n",
// "user\n" and TEXT encoded as one text.
Status chat_encode_turn(TextTokenizer* tok, const ChatFormat& fmt, const ChatTurnPrefix& prefix, const char* text,
                        size_t len, int32_t* out, size_t cap, size_t* n_out, size_t* user_at);

// A whole one-turn prompt (tern-run --chat) or a later turn: with
// `first_turn`, the opening (BOS, the default system text) comes first; pass
// `after_reply` = true for every turn but the first.
Status chat_encode_user_turn(TextTokenizer* tok, const ChatFormat& fmt, bool first_turn, bool after_reply,
                             const char* text, size_t len, int32_t* out, size_t cap, size_t* n_out);

}  // namespace tern
