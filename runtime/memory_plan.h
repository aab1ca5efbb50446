// The arena plan: exactly how many bytes the runtime takes from its arena for
// a model shape and a set of run limits, by category. The packer computes it
// (and stores the inputs as the blob's defaults); the runtime computes it again
// at init for the limits it is started with and refuses a smaller arena.
// Model::init allocates in exactly this order and these sizes, and a test
// checks that the arena's regions equal the plan byte for byte.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"  // KvType

namespace tern {

struct ModelShape {
  uint32_t layers = 0;
  uint32_t dim = 0;
  uint32_t heads = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t ffn = 0;
  uint32_t vocab = 0;
  uint32_t rope_dim = 0;
  // Tokenizer sizes, for its lookup tables (the blob's tokenizer section header).
  uint32_t n_tokens = 0;
  uint32_t n_merges = 0;
  uint32_t tokenizer_model = 1;   // blob::tok::Model: 1 byte-level BPE, 2 SentencePiece
  uint32_t token_text_bytes = 0;  // pool_bytes: all token texts (SentencePiece decodes them into the arena)
  uint32_t rope_tables = 1;  // distinct (rope base, scaling) among the layers: 1 or 2 (gemma3: local and global)
  // Sliding-window layers and their (largest) window: they get their own KV
  // pool whose blocks are recycled as the window moves (kv_pages.h).
  uint32_t sliding_layers = 0;
  uint32_t window = 0;
};

struct RunLimits {
  uint32_t max_context = 2048;   // tokens per sequence
  uint32_t max_sequences = 1;    // sequences sharing the KV pool
  uint32_t prefill_chunk = 64;   // tokens per batched forward call
  uint32_t kv_block_tokens = 16; // tokens per KV block
  uint32_t logit_rows = 1;       // logits rows kept per forward call (1, or prefill_chunk for scoring)
  uint32_t threads = 1;          // worker threads (per-thread attention scratch)
  uint32_t kv_blocks = 0;        // KV pool size in blocks; 0 = every sequence's full context.
                                 // Fewer over-commits the pool: sequences then compete for
                                 // blocks and a full pool is the documented kKvFull error.
  KvType kv_type = KvType::kF16; // KV cache element: f16, or int8 with one f32 scale per
                                 // (token, kv head) for K and for V (kernels/kernels.h)
};

struct MemoryPlan {
  size_t activations = 0;  // residual stream, norms, q/k/v, attention, MLP, quantized copies, RoPE
  size_t kv_blocks = 0;    // KV block pool + block tables + free list
  size_t logits = 0;       // [logit_rows, vocab] floats
  size_t tokenizer = 0;    // tokenizer tables, encode scratch, token histories
  size_t sampler = 0;      // candidate buffers
  size_t total = 0;        // sum of the above, with alignment padding
  uint32_t kv_block_count = 0;  // blocks in the pool (of the global layers when split)
  size_t kv_bytes_per_token = 0;  // K and V (values + scales) of the layers whose cache grows with the context
  // The sliding-window pool, when the model has sliding layers whose window
  // (plus a prefill chunk) is shorter than the context: window_layers layers,
  // window_kv_block_count blocks (window_blocks per sequence), counted in
  // kv_blocks. Its size does not grow with max_context.
  uint32_t window_layers = 0;
  uint32_t window_kv_block_count = 0;
  size_t window_kv_bytes = 0;
};

// Validate limits against the shape: nonzero, powers where required, no overflow.
// Returns false (and a static reason) if they cannot be planned.
bool plan_memory(const ModelShape& shape, const RunLimits& limits, MemoryPlan* out, const char** why);

}  // namespace tern
