// The pipeline event log: a Delta table at <storage>/system/event_log with DLT's shape (id,
// sequence, origin, timestamp, level, event_type, message, details as JSON text). An update
// collects its events and commits them in one append when it ends, whether it succeeded or not.
// Read back by `sluice events`, `sluice catalog` and `sluice status` (read_event_log).
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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
};

// The events of `rows` (a batch of the event-log table), in the batch's order. A batch without
// the event log's columns, or with them of other types, is an error naming the column.
arrow::Result<std::vector<StoredEvent>> events_from_batch(const arrow::RecordBatch& rows);

// Every event of the pipeline whose storage is `storage`, oldest first (time, then sequence);
// nullopt when no update has written the log yet. An unreadable log is an error naming it.
arrow::Result<std::optional<std::vector<StoredEvent>>> read_event_log(std::shared_ptr<storage::ObjectStore> objects,
                                                                      const std::filesystem::path& storage);

// The numbers of a flow_progress event's details in one line ("100 read, 90 written, 10 dropped,
// ..."), for `sluice events` text mode; empty for an event that carries none (SKIPPED, a reset).
std::string flow_progress_numbers(const nlohmann::json& details);

}  // namespace sluice::pipeline
