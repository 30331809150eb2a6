// Rows of a record batch as JSON objects, one per row (what a Kafka sink writes as each record's
// value), in the shape Spark's to_json gives: column names as keys, nested structs as objects,
// arrays as arrays, maps as objects, binary as base64, dates as yyyy-MM-dd, timestamps as ISO 8601
// in UTC with a Z, decimals as numbers, NaN and infinities as strings, null columns left out.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <vector>

namespace sluice::format {

// One JSON object per row of `batch` made of the columns `columns` (indices into the batch).
// Types without a JSON form (intervals, unions, ...) are refused naming the column.
arrow::Result<std::shared_ptr<arrow::StringArray>> rows_to_json(const arrow::RecordBatch& batch,
                                                                const std::vector<int>& columns);

// A column as record keys: strings and binaries as they are, other scalars as their text (a
// cast to string); null stays null.
arrow::Result<std::shared_ptr<arrow::Array>> key_bytes(const std::shared_ptr<arrow::Array>& column);

}  // namespace sluice::format
