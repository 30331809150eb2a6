// The function catalog, the call context definitions bind with, and their shared expression
// builders (function_helpers.h).
#include "sluice/exec/functions/function_registry.h"

#include <arrow/api.h>

#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/text.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/string_functions.h"

namespace sluice::exec {

namespace cp = arrow::compute;

bool is_numeric_type(const arrow::DataType& t) {
  return arrow::is_integer(t.id()) || arrow::is_floating(t.id()) || t.id() == arrow::Type::DECIMAL128;
}

bool is_string_type(const arrow::DataType& t) {
  return t.id() == arrow::Type::STRING || t.id() == arrow::Type::LARGE_STRING;
}

bool is_binary_type(const arrow::DataType& t) {
  return t.id() == arrow::Type::BINARY || t.id() == arrow::Type::LARGE_BINARY;
}

cp::Expression literal_of(std::shared_ptr<arrow::Scalar> scalar) { return cp::literal(arrow::Datum(std::move(scalar))); }

cp::Expression cast_to(const cp::Expression& x, std::shared_ptr<arrow::DataType> target) {
  return cp::call("cast", {x}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(std::move(target))));
}

arrow::Result<cp::Expression> cast_expr(const cp::Expression& x, const arrow::DataType& from,
                                        std::shared_ptr<arrow::DataType> target,
                                        std::shared_ptr<cp::CastOptions> options) {
  if (is_binary_type(from) && (target->id() == arrow::Type::STRING || target->id() == arrow::Type::LARGE_STRING)) {
    ARROW_ASSIGN_OR_RAISE(auto function, utf8_from_binary_function());
    auto text = cp::call(function, {x});
    const bool large = from.id() == arrow::Type::LARGE_BINARY;
    if (large == (target->id() == arrow::Type::LARGE_STRING)) return text;
    return cp::call("cast", {text}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(std::move(target))));
  }
  if (!options) options = std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(target));
  return cp::call("cast", {x}, std::move(options));
}

std::shared_ptr<arrow::DataType> timestamp_type() { return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"); }

FunctionCall::FunctionCall(const ExpressionBinder& binder, const sql::Expr& expr, std::string name,
                           std::vector<BoundExpression> args)
    : binder_(binder), expr_(expr), name_(std::move(name)), args_(std::move(args)) {}

std::vector<cp::Expression> FunctionCall::expressions(size_t from) const {
  std::vector<cp::Expression> out;
  for (size_t i = from; i < args_.size(); ++i) out.push_back(args_[i].expr);
  return out;
}

bool FunctionCall::is_literal(size_t i) const { return expr_.args[i]->kind == sql::ExprKind::kLiteral; }

arrow::Result<std::string> FunctionCall::literal_string(size_t i) const {
  const sql::Expr& a = *expr_.args[i];
  if (a.kind != sql::ExprKind::kLiteral || a.literal_type != "string") {
    return error_at(i, fmt::format("argument {} of {} must be a string literal", i + 1, name_));
  }
  return a.value;
}

arrow::Result<int64_t> FunctionCall::literal_int(size_t i) const {
  const sql::Expr& a = *expr_.args[i];
  if (a.kind != sql::ExprKind::kLiteral || a.literal_type != "integer") {
    return error_at(i, fmt::format("argument {} of {} must be an integer literal", i + 1, name_));
  }
  auto n = parse_int64(a.value, "integer literal");  // the parser folds a leading '-' in
  if (!n.ok()) return error_at(i, fmt::format("argument {} of {} is out of range: {}", i + 1, name_, n.status().message()));
  return *n;
}

arrow::Status FunctionCall::error(const std::string& message) const { return binder_.error(expr_, message); }

arrow::Status FunctionCall::error_at(size_t i, const std::string& message) const {
  return binder_.error(*expr_.args[i], message);
}

arrow::Result<BoundExpression> FunctionCall::call(const std::string& function, std::vector<cp::Expression> args,
                                                  std::shared_ptr<cp::FunctionOptions> options) const {
  return binder_.make_call(expr_, function, std::move(args), std::move(options));
}

void FunctionRegistry::add(FunctionDef def) {
  const size_t at = definitions_.size();
  std::vector<std::string> names{def.name};
  names.insert(names.end(), def.aliases.begin(), def.aliases.end());
  for (const auto& n : names) {
    auto it = std::lower_bound(index_.begin(), index_.end(), std::pair<std::string, size_t>{n, 0},
                               [](const auto& a, const auto& b) { return a.first < b.first; });
    if (it != index_.end() && it->first == n) {
      duplicates_.push_back(n);
      continue;
    }
    index_.insert(it, {n, at});
  }
  definitions_.push_back(std::move(def));
}

const FunctionDef* FunctionRegistry::find(const std::string& name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::pair<std::string, size_t>{name, 0},
                             [](const auto& a, const auto& b) { return a.first < b.first; });
  if (it == index_.end() || it->first != name) return nullptr;
  return &definitions_[it->second];
}

std::vector<std::string> FunctionRegistry::nearest(const std::string& name, size_t n) const {
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& [known, _] : index_) {
    size_t d = edit_distance(name, known);
    // A known name that contains the unknown one (or the reverse) is a near miss too: "date_format" for "format".
    const bool contains = std::min(name.size(), known.size()) >= 4 &&
                          (known.find(name) != std::string::npos || name.find(known) != std::string::npos);
    if (d > limit && !contains) continue;
    scored.emplace_back(d, known);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < n; ++i) out.push_back(scored[i].second);
  return out;
}

const FunctionRegistry& FunctionRegistry::instance() {
  static const FunctionRegistry registry = [] {
    FunctionRegistry r;
    register_string_functions(r);
    register_math_functions(r);
    register_datetime_functions(r);
    register_conditional_functions(r);
    register_collection_functions(r);
    register_json_functions(r);
    register_hash_functions(r);
    register_generator_functions(r);
    return r;
  }();
  return registry;
}

}  // namespace sluice::exec
