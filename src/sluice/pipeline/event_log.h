// The pipeline event log: a Delta table at <storage>/system/event_log with DLT's shape (id,
// sequence, origin, timestamp, level, event_type, message, details as JSON text). An update
// collects its events and commits them in one append when it ends, whether it succeeded or not.
// Read back by `sluice events`, `sluice catalog` and `sluice status` (read_event_log).
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/snapshot_cache.h"
#include "sluice/storage/object_store.h"

namespace arrow {
class RecordBatch;
}

namespace sluice::pipeline {

struct Event {
  std::string event_type;  // create_update, flow_definition, flow_progress, update_progress
  std::string level = "INFO";
  std::string message;
  std::string flow;
  std::string dataset;
  nlohmann::json details = nlohmann::json::object();
  int64_t timestamp_micros = 0;
};

// Thread-safe: flows running on the scheduler's threads add events concurrently.
class EventLog {
 public:
  // The event log of the pipeline whose storage is `storage` in `objects`.
  EventLog(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path storage, std::string pipeline,
           std::string update_id);
  EventLog(std::filesystem::path storage, std::string pipeline, std::string update_id)
      : EventLog(storage::local_store(), std::move(storage), std::move(pipeline), std::move(update_id)) {}

  void add(Event event);
  // Appends the collected events to the event-log table (one commit) and clears them.
  arrow::Status flush();

  const std::string& update_id() const { return update_id_; }
  std::filesystem::path table_path() const { return storage_ / "system" / "event_log"; }

 private:
  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path storage_;
  std::string pipeline_;
  std::string update_id_;
  std::mutex mutex_;  // guards events_ and sequence_
  std::vector<Event> events_;
  int64_t sequence_ = 0;
};

// One event as the event-log table holds it.
struct StoredEvent {
  int64_t timestamp_micros = 0;
  std::string update_id;
  int64_t seq = 0;
  std::string level;
  std::string event_type;
  std::string message;
  std::string flow;     // empty when null
  std::string dataset;  // empty when null
  nlohmann::json details;  // discarded (is_discarded()) when the stored text is not JSON
  // Where EventLogCache read it: its data file (the cache's number for it) and row in that file.
  int64_t file_id = -1;
  int64_t file_row = 0;
};

// The event log read once and shared by whoever asks (a request, the status builder, a stream);
// null when no update has written the log yet.
using SharedEvents = std::shared_ptr<const std::vector<StoredEvent>>;

// The events of `rows` (a batch of the event-log table), in the batch's order. A batch without
// the event log's columns, or with them of other types, is an error naming the column.
arrow::Result<std::vector<StoredEvent>> events_from_batch(const arrow::RecordBatch& rows);

// Every event of the pipeline whose storage is `storage`, oldest first (time, then sequence);
// nullopt when no update has written the log yet. An unreadable log is an error naming it.
arrow::Result<std::optional<std::vector<StoredEvent>>> read_event_log(std::shared_ptr<storage::ObjectStore> objects,
                                                                      const std::filesystem::path& storage);

// read_event_log's result, shared (moved, not copied).
arrow::Result<SharedEvents> read_event_log_shared(std::shared_ptr<storage::ObjectStore> objects,
                                                  const std::filesystem::path& storage);

// The order read_event_log returns: time, then update, then sequence within the update.
bool event_before(const StoredEvent& a, const StoredEvent& b);

// The events of the log at one version (EventLogCache::read).
struct EventLogView {
  SharedEvents events;   // null: no update has written the log yet
  int64_t version = -1;  // of the snapshot they were read from
};

// What the commits after a version appended (EventLogCache::appended_since): the log's events
// (kept alive here) and, per commit, the indexes into them of the rows it appended.
struct AppendedEvents {
  SharedEvents events;
  int64_t latest_version = -1;
  struct Commit {
    int64_t version = 0;
    std::vector<size_t> rows;  // indexes into `events`, in the commit's order (its files, their rows)
  };
  std::vector<Commit> commits;  // consecutive versions from the one asked for
};

// read_event_log for a reader that asks again and again (the server: every request, every live
// stream): the log's snapshot is advanced by the commits after the one kept (SnapshotCache),
// and only data files not read before are read; a file is known by its path, size and
// modification time, so a log rewritten by `sluice forget` is read again where it changed, and a
// log deleted and written anew (a replayed snapshot) is read again whatever its version.
// Unchanged, the same vector is returned without copying. Each event is held once (the merged
// list; a file's events are found by their file_id). Thread-safe.
class EventLogCache {
 public:
  EventLogCache(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path storage)
      : objects_(std::move(objects)), storage_(std::move(storage)) {}

  // Every event, oldest first (event_before), and the version read.
  arrow::Result<EventLogView> read();
  // The rows appended by the commits from `first_version` to the latest (at most kMaxCommits of
  // them; ask again from the next), read as a Delta streaming source reads a table: a commit
  // that only appends gives its files' rows; one that removes data (`sluice forget`'s rewrite,
  // retention) or changes none (OPTIMIZE) gives none, and a file removed since is skipped (its
  // rows, rewritten, are in the log but not streamed again). A version whose commit file is gone
  // (log clean-up) is an error naming it.
  arrow::Result<AppendedEvents> appended_since(int64_t first_version);
  static constexpr int64_t kMaxCommits = 100;
  // Data files read so far (for tests).
  int64_t files_read() const;

 private:
  struct FileEntry {
    int64_t id = 0;
    int64_t size = 0;
    int64_t modification_time = 0;
  };
  arrow::Status refresh_locked();
  const std::shared_ptr<storage::ObjectStore> objects_;
  const std::filesystem::path storage_;
  delta::SnapshotCache snapshots_;
  mutable std::mutex mutex_;  // guards everything below; one reader refreshes at a time
  std::map<std::string, FileEntry> files_;  // the snapshot's data files by path (not those with a deletion vector)
  int64_t next_file_id_ = 0;
  int64_t version_ = -1;      // of the snapshot `merged_` was built from
  int64_t replayed_ = -1;     // snapshots_.replayed() then: another value is another log
  SharedEvents merged_;
  std::map<int64_t, std::vector<size_t>> rows_by_file_;  // file id -> indexes into merged_, in file order
  std::map<int64_t, std::vector<std::string>> commit_files_;  // version -> the files an append commit added
  int64_t files_read_ = 0;
};

// The numbers of a flow_progress event's details in one line ("100 read, 90 written, 10 dropped,
// ..."), for `sluice events` text mode; empty for an event that carries none (SKIPPED, a reset).
std::string flow_progress_numbers(const nlohmann::json& details);

}  // namespace sluice::pipeline
