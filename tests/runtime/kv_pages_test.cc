#include "runtime/kv_pages.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tern
