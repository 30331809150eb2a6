// `sluice test`: where the pipeline's sinks write while a case runs. A Kafka sink's transactions
// go to memory instead of a cluster (its records as librdkafka would send them: topic, partition
// by the producer's partitioner, key, value, headers), a Delta sink's table to a folder of the
// case's temporary storage instead of its path. Everything before that boundary (the upstream
// read, the sink flow's row stages, the JSON encoding, key and headers, the progress committed
// with each transaction) is the real sink's code (kafka_sink_flow.cc, delta_sink_flow.cc, which
// implement this header). Process-wide, as format/given_registry.h: sluice test runs one case
// at a time and installs a capture for that case only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sluice/kafka/transactional_producer.h"

namespace sluice::pipeline {

struct CapturedRecord {
  std::string topic;
  std::optional<int32_t> partition;  // none: the producer's partitioner picks one at random
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
};

// Thread-safe: the sinks of an update run on several threads.
class SinkCapture {
 public:
  // `delta_root`: Delta sinks write their tables under it, one folder per sink. `partitions`: the
  // partition count of a sink's topic (default 1).
  SinkCapture(std::filesystem::path delta_root, std::map<std::string, int32_t> partitions)
      : delta_root_(std::move(delta_root)), partitions_(std::move(partitions)) {}

  std::filesystem::path delta_table(const std::string& sink) const { return delta_root_ / sink; }
  int32_t partition_count(const std::string& topic) const {
    auto it = partitions_.find(topic);
    return it == partitions_.end() ? 1 : it->second;
  }

  // A Kafka sink that ran (records or none), and one that could not run in a test.
  void ran_kafka(const std::string& sink) {
    std::lock_guard lock(mutex_);
    records_[sink];
  }
  void not_run(const std::string& sink, std::string why) {
    std::lock_guard lock(mutex_);
    not_run_[sink] = std::move(why);
  }
  // A committed transaction: its records become visible with the progress, as on a cluster.
  void commit(const std::string& sink, std::vector<CapturedRecord> records, const std::string& group,
              kafka::CommittedProgress progress) {
    std::lock_guard lock(mutex_);
    auto& all = records_[sink];
    for (auto& r : records) all.push_back(std::move(r));
    committed_[group] = std::move(progress);
  }
  std::optional<kafka::CommittedProgress> committed(const std::string& group) const {
    std::lock_guard lock(mutex_);
    auto it = committed_.find(group);
    return it == committed_.end() ? std::nullopt : std::optional(it->second);
  }
  // The records a Kafka sink committed so far; none when it is not a Kafka sink that ran.
  std::optional<std::vector<CapturedRecord>> kafka_records(const std::string& sink) const {
    std::lock_guard lock(mutex_);
    auto it = records_.find(sink);
    return it == records_.end() ? std::nullopt : std::optional(it->second);
  }
  std::map<std::string, std::string> not_run() const {
    std::lock_guard lock(mutex_);
    return not_run_;
  }

 private:
  const std::filesystem::path delta_root_;
  const std::map<std::string, int32_t> partitions_;
  mutable std::mutex mutex_;  // guards the maps below
  std::map<std::string, std::vector<CapturedRecord>> records_;  // by sink
  std::map<std::string, kafka::CommittedProgress> committed_;    // by progress group
  std::map<std::string, std::string> not_run_;                  // sink -> why
};

// The installed capture, or null (a real run).
SinkCapture* active_sink_capture();
void install_sink_capture(SinkCapture* capture);

// Installs on construction, removes on destruction (however the case ends).
class SinkCaptureScope {
 public:
  explicit SinkCaptureScope(SinkCapture& capture) { install_sink_capture(&capture); }
  ~SinkCaptureScope() { install_sink_capture(nullptr); }
  SinkCaptureScope(const SinkCaptureScope&) = delete;
  SinkCaptureScope& operator=(const SinkCaptureScope&) = delete;
};

}  // namespace sluice::pipeline
