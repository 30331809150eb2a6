// One memory budget for the Parquet row groups in progress in a process: every data file
// writer counts the Arrow bytes of its open row group here, and ends that row group early once
// all of them together reach the budget.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::delta {

// Thread-safe (writer lanes of several tables share it). Why: the Parquet writer holds a row
// group's encoded pages until it ends, and a per-file bound multiplies with the files in
// progress (one per core per table, two tables at once with the in-process handoff).
class RowGroupBudget {
 public:
  // Arrow bytes every open row group may hold together; a row group is ended for the budget
  // only once it holds `min_row_group_bytes` (so a full budget does not make tiny row groups).
  RowGroupBudget(int64_t total_bytes, int64_t min_row_group_bytes)
      : total_bytes_(total_bytes), min_row_group_bytes_(min_row_group_bytes) {}
  RowGroupBudget(const RowGroupBudget&) = delete;
  RowGroupBudget& operator=(const RowGroupBudget&) = delete;

  // The budget every writer uses unless its options name another: kProcessTotalBytes over
  // row groups of at least kProcessMinRowGroupBytes.
  static constexpr int64_t kProcessTotalBytes = 64ll << 20;
  static constexpr int64_t kProcessMinRowGroupBytes = 8ll << 20;
  static RowGroupBudget& process();

  void add(int64_t bytes) { open_bytes_.fetch_add(bytes, std::memory_order_relaxed); }
  void release(int64_t bytes) { open_bytes_.fetch_sub(bytes, std::memory_order_relaxed); }
  // Whether a writer whose open row group holds `own_bytes` should end it before writing more.
  bool should_end(int64_t own_bytes) const {
    return own_bytes >= min_row_group_bytes_ &&
           open_bytes_.load(std::memory_order_relaxed) >= total_bytes_;
  }
  int64_t open_bytes() const { return open_bytes_.load(std::memory_order_relaxed); }

 private:
  const int64_t total_bytes_;
  const int64_t min_row_group_bytes_;
  std::atomic<int64_t> open_bytes_{0};
};

}  // namespace sluice::delta
