#include "runtime/generate.h"

#include <cstring>

#include "port/clock.h"

namespace tern {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStopToken: return "stop";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kLength: return "length";
    case FinishReason::kContext: return "context";
    case FinishReason::kCaller: return "caller";
    case FinishReason::kError: return "error";
  }
  return "error";
}

Status StopStringFilter::init(const char* const* strings, const uint32_t* lens, uint32_t n) {
  s_ = strings;
  len_ = lens;
  n_ = 0;
  held_ = 0;
  matched_ = false;
  if (n > GenerateRequest::kMaxStopStrings) {
    return Status::error(StatusCode::kInvalidArgument, "%u stop strings; at most %u", n,
                         GenerateRequest::kMaxStopStrings);
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (strings == nullptr || lens == nullptr || strings[i] == nullptr || lens[i] == 0 || lens[i] > kMax) {
      return Status::error(StatusCode::kInvalidArgument, "stop string %u: %u bytes; 1..%u allowed", i,
                           lens && strings ? lens[i] : 0, kMax);
    }
  }
  n_ = n;
  return Status::ok();
}

int32_t StopStringFilter::feed(const char* text, size_t len, TextFn fn, void* ctx) {
  if (matched_) return -1;
  if (n_ == 0) {
    if (fn && len) fn(ctx, text, len);
    return -1;
  }
  // Invariant: buf_[0, held_) is the longest suffix of the text so far that
  // is a proper prefix of some stop string (< kMax bytes). A stop string that
  // ends in the next piece (<= kMax bytes) therefore starts inside buf_.
  while (len > 0) {
    const size_t piece = len < kMax ? len : kMax;
    std::memcpy(buf_ + held_, text, piece);
    text += piece;
    len -= piece;
    const uint32_t total = held_ + uint32_t(piece);
    // The match that completes first (the earliest end; on a tie the
    // earliest start): what a byte-by-byte stream would see first, so the
    // result does not depend on how the text was cut into tokens.
    uint32_t best_at = 0, best_end = total + 1;
    int32_t best = -1;
    for (uint32_t k = 0; k < n_; ++k) {
      const uint32_t L = len_[k];
      for (uint32_t at = 0; at + L <= total && at + L <= best_end; ++at) {
        if (std::memcmp(buf_ + at, s_[k], L) == 0) {
          if (at + L < best_end || at < best_at) {
            best_at = at;
            best_end = at + L;
            best = int32_t(k);
          }
          break;
        }
      }
    }
    if (best >= 0) {
      if (fn && best_at) fn(ctx, buf_, best_at);
      held_ = 0;
      matched_ = true;
      return best;
    }
    // Hold back the longest suffix that some stop string begins with.
    uint32_t keep = 0;
    for (uint32_t k = 0; k < n_; ++k) {
      const uint32_t L = len_[k];
      for (uint32_t m = (L - 1 < total ? L - 1 : total); m > keep; --m) {
        if (std::memcmp(buf_ + total - m, s_[k], m) == 0) {
          keep = m;
          break;
        }
      }
    }
    if (fn && total - keep) fn(ctx, buf_, total - keep);
    std::memmove(buf_, buf_ + total - keep, keep);
    held_ = keep;
  }
  return -1;
}

void StopStringFilter::flush(TextFn fn, void* ctx) {
  if (fn && held_ && !matched_) fn(ctx, buf_, held_);
  held_ = 0;
}

Status generate(Engine* engine, KvSequence* seq, TokenHistory* h, const GenerateRequest& req, GenerateStats* stats) {
  *stats = GenerateStats{};
  const uint64_t t0 = now_ns();
  if (h->n < seq->n_past) return Status::error(StatusCode::kInternal, "history shorter than the KV cache");
  const uint32_t pending = h->n - seq->n_past;
  if (pending == 0) return Status::error(StatusCode::kInvalidArgument, "empty prompt: nothing to generate from");
  StopStringFilter filter;
  TERN_RETURN_IF_ERROR(filter.init(req.stop_strings, req.stop_string_lens, req.n_stop_strings));
  // Prefill chunk by chunk, so a cancel request is seen within one chunk's
  // time. Ids and length are checked for the whole prompt first, and an error
  // rolls the whole prefill back: kPromptTooLong and kInvalidToken cost no work.
  TERN_RETURN_IF_ERROR(engine->check_tokens(h->ids + seq->n_past, pending));
  if (uint64_t(seq->n_past) + pending > engine->limits().max_context) {
    return Status::error(StatusCode::kPromptTooLong, "prompt of %u tokens does not fit: %u already in context, max context %u",
                         pending, seq->n_past, engine->limits().max_context);
  }
  const uint32_t start = seq->n_past, chunk = engine->limits().prefill_chunk;
  for (uint32_t done = 0; done < pending;) {
    if (req.cancel && req.cancel(req.cancel_ctx)) {
      stats->prompt_tokens = done;
      stats->prefill_ns = now_ns() - t0;
      stats->finish = FinishReason::kCaller;
      return Status::ok();
    }
    const uint32_t n = pending - done < chunk ? pending - done : chunk;
    Status s = engine->prefill(seq, h->ids + seq->n_past, n);
    if (!s.is_ok()) {
      engine->model().kv().truncate(seq, start);
      return s;
    }
    done += n;
  }
  stats->prompt_tokens = pending;
  stats->prefill_ns = now_ns() - t0;
  const uint32_t window = engine->sampler().params().repeat_last_n;

  uint64_t first_token_at = 0;
  Status status = Status::ok();
  stats->finish = FinishReason::kLength;
  for (uint32_t i = 0; i < req.max_new_tokens; ++i) {
    const uint64_t ts = now_ns();
    if (i > 0 && req.cancel && req.cancel(req.cancel_ctx)) {
      stats->finish = FinishReason::kCaller;
      break;
    }
    if (i > 0) {
      // Feed the previous token, then sample the next.
      Status s = engine->decode(seq, h->ids[h->n - 1]);
      if (!s.is_ok()) {
        stats->decode_ns = now_ns() - first_token_at;
        stats->finish = s.code() == StatusCode::kContextFull ? FinishReason::kContext : FinishReason::kError;
        status = s;
        break;
      }
    }
    if (h->n >= h->cap) {
      stats->finish = FinishReason::kContext;
      status = Status::error(StatusCode::kContextFull, "context full after %u generated tokens", stats->generated);
      break;
    }
    const uint32_t recent = h->n < window ? h->n : window;
    const int32_t token = engine->sample(h->ids + h->n - recent, recent);
    h->ids[h->n++] = token;
    ++stats->generated;
    const uint64_t te = now_ns();
    if (i == 0) {
      first_token_at = te;
      stats->ttft_ns = te - t0;
    } else {
      stats->decode_ns = te - first_token_at;
    }
    if (req.token_ns) req.token_ns[i] = te - ts;
    if (te - ts > stats->token_ns_max) stats->token_ns_max = te - ts;
    bool is_stop = false;
    for (uint32_t k = 0; k < req.n_stop; ++k) is_stop |= token == req.stop_ids[k];
    int32_t matched = -1;
    if (!is_stop && (req.on_text || req.n_stop_strings)) {
      const char* bytes = nullptr;
      size_t len = 0;
      if (engine->tokenizer().token_bytes(token, &bytes, &len)) matched = filter.feed(bytes, len, req.on_text, req.text_ctx);
    }
    const bool go_on = req.on_token ? req.on_token(req.ctx, token, is_stop) : true;
    if (is_stop) {
      stats->stopped = true;
      stats->finish = FinishReason::kStopToken;
      break;
    }
    if (matched >= 0) {
      stats->stopped = true;
      stats->finish = FinishReason::kStopString;
      stats->stop_string = matched;
      break;
    }
    if (!go_on) {
      stats->finish = FinishReason::kCaller;
      break;
    }
  }
  filter.flush(req.on_text, req.text_ctx);
  return status;
}

}  // namespace tern
