// Conditional and null-handling functions: coalesce, if, nullif, nvl, nvl2, isnull, nanvl; and
// the conversion functions named after types (int(x), string(x), ...) and typeof.
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


// Spark's DataType.simpleString, which typeof returns.
std::string spark_type_string(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::NA: return "void";
    case arrow::Type::BOOL: return "boolean";
    case arrow::Type::INT8: return "tinyint";
    case arrow::Type::INT16: return "smallint";
    case arrow::Type::INT32: return "int";
    case arrow::Type::INT64: return "bigint";
    case arrow::Type::FLOAT: return "float";
    case arrow::Type::DOUBLE: return "double";
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING: return "string";
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY: return "binary";
    case arrow::Type::DATE32: return "date";
    case arrow::Type::TIMESTAMP:
      return static_cast<const arrow::TimestampType&>(t).timezone().empty() ? "timestamp_ntz" : "timestamp";
    case arrow::Type::DECIMAL128: {
      const auto& d = static_cast<const arrow::Decimal128Type&>(t);
      return fmt::format("decimal({},{})", d.precision(), d.scale());
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
      return "array<" + spark_type_string(*t.field(0)->type()) + ">";
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(t);
      return "map<" + spark_type_string(*m.key_type()) + "," + spark_type_string(*m.item_type()) + ">";
    }
    case arrow::Type::STRUCT: {
      std::string out = "struct<";
      for (int i = 0; i < t.num_fields(); ++i) {
        if (i > 0) out += ",";
        out += t.field(i)->name() + ":" + spark_type_string(*t.field(i)->type());
      }
      return out + ">";
    }
    default: return sql::sql_type_name(t);
  }
}

// int(x), string(x), ...: CAST(x AS <type>) (ANSI: a value that does not fit is an error).
arrow::Result<BoundExpression> bind_type_cast(const FunctionCall& c, const std::string& type_name) {
  auto target = sql::parse_type(type_name);
  if (!target.ok()) return c.error(target.status().message());
  auto options = std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(*target));
  options->allow_time_truncate = true;
  auto x = c.expression(0);
  if (arrow::is_floating(c.type(0).id()) && arrow::is_integer((*target)->id())) {
    // Spark truncates DOUBLE -> INT, and ANSI refuses a value out of range (or NaN): truncate
    // first, then a safe cast checks the range (Arrow's allow_float_truncate would wrap it).
    x = cp::call("trunc", {x});
  }
  if ((*target)->id() == arrow::Type::DECIMAL128 && !arrow::is_integer(c.type(0).id()) &&
      c.type(0).id() != arrow::Type::NA) {
    // Spark rounds a DOUBLE, STRING or DECIMAL with a fraction HALF_UP into DECIMAL(10,0); Arrow's
    // cast rounds half to even (2.5 -> 2) or refuses the rescale: refused until it rounds as Spark
    // does (review of fa), rather than give 2 where Spark gives 3.
    return c.error(fmt::format("decimal() of a {} is not supported yet (Spark rounds it HALF_UP, which sluice's cast "
                               "does not): give it an integer, e.g. decimal(CAST(round(x) AS BIGINT))",
                               sql::sql_type_name(c.type(0))));
  }
  if ((*target)->id() == arrow::Type::DECIMAL128 && arrow::is_integer(c.type(0).id())) {
    // Arrow refuses BIGINT -> DECIMAL(10,0) by type; through DECIMAL(38,0) each value is checked.
    x = cast_to(x, arrow::decimal128(38, 0));
  }
  ARROW_ASSIGN_OR_RAISE(auto cast, cast_expr(x, c.type(0), *target, options));  // c.type(0) only tells bytes from text
  const auto* call = cast.call();
  return c.call(call->function_name, call->arguments, call->options);
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

  // (fa) conversion functions
  r.add({"typeof", {}, 1, 1, "conversion", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           return BoundExpression{literal_of(arrow::MakeScalar(conditional_family::spark_type_string(c.type(0)))), arrow::utf8(), ""};
         }, ""});
  for (const char* name : {"bigint", "int", "smallint", "tinyint", "double", "float", "boolean", "string", "decimal", "binary"}) {
    r.add({name, {}, 1, 1, "conversion", fmt::format("{} (CAST(x AS {}))", name == std::string("decimal") ? "DECIMAL(10,0)" : name, name),
           [](const FunctionCall& c) { return conditional_family::bind_type_cast(c, c.name()); }, ""});
  }
}

}  // namespace sluice::exec
