// Rows of a record batch as Avro records in Confluent's wire format (what a Kafka sink with
// value_format => 'avro' writes as each record's value), and the Avro schema of those columns,
// which the sink registers with the schema registry. The schema is the inverse of what sluice's
// Avro decoder reads (avro_schema.h): a Kafka source reading the topic back gets the columns.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::format {

// The Avro schema (JSON text) of a record `name` in `namespace_` holding the fields `columns`
// (indices into `schema`): nullable fields as ["null", T] with default null, structs as nested
// records, lists as arrays, maps with string keys as maps, dates, timestamps (micros; UTC ones
// as timestamp-micros, others as local-timestamp-micros), times (time-micros) and decimals
// (bytes) as Avro's logical types. Types without an Avro form, and names Avro does not allow,
// are refused naming the column.
arrow::Result<std::string> avro_schema_of(const arrow::Schema& schema, const std::vector<int>& columns,
                                          const std::string& name, const std::string& namespace_);

// One value per row of `batch`: magic byte 0, `schema_id` as 4 big-endian bytes, then the row's
// `columns` in Avro's binary encoding of avro_schema_of's schema.
arrow::Result<std::shared_ptr<arrow::BinaryArray>> rows_to_avro(const arrow::RecordBatch& batch,
                                                                const std::vector<int>& columns, int32_t schema_id);

}  // namespace sluice::format
