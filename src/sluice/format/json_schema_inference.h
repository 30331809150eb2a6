// Infers a schema from sample JSON records, by Spark's rules for JSON sources: the union of the
// objects' keys (in order of first appearance); integers are BIGINT, other numbers DOUBLE;
// a field seen with different kinds of value widens (BIGINT + DOUBLE = DOUBLE) or, failing
// that, becomes STRING; a field that was only ever null is STRING. Objects become structs,
// arrays lists of their elements' merged type.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <string_view>
#include <vector>

namespace sluice::format {

struct JsonInferenceStats {
  int64_t records = 0;    // samples that were JSON objects
  int64_t malformed = 0;  // samples that were not (ignored)
};

// An error when no sample is a JSON object.
arrow::Result<std::shared_ptr<arrow::Schema>> infer_json_schema(const std::vector<std::string_view>& samples,
                                                                JsonInferenceStats* stats = nullptr);

}  // namespace sluice::format
