#include "runtime/kv_pages.h"

namespace tern {

namespace {
size_t pool_bytes(const KvPoolShape& s) { return size_t(s.layers) * 2 * s.n_blocks * KvPool::block_bytes(s); }

// Hash table slots: a power of two at least twice the blocks (load <= 1/2).
uint32_t table_slots(uint32_t n_blocks) {
  uint32_t t = 1;
  while (t < 2 * n_blocks) t <<= 1;
  return t;
}

// Chain hash of a block: its parent's hash and its token ids, mixed with
// splitmix64's finalizer per token. Never 0 (0 marks "not computed").
constexpr uint64_t kRootHash = 0x7465726e2d6b7631ull;  // "tern-kv1": the parent of a first block
uint64_t chain_hash(uint64_t parent, const int32_t* tokens, uint32_t n) {
  uint64_t h = parent;
  for (uint32_t i = 0; i < n; ++i) {
    h ^= uint64_t(uint32_t(tokens[i])) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return h ? h : 1;
}
}  // namespace

size_t KvPool::arena_bytes(const KvPoolShape& s, uint32_t sequences, uint32_t max_blocks_per_seq) {
  const size_t a = Arena::kDefaultAlign;
  size_t bytes = arena_align_up(pool_bytes(s), a);
  bytes += arena_align_up(size_t(s.n_blocks) * sizeof(uint32_t), a);
  bytes += arena_align_up(size_t(s.n_blocks) * sizeof(uint16_t), a);
  bytes += size_t(sequences) * arena_align_up(size_t(max_blocks_per_seq) * sizeof(uint32_t), a);
  if (s.prefix_cache) {
    const size_t n = s.n_blocks;
    bytes += 2 * arena_align_up(n * sizeof(uint64_t), a);                     // chain, parent
    bytes += arena_align_up(n * s.block_tokens * sizeof(int32_t), a);          // tokens
    bytes += arena_align_up(n, a);                                             // cached
    bytes += 2 * arena_align_up(n * sizeof(uint32_t), a);                     // idle links
    bytes += arena_align_up(size_t(table_slots(s.n_blocks)) * sizeof(uint32_t), a);  // hash table
  }
  return bytes;
}

Status KvPool::init(const KvPoolShape& s, Arena* arena) {
  if (s.layers == 0 || s.kv_heads == 0 || s.head_dim == 0 || s.block_tokens == 0 || s.n_blocks == 0 ||
      s.n_blocks > kMaxKvBlocks ||
      (s.type == KvType::kInt8 && (s.block_tokens % kKvTile != 0 || s.head_dim % kKvTile != 0))) {
    return Status::error(StatusCode::kInvalidArgument, "invalid KV pool shape (%u blocks of %u tokens)", s.n_blocks,
                         s.block_tokens);
  }
  shape_ = s;
  block_bytes_ = block_bytes(s);
  layer_bytes_ = block_bytes_ * s.n_blocks;
  pool_ = arena->allocate_array<uint8_t>(pool_bytes(s), "kv_blocks");
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
  cache_ = s.prefix_cache;
  n_idle_ = 0;
  idle_head_ = idle_tail_ = kNoBlock;
  evictions_ = 0;
  if (cache_) {
    const size_t n = s.n_blocks;
    table_size_ = table_slots(s.n_blocks);
    chain_ = arena->allocate_array<uint64_t>(n, "kv_blocks");
    parent_ = arena->allocate_array<uint64_t>(n, "kv_blocks");
    tokens_ = arena->allocate_array<int32_t>(n * s.block_tokens, "kv_blocks");
    cached_ = arena->allocate_array<uint8_t>(n, "kv_blocks");
    idle_prev_ = arena->allocate_array<uint32_t>(n, "kv_blocks");
    idle_next_ = arena->allocate_array<uint32_t>(n, "kv_blocks");
    table_ = arena->allocate_array<uint32_t>(table_size_, "kv_blocks");
    if (!chain_ || !parent_ || !tokens_ || !cached_ || !idle_prev_ || !idle_next_ || !table_) {
      return Status::error(StatusCode::kArenaTooSmall, "arena too small for the prefix cache of %u KV blocks",
                           s.n_blocks);
    }
    for (size_t i = 0; i < n; ++i) {
      chain_[i] = 0;
      cached_[i] = 0;
    }
    for (uint32_t i = 0; i < table_size_; ++i) table_[i] = 0;
  }
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
  // A registered block (prefix cache) is read-only too: other sequences may
  // match it later by its hash.
  const bool cow = new_len > seq->n_past && write_block < seq->n_blocks &&
                   (refs_[seq->block_table[write_block]] > 1 || registered(seq->block_table[write_block]));
  const uint32_t extra = (need > seq->n_blocks ? need - seq->n_blocks : 0) + (cow ? 1 : 0);
  if (extra == 0) return Status::ok();
  if (extra > free_blocks()) {
    return Status::error(StatusCode::kKvFull,
                         "KV pool exhausted: %u more blocks of %u tokens needed, %u free of %u (reset a sequence)",
                         extra, shape_.block_tokens, free_blocks(), shape_.n_blocks);
  }
  if (cow) {
    const uint32_t old_block = seq->block_table[write_block];
    const uint32_t b = take_block();
    // The whole block: an int8 block's scales are inside it (kernels/kernels.h).
    for (uint32_t l = 0; l < shape_.layers * 2; ++l) {
      uint8_t* base = pool_ + size_t(l) * layer_bytes_;
      const uint8_t* from = base + size_t(old_block) * block_bytes_;
      uint8_t* to = base + size_t(b) * block_bytes_;
      for (size_t i = 0; i < block_bytes_; ++i) to[i] = from[i];
    }
    seq->block_table[write_block] = b;
    release_block(old_block);  // still held by others, or idle in the cache
  }
  while (seq->n_blocks < need) seq->block_table[seq->n_blocks++] = take_block();
  return Status::ok();
}

uint32_t KvPool::take_block() {
  uint32_t b;
  if (n_free_ > 0) {
    b = free_list_[--n_free_];
  } else {  // evict the least recently released cached block
    b = idle_head_;
    idle_unlink(b);
    table_erase(b);
    ++evictions_;
  }
  refs_[b] = 1;
  if (cache_) chain_[b] = 0;  // new contents
  return b;
}

void KvPool::release_block(uint32_t block) {
  if (refs_[block] == 0 || --refs_[block] > 0) return;
  if (registered(block)) {
    idle_push(block);  // kept for a later match, evicted when blocks run out
  } else {
    free_list_[n_free_++] = block;
  }
}

void KvPool::drop_idle_cache() {
  while (n_idle_ > 0) {
    const uint32_t b = idle_head_;
    idle_unlink(b);
    table_erase(b);
    chain_[b] = 0;
    free_list_[n_free_++] = b;
  }
  if (window_pool_ != nullptr) window_pool_->drop_idle_cache();
}

void KvPool::idle_push(uint32_t b) {
  idle_prev_[b] = idle_tail_;
  idle_next_[b] = kNoBlock;
  if (idle_tail_ != kNoBlock) idle_next_[idle_tail_] = b; else idle_head_ = b;
  idle_tail_ = b;
  ++n_idle_;
}

void KvPool::idle_unlink(uint32_t b) {
  const uint32_t p = idle_prev_[b], n = idle_next_[b];
  if (p != kNoBlock) idle_next_[p] = n; else idle_head_ = n;
  if (n != kNoBlock) idle_prev_[n] = p; else idle_tail_ = p;
  --n_idle_;
}

// The slot holding a registered block of this identity, or the empty slot
// where it would go.
uint32_t* KvPool::find_slot(uint64_t hash, uint64_t parent, const int32_t* tokens) {
  const uint32_t mask = table_size_ - 1, bt = shape_.block_tokens;
  for (uint32_t i = uint32_t(hash) & mask;; i = (i + 1) & mask) {
    const uint32_t e = table_[i];
    if (e == 0) return &table_[i];
    const uint32_t b = e - 1;
    if (chain_[b] == hash && parent_[b] == parent) {
      bool same = true;
      for (uint32_t k = 0; k < bt && same; ++k) same = tokens_[size_t(b) * bt + k] == tokens[k];
      if (same) return &table_[i];
    }
  }
}

void KvPool::table_insert(uint32_t b) {
  uint32_t* slot = find_slot(chain_[b], parent_[b], tokens_ + size_t(b) * shape_.block_tokens);
  if (*slot != 0) return;  // an identical block is registered already: this one stays private
  *slot = b + 1;
  cached_[b] = 1;
}

// Linear-probing deletion by backward shift: later entries of the run move
// up so that every lookup still finds them without tombstones.
void KvPool::table_erase(uint32_t b) {
  const uint32_t mask = table_size_ - 1;
  uint32_t i = uint32_t(chain_[b]) & mask;
  while (table_[i] != b + 1) i = (i + 1) & mask;  // registered: it is there
  table_[i] = 0;
  for (uint32_t j = (i + 1) & mask; table_[j] != 0; j = (j + 1) & mask) {
    const uint32_t home = uint32_t(chain_[table_[j] - 1]) & mask;
    // Move entry j into the hole at i if its home is not in (i, j] cyclically.
    const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      table_[i] = table_[j];
      table_[j] = 0;
      i = j;
    }
  }
  cached_[b] = 0;
}

void KvPool::hold(uint32_t b) {
  if (refs_[b] == 0) idle_unlink(b);
  ++refs_[b];
}

uint32_t KvPool::match_prefix(KvSequence* seq, const int32_t* tokens, uint32_t n) {
  if (!cache_ || seq->n_blocks != 0 || n == 0) return 0;
  KvPool* wp = seq->window != nullptr ? window_pool_ : nullptr;
  if (wp != nullptr && (!wp->cache_ || seq->window->n_blocks != 0)) return 0;
  const uint32_t bt = shape_.block_tokens;
  // The first blocks a sequence resuming at P = i blocks must hold in the
  // window pool: from the block of position P + 1 - window on.
  auto window_from = [&](uint32_t i) {
    const uint32_t p = i * bt;
    return (p + 1 > window_ ? p + 1 - window_ : 0) / bt;
  };
  // One walk over the whole blocks before the last token: `best` blocks is
  // the longest prefix registered here whose window-pool blocks are there
  // too (run: the first block of the run of window-pool blocks ending at i).
  uint32_t best = 0, run = 0;
  uint64_t parent = kRootHash;
  for (uint32_t i = 0; (i + 1) * bt <= n - 1 && i < seq->max_blocks; ++i) {
    const int32_t* t = tokens + size_t(i) * bt;
    const uint64_t h = chain_hash(parent, t, bt);
    if (lookup(h, parent, t) == kNoBlock) break;
    if (wp != nullptr) {
      if (i >= seq->window->max_blocks) break;
      if (wp->lookup(h, parent, t) == kNoBlock) run = i + 1;
      if (run <= window_from(i + 1)) best = i + 1;
    } else {
      best = i + 1;
    }
    parent = h;
  }
  // Take them.
  const uint32_t wfirst = wp != nullptr ? window_from(best) : 0;
  parent = kRootHash;
  for (uint32_t i = 0; i < best; ++i) {
    const int32_t* t = tokens + size_t(i) * bt;
    const uint64_t h = chain_hash(parent, t, bt);
    const uint32_t b = lookup(h, parent, t);
    hold(b);
    seq->block_table[i] = b;
    if (wp != nullptr && i >= wfirst) {
      const uint32_t wb = wp->lookup(h, parent, t);
      wp->hold(wb);
      seq->window->block_table[i] = wb;
    }
    parent = h;
  }
  seq->n_blocks = best;
  seq->n_past = best * bt;
  seq->hashed_blocks = best;
  if (wp != nullptr) {
    KvSequence* w = seq->window;
    w->first_block = best > 0 ? wfirst : 0;
    w->n_blocks = best;
    w->n_past = best * bt;
    w->hashed_blocks = best;
  }
  return seq->n_past;
}

void KvPool::commit_blocks(KvSequence* seq, const int32_t* tokens) {
  if (!cache_) return;
  const uint32_t bt = shape_.block_tokens;
  for (uint32_t i = seq->hashed_blocks; (i + 1) * bt <= seq->n_past && i < seq->n_blocks; ++i) {
    seq->hashed_blocks = i + 1;
    if (i < seq->first_block) continue;  // a window pool gave it back already
    const uint32_t b = seq->block_table[i];
    if (chain_[b] != 0) continue;  // registered, or a copy of a registered block's identity
    // A block this sequence filled: hash it and register it. Its parent's
    // hash from the parent block, or (given back by a window pool) from
    // the token ids, which it is a function of.
    uint64_t parent = kRootHash;
    if (i > 0 && i - 1 >= seq->first_block) {
      parent = chain_[seq->block_table[i - 1]];
    } else {
      for (uint32_t j = 0; j < i; ++j) parent = chain_hash(parent, tokens + size_t(j) * bt, bt);
    }
    chain_[b] = chain_hash(parent, tokens + size_t(i) * bt, bt);
    parent_[b] = parent;
    for (uint32_t k = 0; k < bt; ++k) tokens_[size_t(b) * bt + k] = tokens[size_t(i) * bt + k];
    table_insert(b);
  }
  if (seq->window != nullptr && window_pool_ != nullptr) window_pool_->commit_blocks(seq->window, tokens);
}

void KvPool::truncate(KvSequence* seq, uint32_t new_len) {
  if (new_len < seq->n_past) seq->n_past = new_len;
  const uint32_t keep = (new_len + shape_.block_tokens - 1) / shape_.block_tokens;
  if (seq->hashed_blocks > seq->n_past / shape_.block_tokens) seq->hashed_blocks = seq->n_past / shape_.block_tokens;
  // A kept block cut in the middle will be rewritten: if only this sequence
  // holds it and it is not registered, its hash is stale (a shared or
  // registered one is copied on the next write instead).
  const uint32_t cut = seq->n_past / shape_.block_tokens;
  if (cache_ && seq->n_past % shape_.block_tokens != 0 && cut < seq->n_blocks && cut >= seq->first_block) {
    const uint32_t b = seq->block_table[cut];  // held (a window pool's given-back entries are stale)
    if (refs_[b] == 1 && !registered(b)) chain_[b] = 0;
  }
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
  dst->hashed_blocks = src.hashed_blocks < full ? src.hashed_blocks : full;
  return Status::ok();
}

PagedKv KvPool::layer_view(const KvSequence& seq, uint32_t layer) const {
  PagedKv v;
  const uint8_t* k = pool_ + (size_t(layer) * 2) * layer_bytes_;
  const uint8_t* vv = pool_ + (size_t(layer) * 2 + 1) * layer_bytes_;
  v.type = shape_.type;
  if (shape_.type == KvType::kInt8) {
    v.k_pool = v.v_pool = nullptr;
    v.k_i8 = k;
    v.v_i8 = vv;
    v.block_stride = block_bytes_;
  } else {
    v.k_pool = reinterpret_cast<const uint16_t*>(k);
    v.v_pool = reinterpret_cast<const uint16_t*>(vv);
    v.block_stride = block_bytes_ / sizeof(uint16_t);
  }
  v.block_table = seq.block_table;
  v.block_tokens = shape_.block_tokens;
  v.kv_heads = shape_.kv_heads;
  v.head_dim = shape_.head_dim;
  return v;
}

}  // namespace tern
