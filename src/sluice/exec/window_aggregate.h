// Event-time windowed aggregation for streaming tables (append mode): assigns rows to tumbling,
// sliding or session windows, tracks the watermark, sets aside late rows, and emits each
// window's aggregate row once, when the watermark passes the window's end.
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
#include "sluice/exec/partial_groups.h"
#include "sluice/exec/select_plan.h"

namespace sluice::exec {

// Thread-compatible: used by one flow run at a time.
class WindowAggregate final : public EventTimeOperator {
 public:
  // `plan` must aggregate with a window key (AggregateSpec::window) and have a watermark.
  static arrow::Result<std::unique_ptr<WindowAggregate>> make(const SelectPlan& plan, WatermarkPolicy policy);

  arrow::Result<Result> consume(const arrow::RecordBatch& rows, const std::vector<std::string>& input_ids,
                                const std::vector<int32_t>& input_of_row,
                                std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) override;

  int64_t watermark() const override { return state_.watermark; }
  // A copy of the state (shares the buffered arrays), for snapshots.
  arrow::Result<WindowState> state() const override;
  arrow::Status restore(WindowState state) override;
  int64_t state_rows() const override;
  int64_t state_bytes() const override;
  // Internal columns of the state, in arrival order (first/last depend on it): __ws (window
  // start, int64 µs), __k<i> per non-window key, then per aggregate either its partial
  // aggregate (__p<a>, or __s<a> and __c<a> for avg) when every aggregate merges (count, sum,
  // avg of numbers; min, max, first, last of numbers, booleans, times, strings), kept in a hash
  // table per open window (PartialGroups), or else its input rows (__in<a>: count DISTINCT,
  // stddev, decimals).
  bool merges_partials() const { return partial_; }
  const std::shared_ptr<arrow::Schema>& buffer_schema() const { return buffer_schema_; }

 private:
  WindowAggregate() = default;
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> emit_closed();
  // Groups closed windows' rows (__ws, [__we,] keys, inputs or partials) into output rows.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> finalize(const std::shared_ptr<arrow::RecordBatch>& closed);
  // Session windows: forms the sessions of the buffered rows, keeps the open ones' rows and
  // returns the closed ones' (null when none closed).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> close_sessions();
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> merge_sessions(const std::shared_ptr<arrow::RecordBatch>& intervals) const;
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> session_intervals(const arrow::RecordBatch& rows) const;
  arrow::Status add_to_sessions(const arrow::RecordBatch& rows);
  // The buffer (state + pending) as one batch, pending cleared.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> take_buffer();
  // Partial mode: the hash table of the window starting at `start` (made when missing).
  arrow::Result<PartialGroups*> window_groups(int64_t start);
  // Partial mode: the (row, window) pairs `take`/`starts` of `rows` into their windows' tables.
  arrow::Status add_partials(const arrow::RecordBatch& rows, const arrow::Int64Array& take, const arrow::Int64Array& starts);
  // Partial mode: a window's groups as rows of the buffer schema.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> window_rows(int64_t start, const PartialGroups& groups) const;

  AggregateSpec agg_;
  std::string watermark_column_;
  std::shared_ptr<arrow::Schema> output_schema_;
  std::shared_ptr<arrow::DataType> window_type_;  // struct<start, end> of the window key
  WatermarkPolicy policy_;
  std::shared_ptr<arrow::Schema> buffer_schema_;
  std::shared_ptr<arrow::Schema> raw_schema_;  // __ws, __k<i>, __in<a>
  bool partial_ = false;
  WindowState state_;  // partial mode: open_rows unused (the windows' tables hold the state)
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending_;  // rows mode: buffered since the last emission
  std::map<int64_t, std::unique_ptr<PartialGroups>> windows_;  // partial mode: by window start
  int64_t min_open_start_ = INT64_MAX;  // earliest buffered window start
  int64_t min_open_end_ = INT64_MAX;    // sessions: the earliest open session's end
  // Sessions: one row per open session (__k<i> keys, __ss first and __sl last event time), kept
  // up to date batch by batch so that the rows are only sorted when a session does close.
  std::shared_ptr<arrow::RecordBatch> open_sessions_;
  std::vector<std::string> session_keys_;  // the __k<i> that are not the session window
  std::map<std::string, std::chrono::steady_clock::time_point> last_seen_;
};

}  // namespace sluice::exec
