// Kafka messages -> Arrow batches with Spark's Kafka source schema.
#include "sluice/kafka/source_schema.h"

#include <arrow/api.h>
#include <librdkafka/rdkafkacpp.h>

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

arrow::Status KafkaRecordBatchBuilder::append(const RdKafka::Message& m) {
  if (m.key_pointer() != nullptr) {
    ARROW_RETURN_NOT_OK(key_.Append(static_cast<const uint8_t*>(m.key_pointer()),
                                    static_cast<int32_t>(m.key_len())));
  } else {
    ARROW_RETURN_NOT_OK(key_.AppendNull());
  }
  if (m.payload() != nullptr) {
    ARROW_RETURN_NOT_OK(
        value_.Append(static_cast<const uint8_t*>(m.payload()), static_cast<int32_t>(m.len())));
  } else {
    ARROW_RETURN_NOT_OK(value_.AppendNull());
  }
  ARROW_RETURN_NOT_OK(topic_.Append(m.topic_name()));
  ARROW_RETURN_NOT_OK(partition_.Append(m.partition()));
  ARROW_RETURN_NOT_OK(offset_.Append(m.offset()));
  const RdKafka::MessageTimestamp ts = m.timestamp();
  switch (ts.type) {
    case RdKafka::MessageTimestamp::MSG_TIMESTAMP_CREATE_TIME:
      ARROW_RETURN_NOT_OK(timestamp_.Append(ts.timestamp * 1000));
      ARROW_RETURN_NOT_OK(timestamp_type_.Append(0));
      break;
    case RdKafka::MessageTimestamp::MSG_TIMESTAMP_LOG_APPEND_TIME:
      ARROW_RETURN_NOT_OK(timestamp_.Append(ts.timestamp * 1000));
      ARROW_RETURN_NOT_OK(timestamp_type_.Append(1));
      break;
    default:  // no timestamp: Spark's NO_TIMESTAMP_TYPE id
      ARROW_RETURN_NOT_OK(timestamp_.AppendNull());
      ARROW_RETURN_NOT_OK(timestamp_type_.Append(-1));
  }
  // Headers: null when the record has none, as Spark's source gives them.
  RdKafka::Headers* headers =
      include_headers_ ? const_cast<RdKafka::Message&>(m).headers() : nullptr;
  if (!include_headers_) {
    // includeHeaders => false: no headers column at all
  } else if (headers == nullptr || headers->size() == 0) {
    ARROW_RETURN_NOT_OK(headers_.AppendNull());
  } else {
    ARROW_RETURN_NOT_OK(headers_.Append());
    for (const auto& h : headers->get_all()) {
      ARROW_RETURN_NOT_OK(header_->Append());
      ARROW_RETURN_NOT_OK(header_key_->Append(h.key()));
      if (h.value() != nullptr) {
        ARROW_RETURN_NOT_OK(header_value_->Append(static_cast<const uint8_t*>(h.value()),
                                                  static_cast<int32_t>(h.value_size())));
      } else {
        ARROW_RETURN_NOT_OK(header_value_->AppendNull());
      }
    }
  }
  ++num_rows_;
  payload_bytes_ += static_cast<int64_t>(m.len() + m.key_len());
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> KafkaRecordBatchBuilder::finish() {
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
  return batch;
}

}  // namespace sluice::kafka
