// librdkafka messages read as RecordViews; see record_view.h.
#include "sluice/kafka/record_view.h"

#include <librdkafka/rdkafka.h>

#include <cstring>

namespace sluice::kafka {

namespace {

RecordKind kind_of(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return RecordKind::kRecord;
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
      return RecordKind::kPartitionEnd;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
      return RecordKind::kTransientError;
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
      return RecordKind::kOffsetOutOfRange;
    default:
      return RecordKind::kError;
  }
}

std::optional<std::string_view> bytes(const void* data, size_t size) {
  if (data == nullptr) return std::nullopt;
  return std::string_view(static_cast<const char*>(data), size);
}

}  // namespace

RecordView RecordView::of(const rd_kafka_message_s& message, std::string_view topic) {
  RecordView v;
  v.message_ = &message;
  v.kind = kind_of(message.err);
  v.topic = topic;
  v.partition = KafkaPartition(message.partition);
  v.offset = KafkaOffset(message.offset);
  if (v.kind != RecordKind::kRecord) return v;
  rd_kafka_timestamp_type_t type;
  v.timestamp_ms = rd_kafka_message_timestamp(&message, &type);
  v.timestamp_type = type == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? TimestampType::kCreateTime
                     : type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? TimestampType::kLogAppendTime
                                                                  : TimestampType::kNone;
  v.key = bytes(message.key, message.key_len);
  v.value = bytes(message.payload, message.len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) v.headers_ = headers;
  return v;
}

size_t RecordView::header_count() const {
  if (plain_headers_ != nullptr) return plain_headers_->size();
  return headers_ == nullptr ? 0 : rd_kafka_header_cnt(headers_);
}

RecordHeader RecordView::header(size_t i) const {
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  if (plain_headers_ != nullptr) {
    const auto& [key, header_value] = (*plain_headers_)[i];
    return {key, header_value ? std::optional<std::string_view>(*header_value) : std::nullopt};
  }
  if (headers_ == nullptr || rd_kafka_header_get_all(headers_, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return {};
  }
  return {std::string_view(name, std::strlen(name)), bytes(value, size)};
}

std::string RecordView::error_text() const {
  if (message_ == nullptr || message_->err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return rd_kafka_message_errstr(message_);
}

}  // namespace sluice::kafka
