// Decodes JSON text into Arrow columns of a declared type (RapidJSON, one parse per record,
// values appended straight into Arrow builders). Semantics follow Spark's from_json in
// PERMISSIVE mode: a null input is a null struct; text that is not valid JSON becomes a struct
// whose fields are all null; a field whose JSON value does not fit its type is null.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <vector>

namespace sluice::format {

struct JsonDecodeStats {
  int64_t malformed_records = 0;  // not valid JSON (or not an object for a struct type)
  int64_t mismatched_fields = 0;  // values that did not fit their field's type (decoded fields only)
};

// `strings` is a utf8 or binary array; `type` is usually a struct. `decoded_fields`, when not
// empty, has one flag per field of a struct `type`: the fields flagged false come out null
// (all of their rows) and their values are only checked to be JSON, not converted, so the
// fields flagged true and the struct's own validity are exactly what a full decode gives.
arrow::Result<std::shared_ptr<arrow::Array>> decode_json(const arrow::Array& strings,
                                                         const std::shared_ptr<arrow::DataType>& type,
                                                         JsonDecodeStats* stats = nullptr,
                                                         const std::vector<bool>& decoded_fields = {});

namespace internal {
// decode_json through a RapidJSON document per record, every field decoded: what decode_json
// falls back to for types with nested fields, and the oracle its tests compare against.
arrow::Result<std::shared_ptr<arrow::Array>> decode_json_with_document(const arrow::Array& strings,
                                                                       const std::shared_ptr<arrow::DataType>& type,
                                                                       JsonDecodeStats* stats = nullptr);
}  // namespace internal

}  // namespace sluice::format
