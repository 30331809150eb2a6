// Kafka messages -> Arrow batches with Spark's Kafka source schema.
#include "sluice/kafka/source_schema.h"

#include <arrow/api.h>

#include "sluice/common/recycling_memory_pool.h"
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

std::vector<std::string> kafka_columns_never_repeating(const arrow::Schema& schema) {
  std::vector<std::string> out;
  for (const auto& field : schema.fields()) {
    const auto id = field->type()->id();
    const bool bytes = id == arrow::Type::BINARY || id == arrow::Type::LARGE_BINARY ||
                       id == arrow::Type::STRING || id == arrow::Type::LARGE_STRING;
    const bool payload = field->name() == "value" && bytes;
    const bool offset = field->name() == "offset" && id == arrow::Type::INT64;
    if (payload || offset) out.push_back(field->name());
  }
  return out;
}

// The batch's buffers come from record_batch_pool(): each batch is sized like the last one,
// and the buffers a writer lane frees are reused for the next batch instead of faulted in anew.
KafkaRecordBatchBuilder::KafkaRecordBatchBuilder(HeadersColumn headers)
    : key_(record_batch_pool()),
      value_(record_batch_pool()),
      topic_(record_batch_pool()),
      partition_(record_batch_pool()),
      offset_(record_batch_pool()),
      timestamp_(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), record_batch_pool()),
      timestamp_type_(record_batch_pool()),
      header_key_(std::make_shared<arrow::StringBuilder>(record_batch_pool())),
      header_value_(std::make_shared<arrow::BinaryBuilder>(record_batch_pool())),
      header_(std::make_shared<arrow::StructBuilder>(
          header_type(), record_batch_pool(),
          std::vector<std::shared_ptr<arrow::ArrayBuilder>>{header_key_, header_value_})),
      headers_(record_batch_pool(), header_, headers_type()),
      include_headers_(headers == HeadersColumn::kInclude) {}

// The record's fields were read from librdkafka's C message once, when it was polled
// (RecordView): no per-row std::string or header vector as RdKafka::Message would make.
arrow::Status KafkaRecordBatchBuilder::append(const RecordView& record) {
  const auto append_bytes = [](arrow::BinaryBuilder& builder, const std::optional<std::string_view>& bytes) {
    return bytes ? builder.Append(reinterpret_cast<const uint8_t*>(bytes->data()), static_cast<int32_t>(bytes->size()))
                 : builder.AppendNull();
  };
  ARROW_RETURN_NOT_OK(append_bytes(key_, record.key));
  ARROW_RETURN_NOT_OK(append_bytes(value_, record.value));
  if (record.topic.data() != topic_handle_ || record.topic.size() != topic_name_.size()) {
    topic_handle_ = record.topic.data();
    topic_name_ = record.topic;
  }
  ARROW_RETURN_NOT_OK(topic_.Append(topic_name_));
  ARROW_RETURN_NOT_OK(partition_.Append(record.partition.value()));
  ARROW_RETURN_NOT_OK(offset_.Append(record.offset.value()));
  // No timestamp (Spark's NO_TIMESTAMP_TYPE id), or one no TIMESTAMP holds: a producer may set
  // any int64 of milliseconds where a topic allows it (message.timestamp.after.max.ms), and
  // beyond about year 294,000 the microseconds overflow. The record is kept, its time null
  // (Spark's source fails the query on such a record).
  int64_t micros = 0;
  if (record.timestamp_type == TimestampType::kNone || __builtin_mul_overflow(record.timestamp_ms, int64_t{1000}, &micros)) {
    ARROW_RETURN_NOT_OK(timestamp_.AppendNull());
  } else {
    ARROW_RETURN_NOT_OK(timestamp_.Append(micros));
  }
  ARROW_RETURN_NOT_OK(timestamp_type_.Append(static_cast<int32_t>(record.timestamp_type)));
  // Headers: null when the record has none, as Spark's source gives them.
  const size_t header_count = include_headers_ ? record.header_count() : 0;
  if (!include_headers_) {
    // includeHeaders => false: no headers column at all
  } else if (header_count == 0) {
    ARROW_RETURN_NOT_OK(headers_.AppendNull());
  } else {
    ARROW_RETURN_NOT_OK(headers_.Append());
    for (size_t i = 0; i < header_count; ++i) {
      const RecordHeader header = record.header(i);
      ARROW_RETURN_NOT_OK(header_->Append());
      // Header keys are a STRING column, as in Spark, but any producer can send any bytes.
      ARROW_RETURN_NOT_OK(header_key_->Append(valid_utf8(header.key, &header_key_scratch_)));
      if (header.value) {
        ARROW_RETURN_NOT_OK(header_value_->Append(reinterpret_cast<const uint8_t*>(header.value->data()),
                                                  static_cast<int32_t>(header.value->size())));
      } else {
        ARROW_RETURN_NOT_OK(header_value_->AppendNull());
      }
    }
  }
  ++num_rows_;
  payload_bytes_ += static_cast<int64_t>((record.value ? record.value->size() : 0) + (record.key ? record.key->size() : 0));
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
