// Reuse of large freed buffers; see recycling_memory_pool.h.
#include "sluice/common/recycling_memory_pool.h"

#include <algorithm>
#include <cstring>

namespace sluice {

RecyclingMemoryPool::RecyclingMemoryPool(arrow::MemoryPool* base, int64_t max_cached_bytes,
                                         int64_t min_block_bytes)
    : base_(base), max_cached_bytes_(max_cached_bytes), min_block_bytes_(min_block_bytes) {}

RecyclingMemoryPool::~RecyclingMemoryPool() { ReleaseUnused(); }

arrow::Status RecyclingMemoryPool::allocate_large(int64_t size, int64_t alignment, uint8_t** out) {
  {
    std::lock_guard lock(mu_);
    // The smallest cached block that fits, if it is not more than twice the size asked for
    // (a small request must not pin a large block).
    auto best = cached_.end();
    for (auto it = cached_.begin(); it != cached_.end(); ++it) {
      if (it->capacity >= size && it->capacity <= 2 * size && it->alignment >= alignment &&
          (best == cached_.end() || it->capacity < best->capacity)) {
        best = it;
      }
    }
    if (best != cached_.end()) {
      Block block = *best;
      cached_.erase(best);
      cached_bytes_ -= block.capacity;
      ++reuses_;
      live_.emplace(block.data, block);
      *out = block.data;
      return arrow::Status::OK();
    }
  }
  // Rounded up to a multiple of the smallest block: requests that differ by a few bytes (a
  // batch's value buffer sized like the last batch's, +-1 record) get blocks that serve each
  // other; unrounded, a block 64 bytes short of the next request was never reused.
  const int64_t step = std::max<int64_t>(min_block_bytes_, 64 << 10);
  const int64_t capacity = (size + step - 1) / step * step;
  ARROW_RETURN_NOT_OK(base_->Allocate(capacity, alignment, out));
  std::lock_guard lock(mu_);
  live_.emplace(*out, Block{*out, capacity, alignment});
  return arrow::Status::OK();
}

arrow::Status RecyclingMemoryPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  if (size < min_block_bytes_) return base_->Allocate(size, alignment, out);
  return allocate_large(size, alignment, out);
}

arrow::Status RecyclingMemoryPool::Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                                              uint8_t** ptr) {
  int64_t capacity = -1;
  {
    std::lock_guard lock(mu_);
    if (auto it = live_.find(*ptr); it != live_.end()) capacity = it->second.capacity;
  }
  if (capacity >= 0 && new_size <= capacity) return arrow::Status::OK();  // fits, or shrinks
  if (capacity < 0 && new_size < min_block_bytes_) {
    return base_->Reallocate(old_size, new_size, alignment, ptr);
  }
  // Grows past the block, or a small buffer becomes a large one: move it.
  uint8_t* moved = nullptr;
  ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &moved));
  std::memcpy(moved, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
  Free(*ptr, old_size, alignment);
  *ptr = moved;
  return arrow::Status::OK();
}

void RecyclingMemoryPool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  std::unique_lock lock(mu_);
  auto it = live_.find(buffer);
  if (it == live_.end()) {
    lock.unlock();
    base_->Free(buffer, size, alignment);
    return;
  }
  const Block block = it->second;
  live_.erase(it);
  if (block.capacity > max_cached_bytes_) {
    lock.unlock();
    base_->Free(block.data, block.capacity, block.alignment);
    return;
  }
  // The oldest cached blocks make room: the sizes in use now are the ones the next requests
  // ask for (a block of a size no longer asked for would otherwise hold the budget for good).
  std::vector<Block> evicted;
  size_t oldest = 0;
  while (cached_bytes_ + block.capacity > max_cached_bytes_) {
    evicted.push_back(cached_[oldest]);
    cached_bytes_ -= cached_[oldest].capacity;
    ++oldest;
  }
  cached_.erase(cached_.begin(), cached_.begin() + static_cast<std::ptrdiff_t>(oldest));
  cached_.push_back(block);
  cached_bytes_ += block.capacity;
  lock.unlock();
  for (const auto& b : evicted) base_->Free(b.data, b.capacity, b.alignment);
}

void RecyclingMemoryPool::ReleaseUnused() {
  std::vector<Block> blocks;
  {
    std::lock_guard lock(mu_);
    blocks.swap(cached_);
    cached_bytes_ = 0;
  }
  for (const auto& b : blocks) base_->Free(b.data, b.capacity, b.alignment);
  base_->ReleaseUnused();
}

int64_t RecyclingMemoryPool::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_bytes_;
}

int64_t RecyclingMemoryPool::reuses() const {
  std::lock_guard lock(mu_);
  return reuses_;
}

arrow::MemoryPool* record_batch_pool() {
  static auto* pool =
      new RecyclingMemoryPool(arrow::default_memory_pool(), 16ll << 20, 256ll << 10);
  return pool;
}

}  // namespace sluice
