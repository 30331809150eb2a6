// Runs a SQL pipeline once (triggered): every dataset in dependency order. Streaming tables
// read Kafka (read_kafka) or the rows their upstream Delta tables added since the last run,
// exactly once (txn progress in the same commit); materialized views are recomputed and
// replaced in one commit. Expectations are checked on every batch.
#pragma once

#include <arrow/result.h>

#include <arrow/type_fwd.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/kafka_ingest_flow.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/scheduler.h"     // ContinuousOptions
#include "sluice/pipeline/sql_planner.h"   // SchemaInference

namespace sluice::pipeline {

arrow::Result<std::vector<DatasetReport>> run_sql_pipeline_once(const PipelineConfig& config,
                                                                const Graph& graph,
                                                                const IngestOptions& options = {});

// Continuous mode: every dataset in its own loop until `options.stop` is set (then each commits
// what it read and the call returns OK), or until an error that a retry cannot fix.
arrow::Status run_sql_pipeline_continuous(const PipelineConfig& config, const Graph& graph,
                                          const IngestOptions& options, const ContinuousOptions& continuous);

struct ValidateReport {
  std::map<std::string, std::shared_ptr<arrow::Schema>> schemas;  // every dataset planned
  // Datasets not planned because a schema they need is inferred at the first run and not known
  // yet (kFrozenOnly), and why; downstream datasets say which input they wait for.
  std::map<std::string, std::string> not_checked;
  // Where an inferred schema a dataset uses came from (frozen file, or sampled now).
  std::map<std::string, std::string> notes;
};

// Plans (binds and type-checks) every dataset without running anything, refusing what run
// would refuse; or every error found.
arrow::Result<ValidateReport> validate_sql_pipeline(const PipelineConfig& config, const Graph& graph,
                                                    SchemaInference inference);

// Whether the pipeline reads Kafka and every read_kafka joins a consumer group
// (reads_kafka_as_group_member on the options the planner reads): the SQL half of whether a
// continuous run may scale out over several processes (run_lock.h).
bool every_kafka_read_joins_a_group(const Graph& graph);

// validate_sql_pipeline with kFrozenOnly: the output schema of each dataset planned.
arrow::Result<std::map<std::string, std::shared_ptr<arrow::Schema>>> check_sql_pipeline(
    const PipelineConfig& config, const Graph& graph);

// Column lineage of every planned dataset: output column -> source columns
// ("<dataset or kafka:topic>.<column>"), through views, subqueries, joins and aggregates.
arrow::Result<std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>>>
sql_pipeline_lineage(const PipelineConfig& config, const Graph& graph);

}  // namespace sluice::pipeline
