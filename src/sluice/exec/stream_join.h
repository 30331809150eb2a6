// Stream-stream joins with an event-time bound (INNER and LEFT OUTER): each side's rows are
// buffered as an Arrow table, every new row is joined (Acero hash join) with the other side's
// buffer, and buffered rows leave once the other side's watermark says nothing can match them.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>

#include "sluice/exec/operator.h"
#include "sluice/exec/select_plan.h"

namespace sluice::exec {

enum class JoinSide { kLeft, kRight };

// What a StreamJoin needs to continue exactly where it was.
struct StreamJoinState {
  static constexpr int64_t kNoTime = INT64_MIN;
  int64_t left_max_time = kNoTime;   // highest event time consumed per side (µs)
  int64_t right_max_time = kNoTime;
  std::shared_ptr<arrow::Table> left_rows;   // left side's columns + __sj_matched (bool)
  std::shared_ptr<arrow::Table> right_rows;  // right side's columns
};

// Each side's watermark is its own highest event time minus its own delay, moved once per batch
// of that side; a row below its side's watermark as it stood before its batch (or with a null
// time) is late and dropped (counted). Per side, so which rows are late does not depend on how the two
// sides' arrivals interleave. A pair of non-late rows is emitted exactly once, when the later
// of the two is consumed. A left row leaves the buffer when time + upper bound < right
// watermark (for LEFT OUTER, emitted with nulls then if it never matched); a right row when
// time - lower bound < left watermark.
// Thread-compatible: used by one flow run at a time.
class StreamJoin {
 public:
  // `plan`: a join of two streams (INNER or LEFT) with a WATERMARK on each side and ON bounding
  // one side's time by the other's. Errors say what is missing.
  static arrow::Result<std::unique_ptr<StreamJoin>> make(const SelectPlan& plan);

  struct Result {
    std::shared_ptr<arrow::RecordBatch> output;  // the plan's output rows
    int64_t late_rows = 0;
  };
  // `rows`: a batch of one side's source rows (before the side's own row stages), in arrival order.
  arrow::Result<Result> consume(JoinSide side, const arrow::RecordBatch& rows);

  int64_t watermark(JoinSide side) const;
  const StreamJoinState& state() const { return state_; }
  arrow::Status restore(StreamJoinState state);
  int64_t state_rows() const;
  int64_t state_bytes() const;

 private:
  StreamJoin() = default;
  // The joined rows (joined schema) of new side rows against the other side's buffer.
  arrow::Result<std::shared_ptr<arrow::Table>> join_new(JoinSide side, const std::shared_ptr<arrow::Table>& rows);
  // Drops what can no longer match; LEFT OUTER: the unmatched left rows dropped, null-extended.
  arrow::Result<std::shared_ptr<arrow::Table>> evict();
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> finish(const std::vector<std::shared_ptr<arrow::Table>>& joined);

  const SelectPlan* plan_ = nullptr;
  JoinTimeBound bound_;
  bool left_outer_ = false;
  int64_t left_delay_ = 0, right_delay_ = 0;
  std::shared_ptr<arrow::Schema> left_schema_, right_schema_, left_state_schema_;
  StreamJoinState state_;
};

// The stream-stream join as an operator of a flow's chain, with two inputs: a batch's
// OperatorBatch::input is its side (0 left, 1 right), its rows that side's source rows in arrival
// order. Gives the joined rows (no single source row each). Its state is saved in two parts,
// "left" and "right" (each side's buffered rows and highest event time), as the flow's commits
// always saved it. Thread-compatible.
class StreamJoinOperator : public BatchOperator {
 public:
  static arrow::Result<std::unique_ptr<StreamJoinOperator>> make(const SelectPlan& plan);

  std::string name() const override { return "stream-stream join"; }
  arrow::Result<OperatorBatch> push(OperatorBatch batch) override;
  bool stateful() const override { return true; }
  std::vector<std::string> state_parts() const override { return {"left", "right"}; }
  arrow::Result<std::vector<WindowState>> snapshot() const override;
  arrow::Status restore(std::optional<std::vector<WindowState>> parts) override;

  const StreamJoin& join() const { return *join_; }
  // Rows dropped as late since the operator was made.
  int64_t late_rows() const { return late_rows_; }

 private:
  explicit StreamJoinOperator(std::unique_ptr<StreamJoin> join) : join_(std::move(join)) {}

  std::unique_ptr<StreamJoin> join_;
  int64_t late_rows_ = 0;
};

}  // namespace sluice::exec
