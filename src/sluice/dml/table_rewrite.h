// Copy-on-write changes to a Delta table: the files a DELETE, UPDATE or MERGE replaces, the
// rows written in their place, and one commit carrying both with what was read (for conflict
// detection) and Spark's operation name, parameters and metrics.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/delta/change_data.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"

namespace sluice::dml {

// The table a statement changes, as read when it started.
struct DmlTarget {
  std::shared_ptr<delta::LogStore> store;
  std::shared_ptr<const delta::Snapshot> snapshot;
  std::string name;  // as the statement names it, for messages
  // A streaming flow's parts of the same commit (APPLY CHANGES): the txn progress it records
  // (appId -> version), and a step run once the new files are written, right before the
  // commit (saving its state); an error there deletes the files and commits nothing.
  std::map<std::string, int64_t> txns;
  std::function<arrow::Status()> before_commit;
};

// What a committed statement did: the version it made and Spark's metrics.
struct DmlOutcome {
  std::string operation;  // DELETE, UPDATE, MERGE
  DeltaVersion version{0};
  nlohmann::json metrics = nlohmann::json::object();  // values as strings, as Spark writes them
  int attempts = 1;
  // False when nothing matched: no files changed, so (as Spark's commitIfNeeded) no commit was
  // made and `version` is the version read. A target with `txns` (a streaming flow's
  // progress) is committed all the same.
  bool committed = true;
};

// The remove action of `file` (now, dataChange=true), with its partition values, size and
// deletion vector (the logical file is (path, deletion vector)).
delta::Remove removal_of(const delta::Add& file);

// Refuses DML on a table whose features sluice cannot keep while rewriting (append-only
// tables, writer features sluice does not implement); `operation` names the statement.
arrow::Status check_dml_supported(const DmlTarget& target, const std::string& operation);

class TableRewrite {
 public:
  static arrow::Result<std::unique_ptr<TableRewrite>> make(const DmlTarget& target);
  ~TableRewrite();

  const std::shared_ptr<arrow::Schema>& schema() const;
  // The file is replaced (its surviving rows are written with write(), and on a table with
  // the change data feed its changed rows with write_change()).
  void remove(const delta::Add& file);
  // All the file's rows are deleted without reading it (Spark's metadata-only DELETE): change
  // data readers derive the deletes from the remove, so no change rows are written for it.
  void drop(const delta::Add& file);
  // Rows of the table schema to write into new files.
  arrow::Status write(const arrow::RecordBatch& rows);
  // Whether the table records its change data feed (delta.enableChangeDataFeed = true): the
  // statement then passes every row it deletes, inserts or updates (before and after) to
  // write_change(), which writes them under _change_data/ (nothing when it is off).
  bool records_changes() const { return changes_ != nullptr; }
  arrow::Status write_change(const arrow::RecordBatch& rows, delta::ChangeType type);
  // Whether the table marks deleted rows in deletion vectors (delta.enableDeletionVectors on a
  // protocol with the feature) instead of rewriting files: then statements call
  // mark_deleted() and write only new and changed rows.
  bool uses_deletion_vectors() const { return deletion_vectors_; }
  // Marks rows of `file` deleted: `rows` (ascending) index the rows a scan of the file returns
  // (its current vector applied). A new vector replaces the file's; a file left without rows
  // is removed.
  arrow::Status mark_deleted(const delta::Add& file, const std::vector<int64_t>& rows);
  int64_t files_removed() const { return static_cast<int64_t>(removed_.size()); }
  int64_t bytes_removed() const { return bytes_removed_; }
  // The commit's adds and removes get dataChange=false, so streaming and change-feed readers
  // skip it (an erasure by `sluice forget`: readers must not see its rewritten rows again).
  void mark_no_data_change() { no_data_change_ = true; }
  // Time spent reading and selecting (scanTimeMs) before the first rewrite starts.
  void mark_scan_done() { scan_done_ = std::chrono::steady_clock::now(); }

  // Commits the removes and the new files (nothing when there are neither); `metrics` gains numAddedFiles/numRemovedFiles
  // (under `files_added_key`/`files_removed_key`), bytes and times. A conflict comes back as
  // delta::is_commit_conflict() with the new files deleted. On a change-data-feed table the
  // change files go with them as `cdc` actions, as Spark commits them: none when nothing was
  // removed (an append: readers derive inserts from the adds), and when files were rewritten
  // without a changed row (a MERGE whose matched rows no clause took), the adds and removes
  // are marked dataChange=false instead, so readers see no change rather than a delete and an
  // insert of every copied row.
  struct Names {
    const char* files_added = "numAddedFiles";
    const char* files_removed = "numRemovedFiles";
    const char* bytes_added = "numAddedBytes";
    const char* bytes_removed = "numRemovedBytes";
    const char* change_files = "numAddedChangeFiles";
    const char* change_bytes = "changeFileBytes";
    const char* vectors_added = "numDeletionVectorsAdded";
    const char* vectors_removed = "numDeletionVectorsRemoved";
    const char* vectors_updated = "numDeletionVectorsUpdated";
    // Whether numRemovedFiles counts files that got a deletion vector (Spark's UPDATE does,
    // its DELETE and MERGE do not).
    bool vector_files_count_as_removed = false;
  };
  arrow::Result<DmlOutcome> commit(std::string operation, nlohmann::json parameters,
                                   nlohmann::json metrics, delta::ReadSet read,
                                   const Names& names);
  arrow::Result<DmlOutcome> commit(std::string operation, nlohmann::json parameters,
                                   nlohmann::json metrics, delta::ReadSet read) {
    return commit(std::move(operation), std::move(parameters), std::move(metrics),
                  std::move(read), Names{});
  }
  // Deletes what was written (nothing is committed).
  void abort();

 private:
  TableRewrite() = default;
  void remove_vector_files();
  DmlTarget target_;
  std::unique_ptr<delta::TableWriter> writer_;
  std::unique_ptr<delta::ChangeDataWriter> changes_;  // null unless the feed is on
  std::vector<delta::Remove> removed_;
  std::vector<delta::Remove> dropped_;
  int64_t bytes_removed_ = 0;
  bool deletion_vectors_ = false;
  bool no_data_change_ = false;
  // Files given a new deletion vector: their old entries out, the new ones in, the vector
  // files written (deleted again on abort or conflict), and Spark's counts.
  std::vector<delta::Remove> vector_removed_;
  std::vector<delta::Add> vector_added_;
  std::vector<std::string> vector_files_;
  int64_t vectors_added_ = 0, vectors_removed_ = 0, vectors_updated_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point scan_done_ = started_;
  bool finished_ = false;
};

}  // namespace sluice::dml
