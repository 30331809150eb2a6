// Copy-on-write DELETE and UPDATE.
#include "sluice/dml/delete_update.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/partitioning.h"
#include "sluice/delta/scan.h"
#include "sluice/dml/assignments.h"
#include "sluice/dml/skipping.h"
#include "sluice/exec/expression_binder.h"

namespace sluice::dml {

namespace cp = arrow::compute;

std::set<std::string> target_qualifiers(const sql::TableRef& target) {
  if (!target.alias.empty()) return {target.alias};
  return {target.name.back()};
}

namespace {

// Spark's infix rendering of a condition ("(t.id = s.id)"), for the history; shapes it has no
// short form for fall back to the parser's canonical form.
std::string sql_text(const sql::Expr& e) {
  auto arg = [&](size_t i) { return sql_text(*e.args[i]); };
  switch (e.kind) {
    case sql::ExprKind::kColumn: {
      std::string out;
      for (const auto& p : e.parts) out += (out.empty() ? "" : ".") + p;
      return out;
    }
    case sql::ExprKind::kBinary:
      return e.args.size() == 2 ? fmt::format("({} {} {})", arg(0), e.op, arg(1)) : sql::to_string(e);
    case sql::ExprKind::kUnary:
      return fmt::format("({}{}{})", e.op, e.op == "NOT" ? " " : "", arg(0));
    case sql::ExprKind::kIsNull:
      return fmt::format("({} IS {}NULL)", arg(0), e.negated ? "NOT " : "");
    case sql::ExprKind::kFunction: {
      std::string args;
      for (size_t i = 0; i < e.args.size(); ++i) args += (i ? ", " : "") + arg(i);
      return fmt::format("{}({})", e.name, args);
    }
    case sql::ExprKind::kBetween:
      return fmt::format("({} {}BETWEEN {} AND {})", arg(0), e.negated ? "NOT " : "", arg(1), arg(2));
    case sql::ExprKind::kIn: {
      std::string list;
      for (size_t i = 1; i < e.args.size(); ++i) list += (i > 1 ? ", " : "") + arg(i);
      return e.query ? sql::to_string(e) : fmt::format("({} {}IN ({}))", arg(0), e.negated ? "NOT " : "", list);
    }
    default:
      return sql::to_string(e);
  }
}

}  // namespace

std::string predicate_parameter(const sql::Expr* condition) {
  // Spark writes ["true"] for a statement without a condition.
  return nlohmann::json::array({condition ? sql_text(*condition) : std::string("true")}).dump();
}

std::string condition_text(const sql::Expr& condition) { return sql_text(condition); }

namespace {

// A condition bound to the target's rows, checked to be boolean.
arrow::Result<exec::BoundExpression> bind_condition(const sql::Expr& condition,
                                                    const sql::SourceFile& file,
                                                    const std::shared_ptr<arrow::Schema>& schema,
                                                    const std::set<std::string>& qualifiers,
                                                    const char* clause) {
  exec::ExpressionBinder binder(file, schema, qualifiers);
  ARROW_ASSIGN_OR_RAISE(auto bound, binder.bind(condition));
  if (bound.type->id() != arrow::Type::BOOL && bound.type->id() != arrow::Type::NA) {
    return arrow::Status::Invalid(sql::format_error(
        file, condition.loc,
        fmt::format("the {} condition must be BOOLEAN, but it is {}", clause,
                    bound.type->ToString())));
  }
  return bound;
}

// Where the condition holds (NULL counts as false), over one batch.
arrow::Result<std::shared_ptr<arrow::BooleanArray>> condition_mask(
    const std::optional<exec::BoundExpression>& condition, const arrow::RecordBatch& batch) {
  if (!condition) {
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::MakeArrayFromScalar(arrow::BooleanScalar(true),
                                                               batch.num_rows()));
    return std::static_pointer_cast<arrow::BooleanArray>(all);
  }
  ARROW_ASSIGN_OR_RAISE(auto mask, exec::evaluate(*condition, batch));
  if (mask->type_id() == arrow::Type::NA) {
    ARROW_ASSIGN_OR_RAISE(mask, arrow::MakeArrayFromScalar(arrow::BooleanScalar(false),
                                                           batch.num_rows()));
  }
  ARROW_ASSIGN_OR_RAISE(auto filled, cp::CallFunction("coalesce", {arrow::Datum(mask), arrow::Datum(false)}));
  return std::static_pointer_cast<arrow::BooleanArray>(filled.make_array());
}

// The batches of one data file of the target.
arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> file_batches(
    const DmlTarget& target, const delta::Add& add) {
  ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(*target.store, *target.snapshot, add));
  return reader->ToRecordBatches();
}

// Whether `condition` reads only partition columns: then it is evaluated once per file.
std::optional<exec::BoundExpression> partition_only(const sql::Expr* condition,
                                                    const sql::SourceFile& file,
                                                    const DmlTarget& target,
                                                    const std::set<std::string>& qualifiers) {
  const auto& schema = target.snapshot->schema();
  const auto& partitions = target.snapshot->metadata().partition_columns;
  if (!condition || partitions.empty()) return std::nullopt;
  arrow::FieldVector fields;
  for (const auto& name : partitions) {
    if (auto f = schema->GetFieldByName(name)) fields.push_back(f);
  }
  auto bound = bind_condition(*condition, file, arrow::schema(fields), qualifiers, "WHERE");
  if (!bound.ok()) return std::nullopt;
  return *bound;
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatch>> partition_row(const DmlTarget& target,
                                                                 const delta::Add& add) {
  const auto& schema = target.snapshot->schema();
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (const auto& name : target.snapshot->metadata().partition_columns) {
    auto field = schema->GetFieldByName(name);
    if (!field) continue;
    auto it = add.partition_values.find(name);
    std::optional<std::string> text = it == add.partition_values.end() ? std::nullopt : it->second;
    ARROW_ASSIGN_OR_RAISE(auto value, delta::parse_partition_value(text, field->type()));
    ARROW_ASSIGN_OR_RAISE(auto array, arrow::MakeArrayFromScalar(*value, 1));
    fields.push_back(field);
    columns.push_back(array);
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), 1, columns);
}

namespace {

// The file's rows its deletion vector leaves (numRecords counts the deleted ones too).
int64_t stats_records(const delta::Add& add) { return delta::live_records(add); }

delta::ReadSet read_set(const DmlTarget& target, std::vector<delta::ColumnPredicate> predicates,
                        const std::vector<delta::Add>& files) {
  delta::ReadSet read;
  read.predicates = std::move(predicates);
  for (const auto& f : files) read.files.insert(f.path);
  read.isolation = delta::isolation_level(target.snapshot->metadata());
  return read;
}

// The indexes of the rows the masks (one per batch of a file, in order) select.
std::vector<int64_t> selected_rows(const std::vector<std::shared_ptr<arrow::BooleanArray>>& masks) {
  std::vector<int64_t> out;
  int64_t base = 0;
  for (const auto& m : masks) {
    for (int64_t i = 0; i < m->length(); ++i) {
      if (m->Value(i)) out.push_back(base + i);
    }
    base += m->length();
  }
  return out;
}

nlohmann::json no_vectors(nlohmann::json metrics) {
  metrics["numAddedChangeFiles"] = "0";
  metrics["numDeletionVectorsAdded"] = "0";
  metrics["numDeletionVectorsRemoved"] = "0";
  metrics["numDeletionVectorsUpdated"] = "0";
  return metrics;
}

}  // namespace

arrow::Result<DmlOutcome> run_delete(const sql::DeleteStatement& statement,
                                     const sql::SourceFile& file, const DmlTarget& target) {
  ARROW_RETURN_NOT_OK(check_dml_supported(target, "DELETE"));
  const auto qualifiers = target_qualifiers(*statement.target);
  const auto& schema = target.snapshot->schema();
  std::optional<exec::BoundExpression> condition;
  if (statement.where) {
    ARROW_ASSIGN_OR_RAISE(condition,
                          bind_condition(*statement.where, file, schema, qualifiers, "WHERE"));
  }
  auto predicates = skipping_predicates(statement.where.get(), file, *schema, qualifiers);
  ARROW_ASSIGN_OR_RAISE(auto candidates, delta::select_files(*target.snapshot, predicates));
  ARROW_ASSIGN_OR_RAISE(auto rewrite, TableRewrite::make(target));
  int64_t deleted = 0, copied = 0;
  bool deleted_known = true;
  const auto by_partition = partition_only(statement.where.get(), file, target, qualifiers);
  if (!statement.where || by_partition) {
    // Whole files go: no file is read (Spark's metadata-only delete).
    for (const auto& add : candidates) {
      if (by_partition) {
        ARROW_ASSIGN_OR_RAISE(auto row, partition_row(target, add));
        ARROW_ASSIGN_OR_RAISE(auto mask, condition_mask(by_partition, *row));
        if (!mask->Value(0)) continue;
      }
      rewrite->drop(add);
      const int64_t n = stats_records(add);
      if (n < 0) deleted_known = false;
      deleted += std::max<int64_t>(n, 0);
    }
    rewrite->mark_scan_done();
  } else {
    for (const auto& add : candidates) {
      ARROW_ASSIGN_OR_RAISE(auto batches, file_batches(target, add));
      std::vector<std::shared_ptr<arrow::BooleanArray>> masks;
      int64_t hits = 0, rows = 0;
      for (const auto& b : batches) {
        ARROW_ASSIGN_OR_RAISE(auto mask, condition_mask(condition, *b));
        hits += mask->true_count();
        rows += b->num_rows();
        masks.push_back(std::move(mask));
      }
      if (hits == 0) continue;
      deleted += hits;
      // As UPDATE and MERGE: the rows are marked in a vector or the file is rewritten without
      // them, and either way the deleted rows go to _change_data/ (with a vector too: readers
      // cannot tell them from the vector's add/remove pair), as Spark writes them.
      const bool vectors = rewrite->uses_deletion_vectors();
      if (vectors) {
        ARROW_RETURN_NOT_OK(rewrite->mark_deleted(add, selected_rows(masks)));
      } else {
        rewrite->remove(add);
        copied += rows - hits;
      }
      for (size_t i = 0; i < batches.size(); ++i) {
        if (!vectors) {
          ARROW_ASSIGN_OR_RAISE(auto keep, cp::Invert(masks[i]));
          ARROW_ASSIGN_OR_RAISE(auto kept, filter_rows(*batches[i], *keep.make_array()));
          ARROW_RETURN_NOT_OK(rewrite->write(*kept));
        }
        if (rewrite->records_changes()) {
          ARROW_ASSIGN_OR_RAISE(auto gone, filter_rows(*batches[i], *masks[i]));
          ARROW_RETURN_NOT_OK(rewrite->write_change(*gone, delta::ChangeType::kDelete));
        }
      }
    }
    rewrite->mark_scan_done();
  }
  nlohmann::json metrics = no_vectors(nlohmann::json::object());
  if (deleted_known) metrics["numDeletedRows"] = std::to_string(deleted);
  metrics["numCopiedRows"] = std::to_string(copied);
  nlohmann::json parameters = {{"predicate", predicate_parameter(statement.where.get())}};
  return rewrite->commit("DELETE", std::move(parameters), std::move(metrics),
                         read_set(target, predicates, candidates));
}

arrow::Result<DmlOutcome> run_update(const sql::UpdateStatement& statement,
                                     const sql::SourceFile& file, const DmlTarget& target) {
  ARROW_RETURN_NOT_OK(check_dml_supported(target, "UPDATE"));
  const auto qualifiers = target_qualifiers(*statement.target);
  const auto& schema = target.snapshot->schema();
  std::optional<exec::BoundExpression> condition;
  if (statement.where) {
    ARROW_ASSIGN_OR_RAISE(condition,
                          bind_condition(*statement.where, file, schema, qualifiers, "WHERE"));
  }
  // Each table column's new value: its assignment, or itself.
  exec::ExpressionBinder binder(file, schema, qualifiers);
  ColumnValues values;
  values.values.resize(schema->num_fields());
  for (int i = 0; i < schema->num_fields(); ++i) values.unchanged.push_back(i);
  for (const auto& a : statement.set) {
    ARROW_ASSIGN_OR_RAISE(int index, resolve_assigned_column(a, file, *schema, qualifiers));
    if (values.values[index]) {
      return arrow::Status::Invalid(sql::format_error(
          file, a.loc, fmt::format("column '{}' is assigned twice", schema->field(index)->name())));
    }
    ARROW_ASSIGN_OR_RAISE(values.values[index], binder.bind(*a.value));
    ARROW_RETURN_NOT_OK(
        check_assignable(*values.values[index]->type, *schema->field(index), a.value->loc, file));
  }
  auto predicates = skipping_predicates(statement.where.get(), file, *schema, qualifiers);
  ARROW_ASSIGN_OR_RAISE(auto candidates, delta::select_files(*target.snapshot, predicates));
  ARROW_ASSIGN_OR_RAISE(auto rewrite, TableRewrite::make(target));
  int64_t updated = 0, copied = 0;
  for (const auto& add : candidates) {
    ARROW_ASSIGN_OR_RAISE(auto batches, file_batches(target, add));
    std::vector<std::shared_ptr<arrow::BooleanArray>> masks;
    int64_t hits = 0, rows = 0;
    for (const auto& b : batches) {
      ARROW_ASSIGN_OR_RAISE(auto mask, condition_mask(condition, *b));
      hits += mask->true_count();
      rows += b->num_rows();
      masks.push_back(std::move(mask));
    }
    if (hits == 0) continue;
    updated += hits;
    const bool vectors = rewrite->uses_deletion_vectors();
    if (vectors) {
      ARROW_RETURN_NOT_OK(rewrite->mark_deleted(add, selected_rows(masks)));
    } else {
      rewrite->remove(add);
      copied += rows - hits;
    }
    for (size_t i = 0; i < batches.size(); ++i) {
      if (!vectors) {
        ARROW_ASSIGN_OR_RAISE(auto keep, cp::Invert(masks[i]));
        ARROW_ASSIGN_OR_RAISE(auto kept, filter_rows(*batches[i], *keep.make_array()));
        ARROW_RETURN_NOT_OK(rewrite->write(*kept));
      }
      // The assignments are evaluated on the matching rows only (an error such as an overflow
      // in a row the WHERE excludes must not fail the statement).
      ARROW_ASSIGN_OR_RAISE(auto matching, filter_rows(*batches[i], *masks[i]));
      ARROW_ASSIGN_OR_RAISE(auto changed, assign_columns(*matching, values, *schema));
      ARROW_RETURN_NOT_OK(rewrite->write(*changed));
      ARROW_RETURN_NOT_OK(rewrite->write_change(*matching, delta::ChangeType::kUpdatePreimage));
      ARROW_RETURN_NOT_OK(rewrite->write_change(*changed, delta::ChangeType::kUpdatePostimage));
    }
  }
  rewrite->mark_scan_done();
  nlohmann::json metrics = no_vectors(nlohmann::json::object());
  metrics["numUpdatedRows"] = std::to_string(updated);
  metrics["numCopiedRows"] = std::to_string(copied);
  nlohmann::json parameters = {{"predicate", predicate_parameter(statement.where.get())}};
  TableRewrite::Names names;
  names.vector_files_count_as_removed = true;  // as Spark's UPDATE counts them
  return rewrite->commit("UPDATE", std::move(parameters), std::move(metrics),
                         read_set(target, predicates, candidates), names);
}

}  // namespace sluice::dml
