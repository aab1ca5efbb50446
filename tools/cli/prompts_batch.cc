#include "tools/cli/prompts_batch.h"

#include <cstdio>
#include <cstring>

#include "port/clock.h"
#include "runtime/scheduler.h"
#include "runtime/utf8.h"
#include "tools/cli/cli_common.h"

namespace tern::cli {

namespace {

struct SeqOut {
  Utf8Stream utf8;
  std::string text;  // the visible text, valid UTF-8
  uint32_t prompt_tokens = 0, generated = 0, preemptions = 0;
  uint64_t first_ns = 0, last_ns = 0;
  FinishReason finish = FinishReason::kNone;
  StatusCode error = StatusCode::kOk;
  std::string message;
};

struct Run {
  std::vector<SeqOut> seqs;
  bool json = false;
};

void on_event(void* ctx, const SchedulerEvent& e) {
  Run& run = *static_cast<Run*>(ctx);
  const size_t i = size_t(reinterpret_cast<uintptr_t>(e.user));
  SeqOut& s = run.seqs[i];
  std::string piece;
  if (e.text_len > 0) {
    std::vector<char> out(Utf8Stream::max_output(e.text_len));
    size_t n = 0;
    s.utf8.feed(e.text, e.text_len, out.data(), out.size(), &n);
    piece.assign(out.data(), n);
  }
  if (e.finished) {
    char tail[8];
    piece.append(tail, s.utf8.finish(tail, sizeof(tail)));
  }
  s.text += piece;
  if (e.token >= 0) {
    s.last_ns = now_ns();
    if (s.first_ns == 0) s.first_ns = s.last_ns;
    if (run.json) {
      std::printf("{\"seq\":%zu,\"id\":%d,\"text\":", i, e.token);
      json_string(stdout, piece.data(), piece.size());
      std::printf(",\"stop\":%s}\n", e.is_stop ? "true" : "false");
    }
  } else if (run.json && !piece.empty()) {
    std::printf("{\"seq\":%zu,\"id\":null,\"text\":", i);
    json_string(stdout, piece.data(), piece.size());
    std::printf(",\"stop\":false}\n");
  }
  if (e.finished) {
    s.finish = e.finish;
    s.error = e.error;
    s.message = e.message ? e.message : "";
    s.prompt_tokens = e.prompt_tokens;
    s.generated = e.generated;
    s.preemptions = e.preemptions;
    if (run.json) {
      const bool ok = e.finish != FinishReason::kError;
      std::printf("{\"seq\":%zu,\"done\":true,\"status\":\"%s\",\"finish_reason\":\"%s\",\"prompt_tokens\":%u,"
                  "\"generated_tokens\":%u,\"preemptions\":%u",
                  i, ok ? "ok" : status_code_name(e.error), finish_reason_name(e.finish), e.prompt_tokens,
                  e.generated, e.preemptions);
      if (!ok) {
        std::printf(",\"error\":");
        json_string(stdout, s.message.data(), s.message.size());
      }
      std::printf("}\n");
    }
  }
  if (run.json) std::fflush(stdout);
}

}  // namespace

int run_prompts_batch(Engine& e, const std::vector<std::vector<int32_t>>& prompts, const PromptsBatchOptions& o,
                      double load_ms, const char* tool) {
  static Scheduler sch;  // request slots: static, not on the stack
  SchedulerOptions so;
  so.token_budget = o.budget;
  if (Status s = sch.init(&e, so); !s.is_ok()) return report_error(tool, s, o.json);
  // EOS and the end of a turn, as tern-run's single prompt stops.
  const int32_t stop_ids[3] = {e.hparams().eos, e.hparams().im_end, e.chat().end_of_turn()};
  std::vector<const char*> stop_strs;
  std::vector<uint32_t> stop_lens;
  for (const std::string& s : o.stops) {
    stop_strs.push_back(s.data());
    stop_lens.push_back(uint32_t(s.size()));
  }
  Run run;
  run.json = o.json;
  run.seqs.resize(prompts.size());
  const uint64_t t0 = now_ns();
  size_t next = 0;
  uint64_t steps = 0;
  uint32_t max_blocks = 0;
  while (next < prompts.size() || !sch.idle()) {
    // Submit what the scheduler takes; the rest waits for finished requests.
    while (next < prompts.size()) {
      SequenceRequest q;
      q.prompt = prompts[next].data();
      q.n_prompt = uint32_t(prompts[next].size());
      q.max_new_tokens = o.max_new_tokens;
      q.sampling = o.sampling;
      q.sampling.seed = o.sampling.seed + next;
      q.stop_ids = o.ignore_eos ? nullptr : stop_ids;
      q.n_stop = o.ignore_eos ? 0 : 3;
      q.stop_strings = stop_strs.data();
      q.stop_string_lens = stop_lens.data();
      q.n_stop_strings = uint32_t(stop_strs.size());
      q.user = reinterpret_cast<void*>(uintptr_t(next));
      uint32_t id = 0;
      const Status s = sch.submit(q, &id);
      if (s.code() == StatusCode::kBusy) break;
      if (!s.is_ok()) {  // this prompt is refused; the others go on
        SchedulerEvent refused;
        refused.user = q.user;
        refused.finished = true;
        refused.finish = FinishReason::kError;
        refused.error = s.code();
        refused.message = s.message();
        refused.prompt_tokens = q.n_prompt;
        on_event(&run, refused);
      }
      ++next;
    }
    StepStats st;
    if (Status s = sch.step(on_event, &run, &st); !s.is_ok()) return report_error(tool, s, o.json);
    ++steps;
    if (e.model().kv().used_blocks() > max_blocks) max_blocks = e.model().kv().used_blocks();
  }
  const double wall_ms = ns_to_ms(now_ns() - t0);
  uint64_t generated = 0;
  int failed = 0;
  for (const SeqOut& s : run.seqs) {
    generated += s.generated;
    failed += s.finish == FinishReason::kError;
  }
  if (o.json) {
    std::printf("{\"done\":true,\"sequences\":%zu,\"failed\":%d,\"generated_tokens\":%llu,\"steps\":%llu,"
                "\"load_ms\":%.3f,\"wall_ms\":%.3f,\"aggregate_tok_s\":%.2f,\"kv_blocks_max\":%u,",
                run.seqs.size(), failed, (unsigned long long)generated, (unsigned long long)steps, load_ms, wall_ms,
                wall_ms > 0 ? double(generated) * 1000.0 / wall_ms : 0.0, max_blocks);
    json_memory_fields(stdout, e);
    std::printf("}\n");
  } else {
    for (size_t i = 0; i < run.seqs.size(); ++i) {
      const SeqOut& s = run.seqs[i];
      std::printf("--- seq %zu (%s, %u tokens) ---\n%s\n", i, finish_reason_name(s.finish), s.generated,
                  s.text.c_str());
      if (s.finish == FinishReason::kError) {
        std::fprintf(stderr, "%s: seq %zu: error [%s]: %s\n", tool, i, status_code_name(s.error), s.message.c_str());
      }
    }
    std::fflush(stdout);
    std::fprintf(stderr, "[%s, %u thread%s] load %.1f ms | %zu sequences, %llu tokens in %.1f ms: %.1f tok/s, %llu "
                 "steps\n",
                 e.isa_name(), e.threads(), e.threads() == 1 ? "" : "s", load_ms, run.seqs.size(),
                 (unsigned long long)generated, wall_ms, wall_ms > 0 ? double(generated) * 1000.0 / wall_ms : 0.0,
                 (unsigned long long)steps);
  }
  return failed ? 1 : 0;
}

}  // namespace tern::cli
