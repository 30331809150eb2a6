// The stateless batch operators of a flow (operator.h): the query's row stages (projection,
// filters and generators) and the stream-static join of a batch against the static tables'
// snapshots.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>

#include "sluice/exec/operator.h"
#include "sluice/exec/select_plan.h"
#include "sluice/exec/stream_static_join.h"

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

// A batch of the stream (the plan's streaming source, on the left) joined with the static
// tables (stream_static_join.h: hash tables kept between batches and flow runs, built again
// when a static table gets a new version). Its rows have no single source row.
class StreamStaticJoinOperator : public BatchOperator {
 public:
  explicit StreamStaticJoinOperator(StreamStaticJoin& join) : join_(join) {}
  std::string name() const override { return "stream-static join"; }
  arrow::Result<OperatorBatch> push(OperatorBatch batch) override;

 private:
  StreamStaticJoin& join_;  // outlives the operator (kept by the flow runner)
};

}  // namespace sluice::exec
