// Collection functions over arrays, maps and structs: size, element_at, get, array_contains,
// struct, named_struct; and the generators' catalog entries (explode, posexplode, inline: rows,
// not values, planned by select_plan.cc and run by row_operators.cc, kept here beside the
// collections they take apart). Array indices are 1-based as in Spark; element_at out of bounds
// is an error (ANSI), try_element_at and get give NULL.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/common/status.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace collection_family {

// Number of entries of each list or map; NULL for NULL (Spark with ANSI on).
arrow::Status size_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& lists = static_cast<const arrow::ListArray&>(*a);  // a MapArray is a ListArray
  arrow::Int32Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r)) {
      builder.UnsafeAppendNull();
    } else {
      builder.UnsafeAppend(lists.value_length(r));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

enum class OutOfBounds { kError, kNull };

struct ElementAtState : cp::KernelState {
  OutOfBounds out_of_bounds = OutOfBounds::kError;
  bool zero_based = false;  // get(array, i)
};

// The element at each row's index, taken from the flattened values in one Take.
arrow::Status element_at_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto* state = static_cast<const ElementAtState*>(ctx->kernel()->data.get());
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto b, argument_array(batch, 1));
  const auto& lists = static_cast<const arrow::ListArray&>(*a);
  const auto& index = static_cast<const arrow::Int64Array&>(*b);
  arrow::Int64Builder take;
  ARROW_RETURN_NOT_OK(take.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r) || index.IsNull(r)) {
      take.UnsafeAppendNull();
      continue;
    }
    const int64_t n = lists.value_length(r);
    int64_t i = index.Value(r);
    if (state->zero_based) {
      if (i < 0 || i >= n) {
        take.UnsafeAppendNull();
        continue;
      }
      take.UnsafeAppend(lists.value_offset(r) + i);
      continue;
    }
    // Index 0 is an error even for try_element_at (Spark's INVALID_INDEX_OF_ZERO).
    if (i == 0) return arrow::Status::Invalid("element_at: index 0 is invalid, SQL array indices start at 1");
    if (i > n || i < -n) {
      if (state->out_of_bounds == OutOfBounds::kNull) {
        take.UnsafeAppendNull();
        continue;
      }
      return invalid("element_at: index {} is out of bounds, the array has {} elements; use try_element_at to get "
                     "NULL instead",
                     i, n);
    }
    take.UnsafeAppend(lists.value_offset(r) + (i > 0 ? i - 1 : n + i));
  }
  ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*lists.values(), *indices));
  out->value = taken->data();
  return arrow::Status::OK();
}

arrow::Result<arrow::TypeHolder> element_type(cp::KernelContext*, const std::vector<arrow::TypeHolder>& types) {
  return arrow::TypeHolder(static_cast<const arrow::ListType&>(*types[0].type).value_type());
}

arrow::Result<BoundExpression> bind_element_at(const FunctionCall& c) {
  if (c.type(0).id() == arrow::Type::MAP) {
    if (c.name() == "get") return c.error_at(0, "get needs an ARRAY; element_at reads a MAP");
    if (!c.is_literal(1)) return c.error_at(1, fmt::format("the key of {} on a MAP must be a literal", c.name()));
    const auto& key_type = static_cast<const arrow::MapType&>(c.type(0)).key_type();
    auto key = c.expression(1).literal()->scalar();
    if (!key->type->Equals(*key_type)) {
      auto cast = key->CastTo(key_type);
      if (!cast.ok()) return c.error_at(1, fmt::format("the key must be a {}", sql::sql_type_name(*key_type)));
      key = *cast;
    }
    // A missing key is NULL in Spark 4 (no ANSI error for maps).
    return c.call("map_lookup", {c.expression(0)}, std::make_shared<cp::MapLookupOptions>(key, cp::MapLookupOptions::FIRST));
  }
  if (c.type(0).id() != arrow::Type::LIST) {
    return c.error_at(0, fmt::format("{} needs an ARRAY or a MAP, not {}", c.name(), sql::sql_type_name(c.type(0))));
  }
  if (!arrow::is_integer(c.type(1).id()) && c.type(1).id() != arrow::Type::NA) {
    return c.error_at(1, fmt::format("the index of {} must be an integer, not {}", c.name(), sql::sql_type_name(c.type(1))));
  }
  const bool zero_based = c.name() == "get";
  const auto out_of_bounds = c.name() == "element_at" ? OutOfBounds::kError : OutOfBounds::kNull;
  const std::string name = fmt::format("sluice_element_at_{}_{}", zero_based, static_cast<int>(out_of_bounds));
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Binary(), cp::FunctionDoc::Empty());
    auto state = std::make_shared<ElementAtState>();
    state->out_of_bounds = out_of_bounds;
    state->zero_based = zero_based;
    ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::Type::LIST), cp::InputType(arrow::int64())},
                                   cp::OutputType(element_type), element_at_exec, state));
    return f;
  }));
  return c.call(function, {c.expression(0), cast_to(c.expression(1), arrow::int64())});
}

// array_contains: NULL for a NULL array or value; true when an element equals the value; else
// NULL when the array holds a NULL, else false (SQL's three-valued IN).
arrow::Status array_contains_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto value, argument_array(batch, 1));
  const auto& lists = static_cast<const arrow::ListArray&>(*a);
  const auto values = lists.values();
  // Each element's row, so one vectorised equal compares every element with its row's value.
  std::vector<int64_t> parent(static_cast<size_t>(values->length()), 0);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r)) continue;
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) parent[static_cast<size_t>(j)] = r;
  }
  arrow::Int64Builder parent_builder;
  ARROW_RETURN_NOT_OK(parent_builder.AppendValues(parent));
  ARROW_ASSIGN_OR_RAISE(auto parent_array, parent_builder.Finish());
  std::shared_ptr<arrow::BooleanArray> equal;
  if (batch.length > 0) {
    ARROW_ASSIGN_OR_RAISE(auto repeated, cp::Take(*value, *parent_array));
    ARROW_ASSIGN_OR_RAISE(auto eq, cp::CallFunction("equal", {values, repeated}));
    equal = std::static_pointer_cast<arrow::BooleanArray>(eq.make_array());
  }
  arrow::BooleanBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r) || value->IsNull(r)) {
      builder.UnsafeAppendNull();
      continue;
    }
    bool found = false, saw_null = false;
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1) && !found; ++j) {
      if (equal->IsNull(j)) {
        saw_null = true;
      } else {
        found = equal->Value(j);
      }
    }
    if (found) {
      builder.UnsafeAppend(true);
    } else if (saw_null) {
      builder.UnsafeAppendNull();
    } else {
      builder.UnsafeAppend(false);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

arrow::Result<BoundExpression> bind_array_contains(const FunctionCall& c) {
  if (c.type(0).id() != arrow::Type::LIST) {
    return c.error_at(0, fmt::format("array_contains needs an ARRAY, not {}", sql::sql_type_name(c.type(0))));
  }
  const auto& element = static_cast<const arrow::ListType&>(c.type(0)).value_type();
  auto value = c.expression(1);
  if (!c.type(1).Equals(*element)) {
    if (!cp::CanCast(c.type(1), *element)) {
      return c.error_at(1, fmt::format("array_contains cannot look for a {} in an ARRAY<{}>", sql::sql_type_name(c.type(1)),
                                       sql::sql_type_name(*element)));
    }
    value = cast_to(value, element);
  }
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once("sluice_array_contains", []() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>("sluice_array_contains", cp::Arity::Binary(), cp::FunctionDoc::Empty());
    ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::Type::LIST), cp::InputType::Any()},
                                   cp::OutputType(arrow::boolean()), array_contains_exec));
    return f;
  }));
  return c.call(function, {c.expression(0), value});
}

arrow::Result<BoundExpression> bind_size(const FunctionCall& c) {
  if (c.type(0).id() == arrow::Type::LIST) return c.call("list_value_length", c.expressions());
  if (c.type(0).id() != arrow::Type::MAP) {
    return c.error_at(0, fmt::format("{} needs an ARRAY or a MAP, not {}", c.name(), sql::sql_type_name(c.type(0))));
  }
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once("sluice_map_size", []() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>("sluice_map_size", cp::Arity::Unary(), cp::FunctionDoc::Empty());
    ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::Type::MAP)}, cp::OutputType(arrow::int32()), size_exec));
    return f;
  }));
  return c.call(function, c.expressions());
}

// A generator reached by the scalar binder is nested in an expression (the planner takes a
// whole select item or a LATERAL VIEW before binding): refused, as Spark does.
arrow::Result<BoundExpression> bind_nested_generator(const FunctionCall& c) {
  return c.error(fmt::format("{} is a generator: it makes rows, so it may only be a whole item of the select list "
                             "(SELECT {}(...) AS ...) or a LATERAL VIEW, not part of an expression or clause "
                             "(Spark refuses it there too)",
                             c.name(), c.name()));
}

}  // namespace collection_family

void register_generator_functions(FunctionRegistry& r) {
  using collection_family::bind_nested_generator;
  const std::string arrays = "rows: col (ARRAY) or key, value (MAP)";
  r.add({"explode", {}, 1, 1, "generator", arrays, bind_nested_generator, ""});
  r.add({"explode_outer", {}, 1, 1, "generator", arrays, bind_nested_generator, ""});
  r.add({"posexplode", {}, 1, 1, "generator", "rows: pos INT, then " + arrays.substr(6), bind_nested_generator, ""});
  r.add({"posexplode_outer", {}, 1, 1, "generator", "rows: pos INT, then " + arrays.substr(6), bind_nested_generator, ""});
  r.add({"inline", {}, 1, 1, "generator", "rows: the fields of ARRAY<STRUCT>", bind_nested_generator, ""});
  r.add({"inline_outer", {}, 1, 1, "generator", "rows: the fields of ARRAY<STRUCT>", bind_nested_generator, ""});
}

// array_functions.cc: array(...), array_distinct, sort_array, map_keys, ... (compiled on its own).
void register_array_functions(FunctionRegistry& r);

void register_collection_functions(FunctionRegistry& r) {
  using namespace collection_family;  // NOLINT: this file's own helpers
  r.add({"size", {"cardinality", "array_size"}, 1, 1, "collection", "INT", bind_size, ""});
  r.add({"element_at", {}, 2, 2, "collection", "the element or value type", bind_element_at,
         "a MAP key must be a literal"});
  r.add({"try_element_at", {}, 2, 2, "collection", "the element or value type", bind_element_at,
         "a MAP key must be a literal"});
  r.add({"get", {}, 2, 2, "collection", "the element type", bind_element_at, ""});
  r.add({"array_contains", {}, 2, 2, "collection", "BOOLEAN", bind_array_contains, ""});
  r.add({"struct", {}, 0, kVariadic, "collection", "STRUCT",
         [](const FunctionCall& c) {
           std::vector<std::string> names;
           // Spark's CreateStruct: a column keeps its name, any other expression is colN.
           for (size_t i = 0; i < c.size(); ++i) {
             const bool column = i < c.expr().args.size() && c.expr().args[i]->kind == sql::ExprKind::kColumn;
             names.push_back(!column || c.arg(i).name.empty() ? "col" + std::to_string(i + 1) : c.arg(i).name);
           }
           return c.call("make_struct", c.expressions(), std::make_shared<cp::MakeStructOptions>(names));
         }, ""});
  r.add({"named_struct", {}, 0, kVariadic, "collection", "STRUCT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (c.size() % 2) return c.error("named_struct takes name, value pairs");
           std::vector<std::string> names;
           std::vector<cp::Expression> values;
           for (size_t i = 0; i < c.size(); i += 2) {
             ARROW_ASSIGN_OR_RAISE(auto n, c.literal_string(i));
             names.push_back(n);
             values.push_back(c.expression(i + 1));
           }
           return c.call("make_struct", values, std::make_shared<cp::MakeStructOptions>(names));
         }, "names must be literals"});
  register_array_functions(r);
}

}  // namespace sluice::exec
