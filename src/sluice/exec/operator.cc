// The batch operator interface and the operator chain (operator.h).
#include "sluice/exec/operator.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

namespace sluice::exec {

OperatorBatch OperatorBatch::from_source(std::shared_ptr<arrow::RecordBatch> rows, int64_t source_version) {
  OperatorBatch b;
  b.source = rows;
  b.rows = std::move(rows);
  b.source_version = source_version;
  return b;
}

arrow::Result<std::vector<WindowState>> BatchOperator::snapshot() const {
  return arrow::Status::NotImplemented("operator '", name(), "' keeps no state to snapshot");
}

arrow::Status BatchOperator::restore(std::optional<std::vector<WindowState>>) {
  return arrow::Status::NotImplemented("operator '", name(), "' keeps no state to restore");
}

std::string OperatorChain::name() const {
  std::string out;
  for (const auto& op : ops_) out += (out.empty() ? "" : " -> ") + op->name();
  return out;
}

arrow::Result<OperatorBatch> OperatorChain::push_from(size_t first, OperatorBatch batch) {
  for (size_t i = first; i < ops_.size(); ++i) {
    auto& op = *ops_[i];
    ++op.metrics_.batches_in;
    op.metrics_.rows_in += batch.rows ? batch.rows->num_rows() : 0;
    ARROW_ASSIGN_OR_RAISE(batch, op.push(std::move(batch)));
    op.metrics_.rows_out += batch.rows ? batch.rows->num_rows() : 0;
  }
  return batch;
}

arrow::Result<OperatorBatch> OperatorChain::push(OperatorBatch batch) {
  ++metrics_.batches_in;
  metrics_.rows_in += batch.rows ? batch.rows->num_rows() : 0;
  ARROW_ASSIGN_OR_RAISE(auto out, push_from(0, std::move(batch)));
  metrics_.rows_out += out.rows ? out.rows->num_rows() : 0;
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> OperatorChain::push_rows(std::shared_ptr<arrow::RecordBatch> rows,
                                                                            int64_t source_version) {
  ARROW_ASSIGN_OR_RAISE(auto out, push(OperatorBatch::from_source(std::move(rows), source_version)));
  return out.rows;
}

arrow::Result<std::vector<OperatorBatch>> OperatorChain::finish() {
  std::vector<OperatorBatch> out;
  for (size_t i = 0; i < ops_.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto released, ops_[i]->finish());
    for (auto& b : released) {
      ARROW_ASSIGN_OR_RAISE(auto rest, push_from(i + 1, std::move(b)));
      metrics_.rows_out += rest.rows ? rest.rows->num_rows() : 0;
      out.push_back(std::move(rest));
    }
  }
  return out;
}

const BatchOperator* OperatorChain::the_stateful_operator() const {
  const BatchOperator* found = nullptr;
  for (const auto& op : ops_) {
    if (!op->stateful()) continue;
    if (found) return nullptr;
    found = op.get();
  }
  return found;
}

bool OperatorChain::stateful() const {
  for (const auto& op : ops_) {
    if (op->stateful()) return true;
  }
  return false;
}

std::vector<std::string> OperatorChain::state_parts() const {
  const auto* op = the_stateful_operator();
  return op ? op->state_parts() : std::vector<std::string>{""};
}

arrow::Result<std::vector<WindowState>> OperatorChain::snapshot() const {
  const auto* op = the_stateful_operator();
  if (!op) {
    return arrow::Status::NotImplemented("operator chain '", name(),
                                         "' snapshots the state of exactly one stateful operator");
  }
  return op->snapshot();
}

arrow::Status OperatorChain::restore(std::optional<std::vector<WindowState>> parts) {
  auto* op = const_cast<BatchOperator*>(the_stateful_operator());
  if (!op) {
    return arrow::Status::NotImplemented("operator chain '", name(),
                                         "' restores the state of exactly one stateful operator");
  }
  return op->restore(std::move(parts));
}

}  // namespace sluice::exec
