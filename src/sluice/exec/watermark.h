// Advancing the watermark of an event-time operator over one batch (row by row or once per
// batch, as WatermarkPolicy says), shared by window aggregation and dedup.
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

namespace sluice::exec {

// Lives for one batch: made before its first row, finish()ed after its last.
class WatermarkAdvance {
 public:
  using Clock = std::chrono::steady_clock;
  // `input_ids`: the batch's inputs; observe() takes indices into it. `last_seen`: when each
  // input last had data (idleness), kept by the operator across batches. `awaited`: inputs with
  // records still to come that no batch brought yet (EventTimeOperator::await_inputs).
  // An input that has never had data holds the watermark where it is while it is in the batch
  // or awaited: until its first row, nothing tells how far behind it is.
  WatermarkAdvance(WindowState& state, std::map<std::string, Clock::time_point>& last_seen,
                   const WatermarkPolicy& policy, const std::vector<std::string>& input_ids,
                   const std::vector<std::string>& awaited, Clock::time_point now);

  int64_t watermark() const { return state_.watermark; }
  // A row (late or not) with event time `ts` arrived on batch input `input`: it has data now
  // (and holds the watermark back); the watermark moves if `ts` raises its input's maximum.
  // Per batch (WatermarkStep::kPerBatch), the watermark moves in finish() only.
  void observe(int32_t input, int64_t ts) {
    const int32_t in = dense_[input];
    active_[in] = 1;
    if (ts > maxes_[in]) {
      maxes_[in] = ts;
      if (policy_.step == WatermarkStep::kPerBatch) return;
      const int64_t c = candidate();
      if (c > state_.watermark) state_.watermark = c;
    }
  }
  // Writes the inputs' maxima back into the state (and, per batch, moves the watermark).
  void finish();

 private:
  int64_t candidate() const;

  WindowState& state_;
  std::map<std::string, Clock::time_point>& last_seen_;
  const WatermarkPolicy& policy_;
  const std::vector<std::string>& input_ids_;
  Clock::time_point now_;
  std::vector<std::string> ids_;   // every input known, dense
  std::vector<int64_t> maxes_;     // their max event time (INT64_MIN: no data yet)
  std::vector<char> active_;       // not idle
  std::vector<char> held_;         // no data yet, but data is coming: nothing may move
  std::vector<int32_t> dense_;     // batch input -> dense index
};

}  // namespace sluice::exec

namespace sluice::exec {

// An event-time column (any timestamp unit) as int64 microseconds since the epoch.
arrow::Result<std::shared_ptr<arrow::Int64Array>> event_time_micros(const std::shared_ptr<arrow::Array>& time);

}  // namespace sluice::exec
