// The bronze flow: copies a Kafka topic into a Delta table in the Kafka source schema,
// exactly once. Progress per partition is a `txn` action (appId
// <pipeline>/<table>/<topic>/<partition>, version = next offset) in the same commit as the
// data, so a rerun after any crash resumes exactly where the last commit ended.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <string>

#include "sluice/common/strong_types.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {

struct IngestOptions {
  std::chrono::milliseconds metadata_timeout{10'000};
  // A commit is made at least every `commit_rows` records or `commit_bytes` payload bytes,
  // which bounds memory and the work a crash can lose.
  int64_t commit_rows = 2'000'000;
  int64_t commit_bytes = 256ll << 20;
  int64_t batch_rows = 65'536;
  // Fail when no record arrives for this long although the partition is not at its end.
  std::chrono::milliseconds stall_timeout{60'000};
};

struct IngestReport {
  std::string table;
  std::string topic;
  int64_t rows_written = 0;
  int commits = 0;
  int64_t table_version = -1;  // latest version after the run
};

// Transaction app id of one topic partition's progress for a flow.
std::string kafka_txn_app_id(const std::string& pipeline, const std::string& flow,
                             const std::string& topic, KafkaPartition partition);

// Triggered run: reads everything up to the high-water marks seen at start, then returns.
arrow::Result<IngestReport> run_kafka_ingest_once(const PipelineConfig& config,
                                                  const BronzeTableConfig& table,
                                                  const IngestOptions& options = {});

}  // namespace sluice::pipeline
