// Runs the flows into Delta sinks (CREATE SINK ... OPTIONS (format => 'delta', path => ...)): each
// flow reads the streaming table it streams from, from the upstream version its progress names,
// and appends the selected rows to a Delta table outside the pipeline's storage; the progress is
// a txn action of that table (app id per pipeline, flow and upstream table, as the pipeline's own
// streaming tables record theirs), committed with the rows (docs/decisions.md "Delta sinks").
#pragma once

#include <arrow/status.h>

#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/sink_options.h"
#include "sluice/pipeline/sql_planner.h"

namespace sluice::pipeline {

// Thread-safe: holds nothing between runs (each run re-reads the sink's table and its progress).
class DeltaSinks {
 public:
  explicit DeltaSinks(const SqlPlanner& planner) : planner_(planner), config_(planner.config()) {}

  // Every flow into `sink`, one after the other; `report` counts rows read and written, and its
  // version is the upstream version the last flow's progress reached.
  arrow::Status run(const Sink& sink, DatasetReport& report) const;

 private:
  arrow::Status run_flow(const DeltaSinkSpec& spec, const std::string& flow, DatasetReport& report) const;

  const SqlPlanner& planner_;
  const PipelineConfig& config_;
};

// The sink table's columns against the flow's: the same names (Delta's case-insensitive
// match) and types, in any order; an error naming the sink, its path, the flow and what differs.
arrow::Status check_sink_table_schema(const DeltaSinkSpec& spec, const std::string& flow,
                                      const arrow::Schema& table, const arrow::Schema& rows);

}  // namespace sluice::pipeline
