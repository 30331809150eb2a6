// Project/filter (with generators: generators.cc) and stream-static join operators (row_operators.h).
#include "sluice/exec/row_operators.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

namespace sluice::exec {

arrow::Result<OperatorBatch> ProjectFilterOperator::push(OperatorBatch batch) {
  std::shared_ptr<arrow::Array> input_rows;
  ARROW_ASSIGN_OR_RAISE(batch.rows, plan_.apply_row_stages(*batch.rows, &input_rows));
  switch (batch.lineage) {
    case OperatorBatch::Lineage::kSameRows:
      batch.source_rows = std::move(input_rows);
      batch.lineage = OperatorBatch::Lineage::kSourceRows;
      break;
    case OperatorBatch::Lineage::kSourceRows: {
      ARROW_ASSIGN_OR_RAISE(auto composed, arrow::compute::Take(batch.source_rows, input_rows));
      batch.source_rows = composed.make_array();
      break;
    }
    case OperatorBatch::Lineage::kNone:
      break;
  }
  return batch;
}

arrow::Result<OperatorBatch> StreamStaticJoinOperator::push(OperatorBatch batch) {
  ARROW_ASSIGN_OR_RAISE(auto joined, join_.run(*batch.rows));
  ARROW_ASSIGN_OR_RAISE(batch.rows, joined->CombineChunksToBatch());
  batch.source_rows.reset();
  batch.lineage = OperatorBatch::Lineage::kNone;
  return batch;
}

}  // namespace sluice::exec
