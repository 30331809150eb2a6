// What the commits of a table took during one update, for its flow_progress event: the
// streaming commit protocol records each commit's wall time (streaming_commit.cc), a Kafka flow
// the Kafka timestamps of the records each commit made visible (kafka_ingest_flow.cc), and the
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
