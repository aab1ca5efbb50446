// Continuous batching: many requests, one model, one forward step at a time.
//
// A request waits until a sequence slot is free and the KV pool has blocks
// for its prompt (admission), then runs through prefill and decode. Every
// step() builds one batch (runtime/batch.h) of at most token_budget rows:
//   1. one decode row for every decoding request (oldest admitted first), so
//      no running request waits more than one step for its next token;
//   2. what is left of the budget goes to prompts, oldest admitted first, in
//      chunks: a long prompt is prefilled over several steps, interleaved
//      with the running decodes.
// Then each row that ends a prompt or decodes is sampled with its request's
// own parameters and random stream (SamplingState), checked against its stop
// conditions (stop tokens, stop strings, max tokens, the context) and
// reported through the caller's event function.
//
// When the pool runs out in a step: prompt chunks are dropped from it first;
// if the decode rows alone still do not fit, the most recently admitted
// request that holds blocks is preempted (its blocks freed, its history
// kept) and later resumed by prefilling its history again (recomputation).
// A request that cannot fit even alone finishes with kKvFull. Never a
// corrupted neighbour: Model::forward_batch changes nothing when it fails.
//
// Prefix cache (runtime/kv_pages.h; with sliding-window layers in both KV
// pools, the window pool's share being the blocks the next query sees):
// a request's prompt (or a preempted request's history) first takes the
// cached blocks it starts with and prefills only the rest; after every step
// the full blocks of the sequences that ran are registered. A request whose
// prompt starts with blocks another request is prefilling waits for them to
// be registered. A system prompt shared by many requests, arriving together
// or not, is prefilled once; hits are reported in tokens.
//
// Memory: the requests live in this object (fixed arrays), the batch in the
// model's arena arrays (Model::batch_arrays), histories in the engine's
// (Engine::history): step() never allocates.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/sampler.h"
#include "runtime/status.h"

namespace tern {

struct SequenceRequest {
  const int32_t* prompt = nullptr;  // read until the request is admitted (copied into its history)
  uint32_t n_prompt = 0;
  uint32_t max_new_tokens = 128;
  SamplerParams sampling;            // temperature 0: greedy; seed: this request's stream
  // Read while the request runs; the caller keeps them alive.
  const int32_t* stop_ids = nullptr;
  uint32_t n_stop = 0;
  const char* const* stop_strings = nullptr;  // at most GenerateRequest::kMaxStopStrings
  const uint32_t* stop_string_lens = nullptr;
  uint32_t n_stop_strings = 0;
  void* user = nullptr;  // handed back in every event
};

// One sampled token of a request (token >= 0), or its end (finished), or
// both: the last token's event carries finished = true.
struct SchedulerEvent {
  uint32_t request = 0;  // the id submit() gave
  void* user = nullptr;
  int32_t token = -1;    // -1: an end without a token (cancelled, refused, context full)
  bool is_stop = false;  // token is one of the request's stop ids
  const char* text = nullptr;  // visible text this token released (stop strings held back and cut)
  size_t text_len = 0;
  bool finished = false;
  FinishReason finish = FinishReason::kNone;
  StatusCode error = StatusCode::kOk;  // kKvFull, kContextFull, .. when finish is kError / kContext
  const char* message = nullptr;       // the error's text (valid during the call)
  uint32_t prompt_tokens = 0;
  uint32_t generated = 0;
  uint32_t preemptions = 0;
  uint32_t prefix_hit_tokens = 0;  // prompt positions taken from the prefix cache, not prefilled
};
using SchedulerEventFn = void (*)(void* ctx, const SchedulerEvent& e);

struct SchedulerOptions {
  // Rows per step, decode rows and prompt chunks together; 0: the engine's
  // prefill_chunk (the most a step can hold). Smaller budgets bound a step's
  // time (inter-token latency of running requests) at some prefill speed.
  uint32_t token_budget = 0;
};

struct StepStats {
  uint32_t decode_rows = 0;
  uint32_t prefill_rows = 0;
  uint32_t admitted = 0;
  uint32_t preempted = 0;
  uint32_t finished = 0;
  uint32_t prefix_hit_tokens = 0;  // positions this step's admissions found in the prefix cache
};

class Scheduler {
 public:
  // Requests in the system at once, waiting and running.
  static constexpr uint32_t kMaxRequests = 256;

  // The engine must have been opened with logit_rows >= 1; up to
  // min(max_sequences, logit_rows, token_budget) requests decode at once.
  Status init(Engine* engine, const SchedulerOptions& options);

  // Queue a request. Errors, nothing queued: kInvalidArgument (an empty
  // prompt, bad sampling parameters or stop strings), kInvalidToken,
  // kPromptTooLong (longer than the context), kKvFull (more blocks than the
  // whole pool), kBusy (kMaxRequests in the system).
  Status submit(const SequenceRequest& request, uint32_t* id);
  // End a request at the next step (finish kCaller); its blocks go back.
  // kInvalidArgument when no live request has this id.
  Status cancel(uint32_t id);
  // One step: cancellations, admissions, one forward pass, sampling, events
  // (through fn, in row order). Ok with no rows when there is nothing to do.
  Status step(SchedulerEventFn fn, void* ctx, StepStats* stats);

  bool idle() const { return live_ == 0; }
  uint32_t live() const { return live_; }
  uint32_t decoding() const;
  uint32_t waiting() const;
  uint32_t max_running() const { return max_running_; }

 private:
  enum class Phase : uint8_t { kFree, kWaiting, kPrefill, kDecode };
  struct Request {
    SequenceRequest req;
    Phase phase = Phase::kFree;
    bool cancelled = false;
    uint32_t id = 0;
    uint32_t slot = 0;          // engine sequence while admitted
    uint64_t admitted_at = 0;   // admission order: preemption takes the latest
    TokenHistory h;             // prompt + generated; the KV cache holds seq->n_past of it
    uint32_t generated = 0;
    uint32_t preemptions = 0;
    uint32_t prefix_hits = 0;   // positions matched in the prefix cache (all admissions)
    SamplingState sampling;
    StopStringFilter filter;
  };

  KvSequence* seq(const Request& r) const { return engine_->sequence(r.slot); }
  bool shares_prefix_in_progress(const Request& waiting) const;
  uint32_t blocks_for(uint32_t tokens) const;
  void admit(StepStats* stats);
  // Rows of this step into the model's batch arrays; row_req_[i] is row i's
  // request. Decode rows first, then prompt chunks, oldest admission first.
  enum class Rows : uint8_t { kAll, kDecodeOnly, kOldestOnly };
  uint32_t compose(Rows which, uint32_t* decode_rows);
  // The latest-admitted request holding KV blocks, or null.
  Request* preemption_victim();
  void preempt(Request* r);
  void finish(Request* r, FinishReason why, StatusCode code, const char* message, SchedulerEventFn fn, void* ctx,
              StepStats* stats);
  // Give back a request's sequence slot and blocks; the record becomes free.
  void release(Request* r, StepStats* stats);
  void sample_rows(uint32_t rows, SchedulerEventFn fn, void* ctx, StepStats* stats);

  Engine* engine_ = nullptr;
  uint32_t budget_ = 0;
  uint32_t max_running_ = 0;
  uint32_t next_id_ = 1;
  uint64_t next_admission_ = 0;
  uint32_t live_ = 0;
  Request reqs_[kMaxRequests];
  bool slot_busy_[Engine::kMaxSequences] = {};
  uint16_t row_req_[4096] = {};  // request index of each batch row (prefill_chunk <= 4096)
  char text_[1024] = {};         // one event's released text
  size_t text_len_ = 0;
};

}  // namespace tern
