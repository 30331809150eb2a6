// Conditional and null-handling functions: coalesce, if, nullif, nvl, nvl2, isnull, nanvl.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace conditional_family {

cp::Expression or_false(const cp::Expression& condition) {
  return cp::call("coalesce", {condition, literal_of(arrow::MakeScalar(false))});
}

}  // namespace conditional_family

void register_conditional_functions(FunctionRegistry& r) {
  using conditional_family::or_false;
  r.add({"coalesce", {}, 1, kVariadic, "conditional", "the arguments' common type",
         [](const FunctionCall& c) { return c.call("coalesce", c.expressions()); }, ""});
  r.add({"nvl", {"ifnull"}, 2, 2, "conditional", "the arguments' common type",
         [](const FunctionCall& c) { return c.call("coalesce", c.expressions()); }, ""});
  r.add({"nvl2", {}, 3, 3, "conditional", "the common type of arguments 2 and 3",
         [](const FunctionCall& c) {
           return c.call("if_else", {cp::call("is_valid", {c.expression(0)}), c.expression(1), c.expression(2)});
         }, ""});
  r.add({"nullif", {}, 2, 2, "conditional", "the first argument's type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto eq, c.call("equal", c.expressions()));
           auto null_of = literal_of(arrow::MakeNullScalar(c.arg(0).type));
           return c.call("if_else", {or_false(eq.expr), null_of, c.expression(0)});
         }, ""});
  r.add({"if", {"iff"}, 3, 3, "conditional", "the common type of arguments 2 and 3",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (c.type(0).id() != arrow::Type::BOOL && c.type(0).id() != arrow::Type::NA) {
             return c.error_at(0, fmt::format("{} needs a BOOLEAN condition, not {}", c.name(), sql::sql_type_name(c.type(0))));
           }
           return c.call("if_else", {or_false(c.expression(0)), c.expression(1), c.expression(2)});
         }, ""});
  r.add({"isnull", {}, 1, 1, "conditional", "BOOLEAN",
         [](const FunctionCall& c) { return c.call("is_null", c.expressions()); }, ""});
  r.add({"isnotnull", {}, 1, 1, "conditional", "BOOLEAN",
         [](const FunctionCall& c) { return c.call("is_valid", c.expressions()); }, ""});
  r.add({"equal_null", {}, 2, 2, "conditional", "BOOLEAN",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto eq, c.call("equal", c.expressions()));
           auto both_null = cp::call("and", {cp::call("is_null", {c.expression(0)}), cp::call("is_null", {c.expression(1)})});
           return c.call("coalesce", {eq.expr, both_null});
         }, ""});
  r.add({"nanvl", {}, 2, 2, "conditional", "DOUBLE",
         [](const FunctionCall& c) {
           auto x = cast_to(c.expression(0), arrow::float64());
           auto y = cast_to(c.expression(1), arrow::float64());
           return c.call("if_else", {or_false(cp::call("is_nan", {x})), y, x});
         }, ""});
  r.add({"zeroifnull", {}, 1, 1, "conditional", "the input's type",
         [](const FunctionCall& c) {
           return c.call("coalesce", {c.expression(0), literal_of(arrow::MakeScalar(int32_t{0}))});
         }, ""});
  r.add({"nullifzero", {}, 1, 1, "conditional", "the input's type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           auto zero = cp::call("equal", {c.expression(0), literal_of(arrow::MakeScalar(int32_t{0}))});
           return c.call("if_else", {or_false(zero), literal_of(arrow::MakeNullScalar(c.arg(0).type)), c.expression(0)});
         }, ""});
}

}  // namespace sluice::exec
