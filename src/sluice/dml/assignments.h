// The `SET column = value` and INSERT values of DML: which target column each sets, and the
// target's rows built from them (values cast to the column types, as Spark's store assignment).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/exec/expression_binder.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::dml {

// The index in `table` of the column `name` (case-insensitive); `at` locates errors.
arrow::Result<int> resolve_target_column(const std::string& name, sql::Location at,
                                         const sql::SourceFile& file, const arrow::Schema& table);

// The column an assignment sets: c, or q.c with q one of `qualifiers`.
arrow::Result<int> resolve_assigned_column(const sql::Assignment& assignment,
                                           const sql::SourceFile& file, const arrow::Schema& table,
                                           const std::set<std::string>& qualifiers);

// Refuses, at `at`, a value of `type` for `column` that Spark's ANSI store assignment refuses
// (a STRING into a BIGINT, a number into a DATE, ...): numbers widen or narrow among numbers
// (an overflow is an error when the row is written), NULL goes anywhere.
arrow::Status check_assignable(const arrow::DataType& type, const arrow::Field& column,
                               sql::Location at, const sql::SourceFile& file);

// One new value per table column: bound over the statement's input rows, or unset.
struct ColumnValues {
  std::vector<std::optional<exec::BoundExpression>> values;  // by table column
  std::vector<int> unchanged;  // the input column kept when unset (-1: NULL)
};

// Rows of the table schema from `input`: each column its value cast to the column's type, or
// the input column it keeps.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> assign_columns(const arrow::RecordBatch& input,
                                                                  const ColumnValues& columns,
                                                                  const arrow::Schema& table);

// The rows of `batch` where `mask` is true.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> filter_rows(const arrow::RecordBatch& batch,
                                                               const arrow::Array& mask);

}  // namespace sluice::dml
