// Helpers shared by SelectPlan's planning files (select_plan.cc, select_plan_aggregate.cc);
// not part of select_plan.h's interface.
#pragma once

#include <string>

#include "sluice/sql/ast.h"

namespace sluice::exec::plan_detail {

// Whether `e` calls an aggregate function (count, sum, collect_list, ...).
bool is_aggregate_call(const sql::Expr& e);
// Whether `e` or any argument inside it calls one.
bool contains_aggregate(const sql::Expr& e);
// A deep copy of `e`.
sql::ExprPtr clone(const sql::Expr& e);
// A reference to column `name` at `loc`.
sql::ExprPtr column(const std::string& name, sql::Location loc);

}  // namespace sluice::exec::plan_detail
