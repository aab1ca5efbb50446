// One forward step over rows of several sequences: a plain struct of parallel
// arrays, as llama.cpp's llama_batch is. Row i runs token[i] of sequence
// seq[i] at position pos[i]; want_logits[i] asks for its logits.
//
// The rows of one sequence are adjacent and in position order, the first at
// the sequence's n_past: a decode row is one row, a prefill chunk several.
// Every projection and the output head then read each weight once for all
// rows of the step (a matrix-matrix product over the batch), while attention
// runs per row over that row's own sequence's block table.
#pragma once
#include <cstdint>

#include "runtime/kv_pages.h"

namespace tern {

struct Batch {
  const int32_t* token = nullptr;        // [n] token ids
  const uint32_t* pos = nullptr;         // [n] positions
  KvSequence* const* seq = nullptr;      // [n] each row's sequence
  const uint8_t* want_logits = nullptr;  // [n] nonzero: keep this row's logits (null: none)
  uint32_t n = 0;
};

}  // namespace tern
