// Decoders of Kafka payloads (a binary column) into typed Arrow columns, one interface for
// every wire format (JSON with a declared schema, Avro in the Confluent schema-registry wire
// format). A decoder never drops a record: a record that cannot be decoded at all is reported
// in `errors` (the caller sends it to the dead-letter path with its source position), and the
// fields of a decodable record that do not fit the schema go to `_rescued_data`.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::format {

// Name of the column that holds what did not fit the schema: a JSON object of field -> value
// (unknown fields, values of the wrong type), null when everything fitted. As Databricks'
// Auto Loader and from_json's rescuedDataColumn name it.
inline constexpr const char* kRescuedDataColumn = "_rescued_data";

struct DecodeError {
  int64_t row = 0;       // index in the input array
  std::string message;   // why, e.g. "invalid JSON at byte 17: Missing a comma"
};

struct DecodedBatch {
  // One row per input record, columns of the decoder's schema(). A null input is a row of
  // nulls and no error; a row listed in `errors` is a row of nulls.
  std::shared_ptr<arrow::RecordBatch> rows;
  std::vector<DecodeError> errors;  // ascending by row
};

struct DecoderOptions {
  // Adds a trailing nullable utf8 `_rescued_data` column to schema().
  bool rescued_data_column = true;
};

class PayloadDecoder {
 public:
  virtual ~PayloadDecoder() = default;
  // The decoded columns (plus `_rescued_data` when asked for), fixed for the decoder's life.
  virtual std::shared_ptr<arrow::Schema> schema() const = 0;
  // `payloads` is a binary or utf8 array (Kafka's value or key).
  virtual arrow::Result<DecodedBatch> decode(const arrow::Array& payloads) = 0;
};

}  // namespace sluice::format
