#include "runtime/memory_plan.h"

#include <cstdint>

#include "arena/arena.h"
#include "runtime/blob_format.h"
#include "runtime/kv_pages.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "runtime/sampler.h"
#include "runtime/text_tokenizer.h"

namespace tern {

namespace {
constexpr uint32_t kMaxContextLimit = 1u << 20;
constexpr uint32_t kMaxSequencesLimit = 256;
constexpr uint32_t kMaxChunk = 4096;
constexpr uint32_t kMaxThreads = 64;

// A sum of products in 64 bits, every step checked: the plan is first
// computed this way, and refused if it overflows or exceeds size_t (a 32-bit
// device), so the size_t arithmetic below can never wrap.
struct CheckedSum {
  uint64_t total = 0;
  bool ok = true;
  // total += align_up(a * b * c * d, 64)
  void add(uint64_t a, uint64_t b = 1, uint64_t c = 1, uint64_t d = 1) {
    uint64_t x = 0;
    ok = ok && blob::checked_mul(a, b, &x) && blob::checked_mul(x, c, &x) && blob::checked_mul(x, d, &x) &&
         blob::checked_add(x, 63, &x) && blob::checked_add(total, x / 64 * 64, &total);
  }
};

// Upper bound of every arena byte the plan below counts (each buffer padded
// to 64 bytes); false if it does not fit size_t.
bool plan_fits_size_t(const ModelShape& s, const RunLimits& l, uint64_t n_blocks, uint64_t blocks_per_seq) {
  const uint64_t c = l.prefill_chunk;
  const uint64_t q_dim = uint64_t(s.heads) * s.head_dim, kv_dim = uint64_t(s.kv_heads) * s.head_dim;
  const uint64_t wide = q_dim > s.dim ? q_dim : s.dim;
  const uint64_t max_cols = wide > s.ffn ? wide : s.ffn;
  CheckedSum sum;
  sum.add(s.layers, kLayerWeightsArenaBytes);
  sum.add(c, 2 * uint64_t(s.dim) + wide + q_dim + 2 * kv_dim + 2 * uint64_t(s.ffn) + 2 * uint64_t(s.rope_dim), 4);
  sum.add(l.threads, l.max_context, 4);
  sum.add(c, max_cols, 2);
  sum.add(c, max_cols / 32, 8);
  sum.add(l.logit_rows, s.vocab, 4);
  sum.add(c, 4 + 4 + 8 + 1);  // batch rows: token, position, sequence, wants-logits
  sum.add(uint64_t(s.layers) * 2, n_blocks, uint64_t(l.kv_block_tokens) * kv_dim, 2);  // f16 K and V
  sum.add(n_blocks, 4 + 2);                                                          // free list, refs
  sum.add(n_blocks, 8 + 8 + 1 + 8 + 16 + uint64_t(l.kv_block_tokens) * 4);             // prefix cache (bound)
  sum.add(l.max_sequences, blocks_per_seq, 4);                                       // block tables
  sum.add(l.max_sequences, l.max_context, 4);                                        // token histories
  sum.add(64);
  // Tokenizer and sampler tables: bounded by the vocabulary limits (2^22
  // tokens, 4 merges each) at well under 2 GiB; counted as 1 KiB per token
  // and 64 bytes per merge, far above what they take.
  sum.add(s.n_tokens, 1024);
  sum.add(s.n_merges, 64);
  // SentencePiece: decoded texts, and ~80 bytes of scratch per text byte an
  // encode takes (counted as 128; SpmTokenizer::kMaxTextBytes at most).
  if (s.tokenizer_model == uint32_t(blob::tok::Model::kSentencePiece)) {
    sum.add(s.token_text_bytes);
    sum.add(TextTokenizer::text_bytes_for_context(l.max_context), 128);
  }
  sum.add(s.vocab, 64);
  return sum.ok && sum.total <= uint64_t(SIZE_MAX);
}
}  // namespace

size_t model_buffer_specs(const ModelShape& s, const RunLimits& l, BufferSpec* specs) {
  const size_t c = l.prefill_chunk;
  const size_t q_dim = size_t(s.heads) * s.head_dim;
  const size_t kv_dim = size_t(s.kv_heads) * s.head_dim;
  const size_t wide = q_dim > s.dim ? q_dim : s.dim;
  size_t max_cols = wide > s.ffn ? wide : s.ffn;
  const size_t f = sizeof(float);
  size_t n = 0;
  specs[n++] = {"model", size_t(s.layers) * kLayerWeightsArenaBytes};
  specs[n++] = {"activations", c * s.dim * f};           // x
  specs[n++] = {"activations", c * wide * f};            // xb
  specs[n++] = {"activations", c * q_dim * f};           // q
  specs[n++] = {"activations", c * kv_dim * f};          // k
  specs[n++] = {"activations", c * kv_dim * f};          // v
  specs[n++] = {"activations", c * s.ffn * f};           // hb
  specs[n++] = {"activations", c * s.ffn * f};           // hb2
  specs[n++] = {"activations", c * s.dim * f};           // proj
  specs[n++] = {"activations", c * s.rope_dim * s.rope_tables * f};  // rope cos/sin, per table
  specs[n++] = {"activations", size_t(l.threads) * l.max_context * f};  // scores
  specs[n++] = {"activations", c * max_cols};            // act_q
  specs[n++] = {"activations", c * max_cols};            // act_r
  specs[n++] = {"activations", c * (max_cols / 32) * f}; // act_d
  specs[n++] = {"activations", c * (max_cols / 32) * f}; // act_s
  specs[n++] = {"logits", size_t(l.logit_rows) * s.vocab * f};
  specs[n++] = {"activations", c * sizeof(int32_t)};      // row_token
  specs[n++] = {"activations", c * sizeof(uint32_t)};     // row_pos
  // row_seq: 8 bytes per pointer on every target, so that the plan the
  // packer stores (on a 64-bit host) is the one a 32-bit device computes.
  static_assert(sizeof(KvSequence*) <= 8, "row_seq slots are 8 bytes");
  specs[n++] = {"activations", c * 8};
  specs[n++] = {"activations", c};                        // row_logits
  return n;
}

bool plan_memory(const ModelShape& s, const RunLimits& l, MemoryPlan* out, const char** why) {
  *out = MemoryPlan{};
  const char* dummy;
  if (!why) why = &dummy;
  if (l.max_context == 0 || l.max_context > kMaxContextLimit) { *why = "max_context must be in [1, 2^20]"; return false; }
  if (l.max_sequences == 0 || l.max_sequences > kMaxSequencesLimit) { *why = "max_sequences must be in [1, 256]"; return false; }
  if (l.prefill_chunk == 0 || l.prefill_chunk > kMaxChunk) { *why = "prefill_chunk must be in [1, 4096]"; return false; }
  if (l.kv_block_tokens == 0 || l.kv_block_tokens > 1024 || (l.kv_block_tokens & (l.kv_block_tokens - 1)) != 0) {
    *why = "kv_block_tokens must be a power of two in [1, 1024]";
    return false;
  }
  if (l.logit_rows == 0 || l.logit_rows > l.prefill_chunk) { *why = "logit_rows must be in [1, prefill_chunk]"; return false; }
  if (l.threads == 0 || l.threads > kMaxThreads) { *why = "threads must be in [1, 64]"; return false; }
  if (uint64_t(l.kv_blocks) > uint64_t(l.max_sequences) * ((l.max_context + l.kv_block_tokens - 1) / l.kv_block_tokens)) {
    *why = "kv_blocks exceeds what max_sequences full contexts can use";
    return false;
  }
  if (s.layers == 0 || s.dim == 0 || s.vocab == 0 || s.head_dim == 0 || s.kv_heads == 0) { *why = "empty model shape"; return false; }
  if (s.rope_tables == 0 || s.rope_tables > 2) { *why = "rope_tables must be 1 or 2"; return false; }
  if (l.kv_type != KvType::kF16 && l.kv_type != KvType::kInt8) { *why = "unknown KV type (f16 or int8)"; return false; }
  if (l.kv_type == KvType::kInt8 && s.head_dim % kKvTile != 0) {
    *why = "int8 KV needs a head_dim that is a multiple of 16 (the int8 attention's step): use --kv f16";
    return false;
  }
  if (l.kv_type == KvType::kInt8 && l.kv_block_tokens % kKvTile != 0) {
    *why = "int8 KV needs kv_block_tokens of at least 16 (its tiles are 16 positions)";
    return false;
  }

  {
    const uint64_t per_seq = (uint64_t(l.max_context) + l.kv_block_tokens - 1) / l.kv_block_tokens;
    const uint64_t blocks = l.kv_blocks ? l.kv_blocks : per_seq * l.max_sequences;
    if (blocks > kMaxKvBlocks) {
      *why = "the KV pool would need more than 2^24 - 1 blocks: raise kv_block_tokens or lower max_context, "
             "max_sequences or kv_blocks";
      return false;
    }
    if (!plan_fits_size_t(s, l, blocks, per_seq)) {
      *why = "the arena for these limits does not fit this machine's address space";
      return false;
    }
  }

  const size_t a = Arena::kDefaultAlign;
  BufferSpec specs[kMaxBufferSpecs] = {};
  const size_t n = model_buffer_specs(s, l, specs);
  for (size_t i = 0; i < n; ++i) {
    const size_t bytes = arena_align_up(specs[i].bytes, a);
    if (specs[i].region[0] == 'l') out->logits += bytes; else out->activations += bytes;
  }
  const uint32_t blocks_per_seq = (l.max_context + l.kv_block_tokens - 1) / l.kv_block_tokens;
  // Sliding-window layers in a pool of their own when that is smaller: each
  // sequence then holds at most window_blocks of it (see kv_pages.h).
  const uint32_t ring = KvPool::window_blocks(s.window, l.prefill_chunk, l.kv_block_tokens);
  const bool split = s.sliding_layers > 0 && s.sliding_layers < s.layers && s.window > 0 && ring < blocks_per_seq;
  KvPoolShape kv;
  kv.layers = split ? s.layers - s.sliding_layers : s.layers;
  kv.kv_heads = s.kv_heads;
  kv.head_dim = s.head_dim;
  kv.block_tokens = l.kv_block_tokens;
  kv.type = l.kv_type;
  kv.n_blocks = l.kv_blocks ? l.kv_blocks : blocks_per_seq * l.max_sequences;  // <= kMaxKvBlocks, checked above
  // The prefix cache shares whole blocks between sequences, in both pools:
  // the window pool's blocks a sequence gives back stay registered until
  // evicted, so a cached prefix brings its window along (kv_pages.h).
  kv.prefix_cache = true;
  out->kv_block_count = kv.n_blocks;
  out->kv_blocks = KvPool::arena_bytes(kv, l.max_sequences, blocks_per_seq);
  out->kv_bytes_per_token = KvPool::bytes_per_token(kv);
  if (split) {
    KvPoolShape w = kv;
    w.layers = s.sliding_layers;
    w.n_blocks = ring * l.max_sequences;  // ring < blocks_per_seq <= 2^20: no overflow
    if (w.n_blocks > kMaxKvBlocks) {
      *why = "the sliding-window KV pool would need more than 2^24 - 1 blocks: raise kv_block_tokens";
      return false;
    }
    out->window_layers = w.layers;
    out->window_kv_block_count = w.n_blocks;
    out->window_kv_bytes = KvPool::arena_bytes(w, l.max_sequences, blocks_per_seq);
    out->kv_blocks += out->window_kv_bytes;
  }
  // Tokenizer tables plus each sequence's token history [max_context] ids.
  out->tokenizer = TextTokenizer::arena_bytes(s, TextTokenizer::text_bytes_for_context(l.max_context)) +
                   size_t(l.max_sequences) * arena_align_up(size_t(l.max_context) * sizeof(int32_t), a);
  out->sampler = Sampler::arena_bytes(s.vocab);
  // One alignment's slack: a caller buffer need not start 64-byte aligned.
  out->total = out->activations + out->kv_blocks + out->logits + out->tokenizer + out->sampler + a;
  return true;
}

}  // namespace tern
