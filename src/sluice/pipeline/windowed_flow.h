// A streaming-table flow with an event-time operator (windowed aggregation, or dedup for
// SELECT DISTINCT): the operator, its state snapshots (tied to the target's commits) and the
// late rows it sets aside (counted, and written to `<table>_late` when the table's
// 'sluice.late_rows' property is 'table').
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <functional>
#include <optional>
#include <string>

#include "sluice/exec/event_time_operator.h"
#include "sluice/exec/select_plan.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

struct WindowedFlowOptions {
  std::filesystem::path late_table_path;  // <table>_late, used when write_late_rows
  std::string table;
  bool write_late_rows = false;
  exec::WatermarkPolicy policy;
};

// Thread-compatible: owned by one flow run. Its late table commits through the flow's
// StreamingCommit (`commit`, which must outlive it) as one of its side tables; the operator's
// state is the flow's chain's (flow_operators.h WindowOperator), which the commit snapshots.
class WindowedFlow {
 public:
  static arrow::Result<std::unique_ptr<WindowedFlow>> make(const exec::SelectPlan& plan, WindowedFlowOptions options,
                                                          StreamingCommit& commit);

  // `rows`: the plan's row stages over Kafka source rows `input` (row i of `rows` is row
  // `input_rows[i]` of `input`). `awaited_inputs`: partitions with records to come that no
  // batch brought yet (OperatorBatch::awaited_inputs). Returns the finalized windows.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> consume_kafka(const arrow::RecordBatch& input,
                                                                  const arrow::RecordBatch& rows,
                                                                  const arrow::Array& input_rows,
                                                                  std::vector<std::string> awaited_inputs = {});
  // `rows` from a Delta upstream's commit `version` (progress appId `app_id`).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> consume_delta(const arrow::RecordBatch& rows,
                                                                  const std::string& upstream,
                                                                  const std::string& app_id, int64_t version);

  // A copy of the operator's state (sharing its buffered arrays), and its restore (none: no
  // state, as for a new table).
  arrow::Result<exec::WindowState> state() const { return op_->state(); }
  arrow::Status restore(std::optional<exec::WindowState> state);

  int64_t late_rows() const { return late_rows_; }
  int64_t state_rows() const { return op_->state_rows(); }
  int64_t state_bytes() const { return op_->state_bytes(); }
  int64_t state_file_bytes() const { return commit_->state_file_bytes(); }
  int64_t watermark() const { return op_->watermark(); }
  int64_t duplicates_dropped() const { return op_->duplicates_dropped(); }

 private:
  WindowedFlow() = default;
  arrow::Status write_late(const arrow::RecordBatch& rows, const exec::EventTimeOperator::Result& r,
                           const std::shared_ptr<arrow::Array>& source_name,
                           const std::shared_ptr<arrow::Array>& source_partition,
                           const std::shared_ptr<arrow::Array>& source_offset,
                           const std::function<bool(int64_t)>& already_written);

  WindowedFlowOptions options_;
  std::unique_ptr<exec::EventTimeOperator> op_;
  StreamingCommit* commit_ = nullptr;
  SideTable* late_ = nullptr;  // owned by commit_
  std::shared_ptr<arrow::Schema> late_schema_;
  int64_t late_rows_ = 0;
};

// The <table>_late schema: the query's input columns, then _watermark (what the row met),
// _source_name, _source_partition, _source_offset (Kafka offset or upstream version).
std::shared_ptr<arrow::Schema> late_rows_schema(const arrow::Schema& rows);

}  // namespace sluice::pipeline
