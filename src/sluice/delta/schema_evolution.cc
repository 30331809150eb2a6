// Schema reconciliation for writes.
#include "sluice/delta/schema_evolution.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include "sluice/common/status.h"
#include "sluice/delta/schema.h"

namespace sluice::delta {

namespace {

std::string join_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

int integer_rank(arrow::Type::type id) {
  switch (id) {
    case arrow::Type::INT8: return 1;
    case arrow::Type::INT16: return 2;
    case arrow::Type::INT32: return 3;
    case arrow::Type::INT64: return 4;
    default: return 0;
  }
}

// Whether data of type `from` can be written into a column of type `to` without loss.
bool is_safe_widening(const arrow::DataType& from, const arrow::DataType& to) {
  int rf = integer_rank(from.id()), rt = integer_rank(to.id());
  if (rf && rt) return rf <= rt;
  if (from.id() == arrow::Type::FLOAT && to.id() == arrow::Type::DOUBLE) return true;
  if (rf && rf <= 3 && to.id() == arrow::Type::DOUBLE) return true;
  return false;
}

arrow::Result<std::shared_ptr<arrow::DataType>> reconcile_type(
    const std::shared_ptr<arrow::DataType>& table, const std::shared_ptr<arrow::DataType>& data,
    SchemaMode mode, const std::string& path);

arrow::Result<arrow::FieldVector> reconcile_fields(const arrow::FieldVector& table,
                                                   const arrow::FieldVector& data, SchemaMode mode,
                                                   const std::string& parent) {
  arrow::FieldVector out;
  for (const auto& tf : table) {
    const std::string path = join_path(parent, tf->name());
    auto it = std::find_if(data.begin(), data.end(),
                           [&](const auto& f) { return f->name() == tf->name(); });
    if (it == data.end()) {
      if (!tf->nullable()) {
        return invalid(
            "column '{}' is NOT NULL ({}) in the table but missing from the data; a non-null "
            "column cannot be dropped",
            path, delta_type_name(*tf->type()));
      }
      out.push_back(tf);
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto type, reconcile_type(tf->type(), (*it)->type(), mode, path));
    out.push_back(tf->WithType(type));
  }
  for (const auto& df : data) {
    auto it = std::find_if(table.begin(), table.end(),
                           [&](const auto& f) { return f->name() == df->name(); });
    if (it != table.end()) continue;
    const std::string path = join_path(parent, df->name());
    if (mode != SchemaMode::kMerge) {
      return invalid(
          "column '{}' ({}) is not in the table; allow schema evolution (merge schema) to add it",
          path, delta_type_name(*df->type()));
    }
    if (!df->nullable()) {
      return invalid("new column '{}' ({}) must be nullable to be added to an existing table",
                     path, delta_type_name(*df->type()));
    }
    out.push_back(df);
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::DataType>> reconcile_type(
    const std::shared_ptr<arrow::DataType>& table, const std::shared_ptr<arrow::DataType>& data,
    SchemaMode mode, const std::string& path) {
  if (table->Equals(*data)) return table;
  if (table->id() == arrow::Type::STRUCT && data->id() == arrow::Type::STRUCT) {
    ARROW_ASSIGN_OR_RAISE(auto fields, reconcile_fields(table->fields(), data->fields(), mode, path));
    return arrow::struct_(fields);
  }
  if (table->id() == arrow::Type::LIST && data->id() == arrow::Type::LIST) {
    ARROW_ASSIGN_OR_RAISE(auto element, reconcile_type(table->field(0)->type(),
                                                       data->field(0)->type(), mode,
                                                       path + ".element"));
    return arrow::list(table->field(0)->WithType(element));
  }
  if (table->id() == arrow::Type::MAP && data->id() == arrow::Type::MAP) {
    const auto& tm = static_cast<const arrow::MapType&>(*table);
    const auto& dm = static_cast<const arrow::MapType&>(*data);
    ARROW_ASSIGN_OR_RAISE(auto key, reconcile_type(tm.key_type(), dm.key_type(), mode, path + ".key"));
    ARROW_ASSIGN_OR_RAISE(auto item,
                          reconcile_type(tm.item_type(), dm.item_type(), mode, path + ".value"));
    return std::make_shared<arrow::MapType>(tm.key_field()->WithType(key),
                                            tm.item_field()->WithType(item));
  }
  if (is_safe_widening(*data, *table)) return table;
  return invalid("column '{}' has type {} in the table but {} in the data; {}", path,
                 delta_type_name(*table), delta_type_name(*data),
                 is_safe_widening(*table, *data)
                     ? "narrowing a column is not allowed (write the table's type)"
                     : "the types are incompatible");
}

// Casts/fills one column to `target` type. `parent_validity` is unused by Arrow's struct
// construction; children keep their own validity.
arrow::Result<std::shared_ptr<arrow::Array>> conform_array(
    const std::shared_ptr<arrow::Array>& array, const std::shared_ptr<arrow::DataType>& target) {
  if (array->type()->Equals(*target)) return array;
  if (target->id() == arrow::Type::STRUCT && array->type_id() == arrow::Type::STRUCT) {
    const auto& st = static_cast<const arrow::StructArray&>(*array);
    arrow::ArrayVector children;
    for (const auto& tf : target->fields()) {
      auto child = st.GetFieldByName(tf->name());
      if (!child) {
        ARROW_ASSIGN_OR_RAISE(child, arrow::MakeArrayOfNull(tf->type(), array->length()));
      } else {
        ARROW_ASSIGN_OR_RAISE(child, conform_array(child, tf->type()));
      }
      children.push_back(child);
    }
    return arrow::StructArray::Make(children, target->fields(), st.null_bitmap(),
                                    st.data()->null_count, st.offset());
  }
  arrow::compute::CastOptions options = arrow::compute::CastOptions::Safe(target);
  ARROW_ASSIGN_OR_RAISE(auto cast, arrow::compute::Cast(*array, target, options));
  return cast;
}

// Spark's message for the violation (DELTA_NOT_NULL_CONSTRAINT_VIOLATED), with counts and
// what to do.
arrow::Status not_null_violation(const std::string& column, int64_t nulls, int64_t rows) {
  return invalid(
      "NOT NULL constraint violated for column: {}. {} of {} row(s) in this write have no value "
      "for it; nothing was written. Give the column a value (e.g. coalesce), or drop the "
      "constraint (ALTER TABLE ... ALTER COLUMN {} DROP NOT NULL)",
      column, nulls, rows, column);
}

// Rows where a struct is valid but its NOT NULL field `child` is null (a null struct has no
// fields to check, as in Spark).
int64_t nulls_under_valid_parent(const arrow::Array& parent, const arrow::Array& child) {
  if (child.null_count() == 0) return 0;
  if (parent.null_count() == 0) return child.null_count();
  int64_t n = 0;
  for (int64_t i = 0; i < child.length(); ++i) n += parent.IsValid(i) && child.IsNull(i);
  return n;
}

arrow::Status check_struct_not_null(const arrow::Array& array, const std::string& path,
                                    int64_t rows) {
  if (array.type_id() != arrow::Type::STRUCT) return arrow::Status::OK();
  const auto& st = static_cast<const arrow::StructArray&>(array);
  for (int i = 0; i < st.num_fields(); ++i) {
    const auto& field = st.struct_type()->field(i);
    const std::string child_path = path + "." + field->name();
    if (!field->nullable()) {
      auto raw = st.field(i);
      if (int64_t n = nulls_under_valid_parent(st, *raw); n > 0) {
        return not_null_violation(child_path, n, rows);
      }
    }
    ARROW_RETURN_NOT_OK(check_struct_not_null(*st.field(i), child_path, rows));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status check_not_null(const arrow::RecordBatch& batch) {
  for (int c = 0; c < batch.num_columns(); ++c) {
    const auto& field = batch.schema()->field(c);
    const auto& column = *batch.column(c);
    if (!field->nullable() && column.null_count() > 0) {
      return not_null_violation(field->name(), column.null_count(), batch.num_rows());
    }
    ARROW_RETURN_NOT_OK(check_struct_not_null(column, field->name(), batch.num_rows()));
  }
  return arrow::Status::OK();
}

std::shared_ptr<arrow::DataType> normalize_type(const std::shared_ptr<arrow::DataType>& type) {
  switch (type->id()) {
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(*type);
      return arrow::timestamp(arrow::TimeUnit::MICRO, ts.timezone().empty() ? "" : "UTC");
    }
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW:
      return arrow::utf8();
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW:
    case arrow::Type::FIXED_SIZE_BINARY:
      return arrow::binary();
    case arrow::Type::DATE64:
      return arrow::date32();
    case arrow::Type::DICTIONARY:
      return normalize_type(static_cast<const arrow::DictionaryType&>(*type).value_type());
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW:
    case arrow::Type::FIXED_SIZE_LIST: {
      const auto& f = type->field(0);
      return arrow::list(arrow::field("element", normalize_type(f->type()), f->nullable()));
    }
    case arrow::Type::STRUCT: {
      arrow::FieldVector fields;
      for (const auto& f : type->fields()) fields.push_back(f->WithType(normalize_type(f->type())));
      return arrow::struct_(fields);
    }
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(*type);
      return std::make_shared<arrow::MapType>(
          arrow::field("key", normalize_type(m.key_type()), false),
          arrow::field("value", normalize_type(m.item_type()), m.item_field()->nullable()));
    }
    default:
      return type;
  }
}

std::shared_ptr<arrow::Schema> normalize_schema(const arrow::Schema& schema) {
  arrow::FieldVector fields;
  for (const auto& f : schema.fields()) {
    // Top-level metadata (a column COMMENT) stays: it becomes the Delta field's metadata.
    fields.push_back(arrow::field(f->name(), normalize_type(f->type()), f->nullable(), f->metadata()));
  }
  return arrow::schema(fields);
}

arrow::Result<std::shared_ptr<arrow::Schema>> reconcile_schema(const arrow::Schema& table,
                                                               const arrow::Schema& data,
                                                               SchemaMode mode) {
  auto normalized = normalize_schema(data);
  ARROW_ASSIGN_OR_RAISE(auto fields,
                        reconcile_fields(table.fields(), normalized->fields(), mode, ""));
  return arrow::schema(fields);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> conform_batch(
    const arrow::RecordBatch& batch, const std::shared_ptr<arrow::Schema>& target) {
  arrow::ArrayVector columns;
  for (const auto& tf : target->fields()) {
    auto column = batch.GetColumnByName(tf->name());
    if (!column) {
      ARROW_ASSIGN_OR_RAISE(column, arrow::MakeArrayOfNull(tf->type(), batch.num_rows()));
    } else {
      auto cast = conform_array(column, tf->type());
      if (!cast.ok()) return with_context(cast.status(), fmt::format("column '{}'", tf->name()));
      column = *cast;
    }
    if (!tf->nullable() && column->null_count() > 0) {
      return not_null_violation(tf->name(), column->null_count(), batch.num_rows());
    }
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(target, batch.num_rows(), std::move(columns));
}

}  // namespace sluice::delta
