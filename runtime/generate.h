// The generation loop shared by tern-run, tern-chat and tern-bench:
// prefill what the KV cache lacks, then sample, stream and decode token by
// token until a stop token, the token budget, or the context runs out.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/engine.h"
#include "runtime/status.h"

namespace tern {

// A sequence's token history: ids[0, n) were fed or generated; the KV cache
// holds the first seq->n_past of them. Lives in the arena (Engine::history).
struct TokenHistory {
  int32_t* ids = nullptr;
  uint32_t n = 0;
  uint32_t cap = 0;  // = max context
};

struct GenerateStats {
  uint32_t prompt_tokens = 0;  // tokens prefilled by this call
  uint32_t generated = 0;      // tokens sampled (including a stop token)
  uint64_t prefill_ns = 0;     // prefill only
  uint64_t ttft_ns = 0;        // call start to first sampled token
  uint64_t decode_ns = 0;      // after the first token to the last
  bool stopped = false;        // ended on a stop token
  uint64_t token_ns_max = 0;
  double prefill_tok_s() const { return prefill_ns ? prompt_tokens * 1e9 / double(prefill_ns) : 0; }
  double decode_tok_s() const { return decode_ns && generated > 1 ? (generated - 1) * 1e9 / double(decode_ns) : 0; }
};

// Called for each sampled token (stop tokens included, with is_stop set).
// Return false to stop generating.
using TokenFn = bool (*)(void* ctx, int32_t token, bool is_stop);

struct GenerateRequest {
  uint32_t max_new_tokens = 128;
  const int32_t* stop_ids = nullptr;  // tokens that end generation
  uint32_t n_stop = 0;
  TokenFn on_token = nullptr;
  void* ctx = nullptr;
  // Per-token latencies, if the caller wants them: [max_new_tokens] ns.
  uint64_t* token_ns = nullptr;
};

// Prefill history ids [seq->n_past, h->n), then generate. Every sampled token
// is appended to the history; the last one is not yet in the KV cache (the
// next call prefills it). Errors: kPromptTooLong (before any work),
// kContextFull / kKvFull (generation stops, what was generated stays).
Status generate(Engine* engine, KvSequence* seq, TokenHistory* h, const GenerateRequest& req, GenerateStats* stats);

}  // namespace tern
