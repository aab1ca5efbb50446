// Fuzz target: the continuous-batching scheduler (runtime/scheduler.h) with
// the prefix cache, on the tiny llama (tests/support/tiny_model.h, packed
// once) and the scalar kernels (every table is batch-invariant; scalar
// replays anywhere). The input picks the limits (sequences, KV blocks,
// block size, token budget) and a script of operations: submit a
// request (prompt from the input, often sharing a prefix with an earlier
// one; token limit; greedy or seeded sampling; a stop token), cancel one,
// run steps. Then every request is run again alone on a fresh scheduler.
// Checked:
//  - every accepted request gets exactly one finishing event and none after
//    it; tokens are in the vocabulary; no more than its token limit;
//  - the scheduler drains (bounded steps) and every block comes back;
//  - batch invariance, preemption and the prefix cache by content: a request
//    that finished normally (length, stop token, context) generated exactly
//    what it generates alone; a cancelled or failed one a prefix of that.
#include <cstring>
#include <vector>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/tiny_model.h"

using namespace tern;
using tern::fuzz::ByteReader;

namespace {

constexpr uint32_t kMaxRequests = 24;
constexpr uint32_t kMaxPrompt = 40;
constexpr uint32_t kMaxOps = 96;
constexpr uint32_t kMaxNew = 24;

const std::vector<uint8_t>& tiny_blob() {
  static const std::vector<uint8_t> blob = [] {
    std::vector<uint8_t> b;
    FUZZ_CHECK(testing::tiny_blob(&b, 3, blob::WeightKind::kInt8).is_ok(), "packing the tiny model");
    return b;
  }();
  return blob;
}

struct Req {
  int32_t prompt[kMaxPrompt];
  uint32_t n_prompt = 0;
  uint32_t max_new = 0;
  int32_t stop = -1;
  SamplerParams sampling;
  uint32_t id = 0;
  bool accepted = false;
  // What the run produced.
  int32_t tokens[kMaxNew];
  uint32_t n_tokens = 0;
  int finished = 0;
  FinishReason finish = FinishReason::kNone;
};

struct Run {
  Req* reqs;
  uint32_t n;
};

FUZZ_NO_COVERAGE void on_event(void* ctx, const SchedulerEvent& e) {
  Run& run = *static_cast<Run*>(ctx);
  Req& r = run.reqs[reinterpret_cast<uintptr_t>(e.user)];
  FUZZ_CHECK(r.finished == 0, "event for request %u after its end", e.request);
  if (e.token >= 0) {
    FUZZ_CHECK(uint32_t(e.token) < testing::kTinyVocab, "token %d outside the vocabulary", e.token);
    FUZZ_CHECK(r.n_tokens < r.max_new, "request %u: more tokens than its limit %u", e.request, r.max_new);
    r.tokens[r.n_tokens++] = e.token;
  }
  if (e.finished) {
    ++r.finished;
    r.finish = e.finish;
    FUZZ_CHECK(e.generated == r.n_tokens, "request %u: %u generated, %u seen", e.request, e.generated, r.n_tokens);
  }
}

SequenceRequest request_of(Req& r, uintptr_t index) {
  SequenceRequest q;
  q.prompt = r.prompt;
  q.n_prompt = r.n_prompt;
  q.max_new_tokens = r.max_new;
  q.sampling = r.sampling;
  q.stop_ids = r.stop >= 0 ? &r.stop : nullptr;
  q.n_stop = r.stop >= 0 ? 1 : 0;
  q.user = reinterpret_cast<void*>(index);
  return q;
}

// Steps until idle; false if it does not drain in `max_steps`.
bool drain(Scheduler* sch, Run* run, uint32_t max_steps) {
  for (uint32_t i = 0; i < max_steps && !sch->idle(); ++i) {
    const Status s = sch->step(on_event, run, nullptr);
    FUZZ_CHECK(s.is_ok(), "step failed: %s", s.message());
  }
  return sch->idle();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in{data, size};
  static Engine engine;
  static Scheduler sch;
  static Req reqs[kMaxRequests];
  static std::vector<uint8_t> arena;

  EngineOptions o;
  o.blob_data = tiny_blob().data();
  o.blob_size = tiny_blob().size();
  o.isa = "scalar";  // the same kernels on every machine, so a finding replays anywhere
  o.limits.max_context = 64;
  o.limits.max_sequences = 1 + in.u8() % 4;
  o.limits.kv_block_tokens = 4u << (in.u8() % 3);  // 4, 8, 16
  o.limits.prefill_chunk = 16;
  o.limits.logit_rows = 4;
  const uint32_t per_seq = 64 / o.limits.kv_block_tokens;
  o.limits.kv_blocks = 1 + in.u8() % (per_seq * o.limits.max_sequences);  // often far fewer than the contexts
  SchedulerOptions so;
  so.token_budget = 1 + in.u8() % 16;

  MemoryPlan plan;
  ModelFile f;
  FUZZ_CHECK(open_model_file(tiny_blob().data(), tiny_blob().size(), &f).is_ok(), "tiny blob");
  FUZZ_CHECK(plan_memory(f.shape(), resolve_run_limits(o, f.default_limits), &plan, nullptr), "plan");
  arena.resize(plan.total);
  o.arena_buffer = arena.data();
  o.arena_bytes = arena.size();
  const Status opened = engine.open(o);
  FUZZ_CHECK(opened.is_ok(), "open: %s", opened.message());
  FUZZ_CHECK(sch.init(&engine, so).is_ok(), "scheduler init");

  uint32_t n = 0;
  Run run{reqs, 0};
  for (uint32_t op = 0; op < kMaxOps && !in.empty(); ++op) {
    const uint8_t b = in.u8();
    switch (b % 4) {
      case 0:
      case 1: {  // submit
        if (n == kMaxRequests) break;
        Req& r = reqs[n];
        r = Req{};
        const uint8_t shape = in.u8();
        r.n_prompt = 1 + shape % kMaxPrompt;
        // Half the prompts start with an earlier request's prompt (shared prefix).
        const uint32_t from = (shape & 0x80) && n > 0 ? in.u8() % n : kMaxRequests;
        for (uint32_t k = 0; k < r.n_prompt; ++k) {
          const bool copy = from < n && k < reqs[from].n_prompt && k < uint32_t(in.u8() % 48);
          r.prompt[k] = copy ? reqs[from].prompt[k] : int32_t(in.u8());
        }
        r.max_new = 1 + in.u8() % kMaxNew;
        if (b & 0x10) {
          r.sampling.temperature = 0.8f;
          r.sampling.top_k = 20;
          r.sampling.seed = in.u8();
        }
        if (b & 0x20) r.stop = int32_t(in.u8());
        run.n = n + 1;
        const Status s = sch.submit(request_of(r, n), &r.id);
        r.accepted = s.is_ok();
        if (!s.is_ok()) {
          FUZZ_CHECK(s.code() == StatusCode::kKvFull || s.code() == StatusCode::kBusy,
                     "submit refused a valid request: %s", s.message());
        }
        ++n;
        break;
      }
      case 2: {  // cancel (perhaps one already finished: then refused)
        if (n == 0) break;
        const Req& r = reqs[in.u8() % n];
        const Status s = sch.cancel(r.id);
        FUZZ_CHECK(s.is_ok() || (s.code() == StatusCode::kInvalidArgument && (r.finished || !r.accepted)),
                   "cancel of a live request refused: %s", s.message());
        break;
      }
      default: {  // steps
        const uint32_t steps = 1 + in.u8() % 8;
        for (uint32_t i = 0; i < steps; ++i) {
          const Status s = sch.step(on_event, &run, nullptr);
          FUZZ_CHECK(s.is_ok(), "step failed: %s", s.message());
        }
      }
    }
  }
  run.n = n;
  FUZZ_CHECK(drain(&sch, &run, 4000), "the scheduler did not drain");
  FUZZ_CHECK(engine.model().kv().used_blocks() == 0, "%u blocks still held", engine.model().kv().used_blocks());

  // Each request alone, on a fresh scheduler (the engine keeps its cache).
  static Req alone;
  for (uint32_t i = 0; i < n; ++i) {
    const Req& r = reqs[i];
    if (!r.accepted) continue;
    FUZZ_CHECK(r.finished == 1, "request %u ended %d times", i, r.finished);
    alone = r;
    alone.n_tokens = 0;
    alone.finished = 0;
    Run solo{&alone, 1};
    FUZZ_CHECK(sch.init(&engine, so).is_ok(), "scheduler init");
    uint32_t id = 0;
    FUZZ_CHECK(sch.submit(request_of(alone, 0), &id).is_ok(), "resubmit");
    FUZZ_CHECK(drain(&sch, &solo, 4000), "a lone request did not drain");
    const bool complete = r.finish == FinishReason::kLength || r.finish == FinishReason::kStopToken ||
                          r.finish == FinishReason::kContext;
    if (complete) {
      FUZZ_CHECK(alone.finish == r.finish && alone.n_tokens == r.n_tokens, "request %u: %u tokens (%s) mixed, %u "
                 "(%s) alone", i, r.n_tokens, finish_reason_name(r.finish), alone.n_tokens,
                 finish_reason_name(alone.finish));
    } else {
      FUZZ_CHECK(r.n_tokens <= alone.n_tokens || alone.finish == FinishReason::kError,
                 "request %u: cut off after %u tokens, alone %u", i, r.n_tokens, alone.n_tokens);
    }
    const uint32_t common = r.n_tokens < alone.n_tokens ? r.n_tokens : alone.n_tokens;
    FUZZ_CHECK(std::memcmp(r.tokens, alone.tokens, common * sizeof(int32_t)) == 0,
               "request %u: its tokens differ from the request alone", i);
  }
  engine.close();
  return 0;
}
