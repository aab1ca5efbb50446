#include "runtime/chat_session.h"

#include <cstring>

#include "runtime/chat_format.h"
#include "runtime/utf8.h"

namespace tern {

Status ChatSession::init(Engine* engine, uint32_t index) {
  engine_ = engine;
  seq_ = engine->sequence(index);
  if (seq_ == nullptr) return Status::error(StatusCode::kInvalidArgument, "no sequence %u", index);
  if (!engine->has_chat()) {
    return Status::error(StatusCode::kUnsupported,
                         "this model has no chat format tern knows (ChatML or Gemma); use tern-run");
  }
  history_.ids = engine->history(index);
  history_.cap = engine->limits().max_context;
  // A context too small for the default system prompt runs without one.
  (void)set_system(nullptr, 0);
  return Status::ok();
}

Status ChatSession::set_system(const char* text, size_t len) {
  const ChatFormat& fmt = engine_->chat();
  const char* t = text ? text : fmt.system_prompt;
  const size_t l = text ? len : fmt.system_len;
  system_tokens_ = 0;
  system_default_ = text == nullptr;
  // Gemma has no system role: the text opens the first user turn, which then
  // stays with it (a context shift keeps that turn).
  has_system_ = l > 0;
  open_user_turn_ = l > 0 && !fmt.has_system_role();
  history_.n = 0;
  reset();
  size_t n = 0;
  Status s = chat_encode_system_turn(&engine_->tokenizer(), fmt, t, l, history_.ids, history_.cap, &n);
  if (!s.is_ok() || n + kMinRoom > history_.cap) {
    system_default_ = false;
    has_system_ = false;
    open_user_turn_ = false;
    if (!s.is_ok() && s.code() != StatusCode::kPromptTooLong) return s;
    return Status::error(StatusCode::kPromptTooLong,
                         "system prompt too long: %s%zu tokens, and the %u-token context needs %u left for the "
                         "conversation",
                         s.is_ok() ? "" : "over ", n, history_.cap, kMinRoom);
  }
  system_tokens_ = uint32_t(n);
  history_.n = system_tokens_;
  return Status::ok();
}

void ChatSession::reset() {
  engine_->reset(seq_);
  history_.n = system_tokens_;  // the system turn's ids stay in place
  turns_ = 0;
  n_marks_ = 0;
  reply_cut_ = false;
  utf8_ = Utf8Stream{};
}

void ChatSession::add_mark(uint32_t at) {
  if (n_marks_ == kMaxMarks) {
    // Out of marks: the two oldest turns become one (still dropped whole).
    std::memmove(marks_ + 1, marks_ + 2, (kMaxMarks - 2) * sizeof(marks_[0]));
    --n_marks_;
  }
  marks_[n_marks_++] = at;
}

void ChatSession::drop_oldest_turn() {
  const uint32_t keep = kept_turns();
  if (n_marks_ <= keep) return;
  const uint32_t from = marks_[keep];
  const uint32_t to = n_marks_ > keep + 1 ? marks_[keep + 1] : history_.n;
  std::memmove(history_.ids + from, history_.ids + to, (history_.n - to) * sizeof(int32_t));
  const uint32_t d = to - from;
  history_.n -= d;
  for (uint32_t i = keep + 1; i < n_marks_; ++i) marks_[i - 1] = marks_[i] - d;
  --n_marks_;
  if (n_marks_ == keep) reply_cut_ = false;  // the cut reply went with its turn
  ++info_.dropped_turns;
  info_.dropped_tokens += d;
}

bool ChatSession::on_token(void* p, int32_t token, bool is_stop) {
  ChatSession* self = static_cast<ChatSession*>(p);
  if (is_stop) return false;
  const TextTokenizer& tok = self->engine_->tokenizer();
  const char* bytes = nullptr;
  size_t len = 0;
  // Special tokens (<|im_start|>, ...) are control, not text: shown only on request.
  if ((self->show_special_ || !tok.is_special(token)) && tok.token_bytes(token, &bytes, &len)) {
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
  }
  if (self->stop_fn_ && self->stop_fn_(self->stop_ctx_)) {
    self->stop_requested_ = true;
    return false;
  }
  return true;
}

Status ChatSession::turn(const char* message, size_t len, uint32_t max_new_tokens, TextFn on_text, void* ctx,
                         GenerateStats* stats) {
  *stats = GenerateStats{};
  info_ = ChatTurnInfo{};
  const ChatFormat& fmt = engine_->chat();
  TextTokenizer* tok = &engine_->tokenizer();
  const uint32_t cap = history_.cap;
  // Room for the reply: at least one token; with context shift, turns are
  // dropped until up to half the conversation's room is free for it.
  uint32_t reserve = 1;
  if (context_shift_) {
    const uint32_t half = (cap - system_tokens_) / 2;
    reserve = max_new_tokens < half ? max_new_tokens : half;
    if (reserve < 1) reserve = 1;
  }
  ChatTurnPrefix pre;
  pre.after_reply = n_marks_ > 0;
  pre.reply_cut = reply_cut_;
  pre.in_user_turn = open_user_turn_ && n_marks_ == 0;
  size_t n_new = 0, user_at = 0;
  Status s = chat_encode_turn(tok, fmt, pre, message, len, scratch_, kScratchTokens, &n_new, &user_at);
  if (s.is_ok()) {
    // Exact size known: decide, then copy into the history.
    const size_t alone = n_new - user_at;  // the turn without closing the previous reply
    if (system_tokens_ + alone + 1 > cap) {
      return Status::error(StatusCode::kPromptTooLong,
                           "message too long: %zu tokens, and the %u-token context has %u after the system prompt",
                           alone, cap, cap - system_tokens_);
    }
    if (history_.n + n_new + reserve > cap) {
      if (history_.n + n_new + 1 > cap && !context_shift_) {
        return Status::error(StatusCode::kContextFull,
                             "the context is full: %u of %u tokens used, this message needs %zu; /reset starts "
                             "over (or run with --context-shift)",
                             history_.n, cap, n_new);
      }
      if (context_shift_) {
        const uint32_t keep = kept_turns();
        // A kept first turn (Gemma's system text) may leave too little room
        // even with every later turn dropped: refuse before changing anything.
        const uint32_t floor = keep == 0 ? system_tokens_ : n_marks_ > keep ? marks_[keep] : history_.n;
        if (floor + n_new + 1 > cap) {
          return Status::error(StatusCode::kContextFull,
                               "the context is full: the first turn holds the system prompt (this format has no "
                               "system role) and leaves %u of %u tokens, this message needs %zu; /reset starts over",
                               cap - floor, cap, n_new);
        }
        while (n_marks_ > keep && history_.n + n_new + reserve > cap) {
          drop_oldest_turn();
          if (n_marks_ == keep) {
            // Nothing left before it: the closing prefix goes too.
            std::memmove(scratch_, scratch_ + user_at, alone * sizeof(int32_t));
            n_new = alone;
            user_at = 0;
          }
        }
        if (info_.dropped_turns > 0) {
          // Paged KV has no "drop the middle": start the sequence over and
          // prefill what is kept.
          engine_->reset(seq_);
          info_.refilled_tokens = history_.n;
        }
      }
    }
    std::memcpy(history_.ids + history_.n, scratch_, n_new * sizeof(int32_t));
  } else if (s.code() == StatusCode::kPromptTooLong) {
    // Over kScratchTokens: encode in place, leaving one token for the reply;
    // no context shift for it.
    const size_t room = cap > history_.n + 1 ? cap - history_.n - 1 : 0;
    s = chat_encode_turn(tok, fmt, pre, message, len, history_.ids + history_.n, room, &n_new, &user_at);
    if (s.code() == StatusCode::kPromptTooLong) {
      if (n_marks_ == 0) {
        return Status::error(StatusCode::kPromptTooLong,
                             "message too long: over %zu tokens, and the %u-token context has %u after the system "
                             "prompt",
                             room, cap, cap - system_tokens_);
      }
      return Status::error(StatusCode::kContextFull,
                           "the context is full: %u of %u tokens used, and this message needs more than the rest; "
                           "/reset starts over",
                           history_.n, cap);
    }
    if (!s.is_ok()) return s;
  } else {
    return s;
  }
  add_mark(history_.n + uint32_t(user_at));
  history_.n += uint32_t(n_new);
  const bool cut_at_encode = reply_cut_;  // closed by this turn's prefix
  reply_cut_ = false;

  on_text_ = on_text;
  text_ctx_ = ctx;
  utf8_ = Utf8Stream{};
  stop_requested_ = false;
  const int32_t stops[2] = {fmt.end_of_turn(), engine_->hparams().eos};
  GenerateRequest req;
  req.max_new_tokens = max_new_tokens;
  req.stop_ids = stops;
  req.n_stop = 2;
  req.on_token = &ChatSession::on_token;
  req.ctx = this;
  req.cancel = stop_fn_;  // Ctrl-C during the prefill of a long message
  req.cancel_ctx = stop_ctx_;
  s = generate(engine_, seq_, &history_, req, stats);
  if (stats->finish == FinishReason::kCaller) stop_requested_ = true;
  if (stats->generated == 0 && !s.is_ok() && s.code() != StatusCode::kContextFull &&
      s.code() != StatusCode::kKvFull) {
    // Nothing ran (a refused request): forget the turn. A context shift
    // already made stays; the KV sequence was reset with it.
    history_.n -= uint32_t(n_new);
    --n_marks_;
    reply_cut_ = cut_at_encode;
    return s;
  }
  // Flush a trailing incomplete UTF-8 sequence as U+FFFD.
  char out[8];
  const size_t n = utf8_.finish(out, sizeof(out));
  if (n && on_text) on_text(ctx, out, n);
  ++turns_;
  const bool ended = stats->stopped && history_.n > 0 && history_.ids[history_.n - 1] == fmt.end_of_turn();
  reply_cut_ = !ended;
  if (stats->stopped) {
    info_.end = ChatTurnInfo::End::kEndOfTurn;
  } else if (stop_requested_) {
    info_.end = ChatTurnInfo::End::kStopped;
  } else if (s.is_ok()) {
    info_.end = ChatTurnInfo::End::kLength;
  } else if (s.code() == StatusCode::kContextFull) {
    info_.end = ChatTurnInfo::End::kContextFull;
  } else {
    info_.end = ChatTurnInfo::End::kError;
  }
  return s;
}

}  // namespace tern
