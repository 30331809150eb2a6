// Hash aggregation by leading key columns (see group_by.h).
#include "sluice/exec/group_by.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>

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

}  // namespace sluice::exec
