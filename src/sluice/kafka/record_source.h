// Where a Kafka flow reads its records from: the interface the ingest flow reads through, with
// the librdkafka consumer (consumer.h) as one implementation and `sluice test`'s fixture
// records (testing/fixture_source.h) as another. Nothing here names a librdkafka type.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/kafka/record_fingerprint.h"
#include "sluice/kafka/record_view.h"

struct rd_kafka_message_s;

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

// One partition of one topic.
struct TopicPartitionId {
  std::string topic;
  KafkaPartition partition;
  auto operator<=>(const TopicPartitionId&) const = default;
};

// Messages and events (EOF, errors: RecordView::kind) taken from a source at once, destroyed
// with the batch (which must not outlive its source); their views are valid until then.
class PolledMessages {
 public:
  PolledMessages() = default;
  PolledMessages(const PolledMessages&) = delete;
  PolledMessages& operator=(const PolledMessages&) = delete;
  ~PolledMessages() { clear(); }
  void clear();
  const std::vector<RecordView>& records() const { return records_; }
  // Sources whose records live in their own memory (fixtures) append views of them here.
  void add(const RecordView& view) { records_.push_back(view); }

 private:
  friend class Consumer;
  std::vector<rd_kafka_message_s*> messages_;  // the consumer's messages, freed by clear()
  std::vector<RecordView> records_;            // one per message
};

// The calls a triggered (assign-mode) Kafka flow makes: metadata, offsets, assignment, polling,
// the records that check for a re-created topic, and group offsets for lag monitoring.
// Used by one thread at a time.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // Names of the cluster's topics (without internal ones such as __consumer_offsets).
  virtual arrow::Result<std::vector<std::string>> topics(std::chrono::milliseconds timeout) = 0;
  virtual arrow::Result<std::vector<KafkaPartition>> partitions(const std::string& topic,
                                                                std::chrono::milliseconds timeout) = 0;
  virtual arrow::Result<Watermarks> watermarks(const std::string& topic, KafkaPartition partition,
                                               std::chrono::milliseconds timeout) = 0;
  // Per partition, the first offset whose record timestamp is >= the given time (ms since the
  // epoch); the high-water mark when no record is that new.
  virtual arrow::Result<std::map<KafkaPartition, KafkaOffset>> offsets_for_times(
      const std::string& topic, const std::map<KafkaPartition, int64_t>& timestamps_ms,
      std::chrono::milliseconds timeout) = 0;
  virtual arrow::Status assign(const std::vector<PartitionStart>& starts) = 0;
  // Assigns an assigned partition anew at `start` (after an offset out of range).
  virtual arrow::Status reassign(const PartitionStart& start) = 0;
  // Up to `max` messages or events into `out` (cleared first): what is there, else the first
  // one to arrive within `timeout`. The end of each assigned partition comes as a
  // RecordKind::kPartitionEnd event.
  virtual void poll_batch(std::chrono::milliseconds timeout, size_t max, PolledMessages& out) = 0;
  // The fingerprint of the record at exactly each of these offsets; empty where there is none.
  virtual arrow::Result<std::map<TopicPartitionId, std::optional<RecordFingerprint>>> fingerprints_at(
      const std::vector<PartitionStart>& offsets, std::chrono::milliseconds timeout) = 0;
  // Consumer-group offsets (lag monitoring only; not the source of truth).
  virtual arrow::Status commit_offsets(const std::vector<PartitionStart>& next_offsets) = 0;
  // What went wrong lately, for error messages (empty: nothing).
  virtual std::string recent_errors() const = 0;
};

// Makes a flow's record sources. The flow names its cluster, the cluster's properties from
// pipeline.yaml and its consumer group. Called from the flows' threads at once: thread-safe.
class RecordSourceFactory {
 public:
  virtual ~RecordSourceFactory() = default;
  // The flow's reader.
  virtual arrow::Result<std::unique_ptr<RecordSource>> reader(const std::string& cluster,
                                                              const KafkaProperties& properties,
                                                              const std::string& group_id) = 0;
  // A reader of single records (fingerprints_at) beside the flow's.
  virtual arrow::Result<std::unique_ptr<RecordSource>> record_reader(const std::string& cluster,
                                                                     const KafkaProperties& properties,
                                                                     const std::string& group_id) = 0;
};

}  // namespace sluice::kafka
