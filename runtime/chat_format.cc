#include "runtime/chat_format.h"

#include <cstring>

namespace tern {

namespace {

const char* find(const char* hay, size_t hay_len, const char* needle) {
  const size_t n = std::strlen(needle);
  if (n == 0 || n > hay_len) return nullptr;
  for (size_t i = 0; i + n <= hay_len; ++i) {
    if (std::memcmp(hay + i, needle, n) == 0) return hay + i;
  }
  return nullptr;
}

// Append the encoding of text (special tokens recognized or not) to out.
Status append(Tokenizer* tok, const char* text, size_t len, bool special, int32_t* out, size_t cap, size_t* n) {
  size_t got = 0;
  Status s = tok->encode(text, len, special, out + *n, cap - *n, &got);
  *n += got;
  return s;
}

}  // namespace

Status chat_format_init(const char* tmpl, size_t len, int32_t im_start, int32_t im_end, ChatFormat* out) {
  *out = ChatFormat{};
  if (tmpl == nullptr || find(tmpl, len, "<|im_start|>") == nullptr) {
    return Status::error(StatusCode::kUnsupported, "chat template is not ChatML; only ChatML chat is supported");
  }
  if (im_start < 0 || im_end < 0) {
    return Status::error(StatusCode::kUnsupported, "vocabulary lacks <|im_start|> or <|im_end|>");
  }
  out->chatml = true;
  out->im_start = im_start;
  out->im_end = im_end;
  // The default system turn is a literal in the template:
  //   '<|im_start|>system\nYou are ...<|im_end|>\n'
  const char* marker = "<|im_start|>system\n";
  const char* sys = find(tmpl, len, marker);
  if (sys != nullptr) {
    const char* begin = sys + std::strlen(marker);
    const char* end = find(begin, size_t(tmpl + len - begin), "<|im_end|>");
    // A literal default prompt contains no template syntax.
    if (end != nullptr && find(begin, size_t(end - begin), "{{") == nullptr &&
        find(begin, size_t(end - begin), "'") == nullptr && size_t(end - begin) < sizeof(out->system_prompt)) {
      out->system_len = size_t(end - begin);
      std::memcpy(out->system_prompt, begin, out->system_len);
    }
  }
  return Status::ok();
}

Status chat_encode_system_turn(Tokenizer* tok, const ChatFormat& fmt, const char* text, size_t len, int32_t* out,
                               size_t cap, size_t* n_out) {
  (void)fmt;  // ChatML is the only format
  *n_out = 0;
  if (len == 0) return Status::ok();
  size_t n = 0;
  Status s = append(tok, "<|im_start|>system\n", 19, true, out, cap, &n);
  if (s.is_ok()) s = append(tok, text, len, false, out, cap, &n);
  if (s.is_ok()) s = append(tok, "<|im_end|>\n", 11, true, out, cap, &n);
  *n_out = n;
  return s;
}

Status chat_encode_turn(Tokenizer* tok, const ChatFormat& fmt, const ChatTurnPrefix& prefix, const char* text,
                        size_t len, int32_t* out, size_t cap, size_t* n_out, size_t* user_at) {
  *n_out = 0;
  *user_at = 0;
  size_t n = 0;
  if (prefix.after_reply && prefix.reply_cut) {
    if (cap == 0) return Status::error(StatusCode::kPromptTooLong, "text needs more than 0 tokens");
    out[n++] = fmt.im_end;
  }
  if (prefix.after_reply) TERN_RETURN_IF_ERROR(append(tok, "\n", 1, false, out, cap, &n));
  *user_at = n;
  TERN_RETURN_IF_ERROR(append(tok, "<|im_start|>user\n", 17, true, out, cap, &n));
  Status s = append(tok, text, len, false, out, cap, &n);
  if (!s.is_ok()) {
    *n_out = n;
    return s;
  }
  TERN_RETURN_IF_ERROR(append(tok, "<|im_end|>\n<|im_start|>assistant\n", 33, true, out, cap, &n));
  *n_out = n;
  return Status::ok();
}

Status chat_encode_user_turn(Tokenizer* tok, const ChatFormat& fmt, bool first_turn, bool after_reply,
                             const char* text, size_t len, int32_t* out, size_t cap, size_t* n_out) {
  *n_out = 0;
  size_t n = 0;
  if (after_reply) TERN_RETURN_IF_ERROR(append(tok, "\n", 1, false, out, cap, &n));
  if (first_turn && fmt.system_len > 0) {
    size_t sys = 0;
    Status s = chat_encode_system_turn(tok, fmt, fmt.system_prompt, fmt.system_len, out + n, cap - n, &sys);
    n += sys;
    if (!s.is_ok()) return s;
  }
  ChatTurnPrefix none;
  size_t got = 0, user_at = 0;
  Status s = chat_encode_turn(tok, fmt, none, text, len, out + n, cap - n, &got, &user_at);
  n += got;
  *n_out = n;
  return s;
}

}  // namespace tern
