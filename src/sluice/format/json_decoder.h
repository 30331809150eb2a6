// Decodes JSON text into Arrow columns of a declared type (RapidJSON, one parse per record,
// values appended straight into Arrow builders). Semantics follow Spark's from_json in
// PERMISSIVE mode: a null input is a null struct; text that is not valid JSON becomes a struct
// whose fields are all null; a field whose JSON value does not fit its type is null.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>

namespace sluice::format {

struct JsonDecodeStats {
  int64_t malformed_records = 0;  // not valid JSON (or not an object for a struct type)
  int64_t mismatched_fields = 0;  // values that did not fit their field's type
};

// `strings` is a utf8 or binary array; `type` is usually a struct.
arrow::Result<std::shared_ptr<arrow::Array>> decode_json(const arrow::Array& strings,
                                                         const std::shared_ptr<arrow::DataType>& type,
                                                         JsonDecodeStats* stats = nullptr);

}  // namespace sluice::format
