// Streaming dedup over a stream with a WATERMARK (append mode: a first occurrence is emitted at
// once). SELECT DISTINCT: later equal rows are dropped; a seen row is evicted once the watermark
// passes its event time. SELECT DISTINCT ON (keys): Spark's dropDuplicatesWithinWatermark, a
// later row with the same keys is dropped while the first one's event time plus the delay is not
// behind the watermark.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/exec/event_time_operator.h"
#include "sluice/exec/select_plan.h"

namespace sluice::exec {

// Open-addressing hash index from a row's 64-bit key hash to where the row is stored (chunk,
// row); equal hashes are told apart by comparing the rows. Insert-only: eviction rebuilds it.
class KeyIndex {
 public:
  struct Entry {
    uint64_t hash = 0;
    uint32_t chunk = kEmpty;
    uint32_t row = 0;
  };
  static constexpr uint32_t kEmpty = UINT32_MAX;

  size_t size() const { return size_; }
  void clear() {
    slots_.clear();
    size_ = 0;
  }
  // Room for `more` inserts without growing (slot numbers stay valid meanwhile).
  void reserve(size_t more);
  // The slot of an entry with `hash` whose row `same` accepts, or -1.
  template <typename Same>
  int64_t find(uint64_t hash, const Same& same) const {
    if (slots_.empty()) return -1;
    const size_t mask = slots_.size() - 1;
    for (size_t s = hash & mask;; s = (s + 1) & mask) {
      const Entry& e = slots_[s];
      if (e.chunk == kEmpty) return -1;
      if (e.hash == hash && same(e.chunk, e.row)) return static_cast<int64_t>(s);
    }
  }
  // Inserts (after reserve()); returns the slot.
  size_t insert(uint64_t hash, uint32_t chunk, uint32_t row);
  Entry& at(size_t slot) { return slots_[slot]; }

 private:
  std::vector<Entry> slots_;  // power-of-two size, at most half full
  size_t size_ = 0;
};

// Thread-compatible: used by one flow run at a time.
class StreamDedup final : public EventTimeOperator {
 public:
  // `plan`: SELECT DISTINCT [ON (keys)] without aggregation, with a WATERMARK on a column it
  // selects. Without ON the key is every selected column (the event time among them, so two
  // equal rows have the same event time and a row behind the watermark never equals a live one).
  static arrow::Result<std::unique_ptr<StreamDedup>> make(const SelectPlan& plan, WatermarkPolicy policy);

  arrow::Result<Result> consume(const arrow::RecordBatch& rows, const std::vector<std::string>& input_ids,
                                const std::vector<int32_t>& input_of_row,
                                std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) override;
  int64_t watermark() const override { return state_.watermark; }
  // The seen rows not behind the watermark (the plan's output schema).
  arrow::Result<WindowState> state() const override;
  arrow::Status restore(WindowState state) override;
  // Seen rows not behind the watermark (rows behind it may be held until evicted in bulk).
  int64_t state_rows() const override;
  int64_t state_bytes() const override;
  int64_t duplicates_dropped() const override { return duplicates_; }

 private:
  struct Chunk {
    std::shared_ptr<arrow::RecordBatch> rows;  // seen rows, first occurrences, by event time
    std::vector<const arrow::Array*> columns;  // rows' key columns, for comparisons
    std::vector<uint64_t> hashes;              // per row
    std::vector<int64_t> event_times;          // per row, ascending: rows behind the watermark are a prefix
    int64_t behind(int64_t watermark, int64_t horizon) const;
  };
  StreamDedup() = default;
  // Stores `rows` (hashing to `hashes`) as a chunk sorted by event time and points the index at
  // them: `slots[k]` is row k's index slot, or, without `slots`, each row is inserted.
  arrow::Status add_chunk(const std::shared_ptr<arrow::RecordBatch>& rows, const std::vector<uint64_t>& hashes,
                          const std::vector<size_t>* slots);
  // Rows of the chunks behind the watermark (evictable).
  int64_t rows_behind() const;
  int64_t stored_rows() const;
  // Drops the rows behind the watermark and rebuilds the index over what stays.
  arrow::Status evict();
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> live_rows(std::vector<uint64_t>* hashes) const;

  std::shared_ptr<arrow::Schema> schema_;
  int event_time_index_ = -1;
  std::vector<int> key_columns_;
  int64_t horizon_micros_ = 0;  // a seen row lives while event time + horizon >= watermark
  WatermarkPolicy policy_;
  WindowState state_;  // open_rows unused: the chunks hold the seen rows
  std::vector<Chunk> chunks_;
  KeyIndex index_;
  int64_t duplicates_ = 0;
  std::map<std::string, std::chrono::steady_clock::time_point> last_seen_;
};

// Mixes every row's value of `column` into `hashes` (one per row; nulls hash alike, so
// equal rows, nulls included, hash alike). NotImplemented for lists, maps and unions.
arrow::Status hash_rows(const arrow::Array& column, std::vector<uint64_t>& hashes);

}  // namespace sluice::exec
