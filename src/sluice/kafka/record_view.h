// One message or event as the consumer delivers it, read without librdkafka's types: topic,
// partition, offset, timestamp, key and value bytes, headers, and for an event what kind it is.
// pipeline/ and format/ read Kafka through it; only kafka/ knows librdkafka.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/common/strong_types.h"

struct rd_kafka_message_s;  // librdkafka's message, read by kafka/ only
struct rd_kafka_headers_s;  // its parsed headers

namespace sluice::kafka {

// What a delivered message is. Errors are classified here, so callers never see librdkafka's
// error codes.
enum class RecordKind : uint8_t {
  kRecord,            // a record: every field below is set
  kPartitionEnd,      // the end of a partition: `offset` is the next offset it will have
  kTransientError,    // the broker is away or timed out: librdkafka reconnects by itself
  kOffsetOutOfRange,  // the read position is outside the partition's log (retention, re-creation)
  kError,             // any other error: error_text() says which
};

// Spark's timestampType ids: 0 CreateTime, 1 LogAppendTime, -1 none.
enum class TimestampType : int8_t { kNone = -1, kCreateTime = 0, kLogAppendTime = 1 };

// A record header; `value` is empty for a null value.
struct RecordHeader {
  std::string_view key;
  std::optional<std::string_view> value;
};

// Valid while the PolledMessages batch that delivered it is alive (its bytes are librdkafka's).
class RecordView {
 public:
  RecordKind kind = RecordKind::kError;
  std::string_view topic;  // empty for an event that names no topic
  KafkaPartition partition{-1};
  KafkaOffset offset{-1};
  int64_t timestamp_ms = -1;  // -1 with TimestampType::kNone
  TimestampType timestamp_type = TimestampType::kNone;
  std::optional<std::string_view> key;    // empty: a null key
  std::optional<std::string_view> value;  // empty: a null value (a tombstone)

  // The number of headers, and the i-th (i < header_count()).
  size_t header_count() const;
  RecordHeader header(size_t i) const;
  // librdkafka's description of an event's error (empty for a record).
  std::string error_text() const;

  // Headers held by whoever made the view (a RecordSource that is not librdkafka: fixtures);
  // must outlive the view. Replaces the message's headers.
  using PlainHeaders = std::vector<std::pair<std::string, std::optional<std::string>>>;
  void set_plain_headers(const PlainHeaders* headers) { plain_headers_ = headers; }

 private:
  friend class Consumer;
  // The view of `message`, whose topic's name is `topic` (looked up by the caller once per
  // run of one topic's messages).
  static RecordView of(const rd_kafka_message_s& message, std::string_view topic);
  const rd_kafka_message_s* message_ = nullptr;
  // The message's parsed headers, null when it has none: looked up in of(), while the
  // message's memory is in cache (a lookup per row when the batch is built missed it).
  const rd_kafka_headers_s* headers_ = nullptr;
  const PlainHeaders* plain_headers_ = nullptr;
};

}  // namespace sluice::kafka
