// The pipeline event log: a Delta table at <storage>/system/event_log with DLT's shape (id,
// sequence, origin, timestamp, level, event_type, message, details as JSON text). An update
// collects its events and commits them in one append when it ends, whether it succeeded or not.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/storage/object_store.h"

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

}  // namespace sluice::pipeline
