// What select_plan.cc, select_plan_joins.cc and select_plan_lineage.cc share about a plan's
// join (not part of SelectPlan's interface).
#pragma once

#include <arrow/acero/options.h>
#include <arrow/compute/api.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/exec/select_plan.h"

namespace sluice::exec {

namespace cp = arrow::compute;

struct JoinSpec {
  arrow::acero::JoinType type;
  std::string sql_type;  // as written: INNER, LEFT, ...
  std::shared_ptr<SelectPlan> left, right;
  std::vector<arrow::FieldRef> left_keys, right_keys;
  cp::Expression filter = cp::literal(true);
  std::optional<JoinTimeBound> time_bound;
};

}  // namespace sluice::exec
