#include "runtime/kv_pages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/ref/kernels_ref.h"

#include <vector>

namespace tern {
namespace {

class KvPagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buf_.resize(1 << 20);
    arena_.init(buf_.data(), buf_.size());
    shape_.layers = 2;
    shape_.kv_heads = 2;
    shape_.head_dim = 4;
    shape_.block_tokens = 4;
    shape_.n_blocks = 6;
    ASSERT_TRUE(pool_.init(shape_, &arena_).is_ok());
    ASSERT_TRUE(pool_.init_sequence(&a_, 4, &arena_).is_ok());  // 16 positions max
    ASSERT_TRUE(pool_.init_sequence(&b_, 4, &arena_).is_ok());
  }
  std::vector<uint8_t> buf_;
  Arena arena_;
  KvPoolShape shape_;
  KvPool pool_;
  KvSequence a_, b_;
};

TEST_F(KvPagesTest, ReserveTakesWholeBlocksAndResetReturnsThem) {
  ASSERT_TRUE(pool_.reserve(&a_, 1).is_ok());
  EXPECT_EQ(a_.n_blocks, 1u);
  ASSERT_TRUE(pool_.reserve(&a_, 4).is_ok());
  EXPECT_EQ(a_.n_blocks, 1u);
  ASSERT_TRUE(pool_.reserve(&a_, 9).is_ok());
  EXPECT_EQ(a_.n_blocks, 3u);
  EXPECT_EQ(pool_.free_blocks(), 3u);
  pool_.reset(&a_);
  EXPECT_EQ(a_.n_blocks, 0u);
  EXPECT_EQ(pool_.free_blocks(), 6u);
}

TEST_F(KvPagesTest, ContextFullAndPoolFullLeaveSequenceUnchanged) {
  EXPECT_EQ(pool_.reserve(&a_, 17).code(), StatusCode::kContextFull);
  EXPECT_EQ(a_.n_blocks, 0u);
  ASSERT_TRUE(pool_.reserve(&a_, 16).is_ok());  // 4 blocks
  ASSERT_TRUE(pool_.reserve(&b_, 8).is_ok());   // 2 blocks: pool empty
  EXPECT_EQ(pool_.free_blocks(), 0u);
  b_.n_past = 8;
  const Status s = pool_.reserve(&b_, 9);
  EXPECT_EQ(s.code(), StatusCode::kKvFull);
  EXPECT_NE(std::string(s.message()).find("exhausted"), std::string::npos);
  EXPECT_EQ(b_.n_blocks, 2u);
  EXPECT_EQ(b_.n_past, 8u);
  pool_.reset(&a_);
  EXPECT_TRUE(pool_.reserve(&b_, 9).is_ok());  // usable again once blocks are back
}

TEST_F(KvPagesTest, SequencesNeverShareBlocksUnlessForked) {
  ASSERT_TRUE(pool_.reserve(&a_, 8).is_ok());
  ASSERT_TRUE(pool_.reserve(&b_, 8).is_ok());
  for (uint32_t i = 0; i < a_.n_blocks; ++i) {
    for (uint32_t j = 0; j < b_.n_blocks; ++j) EXPECT_NE(a_.block_table[i], b_.block_table[j]);
  }
}

TEST_F(KvPagesTest, ForkSharesFullBlocksAndCopiesOnWrite) {
  ASSERT_TRUE(pool_.reserve(&a_, 6).is_ok());
  a_.n_past = 6;
  // Mark the data so the copy can be checked.
  uint16_t* k0 = pool_.k_layer(0);
  const PagedKv view = pool_.layer_view(a_, 0);
  k0[a_.block_table[0] * view.block_stride] = 1234;
  ASSERT_TRUE(pool_.fork(a_, &b_).is_ok());
  EXPECT_EQ(b_.n_past, 4u);  // only the full block is shared
  EXPECT_EQ(b_.block_table[0], a_.block_table[0]);
  EXPECT_EQ(pool_.refcount(a_.block_table[0]), 2u);
  // b rewinds into the shared block and writes: it must get a private copy.
  pool_.truncate(&b_, 2);
  ASSERT_TRUE(pool_.reserve(&b_, 3).is_ok());
  EXPECT_NE(b_.block_table[0], a_.block_table[0]);
  EXPECT_EQ(pool_.refcount(a_.block_table[0]), 1u);
  EXPECT_EQ(k0[b_.block_table[0] * view.block_stride], 1234);
  pool_.reset(&a_);
  pool_.reset(&b_);
  EXPECT_EQ(pool_.free_blocks(), 6u);
}

TEST_F(KvPagesTest, LayerViewAddressesPerLayerPools) {
  ASSERT_TRUE(pool_.reserve(&a_, 4).is_ok());
  const PagedKv l0 = pool_.layer_view(a_, 0), l1 = pool_.layer_view(a_, 1);
  EXPECT_EQ(l0.k_pool, pool_.k_layer(0));
  EXPECT_EQ(l0.v_pool, pool_.v_layer(0));
  EXPECT_EQ(l1.k_pool, pool_.k_layer(1));
  EXPECT_NE(l0.k_pool, l1.k_pool);
  EXPECT_EQ(l0.block_stride, size_t(4 * 2 * 4));
  EXPECT_EQ(pool_.bytes_per_token(), size_t(2 * 2 * 2 * 4 * 2));
}

// A sliding-window pool (issue 14): reserve(seq, len, keep_from) gives back
// the blocks wholly below keep_from before taking new ones, so a sequence
// that grows forever holds a bounded number of blocks; truncating below what
// it still holds leaves nothing held; fork shares only the held blocks.
TEST(KvWindowPool, RecyclesBlocksBelowTheWindow) {
  KvPoolShape s;
  s.layers = 1;
  s.kv_heads = 1;
  s.head_dim = 4;
  s.block_tokens = 4;
  // Window 6, chunks of 2: the 7 positions a chunk sees straddle at most 3 blocks of 4.
  s.n_blocks = 2 * KvPool::window_blocks(6, 2, 4);
  ASSERT_EQ(KvPool::window_blocks(6, 2, 4), 3u);
  std::vector<uint64_t> mem(4096);
  Arena arena;
  arena.init(mem.data(), mem.size() * 8);
  KvPool pool;
  ASSERT_TRUE(pool.init(s, &arena).is_ok());
  KvSequence a, b;
  ASSERT_TRUE(pool.init_sequence(&a, 64, &arena).is_ok());  // 256 positions
  ASSERT_TRUE(pool.init_sequence(&b, 64, &arena).is_ok());
  // Grow a to 200 positions two at a time, as the model does (keep_from =
  // first query position + 1 - window): never more than 4 blocks held.
  uint32_t most = 0;
  for (uint32_t pos = 0; pos < 200; pos += 2) {
    const uint32_t keep_from = pos + 1 > 6 ? pos + 1 - 6 : 0;
    ASSERT_TRUE(pool.reserve(&a, pos + 2, keep_from).is_ok()) << pos;
    a.n_past = pos + 2;
    // Every position the chunk's queries see is in a held block.
    for (uint32_t p = keep_from; p < pos + 2; ++p) ASSERT_GE(p / 4, a.first_block) << p;
    most = std::max(most, a.n_blocks - a.first_block);
  }
  EXPECT_EQ(most, 3u);
  EXPECT_EQ(pool.used_blocks(), a.n_blocks - a.first_block);
  // Fork shares the held whole blocks only, with refcounts.
  ASSERT_TRUE(pool.fork(a, &b).is_ok());
  EXPECT_EQ(b.first_block, a.first_block);
  EXPECT_EQ(b.n_past, 200u);
  EXPECT_EQ(pool.refcount(a.block_table[a.first_block]), 2u);
  // Truncating below what is held: nothing stays held, first_block follows.
  pool.truncate(&a, 40);
  EXPECT_EQ(a.n_blocks, 10u);
  EXPECT_EQ(a.first_block, 10u);
  EXPECT_EQ(a.n_past, 40u);
  EXPECT_EQ(pool.refcount(b.block_table[b.first_block]), 1u);  // b keeps its shared blocks
  pool.reset(&a);
  pool.reset(&b);
  EXPECT_EQ(a.first_block, 0u);
  EXPECT_EQ(pool.free_blocks(), s.n_blocks);
}

// A sequence's window-pool twin follows its truncate, reset and fork.
TEST(KvWindowPool, FollowsTheGlobalSequence) {
  KvPoolShape s{1, 1, 4, 4, 16};
  std::vector<uint64_t> mem(8192);
  Arena arena;
  arena.init(mem.data(), mem.size() * 8);
  KvPool global, window;
  ASSERT_TRUE(global.init(s, &arena).is_ok());
  ASSERT_TRUE(window.init(s, &arena).is_ok());
  global.set_window_pool(&window, 6);
  KvSequence g0, g1, w0, w1;
  ASSERT_TRUE(global.init_sequence(&g0, 8, &arena).is_ok());
  ASSERT_TRUE(global.init_sequence(&g1, 8, &arena).is_ok());
  ASSERT_TRUE(window.init_sequence(&w0, 8, &arena).is_ok());
  ASSERT_TRUE(window.init_sequence(&w1, 8, &arena).is_ok());
  g0.window = &w0;
  g1.window = &w1;
  ASSERT_TRUE(global.reserve(&g0, 12).is_ok());
  ASSERT_TRUE(window.reserve(&w0, 8, 0).is_ok());
  ASSERT_TRUE(window.reserve(&w0, 12, 5).is_ok());  // block 0 (positions 0..3) is below 5: given back
  g0.n_past = w0.n_past = 12;
  EXPECT_EQ(w0.first_block, 1u);
  ASSERT_TRUE(global.fork(g0, &g1).is_ok());
  EXPECT_EQ(w1.n_past, 12u);
  EXPECT_EQ(w1.first_block, 1u);
  global.truncate(&g0, 8);
  EXPECT_EQ(w0.n_past, 8u);
  EXPECT_EQ(w0.n_blocks, 2u);
  global.reset(&g0);
  global.reset(&g1);
  EXPECT_EQ(window.free_blocks(), 16u);
  EXPECT_EQ(global.free_blocks(), 16u);
}

// The prefix cache with a window pool (issue 16, Gemma 3's layout): blocks of
// 4 tokens, a window of 6 positions. A sequence is filled 4 positions a step
// as the model does it (the window pool given back below what the next
// query sees), its blocks committed, then reset: the window pool's blocks
// stay registered, so a new prompt with that prefix takes the global blocks
// and the window blocks its next query sees, and nothing else.
TEST(KvWindowPool, PrefixCacheBringsTheWindowAlong) {
  KvPoolShape s{1, 1, 4, 4, 16};
  s.prefix_cache = true;
  constexpr uint32_t kWindow = 6;
  std::vector<uint64_t> mem(16384);
  Arena arena;
  arena.init(mem.data(), mem.size() * 8);
  KvPool global, window;
  ASSERT_TRUE(global.init(s, &arena).is_ok());
  ASSERT_TRUE(window.init(s, &arena).is_ok());
  global.set_window_pool(&window, kWindow);
  KvSequence g[3], w[3];
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(global.init_sequence(&g[i], 16, &arena).is_ok());
    ASSERT_TRUE(window.init_sequence(&w[i], 16, &arena).is_ok());
    g[i].window = &w[i];
  }
  std::vector<int32_t> toks(24);
  for (uint32_t k = 0; k < toks.size(); ++k) toks[k] = int32_t(100 + k);
  auto fill = [&](KvSequence* gs, uint32_t to) {
    for (uint32_t p = gs->n_past; p < to; p += 4) {
      const uint32_t end = p + 4 < to ? p + 4 : to;
      ASSERT_TRUE(global.reserve(gs, end).is_ok());
      ASSERT_TRUE(window.reserve(gs->window, end, p + 1 > kWindow ? p + 1 - kWindow : 0).is_ok());
      gs->n_past = gs->window->n_past = end;
      global.commit_blocks(gs, toks.data());
    }
  };
  fill(&g[0], 20);
  ASSERT_EQ(w[0].first_block, 2u);  // the last step's first query (16) saw 11..16
  const uint32_t held[2] = {w[0].block_table[3], w[0].block_table[4]};
  global.reset(&g[0]);
  EXPECT_EQ(window.cached_idle_blocks(), 5u) << "given-back window blocks stay registered";
  EXPECT_EQ(global.cached_idle_blocks(), 5u);

  // The same 20 tokens and 3 more: 5 whole blocks before the last token. A
  // query at 20 sees 15..20: window blocks 3 and 4 only.
  EXPECT_EQ(global.match_prefix(&g[1], toks.data(), 23), 20u);
  EXPECT_EQ(w[1].n_past, 20u);
  EXPECT_EQ(w[1].first_block, 3u);
  EXPECT_EQ(w[1].n_blocks, 5u);
  EXPECT_EQ(w[1].block_table[3], held[0]);
  EXPECT_EQ(w[1].block_table[4], held[1]);
  EXPECT_EQ(window.refcount(held[0]), 1u);
  EXPECT_EQ(window.cached_idle_blocks(), 3u) << "blocks 0..2 stay idle: never read again";
  fill(&g[1], 23);  // goes on from there (the partial block 5 is new)
  EXPECT_EQ(w[1].first_block, 3u);
  EXPECT_EQ(w[1].n_blocks, 6u);

  // A prompt sharing 12 tokens: 3 blocks; a query at 12 sees 7..12, window
  // blocks 1 and 2 (idle, registered).
  std::vector<int32_t> other(toks.begin(), toks.begin() + 12);
  other.push_back(7);
  other.push_back(8);
  EXPECT_EQ(global.match_prefix(&g[2], other.data(), uint32_t(other.size())), 12u);
  EXPECT_EQ(w[2].first_block, 1u);
  EXPECT_EQ(w[2].n_blocks, 3u);
  global.reset(&g[1]);
  global.reset(&g[2]);

  // The window blocks evicted (another sequence takes the whole window
  // pool): the global blocks are still cached, but without their window
  // nothing matches, and nothing is held.
  KvSequence filler;
  ASSERT_TRUE(window.init_sequence(&filler, 16, &arena).is_ok());
  ASSERT_TRUE(window.reserve(&filler, 64).is_ok());
  EXPECT_GT(window.evictions(), 0u);
  EXPECT_EQ(global.match_prefix(&g[1], toks.data(), 23), 0u);
  EXPECT_EQ(g[1].n_blocks, 0u);
  EXPECT_EQ(w[1].n_blocks, 0u);
  EXPECT_EQ(global.used_blocks(), 0u);
  window.reset(&filler);
  EXPECT_EQ(window.used_blocks(), 0u);
  // A cold cache on demand (benchmark repetitions): every idle registered
  // block forgotten, in both pools.
  ASSERT_GT(global.cached_idle_blocks(), 0u);
  global.drop_idle_cache();
  EXPECT_EQ(global.cached_idle_blocks(), 0u);
  EXPECT_EQ(window.cached_idle_blocks(), 0u);
  EXPECT_EQ(global.free_blocks(), 16u);
  EXPECT_EQ(window.free_blocks(), 16u);
  EXPECT_EQ(global.match_prefix(&g[1], toks.data(), 23), 0u);
}

}  // namespace
}  // namespace tern

namespace tern {
namespace {

// The prefix cache (issue 16) at the pool level: registration, matching,
// copy-on-write of registered blocks, eviction and the hash table under
// churn, against an independent record of what each block holds.
class KvPrefixCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buf_.resize(1 << 20);
    arena_.init(buf_.data(), buf_.size());
    shape_.layers = 1;
    shape_.kv_heads = 1;
    shape_.head_dim = 2;
    shape_.block_tokens = 4;
    shape_.n_blocks = 8;
    shape_.prefix_cache = true;
    ASSERT_TRUE(pool_.init(shape_, &arena_).is_ok());
    for (KvSequence& s : seq_) ASSERT_TRUE(pool_.init_sequence(&s, 6, &arena_).is_ok());
  }
  // Append tokens to s as the model does (reserve, then write position p's K
  // as the token id), and register its full blocks.
  void append(KvSequence* s, std::vector<int32_t>* hist, const std::vector<int32_t>& toks) {
    for (int32_t t : toks) {
      ASSERT_TRUE(pool_.reserve(s, s->n_past + 1).is_ok());
      const uint32_t p = s->n_past;
      pool_.k_layer(0)[size_t(s->block_table[p / 4]) * 8 + (p % 4) * 2] = uint16_t(t);
      hist->push_back(t);
      s->n_past = p + 1;
    }
    pool_.commit_blocks(s, hist->data());
  }
  int32_t read(const KvSequence& s, uint32_t p) {
    return pool_.k_layer(0)[size_t(s.block_table[p / 4]) * 8 + (p % 4) * 2];
  }
  std::vector<uint8_t> buf_;
  Arena arena_;
  KvPoolShape shape_;
  KvPool pool_;
  KvSequence seq_[3];
};

TEST_F(KvPrefixCacheTest, MatchSharesRegisteredBlocksAndWritesCopyThem) {
  std::vector<int32_t> ha, hb;
  append(&seq_[0], &ha, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});  // blocks {1..4}, {5..8} registered, {9, 10} partial
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 42};
  EXPECT_EQ(pool_.match_prefix(&seq_[1], prompt.data(), uint32_t(prompt.size())), 8u);
  EXPECT_EQ(seq_[1].block_table[0], seq_[0].block_table[0]);
  EXPECT_EQ(pool_.refcount(seq_[0].block_table[1]), 2u);
  // A prompt of exactly two blocks matches one: its last token is computed.
  pool_.reset(&seq_[2]);
  EXPECT_EQ(pool_.match_prefix(&seq_[2], prompt.data(), 8), 4u);
  pool_.reset(&seq_[2]);
  // A different token in block 1: only block 0 matches.
  const std::vector<int32_t> other = {1, 2, 3, 4, 5, 6, 0, 8, 9};
  EXPECT_EQ(pool_.match_prefix(&seq_[2], other.data(), 9), 4u);
  pool_.reset(&seq_[2]);
  // Sequence 0 rewinds into its registered block 1 and writes: a copy, the
  // cached block unchanged for sequence 1.
  pool_.truncate(&seq_[0], 6);
  ha.resize(6);
  append(&seq_[0], &ha, {77, 78});
  EXPECT_NE(seq_[0].block_table[1], seq_[1].block_table[1]);
  EXPECT_EQ(read(seq_[1], 6), 7);
  EXPECT_EQ(read(seq_[0], 6), 77);
  EXPECT_EQ(read(seq_[0], 5), 6) << "the copy keeps the positions before the write";
  // Both versions of block 1 are now registered: each prompt finds its own.
  const std::vector<int32_t> rewritten = {1, 2, 3, 4, 5, 6, 77, 78, 0};
  EXPECT_EQ(pool_.match_prefix(&seq_[2], rewritten.data(), 9), 8u);
  EXPECT_EQ(seq_[2].block_table[1], seq_[0].block_table[1]);
  EXPECT_EQ(read(seq_[2], 7), 78);
}

TEST_F(KvPrefixCacheTest, IdleBlocksCountAsFreeAndAreEvictedOldestFirst) {
  std::vector<int32_t> ha, hb;
  append(&seq_[0], &ha, {1, 2, 3, 4, 5, 6, 7, 8});    // 2 registered blocks
  append(&seq_[1], &hb, {9, 9, 9, 9, 8, 8, 8, 8});    // 2 more
  pool_.reset(&seq_[0]);  // released first: evicted first
  pool_.reset(&seq_[1]);
  EXPECT_EQ(pool_.used_blocks(), 0u);
  EXPECT_EQ(pool_.free_blocks(), 8u);
  EXPECT_EQ(pool_.cached_idle_blocks(), 4u);
  // 5 new blocks: the 4 free ones, then one eviction. A reset releases a
  // sequence's blocks last first, so the oldest idle block is sequence 0's
  // second: a chain's tail goes before its head, the shared prefix stays.
  std::vector<int32_t> hc;
  append(&seq_[2], &hc, std::vector<int32_t>(18, 50));
  EXPECT_EQ(pool_.evictions(), 1u);
  pool_.reset(&seq_[2]);
  const std::vector<int32_t> p0 = {1, 2, 3, 4, 5, 6, 7, 8, 0};
  EXPECT_EQ(pool_.match_prefix(&seq_[0], p0.data(), 9), 4u) << "its second block was evicted, its first kept";
  const std::vector<int32_t> p1 = {9, 9, 9, 9, 8, 8, 8, 8, 0};
  EXPECT_EQ(pool_.match_prefix(&seq_[1], p1.data(), 9), 8u);
  EXPECT_EQ(read(seq_[1], 4), 8);
}

// Many blocks registered and evicted: every registered block stays findable
// (the table's deletions keep probe runs whole) and no lookup returns a
// block whose tokens differ.
TEST_F(KvPrefixCacheTest, HashTableStaysConsistentUnderChurn) {
  uint32_t seed = 12345;
  auto rnd = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 400; ++round) {
    KvSequence* s = &seq_[round % 3];
    pool_.reset(s);
    std::vector<int32_t> toks;
    const uint32_t n = 1 + rnd() % 22;
    for (uint32_t i = 0; i < n; ++i) toks.push_back(int32_t(rnd() % 3));  // few symbols: many shared prefixes
    const uint32_t hit = pool_.match_prefix(s, toks.data(), n);
    ASSERT_EQ(hit % 4, 0u);
    ASSERT_LE(hit, n - 1);
    for (uint32_t p = 0; p < hit; ++p) ASSERT_EQ(read(*s, p), toks[p]) << "round " << round << " position " << p;
    std::vector<int32_t> hist(toks.begin(), toks.begin() + hit);
    const Status st = pool_.reserve(s, n);
    if (!st.is_ok()) {  // other sequences hold the pool
      pool_.reset(s);
      continue;
    }
    append(s, &hist, std::vector<int32_t>(toks.begin() + hit, toks.end()));
    for (uint32_t p = 0; p < n; ++p) ASSERT_EQ(read(*s, p), toks[p]);
    uint32_t held = 0;
    for (const KvSequence& q : seq_) held += q.n_blocks;
    ASSERT_LE(pool_.used_blocks(), held);
    ASSERT_EQ(pool_.used_blocks() + pool_.free_blocks(), 8u);
  }
  EXPECT_GT(pool_.evictions(), 10u);
}

}  // namespace
}  // namespace tern

namespace tern {
namespace {

// int8 KV pools: blocks hold values and scales together, so copy-on-write
// moves both; the plan's and the pool's bytes per token agree.
TEST(KvInt8Pool, CopyOnWriteCarriesTheScales) {
  KvPoolShape s;
  s.layers = 2;
  s.kv_heads = 2;
  s.head_dim = 32;
  s.block_tokens = 16;
  s.n_blocks = 6;
  s.type = KvType::kInt8;
  // K and V, per kv head: 32 int8 values + one f32 scale.
  EXPECT_EQ(KvPool::bytes_per_token(s), size_t(2 * 2 * 2 * (32 + 4)));
  std::vector<uint64_t> mem((KvPool::arena_bytes(s, 2, 4) + 64) / 8 + 1);
  Arena arena;
  arena.init(mem.data(), mem.size() * 8);
  KvPool pool;
  ASSERT_TRUE(pool.init(s, &arena).is_ok());
  KvSequence a, b;
  ASSERT_TRUE(pool.init_sequence(&a, 4, &arena).is_ok());
  ASSERT_TRUE(pool.init_sequence(&b, 4, &arena).is_ok());
  ASSERT_TRUE(pool.reserve(&a, 20).is_ok());
  std::vector<float> k(64), v(64);
  for (uint32_t pos = 0; pos < 20; ++pos) {
    for (uint32_t i = 0; i < 64; ++i) {
      k[i] = float((pos * 7 + i * 3) % 23) - 11.0f + 0.1f * float(pos);  // scales differ per position
      v[i] = float((pos * 5 + i) % 17) * 0.5f - float(pos % 3);
    }
    for (uint32_t l = 0; l < 2; ++l) {
      const PagedKv view = pool.layer_view(a, l);
      EXPECT_EQ(view.type, KvType::kInt8);
      EXPECT_EQ(view.k_i8, pool.k_bytes(l));
      EXPECT_EQ(view.block_stride, kv_i8_block_bytes(16, 2, 32));
      ref::kv_store_i8(view, pool.k_bytes(l), pool.v_bytes(l), pos, k.data(), v.data());
    }
  }
  a.n_past = 20;
  ASSERT_TRUE(pool.fork(a, &b).is_ok());
  EXPECT_EQ(b.block_table[0], a.block_table[0]);
  // b rewinds into the shared block and writes position 10: a private copy.
  pool.truncate(&b, 10);
  ASSERT_TRUE(pool.reserve(&b, 11).is_ok());
  ASSERT_NE(b.block_table[0], a.block_table[0]);
  const size_t bb = kv_i8_block_bytes(16, 2, 32);
  for (uint32_t l = 0; l < 2; ++l) {
    for (uint8_t* base : {pool.k_bytes(l), pool.v_bytes(l)}) {
      const uint8_t* from = base + size_t(a.block_table[0]) * bb;
      const uint8_t* to = base + size_t(b.block_table[0]) * bb;
      EXPECT_EQ(std::memcmp(from, to, bb), 0) << "layer " << l << ": the copy differs (values or scales)";
      // The scale plane is the block's last 2 x 16 floats; nonzero for the written rows.
      float scale;
      std::memcpy(&scale, to + bb - 2 * 16 * sizeof(float) + 9 * sizeof(float), sizeof scale);
      EXPECT_GT(scale, 0.0f);
    }
  }
}

TEST(KvInt8Pool, RefusesShapesTheInt8KernelsCannotRun) {
  KvPoolShape s;
  s.layers = 1;
  s.kv_heads = 1;
  s.head_dim = 24;  // not a multiple of 16
  s.block_tokens = 16;
  s.n_blocks = 2;
  s.type = KvType::kInt8;
  std::vector<uint64_t> mem(4096);
  Arena arena;
  arena.init(mem.data(), mem.size() * 8);
  KvPool pool;
  EXPECT_FALSE(pool.init(s, &arena).is_ok());
  s.head_dim = 32;
  s.block_tokens = 8;  // blocks smaller than a 16-position tile
  EXPECT_FALSE(pool.init(s, &arena).is_ok());
}

}  // namespace
}  // namespace tern
