// The Kafka source row (Spark's Kafka source schema) and a builder that turns consumed
// messages into Arrow record batches of it.
#pragma once

#include <arrow/builder.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>


namespace sluice::kafka {

// key binary, value binary, topic string, partition int, offset long, timestamp timestamp,
// timestampType int, headers array<struct<key string, value binary>>.
const std::shared_ptr<arrow::Schema>& kafka_source_schema();

// Whether Kafka rows carry the headers column (Spark's includeHeaders).
enum class HeadersColumn { kInclude, kDrop };
const std::shared_ptr<arrow::Schema>& kafka_source_schema(HeadersColumn headers);

class KafkaRecordBatchBuilder {
 public:
  explicit KafkaRecordBatchBuilder(HeadersColumn headers = HeadersColumn::kInclude);

  // Appends one consumed message (must carry no error).
  arrow::Status append(const rd_kafka_message_t& message);
  int64_t num_rows() const { return num_rows_; }
  int64_t payload_bytes() const { return payload_bytes_; }
  // The batch so far; the builder is empty afterwards.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> finish();

 private:
  arrow::BinaryBuilder key_, value_;
  arrow::StringBuilder topic_;
  arrow::Int32Builder partition_;
  arrow::Int64Builder offset_;
  arrow::TimestampBuilder timestamp_;
  arrow::Int32Builder timestamp_type_;
  std::shared_ptr<arrow::StringBuilder> header_key_;
  std::shared_ptr<arrow::BinaryBuilder> header_value_;
  std::shared_ptr<arrow::StructBuilder> header_;
  arrow::ListBuilder headers_;
  bool include_headers_;
  int64_t num_rows_ = 0;
  int64_t payload_bytes_ = 0;
  const rd_kafka_topic_s* topic_handle_ = nullptr;  // topic of the last message, and its name
  std::string topic_name_;
  std::string header_key_scratch_;  // a header key whose invalid UTF-8 was replaced
};

}  // namespace sluice::kafka
