// Kafka messages -> Arrow batches with Spark's Kafka source schema.
#include "sluice/kafka/source_schema.h"

#include <arrow/api.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include "sluice/common/utf8.h"

namespace sluice::kafka {

namespace {

std::shared_ptr<arrow::DataType> header_type() {
  return arrow::struct_({arrow::field("key", arrow::utf8()), arrow::field("value", arrow::binary())});
}

std::shared_ptr<arrow::DataType> headers_type() {
  return arrow::list(arrow::field("element", header_type(), true));
}

}  // namespace

const std::shared_ptr<arrow::Schema>& kafka_source_schema() {
  static const auto schema = arrow::schema({
      arrow::field("key", arrow::binary()),
      arrow::field("value", arrow::binary()),
      arrow::field("topic", arrow::utf8()),
      arrow::field("partition", arrow::int32()),
      arrow::field("offset", arrow::int64()),
      arrow::field("timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("timestampType", arrow::int32()),
      arrow::field("headers", headers_type()),
  });
  return schema;
}

const std::shared_ptr<arrow::Schema>& kafka_source_schema(HeadersColumn headers) {
  static const auto without = *kafka_source_schema()->RemoveField(7);
  return headers == HeadersColumn::kInclude ? kafka_source_schema() : without;
}

KafkaRecordBatchBuilder::KafkaRecordBatchBuilder(HeadersColumn headers)
    : timestamp_(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool()),
      header_key_(std::make_shared<arrow::StringBuilder>()),
      header_value_(std::make_shared<arrow::BinaryBuilder>()),
      header_(std::make_shared<arrow::StructBuilder>(
          header_type(), arrow::default_memory_pool(),
          std::vector<std::shared_ptr<arrow::ArrayBuilder>>{header_key_, header_value_})),
      headers_(arrow::default_memory_pool(), header_, headers_type()),
      include_headers_(headers == HeadersColumn::kInclude) {}

// Reads the C message under the C++ wrapper: RdKafka::Message::topic_name() returns a new
// std::string per call and headers() copies them into a vector, per-row allocations on the
// hot path.
arrow::Status KafkaRecordBatchBuilder::append(const rd_kafka_message_t& message) {
  const rd_kafka_message_t* m = &message;
  if (m->key != nullptr) {
    ARROW_RETURN_NOT_OK(key_.Append(static_cast<const uint8_t*>(m->key), static_cast<int32_t>(m->key_len)));
  } else {
    ARROW_RETURN_NOT_OK(key_.AppendNull());
  }
  if (m->payload != nullptr) {
    ARROW_RETURN_NOT_OK(value_.Append(static_cast<const uint8_t*>(m->payload), static_cast<int32_t>(m->len)));
  } else {
    ARROW_RETURN_NOT_OK(value_.AppendNull());
  }
  if (m->rkt != topic_handle_) {
    topic_handle_ = m->rkt;
    topic_name_ = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
  }
  ARROW_RETURN_NOT_OK(topic_.Append(topic_name_));
  ARROW_RETURN_NOT_OK(partition_.Append(m->partition));
  ARROW_RETURN_NOT_OK(offset_.Append(m->offset));
  rd_kafka_timestamp_type_t ts_type;
  const int64_t ts = rd_kafka_message_timestamp(m, &ts_type);
  switch (ts_type) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
      ARROW_RETURN_NOT_OK(timestamp_.Append(ts * 1000));
      ARROW_RETURN_NOT_OK(timestamp_type_.Append(0));
      break;
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
      ARROW_RETURN_NOT_OK(timestamp_.Append(ts * 1000));
      ARROW_RETURN_NOT_OK(timestamp_type_.Append(1));
      break;
    default:  // no timestamp: Spark's NO_TIMESTAMP_TYPE id
      ARROW_RETURN_NOT_OK(timestamp_.AppendNull());
      ARROW_RETURN_NOT_OK(timestamp_type_.Append(-1));
  }
  // Headers: null when the record has none, as Spark's source gives them.
  rd_kafka_headers_t* headers = nullptr;
  if (!include_headers_) {
    // includeHeaders => false: no headers column at all
  } else if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR || headers == nullptr ||
             rd_kafka_header_cnt(headers) == 0) {
    ARROW_RETURN_NOT_OK(headers_.AppendNull());
  } else {
    ARROW_RETURN_NOT_OK(headers_.Append());
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      ARROW_RETURN_NOT_OK(header_->Append());
      // Header keys are a STRING column, as in Spark, but any producer can send any bytes.
      ARROW_RETURN_NOT_OK(header_key_->Append(valid_utf8(name, &header_key_scratch_)));
      if (value != nullptr) {
        ARROW_RETURN_NOT_OK(header_value_->Append(static_cast<const uint8_t*>(value), static_cast<int32_t>(size)));
      } else {
        ARROW_RETURN_NOT_OK(header_value_->AppendNull());
      }
    }
  }
  ++num_rows_;
  payload_bytes_ += static_cast<int64_t>(m->len + m->key_len);
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> KafkaRecordBatchBuilder::finish() {
  const int64_t rows = num_rows_;
  const int64_t value_bytes = value_.value_data_length();
  const int64_t key_bytes = key_.value_data_length();
  const int64_t topic_bytes = topic_.value_data_length();
  std::vector<std::shared_ptr<arrow::Array>> columns(include_headers_ ? 8 : 7);
  ARROW_RETURN_NOT_OK(key_.Finish(&columns[0]));
  ARROW_RETURN_NOT_OK(value_.Finish(&columns[1]));
  ARROW_RETURN_NOT_OK(topic_.Finish(&columns[2]));
  ARROW_RETURN_NOT_OK(partition_.Finish(&columns[3]));
  ARROW_RETURN_NOT_OK(offset_.Finish(&columns[4]));
  ARROW_RETURN_NOT_OK(timestamp_.Finish(&columns[5]));
  ARROW_RETURN_NOT_OK(timestamp_type_.Finish(&columns[6]));
  if (include_headers_) ARROW_RETURN_NOT_OK(headers_.Finish(&columns[7]));
  auto batch = arrow::RecordBatch::Make(
      kafka_source_schema(include_headers_ ? HeadersColumn::kInclude : HeadersColumn::kDrop),
      num_rows_, std::move(columns));
  num_rows_ = 0;
  payload_bytes_ = 0;
  // Size the next batch like this one, so its buffers are allocated once instead of grown by
  // doubling (each step a realloc copy of the values so far).
  if (rows > 0) {
    ARROW_RETURN_NOT_OK(key_.Reserve(rows));
    ARROW_RETURN_NOT_OK(value_.Reserve(rows));
    ARROW_RETURN_NOT_OK(topic_.Reserve(rows));
    ARROW_RETURN_NOT_OK(key_.ReserveData(key_bytes));
    ARROW_RETURN_NOT_OK(value_.ReserveData(value_bytes + value_bytes / 16));
    ARROW_RETURN_NOT_OK(topic_.ReserveData(topic_bytes));
    ARROW_RETURN_NOT_OK(partition_.Reserve(rows));
    ARROW_RETURN_NOT_OK(offset_.Reserve(rows));
    ARROW_RETURN_NOT_OK(timestamp_.Reserve(rows));
    ARROW_RETURN_NOT_OK(timestamp_type_.Reserve(rows));
    if (include_headers_) ARROW_RETURN_NOT_OK(headers_.Reserve(rows));
  }
  return batch;
}

}  // namespace sluice::kafka
