// A table a flow writes beside its target — `<table>_quarantine` (rows its expectations
// dropped) and `<table>_dead_letter` (records that could not be decoded) — exactly once, like
// the target: each commit records the same txn appIds (source progress) as the target's commit
// that follows it. The side table commits first, so after a crash between the two commits the
// flow replays from the target's progress and the side table skips what it already holds
// (rows whose source position is below its own recorded progress).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "sluice/delta/snapshot.h"
#include "sluice/delta/snapshot_cache.h"
#include "sluice/delta/table_writer.h"

namespace sluice::pipeline {

// appId -> version, as recorded in Delta txn actions.
using TxnVersions = std::map<std::string, int64_t>;

// Thread-compatible: owned by one flow run.
class SideTable {
 public:
  // The table at `path` in `objects` (the pipeline's storage).
  static arrow::Result<std::unique_ptr<SideTable>> make(std::shared_ptr<storage::ObjectStore> objects,
                                                        std::filesystem::path path, std::string name,
                                                        std::shared_ptr<arrow::Schema> schema,
                                                        std::string description,
                                                        delta::SnapshotCache* snapshots = nullptr);

  const std::string& name() const { return name_; }
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  // The progress this table recorded for `app_id` before this run (none: -1).
  int64_t committed(const std::string& app_id) const;

  arrow::Status write(const arrow::RecordBatch& rows);
  int64_t pending_rows() const { return writer_ ? writer_->rows_written() : 0; }
  int64_t rows_committed() const { return rows_committed_; }

  // Drops what was written and not committed, and re-reads the table's progress (after the
  // flow re-read its own from the log, e.g. when partitions moved between workers).
  arrow::Status reload();

  // The flow moved `app_id`'s progress back to the start of a re-created topic: nothing of the
  // new records is here yet, and the next commit records the lower progress (even without rows).
  void reset(const std::string& app_id);

  // Commits what was written with `txns` (only those that advance, or that were reset). Creates the table on the
  // first call even when empty, so readers can open it; otherwise an empty batch commits
  // nothing (replay produces the same rows, so skipping is safe).
  arrow::Status commit(const TxnVersions& txns);

 private:
  SideTable() = default;
  std::shared_ptr<delta::LogStore> store_;
  std::string name_;
  std::string description_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<const delta::Snapshot> snapshot_;
  delta::SnapshotCache* snapshots_ = nullptr;  // continuous runs: kept across updates
  TxnVersions committed_at_start_;
  std::set<std::string> reset_;  // appIds whose progress went back (reset) since the last commit
  std::unique_ptr<delta::TableWriter> writer_;
  int64_t rows_committed_ = 0;
};

}  // namespace sluice::pipeline
