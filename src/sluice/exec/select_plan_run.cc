// Running a plan over a snapshot (materialized views, `sluice eval`): its row stages, then the
// aggregation, DISTINCT / DISTINCT ON, ORDER BY and LIMIT (SelectPlan::run_on, order_and_limit).
#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/exec/select_plan.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

// SELECT DISTINCT ON (k, ...) over a snapshot (a materialized view): the first row read of each
// key, whole (Spark's batch dropDuplicates(subset) keeps one row per key; null keys are equal).
// The smallest row number per key by Acero's hash aggregate, then those rows in input order.
arrow::Result<std::shared_ptr<arrow::Table>> first_row_per_key(std::shared_ptr<arrow::Table> table,
                                                               const std::vector<std::string>& distinct_on,
                                                               const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());
  if (!batch || batch->num_rows() == 0) return table;
  arrow::Int64Builder numbers;
  ARROW_RETURN_NOT_OK(numbers.Reserve(batch->num_rows()));
  for (int64_t i = 0; i < batch->num_rows(); ++i) numbers.UnsafeAppend(i);
  ARROW_ASSIGN_OR_RAISE(auto row_numbers, numbers.Finish());
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  std::vector<arrow::FieldRef> keys;
  for (size_t k = 0; k < distinct_on.size(); ++k) {
    const int c = batch->schema()->GetFieldIndex(distinct_on[k]);
    if (c < 0) return arrow::Status::Invalid("DISTINCT ON column '", distinct_on[k], "' is not among the query's columns");
    fields.push_back(arrow::field(fmt::format("k{}", k), batch->column(c)->type()));
    columns.push_back(batch->column(c));
    keys.emplace_back(fmt::format("k{}", k));
  }
  fields.push_back(arrow::field("row", arrow::int64()));
  columns.push_back(row_numbers);
  auto keyed = arrow::Table::Make(arrow::schema(fields), columns, batch->num_rows());
  auto min_options = std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/1);
  arrow::acero::Declaration declaration = arrow::acero::Declaration::Sequence({
      {"table_source", arrow::acero::TableSourceNodeOptions(keyed)},
      {"aggregate", arrow::acero::AggregateNodeOptions({{"hash_min", min_options, "row", "first"}}, keys)},
  });
  ARROW_ASSIGN_OR_RAISE(auto firsts, arrow::acero::DeclarationToTable(std::move(declaration), /*use_threads=*/false));
  auto first_rows = firsts->GetColumnByName("first");
  if (!first_rows) return arrow::Status::Invalid("DISTINCT ON lost its row numbers");
  std::vector<bool> keep(static_cast<size_t>(batch->num_rows()), false);
  for (const auto& chunk : first_rows->chunks()) {
    const auto& rows = static_cast<const arrow::Int64Array&>(*chunk);
    for (int64_t i = 0; i < rows.length(); ++i) keep[static_cast<size_t>(rows.Value(i))] = true;
  }
  arrow::BooleanBuilder mask;
  ARROW_RETURN_NOT_OK(mask.Reserve(batch->num_rows()));
  for (bool k : keep) mask.UnsafeAppend(k);
  ARROW_ASSIGN_OR_RAISE(auto mask_array, mask.Finish());
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(batch, mask_array));
  return arrow::Table::FromRecordBatches(schema, {kept.record_batch()});
}

}  // namespace

namespace {
// 0, 1, ..., rows - 1.
arrow::Result<std::shared_ptr<arrow::Array>> row_number_array(int64_t rows) {
  arrow::Int64Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(rows));
  for (int64_t r = 0; r < rows; ++r) builder.UnsafeAppend(r);
  return builder.Finish();
}
}  // namespace

arrow::Result<std::shared_ptr<arrow::Table>> SelectPlan::run_on(const std::shared_ptr<arrow::Table>& input) const {
  ARROW_ASSIGN_OR_RAISE(auto combined, input->CombineChunksToBatch());
  ARROW_ASSIGN_OR_RAISE(auto rows, apply_row_stages(*combined));
  std::shared_ptr<arrow::RecordBatch> result = rows;
  if (aggregate_) {
    const auto& agg = *aggregate_;
    arrow::FieldVector fields;
    arrow::ArrayVector columns;
    std::vector<arrow::FieldRef> keys;
    for (size_t k = 0; k < agg.key_inputs.size(); ++k) {
      ARROW_ASSIGN_OR_RAISE(auto c, evaluate(agg.key_inputs[k], *rows));
      fields.push_back(arrow::field(fmt::format("__k{}", k), c->type()));
      columns.push_back(c);
      keys.emplace_back(fmt::format("__k{}", k));
    }
    for (size_t a = 0; a < agg.functions.size(); ++a) {
      ARROW_ASSIGN_OR_RAISE(auto c, evaluate(agg.aggregate_inputs[a], *rows));
      fields.push_back(arrow::field(fmt::format("__in{}", a), c->type()));
      columns.push_back(c);
    }
    bool lists = false;
    for (size_t a = 0; a < agg.functions.size(); ++a) lists = lists || list_aggregate(agg, a);
    if (lists) {  // the row numbers the list aggregates group
      ARROW_ASSIGN_OR_RAISE(auto row_numbers, row_number_array(rows->num_rows()));
      fields.push_back(arrow::field("__row", arrow::int64()));
      columns.push_back(std::move(row_numbers));
    }
    auto aggregates = acero_aggregates(agg, !keys.empty());
    auto pre = arrow::Table::Make(arrow::schema(fields), columns, rows->num_rows());
    arrow::acero::Declaration declaration = arrow::acero::Declaration::Sequence({
        {"table_source", arrow::acero::TableSourceNodeOptions(pre)},
        {"aggregate", arrow::acero::AggregateNodeOptions(aggregates, keys)},
    });
    ARROW_ASSIGN_OR_RAISE(auto grouped_table, arrow::acero::DeclarationToTable(std::move(declaration), /*use_threads=*/false));
    ARROW_ASSIGN_OR_RAISE(auto grouped_batch, grouped_table->CombineChunksToBatch());
    for (size_t a = 0; grouped_batch && a < agg.functions.size(); ++a) {
      const ListAggregate* list = list_aggregate(agg, a);
      if (!list) continue;
      const auto name = fmt::format("__a{}", a);
      const int at = grouped_batch->schema()->GetFieldIndex(name);
      if (at < 0) return arrow::Status::Invalid("aggregation lost column ", name);
      const auto& field = agg.grouped_schema->GetFieldByName(name);
      std::shared_ptr<arrow::Array> finished;
      if (grouped_batch->num_rows() == 0) {
        ARROW_ASSIGN_OR_RAISE(finished, arrow::MakeEmptyArray(field->type()));
      } else {
        ARROW_ASSIGN_OR_RAISE(finished, finish_list_aggregate(*list, *grouped_batch->column(at),
                                                              columns[keys.size() + a], field->type()));
      }
      ARROW_ASSIGN_OR_RAISE(grouped_batch, grouped_batch->SetColumn(at, field, std::move(finished)));
    }
    arrow::ArrayVector ordered;
    for (const auto& f : agg.grouped_schema->fields()) {
      auto c = grouped_batch->GetColumnByName(f->name());
      if (!c) return arrow::Status::Invalid("aggregation lost column ", f->name());
      if (!c->type()->Equals(*f->type())) {
        ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(*c, f->type()));
        c = cast;
      }
      ordered.push_back(c);
    }
    auto grouped = arrow::RecordBatch::Make(agg.grouped_schema, grouped_batch->num_rows(), ordered);
    if (agg.having) {
      ARROW_ASSIGN_OR_RAISE(auto mask, evaluate(*agg.having, *grouped));
      ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(grouped, mask));
      grouped = filtered.record_batch();
    }
    arrow::ArrayVector outs;
    for (const auto& o : agg.outputs) {
      ARROW_ASSIGN_OR_RAISE(auto c, evaluate(o, *grouped));
      outs.push_back(c);
    }
    result = arrow::RecordBatch::Make(output_schema(), grouped->num_rows(), outs);
  }
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(output_schema(), {result}));
  if (!distinct_on_.empty()) {
    ARROW_ASSIGN_OR_RAISE(table, first_row_per_key(std::move(table), distinct_on_, output_schema()));
  }
  if (distinct_ && distinct_on_.empty() && table->num_columns() > 0) {
    // SELECT DISTINCT over a snapshot: group by every column, no aggregates. (DISTINCT ON's rows
    // are distinct already: one per key. Grouping them again by every column failed on a
    // nested column that is not a key.)
    std::vector<arrow::FieldRef> keys;
    for (const auto& f : table->schema()->fields()) keys.emplace_back(f->name());
    arrow::acero::Declaration declaration = arrow::acero::Declaration::Sequence({
        {"table_source", arrow::acero::TableSourceNodeOptions(table)},
        {"aggregate", arrow::acero::AggregateNodeOptions({}, keys)},
    });
    ARROW_ASSIGN_OR_RAISE(auto distinct, arrow::acero::DeclarationToTable(std::move(declaration), /*use_threads=*/false));
    ARROW_ASSIGN_OR_RAISE(table, arrow::Table::FromRecordBatches(output_schema(), {}));
    ARROW_ASSIGN_OR_RAISE(auto batch, distinct->CombineChunksToBatch());
    if (batch) table = arrow::Table::Make(output_schema(), batch->columns(), batch->num_rows());
  }
  return order_and_limit(std::move(table));
}

arrow::Result<std::shared_ptr<arrow::Table>> SelectPlan::order_and_limit(std::shared_ptr<arrow::Table> table) const {
  if (order_by_.empty() && !limit_) return table;
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> result, table->CombineChunksToBatch());
  if (!order_by_.empty()) {
    arrow::FieldVector fields;
    arrow::ArrayVector columns;
    std::vector<cp::SortKey> sort_keys;
    for (size_t i = 0; i < order_by_.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto c, evaluate(order_by_[i].first, *result));
      fields.push_back(arrow::field(fmt::format("o{}", i), c->type()));
      columns.push_back(c);
      const bool asc = order_by_[i].second;
      sort_keys.emplace_back(fmt::format("o{}", i), asc ? cp::SortOrder::Ascending : cp::SortOrder::Descending,
                             nulls_first_[i] ? cp::NullPlacement::AtStart : cp::NullPlacement::AtEnd);
    }
    auto keys = arrow::RecordBatch::Make(arrow::schema(fields), result->num_rows(), columns);
    ARROW_ASSIGN_OR_RAISE(auto indices, cp::SortIndices(arrow::Datum(keys), cp::SortOptions(sort_keys)));
    ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(result, indices));
    result = taken.record_batch();
  }
  if (limit_ && result->num_rows() > *limit_) result = result->Slice(0, *limit_);
  return arrow::Table::FromRecordBatches(output_schema(), {result});
}


}  // namespace sluice::exec
