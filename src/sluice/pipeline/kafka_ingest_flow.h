// The bronze flow: copies a Kafka topic into a Delta table in the Kafka source schema,
// exactly once. Progress per partition is a `txn` action (appId
// <pipeline>/<table>/<topic>/<partition>, version = next offset) in the same commit as the
// data, so a rerun after any crash resumes exactly where the last commit ended.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/record_batch.h>

#include "sluice/common/strong_types.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {

struct IngestOptions {
  std::chrono::milliseconds metadata_timeout{10'000};
  // A commit is made at least every `commit_rows` records or `commit_bytes` payload bytes,
  // which bounds memory and the work a crash can lose.
  int64_t commit_rows = 2'000'000;
  int64_t commit_bytes = 256ll << 20;
  // ... and at least every `commit_interval` while records flow (0: no time bound).
  std::chrono::milliseconds commit_interval{0};
  int64_t batch_rows = 65'536;
  // Fail when no record arrives for this long although the partition is not at its end.
  std::chrono::milliseconds stall_timeout{60'000};
  // Set (by a signal handler) to end the update early: the records consumed so far are
  // committed with their offsets, and the rest is left for the next update.
  const std::atomic<bool>* stop = nullptr;
  // Streaming tables to reset and reprocess in this update ("*": all of them).
  std::vector<std::string> full_refresh;

  bool stopping() const { return stop != nullptr && stop->load(); }
};

// Turns a batch of Kafka source rows into the rows to write (projection, filters,
// expectations); may return fewer rows.
using BatchTransform =
    std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(const arrow::RecordBatch&)>;

// A flow from one Kafka topic into a streaming table.
struct KafkaFlowSpec {
  std::string table;  // target dataset
  std::string flow;   // flow name: part of the txn appId
  std::string topic;
  std::string cluster = "default";
  StartingOffsets starting_offsets = StartingOffsets::kEarliest;
  std::string comment;
  std::shared_ptr<arrow::Schema> output_schema;  // schema of what transform returns
  BatchTransform transform;                      // empty: write the Kafka rows as they are
  std::vector<std::string> partition_columns;
  std::map<std::string, std::string> properties;  // table properties for a new table
  // Per-partition starting offsets for partitions with no recorded progress (-2 earliest,
  // -1 latest), and per-partition offsets to stop before (Spark's startingOffsets /
  // endingOffsets JSON for this topic).
  std::map<int32_t, int64_t> starting_partition_offsets;
  std::map<int32_t, int64_t> ending_partition_offsets;
  std::optional<int64_t> max_offsets_per_trigger;  // records per update, spread by lag
  bool fail_on_data_loss = true;                   // else skip expired offsets with a warning
  // Called before each commit of the target with the progress (txn appId -> next offset) that
  // commit records: side tables (quarantine, dead letters) commit their rows with the same
  // progress first. An error aborts the target's commit.
  std::function<arrow::Status(const std::map<std::string, int64_t>&)> pre_commit;
};

struct IngestReport {
  std::string table;
  std::string topic;
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int commits = 0;
  int64_t table_version = -1;  // latest version after the run
  int64_t backlog = 0;         // records behind the high-water marks seen at start (Kafka lag)
};

// Transaction app id of one topic partition's progress for a flow.
std::string kafka_txn_app_id(const std::string& pipeline, const std::string& flow,
                             const std::string& topic, KafkaPartition partition);

// Triggered run of a Kafka flow: everything up to the high-water marks seen at start.
arrow::Result<IngestReport> run_kafka_flow_once(const PipelineConfig& config, const KafkaFlowSpec& spec,
                                                const IngestOptions& options = {});

// The skeleton's bronze table: the Kafka rows unchanged.
arrow::Result<IngestReport> run_kafka_ingest_once(const PipelineConfig& config,
                                                  const BronzeTableConfig& table,
                                                  const IngestOptions& options = {});

}  // namespace sluice::pipeline
