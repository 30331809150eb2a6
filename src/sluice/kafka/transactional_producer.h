// A transactional Kafka producer (librdkafka's transactions API) for exactly-once sinks: the
// records of a transaction and the writer's progress, committed as a consumer group's offset
// inside the same transaction (sendOffsetsToTransaction), become visible to read_committed
// readers together or not at all. A new producer with the same transactional.id fences the
// old one and aborts its open transaction, so a restarted writer continues from the progress
// of the last committed transaction.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/kafka/consumer.h"

namespace sluice::kafka {

// The progress a transaction committed: the group's offset of (topic, partition 0) and its
// metadata string (the writer's own encoding of where it is).
struct CommittedProgress {
  int64_t offset = 0;
  std::string metadata;
};

struct OutgoingHeader {
  std::string_view key;
  std::optional<std::string_view> value;  // none: a header without a value
};

// Where a sink flow's transactions go: a cluster (TransactionalProducer) or, in `sluice test`,
// memory (pipeline/sink_capture.h). Everything before it (rows, encoding, key, headers, progress
// per transaction) is the same sink code. Not thread-safe: one flow uses it from one thread.
class TransactionalOutput {
 public:
  virtual ~TransactionalOutput() = default;
  virtual arrow::Status init(std::chrono::milliseconds timeout) = 0;
  virtual arrow::Result<std::optional<CommittedProgress>> committed(const std::string& group, const std::string& topic,
                                                                    std::chrono::milliseconds timeout) = 0;
  virtual arrow::Result<int> partition_count(const std::string& topic, std::chrono::milliseconds timeout) = 0;
  virtual arrow::Status begin() = 0;
  virtual arrow::Status produce(const std::string& topic, std::optional<std::string_view> key, std::string_view value,
                                const std::vector<OutgoingHeader>& headers) = 0;
  virtual arrow::Status flush(std::chrono::milliseconds timeout) = 0;
  virtual arrow::Status commit(const std::string& group, const std::string& topic, const CommittedProgress& progress,
                               std::chrono::milliseconds timeout) = 0;
  virtual arrow::Status abort(std::chrono::milliseconds timeout) = 0;
};

// The partition librdkafka's partitioner (the `partitioner` property, default consistent_random)
// gives a record with `key` on a topic of `partitions` partitions; none when it chooses at random
// (no key under the *_random partitioners, or `random`). An unknown partitioner is an error.
arrow::Result<std::optional<int32_t>> partition_for_key(const KafkaProperties& properties,
                                                        std::optional<std::string_view> key, int32_t partitions);

// Not thread-safe: one flow uses it from one thread.
class TransactionalProducer : public TransactionalOutput {
 public:
  // Connects lazily; `cluster_name` names the cluster in errors. Errors never show secrets.
  static arrow::Result<std::unique_ptr<TransactionalProducer>> make(const std::string& cluster_name,
                                                                    const KafkaProperties& properties,
                                                                    const std::string& transactional_id);
  ~TransactionalProducer() override;
  TransactionalProducer(const TransactionalProducer&) = delete;
  TransactionalProducer& operator=(const TransactionalProducer&) = delete;

  // Registers the transactional.id with the cluster: fences any earlier producer with it and
  // completes (aborts) the transaction it left open. A cluster away is a retryable error.
  arrow::Status init(std::chrono::milliseconds timeout) override;
  // The offset `group` committed for (topic, 0), read as read_committed sees it (a pending
  // transaction's offset is not returned); none before the first commit.
  arrow::Result<std::optional<CommittedProgress>> committed(const std::string& group, const std::string& topic,
                                                            std::chrono::milliseconds timeout) override;
  // Whether `topic` exists (its partition count, 0 when it does not).
  arrow::Result<int> partition_count(const std::string& topic, std::chrono::milliseconds timeout) override;

  arrow::Status begin() override;
  // Queues one record of the open transaction (the bytes are copied); key none: no key.
  arrow::Status produce(const std::string& topic, std::optional<std::string_view> key, std::string_view value,
                        const std::vector<OutgoingHeader>& headers) override;
  // Waits until every queued record of the open transaction reached the broker (still
  // uncommitted): crash tests stop here with records on the broker.
  arrow::Status flush(std::chrono::milliseconds timeout) override;
  // Adds `progress` as `group`'s offset of (topic, 0) to the open transaction and commits it:
  // the records and the progress land together. An error leaves the transaction aborted (or
  // for a fenced producer, abandoned): the caller starts again from committed().
  arrow::Status commit(const std::string& group, const std::string& topic, const CommittedProgress& progress,
                       std::chrono::milliseconds timeout) override;
  arrow::Status abort(std::chrono::milliseconds timeout) override;

  int64_t records_produced() const { return produced_; }

 private:
  struct Impl;
  explicit TransactionalProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int64_t produced_ = 0;
};

}  // namespace sluice::kafka
