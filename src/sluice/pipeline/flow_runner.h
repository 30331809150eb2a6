// Runs one stored dataset of a planned pipeline (SqlPlanner): the flows of a streaming table
// (Kafka source: kafka_source_flow.cc; Delta source: delta_source_flow.cc; the parts both
// share and stream-stream joins: streaming_flow.cc) or the refresh of a materialized view
// (materialized_view_flow.cc).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/expectations.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/exec/stream_static_join.h"
#include "sluice/pipeline/sql_planner.h"
#include "sluice/pipeline/static_tables.h"
#include "sluice/pipeline/streaming_commit.h"
#include "sluice/pipeline/windowed_flow.h"

namespace sluice::pipeline {

// Thread-safe: the datasets of an update run on several threads, one FlowRunner for all.
class FlowRunner {
 public:
  explicit FlowRunner(const SqlPlanner& planner)
      : planner_(planner), config_(planner.config()), options_(planner.options()) {}

  // Every flow into a streaming table, one after the other.
  arrow::Status run_streaming(const Dataset& d, DatasetReport& report);
  // Recomputes a materialized view (incrementally where it can) and replaces it in one commit.
  arrow::Status run_materialized(const Dataset& d, DatasetReport& report);

 private:
  // Rows of the table; with a quarantine, `positions` (given the indices of dropped rows in
  // `input`) says where each dropped row came from and whether it is already quarantined.
  using Positions = std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(
      const Expectations::Dropped&, const std::shared_ptr<arrow::Array>& input_rows)>;
  // `source_of(i)` names the source position of row i of `input`.
  using SourceOf = std::function<std::string(int64_t)>;
  // Where the rows of the current input batch came from (windowed flows only).
  using WindowConsume = std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(
      const arrow::RecordBatch& input, const arrow::RecordBatch& rows, const arrow::Array& input_rows)>;

  // One flow into a streaming table as run_flow builds it, for the source that feeds it.
  struct StreamingFlow {
    const Dataset& d;
    const std::string& flow_name;
    DatasetReport& report;
    const exec::SelectPlan& plan;
    const Expectations& ex;
    const std::shared_ptr<arrow::Schema>& schema;
    StreamingCommit& commit;  // target, side tables, state and progress (streaming_commit.h)
    SideTable* quarantine;    // owned by `commit`
    std::unique_ptr<WindowedFlow> windowed;  // GROUP BY window(...) or SELECT DISTINCT
    WindowConsume window_consume;            // set by the source while windowed
  };

  // One flow into a streaming table; its progress is its own txn appId.
  arrow::Status run_flow(const Dataset& d, const std::string& flow_name, DatasetReport& report);
  arrow::Status run_kafka_source(StreamingFlow& f, const exec::PlanSource& src);
  arrow::Status run_delta_source(StreamingFlow& f, const exec::PlanSource& src);
  arrow::Status run_stream_join(const Dataset& d, const std::string& flow_name, DatasetReport& report);
  // A batch of the flow's source as rows of the table: row stages or stream-static join, the
  // event-time operator, the table's schema, expectations (dropped rows to the quarantine).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> table_rows(StreamingFlow& f, const arrow::RecordBatch& input,
                                                                const Positions& quarantine_rows,
                                                                const SourceOf& source_of);
  arrow::Result<SideTable*> open_quarantine(const Dataset& d, StreamingCommit& commit) const;
  // A flow's stream-static join (exec/stream_static_join.h), kept for the whole run so its hash
  // tables are built again only when a static table gets a new version.
  arrow::Result<exec::StreamStaticJoin*> stream_static_join(const std::string& flow_name, const exec::SelectPlan& plan);

  const SqlPlanner& planner_;
  const PipelineConfig& config_;
  const IngestOptions& options_;
  DeltaStaticTables static_tables_{config_.storage / "tables"};  // thread-safe
  std::mutex static_mutex_;  // guards static_joins_ (flows run on several threads)
  std::map<std::string, std::unique_ptr<exec::StreamStaticJoin>> static_joins_;  // by flow name
};

}  // namespace sluice::pipeline
