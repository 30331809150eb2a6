// Assignments of DML statements.
#include "sluice/dml/assignments.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/type_traits.h>

#include <fmt/format.h>

#include "sluice/common/text.h"
#include "sluice/sql/types.h"

namespace sluice::dml {

namespace cp = arrow::compute;

arrow::Result<int> resolve_target_column(const std::string& name, sql::Location at,
                                         const sql::SourceFile& file, const arrow::Schema& table) {
  for (int i = 0; i < table.num_fields(); ++i) {
    if (to_lower(table.field(i)->name()) == to_lower(name)) return i;
  }
  std::string names;
  for (const auto& f : table.fields()) names += (names.empty() ? "" : ", ") + f->name();
  return arrow::Status::Invalid(sql::format_error(
      file, at, fmt::format("the target table has no column '{}'; its columns are: {}", name, names)));
}

arrow::Result<int> resolve_assigned_column(const sql::Assignment& assignment,
                                           const sql::SourceFile& file, const arrow::Schema& table,
                                           const std::set<std::string>& qualifiers) {
  const auto& parts = assignment.column;
  if (parts.size() == 2) {
    bool known = false;
    for (const auto& q : qualifiers) known |= to_lower(q) == to_lower(parts[0]);
    if (!known) {
      return arrow::Status::Invalid(sql::format_error(
          file, assignment.loc,
          fmt::format("'{}.{}' does not name a column of the target table (SET assigns the "
                      "target's columns)",
                      parts[0], parts[1])));
    }
    return resolve_target_column(parts[1], assignment.loc, file, table);
  }
  if (parts.size() != 1) {
    return arrow::Status::NotImplemented(sql::format_error(
        file, assignment.loc, "assigning a nested field is not supported yet: assign the whole column"));
  }
  return resolve_target_column(parts[0], assignment.loc, file, table);
}

namespace {

bool numeric(const arrow::DataType& t) {
  return arrow::is_integer(t.id()) || arrow::is_floating(t.id()) || arrow::is_decimal(t.id());
}

bool textual(const arrow::DataType& t) {
  return t.id() == arrow::Type::STRING || t.id() == arrow::Type::LARGE_STRING;
}

bool temporal(const arrow::DataType& t) {
  return t.id() == arrow::Type::DATE32 || t.id() == arrow::Type::TIMESTAMP;
}

}  // namespace

arrow::Status check_assignable(const arrow::DataType& type, const arrow::Field& column,
                               sql::Location at, const sql::SourceFile& file) {
  const auto& target = *column.type();
  if (type.Equals(target) || type.id() == arrow::Type::NA) return arrow::Status::OK();
  if ((numeric(type) && numeric(target)) || (textual(type) && textual(target)) ||
      (temporal(type) && temporal(target))) {
    return arrow::Status::OK();
  }
  return arrow::Status::Invalid(sql::format_error(
      file, at,
      fmt::format("cannot assign {} to column '{}' ({}): CAST the value to {} if that is meant",
                  sql::sql_type_name(type), column.name(), sql::sql_type_name(target),
                  sql::sql_type_name(target))));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> assign_columns(const arrow::RecordBatch& input,
                                                                  const ColumnValues& columns,
                                                                  const arrow::Schema& table) {
  arrow::ArrayVector out;
  const int64_t rows = input.num_rows();
  for (int i = 0; i < table.num_fields(); ++i) {
    const auto& field = table.field(i);
    std::shared_ptr<arrow::Array> value;
    if (columns.values[i]) {
      ARROW_ASSIGN_OR_RAISE(value, exec::evaluate(*columns.values[i], input));
    } else if (columns.unchanged[i] >= 0) {
      value = input.column(columns.unchanged[i]);
    } else {
      ARROW_ASSIGN_OR_RAISE(value, arrow::MakeArrayOfNull(field->type(), rows));
    }
    if (!value->type()->Equals(*field->type())) {
      auto cast = cp::Cast(value, field->type());
      if (!cast.ok()) {
        return arrow::Status::Invalid(fmt::format(
            "cannot store {} in column '{}' ({}): {}", sql::sql_type_name(*value->type()),
            field->name(), sql::sql_type_name(*field->type()), cast.status().message()));
      }
      value = cast->make_array();
    }
    out.push_back(std::move(value));
  }
  return arrow::RecordBatch::Make(std::make_shared<arrow::Schema>(table.fields()), rows, out);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> filter_rows(const arrow::RecordBatch& batch,
                                                               const arrow::Array& mask) {
  ARROW_ASSIGN_OR_RAISE(auto out, cp::Filter(batch.Slice(0), mask));
  return out.record_batch();
}

}  // namespace sluice::dml
