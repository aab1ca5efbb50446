// The forward pass over a validated blob: llama, qwen2/3 and gemma3 are the
// same pass, configured by the blob's hparams and per-layer sections. Model owns its
// activation buffers and the KV pool, all taken from the arena at init in the
// order runtime/memory_plan.cc accounts for; forward() never allocates.
//
// Prefill and decode are the same call, forward_batch: rows of one or more
// sequences (runtime/batch.h), every projection a matrix-matrix product over
// all the rows (n == 1 is the matrix-vector decode), attention per row over
// its own sequence's blocks. forward() is the one-sequence form.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "kernels/kernels.h"
#include "runtime/batch.h"
#include "runtime/kv_pages.h"
#include "runtime/memory_plan.h"
#include "runtime/model_file.h"
#include "runtime/status.h"
#include "port/thread_pool.h"

namespace tern {

// Activation buffers for one forward call of up to `chunk` tokens.
struct Activations {
  float* x;        // [chunk, dim] residual stream
  float* xb;       // [chunk, max(dim, q_dim)] normed input / attention output
  float* q;        // [chunk, q_dim]
  float* k;        // [chunk, kv_dim]
  float* v;        // [chunk, kv_dim]
  float* hb;       // [chunk, ffn] gate, then silu(gate) * up
  float* hb2;      // [chunk, ffn] up
  float* proj;     // [chunk, dim] output of wo / down before the residual add
  float* rope;     // [rope_tables, chunk, rope_dim] cos/sin pairs per token
  float* scores;   // [threads, max_context] attention scores
  int8_t* act_q;   // [chunk, max_cols] quantized activations, coarse plane
  int8_t* act_r;   // [chunk, max_cols] residual plane
  float* act_d;    // [chunk, max_cols / 32]
  float* act_s;    // [chunk, max_cols / 32]
  float* logits;   // [logit_rows, vocab]
  // The rows of the call in progress (forward() fills them for its one
  // sequence; forward_batch copies the caller's).
  int32_t* row_token;       // [chunk] token ids (a caller's batch built in place)
  uint32_t* row_pos;        // [chunk] positions
  KvSequence** row_seq;     // [chunk] sequences
  uint8_t* row_logits;      // [chunk] nonzero: the row's logits are kept
};

// Every buffer Model::init takes, in order: the planner sums the same list.
struct BufferSpec {
  const char* region;
  size_t bytes;
};
constexpr size_t kMaxBufferSpecs = 24;
size_t model_buffer_specs(const ModelShape& shape, const RunLimits& limits, BufferSpec* specs);

// OK if the kernel table has a matrix product for the type of every matrix
// the forward pass multiplies; otherwise kUnsupportedIsa naming the variant,
// the weight type and the first tensor of that type. Model::init calls it.
Status check_kernels_cover(const ModelFile& file, const KernelTable& kernels);

class Model {
 public:
  Status init(const ModelFile* file, const RunLimits& limits, const KernelTable* kernels, ThreadPool* pool,
              Arena* arena);

  // Which logits a forward call leaves in logits().
  enum class Logits {
    kNone,  // none: a prefill chunk that is not the prompt's last (the head,
            // [vocab, dim], is most of a small model's bytes: Gemma 3 270M's
            // costs ~15 ms per call on a Xeon core)
    kLast,  // the last token's, in row 0
    kAll,   // every token's (n <= logit_rows), rows 0..n-1
  };
  // Run tokens [n] of `seq` at positions seq->n_past.. and append their K/V.
  // Errors (no state change): kInvalidToken, kKvFull, kContextFull, kInvalidArgument.
  Status forward(KvSequence* seq, const int32_t* tokens, uint32_t n, Logits logits);

  // One step over the rows of `b` (1..prefill_chunk rows; each sequence's
  // rows adjacent, in order, from its n_past): appends every row's K/V and
  // advances each sequence by its rows. The logits of the rows that want
  // them are rows 0, 1, .. of logits(), in batch order (at most logit_rows).
  // All or nothing: on any error (kInvalidToken, kKvFull, kContextFull,
  // kInvalidArgument) no sequence has changed. A row's outputs are the bits
  // it gets alone: every kernel table is batch-invariant (kernels.h).
  Status forward_batch(const Batch& b);

  // Arrays of prefill_chunk rows in the arena where a caller (the scheduler)
  // builds a step without memory of its own; pass batch_in_place(n) then.
  struct BatchArrays {
    int32_t* token;
    uint32_t* pos;
    KvSequence** seq;
    uint8_t* want_logits;
    uint32_t capacity;
  };
  BatchArrays batch_arrays() {
    return {act_.row_token, act_.row_pos, act_.row_seq, act_.row_logits, limits_.prefill_chunk};
  }
  Batch batch_in_place(uint32_t n) const { return Batch{act_.row_token, act_.row_pos, act_.row_seq, act_.row_logits, n}; }

  const float* logits() const { return act_.logits; }  // [rows, vocab]
  uint32_t vocab() const { return file_->hp.vocab; }
  const Hparams& hparams() const { return file_->hp; }
  const RunLimits& limits() const { return limits_; }
  KvPool& kv() { return kv_; }
  // The sliding-window layers' pool (ModelShape::sliding_layers), or null
  // when every layer's cache lives in kv() (no sliding layers, or a window
  // as long as the context).
  KvPool* window_kv() { return has_window_pool_ ? &window_kv_ : nullptr; }
  const KernelTable& kernels() const { return *k_; }
  ThreadPool* threads() const { return pool_; }

 private:
  void embed(const int32_t* tokens, uint32_t n);
  // Checks everything forward_batch refuses, before any state changes.
  Status check_batch(const Batch& b, uint32_t* logit_rows) const;
  // Reserve KV for every sequence of the batch, or none (rolled back).
  Status reserve_batch(uint32_t n);
  void attention_block(uint32_t layer, uint32_t n);
  void mlp_block(uint32_t layer, uint32_t n);
  // Logits of the rows flagged in row_logits, into logits rows 0, 1, ..
  void output_head(uint32_t n, uint32_t rows);
  // x += proj for n rows, proj first normalized by out_norm when given.
  void add_residual(const float* out_norm, uint32_t n);
  // cos/sin of each row's position into each RoPE table.
  void rope_angles(uint32_t n);
  uint32_t rope_table(uint32_t layer) const;
  // Quantize x[n, cols] into the shared int8 activation buffers.
  void quantize(const float* x, uint32_t n, uint32_t cols);
  // y[n, w.rows] = W x_t for each row t of x[n, w.cols]; x must be what was
  // last quantized (quantized weights read the int8 copy, kF32 reads x).
  void matmul(const WeightMatrix& w, const float* x, uint32_t n, float* y);
  // Up to three matrices of the same input (Q, K, V; gate, up) as one
  // thread-pool job: their rows are split among the workers as one range.
  void matmuls(const WeightMatrix* const* ws, float* const* ys, uint32_t count, const float* x, uint32_t n);

  const ModelFile* file_ = nullptr;
  const KernelTable* k_ = nullptr;
  ThreadPool* pool_ = nullptr;
  RunLimits limits_;
  KvPool kv_;
  KvPool window_kv_;
  bool has_window_pool_ = false;
  // Per layer: its index in the pool that holds it (kv_ or window_kv_).
  static constexpr uint32_t kMaxModelLayers = 512;
  uint16_t kv_slot_[kMaxModelLayers] = {};
  bool in_window_pool_[kMaxModelLayers] = {};
  Activations act_{};
  uint32_t max_cols_ = 0;
  uint32_t rope_tables_ = 1;
  float rope_base_[2] = {};
  bool rope_scaled_[2] = {};
};

}  // namespace tern
