#include "runtime/generate.h"

#include "port/clock.h"

namespace tern {

Status generate(Engine* engine, KvSequence* seq, TokenHistory* h, const GenerateRequest& req, GenerateStats* stats) {
  *stats = GenerateStats{};
  const uint64_t t0 = now_ns();
  if (h->n < seq->n_past) return Status::error(StatusCode::kInternal, "history shorter than the KV cache");
  const uint32_t pending = h->n - seq->n_past;
  if (pending == 0) return Status::error(StatusCode::kInvalidArgument, "empty prompt: nothing to generate from");
  TERN_RETURN_IF_ERROR(engine->prefill(seq, h->ids + seq->n_past, pending));
  stats->prompt_tokens = pending;
  stats->prefill_ns = now_ns() - t0;
  const uint32_t window = engine->sampler().params().repeat_last_n;

  uint64_t first_token_at = 0;
  for (uint32_t i = 0; i < req.max_new_tokens; ++i) {
    const uint64_t ts = now_ns();
    if (i > 0) {
      // Feed the previous token, then sample the next.
      Status s = engine->decode(seq, h->ids[h->n - 1]);
      if (!s.is_ok()) {
        stats->decode_ns = now_ns() - first_token_at;
        return s;
      }
    }
    const uint32_t recent = h->n < window ? h->n : window;
    const int32_t token = engine->sample(h->ids + h->n - recent, recent);
    if (h->n >= h->cap) {
      return Status::error(StatusCode::kContextFull, "context full after %u generated tokens", stats->generated);
    }
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
    const bool go_on = req.on_token ? req.on_token(req.ctx, token, is_stop) : true;
    if (is_stop) {
      stats->stopped = true;
      break;
    }
    if (!go_on) break;
  }
  return Status::ok();
}

}  // namespace tern
