// A plain (idempotent, not transactional) Kafka producer that sends one record at a time and
// waits for the broker's acknowledgement: alert notifications to a topic (watch/). Sinks use
// transactional_producer.h instead.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/kafka/consumer.h"

namespace sluice::kafka {

// Not thread-safe: one caller at a time.
class RecordProducer {
 public:
  // Connects lazily; `cluster_name` names the cluster in errors, which never show secrets.
  static arrow::Result<std::unique_ptr<RecordProducer>> make(const std::string& cluster_name,
                                                             const KafkaProperties& properties);
  ~RecordProducer();
  RecordProducer(const RecordProducer&) = delete;
  RecordProducer& operator=(const RecordProducer&) = delete;

  // Sends one record and waits until the broker acknowledged it, at most `timeout` (then an
  // error; the record may still arrive later).
  arrow::Status send(const std::string& topic, std::string_view key, std::string_view value,
                     std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit RecordProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::kafka
