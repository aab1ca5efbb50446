#include "runtime/score.h"

#include <cmath>

namespace tern {

double ScoreSummary::perplexity() const { return positions ? std::exp(-mean_logprob()) : 0; }

Status score_tokens(Engine* engine, KvSequence* seq, const int32_t* ids, size_t n, ScoreFn per_position, void* ctx,
                    ScoreSummary* summary) {
  *summary = ScoreSummary{};
  if (n < 2) return Status::error(StatusCode::kInvalidArgument, "scoring needs at least 2 tokens, got %zu", n);
  TERN_RETURN_IF_ERROR(engine->check_tokens(ids, n));
  const RunLimits& l = engine->limits();
  if (uint64_t(seq->n_past) + n > l.max_context) {
    return Status::error(StatusCode::kPromptTooLong, "%zu tokens to score do not fit: %u already in context, max context %u",
                         n, seq->n_past, l.max_context);
  }
  const uint32_t chunk = l.logit_rows < l.prefill_chunk ? l.logit_rows : l.prefill_chunk;
  if (chunk == 0) return Status::error(StatusCode::kInvalidArgument, "the engine keeps no logits rows");
  const uint32_t vocab = engine->hparams().vocab;
  const uint32_t start = seq->n_past;
  for (size_t done = 0; done < n; done += chunk) {
    const uint32_t rows = uint32_t(n - done < chunk ? n - done : chunk);
    Status s = engine->model().forward(seq, ids + done, rows, Model::Logits::kAll);
    if (!s.is_ok()) {
      engine->model().kv().truncate(seq, start);
      return s;
    }
    for (uint32_t r = 0; r < rows; ++r) {
      const size_t pos = done + r;
      if (pos + 1 >= n) break;
      const float* row = engine->model().logits() + size_t(r) * vocab;
      int32_t top = 0;
      for (uint32_t v = 1; v < vocab; ++v) {
        if (row[v] > row[top]) top = int32_t(v);
      }
      double sum = 0;
      for (uint32_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - double(row[top]));
      ScorePosition p;
      p.pos = pos;
      p.top1 = top;
      p.next = ids[pos + 1];  // checked above: inside the vocabulary
      p.logprob = double(row[p.next]) - double(row[top]) - std::log(sum);
      p.logits = row;
      summary->sum_logprob += p.logprob;
      summary->top1_hits += top == p.next;
      ++summary->positions;
      if (per_position && !per_position(ctx, p)) return Status::ok();
    }
  }
  return Status::ok();
}

}  // namespace tern
