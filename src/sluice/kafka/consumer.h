// RAII wrapper over librdkafka's KafkaConsumer for assigned (not subscribed) reads: topic
// metadata, watermarks, explicit assignment, message polling, offset commits.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"

namespace RdKafka {
class KafkaConsumer;
class Message;
}  // namespace RdKafka

namespace sluice::kafka {

// librdkafka properties, passed through as given (bootstrap.servers, security.*, sasl.*, ...).
using KafkaProperties = std::map<std::string, std::string>;

struct Watermarks {
  KafkaOffset low;   // first offset still in the log
  KafkaOffset high;  // offset the next produced record will get
};

struct PartitionStart {
  std::string topic;
  KafkaPartition partition;
  KafkaOffset offset;
};

class EventLog;  // collects librdkafka's log/error events (defined in consumer.cc)

class Consumer {
 public:
  // `cluster_name` names the cluster in errors.
  static arrow::Result<std::unique_ptr<Consumer>> make(const std::string& cluster_name,
                                                       const KafkaProperties& properties,
                                                       const std::string& group_id);
  ~Consumer();

  // The partitions of `topic`. Errors name the topic or the unreachable brokers.
  arrow::Result<std::vector<KafkaPartition>> partitions(const std::string& topic,
                                                        std::chrono::milliseconds timeout);
  arrow::Result<Watermarks> watermarks(const std::string& topic, KafkaPartition partition,
                                       std::chrono::milliseconds timeout);
  arrow::Status assign(const std::vector<PartitionStart>& starts);
  // The next message or event (EOF, error), or null on timeout.
  std::unique_ptr<RdKafka::Message> poll(std::chrono::milliseconds timeout);
  // Commits consumer-group offsets (for lag monitoring; not the source of truth).
  arrow::Status commit_offsets(const std::vector<PartitionStart>& next_offsets);

  const std::string& bootstrap_servers() const { return bootstrap_; }
  std::string recent_errors() const;

 private:
  Consumer() = default;
  std::string cluster_name_;
  std::string bootstrap_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

}  // namespace sluice::kafka
