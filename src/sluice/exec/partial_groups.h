// Partial aggregates per group kept in one hash table across batches: an Arrow Grouper maps
// each row's keys to a dense group id, and one accumulator array per aggregate, indexed by
// group id, is updated in a tight loop per batch. The window operator keeps one per open
// window instead of re-grouping its whole state with every batch.
#pragma once

#include <arrow/compute/row/grouper.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::exec {

// One aggregate's running value per group (a count, sum, mean, min, max, first or last).
// Virtual per batch, never per row.
class PartialAccumulator {
 public:
  virtual ~PartialAccumulator() = default;
  virtual void resize(int64_t groups) = 0;
  // Raw input values (null for count(*)), row i belonging to group `groups[i]`.
  virtual arrow::Status consume(const std::shared_ptr<arrow::Array>& values, int64_t length, const uint32_t* groups) = 0;
  // Partial values as finish() makes them (one or two columns), merged into the groups.
  virtual arrow::Status merge(const arrow::ArrayVector& partials, const uint32_t* groups) = 0;
  // The partial columns, one value per group: __p<a> (__s<a> and __c<a> for a mean).
  virtual arrow::Result<arrow::ArrayVector> finish() const = 0;
  virtual int64_t bytes() const = 0;
};

// Thread-compatible.
class PartialGroups {
 public:
  // Whether `function` (hash_count_all, hash_count, hash_sum, hash_mean, hash_min, hash_max,
  // hash_first, hash_last) over `input` keeps a partial here: counts of anything; sums and
  // means of integers and floating point; min/max/first/last of fixed-width numbers, booleans,
  // dates, times, timestamps, strings and binaries (also large ones).
  static bool supports(const std::string& function, const std::shared_ptr<arrow::DataType>& input);
  // The type of the partial column(s) a function makes (mean: the sum's; its count is int64).
  static std::shared_ptr<arrow::DataType> partial_type(const std::string& function,
                                                       const std::shared_ptr<arrow::DataType>& input);

  static arrow::Result<std::unique_ptr<PartialGroups>> make(const std::vector<std::shared_ptr<arrow::DataType>>& key_types,
                                                            const std::vector<std::string>& functions,
                                                            const std::vector<std::shared_ptr<arrow::DataType>>& input_types);

  // Raw rows: key columns and one input column per function (ignored for hash_count_all).
  arrow::Status consume(const arrow::ArrayVector& keys, const arrow::ArrayVector& inputs, int64_t length);
  // Partial rows in finish()'s layout (keys, then each function's partial columns).
  arrow::Status merge(const arrow::ArrayVector& keys, const arrow::ArrayVector& partials, int64_t length);
  // One row per group in first-seen order: the key columns, then the partial columns.
  arrow::Result<arrow::ArrayVector> finish() const;
  int64_t num_groups() const { return num_groups_; }
  int64_t bytes() const;

 private:
  PartialGroups() = default;
  // Group ids of `length` rows of `keys` (all 0 without keys); new groups grow the accumulators.
  arrow::Result<std::shared_ptr<arrow::Array>> group_ids(const arrow::ArrayVector& keys, int64_t length);

  std::vector<std::shared_ptr<arrow::DataType>> key_types_;
  std::unique_ptr<arrow::compute::Grouper> grouper_;  // null without keys
  std::vector<std::unique_ptr<PartialAccumulator>> accumulators_;
  std::vector<int> partial_columns_;  // per accumulator: 1, or 2 for a mean
  int64_t num_groups_ = 0;
  int64_t key_bytes_ = 0;  // of the keys consumed into new groups (an estimate of the table's)
};

}  // namespace sluice::exec
