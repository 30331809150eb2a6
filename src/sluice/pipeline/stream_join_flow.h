// A streaming-table flow that joins two streams: reads the rows each upstream Delta table added
// since the target's last commit (one txn appId per side) and pushes them, side by side,
// through its chain (exec::StreamJoinOperator, then the table's operators); the streaming
// commit saves the chain's state under the commit's progress, then commits rows and progress.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/exec/operator.h"
#include "sluice/exec/select_plan.h"
#include "sluice/pipeline/auto_compaction.h"
#include "sluice/pipeline/progress_id.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

struct StreamJoinFlowSpec {
  PipelineId pipeline;
  std::string table;
  std::string flow;
  std::filesystem::path table_path;
  std::filesystem::path left_path, right_path;  // the upstream tables of the two sides
  std::shared_ptr<storage::ObjectStore> objects = storage::local_store();  // where all three live
  std::map<std::string, std::string> configuration;
  std::optional<std::string> description;  // COMMENT
  std::vector<std::string> partition_columns;
  std::vector<std::vector<std::string>> clustering_columns;  // CLUSTER BY (paths)
  std::shared_ptr<arrow::Schema> schema;
  // The plan's output rows -> the table's rows (conform to the schema, expectations;
  // flow_operators.h); stateless (the join's state is the flow's).
  std::unique_ptr<exec::BatchOperator> operators;
  TableGate* gate = nullptr;  // the target's, when auto compaction looks after it
};

struct StreamJoinFlowResult {
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int64_t rows_late = 0;
  int64_t version = -1;  // the target's version after the run
  int64_t state_rows = 0;
  int64_t state_bytes = 0;
  int64_t watermark = INT64_MIN;  // the lower of the two sides' watermarks
};

// One run (triggered, or one iteration of continuous mode).
arrow::Result<StreamJoinFlowResult> run_stream_join_flow(const exec::SelectPlan& plan, StreamJoinFlowSpec spec);

}  // namespace sluice::pipeline
