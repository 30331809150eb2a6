// Math functions: rounding, logarithms, powers, trigonometry, greatest/least. Results follow
// Spark's types: floor/ceil give BIGINT, the transcendental functions DOUBLE.
#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <cmath>
#include <numbers>
#include <optional>

#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace math_family {

cp::Expression as_double(const FunctionCall& c, size_t i) { return cast_to(c.expression(i), arrow::float64()); }

cp::Expression null_double() { return literal_of(arrow::MakeNullScalar(arrow::float64())); }

// f(double x); with `floor_of_domain`, x <= it gives NULL (Spark's logarithms: ln(0) is NULL, not -Infinity).
void add_double_function(FunctionRegistry& r, std::string name, std::vector<std::string> aliases, std::string kernel,
                         std::optional<double> floor_of_domain = std::nullopt) {
  r.add({std::move(name), std::move(aliases), 1, 1, "math", "DOUBLE",
         [kernel, floor_of_domain](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           auto x = as_double(c, 0);
           if (!floor_of_domain) return c.call(kernel, {x});
           auto outside = cp::call("less_equal", {x, literal_of(arrow::MakeScalar(*floor_of_domain))});
           return c.call("if_else", {outside, null_double(), cp::call(kernel, {x})});
         }, ""});
}

arrow::Result<BoundExpression> bind_floor_ceil(const FunctionCall& c) {
  const std::string kernel = c.name() == "floor" ? "floor" : "ceil";
  if (arrow::is_integer(c.type(0).id())) return c.call("cast", {c.expression(0)}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
  ARROW_ASSIGN_OR_RAISE(auto r, c.call(kernel, {c.expression(0)}));
  if (arrow::is_floating(c.type(0).id())) {
    return c.call("cast", {r.expr}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
  }
  return r;
}

arrow::Result<BoundExpression> bind_round(const FunctionCall& c) {
  int64_t digits = 0;
  if (c.size() == 2) {
    ARROW_ASSIGN_OR_RAISE(digits, c.literal_int(1));
  }
  // round: half away from zero; bround: half to even (banker's rounding)
  const auto mode = c.name() == "bround" ? cp::RoundMode::HALF_TO_EVEN : cp::RoundMode::HALF_TOWARDS_INFINITY;
  auto options = std::make_shared<cp::RoundOptions>(digits, mode);
  if (arrow::is_integer(c.type(0).id())) {  // Spark keeps the integer type
    if (digits >= 0) return c.arg(0);
    auto rounded = cp::call("round", {cast_to(c.expression(0), arrow::float64())}, options);
    return c.call("cast", {rounded}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(c.arg(0).type)));
  }
  return c.call("round", {c.expression(0)}, options);
}

arrow::Result<BoundExpression> bind_log(const FunctionCall& c) {
  if (c.size() == 1) {  // log(x) is ln(x)
    auto x = as_double(c, 0);
    auto outside = cp::call("less_equal", {x, literal_of(arrow::MakeScalar(0.0))});
    return c.call("if_else", {outside, null_double(), cp::call("ln", {x})});
  }
  // log(base, x) = ln(x) / ln(base); NULL when base or x <= 0
  auto base = as_double(c, 0);
  auto x = as_double(c, 1);
  auto outside = cp::call("or_kleene", {cp::call("less_equal", {x, literal_of(arrow::MakeScalar(0.0))}),
                                        cp::call("less_equal", {base, literal_of(arrow::MakeScalar(0.0))})});
  auto quotient = cp::call("divide", {cp::call("ln", {x}), cp::call("ln", {base})});
  return c.call("if_else", {outside, null_double(), quotient});
}

arrow::Result<BoundExpression> bind_scaled(const FunctionCall& c, double factor) {
  return c.call("multiply", {as_double(c, 0), literal_of(arrow::MakeScalar(factor))});
}

}  // namespace math_family

void register_math_functions(FunctionRegistry& r) {
  using namespace math_family;  // NOLINT: this file's own helpers
  r.add({"abs", {}, 1, 1, "math", "the input's type",
         [](const FunctionCall& c) { return c.call("abs_checked", c.expressions()); }, ""});
  r.add({"negative", {}, 1, 1, "math", "the input's type",
         [](const FunctionCall& c) { return c.call("negate_checked", c.expressions()); }, ""});
  r.add({"positive", {}, 1, 1, "math", "the input's type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> { return c.arg(0); }, ""});
  add_double_function(r, "sqrt", {}, "sqrt");
  add_double_function(r, "ln", {}, "ln", 0.0);
  add_double_function(r, "log10", {}, "log10", 0.0);
  add_double_function(r, "log2", {}, "log2", 0.0);
  add_double_function(r, "log1p", {}, "log1p", -1.0);
  add_double_function(r, "exp", {}, "exp");
  add_double_function(r, "sign", {"signum"}, "sign");
  add_double_function(r, "sin", {}, "sin");
  add_double_function(r, "cos", {}, "cos");
  add_double_function(r, "tan", {}, "tan");
  add_double_function(r, "asin", {}, "asin");
  add_double_function(r, "acos", {}, "acos");
  add_double_function(r, "atan", {}, "atan");
  add_double_function(r, "sinh", {}, "sinh");
  add_double_function(r, "cosh", {}, "cosh");
  add_double_function(r, "tanh", {}, "tanh");
  add_double_function(r, "asinh", {}, "asinh");
  r.add({"atan2", {}, 2, 2, "math", "DOUBLE",
         [](const FunctionCall& c) { return c.call("atan2", {as_double(c, 0), as_double(c, 1)}); }, ""});
  r.add({"log", {}, 1, 2, "math", "DOUBLE", bind_log, ""});
  r.add({"degrees", {}, 1, 1, "math", "DOUBLE", [](const FunctionCall& c) { return bind_scaled(c, 180.0 / std::numbers::pi); }, ""});
  r.add({"radians", {}, 1, 1, "math", "DOUBLE", [](const FunctionCall& c) { return bind_scaled(c, std::numbers::pi / 180.0); }, ""});
  r.add({"pi", {}, 0, 0, "math", "DOUBLE",
         [](const FunctionCall&) -> arrow::Result<BoundExpression> {
           return BoundExpression{literal_of(arrow::MakeScalar(std::numbers::pi)), arrow::float64(), "PI()"};
         }, ""});
  r.add({"e", {}, 0, 0, "math", "DOUBLE",
         [](const FunctionCall&) -> arrow::Result<BoundExpression> {
           return BoundExpression{literal_of(arrow::MakeScalar(std::numbers::e)), arrow::float64(), "E()"};
         }, ""});
  r.add({"floor", {}, 1, 1, "math", "BIGINT (DECIMAL for decimals)", bind_floor_ceil, ""});
  r.add({"ceil", {"ceiling"}, 1, 1, "math", "BIGINT (DECIMAL for decimals)", bind_floor_ceil, ""});
  r.add({"round", {}, 1, 2, "math", "the input's type", bind_round, "the scale must be a literal"});
  r.add({"bround", {}, 1, 2, "math", "the input's type", bind_round, "the scale must be a literal"});
  r.add({"pow", {"power"}, 2, 2, "math", "DOUBLE",
         [](const FunctionCall& c) { return c.call("power", {as_double(c, 0), as_double(c, 1)}); }, ""});
  for (const char* name : {"greatest", "least"}) {
    r.add({name, {}, 2, kVariadic, "math", "the arguments' common type",
           [](const FunctionCall& c) {
             auto options = std::make_shared<cp::ElementWiseAggregateOptions>(/*skip_nulls=*/true);
             return c.call(c.name() == "greatest" ? "max_element_wise" : "min_element_wise", c.expressions(), options);
           }, ""});
  }
}

}  // namespace sluice::exec
