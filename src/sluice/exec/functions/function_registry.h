// The SQL scalar function catalog: one definition per function (name, aliases, arity, family,
// result type rule, how it binds to Arrow compute calls), registered family by family
// (string_functions.cc, datetime_functions.cc, ...), as DuckDB and Velox organise theirs.
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/exec/expression_binder.h"
#include "sluice/sql/ast.h"

namespace sluice::exec {

// More arguments than any variadic function takes (coalesce, concat, ...).
inline constexpr int kVariadic = 1000;

// One call being bound: its AST node, its lower-cased name, its bound arguments, and the
// binder's helpers for errors that point at the call or one of its arguments.
class FunctionCall {
 public:
  FunctionCall(const ExpressionBinder& binder, const sql::Expr& expr, std::string name,
               std::vector<BoundExpression> args);

  const sql::Expr& expr() const { return expr_; }
  const std::string& name() const { return name_; }
  size_t size() const { return args_.size(); }
  const BoundExpression& arg(size_t i) const { return args_[i]; }
  const arrow::DataType& type(size_t i) const { return *args_[i].type; }
  const arrow::compute::Expression& expression(size_t i) const { return args_[i].expr; }
  // Every argument's expression from `from` on.
  std::vector<arrow::compute::Expression> expressions(size_t from = 0) const;

  // Argument `i` as a string/integer literal, or an error pointing at it.
  arrow::Result<std::string> literal_string(size_t i) const;
  arrow::Result<int64_t> literal_int(size_t i) const;
  bool is_literal(size_t i) const;

  // "file:line:col: error: message" at the call, or at argument `i`.
  arrow::Status error(const std::string& message) const;
  arrow::Status error_at(size_t i, const std::string& message) const;

  // Binds `function(args)`; a type mismatch says "cannot apply <name> to (<types>)".
  arrow::Result<BoundExpression> call(const std::string& function, std::vector<arrow::compute::Expression> args,
                                      std::shared_ptr<arrow::compute::FunctionOptions> options = nullptr) const;

 private:
  const ExpressionBinder& binder_;
  const sql::Expr& expr_;
  std::string name_;
  std::vector<BoundExpression> args_;
};

using FunctionBinder = std::function<arrow::Result<BoundExpression>(const FunctionCall&)>;

struct FunctionDef {
  std::string name;                  // lower case, as Spark names it
  std::vector<std::string> aliases;  // other spellings binding the same way
  int min_args = 0;
  int max_args = 0;                  // kVariadic: any number
  std::string family;                // string, datetime, math, conditional, collection, json, hash, generator
  std::string returns;               // the result type rule, for docs/functions.md
  FunctionBinder bind;               // arity is checked before it runs
  std::string differs;               // an intended difference from Spark 4 (ANSI), "" when none
};

class FunctionRegistry {
 public:
  // Every family registered; built once, then read-only (safe from any thread).
  static const FunctionRegistry& instance();

  // Adds `def`; a name or alias defined twice is kept in duplicates() (a unit test keeps it empty).
  void add(FunctionDef def);

  // The definition `name` (lower case) or one of its aliases names, or nullptr.
  const FunctionDef* find(const std::string& name) const;
  // Up to `n` known names closest to `name` by edit distance, nearest first.
  std::vector<std::string> nearest(const std::string& name, size_t n = 3) const;

  const std::vector<FunctionDef>& definitions() const { return definitions_; }
  const std::vector<std::string>& duplicates() const { return duplicates_; }

 private:
  std::vector<FunctionDef> definitions_;
  std::vector<std::pair<std::string, size_t>> index_;  // sorted (name or alias, definition)
  std::vector<std::string> duplicates_;
};

// One registration function per family file.
void register_string_functions(FunctionRegistry& registry);
void register_math_functions(FunctionRegistry& registry);
void register_datetime_functions(FunctionRegistry& registry);
void register_conditional_functions(FunctionRegistry& registry);
void register_collection_functions(FunctionRegistry& registry);
void register_json_functions(FunctionRegistry& registry);
void register_hash_functions(FunctionRegistry& registry);
// explode, posexplode, inline (and _outer): catalog entries only (collection_functions.cc).
void register_generator_functions(FunctionRegistry& registry);

}  // namespace sluice::exec
