// The streaming commit protocol: the one way a streaming flow commits its target table, with
// the side tables beside it, its operator state and its source progress (DESIGN.md §4).
//
// A StreamingCommit owns the target's table writer, the flow's side tables (quarantine, dead
// letters, late rows), the snapshots of its operator state (StateStore) and the appIds of its
// source progress (ProgressIds: the only caller of progress_id.h's builders). Every commit
// goes through commit(), in this order — the exactly-once contract:
//
//   1. The target's pending data files are closed (TableWriter::finish). Nothing is visible.
//   2. Each side table commits its rows, in the order the side tables were opened, with the
//      progress the target is about to record (each records only progress that advanced, or
//      that was reset; an empty side table commits nothing once it exists).
//   3. The operator state is saved (fsynced), one file per part, labelled with that progress.
//   4. The target commits its rows and the progress, as `txn` actions, in one Delta commit
//      (progress that did not change is not written again; markers such as the last record's
//      fingerprint only when they changed).
//
// What a crash between the steps means (tests/integration/test_exactly_once_chaos.py,
// fail points `after_side_table_commit` and `after_state_save`):
//   - before 4, the target shows nothing of the commit and its progress is the previous
//     commit's: the flow replays from there. A side table that already committed (2) holds the
//     replayed rows: the flow skips rows whose source position lies below the side table's own
//     recorded progress (SideTable::committed). A state snapshot saved in 3 is labelled with a
//     progress the target never recorded: an orphan, deleted at the next load, which picks
//     the snapshot whose progress equals the target's.
//   - after 4, target, side tables and state line up at the same progress.
// A failed step aborts the writer (its files are deleted); the flow's state in memory is then
// ahead of the table, so the flow ends its update (or reload()s in group mode) and continues
// from the committed state.
//
// Thread-compatible: owned by one flow run. The writer may be written from a stage thread
// while the owner waits; every call here happens after that thread drained.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/snapshot_cache.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"
#include "sluice/exec/event_time_operator.h"
#include "sluice/exec/operator.h"

#include "sluice/pipeline/auto_compaction.h"
#include "sluice/pipeline/commit_channel.h"
#include "sluice/pipeline/progress_id.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/pipeline/state_store.h"

namespace sluice::pipeline {

// The txn appIds of one flow's progress, built from typed source positions.
class ProgressIds {
 public:
  ProgressIds(PipelineId pipeline, std::string flow);

  // A Kafka partition's progress (version: the next offset to read).
  std::string kafka(const std::string& topic, KafkaPartition partition) const;
  // The fingerprint of the last record read from a Kafka partition (a marker, not progress).
  std::string kafka_last_record(const std::string& topic, KafkaPartition partition) const;
  // The fingerprint of a materialized view's query (a marker, not progress).
  std::string view_query() const;
  // Whether the flow's state snapshots are committed (a marker, not progress).
  std::string state_kept() const;
  // An upstream Delta table's progress (version: the upstream version consumed).
  std::string delta(const std::string& upstream_table_id, DeltaReader reader = DeltaReader::kOnly) const;
  // Whether `app_id` is progress of this flow (any source; markers are not).
  bool owns(const std::string& app_id) const;
  // The progress of this flow that `snapshot` records (empty for none).
  TxnVersions recorded_in(const delta::Snapshot* snapshot) const;

  const PipelineId& pipeline() const { return pipeline_; }
  const std::string& flow() const { return flow_; }

 private:
  PipelineId pipeline_;
  std::string flow_;
};

// What one commit records: typed source positions, as txn appId -> version.
class SourceProgress {
 public:
  explicit SourceProgress(ProgressIds ids) : ids_(std::move(ids)) {}

  void kafka(const std::string& topic, KafkaPartition partition, KafkaOffset next);
  // `encoded`: kafka::encode_fingerprint's value; -1 for none.
  void kafka_last_record(const std::string& topic, KafkaPartition partition, int64_t encoded);
  void delta(const std::string& upstream_table_id, DeltaReader reader, DeltaVersion consumed);
  // A materialized view's query fingerprint (ProgressIds::view_query), kept non-negative.
  void view_query(int64_t fingerprint);

  // The progress: recorded by the target, its side tables, and the state snapshot's label.
  const TxnVersions& positions() const { return positions_; }
  // Recorded by the target only, when changed.
  const TxnVersions& markers() const { return markers_; }

 private:
  ProgressIds ids_;
  TxnVersions positions_;
  TxnVersions markers_;
};

// State snapshotted with every commit of its flow: a stateful operator chain (window
// aggregation, dedup, stream-stream join; set_state(BatchOperator&) adapts it), an incremental
// view's partials. One exec::WindowState per part, parts as given to set_state.
class CommittedState {
 public:
  virtual ~CommittedState() = default;
  // The state to save with the commit about to land, one per part; none (empty) when it did not
  // change since the last landed commit, whose snapshot then still holds (its progress too).
  virtual arrow::Result<std::vector<exec::WindowState>> snapshot_state() = 0;
  // Continues from the last landed commit's state; none: the flow starts without state.
  virtual arrow::Status restore_state(std::optional<std::vector<exec::WindowState>> parts) = 0;
};

struct StreamingCommitOptions {
  PipelineId pipeline;
  std::string flow;
  std::string table;  // for messages and the table's name
  std::filesystem::path table_path;  // in `objects`' namespace (PipelineConfig::table_path)
  std::shared_ptr<arrow::Schema> schema;  // what the flow writes
  // How new files are written and the table created (name, description, configuration,
  // partition columns, schema mode); CHECK constraints are always enforced.
  delta::WriteOptions write;
  // commitInfo.operation of a commit; empty: Spark's streaming update (Transaction::streaming_update).
  std::string operation;
  // Continuous runs: the target's and side tables' snapshots kept across updates. Not owned.
  delta::SnapshotCache* snapshots = nullptr;
  // The pipeline's storage: the table, its side tables and its state snapshots live there.
  std::shared_ptr<storage::ObjectStore> objects = storage::local_store();
  // The target's gate when auto compaction looks after it (auto_compaction.h): held from a
  // writer's snapshot to its commit, so a compaction never commits in between. Not owned.
  TableGate* gate = nullptr;
};

// The columns `after` has changed against `before` (a query whose schema evolved, a
// --full-refresh): "name type" added, "name" removed, "name: from -> to" retyped, compared by
// their Delta type names, so a change of nullability (nested too) or metadata alone is none.
struct ColumnChanges {
  std::vector<std::string> added, removed, retyped;
  bool empty() const { return added.empty() && removed.empty() && retyped.empty(); }
};
ColumnChanges column_changes(const arrow::Schema& before, const arrow::Schema& after);

class StreamingCommit {
 public:
  // Opens the target (its latest snapshot, none for a new table).
  static arrow::Result<std::unique_ptr<StreamingCommit>> make(StreamingCommitOptions options);

  const ProgressIds& ids() const { return ids_; }
  // A new, empty progress for the next commit.
  SourceProgress progress() const { return SourceProgress(ids_); }
  // The target as of the last commit (or the last reload); null: no table yet.
  const std::shared_ptr<const delta::Snapshot>& snapshot() const { return snapshot_; }
  // The version the target records for `app_id` (negative: reset by a full refresh).
  std::optional<int64_t> recorded(const std::string& app_id) const;
  const std::string& table() const { return options_.table; }

  // A side table, committed before the target with the same progress (step 2). Owned here.
  arrow::Result<SideTable*> open_side_table(std::filesystem::path path, std::string name,
                                            std::shared_ptr<arrow::Schema> schema, std::string description);
  // The flow's operator state, saved under <table>/_sluice_state/<flow>[/<part>] (one part
  // named "" is the folder itself). Not owned; must outlive this object's commits.
  void set_state(CommittedState* state, std::vector<std::string> parts = {""});
  // The state of a flow's stateful operators (an operator chain: window aggregation, dedup,
  // stream-stream join), in the parts the chain names (BatchOperator::state_parts): its
  // snapshot() is saved with every commit, restore() called by load_state and reload. Not
  // owned; must outlive this object's commits.
  void set_state(exec::BatchOperator& operators);
  // Restores the state whose label equals `committed` (the progress the target records for
  // the sources the flow reads now); an error when the target has progress but no state.
  arrow::Status load_state(const TxnVersions& committed);

  // The writer of the target's rows for the next commit (made on first use).
  arrow::Result<delta::TableWriter*> writer();
  bool has_writer() const { return writer_ != nullptr; }
  int64_t pending_rows() const { return writer_ ? writer_->rows_written() : 0; }

  // Steps 1-4 above; commits even without rows (a new table is created, progress recorded).
  // `operation_parameters` are added to commitInfo's.
  arrow::Result<delta::CommitResult> commit(const SourceProgress& progress,
                                            const nlohmann::json& operation_parameters = nlohmann::json::object());
  // Hands the rows of every commit to the flow that reads the target in this run
  // (commit_channel.h): each new writer, publish(), and whether the commit landed. Not owned.
  void publish_to(CommitChannel* channel) { channel_ = channel; }
  // Rows just written to writer(), in writing order; may be called from the writer's thread.
  void publish(const std::shared_ptr<arrow::RecordBatch>& rows) {
    if (!channel_) return;
    published_rows_ += rows->num_rows();
    channel_->write(rows);
  }
  // Drops the target's rows not committed (their files are deleted).
  void abort();
  // Drops everything not committed and re-reads target, side tables and state (another
  // writer may have committed: group-mode rebalance, a lost commit race).
  arrow::Status reload();
  // The flow moved progress `app_id` back (a re-created topic): side tables skip nothing of it
  // in this run and record the lower progress at their next commit.
  void reset(const std::string& app_id);

  int64_t rows_committed() const { return rows_committed_; }
  int64_t state_file_bytes() const { return state_file_bytes_; }

 private:
  explicit StreamingCommit(StreamingCommitOptions options);
  std::filesystem::path state_dir(const std::string& part) const;
  arrow::Result<std::shared_ptr<const delta::Snapshot>> load_latest() const;

  StreamingCommitOptions options_;
  ProgressIds ids_;
  std::shared_ptr<delta::LogStore> store_;
  std::shared_ptr<const delta::Snapshot> snapshot_;
  std::unique_ptr<delta::TableWriter> writer_;
  TableGate::Hold hold_;  // while writer_ is open (options_.gate)
  std::vector<std::unique_ptr<SideTable>> side_tables_;
  CommittedState* state_ = nullptr;
  std::unique_ptr<CommittedState> operator_state_;  // set_state(BatchOperator&): state_ points here
  std::vector<std::string> state_parts_;
  std::vector<std::unique_ptr<StateStore>> state_stores_;  // one per part
  CommitChannel* channel_ = nullptr;
  // Rows publish()ed for the writer in progress: a commit whose writer holds other rows too
  // (written without publish()) is lost to the channel, never handed on incomplete.
  std::atomic<int64_t> published_rows_ = 0;
  int64_t rows_committed_ = 0;
  int64_t state_file_bytes_ = 0;
};

}  // namespace sluice::pipeline
