// Compiles SQL expressions (the AST) against an input schema into bound, vectorised Arrow
// compute expressions, type-checking them before any data moves. Semantics follow Spark:
// three-valued logic, '/' on numbers gives DOUBLE, division by zero gives NULL, integer
// overflow is an error (ANSI), names resolve case-insensitively.
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <set>
#include <string>

#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::exec {

class FunctionCall;

struct BoundExpression {
  arrow::compute::Expression expr;  // bound to the input schema
  std::shared_ptr<arrow::DataType> type;
  std::string name;  // the column name Spark would give it (a, count(1), ...)
};

class ExpressionBinder {
 public:
  // `qualifiers` are table names/aliases a column may be prefixed with (t.a).
  ExpressionBinder(const sql::SourceFile& file, std::shared_ptr<arrow::Schema> input,
                   std::set<std::string> qualifiers = {});

  // Errors are "file:line:col: error: ..." pointing at the offending part.
  arrow::Result<BoundExpression> bind(const sql::Expr& expr) const;

 private:
  friend class FunctionCall;  // function definitions bind through make_call and error

  arrow::Result<BoundExpression> bind_node(const sql::Expr& expr) const;
  arrow::Result<BoundExpression> bind_function(const sql::Expr& expr) const;
  // The input column `name` names without its exact spelling: case-insensitively, or the
  // unqualified name of a joined column ("user_id" for "u.user_id"). -1: none; -2: several.
  int match_column(const std::string& name) const;
  arrow::Result<BoundExpression> make_call(const sql::Expr& at, const std::string& function,
                                           std::vector<arrow::compute::Expression> args,
                                           std::shared_ptr<arrow::compute::FunctionOptions> options = nullptr) const;
  arrow::Status error(const sql::Expr& at, const std::string& message) const;

  const sql::SourceFile& file_;
  std::shared_ptr<arrow::Schema> input_;
  std::set<std::string> qualifiers_;
};

// Microseconds of an interval literal such as "1 hours 30 minutes"; months and years have no
// fixed length, so they are refused.
arrow::Result<int64_t> interval_micros(const std::string& text);

// Evaluates a bound expression over a batch; the result has the batch's length.
arrow::Result<std::shared_ptr<arrow::Array>> evaluate(const BoundExpression& expr,
                                                      const arrow::RecordBatch& batch);

}  // namespace sluice::exec
