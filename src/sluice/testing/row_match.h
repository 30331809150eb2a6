// Compares a table's rows to a fixture's expected rows (order-insensitive, a subset of the
// columns, numbers within a tolerance) and describes the difference for a person to read.
#pragma once

#include <arrow/result.h>
#include <arrow/type.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sluice/testing/fixture.h"

namespace sluice::testing {

struct RowDiff {
  std::vector<std::string> missing;     // expected rows no actual row matched (with file:line)
  std::vector<std::string> unexpected;  // actual rows no expected row matched
  bool ok() const { return missing.empty() && unexpected.empty(); }
  // "missing rows (expected, not found): ... / unexpected rows: ..." indented by `indent`.
  std::string text(const std::string& indent) const;
};

// The rows of `table` as JSON objects (Spark's to_json shape: timestamps in ISO 8601 with a Z,
// binary as text when it is UTF-8, else base64; null columns as null).
arrow::Result<std::vector<nlohmann::json>> table_rows_as_json(const arrow::Table& table);

// Whether an actual value of a column of `type` (null: unknown) matches an expected one: null
// matches a missing or null value; two whole numbers exactly, a float within `tolerance`
// (relative, absolute below 1); in a TIMESTAMP/DATE column two texts of one instant
// ("2024-01-01 10:00:00" matches "2024-01-01T10:00:00.000Z"), elsewhere text exactly; a MAP
// on exactly its entries, a struct on the fields expected.
bool value_matches(const nlohmann::json& expected, const nlohmann::json& actual, double tolerance,
                   const arrow::DataType* type = nullptr);

// Matches every expected row to a distinct actual row (first match wins, in order). An
// expected column the table lacks is an error naming the row's file:line and the columns.
arrow::Result<RowDiff> match_rows(const std::vector<nlohmann::json>& actual, const arrow::FieldVector& columns,
                                  const FixtureRows& expected, double tolerance, const std::string& table);

}  // namespace sluice::testing
