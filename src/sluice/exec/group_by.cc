// Hash aggregation by leading key columns (see group_by.h).
#include "sluice/exec/group_by.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <fmt/format.h>

#include "sluice/common/status.h"

namespace sluice::exec {

namespace cp = arrow::compute;

arrow::Result<std::shared_ptr<arrow::RecordBatch>> group_by(const std::shared_ptr<arrow::Table>& input,
                                                            const std::vector<cp::Aggregate>& aggregates,
                                                            const std::shared_ptr<arrow::Schema>& schema, size_t keys) {
  if (input->num_rows() == 0) return arrow::RecordBatch::MakeEmpty(schema);
  std::vector<arrow::FieldRef> key_refs;
  for (size_t k = 0; k < keys; ++k) key_refs.emplace_back(schema->field(static_cast<int>(k))->name());
  arrow::acero::Declaration declaration = arrow::acero::Declaration::Sequence({
      {"table_source", arrow::acero::TableSourceNodeOptions(input)},
      {"aggregate", arrow::acero::AggregateNodeOptions(aggregates, key_refs)},
  });
  ARROW_ASSIGN_OR_RAISE(auto grouped, arrow::acero::DeclarationToTable(std::move(declaration), /*use_threads=*/false));
  ARROW_ASSIGN_OR_RAISE(auto batch, grouped->CombineChunksToBatch());
  if (!batch) return arrow::RecordBatch::MakeEmpty(schema);
  arrow::ArrayVector columns;
  for (const auto& f : schema->fields()) {
    auto c = batch->GetColumnByName(f->name());
    if (!c) return invalid("aggregation lost column {}", f->name());
    if (!c->type()->Equals(*f->type())) {
      ARROW_ASSIGN_OR_RAISE(c, cp::Cast(*c, f->type()));
    }
    columns.push_back(std::move(c));
  }
  return arrow::RecordBatch::Make(schema, batch->num_rows(), columns);
}

std::vector<cp::Aggregate> partial_merge_aggregates(const std::vector<std::string>& functions) {
  auto skip_nulls = [] { return std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/1); };
  std::vector<cp::Aggregate> aggregates;
  for (size_t a = 0; a < functions.size(); ++a) {
    const auto& f = functions[a];
    const auto p = fmt::format("__p{}", a);
    if (f == "hash_count_all" || f == "hash_count") {
      aggregates.emplace_back("hash_sum", nullptr, arrow::FieldRef(p), p);
    } else if (f == "hash_mean") {
      aggregates.emplace_back("hash_sum", skip_nulls(), arrow::FieldRef(fmt::format("__s{}", a)), fmt::format("__s{}", a));
      aggregates.emplace_back("hash_sum", nullptr, arrow::FieldRef(fmt::format("__c{}", a)), fmt::format("__c{}", a));
    } else if (f == "hash_first" || f == "hash_last") {
      aggregates.emplace_back(f, nullptr, arrow::FieldRef(p), p);
    } else {  // sum, min, max: the same function over the partials
      aggregates.emplace_back(f, skip_nulls(), arrow::FieldRef(p), p);
    }
  }
  return aggregates;
}

}  // namespace sluice::exec
