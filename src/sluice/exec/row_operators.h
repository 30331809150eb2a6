// The stateless batch operators of a flow (operator.h): the query's row stages (projection
// and filters) and the stream-static join of a batch against the static tables' snapshots.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>

#include "sluice/exec/operator.h"
#include "sluice/exec/select_plan.h"

namespace sluice::exec {

// SELECT ... FROM ... WHERE over one batch (SelectPlan::apply_row_stages); keeps each row's
// source row.
class ProjectFilterOperator : public BatchOperator {
 public:
  explicit ProjectFilterOperator(const SelectPlan& plan) : plan_(plan) {}
  std::string name() const override { return "project/filter"; }
  arrow::Result<OperatorBatch> push(OperatorBatch batch) override;

 private:
  const SelectPlan& plan_;  // outlives the operator
};

// The static side of a stream-static join: a table's current snapshot by name.
class StaticTables {
 public:
  virtual ~StaticTables() = default;
  virtual arrow::Result<std::shared_ptr<arrow::Table>> table(const std::string& name) = 0;
};

// A batch of the stream (the plan's streaming source, on the left) joined with the current
// snapshots of the static tables. Its rows have no single source row.
class StreamStaticJoinOperator : public BatchOperator {
 public:
  StreamStaticJoinOperator(const SelectPlan& plan, StaticTables& tables) : plan_(plan), tables_(tables) {}
  std::string name() const override { return "stream-static join"; }
  arrow::Result<OperatorBatch> push(OperatorBatch batch) override;

 private:
  const SelectPlan& plan_;  // outlives the operator
  StaticTables& tables_;    // outlives the operator
};

}  // namespace sluice::exec
