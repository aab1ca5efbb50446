#include "runtime/kv_pages.h"

namespace tern {

namespace {
size_t pool_elements(const KvPoolShape& s) {
  return size_t(s.layers) * 2 * s.n_blocks * s.block_tokens * s.kv_heads * s.head_dim;
}
}  // namespace

size_t KvPool::arena_bytes(const KvPoolShape& s, uint32_t sequences, uint32_t max_blocks_per_seq) {
  const size_t a = Arena::kDefaultAlign;
  size_t bytes = arena_align_up(pool_elements(s) * sizeof(uint16_t), a);
  bytes += arena_align_up(size_t(s.n_blocks) * sizeof(uint32_t), a);
  bytes += arena_align_up(size_t(s.n_blocks) * sizeof(uint16_t), a);
  bytes += size_t(sequences) * arena_align_up(size_t(max_blocks_per_seq) * sizeof(uint32_t), a);
  return bytes;
}

Status KvPool::init(const KvPoolShape& s, Arena* arena) {
  if (s.layers == 0 || s.kv_heads == 0 || s.head_dim == 0 || s.block_tokens == 0 || s.n_blocks == 0 ||
      s.n_blocks > kMaxKvBlocks) {
    return Status::error(StatusCode::kInvalidArgument, "invalid KV pool shape (%u blocks of %u tokens)", s.n_blocks,
                         s.block_tokens);
  }
  shape_ = s;
  block_stride_ = size_t(s.block_tokens) * s.kv_heads * s.head_dim;
  layer_stride_ = block_stride_ * s.n_blocks;
  pool_ = arena->allocate_array<uint16_t>(pool_elements(s), "kv_blocks");
  free_list_ = arena->allocate_array<uint32_t>(s.n_blocks, "kv_blocks");
  refs_ = arena->allocate_array<uint16_t>(s.n_blocks, "kv_blocks");
  if (!pool_ || !free_list_ || !refs_) {
    return Status::error(StatusCode::kArenaTooSmall, "arena too small for %u KV blocks", s.n_blocks);
  }
  // Stack order: block 0 is handed out first, so a fresh sequence's blocks are
  // in address order (friendlier to the prefetcher).
  for (uint32_t i = 0; i < s.n_blocks; ++i) {
    free_list_[i] = s.n_blocks - 1 - i;
    refs_[i] = 0;
  }
  n_free_ = s.n_blocks;
  return Status::ok();
}

Status KvPool::init_sequence(KvSequence* seq, uint32_t max_blocks, Arena* arena) {
  *seq = KvSequence{};
  seq->block_table = arena->allocate_array<uint32_t>(max_blocks, "kv_blocks");
  if (!seq->block_table) return Status::error(StatusCode::kArenaTooSmall, "arena too small for a block table");
  seq->max_blocks = max_blocks;
  return Status::ok();
}

Status KvPool::reserve(KvSequence* seq, uint32_t new_len, uint32_t keep_from) {
  const uint64_t need64 = (uint64_t(new_len) + shape_.block_tokens - 1) / shape_.block_tokens;
  if (need64 > seq->max_blocks) {
    return Status::error(StatusCode::kContextFull, "sequence would need %llu positions, its context holds %llu",
                         (unsigned long long)new_len, (unsigned long long)seq->max_blocks * shape_.block_tokens);
  }
  // Recycle: blocks wholly below keep_from go back before new ones are taken.
  const uint32_t drop_below = keep_from / shape_.block_tokens;
  while (seq->first_block < drop_below && seq->first_block < seq->n_blocks) {
    release_block(seq->block_table[seq->first_block++]);
  }
  const uint32_t need = uint32_t(need64);
  // Copy-on-write: the next write goes to position n_past; if that lands in a
  // block another sequence also holds (after fork + truncate), give this
  // sequence a private copy first.
  const uint32_t write_block = seq->n_past / shape_.block_tokens;
  const bool cow = new_len > seq->n_past && write_block < seq->n_blocks && refs_[seq->block_table[write_block]] > 1;
  const uint32_t extra = (need > seq->n_blocks ? need - seq->n_blocks : 0) + (cow ? 1 : 0);
  if (extra == 0) return Status::ok();
  if (extra > n_free_) {
    return Status::error(StatusCode::kKvFull,
                         "KV pool exhausted: %u more blocks of %u tokens needed, %u free of %u (reset a sequence)",
                         extra, shape_.block_tokens, n_free_, shape_.n_blocks);
  }
  if (cow) {
    const uint32_t old_block = seq->block_table[write_block];
    const uint32_t b = free_list_[--n_free_];
    refs_[b] = 1;
    for (uint32_t l = 0; l < shape_.layers * 2; ++l) {
      uint16_t* base = pool_ + size_t(l) * layer_stride_;
      const uint16_t* from = base + size_t(old_block) * block_stride_;
      uint16_t* to = base + size_t(b) * block_stride_;
      for (size_t i = 0; i < block_stride_; ++i) to[i] = from[i];
    }
    --refs_[old_block];
    seq->block_table[write_block] = b;
  }
  while (seq->n_blocks < need) {
    const uint32_t b = free_list_[--n_free_];
    refs_[b] = 1;
    seq->block_table[seq->n_blocks++] = b;
  }
  return Status::ok();
}

void KvPool::release_block(uint32_t block) {
  if (refs_[block] > 0 && --refs_[block] == 0) free_list_[n_free_++] = block;
}

void KvPool::truncate(KvSequence* seq, uint32_t new_len) {
  if (new_len < seq->n_past) seq->n_past = new_len;
  const uint32_t keep = (new_len + shape_.block_tokens - 1) / shape_.block_tokens;
  while (seq->n_blocks > keep) {
    --seq->n_blocks;
    if (seq->n_blocks >= seq->first_block) release_block(seq->block_table[seq->n_blocks]);
  }
  // Rewound below what a window pool still holds: nothing is held; the model
  // refuses to run on until the sequence is reset (its window is gone).
  if (seq->first_block > seq->n_blocks) seq->first_block = seq->n_blocks;
  if (seq->n_blocks == 0) seq->first_block = 0;
  if (seq->window != nullptr && window_pool_ != nullptr) window_pool_->truncate(seq->window, new_len);
}

Status KvPool::fork(const KvSequence& src, KvSequence* dst) {
  reset(dst);
  if (src.window != nullptr && dst->window != nullptr && window_pool_ != nullptr) {
    TERN_RETURN_IF_ERROR(window_pool_->fork(*src.window, dst->window));
  }
  // Only whole blocks are shared, so neither sequence ever writes into a
  // block the other reads: the partial tail block (if any) is left out and
  // the fork resumes from the last block boundary.
  const uint32_t full = src.n_past / shape_.block_tokens;
  if (full > dst->max_blocks) {
    return Status::error(StatusCode::kContextFull, "fork target's context is smaller than the source's");
  }
  const uint32_t first = src.first_block < full ? src.first_block : full;
  for (uint32_t i = first; i < full; ++i) {
    const uint32_t b = src.block_table[i];
    ++refs_[b];
    dst->block_table[i] = b;
  }
  dst->first_block = first;
  dst->n_blocks = full;
  dst->n_past = full * shape_.block_tokens;
  return Status::ok();
}

PagedKv KvPool::layer_view(const KvSequence& seq, uint32_t layer) const {
  PagedKv v;
  v.k_pool = pool_ + (size_t(layer) * 2) * layer_stride_;
  v.v_pool = pool_ + (size_t(layer) * 2 + 1) * layer_stride_;
  v.block_stride = block_stride_;
  v.block_table = seq.block_table;
  v.block_tokens = shape_.block_tokens;
  v.kv_heads = shape_.kv_heads;
  v.head_dim = shape_.head_dim;
  return v;
}

}  // namespace tern
