// The bronze flow: copies a Kafka topic into a Delta table in the Kafka source schema,
// exactly once. Progress per partition is a `txn` action (appId
// <pipeline id>/<flow>/<topic>/<partition>, version = next offset) in the same commit as the
// data, so a rerun after any crash resumes exactly where the last commit ended.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <arrow/record_batch.h>

#include "sluice/common/strong_types.h"
#include "sluice/delta/snapshot_cache.h"
#include "sluice/exec/operator.h"
#include "sluice/kafka/record_source.h"
#include "sluice/kafka/source_schema.h"
#include "sluice/kafka/topic_selection.h"
#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {

class RunProgress;
class StreamingCommit;

// Kafka consumers kept alive across the updates of a continuous run: consumer-group members
// (a member that left the group after every update would make the group rebalance all the
// time) and assign-mode consumers with their read positions (no new connection, metadata and
// assignment per update). Owned by the caller of the updates; destroying it leaves the groups.
// Used by one thread at a time per flow.
class KafkaGroupMembers;
std::shared_ptr<KafkaGroupMembers> make_kafka_group_members();

// How much one update reads when max_offsets_per_trigger limits a trigger: everything
// available at its start, in as many triggers (one commit each) as that takes (triggered
// runs, --once; Spark's Trigger.AvailableNow), or one trigger (continuous runs, which start the
// next update at once while records keep coming).
enum class TriggerLimit { kAllAvailable, kOneTrigger };

struct IngestOptions {
  std::chrono::milliseconds metadata_timeout{10'000};
  // A commit is made at least every `commit_rows` records or `commit_bytes` payload bytes,
  // which bounds memory and the work a crash can lose.
  int64_t commit_rows = 2'000'000;
  int64_t commit_bytes = 256ll << 20;
  // Triggered runs: bytes of rows a table's writer may queue for the flow that takes them in
  // process (commit_channel.h) before that commit is read from its files instead (0: always).
  int64_t handoff_bytes = 64ll << 20;
  // ... and at least every `commit_interval` while records flow (0: no time bound).
  std::chrono::milliseconds commit_interval{0};
  // A batch read from Kafka goes to the operators and the writer once it holds `batch_rows`
  // records or `batch_bytes` of key and value bytes. Up to ~7 batches are alive at once (the
  // one being read, the stage's queued and running job, and one queued and one being encoded
  // per writer lane), so the byte bound is what keeps a flow's memory independent of the
  // record size (64 Ki rows of 200-byte records were ~15 MB each, ~100 MB in all).
  int64_t batch_rows = 65'536;
  int64_t batch_bytes = 4ll << 20;
  // Fail when no record arrives for this long although the partition is not at its end.
  std::chrono::milliseconds stall_timeout{60'000};
  // Set (by a signal handler) to end the update early: the records consumed so far are
  // committed with their offsets, and the rest is left for the next update.
  const std::atomic<bool>* stop = nullptr;
  // Streaming tables to reset and reprocess in this update ("*": all of them).
  std::vector<std::string> full_refresh;
  // Set by continuous runs: flows with group_mode subscribe join their consumer group and keep
  // their membership here. Null (triggered runs, --once): every flow assigns all partitions.
  std::shared_ptr<KafkaGroupMembers> group_members;
  TriggerLimit trigger_limit = TriggerLimit::kAllAvailable;
  // Set by continuous runs: table snapshots kept across updates (the targets, side tables and
  // Delta sources of the flows), advanced by the commits after them. Null: each update loads
  // its tables from their newest checkpoint.
  std::shared_ptr<delta::SnapshotCache> snapshots;
  // Triggered runs on a terminal (`sluice run --progress`): the flows report rows read and the
  // Kafka backlog there as they go (run_progress.h). Not owned; null: nobody watches.
  RunProgress* progress = nullptr;
  // `sluice test`: Kafka records come from these sources instead of the clusters (triggered
  // updates only: continuous runs, which set group_members, refuse them). Null: each flow
  // connects to its cluster.
  std::shared_ptr<kafka::RecordSourceFactory> record_sources;
  // `sluice test`: datasets whose rows the test gives; their flows do not run. The SQL runner
  // commits `given_rows` (this update's rows, in the dataset's planned schema) as the dataset's
  // own flow would (its TBLPROPERTIES, partitioning, clustering, comment), creating the table at
  // its first update even without rows, and reports it as given.
  std::set<std::string> given_datasets;
  std::map<std::string, std::shared_ptr<arrow::RecordBatch>> given_rows;
  // `sluice test`: sinks do not run (nothing to write to without a broker; the test says so).
  bool run_sinks = true;

  bool stopping() const { return stop != nullptr && stop->load(); }
};

// How a flow's Kafka partitions are spread over sluice processes.
enum class GroupMode {
  kAssign,     // this process reads every partition (the default; --once always does)
  kSubscribe,  // continuous runs join a consumer group; partitions move between members
};

// Per topic, per partition id: an offset (-2 earliest, -1 latest) or a timestamp (ms).
using PartitionValues = std::map<std::string, std::map<int32_t, int64_t>>;

// A flow from Kafka topics into a streaming table.
struct KafkaFlowSpec {
  std::string table;  // target dataset
  std::string flow;   // flow name: part of the txn appId
  std::string topic;  // one topic; ignored when `topics` is set
  kafka::TopicSelection topics;  // a list of topics or a pattern (read_kafka topic/subscribe...)
  std::string cluster = "default";
  StartingOffsets starting_offsets = StartingOffsets::kEarliest;
  std::string comment;
  std::shared_ptr<arrow::Schema> output_schema;  // schema of what `operators` return
  // The flow's operators (decode, query, expectations; flow_operators.h) each batch of Kafka
  // source rows goes through. Not owned. Null: write the Kafka rows as they are.
  exec::BatchOperator* operators = nullptr;
  std::vector<std::string> partition_columns;
  std::vector<std::vector<std::string>> clustering_columns;  // CLUSTER BY (paths)
  std::map<std::string, std::string> properties;  // table properties for a new table
  // For partitions with no recorded progress, where to start, by precedence: a timestamp of
  // the partition (startingOffsetsByTimestamp), a timestamp for all (startingTimestamp), an
  // offset of the partition (startingOffsets JSON, -2 earliest, -1 latest), starting_offsets.
  PartitionValues starting_partition_timestamps;
  std::optional<int64_t> starting_timestamp;  // ms since the epoch
  PartitionValues starting_partition_offsets;
  // Where to stop (exclusive): the first offset at or after a timestamp, or an offset
  // (endingOffsetsByTimestamp, endingTimestamp, endingOffsets JSON); else the high-water mark.
  PartitionValues ending_partition_timestamps;
  std::optional<int64_t> ending_timestamp;
  PartitionValues ending_partition_offsets;
  std::optional<int64_t> max_offsets_per_trigger;  // records per update, spread by lag
  bool fail_on_data_loss = true;                   // else skip expired offsets with a warning
  kafka::HeadersColumn headers = kafka::HeadersColumn::kInclude;  // include_headers
  GroupMode group_mode = GroupMode::kAssign;
  std::string group_id;  // empty: <group_id_prefix>-<pipeline> (assign), ...-<flow> (subscribe)
  std::string group_id_prefix = "sluice";

  // The topics as given: `topics` if set, else `topic`.
  kafka::TopicSelection selection() const;
  // The consumer group id for this flow in `pipeline`.
  std::string consumer_group(const std::string& pipeline) const;
  // The protocol the flow commits the target through (streaming_commit.h), with the side
  // tables (quarantine, dead letters, late rows) and operator state the caller opened in it;
  // it re-reads them when the flow re-reads the table (group mode) and resets their progress
  // with the flow's (a re-created topic). Not owned. Null: the flow makes its own from this
  // spec (no side tables, no state).
  StreamingCommit* commit = nullptr;
  // Called after the commit that first records progress past records the flow skipped for
  // good (fail_on_data_loss => false): even when the update fails later, the range is logged.
  std::function<void(const KafkaDataLoss&)> on_data_loss;
};

// Where a partition without recorded progress starts, by the spec's precedence.
struct StartRule {
  enum class Kind { kEarliest, kLatest, kOffset, kTimestamp };
  Kind kind;
  int64_t value = 0;  // the offset or timestamp
  auto operator<=>(const StartRule&) const = default;
};
StartRule start_rule(const KafkaFlowSpec& spec, const std::string& topic, KafkaPartition partition);
// Where a partition's read stops (exclusive): an offset, a timestamp, or the high-water mark.
struct EndRule {
  enum class Kind { kHighWaterMark, kOffset, kTimestamp };
  Kind kind;
  int64_t value = 0;
  auto operator<=>(const EndRule&) const = default;
};
EndRule end_rule(const KafkaFlowSpec& spec, const std::string& topic, KafkaPartition partition);

struct IngestReport {
  std::string table;
  std::string topic;  // the topics read, comma-separated
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int commits = 0;
  int conflicts = 0;  // group mode: commits dropped because another member won a partition
  int64_t table_version = -1;  // latest version after the run
  int64_t backlog = 0;         // records behind the high-water marks seen at start (Kafka lag)
  std::vector<KafkaPartitionLag> kafka_lag;  // the same per partition (a group member: its own)
  int consumers_created = 0;   // Kafka consumers this update made (continuous runs keep theirs)
  std::vector<KafkaDataLoss> data_loss;  // ranges skipped with fail_on_data_loss => false
};

// Triggered run of a Kafka flow: everything up to the high-water marks seen at start.
arrow::Result<IngestReport> run_kafka_flow_once(const PipelineConfig& config, const KafkaFlowSpec& spec,
                                                const IngestOptions& options = {});

}  // namespace sluice::pipeline
