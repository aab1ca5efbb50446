// Engine: everything one process needs to run a blob, set up once.
// open() maps the blob, validates it, plans the arena for the run limits,
// takes the arena (a caller buffer or one OS mapping), picks the kernels,
// starts the worker threads and initializes tokenizer, sampler, model and
// sequences. After open() returns, nothing allocates: prefill/decode/sample
// and every error path use only arena memory.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "kernels/kernels.h"
#include "port/blob_map.h"
#include "port/thread_pool.h"
#include "runtime/chat_format.h"
#include "runtime/memory_plan.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "runtime/sampler.h"
#include "runtime/status.h"
#include "runtime/text_tokenizer.h"

namespace tern {

struct EngineOptions {
  const char* model_path = nullptr;  // blob file (or set blob_data/blob_size)
  const void* blob_data = nullptr;   // a blob already in memory (linked-in array, test buffer)
  size_t blob_size = 0;
  // Run limits; a zero field takes the blob's default (its memory plan section).
  RunLimits limits{0, 0, 0, 0, 0, 0, 0};
  // KV cache type: -1 takes the blob's default (its plan), else a KvType
  // (limits.kv_type is not read: its zero is a valid type).
  int32_t kv_type = -1;
  uint32_t threads = 1;
  const char* isa = nullptr;         // nullptr/"auto": best available; else a variant name
  SamplerParams sampling;
  bool verify_weights = false;       // CRC the whole tensor data section at open
  void* arena_buffer = nullptr;      // caller-supplied arena; else one OS mapping of plan.total
  size_t arena_bytes = 0;
};

class Engine {
 public:
  static constexpr uint32_t kMaxSequences = 256;

  Engine() = default;
  ~Engine() { close(); }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Status open(const EngineOptions& options);
  void close();

  // Prefill `n` tokens (any count up to the context) in prefill_chunk pieces.
  // The last token's logits are then in logits(). Every id is checked against
  // the vocabulary before any work (kInvalidToken); on any error the sequence
  // is left (or rolled back to) where it was.
  Status prefill(KvSequence* seq, const int32_t* ids, size_t n);
  // One decode step: run `token`, leaving its logits in logits().
  // kInvalidToken (sequence unchanged) for an id outside the vocabulary.
  Status decode(KvSequence* seq, int32_t token);
  // kInvalidToken naming the first of ids[0, n) outside the vocabulary (its
  // index and value), else ok. For callers that read per-id data (scores).
  Status check_tokens(const int32_t* ids, size_t n) const;
  // Sample from logits() (modifies them) with the sequence's recent tokens for the penalty.
  int32_t sample(const int32_t* recent, uint32_t n_recent);

  float* logits() { return const_cast<float*>(model_.logits()); }
  KvSequence* sequence(uint32_t i) { return i < n_sequences_ ? &sequences_[i] : nullptr; }
  // Token history of sequence i: [max_context] ids from the arena.
  int32_t* history(uint32_t i) { return i < n_sequences_ ? history_[i] : nullptr; }
  void reset(KvSequence* seq) { model_.kv().reset(seq); }

  TextTokenizer& tokenizer() { return tokenizer_; }
  Sampler& sampler() { return sampler_; }
  Model& model() { return model_; }
  const ModelFile& file() const { return file_; }
  const Hparams& hparams() const { return file_.hp; }
  const ChatFormat& chat() const { return chat_; }
  bool has_chat() const { return chat_.kind != ChatKind::kNone; }
  const MemoryPlan& plan() const { return plan_; }
  const RunLimits& limits() const { return limits_; }
  const Arena& arena() const { return arena_; }
  const char* isa_name() const { return kernels_ ? kernels_->name : "none"; }
  uint32_t threads() const { return pool_ ? pool_->size() : 1; }
  size_t blob_bytes() const { return map_.size; }
  double open_ms() const { return open_ms_; }

 private:
  BlobMap map_;
  ModelFile file_;
  RunLimits limits_;
  MemoryPlan plan_;
  Arena arena_;
  void* os_arena_ = nullptr;
  size_t os_arena_bytes_ = 0;
  const KernelTable* kernels_ = nullptr;
  SerialPool serial_;
#if defined(TERN_HAVE_THREADS)
  PthreadPool threads_;
#endif
  ThreadPool* pool_ = nullptr;
  TextTokenizer tokenizer_;
  Sampler sampler_;
  Model model_;
  ChatFormat chat_;
  KvSequence sequences_[kMaxSequences];
  KvSequence window_sequences_[kMaxSequences];  // their sliding-window layers (Model::window_kv)
  int32_t* history_[kMaxSequences] = {};
  uint32_t n_sequences_ = 0;
  double open_ms_ = 0;
};

// The limits Engine::open runs with: the caller's, falling back to the blob's
// defaults `d` field by field (logit_rows and threads default to 1).
RunLimits resolve_run_limits(const EngineOptions& o, const RunLimits& d);

// When `limits` are exactly the blob's default limits (one thread, full KV
// pool), `plan` must equal the plan the packer stored in the blob; otherwise
// kBadLayout naming both. Other limits have nothing stored to compare with.
Status check_stored_plan(const ModelFile& file, const RunLimits& limits, const MemoryPlan& plan);

// Map CPU features detected by port/ to the kernel layer's ISA bits.
uint32_t host_isa_bits();

}  // namespace tern
