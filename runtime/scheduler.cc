#include "runtime/scheduler.h"

#include <cstdio>
#include <cstring>

namespace tern {

namespace {

// The released text of one token, gathered from the stop-string filter.
struct TextSink {
  char* buf;
  size_t cap;
  size_t* len;
};
void gather_text(void* ctx, const char* text, size_t len) {
  TextSink& s = *static_cast<TextSink*>(ctx);
  const size_t room = s.cap - *s.len;
  const size_t n = len < room ? len : room;  // the filter releases at most 2 x 64 bytes + one token's
  std::memcpy(s.buf + *s.len, text, n);
  *s.len += n;
}

}  // namespace

Status Scheduler::init(Engine* engine, const SchedulerOptions& o) {
  if (engine == nullptr || engine->sequence(0) == nullptr) {
    return Status::error(StatusCode::kInvalidArgument, "scheduler needs an open engine");
  }
  const RunLimits& l = engine->limits();
  if (l.prefill_chunk > sizeof(row_req_) / sizeof(row_req_[0])) {
    return Status::error(StatusCode::kInvalidArgument, "prefill_chunk %u exceeds the scheduler's %zu rows",
                         l.prefill_chunk, sizeof(row_req_) / sizeof(row_req_[0]));
  }
  engine_ = engine;
  budget_ = o.token_budget == 0 || o.token_budget > l.prefill_chunk ? l.prefill_chunk : o.token_budget;
  uint32_t m = l.max_sequences < l.logit_rows ? l.max_sequences : l.logit_rows;
  max_running_ = m < budget_ ? m : budget_;
  for (Request& r : reqs_) r.phase = Phase::kFree;
  for (bool& b : slot_busy_) b = false;
  live_ = 0;
  return Status::ok();
}

uint32_t Scheduler::blocks_for(uint32_t tokens) const {
  const uint32_t b = engine_->limits().kv_block_tokens;
  return (tokens + b - 1) / b;
}

uint32_t Scheduler::decoding() const {
  uint32_t n = 0;
  for (const Request& r : reqs_) n += r.phase == Phase::kDecode;
  return n;
}

uint32_t Scheduler::waiting() const {
  uint32_t n = 0;
  for (const Request& r : reqs_) n += r.phase == Phase::kWaiting;
  return n;
}

Status Scheduler::submit(const SequenceRequest& q, uint32_t* id) {
  if (engine_ == nullptr) return Status::error(StatusCode::kInternal, "scheduler not initialized");
  if (q.prompt == nullptr || q.n_prompt == 0) {
    return Status::error(StatusCode::kInvalidArgument, "empty prompt: a request needs at least one token (BOS)");
  }
  TERN_RETURN_IF_ERROR(validate(q.sampling));
  const uint32_t ctx = engine_->limits().max_context;
  if (q.n_prompt > ctx) {
    return Status::error(StatusCode::kPromptTooLong, "prompt of %u tokens does not fit the context of %u", q.n_prompt,
                         ctx);
  }
  TERN_RETURN_IF_ERROR(engine_->check_tokens(q.prompt, q.n_prompt));
  const uint32_t pool = engine_->model().kv().shape().n_blocks;
  if (blocks_for(q.n_prompt) > pool) {
    return Status::error(StatusCode::kKvFull, "prompt of %u tokens needs %u KV blocks, the whole pool has %u",
                         q.n_prompt, blocks_for(q.n_prompt), pool);
  }
  if (q.n_stop > 0 && q.stop_ids == nullptr) {
    return Status::error(StatusCode::kInvalidArgument, "stop ids count without stop ids");
  }
  for (Request& r : reqs_) {
    if (r.phase != Phase::kFree) continue;
    TERN_RETURN_IF_ERROR(r.filter.init(q.stop_strings, q.stop_string_lens, q.n_stop_strings));
    r.req = q;
    r.phase = Phase::kWaiting;
    r.cancelled = false;
    r.id = next_id_++;
    if (next_id_ == 0) next_id_ = 1;  // 0 is never an id
    r.generated = 0;
    r.preemptions = 0;
    r.h = TokenHistory{};
    ++live_;
    if (id) *id = r.id;
    return Status::ok();
  }
  return Status::error(StatusCode::kBusy, "%u requests in the scheduler already: retry when one finishes",
                       kMaxRequests);
}

Status Scheduler::cancel(uint32_t id) {
  for (Request& r : reqs_) {
    if (r.phase != Phase::kFree && r.id == id) {
      r.cancelled = true;
      return Status::ok();
    }
  }
  return Status::error(StatusCode::kInvalidArgument, "no live request %u", id);
}

// A prompt that starts with whole blocks a request in prefill is computing
// right now (tokens equal, not yet registered) waits until they are: then it
// takes them from the prefix cache instead of computing them again, so a
// system prompt shared by requests that arrive together is prefilled once.
// (match_prefix never takes the block of a prompt's last token.) The wait
// ends: the other request's prefill moves on every step, and a preempted or
// finished one is no longer "in prefill" with those blocks ahead.
bool Scheduler::shares_prefix_in_progress(const Request& w) const {
  const uint32_t bt = engine_->model().kv().shape().block_tokens;
  for (const Request& r : reqs_) {
    if (r.phase != Phase::kPrefill) continue;
    const uint32_t n = w.req.n_prompt - 1 < r.h.n ? w.req.n_prompt - 1 : r.h.n;
    uint32_t common = 0;
    while (common < n && r.h.ids[common] == w.req.prompt[common]) ++common;
    if (common / bt > seq(r)->n_past / bt) return true;
  }
  return false;
}

void Scheduler::admit(StepStats* stats) {
  KvPool& kv = engine_->model().kv();
  for (;;) {
    uint32_t running = 0;
    uint64_t promised = 0;  // blocks the admitted prompts will still take
    Request* oldest = nullptr;
    for (Request& r : reqs_) {
      if (r.phase == Phase::kPrefill || r.phase == Phase::kDecode) ++running;
      if (r.phase == Phase::kPrefill) {
        const uint32_t need = blocks_for(r.h.n + 1), held = seq(r)->n_blocks;
        promised += need > held ? need - held : 0;
      }
      if (r.phase == Phase::kWaiting && (oldest == nullptr || r.id < oldest->id)) oldest = &r;
    }
    if (oldest == nullptr || running >= max_running_) return;
    // First come, first served: the oldest waits for blocks rather than
    // being overtaken by shorter prompts (no starvation).
    // Its prompt and its first generated token (or the prompt alone when
    // that is all the pool holds: submit() refused anything larger).
    uint32_t need = blocks_for(oldest->req.n_prompt + 1);
    if (need > kv.shape().n_blocks) need = blocks_for(oldest->req.n_prompt);
    if (uint64_t(kv.free_blocks()) < promised + need) return;
    if (shares_prefix_in_progress(*oldest)) return;
    uint32_t slot = 0;
    while (slot < engine_->limits().max_sequences && slot_busy_[slot]) ++slot;
    if (slot == engine_->limits().max_sequences) return;
    Request& r = *oldest;
    slot_busy_[slot] = true;
    r.slot = slot;
    r.h = TokenHistory{engine_->history(slot), r.req.n_prompt, engine_->limits().max_context};
    std::memcpy(r.h.ids, r.req.prompt, size_t(r.req.n_prompt) * sizeof(int32_t));
    engine_->reset(seq(r));
    r.sampling.reset(r.req.sampling);
    r.phase = Phase::kPrefill;
    r.admitted_at = next_admission_++;
    r.prefix_hits = 0;
    const uint32_t hit = kv.match_prefix(seq(r), r.h.ids, r.h.n);
    r.prefix_hits += hit;
    stats->prefix_hit_tokens += hit;
    ++stats->admitted;
  }
}

uint32_t Scheduler::compose(Rows which, uint32_t* decode_rows) {
  // Admitted requests, oldest admission first (insertion sort of <= 256).
  uint16_t order[kMaxRequests];
  uint32_t n_order = 0;
  for (uint32_t i = 0; i < kMaxRequests; ++i) {
    if (reqs_[i].phase != Phase::kPrefill && reqs_[i].phase != Phase::kDecode) continue;
    uint32_t j = n_order++;
    while (j > 0 && reqs_[order[j - 1]].admitted_at > reqs_[i].admitted_at) {
      order[j] = order[j - 1];
      --j;
    }
    order[j] = uint16_t(i);
  }
  if (which == Rows::kOldestOnly && n_order > 1) n_order = 1;
  Model::BatchArrays b = engine_->model().batch_arrays();
  const uint32_t logit_cap = engine_->limits().logit_rows;
  uint32_t n = 0, logits = 0;
  for (uint32_t k = 0; k < n_order && n < budget_ && logits < logit_cap; ++k) {
    Request& r = reqs_[order[k]];
    if (r.phase != Phase::kDecode) continue;
    KvSequence* s = seq(r);
    b.token[n] = r.h.ids[s->n_past];  // the last sampled token, not yet in the cache
    b.pos[n] = s->n_past;
    b.seq[n] = s;
    b.want_logits[n] = 1;
    row_req_[n++] = order[k];
    ++logits;
  }
  *decode_rows = n;
  if (which == Rows::kDecodeOnly) return n;
  for (uint32_t k = 0; k < n_order && n < budget_; ++k) {
    Request& r = reqs_[order[k]];
    if (r.phase != Phase::kPrefill) continue;
    KvSequence* s = seq(r);
    const uint32_t remaining = r.h.n - s->n_past;
    uint32_t take = remaining < budget_ - n ? remaining : budget_ - n;
    bool last = take == remaining;
    if (last && logits == logit_cap) {  // its logits need a row: stop one token short
      take = remaining - 1;
      last = false;
    }
    for (uint32_t i = 0; i < take; ++i) {
      b.token[n] = r.h.ids[s->n_past + i];
      b.pos[n] = s->n_past + i;
      b.seq[n] = s;
      b.want_logits[n] = last && i + 1 == take;
      row_req_[n++] = order[k];
    }
    logits += last;
  }
  return n;
}

Scheduler::Request* Scheduler::preemption_victim() {
  Request* v = nullptr;
  for (Request& r : reqs_) {
    if ((r.phase == Phase::kPrefill || r.phase == Phase::kDecode) && seq(r)->n_blocks > 0 &&
        (v == nullptr || r.admitted_at > v->admitted_at)) {
      v = &r;
    }
  }
  return v;
}

void Scheduler::preempt(Request* r) {
  // Its blocks go back; its history stays, to be prefilled again when there
  // is room. The random stream continues where it was, so a resumed request
  // samples what it would have sampled.
  engine_->reset(seq(*r));
  r->phase = Phase::kPrefill;
  ++r->preemptions;
}

void Scheduler::finish(Request* r, FinishReason why, StatusCode code, const char* message, SchedulerEventFn fn,
                       void* ctx, StepStats* stats) {
  text_len_ = 0;
  TextSink sink{text_, sizeof(text_), &text_len_};
  r->filter.flush(gather_text, &sink);
  SchedulerEvent e;
  e.request = r->id;
  e.user = r->req.user;
  e.text = text_;
  e.text_len = text_len_;
  e.finished = true;
  e.finish = why;
  e.error = code;
  e.message = message;
  e.prompt_tokens = r->req.n_prompt;
  e.generated = r->generated;
  e.preemptions = r->preemptions;
  e.prefix_hit_tokens = r->prefix_hits;
  release(r, stats);
  if (fn) fn(ctx, e);
}

void Scheduler::release(Request* r, StepStats* stats) {
  if (r->phase == Phase::kPrefill || r->phase == Phase::kDecode) {
    engine_->reset(seq(*r));  // its blocks go back (registered ones stay cached)
    slot_busy_[r->slot] = false;
  }
  r->phase = Phase::kFree;
  --live_;
  ++stats->finished;
}

void Scheduler::sample_rows(uint32_t rows, SchedulerEventFn fn, void* ctx, StepStats* stats) {
  const Model::BatchArrays b = engine_->model().batch_arrays();
  const uint32_t vocab = engine_->hparams().vocab;
  uint32_t k = 0;  // logits row
  for (uint32_t i = 0; i < rows; ++i) {
    if (!b.want_logits[i]) continue;
    float* logits = engine_->logits() + size_t(k++) * vocab;
    Request& r = reqs_[row_req_[i]];
    if (r.h.n >= r.h.cap) {  // the context is full: no room for another token
      finish(&r, FinishReason::kContext, StatusCode::kContextFull, "context full", fn, ctx, stats);
      continue;
    }
    const uint32_t window = r.sampling.params.repeat_last_n;
    const uint32_t recent = r.h.n < window ? r.h.n : window;
    const int32_t token = engine_->sampler().sample(logits, r.h.ids + r.h.n - recent, recent, &r.sampling);
    r.h.ids[r.h.n++] = token;
    ++r.generated;
    r.phase = Phase::kDecode;
    bool is_stop = false;
    for (uint32_t s = 0; s < r.req.n_stop; ++s) is_stop |= token == r.req.stop_ids[s];
    text_len_ = 0;
    TextSink sink{text_, sizeof(text_), &text_len_};
    int32_t matched = -1;
    const char* bytes = nullptr;
    size_t len = 0;
    if (!is_stop && engine_->tokenizer().token_bytes(token, &bytes, &len)) {
      matched = r.filter.feed(bytes, len, gather_text, &sink);
    }
    SchedulerEvent e;
    e.request = r.id;
    e.user = r.req.user;
    e.token = token;
    e.is_stop = is_stop;
    e.prompt_tokens = r.req.n_prompt;
    e.generated = r.generated;
    e.preemptions = r.preemptions;
    e.prefix_hit_tokens = r.prefix_hits;
    const FinishReason why = is_stop                               ? FinishReason::kStopToken
                             : matched >= 0                        ? FinishReason::kStopString
                             : r.generated >= r.req.max_new_tokens ? FinishReason::kLength
                             : r.cancelled                         ? FinishReason::kCaller
                                                                   : FinishReason::kNone;
    if (why != FinishReason::kNone) {
      r.filter.flush(gather_text, &sink);
      e.finished = true;
      e.finish = why;
      release(&r, stats);
    }
    e.text = text_;
    e.text_len = text_len_;
    if (fn) fn(ctx, e);
  }
}

Status Scheduler::step(SchedulerEventFn fn, void* ctx, StepStats* stats) {
  StepStats local;
  if (stats == nullptr) stats = &local;
  *stats = StepStats{};
  if (engine_ == nullptr) return Status::error(StatusCode::kInternal, "scheduler not initialized");
  for (Request& r : reqs_) {
    if (r.phase != Phase::kFree && r.cancelled) finish(&r, FinishReason::kCaller, StatusCode::kOk, nullptr, fn, ctx, stats);
  }
  admit(stats);
  // Preempted requests take back what the prefix cache still holds of their
  // history (here, once per step: within the step below a preemption must
  // free blocks for good).
  for (Request& r : reqs_) {
    if (r.phase == Phase::kPrefill && seq(r)->n_blocks == 0) {
      const uint32_t hit = engine_->model().kv().match_prefix(seq(r), r.h.ids, r.h.n);
      r.prefix_hits += hit;
      stats->prefix_hit_tokens += hit;
    }
  }
  // The pool may not hold this step's rows. Then, in turn: the prompts'
  // rows wait and the decode rows run; the latest admitted request holding
  // blocks is preempted (unless it is the oldest) and all rows are tried
  // again; the oldest admitted request runs alone; and if even that does
  // not fit, it cannot run in this pool at all and ends with kKvFull.
  Rows which = Rows::kAll;
  for (;;) {
    uint32_t decode_rows = 0;
    const uint32_t rows = compose(which, &decode_rows);
    if (rows == 0 && which == Rows::kAll) return Status::ok();  // nothing to run
    if (rows > 0) {
      const Status st = engine_->model().forward_batch(engine_->model().batch_in_place(rows));
      if (st.is_ok()) {
        stats->decode_rows = decode_rows;
        stats->prefill_rows = rows - decode_rows;
        // Register the full blocks the step completed, before sampling may
        // finish (and release) some of the sequences.
        for (Request& r : reqs_) {
          if (r.phase == Phase::kPrefill || r.phase == Phase::kDecode) engine_->model().kv().commit_blocks(seq(r), r.h.ids);
        }
        sample_rows(rows, fn, ctx, stats);
        return Status::ok();
      }
      if (st.code() != StatusCode::kKvFull) return st;  // the batch is built valid: an internal error
    }
    if (which == Rows::kAll && decode_rows > 0 && rows > decode_rows) {
      which = Rows::kDecodeOnly;
      continue;
    }
    if (which == Rows::kOldestOnly) {
      Request& r = reqs_[row_req_[0]];
      char message[112];
      std::snprintf(message, sizeof(message),
                    "KV pool exhausted: the request does not fit the pool's %u blocks even alone",
                    engine_->model().kv().shape().n_blocks);
      finish(&r, FinishReason::kError, StatusCode::kKvFull, message, fn, ctx, stats);
      which = Rows::kAll;
      continue;
    }
    Request* oldest = nullptr;
    for (Request& r : reqs_) {
      if ((r.phase == Phase::kPrefill || r.phase == Phase::kDecode) &&
          (oldest == nullptr || r.admitted_at < oldest->admitted_at)) {
        oldest = &r;
      }
    }
    Request* victim = preemption_victim();
    if (victim != nullptr && victim != oldest) {
      preempt(victim);
      ++stats->preempted;
      which = Rows::kAll;
      continue;
    }
    which = Rows::kOldestOnly;
  }
}

}  // namespace tern
