// An Arrow memory pool that keeps large freed buffers for the next allocation of a similar
// size, up to a byte budget, so a stream of equally sized batches reuses the same memory
// instead of faulting in fresh pages for every batch.
#pragma once

#include <arrow/memory_pool.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice {

// Thread-safe: buffers are allocated on one thread (a reader) and freed on others (writer
// lanes). mu_ guards live_, cached_ and cached_bytes_.
//
// Why: mimalloc (pyarrow's default pool) hands a freed multi-MiB buffer back to the OS after
// a few milliseconds, so the next batch's buffer of the same size is faulted in and zeroed by
// the kernel again (perf: clear_page_erms ~8 % of the bronze flow's CPU); keeping it longer
// (MIMALLOC_PURGE_DELAY=-1) keeps every size ever freed. This keeps at most
// `max_cached_bytes` (the most recently freed blocks: older ones make room), and only blocks of
// at least `min_block_bytes`, sized in multiples of it; smaller requests go straight to `base`.
class RecyclingMemoryPool : public arrow::MemoryPool {
 public:
  RecyclingMemoryPool(arrow::MemoryPool* base, int64_t max_cached_bytes, int64_t min_block_bytes);
  ~RecyclingMemoryPool() override;  // frees the cached blocks (every buffer must be gone)
  RecyclingMemoryPool(const RecyclingMemoryPool&) = delete;
  RecyclingMemoryPool& operator=(const RecyclingMemoryPool&) = delete;

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;
  void ReleaseUnused() override;  // frees the cached blocks

  int64_t bytes_allocated() const override { return base_->bytes_allocated(); }
  int64_t total_bytes_allocated() const override { return base_->total_bytes_allocated(); }
  int64_t num_allocations() const override { return base_->num_allocations(); }
  std::string backend_name() const override { return base_->backend_name(); }

  int64_t cached_bytes() const;
  // Allocations served from the cache so far (for tests and benchmarks).
  int64_t reuses() const;

 private:
  struct Block {
    uint8_t* data;
    int64_t capacity;
    int64_t alignment;
  };
  arrow::Status allocate_large(int64_t size, int64_t alignment, uint8_t** out);

  arrow::MemoryPool* const base_;
  const int64_t max_cached_bytes_;
  const int64_t min_block_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<uint8_t*, Block> live_;  // large blocks handed out, by address
  std::vector<Block> cached_;                 // freed large blocks kept for reuse, oldest first
  int64_t cached_bytes_ = 0;
  int64_t reuses_ = 0;
};

// The pool of the buffers a Kafka flow reads records into (process-wide, never destroyed:
// batches may outlive any one flow). Keeps up to 16 MiB of freed buffers of 256 KiB or more (a
// few 4 MiB batch value buffers: one batch is freed for each one read).
arrow::MemoryPool* record_batch_pool();

}  // namespace sluice
