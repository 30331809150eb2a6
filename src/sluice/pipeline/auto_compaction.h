// Automatic compaction of a pipeline's streaming tables (DLT's pipelines.autoOptimize.managed,
// Delta's delta.autoOptimize.autoCompact): after a table's commits leave a partition with many
// small files, those files are compacted as an OPTIMIZE with dataChange=false (dml/optimize.h)
// — in continuous runs on one background thread while the flows keep committing, in triggered
// runs at the end of the update.
//
// The compaction never makes a flow's commit fail or retry: the rewrite runs beside the flows,
// and only its commit (a log entry, milliseconds) waits until no flow of the process holds an
// open writer on the table (TableGate). A flow that opens a writer after a compaction committed
// reads the table again first, so its read snapshot is always the table's latest; the
// compaction's own commit retries on top of the appends made since it read the table (a flow
// that removed one of its files wins, and the compaction's files are deleted).
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sluice/delta/snapshot.h"
#include "sluice/delta/snapshot_cache.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

class EventLog;

// spark.databricks.delta.autoCompact.minNumFiles: small files a partition holds before it is
// compacted.
inline constexpr int64_t kAutoCompactMinNumFiles = 50;
// spark.databricks.delta.autoCompact.maxFileSize: the files auto compaction writes (a table's
// delta.targetFileSize takes its place); files below half of it are small.
inline constexpr int64_t kAutoCompactTargetFileSize = 128ll << 20;
// What one compaction reads at most (delta-spark's autoCompact.maxCompactBytes is 20 GB; sluice
// compacts on one thread of the pipeline's own process, so it takes less at a time and comes back).
inline constexpr int64_t kAutoCompactMaxCompactBytes = 2ll << 30;

// A table's auto compaction, from its properties:
//   delta.autoOptimize.autoCompact   true / legacy: on; false: off (when set, it decides)
//   pipelines.autoOptimize.managed   true (the default, as in DLT) / false
//   pipelines.autoOptimize.zOrderCols  columns each compacted bin is Z-ordered by
//   sluice.autoCompact.minNumFiles     small files per partition before it is compacted (50)
//   sluice.autoCompact.maxCompactBytes input of one compaction at most (2 GiB)
struct AutoCompactionSettings {
  bool enabled = true;
  int64_t min_num_files = kAutoCompactMinNumFiles;
  int64_t max_compact_bytes = kAutoCompactMaxCompactBytes;
  std::vector<std::string> zorder_by;  // as written; checked against the table by the planner
};

// Whether `key` starts with sluice.autoCompact. in any case (a key auto_compaction_settings
// reads or refuses).
bool is_auto_compact_key(const std::string& key);

// The settings `properties` give; an unreadable value, or an unknown sluice.autoCompact.* key,
// is an error naming the table and the property.
arrow::Result<AutoCompactionSettings> auto_compaction_settings(const std::map<std::string, std::string>& properties,
                                                               const std::string& table);

// Per table, in process: flows' writers against auto compaction's commit. Thread-safe.
class TableGate {
 public:
  // Held by a flow while it has a writer open (from the snapshot it read to its commit).
  class Hold {
   public:
    Hold() = default;
    explicit Hold(TableGate* gate) : gate_(gate) {}
    Hold(Hold&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { release(); }
    void release();

   private:
    TableGate* gate_ = nullptr;
  };

  // Waits while a compaction commits (or waits to commit), then holds the table for a writer.
  Hold hold_writer();
  // The version auto compaction last committed (-1: none in this run). A writer whose read
  // snapshot is older reads the table again.
  int64_t compacted_version() const;
  // Runs `commit` once no writer holds the table, keeping new writers out meanwhile;
  // Cancelled (and `commit` not run) when `stopping` turns true first.
  arrow::Status commit_exclusive(const std::function<arrow::Result<int64_t>()>& commit,
                                 const std::function<bool()>& stopping);
  // The table as a flow's commit left it, for the check whether a compaction is due without
  // reading the log again; null when none is known or a compaction committed after it.
  void committed(std::shared_ptr<const delta::Snapshot> snapshot);
  std::shared_ptr<const delta::Snapshot> last_committed() const;

 private:
  mutable std::mutex mutex_;  // guards every field below
  std::condition_variable changed_;
  int writers_ = 0;
  bool compacting_ = false;
  int64_t compacted_version_ = -1;
  std::shared_ptr<const delta::Snapshot> last_committed_;
};

struct MaintainedTable {
  std::string name;
  std::filesystem::path path;  // in the pipeline's object store
  AutoCompactionSettings settings;
  std::unique_ptr<TableGate> gate = std::make_unique<TableGate>();
};

struct CompactionReport {
  std::string table;
  bool committed = false;
  int64_t version = -1;
  int64_t files_removed = 0;
  int64_t files_added = 0;
  int64_t bytes_removed = 0;
  int64_t rows = 0;
  int64_t duration_ms = 0;
};

// The auto compaction of one pipeline run. Tables are added before the run starts; flows tell
// it of their commits (changed()); it compacts on its own thread (start/stop: continuous runs)
// or on the caller's (compact_changed: triggered runs). Thread-safe.
class TableMaintenance {
 public:
  TableMaintenance(std::shared_ptr<storage::ObjectStore> objects, std::shared_ptr<delta::SnapshotCache> snapshots,
                   EventLog* events);
  ~TableMaintenance();

  void add_table(std::string name, std::filesystem::path path, AutoCompactionSettings settings);
  // The gate of a table auto compaction looks after; null for any other table.
  TableGate* gate(const std::string& table);
  // `table` committed: it is looked at (and compacted when due) next.
  void changed(const std::string& table);

  // Continuous runs: one thread compacts the tables changed() names, one at a time.
  void start();
  // Ends the thread; a compaction under way is abandoned before its commit (its files deleted).
  void stop();
  // Triggered runs: compacts the changed tables that are due, on this thread, until none is
  // or `stopping` turns true (asked between rounds and inside a rewrite: a compaction under way
  // is abandoned before its commit, its files deleted).
  void compact_changed(const std::function<bool()>& stopping);

  // Compactions committed so far (tests, benchmarks).
  int64_t compactions() const;

 private:
  // Compacts `table` if a partition holds min_num_files small files; true when another round
  // is due (the input bound left some).
  arrow::Result<bool> compact_if_due(MaintainedTable& table, const std::function<bool()>& stopping);
  void report(const MaintainedTable& table, const arrow::Result<CompactionReport>& result);
  void loop();

  std::shared_ptr<storage::ObjectStore> objects_;
  std::shared_ptr<delta::SnapshotCache> snapshots_;  // may be null
  EventLog* events_;                                  // may be null; not owned
  std::map<std::string, std::unique_ptr<MaintainedTable>> tables_;  // fixed once the run starts

  mutable std::mutex mutex_;  // guards pending_, queued_, stopping_, compactions_
  std::condition_variable wake_;
  std::deque<std::string> pending_;
  std::set<std::string> queued_;
  bool stopping_ = false;
  int64_t compactions_ = 0;
  std::thread thread_;
};

}  // namespace sluice::pipeline
