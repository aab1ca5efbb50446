#include "arena/arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace tern {
namespace {

TEST(Arena, AlignsAndAccountsRegions) {
  alignas(64) static uint8_t buf[4096];
  Arena a;
  a.init(buf + 3, sizeof(buf) - 3);  // a caller buffer that is not aligned
  void* p = a.allocate(10, "alpha");
  void* q = a.allocate(100, "beta", 128);
  void* r = a.allocate(7, "alpha");
  ASSERT_NE(p, nullptr);
  ASSERT_NE(q, nullptr);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 128, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r) % 64, 0u);
  EXPECT_EQ(a.region_count(), 2u);
  EXPECT_EQ(a.region_bytes("alpha"), 17u);
  EXPECT_EQ(a.region_bytes("beta"), 100u);
  EXPECT_EQ(a.region_bytes("gamma"), 0u);
  EXPECT_LE(a.used(), a.capacity());
  EXPECT_EQ(a.high_water(), a.used());
}

TEST(Arena, ExhaustionReturnsNullAndKeepsState) {
  static uint8_t buf[256];
  Arena a;
  a.init(buf, sizeof(buf));
  ASSERT_NE(a.allocate(100, "x", 1), nullptr);
  const size_t used = a.used();
  EXPECT_EQ(a.allocate(200, "x", 1), nullptr);
  EXPECT_EQ(a.used(), used);
  EXPECT_EQ(a.allocate(SIZE_MAX, "x", 1), nullptr);
  EXPECT_EQ(a.allocate_array<uint64_t>(SIZE_MAX / 4, "x"), nullptr);  // count * size overflows
  EXPECT_EQ(a.allocate(1, "x", 3), nullptr);                          // alignment not a power of two
  EXPECT_EQ(a.used(), used);
}

TEST(Arena, MarkRewindKeepsHighWater) {
  static uint8_t buf[1024];
  Arena a;
  a.init(buf, sizeof(buf));
  ASSERT_NE(a.allocate(64, "persistent", 1), nullptr);
  const Arena::Mark m = a.mark();
  ASSERT_NE(a.allocate(512, "scratch", 1), nullptr);
  EXPECT_EQ(a.used(), 576u);
  a.rewind(m);
  EXPECT_EQ(a.used(), 64u);
  EXPECT_EQ(a.high_water(), 576u);
}

TEST(Arena, EmptyArenaRefusesEverything) {
  Arena a;
  a.init(nullptr, 1000);
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_EQ(a.allocate(1, "x"), nullptr);
}

TEST(Arena, AlignUpMatchesAllocate) {
  EXPECT_EQ(arena_align_up(0, 64), 0u);
  EXPECT_EQ(arena_align_up(1, 64), 64u);
  EXPECT_EQ(arena_align_up(64, 64), 64u);
  EXPECT_EQ(arena_align_up(65, 64), 128u);
}

}  // namespace
}  // namespace tern
