// tern-run --prompts-file: every prompt its own sequence, all of them through
// the continuous-batching scheduler (runtime/scheduler.h) in one engine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace tern::cli {

struct PromptsBatchOptions {
  uint32_t max_new_tokens = 64;
  bool ignore_eos = false;
  bool json = false;
  std::vector<std::string> stops;  // stop strings, for every sequence
  SamplerParams sampling;          // sequence i samples with seed + i
  uint32_t budget = 0;             // scheduler rows per step (0: the prefill chunk)
};

// Run prompts[i] as sequence i. Text output: each sequence's text after all
// have finished, in input order, under a "--- seq i ---" line. --json: one
// object per token {"seq","id","text","stop"} as they come, one per sequence
// when it ends {"seq","done":true,"finish_reason",...}, then a summary
// {"done":true,"sequences",...}. Returns the exit code (1 if any failed).
int run_prompts_batch(Engine& e, const std::vector<std::vector<int32_t>>& prompts, const PromptsBatchOptions& o,
                      double load_ms, const char* tool);

}  // namespace tern::cli
