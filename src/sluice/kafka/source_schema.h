// The Kafka source row (Spark's Kafka source schema) and a builder that turns consumed
// messages into Arrow record batches of it.
#pragma once

#include <arrow/builder.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>
#include <vector>

#include "sluice/kafka/record_view.h"

namespace sluice::kafka {

// key binary, value binary, topic string, partition int, offset long, timestamp timestamp,
// timestampType int, headers array<struct<key string, value binary>>.
const std::shared_ptr<arrow::Schema>& kafka_source_schema();

// Whether Kafka rows carry the headers column (Spark's includeHeaders).
enum class HeadersColumn { kInclude, kDrop };
const std::shared_ptr<arrow::Schema>& kafka_source_schema(HeadersColumn headers);

// The top-level columns of `schema` that carry Kafka row values which never repeat: `value` as
// binary or string (a whole payload) and `offset` as int64 (unique within a partition). A
// Parquet dictionary for them fills up and is abandoned in every row group, so a flow writing
// Kafka rows writes them without one (docs/decisions.md "Parquet dictionaries"). The key may
// repeat (an entity id) and keeps its dictionary.
std::vector<std::string> kafka_columns_never_repeating(const arrow::Schema& schema);

class KafkaRecordBatchBuilder {
 public:
  explicit KafkaRecordBatchBuilder(HeadersColumn headers = HeadersColumn::kInclude);

  // Appends one consumed record (kind RecordKind::kRecord).
  arrow::Status append(const RecordView& record);
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
  // The topic of the last record: its name's address in the consumer (the same for every
  // record of a topic) and a copy of the name.
  const char* topic_handle_ = nullptr;
  std::string topic_name_;
  std::string header_key_scratch_;  // a header key whose invalid UTF-8 was replaced
};

}  // namespace sluice::kafka
