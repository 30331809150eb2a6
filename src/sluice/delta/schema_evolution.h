// Reconciling the schema of data being written with a table's schema: safe widening casts,
// missing nullable columns filled with nulls, new nullable columns (top level or nested)
// added when schema evolution is allowed, and everything else refused with the column and
// both types named.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>

namespace sluice::delta {

enum class SchemaMode {
  kStrict,  // the data must fit the table's schema
  kMerge,   // new nullable columns and struct fields are added to the table
};

// Arrow types normalised to what Delta stores: microsecond timestamps (zoned ones in UTC),
// 32-bit offsets for strings/binaries/lists, dictionaries decoded.
std::shared_ptr<arrow::DataType> normalize_type(const std::shared_ptr<arrow::DataType>& type);
std::shared_ptr<arrow::Schema> normalize_schema(const arrow::Schema& schema);

// The table schema after writing `data`: `table` itself, or `table` with new columns
// appended in kMerge mode. Errors name the column (dotted path) and both Delta types.
arrow::Result<std::shared_ptr<arrow::Schema>> reconcile_schema(const arrow::Schema& table,
                                                               const arrow::Schema& data,
                                                               SchemaMode mode);

// Every NOT NULL column of the batch's schema has a value in every row, also NOT NULL fields
// of structs (where the struct itself is not null); the error is Spark's "NOT NULL constraint
// violated for column: a.b." with the count of rows.
arrow::Status check_not_null(const arrow::RecordBatch& batch);

// Casts, reorders and null-fills a batch so its schema is exactly `target` (one produced by
// reconcile_schema for the batch's schema). Rows with nulls in NOT NULL columns are refused.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> conform_batch(
    const arrow::RecordBatch& batch, const std::shared_ptr<arrow::Schema>& target);

}  // namespace sluice::delta
