// A hash join's build side as a value that outlives one call: the right side's rows and a hash
// index of their keys, probed by any number of left batches. Acero's hash join builds its table
// on every call; a stream-static join probes one build for as long as the static side is unchanged.
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace arrow::compute {
class Grouper;
}

namespace sluice::exec {

// The join types a probe by left rows can answer on its own (no state about right rows).
enum class ProbeJoinType { kInner, kLeftOuter, kLeftSemi, kLeftAnti };

// INNER, LEFT, LEFT_SEMI or LEFT_ANTI (SelectPlan::join_type()); an error otherwise.
arrow::Result<ProbeJoinType> probe_join_type(const std::string& sql_type);

// Equality on the keys as SQL's `=`: a null key matches nothing (a LEFT or ANTI join keeps the
// row unmatched). Rows are in probe order; a left row's matches in build order.
// Thread-compatible: probe() updates the index's lookup scratch, so one caller at a time.
class JoinHashTable {
 public:
  struct Spec {
    ProbeJoinType type = ProbeJoinType::kInner;
    std::vector<arrow::FieldRef> left_keys, right_keys;  // pairwise: left_keys[i] = right_keys[i]
    // The rest of ON, over the left then the right columns (unbound; literal true when none).
    arrow::compute::Expression filter;
  };
  // Indexes `build` (the right side's rows) by `spec.right_keys`.
  static arrow::Result<std::unique_ptr<JoinHashTable>> make(Spec spec, const std::shared_ptr<arrow::Table>& build);
  ~JoinHashTable();

  // `probe` (the left side's rows) joined with the build rows, as `output`: the left columns,
  // then (INNER, LEFT) the right ones.
  arrow::Result<std::shared_ptr<arrow::Table>> probe(const arrow::Table& probe,
                                                     const std::shared_ptr<arrow::Schema>& output);

  int64_t build_rows() const;
  int64_t build_bytes() const;

 private:
  JoinHashTable() = default;
  // Pairs (left row, right row) whose keys are equal, in left row order.
  arrow::Status match_keys(const arrow::RecordBatch& left, std::vector<int64_t>* left_rows,
                           std::vector<int64_t>* right_rows);
  // Keeps the pairs for which the filter is true.
  arrow::Status apply_filter(const arrow::RecordBatch& left, std::vector<int64_t>* left_rows,
                             std::vector<int64_t>* right_rows) const;

  Spec spec_;
  bool has_filter_ = false;
  std::shared_ptr<arrow::RecordBatch> build_;
  std::vector<std::shared_ptr<arrow::DataType>> key_types_;
  std::unique_ptr<arrow::compute::Grouper> keys_;  // distinct build keys -> group id
  // The build rows of group g are group_rows_[group_offsets_[g] .. group_offsets_[g + 1]).
  std::vector<int64_t> group_offsets_;
  std::vector<int64_t> group_rows_;
};

}  // namespace sluice::exec
