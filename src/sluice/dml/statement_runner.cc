// `sluice sql` commands.
#include "sluice/dml/statement_runner.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/change_feed.h"
#include "sluice/delta/scan.h"
#include "sluice/dml/delete_update.h"
#include "sluice/dml/merge.h"
#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::dml {

namespace {

std::vector<std::string> split_plan_name(const std::string& joined) {
  // SelectPlan names a source by its parts joined with '.'; delta.`/a.b/t` keeps its path whole.
  if (to_lower(joined.substr(0, 6)) == "delta." && joined.size() > 6) {
    return {joined.substr(0, 5), joined.substr(6)};
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = joined.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(joined.substr(start, dot - start));
  }
  parts.push_back(joined.substr(start));
  return parts;
}

arrow::Status at(const sql::SourceFile& file, sql::Location loc, const arrow::Status& st) {
  if (st.ok()) return st;
  return arrow::Status(st.code(), sql::format_error(file, loc, st.message()), st.detail());
}

// `scans` (when set) gets each table read, with what file skipping kept of it.
arrow::Result<std::shared_ptr<arrow::Table>> run_query(const sql::Query& query, const sql::SourceFile& file,
                                                       const TableCatalog& catalog,
                                                       std::vector<TableScan>* scans = nullptr,
                                                       FileSkipping skipping = FileSkipping::kOn) {
  auto schema_of = [&](const std::string& name) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
    ARROW_ASSIGN_OR_RAISE(auto table, catalog.open(split_plan_name(name)));
    return table.snapshot->schema();
  };
  ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(query, file, schema_of));
  return plan.run([&](const exec::PlanSource& source) -> arrow::Result<std::shared_ptr<arrow::Table>> {
    if (source.kind != exec::PlanSource::Kind::kDataset || source.streaming) {
      return at(file, source.loc,
                arrow::Status::NotImplemented(
                    "`sluice sql` reads Delta tables only (no read_kafka, no STREAM): read a dataset "
                    "or delta.`<path>`"));
    }
    ARROW_ASSIGN_OR_RAISE(auto table, catalog.open(split_plan_name(source.name)));
    if (source.change_feed) {  // table_changes(...)
      auto rows = delta::read_table_changes(*table.store, table.name, source.change_feed->starting,
                                            source.change_feed->ending);
      return rows.ok() ? rows : at(file, source.loc, rows.status());
    }
    // The plan's first WHERE on this table prunes files by partition values and stats.
    delta::ScanOptions options;
    if (source.filter && skipping == FileSkipping::kOn) options.file_filter = delta::skipping_predicate(*source.filter, *table.snapshot->schema());
    TableScan scan{source.name, {}, options.file_filter.ToString()};
    options.report = &scan.report;
    ARROW_ASSIGN_OR_RAISE(auto rows, delta::scan_table(*table.store, *table.snapshot, options));
    if (scans) scans->push_back(std::move(scan));
    return rows;
  });
}

// The VALUES rows of a MERGE source as a table (each column in the first non-null row's type).
arrow::Result<std::shared_ptr<arrow::Table>> values_table(const sql::MergeStatement& merge,
                                                          const sql::SourceFile& file) {
  auto empty = arrow::RecordBatch::Make(arrow::schema({}), 1, arrow::ArrayVector{});
  exec::ExpressionBinder binder(file, arrow::schema({}));
  const size_t width = merge.values_columns.size();
  arrow::FieldVector fields;
  arrow::ChunkedArrayVector columns;
  for (size_t c = 0; c < width; ++c) {
    arrow::ArrayVector cells;
    std::shared_ptr<arrow::DataType> type = arrow::null();
    for (const auto& row : merge.values) {
      ARROW_ASSIGN_OR_RAISE(auto bound, binder.bind(*row[c]));
      ARROW_ASSIGN_OR_RAISE(auto cell, exec::evaluate(bound, *empty));
      if (type->id() == arrow::Type::NA) type = cell->type();
      cells.push_back(std::move(cell));
    }
    for (size_t r = 0; r < cells.size(); ++r) {
      if (cells[r]->type()->Equals(*type)) continue;
      auto cast = arrow::compute::Cast(cells[r], type);
      if (!cast.ok()) {
        return arrow::Status::Invalid(sql::format_error(
            file, merge.values[r][c]->loc,
            fmt::format("VALUES column '{}' is {} in the first row but this value does not convert to it: {}",
                        merge.values_columns[c], type->ToString(), cast.status().message())));
      }
      cells[r] = cast->make_array();
    }
    ARROW_ASSIGN_OR_RAISE(auto column, arrow::ChunkedArray::Make(cells, type));
    fields.push_back(arrow::field(merge.values_columns[c], type));
    columns.push_back(std::move(column));
  }
  return arrow::Table::Make(arrow::schema(fields), columns, static_cast<int64_t>(merge.values.size()));
}

arrow::Result<std::shared_ptr<arrow::Table>> merge_source(const sql::MergeStatement& merge,
                                                          const sql::SourceFile& file,
                                                          const TableCatalog& catalog) {
  const auto& ref = *merge.source;
  if (!merge.values.empty()) return values_table(merge, file);
  if (ref.kind == sql::TableRefKind::kSubquery) {
    if (ref.alias.empty()) {
      return arrow::Status::Invalid(sql::format_error(
          file, ref.loc, "the MERGE source subquery needs an alias: USING (SELECT ...) AS s"));
    }
    return run_query(*ref.query, file, catalog);
  }
  auto table = catalog.open(ref.name);
  if (!table.ok()) return at(file, ref.loc, table.status());
  return delta::scan_table(*table->store, *table->snapshot);
}

arrow::Result<DmlOutcome> run_dml_once(const sql::Command& command, const sql::SourceFile& file,
                                       const TableCatalog& catalog) {
  const sql::TableRef& target_ref = command.delete_   ? *command.delete_->target
                                    : command.update ? *command.update->target
                                                     : *command.merge->target;
  auto target = catalog.open(target_ref.name);
  if (!target.ok()) return at(file, target_ref.loc, target.status());
  if (command.delete_) return run_delete(*command.delete_, file, *target);
  if (command.update) return run_update(*command.update, file, *target);
  ARROW_ASSIGN_OR_RAISE(auto source, merge_source(*command.merge, file, catalog));
  return run_merge(*command.merge, file, *target, source);
}

}  // namespace

arrow::Result<std::optional<DmlTarget>> open_delta_path(const std::vector<std::string>& name) {
  if (name.size() != 2 || to_lower(name[0]) != "delta") return std::nullopt;
  DmlTarget t;
  t.name = "delta.`" + name[1] + "`";
  ARROW_ASSIGN_OR_RAISE(t.store, delta::LogStore::open(name[1]));
  ARROW_ASSIGN_OR_RAISE(t.snapshot, delta::Snapshot::load(*t.store));
  return t;
}

arrow::Result<CommandResult> run_sql_command(const sql::SourceFile& file, const TableCatalog& catalog,
                                             int max_attempts, FileSkipping skipping) {
  ARROW_ASSIGN_OR_RAISE(auto command, sql::parse_command(file));
  CommandResult result;
  if (command.query) {
    ARROW_ASSIGN_OR_RAISE(result.rows, run_query(*command.query, file, catalog, &result.scans, skipping));
    return result;
  }
  for (int attempt = 1;; ++attempt) {
    auto outcome = run_dml_once(command, file, catalog);
    if (outcome.ok()) {
      outcome->attempts = attempt;
      result.dml = std::move(*outcome);
      return result;
    }
    if (!delta::is_commit_conflict(outcome.status()) || attempt >= max_attempts) {
      if (delta::is_commit_conflict(outcome.status())) {
        return with_context(outcome.status(), fmt::format("gave up after {} attempt(s)", attempt));
      }
      return outcome.status();
    }
  }
}

}  // namespace sluice::dml
