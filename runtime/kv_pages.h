// Paged KV cache: a pool of fixed-size blocks shared by every sequence, a
// free list, and a block table per sequence (vLLM's PagedAttention layout).
// A sequence never owns contiguous KV memory; growing it takes blocks from
// the free list, resetting it returns them. Sharing a block between sequences
// (prefix sharing, beam/speculative forks) is a reference count away: each
// block carries one.
//
// Prefix cache (pools made with prefix_cache): a full block's identity is a
// hash of (its parent block's hash, its token ids), kept with the tokens
// themselves so a hit is verified exactly. commit_blocks() registers a
// sequence's full blocks; match_prefix() gives a new sequence the registered
// blocks its prompt starts with (shared, refcounted, read-only: a write into
// a shared or registered block copies it first). A registered block nobody
// holds is not freed but kept, least recently released first in line to be
// evicted when the free list is empty: a system prompt shared by many
// requests is prefilled once and stays while the pool has room.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "kernels/kernels.h"
#include "runtime/status.h"

namespace tern {

// The most blocks one pool holds. plan_memory refuses limits that need more,
// so a plan it reports is a plan KvPool::init accepts (one constant for both).
constexpr uint32_t kMaxKvBlocks = 0xffffffu;  // 2^24 - 1

struct KvPoolShape {
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t block_tokens = 16;
  uint32_t n_blocks = 0;
  bool prefix_cache = false;  // keep hashes, tokens and an eviction list per block
  KvType type = KvType::kF16; // kInt8: blocks in the int8 layout of kernels/kernels.h (scales inside)
};

// One sequence's view of the pool.
struct KvSequence {
  uint32_t* block_table = nullptr;  // [max_blocks]
  uint32_t max_blocks = 0;          // ceil(max_context / block_tokens)
  uint32_t n_blocks = 0;            // logical blocks [0, n_blocks) covered
  uint32_t n_past = 0;              // positions [0, n_past) hold valid K/V
  // Sliding-window pools recycle: logical blocks below first_block were given
  // back (their table entries are stale); [first_block, n_blocks) are held.
  uint32_t first_block = 0;
  // The same sequence's sliding-window layers, in the model's window pool
  // (null when the model has none): truncate and fork follow it.
  KvSequence* window = nullptr;
  // Prefix cache: blocks [0, hashed_blocks) have their chain hash set.
  uint32_t hashed_blocks = 0;
};

class KvPool {
 public:
  // Arena bytes for the pool, the free list and `sequences` block tables.
  static size_t arena_bytes(const KvPoolShape& shape, uint32_t sequences, uint32_t max_blocks_per_seq);

  Status init(const KvPoolShape& shape, Arena* arena);
  // Give `seq` a block table of `max_blocks` entries from the arena (init time only).
  Status init_sequence(KvSequence* seq, uint32_t max_blocks, Arena* arena);

  // Make room for positions [0, new_len): takes blocks as needed. On failure
  // (kKvFull, kContextFull) the sequence is exactly as it was. A window pool
  // first gives back the blocks wholly below position keep_from (no longer
  // visible to any query of this call), so a sequence holds at most
  // window_blocks(window, chunk) blocks however long it grows.
  Status reserve(KvSequence* seq, uint32_t new_len, uint32_t keep_from = 0);
  // Blocks one sequence of a window pool ever holds: a chunk of `chunk`
  // queries starting at p sees positions [p + 1 - window, p + chunk).
  static uint32_t window_blocks(uint32_t window, uint32_t chunk, uint32_t block_tokens) {
    return (window + chunk - 1 + block_tokens - 1) / block_tokens + 1;
  }
  // The pool that holds the sliding-window layers of the same sequences,
  // whose queries see `window` positions (themselves included): truncate,
  // reset, fork and the prefix cache of a sequence here also apply to
  // seq->window.
  void set_window_pool(KvPool* pool, uint32_t window) {
    window_pool_ = pool;
    window_ = window;
  }
  // Drop positions >= new_len (rewind), returning whole blocks no longer needed.
  void truncate(KvSequence* seq, uint32_t new_len);
  void reset(KvSequence* seq) { truncate(seq, 0); }

  // Share every block of `src` with `dst` (reset first): copy-free fork for prefix sharing.
  Status fork(const KvSequence& src, KvSequence* dst);

  // The kernel view of one layer for one sequence.
  PagedKv layer_view(const KvSequence& seq, uint32_t layer) const;

  // Prefix cache. match_prefix: `seq` must be empty (reset); it takes the
  // registered blocks that tokens[0, n) starts with, at most the whole
  // blocks before the last token (whose logits must be computed), and
  // returns the positions they cover (n_past is set to it). With a window
  // pool the hit P also needs, in that pool, the registered blocks of the
  // positions the next query sees ([P + 1 - window, P)), which seq->window
  // takes (the blocks before them are never read again, so an evicted one
  // does not matter); P is the longest prefix both pools hold. commit_blocks:
  // registers seq's full blocks not yet hashed (and seq->window's still
  // held); tokens[0, seq->n_past) are its ids. Both do nothing on a pool
  // without prefix_cache.
  uint32_t match_prefix(KvSequence* seq, const int32_t* tokens, uint32_t n);
  void commit_blocks(KvSequence* seq, const int32_t* tokens);
  // Registered blocks no sequence holds (counted in free_blocks: evictable).
  uint32_t cached_idle_blocks() const { return n_idle_; }
  // Forget every idle registered block (here and in the window pool), as if
  // evicted: a cold prefix cache (benchmark repetitions measure their own
  // prefill). Blocks sequences hold stay as they are.
  void drop_idle_cache();
  // Whether block b is registered in the prefix cache (read-only until evicted).
  bool is_registered(uint32_t b) const { return registered(b); }
  uint64_t evictions() const { return evictions_; }
  // The K and V pools of one layer: f16 elements (kF16 pools) ...
  uint16_t* k_layer(uint32_t layer) { return reinterpret_cast<uint16_t*>(k_bytes(layer)); }
  uint16_t* v_layer(uint32_t layer) { return reinterpret_cast<uint16_t*>(v_bytes(layer)); }
  // ... or bytes (either type).
  uint8_t* k_bytes(uint32_t layer) { return pool_ + (size_t(layer) * 2) * layer_bytes_; }
  uint8_t* v_bytes(uint32_t layer) { return pool_ + (size_t(layer) * 2 + 1) * layer_bytes_; }

  const KvPoolShape& shape() const { return shape_; }
  // Blocks a sequence can take: free ones and idle cached ones (evicted on demand).
  uint32_t free_blocks() const { return n_free_ + n_idle_; }
  uint32_t used_blocks() const { return shape_.n_blocks - n_free_ - n_idle_; }
  // Bytes of K and V per token across all layers: f16 2 * head_dim per (K or
  // V, kv head), int8 head_dim values + one f32 scale.
  size_t bytes_per_token() const { return bytes_per_token(shape_); }
  static size_t bytes_per_token(const KvPoolShape& s) {
    const size_t per_head = s.type == KvType::kInt8 ? size_t(s.head_dim) + sizeof(float) : size_t(s.head_dim) * 2;
    return size_t(s.layers) * 2 * s.kv_heads * per_head;
  }
  // Bytes of one K or V block.
  static size_t block_bytes(const KvPoolShape& s) {
    return s.type == KvType::kInt8 ? kv_i8_block_bytes(s.block_tokens, s.kv_heads, s.head_dim)
                                   : size_t(s.block_tokens) * s.kv_heads * s.head_dim * sizeof(uint16_t);
  }
  uint32_t refcount(uint32_t block) const { return refs_[block]; }

 private:
  void release_block(uint32_t block);
  // A free block, else the least recently released idle cached one (its
  // registration dropped). The caller checked free_blocks() first.
  uint32_t take_block();
  bool registered(uint32_t block) const { return cache_ && cached_[block] != 0; }
  // Hash table of registered blocks: open addressing, linear probing.
  uint32_t* find_slot(uint64_t hash, uint64_t parent, const int32_t* tokens);
  // The registered block of this identity, or kNoBlock.
  uint32_t lookup(uint64_t hash, uint64_t parent, const int32_t* tokens) {
    const uint32_t e = *find_slot(hash, parent, tokens);
    return e == 0 ? kNoBlock : e - 1;
  }
  void hold(uint32_t block);  // one more holder of a registered block (out of the idle list)
  void table_insert(uint32_t block);
  void table_erase(uint32_t block);
  void idle_push(uint32_t block);  // to the tail (most recent)
  void idle_unlink(uint32_t block);

  KvPoolShape shape_;
  uint8_t* pool_ = nullptr;    // [layers][2][n_blocks] blocks of block_bytes_ (f16 [block_tokens][kv_heads][head_dim],
                               // or the int8 layout of kernels/kernels.h)
  size_t block_bytes_ = 0;     // bytes per block
  size_t layer_bytes_ = 0;     // bytes per (layer, K or V) pool
  uint32_t* free_list_ = nullptr;  // stack of free block ids [n_blocks]
  uint32_t n_free_ = 0;
  uint16_t* refs_ = nullptr;   // [n_blocks] sequences holding each block
  KvPool* window_pool_ = nullptr;
  uint32_t window_ = 0;
  // Prefix cache (null without it).
  bool cache_ = false;
  uint64_t* chain_ = nullptr;   // [n_blocks] the block's chain hash (0: not computed)
  uint64_t* parent_ = nullptr;  // [n_blocks] its parent's chain hash
  int32_t* tokens_ = nullptr;   // [n_blocks][block_tokens] its token ids
  uint8_t* cached_ = nullptr;   // [n_blocks] 1: in the hash table
  uint32_t* idle_prev_ = nullptr, *idle_next_ = nullptr;  // [n_blocks] idle list links
  uint32_t idle_head_ = kNoBlock, idle_tail_ = kNoBlock, n_idle_ = 0;
  uint32_t* table_ = nullptr;   // [table_size_] block + 1, 0 empty
  uint32_t table_size_ = 0;
  uint64_t evictions_ = 0;
  static constexpr uint32_t kNoBlock = 0xffffffffu;
};

}  // namespace tern
