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
Status append(TextTokenizer* tok, const char* text, size_t len, bool special, int32_t* out, size_t cap, size_t* n) {
  size_t got = 0;
  Status s = tok->encode(text, len, special, out + *n, cap - *n, &got);
  *n += got;
  return s;
}

// Append plain text given in pieces, encoded as one text (see encode_pieces).
Status append_pieces(TextTokenizer* tok, const TextTokenizer::Piece* p, size_t n_pieces, int32_t* out, size_t cap,
                     size_t* n) {
  size_t got = 0;
  Status s = tok->encode_pieces(p, n_pieces, out + *n, cap - *n, &got);
  *n += got;
  return s;
}

// Append one token id.
Status put(int32_t id, int32_t* out, size_t cap, size_t* n) {
  if (*n >= cap) return Status::error(StatusCode::kPromptTooLong, "text needs more than %zu tokens", cap);
  out[(*n)++] = id;
  return Status::ok();
}

// The vocabulary's id of a control token, -1 if it has none or the token is
// not special (then typing its text is plain text: no format can use it).
int32_t control_id(const TextTokenizer& tok, const char* text) {
  const int32_t id = tok.find(text, std::strlen(text));
  return id >= 0 && tok.is_special(id) ? id : -1;
}

}  // namespace

const char* chat_kind_name(ChatKind kind) {
  switch (kind) {
    case ChatKind::kChatMl: return "chatml";
    case ChatKind::kGemma: return "gemma";
    case ChatKind::kNone: break;
  }
  return "none";
}

Status chat_format_init(const char* tmpl, size_t len, int32_t im_start, int32_t im_end, ChatFormat* out) {
  *out = ChatFormat{};
  if (tmpl == nullptr || find(tmpl, len, "<|im_start|>") == nullptr) {
    return Status::error(StatusCode::kUnsupported, "chat template is not ChatML; only ChatML chat is supported");
  }
  if (im_start < 0 || im_end < 0) {
    return Status::error(StatusCode::kUnsupported, "vocabulary lacks <|im_start|> or <|im_end|>");
  }
  out->kind = ChatKind::kChatMl;
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

Status chat_format_select(const char* tmpl, size_t len, int32_t im_start, int32_t im_end, const TextTokenizer& tok,
                          ChatFormat* out) {
  if (chat_format_init(tmpl, len, im_start, im_end, out).is_ok()) {
    out->bos = tok.prompt_bos();
    return Status::ok();
  }
  *out = ChatFormat{};
  const int32_t start = control_id(tok, "<start_of_turn>");
  const int32_t end = control_id(tok, "<end_of_turn>");
  const bool gemma_template = tmpl == nullptr || len == 0 || find(tmpl, len, "<start_of_turn>") != nullptr;
  if (start < 0 || end < 0 || !gemma_template) {
    return Status::error(StatusCode::kUnsupported,
                         "no known chat format: ChatML needs a ChatML template and <|im_start|>/<|im_end|>, Gemma "
                         "needs <start_of_turn>/<end_of_turn> control tokens");
  }
  out->kind = ChatKind::kGemma;
  out->turn_start = start;
  out->turn_end = end;
  out->bos = tok.prompt_bos();
  return Status::ok();
}

Status chat_encode_system_turn(TextTokenizer* tok, const ChatFormat& fmt, const char* text, size_t len, int32_t* out,
                               size_t cap, size_t* n_out) {
  *n_out = 0;
  size_t n = 0;
  Status s = Status::ok();
  if (fmt.bos >= 0) s = put(fmt.bos, out, cap, &n);
  if (s.is_ok() && len > 0) {
    if (fmt.kind == ChatKind::kGemma) {
      const TextTokenizer::Piece p[3] = {{"user\n", 5}, {text, len}, {"\n\n", 2}};
      s = put(fmt.turn_start, out, cap, &n);
      if (s.is_ok()) s = append_pieces(tok, p, 3, out, cap, &n);
    } else {
      s = append(tok, "<|im_start|>system\n", 19, true, out, cap, &n);
      if (s.is_ok()) s = append(tok, text, len, false, out, cap, &n);
      if (s.is_ok()) s = append(tok, "<|im_end|>\n", 11, true, out, cap, &n);
    }
  }
  *n_out = n;
  return s;
}

Status chat_encode_turn(TextTokenizer* tok, const ChatFormat& fmt, const ChatTurnPrefix& prefix, const char* text,
                        size_t len, int32_t* out, size_t cap, size_t* n_out, size_t* user_at) {
  *n_out = 0;
  *user_at = 0;
  size_t n = 0;
  if (prefix.after_reply && prefix.reply_cut) TERN_RETURN_IF_ERROR(put(fmt.end_of_turn(), out, cap, &n));
  if (prefix.after_reply) TERN_RETURN_IF_ERROR(append(tok, "\n", 1, false, out, cap, &n));
  *user_at = n;
  Status s;
  if (fmt.kind == ChatKind::kGemma) {
    if (prefix.in_user_turn) {
      const TextTokenizer::Piece p[1] = {{text, len}};
      s = append_pieces(tok, p, 1, out, cap, &n);
    } else {
      const TextTokenizer::Piece p[2] = {{"user\n", 5}, {text, len}};
      s = put(fmt.turn_start, out, cap, &n);
      if (s.is_ok()) s = append_pieces(tok, p, 2, out, cap, &n);
    }
    if (s.is_ok()) s = put(fmt.turn_end, out, cap, &n);
    if (s.is_ok()) s = append(tok, "\n", 1, false, out, cap, &n);
    if (s.is_ok()) s = put(fmt.turn_start, out, cap, &n);
    if (s.is_ok()) s = append(tok, "model\n", 6, false, out, cap, &n);
    *n_out = n;
    return s;
  }
  TERN_RETURN_IF_ERROR(append(tok, "<|im_start|>user\n", 17, true, out, cap, &n));
  s = append(tok, text, len, false, out, cap, &n);
  if (!s.is_ok()) {
    *n_out = n;
    return s;
  }
  TERN_RETURN_IF_ERROR(append(tok, "<|im_end|>\n<|im_start|>assistant\n", 33, true, out, cap, &n));
  *n_out = n;
  return Status::ok();
}

Status chat_encode_user_turn(TextTokenizer* tok, const ChatFormat& fmt, bool first_turn, bool after_reply,
                             const char* text, size_t len, int32_t* out, size_t cap, size_t* n_out) {
  *n_out = 0;
  size_t n = 0;
  if (after_reply) TERN_RETURN_IF_ERROR(append(tok, "\n", 1, false, out, cap, &n));
  ChatTurnPrefix prefix;
  if (first_turn) {
    size_t sys = 0;
    Status s = chat_encode_system_turn(tok, fmt, fmt.system_prompt, fmt.system_len, out + n, cap - n, &sys);
    n += sys;
    if (!s.is_ok()) {
      *n_out = n;
      return s;
    }
    prefix.in_user_turn = !fmt.has_system_role() && fmt.system_len > 0;
  }
  size_t got = 0, user_at = 0;
  Status s = chat_encode_turn(tok, fmt, prefix, text, len, out + n, cap - n, &got, &user_at);
  n += got;
  *n_out = n;
  return s;
}

}  // namespace tern
