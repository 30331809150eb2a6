// The contract between a streaming-table flow and its event-time operator (window
// aggregation, dedup): batches in arrival order in, finalized rows and late rows out, a
// watermark, and state that can be snapshotted and restored (DESIGN.md §4).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice::exec {

// The watermark is tracked per input (a Kafka topic partition, or a Delta source): max event
// time seen on the input minus the delay, then the minimum over the inputs that have data and
// were not idle for `idle_timeout` (all of them if every one is idle), never moving back;
// row by row or once per batch (WatermarkStep).
// When a batch moves the watermark. Per row for Kafka partitions: a partition's order is fixed,
// so replay after a crash judges each row the same whatever the batches. Per batch, as Spark
// does, for a Delta source: an upstream table interleaves its Kafka partitions, so rows out of
// order by more than the delay are normal within a batch; the rows of a batch are judged
// against the watermark as it stood before the batch, which moves once, after it. Batches of a
// Delta source are chunks of the upstream's files read in commit order: cut the same on replay.
enum class WatermarkStep { kPerRow, kPerBatch };

struct WatermarkPolicy {
  int64_t delay_micros = 0;
  std::chrono::milliseconds idle_timeout{0};  // 0: an input never counts as idle
  WatermarkStep step = WatermarkStep::kPerRow;
};

// Everything an event-time operator needs to continue exactly where it was: its buffered rows
// (windows not yet emitted, keys seen), the watermark and the max event time per input.
struct WindowState {
  static constexpr int64_t kNoWatermark = INT64_MIN;
  int64_t watermark = kNoWatermark;
  std::map<std::string, int64_t> input_max_event_time;  // by input id ("topic/partition")
  std::shared_ptr<arrow::Table> open_rows;             // the operator's buffer_schema()
};

// Thread-compatible: used by one flow run at a time. Virtual per batch, never per row.
class EventTimeOperator {
 public:
  virtual ~EventTimeOperator() = default;

  struct Result {
    std::shared_ptr<arrow::RecordBatch> output;     // rows for the table (plan's output schema)
    std::shared_ptr<arrow::Array> late_rows;        // int64 indices into `rows` of late rows
    std::shared_ptr<arrow::Array> late_watermarks;  // the watermark each late row met (int64 µs)
  };
  // Consumes one batch of row-stage output (`rows`: SelectPlan::apply_row_stages), whose row i
  // arrived on input `input_ids[input_of_row[i]]`, in arrival order. `now` is the wall clock
  // used for idleness.
  virtual arrow::Result<Result> consume(const arrow::RecordBatch& rows, const std::vector<std::string>& input_ids,
                                        const std::vector<int32_t>& input_of_row,
                                        std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) = 0;

  // Inputs with records still to come that no batch has brought yet (Kafka partitions whose
  // planned range this update has not started reading): until an input's first row, it holds
  // the watermark where it is, as it would had its rows come first. Stays until set again.
  void await_inputs(std::vector<std::string> ids) { awaited_ = std::move(ids); }

  virtual int64_t watermark() const = 0;
  // A copy of the state (shares the buffered arrays), for snapshots.
  virtual arrow::Result<WindowState> state() const = 0;
  virtual arrow::Status restore(WindowState state) = 0;
  virtual int64_t state_rows() const = 0;
  virtual int64_t state_bytes() const = 0;
  // Rows dropped as duplicates since the operator was made (dedup only).
  virtual int64_t duplicates_dropped() const { return 0; }

 protected:
  std::vector<std::string> awaited_;
};

}  // namespace sluice::exec
