// tern-bench --sequences N: N requests through the continuous-batching
// scheduler (runtime/scheduler.h), as a server would run them.
//
// Each request has its own prompt of --seq-prompt benchmark ids (a different
// slice of them per request) and decodes exactly --seq-gen tokens greedily
// (stop tokens off). Requests arrive on a seeded schedule: all at once
// (--arrival-ms 0, the default), or with exponentially distributed gaps of
// that mean (a Poisson process, seed --seed). The driver submits each request
// when its time comes and steps the scheduler; every token's time is taken
// when its event arrives.
//
// Reported per repetition (medians over repetitions in the summary):
//   aggregate_decode_tok_s  tokens of decode rows in steps that decoded only
//                           (no prompt rows) / those steps' time: the batched
//                           decode speed, comparable with llama-batched-bench's
//                           S_TG (its decode phase is separate from prefill);
//   overall_tok_s           all generated tokens / wall time of the run;
//   per_seq_tok_s           median over requests of (tokens - 1) / (last token
//                           time - first token time);
//   ttft p50/p95/p99        first token time - arrival, over requests;
//   itl p50/p95/p99         gaps between a request's consecutive tokens, pooled;
//   kv_blocks_max           most KV blocks in use after any step;
//   preemptions, prefix_hit_tokens (prompt positions found in the prefix
//                           cache; --shared-prefix L gives every prompt the
//                           same first L tokens, a system prompt).
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "port/clock.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"

namespace tern::bench {

struct SequencesOptions {
  uint32_t sequences = 1;
  uint32_t prompt = 64;     // tokens per request's prompt
  uint32_t generate = 64;   // tokens each request generates
  double arrival_ms = 0;    // mean gap between arrivals; 0: all at once
  uint64_t seed = 1;
  uint32_t budget = 0;      // scheduler token budget; 0: prefill_chunk
  uint32_t shared_prefix = 0;  // the first tokens of every prompt are the same (a system prompt)
};

struct SequencesResult {
  double aggregate_decode_tok_s = 0, overall_tok_s = 0, per_seq_tok_s = 0;
  double ttft_ms[3] = {}, itl_ms[3] = {};  // p50, p95, p99
  uint32_t kv_blocks_max = 0, preemptions = 0, prefix_hit_tokens = 0, steps = 0;
  uint64_t generated = 0;
  double wall_ms = 0;
};

inline double nearest_rank(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(p / 100.0 * double(v.size()) + 0.999999);
  rank = rank < 1 ? 1 : rank > v.size() ? v.size() : rank;
  return v[rank - 1];
}

struct SequencesRun {
  struct Track {
    uint64_t arrival_ns = 0;
    std::vector<uint64_t> token_ns;
    bool finished = false;
    FinishReason finish = FinishReason::kNone;
    uint32_t prefix_hits = 0;
  };
  std::vector<Track> tracks;

  static void on_event(void* ctx, const SchedulerEvent& e) {
    SequencesRun& r = *static_cast<SequencesRun*>(ctx);
    Track& t = r.tracks[size_t(reinterpret_cast<uintptr_t>(e.user))];
    if (e.token >= 0) t.token_ns.push_back(now_ns());
    if (e.finished) {
      t.finished = true;
      t.finish = e.finish;
      t.prefix_hits = e.prefix_hit_tokens;
    }
  }
};

// One run of o.sequences requests; ids must hold prompt + sequences * 7 ids.
// Request i's prompt is ids[7i, 7i + prompt), its first shared_prefix tokens
// replaced by ids[0, shared_prefix) (the same for every request). Each run
// starts from a cold prefix cache: the prompts of a warm-up or an earlier
// repetition are not hits.
inline Status run_sequences(Engine* e, const SequencesOptions& o, const std::vector<int32_t>& ids,
                            SequencesResult* out) {
  *out = SequencesResult{};
  e->model().kv().drop_idle_cache();
  static Scheduler sch;  // fixed arrays of request slots: static, not on the stack
  SchedulerOptions so;
  so.token_budget = o.budget;
  TERN_RETURN_IF_ERROR(sch.init(e, so));
  // The arrival schedule, from the seed alone.
  std::vector<uint64_t> offset_ns(o.sequences, 0);
  std::mt19937_64 rng(o.seed);
  std::exponential_distribution<double> gap(o.arrival_ms > 0 ? 1.0 / o.arrival_ms : 1.0);
  for (uint32_t i = 1; i < o.sequences; ++i) offset_ns[i] = offset_ns[i - 1] + (o.arrival_ms > 0 ? uint64_t(gap(rng) * 1e6) : 0);

  SequencesRun run;
  run.tracks.resize(o.sequences);
  std::vector<std::vector<int32_t>> prompts(o.sequences);
  for (uint32_t i = 0; i < o.sequences; ++i) {
    prompts[i].assign(ids.begin() + size_t(i) * 7, ids.begin() + size_t(i) * 7 + o.prompt);
    for (uint32_t k = 0; k < o.shared_prefix && k < o.prompt; ++k) prompts[i][k] = ids[k];
  }
  uint32_t submitted = 0;
  uint64_t decode_only_ns = 0, decode_only_tokens = 0;
  const uint64_t t0 = now_ns();
  while (submitted < o.sequences || !sch.idle()) {
    const uint64_t now = now_ns();
    while (submitted < o.sequences && t0 + offset_ns[submitted] <= now) {
      SequenceRequest q;
      q.prompt = prompts[submitted].data();
      q.n_prompt = o.prompt;
      q.max_new_tokens = o.generate;
      q.user = reinterpret_cast<void*>(uintptr_t(submitted));
      uint32_t id = 0;
      TERN_RETURN_IF_ERROR(sch.submit(q, &id));
      run.tracks[submitted].arrival_ns = t0 + offset_ns[submitted];
      ++submitted;
    }
    if (sch.idle()) {  // nothing to run before the next arrival
      std::this_thread::sleep_for(std::chrono::nanoseconds(t0 + offset_ns[submitted] - now_ns()));
      continue;
    }
    StepStats st;
    const uint64_t s0 = now_ns();
    TERN_RETURN_IF_ERROR(sch.step(SequencesRun::on_event, &run, &st));
    const uint64_t s1 = now_ns();
    ++out->steps;
    out->preemptions += st.preempted;
    if (st.prefill_rows == 0 && st.decode_rows > 0) {
      decode_only_ns += s1 - s0;
      decode_only_tokens += st.decode_rows;
    }
    out->kv_blocks_max = std::max(out->kv_blocks_max, e->model().kv().used_blocks());
  }
  const uint64_t t1 = now_ns();
  std::vector<double> ttft, itl, per_seq;
  for (const auto& t : run.tracks) {
    if (!t.finished || t.token_ns.empty()) return Status::error(StatusCode::kInternal, "a request produced nothing");
    out->generated += t.token_ns.size();
    out->prefix_hit_tokens += t.prefix_hits;
    ttft.push_back(ns_to_ms(t.token_ns[0] - t.arrival_ns));
    for (size_t k = 1; k < t.token_ns.size(); ++k) itl.push_back(ns_to_ms(t.token_ns[k] - t.token_ns[k - 1]));
    if (t.token_ns.size() > 1)
      per_seq.push_back(double(t.token_ns.size() - 1) * 1e9 / double(t.token_ns.back() - t.token_ns[0]));
  }
  const double pcts[3] = {50, 95, 99};
  for (int i = 0; i < 3; ++i) {
    out->ttft_ms[i] = nearest_rank(ttft, pcts[i]);
    out->itl_ms[i] = nearest_rank(itl, pcts[i]);
  }
  out->per_seq_tok_s = nearest_rank(per_seq, 50);
  out->wall_ms = ns_to_ms(t1 - t0);
  out->overall_tok_s = double(out->generated) * 1e9 / double(t1 - t0);
  out->aggregate_decode_tok_s = decode_only_ns ? double(decode_only_tokens) * 1e9 / double(decode_only_ns) : 0;
  return Status::ok();
}

inline void print_sequences_json(const SequencesResult& r, int rep) {
  std::printf("{\"rep\":%d,\"aggregate_decode_tok_s\":%.2f,\"overall_tok_s\":%.2f,\"per_seq_tok_s\":%.2f,"
              "\"ttft_ms\":[%.3f,%.3f,%.3f],\"itl_ms\":[%.3f,%.3f,%.3f],\"kv_blocks_max\":%u,\"preemptions\":%u,"
              "\"prefix_hit_tokens\":%u,\"steps\":%u,\"generated\":%llu,\"wall_ms\":%.2f}\n",
              rep, r.aggregate_decode_tok_s, r.overall_tok_s, r.per_seq_tok_s, r.ttft_ms[0], r.ttft_ms[1],
              r.ttft_ms[2], r.itl_ms[0], r.itl_ms[1], r.itl_ms[2], r.kv_blocks_max, r.preemptions,
              r.prefix_hit_tokens, r.steps, (unsigned long long)r.generated, r.wall_ms);
}

}  // namespace tern::bench
