#include "runtime/chat_session.h"

#include "runtime/chat_format.h"
#include "runtime/utf8.h"

namespace tern {

Status ChatSession::init(Engine* engine, uint32_t index) {
  engine_ = engine;
  seq_ = engine->sequence(index);
  if (seq_ == nullptr) return Status::error(StatusCode::kInvalidArgument, "no sequence %u", index);
  if (!engine->has_chat()) {
    return Status::error(StatusCode::kUnsupported, "this model has no ChatML chat template; use tern-run");
  }
  history_.ids = engine->history(index);
  history_.cap = engine->limits().max_context;
  reset();
  return Status::ok();
}

void ChatSession::reset() {
  engine_->reset(seq_);
  history_.n = 0;
  turns_ = 0;
  utf8_ = Utf8Stream{};
}

bool ChatSession::on_token(void* p, int32_t token, bool is_stop) {
  ChatSession* self = static_cast<ChatSession*>(p);
  if (is_stop) return false;
  const char* bytes = nullptr;
  size_t len = 0;
  if (!self->engine_->tokenizer().token_bytes(token, &bytes, &len)) return true;
  // Tokens are short; feed long ones in pieces the stack buffer can take.
  constexpr size_t kPiece = 128;
  char out[Utf8Stream::max_output(kPiece)];
  for (size_t off = 0; off < len; off += kPiece) {
    const size_t piece = len - off < kPiece ? len - off : kPiece;
    size_t n = 0;
    if (self->utf8_.feed(bytes + off, piece, out, sizeof(out), &n) && n && self->on_text_) {
      self->on_text_(self->text_ctx_, out, n);
    }
  }
  return true;
}

Status ChatSession::turn(const char* message, size_t len, uint32_t max_new_tokens, TextFn on_text, void* ctx,
                         GenerateStats* stats) {
  *stats = GenerateStats{};
  const ChatFormat& fmt = engine_->chat();
  // The previous reply ended with <|im_end|> (sampled, not yet in the KV
  // cache); the template puts "\n" after it.
  const bool after_reply = history_.n > 0;
  size_t n_new = 0;
  Status s = chat_encode_user_turn(&engine_->tokenizer(), fmt, turns_ == 0, after_reply, message, len,
                                   history_.ids + history_.n, history_.cap - history_.n, &n_new);
  if (!s.is_ok()) {
    if (s.code() == StatusCode::kPromptTooLong) {
      return Status::error(StatusCode::kPromptTooLong,
                           "message too long: it needs more than the %u tokens left of the %u-token context "
                           "(/reset to start over)",
                           history_.cap - history_.n, history_.cap);
    }
    return s;
  }
  // Leave room for at least one reply token.
  if (history_.n + n_new >= history_.cap) {
    return Status::error(StatusCode::kPromptTooLong,
                         "message too long: %zu tokens, %u left of the %u-token context (/reset to start over)", n_new,
                         history_.cap - history_.n, history_.cap);
  }
  const uint32_t before = history_.n;
  history_.n += uint32_t(n_new);
  on_text_ = on_text;
  text_ctx_ = ctx;
  utf8_ = Utf8Stream{};
  const int32_t stops[2] = {fmt.im_end, engine_->hparams().eos};
  GenerateRequest req;
  req.max_new_tokens = max_new_tokens;
  req.stop_ids = stops;
  req.n_stop = 2;
  req.on_token = &ChatSession::on_token;
  req.ctx = this;
  s = generate(engine_, seq_, &history_, req, stats);
  if (s.code() == StatusCode::kPromptTooLong || s.code() == StatusCode::kInvalidArgument) {
    history_.n = before;  // nothing ran: forget the turn
    return s;
  }
  // Flush a trailing incomplete UTF-8 sequence as U+FFFD.
  char out[8];
  const size_t n = utf8_.finish(out, sizeof(out));
  if (n && on_text) on_text(ctx, out, n);
  ++turns_;
  return s;
}

}  // namespace tern
