// Running a plan's join: its inputs read and joined with Acero (SelectPlan, select_plan.h).
#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <set>

#include "sluice/common/status.h"
#include "sluice/exec/select_plan.h"
#include "sluice/exec/select_plan_join_spec.h"

namespace sluice::exec {

namespace {

// Acero's hash join carries flat columns only: each nested one (struct, list, map) is swapped
// for the row's number before the join and taken back by that number after it.
struct NestedColumns {
  std::string row_id;  // name of the row-number column, empty when nothing was swapped
  std::vector<std::pair<std::string, std::shared_ptr<arrow::ChunkedArray>>> columns;
};

arrow::Result<std::shared_ptr<arrow::Table>> swap_out_nested(std::shared_ptr<arrow::Table> table,
                                                             const std::string& row_id, NestedColumns* out) {
  std::vector<int> nested;
  for (int i = 0; i < table->num_columns(); ++i) {
    if (arrow::is_nested(table->field(i)->type()->id())) nested.push_back(i);
  }
  if (nested.empty()) return table;
  out->row_id = row_id;
  for (auto it = nested.rbegin(); it != nested.rend(); ++it) {
    out->columns.emplace_back(table->field(*it)->name(), table->column(*it));
    ARROW_ASSIGN_OR_RAISE(table, table->RemoveColumn(*it));
  }
  arrow::Int64Builder ids;
  ARROW_RETURN_NOT_OK(ids.Reserve(table->num_rows()));
  for (int64_t r = 0; r < table->num_rows(); ++r) ids.UnsafeAppend(r);
  ARROW_ASSIGN_OR_RAISE(auto id_array, ids.Finish());
  return table->AddColumn(table->num_columns(), arrow::field(row_id, arrow::int64()),
                          std::make_shared<arrow::ChunkedArray>(id_array));
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Table>> SelectPlan::join_inputs(const Reader& read) const {
  ARROW_ASSIGN_OR_RAISE(auto left, join_->left->run(read));
  ARROW_ASSIGN_OR_RAISE(auto right, join_->right->run(read));
  return join_tables(std::move(left), std::move(right), JoinAs::kWritten);
}

const SelectPlan* SelectPlan::join_left() const { return join_ ? join_->left.get() : nullptr; }
const SelectPlan* SelectPlan::join_right() const { return join_ ? join_->right.get() : nullptr; }
const std::vector<arrow::FieldRef>& SelectPlan::join_left_keys() const { return join_->left_keys; }
const std::vector<arrow::FieldRef>& SelectPlan::join_right_keys() const { return join_->right_keys; }
const cp::Expression& SelectPlan::join_filter() const { return join_->filter; }
const std::optional<JoinTimeBound>& SelectPlan::join_time_bound() const {
  static const std::optional<JoinTimeBound> kNone;
  return join_ ? join_->time_bound : kNone;
}

arrow::Result<std::shared_ptr<arrow::Table>> SelectPlan::join_tables(std::shared_ptr<arrow::Table> left,
                                                                     std::shared_ptr<arrow::Table> right, JoinAs as,
                                                                     const std::vector<std::string>& extra) const {
  NestedColumns left_nested, right_nested;
  ARROW_ASSIGN_OR_RAISE(left, swap_out_nested(left, "__sluice_left_row", &left_nested));
  ARROW_ASSIGN_OR_RAISE(right, swap_out_nested(right, "__sluice_right_row", &right_nested));
  arrow::acero::HashJoinNodeOptions options(as == JoinAs::kInner ? arrow::acero::JoinType::INNER : join_->type,
                                            join_->left_keys, join_->right_keys, join_->filter);
  arrow::acero::Declaration join{"hashjoin",
                                 {arrow::acero::Declaration{"table_source", arrow::acero::TableSourceNodeOptions(left)},
                                  arrow::acero::Declaration{"table_source", arrow::acero::TableSourceNodeOptions(right)}},
                                 std::move(options)};
  ARROW_ASSIGN_OR_RAISE(auto joined, arrow::acero::DeclarationToTable(std::move(join), /*use_threads=*/false));
  // Acero may mark fields differently (nullability): give it the plan's joined schema.
  auto fields = stages_.front().output->fields();
  std::map<std::string, std::shared_ptr<arrow::ChunkedArray>> taken_back;
  for (const auto* side : {&left_nested, &right_nested}) {
    if (side->row_id.empty()) continue;
    auto ids = joined->GetColumnByName(side->row_id);
    if (!ids) continue;  // a semi/anti join drops the right side
    for (const auto& [name, column] : side->columns) {
      ARROW_ASSIGN_OR_RAISE(auto back, cp::Take(column, ids));
      taken_back[name] = back.chunked_array();
    }
  }
  for (const auto& name : extra) {
    auto f = joined->schema()->GetFieldByName(name);
    if (!f) return arrow::Status::Invalid("join lost column ", name);
    fields.push_back(f);
  }
  arrow::ChunkedArrayVector columns;
  for (const auto& f : fields) {
    auto c = taken_back.count(f->name()) ? taken_back.at(f->name()) : joined->GetColumnByName(f->name());
    if (!c) return arrow::Status::Invalid("join lost column ", f->name());
    columns.push_back(c);
  }
  return arrow::Table::Make(arrow::schema(fields), columns, joined->num_rows());
}


}  // namespace sluice::exec
