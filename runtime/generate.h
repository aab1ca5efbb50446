// The generation loop shared by tern-run, tern-chat and tern-bench:
// prefill what the KV cache lacks, then sample, stream and decode token by
// token until a stop token, a stop string, the token budget, or the context
// runs out.
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

// Why generation ended.
enum class FinishReason : uint8_t {
  kNone = 0,     // nothing generated (an error before the first token)
  kStopToken,    // sampled one of GenerateRequest::stop_ids
  kStopString,   // the visible text reached one of GenerateRequest::stop_strings
  kLength,       // max_new_tokens reached
  kContext,      // the context is full (generate returns kContextFull)
  kCaller,       // on_token returned false
  kError,        // any other error (KV pool exhausted, ...)
};
// "none", "stop", "stop_string", "length", "context", "caller", "error".
const char* finish_reason_name(FinishReason r);

struct GenerateStats {
  uint32_t prompt_tokens = 0;  // tokens prefilled by this call
  uint32_t generated = 0;      // tokens sampled (including a stop token)
  uint64_t prefill_ns = 0;     // prefill only
  uint64_t ttft_ns = 0;        // call start to first sampled token
  uint64_t decode_ns = 0;      // after the first token to the last
  bool stopped = false;        // ended on a stop token or stop string
  FinishReason finish = FinishReason::kNone;
  int32_t stop_string = -1;    // index of the stop string that matched (kStopString)
  uint64_t token_ns_max = 0;
  double prefill_tok_s() const { return prefill_ns ? prompt_tokens * 1e9 / double(prefill_ns) : 0; }
  double decode_tok_s() const { return decode_ns && generated > 1 ? (generated - 1) * 1e9 / double(decode_ns) : 0; }
};

// Called for each sampled token (stop tokens included, with is_stop set),
// after on_text got the text that token released. Return false to stop.
using TokenFn = bool (*)(void* ctx, int32_t token, bool is_stop);
// Visible text, in order: the bytes of every sampled token except stop
// tokens, with text held back while it could be the start of a stop string
// and cut before a stop string that matched. May split a UTF-8 sequence.
using TextFn = void (*)(void* ctx, const char* text, size_t len);

struct GenerateRequest {
  // Stop strings: at most kMaxStopStrings, each 1..kMaxStopStringBytes bytes.
  static constexpr uint32_t kMaxStopStrings = 8;
  static constexpr uint32_t kMaxStopStringBytes = 64;

  uint32_t max_new_tokens = 128;
  const int32_t* stop_ids = nullptr;  // tokens that end generation
  uint32_t n_stop = 0;
  TokenFn on_token = nullptr;
  void* ctx = nullptr;
  // Per-token latencies, if the caller wants them: [max_new_tokens] ns.
  uint64_t* token_ns = nullptr;
  // Text that ends generation when it appears in the visible output (it is
  // not passed to on_text). The strings are the caller's, read during the call.
  const char* const* stop_strings = nullptr;
  const uint32_t* stop_string_lens = nullptr;  // byte lengths, [n_stop_strings]
  uint32_t n_stop_strings = 0;
  TextFn on_text = nullptr;
  void* text_ctx = nullptr;
  // Polled before each prefill chunk and each decode step (a Ctrl-C flag, a
  // client that went away): true ends the call with FinishReason::kCaller and
  // Status ok. What was prefilled stays in the KV cache; the rest of the
  // history is prefilled by the next call. nullptr: never.
  bool (*cancel)(void* ctx) = nullptr;
  void* cancel_ctx = nullptr;
};

// The stop-string matcher generate() runs over the visible text: feed()
// passes on the text that cannot be the start of a stop string and holds
// back the rest (at most kMaxStopStringBytes - 1 bytes, in a fixed array).
class StopStringFilter {
 public:
  // kInvalidArgument for more than kMaxStopStrings strings, or one empty or
  // longer than kMaxStopStringBytes. The strings must outlive the filter.
  Status init(const char* const* strings, const uint32_t* lens, uint32_t n);
  // Feed text; the releasable part goes to fn. Returns the index of the stop
  // string that matched (the text from its start on is dropped, and so is
  // everything fed afterwards), else -1. The first stop string to complete
  // wins (earliest end, then earliest start), however the text is cut.
  int32_t feed(const char* text, size_t len, TextFn fn, void* ctx);
  // End of generation without a match: release the held-back text.
  void flush(TextFn fn, void* ctx);
  uint32_t held() const { return held_; }

 private:
  static constexpr uint32_t kMax = GenerateRequest::kMaxStopStringBytes;
  const char* const* s_ = nullptr;
  const uint32_t* len_ = nullptr;
  uint32_t n_ = 0;
  uint32_t held_ = 0;
  bool matched_ = false;
  char buf_[2 * kMax];  // held-back text + up to kMax new bytes
};

// Prefill history ids [seq->n_past, h->n), then generate. Every sampled token
// is appended to the history; the last one is not yet in the KV cache (the
// next call prefills it). stats->finish says why it ended. Errors:
// kInvalidArgument (bad request), kInvalidToken (a history id outside the
// vocabulary) and kPromptTooLong, before any work, the sequence unchanged;
// kContextFull (finish = kContext) / kKvFull (kError): generation stops, what
// was generated stays, and held-back text is flushed to on_text.
Status generate(Engine* engine, KvSequence* seq, TokenHistory* h, const GenerateRequest& req, GenerateStats* stats);

}  // namespace tern
