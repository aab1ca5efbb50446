// Teacher-forced scoring: run a token sequence through the model in chunks
// with a logits row per position, and report for each position the top-1
// token and the log-probability of the actual next token. The one copy of
// this loop (tern-run --score; golden and equivalence tests can use it).
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/engine.h"
#include "runtime/status.h"

namespace tern {

// One scored position: logits after ids[0..pos] predicting ids[pos + 1].
struct ScorePosition {
  size_t pos = 0;
  int32_t top1 = 0;       // argmax of the logits row (lowest id on ties)
  int32_t next = 0;       // ids[pos + 1]
  double logprob = 0;     // log p(next | ids[0..pos])
  const float* logits = nullptr;  // the row itself, [vocab], valid during the call
};

// Called per position in order; return false to stop early (not an error).
using ScoreFn = bool (*)(void* ctx, const ScorePosition& p);

struct ScoreSummary {
  size_t positions = 0;   // positions scored (n - 1 unless stopped early)
  size_t top1_hits = 0;   // positions whose top-1 equals the next token
  double sum_logprob = 0;
  double mean_logprob() const { return positions ? sum_logprob / double(positions) : 0; }
  double perplexity() const;  // exp(-mean log-prob); 0 when nothing was scored
};

// Score ids[0, n) on `seq` from its current position. Every id is checked
// against the vocabulary before any work (kInvalidToken naming the position
// and the id); n must be >= 2 (kInvalidArgument) and fit the context left
// (kPromptTooLong). Needs an engine opened with logit_rows >= 1 (chunks of
// min(logit_rows, prefill_chunk) positions). On error the sequence is rolled
// back to where it was; on success it holds the n tokens.
Status score_tokens(Engine* engine, KvSequence* seq, const int32_t* ids, size_t n, ScoreFn per_position, void* ctx,
                    ScoreSummary* summary);

}  // namespace tern
