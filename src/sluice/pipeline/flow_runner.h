// Runs one stored dataset of a planned pipeline (SqlPlanner): the flows of a streaming table
// (Kafka source: kafka_source_flow.cc; Delta source: delta_source_flow.cc; the parts both
// share and stream-stream joins: streaming_flow.cc) or the refresh of a materialized view
// (materialized_view_flow.cc).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table_writer.h"
#include "sluice/pipeline/auto_compaction.h"
#include "sluice/pipeline/commit_channel.h"
#include "sluice/pipeline/dataset_report.h"
#include "sluice/exec/row_operators.h"
#include "sluice/pipeline/expectations.h"
#include "sluice/pipeline/flow_operators.h"
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

  // Triggered runs: the channels that hand tables' rows to their readers in process
  // (commit_channel.h); set before the run starts, outlives it. Null: every flow reads files.
  void set_channels(CommitChannels* channels) { channels_ = channels; }
  // The run's auto compaction (auto_compaction.h): the flows hold its tables' gates while they
  // write. Set before the run starts, outlives it. Null: no table is compacted.
  void set_maintenance(TableMaintenance* maintenance) { maintenance_ = maintenance; }

  // Every flow into a streaming table, one after the other.
  arrow::Status run_streaming(const Dataset& d, DatasetReport& report);
  // Recomputes a materialized view (incrementally where it can) and replaces it in one commit.
  arrow::Status run_materialized(const Dataset& d, DatasetReport& report);

 private:
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
  };

  // What a flow reading a Delta upstream (its files or its change feed) builds first.
  struct DeltaSourceSetup {
    std::shared_ptr<const delta::Snapshot> snapshot;  // the upstream's, at the version read up to
    std::string app_id;  // this flow's progress on the upstream table (a txn appId)
    std::unique_ptr<DeltaPositions> positions;  // the operators point at it
    std::unique_ptr<exec::OperatorChain> operators;
    std::optional<int64_t> done;  // the upstream version recorded; none at first or after a full refresh
  };

  // One flow into a streaming table; its progress is its own txn appId.
  arrow::Status run_flow(const Dataset& d, const std::string& flow_name, DatasetReport& report);
  arrow::Status run_kafka_source(StreamingFlow& f, const exec::PlanSource& src);
  arrow::Status run_delta_source(StreamingFlow& f, const exec::PlanSource& src);
  // STREAM table_changes(...): the upstream's change feed since the version in this flow's txn
  // (change_feed_flow.cc).
  arrow::Status run_change_feed_source(StreamingFlow& f, const exec::PlanSource& src);
  // The upstream's snapshot (at version `upto`; none: the latest), the flow's app id, operators
  // and recorded progress (delta_source_flow.cc).
  arrow::Result<DeltaSourceSetup> delta_source_setup(StreamingFlow& f, const exec::PlanSource& src,
                                                     const delta::LogStore& upstream, std::optional<int64_t> upto);
  // The rows of one upstream file (read batch by batch) through the operators into the writer.
  static arrow::Status push_file(arrow::RecordBatchReader& reader, int64_t version, exec::OperatorChain& operators,
                                 delta::TableWriter& writer, DatasetReport& report);
  // The upstream's files from the flow's progress up to version `upto` (none: the latest).
  arrow::Status read_delta_files(StreamingFlow& f, const exec::PlanSource& src, std::optional<int64_t> upto);
  // The upstream's commits of this run from `channel`, files for the rest.
  arrow::Status take_delta_in_process(StreamingFlow& f, const exec::PlanSource& src, CommitChannel& channel);
  arrow::Status run_stream_join(const Dataset& d, const std::string& flow_name, DatasetReport& report);
  // APPLY CHANGES / AUTO CDC into an SCD type 1 or 2 target (apply_changes_flow.cc).
  arrow::Status run_apply_changes(const Dataset& d, const std::string& flow_name, DatasetReport& report);
  // The operators' inputs that do not depend on the source kind.
  arrow::Result<FlowOperatorsSpec> operators_spec(StreamingFlow& f, const SourcePositions& positions);
  arrow::Result<SideTable*> open_quarantine(const Dataset& d, StreamingCommit& commit) const;
  // A flow's stream-static join (exec/stream_static_join.h), kept for the whole run so its hash
  // tables are built again only when a static table gets a new version.
  arrow::Result<exec::StreamStaticJoin*> stream_static_join(const std::string& flow_name, const exec::SelectPlan& plan);

  const SqlPlanner& planner_;
  const PipelineConfig& config_;
  const IngestOptions& options_;
  DeltaStaticTables static_tables_{config_.objects, config_.storage / "tables"};  // thread-safe
  std::mutex static_mutex_;  // guards static_joins_ (flows run on several threads)
  std::map<std::string, std::unique_ptr<exec::StreamStaticJoin>> static_joins_;  // by flow name
  CommitChannels* channels_ = nullptr;
  TableMaintenance* maintenance_ = nullptr;
};

}  // namespace sluice::pipeline
