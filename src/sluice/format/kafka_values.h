// Decoding of the Kafka `value` column as read_kafka's value_format asks: the source rows keep
// Kafka's columns, `value` becomes a struct of the decoded fields and `_rescued_data` follows;
// records that cannot be decoded leave the batch as dead letters with their source position,
// the error and the raw bytes.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>

#include "sluice/format/field_selection.h"
#include "sluice/format/payload_decoder.h"

namespace sluice::format {

struct ValueFormat {
  enum class Kind { kNone, kJson, kAvro };
  Kind kind = Kind::kNone;
  std::shared_ptr<arrow::Schema> json_schema;  // kJson: the declared columns
  std::string avro_schema;                     // kAvro: reader schema (Avro JSON); empty: the subject's latest
  std::string registry_url;                    // kAvro: Confluent-compatible registry
  std::string registry_ca_location;            // kAvro, https: the CA's PEM file (empty: system store)
  std::string registry_auth;                   // kAvro: "user:password" (empty: none); secret
  std::string subject;                         // kAvro: where the reader schema comes from
  bool rescued_data_column = true;
};

// The decoder; for Avro without a reader schema, the subject's latest schema is fetched and
// stored into `format->avro_schema` (so later decoders use the same reader schema).
// `read_fields`, the value fields a reader uses (null: all), narrows a JSON decode
// (make_json_decoder); an Avro decode is whole (its datum is read in order, field by field).
arrow::Result<std::unique_ptr<PayloadDecoder>> make_value_decoder(ValueFormat* format,
                                                                  std::shared_ptr<const FieldSelection> read_fields = nullptr);

// Kafka's source schema with `value` as struct<decoded fields> and `_rescued_data` (if the
// decoder has it) appended.
std::shared_ptr<arrow::Schema> decoded_source_schema(const arrow::Schema& kafka_schema,
                                                     const arrow::Schema& decoded);

// topic, partition, offset, timestamp, key, value (raw bytes), error, _dead_lettered_at.
const std::shared_ptr<arrow::Schema>& dead_letter_schema();

struct DecodedValues {
  std::shared_ptr<arrow::RecordBatch> rows;          // decoded_source_schema(), decodable records only
  std::shared_ptr<arrow::RecordBatch> dead_letters;  // dead_letter_schema(); null when there are none
};

// `kafka_rows` has Kafka's source schema.
arrow::Result<DecodedValues> decode_values(const arrow::RecordBatch& kafka_rows, PayloadDecoder& decoder,
                                           const std::shared_ptr<arrow::Schema>& output_schema);

}  // namespace sluice::format
