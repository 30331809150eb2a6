// RecyclingMemoryPool: large freed buffers are reused within a budget; small ones pass through.
#include "sluice/common/recycling_memory_pool.h"

#include <arrow/buffer.h>
#include <gtest/gtest.h>

#include <cstring>

namespace sluice {
namespace {

constexpr int64_t kMiB = 1 << 20;

TEST(RecyclingMemoryPool, FreedLargeBufferServesTheNextAllocationOfItsSize) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 8 * kMiB, kMiB / 4);
  uint8_t* first = nullptr;
  ASSERT_TRUE(pool.Allocate(2 * kMiB, 64, &first).ok());
  pool.Free(first, 2 * kMiB, 64);
  EXPECT_EQ(pool.cached_bytes(), 2 * kMiB);
  uint8_t* second = nullptr;
  ASSERT_TRUE(pool.Allocate(2 * kMiB - 100, 64, &second).ok());
  EXPECT_EQ(second, first);
  EXPECT_EQ(pool.reuses(), 1);
  EXPECT_EQ(pool.cached_bytes(), 0);
  pool.Free(second, 2 * kMiB - 100, 64);
}

TEST(RecyclingMemoryPool, SmallAllocationsAreNeitherCachedNorServedFromTheCache) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 8 * kMiB, kMiB / 4);
  uint8_t* small = nullptr;
  ASSERT_TRUE(pool.Allocate(1024, 64, &small).ok());
  pool.Free(small, 1024, 64);
  EXPECT_EQ(pool.cached_bytes(), 0);
  uint8_t* large = nullptr;
  ASSERT_TRUE(pool.Allocate(kMiB, 64, &large).ok());
  pool.Free(large, kMiB, 64);
  ASSERT_TRUE(pool.Allocate(1024, 64, &small).ok());  // does not take the cached MiB
  EXPECT_EQ(pool.reuses(), 0);
  EXPECT_EQ(pool.cached_bytes(), kMiB);
  pool.Free(small, 1024, 64);
}

TEST(RecyclingMemoryPool, ABlockMoreThanTwiceTheRequestIsNotHandedOut) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 16 * kMiB, kMiB / 4);
  uint8_t* big = nullptr;
  ASSERT_TRUE(pool.Allocate(8 * kMiB, 64, &big).ok());
  pool.Free(big, 8 * kMiB, 64);
  uint8_t* other = nullptr;
  ASSERT_TRUE(pool.Allocate(kMiB, 64, &other).ok());
  EXPECT_NE(other, big);
  EXPECT_EQ(pool.reuses(), 0);
  pool.Free(other, kMiB, 64);
}

TEST(RecyclingMemoryPool, KeepsNoMoreThanItsBudget) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 3 * kMiB, kMiB / 4);
  uint8_t* a = nullptr;
  uint8_t* b = nullptr;
  ASSERT_TRUE(pool.Allocate(2 * kMiB, 64, &a).ok());
  ASSERT_TRUE(pool.Allocate(2 * kMiB, 64, &b).ok());
  pool.Free(a, 2 * kMiB, 64);
  pool.Free(b, 2 * kMiB, 64);  // both would exceed 3 MiB: the older block goes back to the base pool
  EXPECT_EQ(pool.cached_bytes(), 2 * kMiB);
  uint8_t* c = nullptr;
  ASSERT_TRUE(pool.Allocate(2 * kMiB, 64, &c).ok());
  EXPECT_EQ(c, b);  // the one kept is the newer
  pool.Free(c, 2 * kMiB, 64);
  uint8_t* huge = nullptr;
  ASSERT_TRUE(pool.Allocate(4 * kMiB, 64, &huge).ok());
  pool.Free(huge, 4 * kMiB, 64);  // larger than the whole budget: not cached, nothing evicted
  EXPECT_EQ(pool.cached_bytes(), 2 * kMiB);
  pool.ReleaseUnused();
  EXPECT_EQ(pool.cached_bytes(), 0);
}

// Blocks of sizes no longer asked for make room for the sizes in use: a budget filled by
// small blocks still caches the next large one.
TEST(RecyclingMemoryPool, OldBlocksMakeRoomForNewlyFreedOnes) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 4 * kMiB, kMiB / 4);
  uint8_t* small[4] = {};
  for (auto*& p : small) ASSERT_TRUE(pool.Allocate(kMiB, 64, &p).ok());
  for (auto* p : small) pool.Free(p, kMiB, 64);
  EXPECT_EQ(pool.cached_bytes(), 4 * kMiB);
  uint8_t* large = nullptr;
  ASSERT_TRUE(pool.Allocate(3 * kMiB, 64, &large).ok());
  pool.Free(large, 3 * kMiB, 64);
  EXPECT_EQ(pool.cached_bytes(), 4 * kMiB);  // three 1 MiB blocks went, the 3 MiB one stays
  uint8_t* again = nullptr;
  ASSERT_TRUE(pool.Allocate(3 * kMiB, 64, &again).ok());
  EXPECT_EQ(again, large);
  pool.Free(again, 3 * kMiB, 64);
}

// A request a few bytes larger than the block freed before it still gets that block: sizes
// are rounded up to whole multiples of the smallest block.
TEST(RecyclingMemoryPool, RequestsThatDifferByAFewBytesShareABlock) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 16 * kMiB, kMiB / 4);
  const int64_t size = 4 * kMiB + 262144 + 128;  // a batch's value buffer: 4 MiB + 1/16, give or take
  uint8_t* first = nullptr;
  ASSERT_TRUE(pool.Allocate(size, 64, &first).ok());
  std::memset(first, 1, static_cast<size_t>(size));
  pool.Free(first, size, 64);
  uint8_t* second = nullptr;
  ASSERT_TRUE(pool.Allocate(size + 64, 64, &second).ok());
  EXPECT_EQ(second, first);
  EXPECT_EQ(pool.reuses(), 1);
  std::memset(second, 2, static_cast<size_t>(size + 64));
  pool.Free(second, size + 64, 64);
}

TEST(RecyclingMemoryPool, ReallocateKeepsTheContentsWhenGrowingAndShrinksInPlace) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 16 * kMiB, kMiB / 4);
  uint8_t* p = nullptr;
  ASSERT_TRUE(pool.Allocate(1000, 64, &p).ok());  // small: from the base pool
  std::memset(p, 0x5a, 1000);
  ASSERT_TRUE(pool.Reallocate(1000, kMiB, 64, &p).ok());  // becomes large
  EXPECT_EQ(p[0], 0x5a);
  EXPECT_EQ(p[999], 0x5a);
  uint8_t* before = p;
  ASSERT_TRUE(pool.Reallocate(kMiB, kMiB / 2, 64, &p).ok());
  EXPECT_EQ(p, before);  // shrinking keeps the block
  ASSERT_TRUE(pool.Reallocate(kMiB / 2, 3 * kMiB, 64, &p).ok());
  EXPECT_EQ(p[999], 0x5a);
  pool.Free(p, 3 * kMiB, 64);
  // The 1 MiB block freed by the move and the 3 MiB block are both cached.
  EXPECT_EQ(pool.cached_bytes(), 4 * kMiB);
}

TEST(RecyclingMemoryPool, ArrowBuffersReturnTheirMemoryToThePool) {
  RecyclingMemoryPool pool(arrow::default_memory_pool(), 16 * kMiB, kMiB / 4);
  const uint8_t* data = nullptr;
  {
    auto buffer = arrow::AllocateResizableBuffer(kMiB, &pool);
    ASSERT_TRUE(buffer.ok());
    ASSERT_TRUE((*buffer)->Resize(kMiB / 2).ok());  // shrink_to_fit keeps the block here
    data = (*buffer)->data();
  }
  EXPECT_EQ(pool.cached_bytes(), kMiB);
  auto again = arrow::AllocateBuffer(kMiB, &pool);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->data(), data);
}

}  // namespace
}  // namespace sluice
