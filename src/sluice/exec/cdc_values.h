// Row-wise helpers shared by the APPLY CHANGES resolvers (cdc_resolver.h, cdc_history.h): the
// order of SEQUENCE BY values, row identity for keys and tracked columns, and gathering rows.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::exec::cdc_values {

// Dense ranks of the sequence values, ascending: equal values share a rank; a struct compares
// field by field, in field order (nulls rank last).
arrow::Result<std::vector<int64_t>> sequence_ranks(const std::shared_ptr<arrow::Array>& sequence);
// Each row of `columns` as bytes: equal rows, equal bytes (for grouping and comparing).
arrow::Result<std::vector<std::string>> encode_keys(const std::vector<std::shared_ptr<arrow::Array>>& columns,
                                                    int64_t n);
// `state`'s chunks (none when null) followed by `batch`.
arrow::Result<std::shared_ptr<arrow::Array>> concat(const std::shared_ptr<arrow::ChunkedArray>& state,
                                                    const std::shared_ptr<arrow::Array>& batch);
// values[rows[i]]; a negative row gives null.
arrow::Result<std::shared_ptr<arrow::Array>> take(const std::shared_ptr<arrow::Array>& values,
                                                  const std::vector<int64_t>& rows);
// A boolean array's value (false for null, or no array).
bool flag(const std::shared_ptr<arrow::Array>& a, int64_t i);

}  // namespace sluice::exec::cdc_values
