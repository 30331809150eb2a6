// Aggregates finished from each group's list of input rows: collect_list, collect_set, max_by,
// min_by, percentile_approx / approx_percentile. Acero groups the row numbers (hash_list over
// __row); the kernels here turn each group's rows into Spark's value, for any input type the
// kernels below name (collect_list takes nested values too, which Acero's hash_list does not).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/exec/expression_binder.h"
#include "sluice/sql/ast.h"

namespace sluice::exec {

struct ListAggregate {
  enum class Kind { kCollectList, kCollectSet, kMaxBy, kMinBy, kPercentile };
  Kind kind = Kind::kCollectList;
  std::string name;                 // as written, lower-cased (approx_percentile, max_by, ...)
  std::vector<double> percentages;  // kPercentile: each in [0, 1]
  bool array_result = false;        // kPercentile given an ARRAY of percentages
  int64_t accuracy = 10000;         // kPercentile: Spark's default; the result is exact anyway
};

// Whether `name` (lower-cased) is one of these aggregates.
bool is_list_aggregate(const std::string& name);

// A call of one of them bound over `binder`'s input: the aggregate, its input (max_by/min_by:
// a struct of the value and the ordering) and the type of its result. Errors name the call's
// file:line:col.
struct BoundListAggregate {
  ListAggregate aggregate;
  BoundExpression input;
  std::shared_ptr<arrow::DataType> type;
};
arrow::Result<BoundListAggregate> bind_list_aggregate(const sql::Expr& call, const ExpressionBinder& binder,
                                                      const arrow::Schema& schema, const sql::SourceFile& file);

// The aggregate's value per group from `rows` (one list of row numbers of `input` per group, in
// arrival order, as hash_list over __row gives them) and the evaluated `input` column: typed
// `type` (BoundListAggregate::type).
arrow::Result<std::shared_ptr<arrow::Array>> finish_list_aggregate(const ListAggregate& aggregate,
                                                                   const arrow::Array& rows,
                                                                   const std::shared_ptr<arrow::Array>& input,
                                                                   const std::shared_ptr<arrow::DataType>& type);

}  // namespace sluice::exec
