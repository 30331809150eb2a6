// What the commits of a table took and did during one update, for its flow_progress event: the
// streaming commit protocol records each commit's wall time (streaming_commit.cc), a Kafka flow
// the Kafka timestamps of the records each commit made visible and the rows it wrote with
// `_rescued_data` (kafka_ingest_flow.cc), and the
// SQL runner takes them when the dataset's update ends (sql_runner.cc). A process-wide registry
// keyed by table path, so no flow has to carry them through its report.
// Thread-safe: flows of several datasets commit at once (continuous runs); `mutex_` guards `by_table_`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sluice::pipeline {

struct CommitTimings {
  int64_t commits = 0;       // commits of the table (StreamingCommit::commit that landed)
  int64_t total_micros = 0;  // their wall time: files closed, side tables, state, the Delta commit
  int64_t max_micros = 0;    // the longest of them
  // Kafka flows: per commit, its end minus the Kafka timestamp (CreateTime or LogAppendTime) of
  // the oldest and of the newest record it made visible; the greatest and the least over the
  // update's commits, in ms. Unset when no committed record had a timestamp.
  std::optional<int64_t> end_to_end_max_ms;
  std::optional<int64_t> end_to_end_min_ms;
  std::optional<int64_t> newest_kafka_timestamp_ms;  // of the records committed
  // Kafka flows whose table has a `_rescued_data` column: rows their commits wrote, and how many
  // of them hold something there (non-NULL). Unset for other tables.
  std::optional<int64_t> rescue_rows_written;
  int64_t rescued_rows = 0;
  // Commits that changed the table's columns (a schema evolved by a changed query): each as
  // "name type" added, "name" removed, "name: from -> to" retyped, against the schema before.
  std::vector<std::string> columns_added, columns_removed, types_changed;
};

class CommitTimingsRegistry {
 public:
  void record_commit(const std::string& table, int64_t micros) {
    std::lock_guard lock(mutex_);
    auto& t = by_table_[table];
    t.commits += 1;
    t.total_micros += micros;
    t.max_micros = std::max(t.max_micros, micros);
  }
  void note_kafka_visible(const std::string& table, int64_t commit_end_ms, int64_t oldest_ms, int64_t newest_ms) {
    std::lock_guard lock(mutex_);
    auto& t = by_table_[table];
    t.end_to_end_max_ms = std::max(t.end_to_end_max_ms.value_or(INT64_MIN), commit_end_ms - oldest_ms);
    t.end_to_end_min_ms = std::min(t.end_to_end_min_ms.value_or(INT64_MAX), commit_end_ms - newest_ms);
    t.newest_kafka_timestamp_ms = std::max(t.newest_kafka_timestamp_ms.value_or(INT64_MIN), newest_ms);
  }
  void note_rescued(const std::string& table, int64_t rows_written, int64_t rescued) {
    std::lock_guard lock(mutex_);
    auto& t = by_table_[table];
    t.rescue_rows_written = t.rescue_rows_written.value_or(0) + rows_written;
    t.rescued_rows += rescued;
  }
  void note_schema_change(const std::string& table, std::vector<std::string> added, std::vector<std::string> removed,
                          std::vector<std::string> retyped) {
    std::lock_guard lock(mutex_);
    auto& t = by_table_[table];
    t.columns_added.insert(t.columns_added.end(), added.begin(), added.end());
    t.columns_removed.insert(t.columns_removed.end(), removed.begin(), removed.end());
    t.types_changed.insert(t.types_changed.end(), retyped.begin(), retyped.end());
  }
  // What was recorded for `table` since the last take, and forgets it.
  CommitTimings take(const std::string& table) {
    std::lock_guard lock(mutex_);
    auto it = by_table_.find(table);
    if (it == by_table_.end()) return {};
    CommitTimings out = it->second;
    by_table_.erase(it);
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, CommitTimings> by_table_;
};

inline CommitTimingsRegistry& commit_timings() {
  static CommitTimingsRegistry registry;
  return registry;
}

}  // namespace sluice::pipeline
