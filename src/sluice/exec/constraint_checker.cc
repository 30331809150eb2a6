// CHECK constraints bound with the SQL expression binder and evaluated per batch.
#include "sluice/exec/constraint_checker.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/status.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {

namespace {

struct BoundConstraint {
  delta::CheckConstraint constraint;
  std::unique_ptr<sql::SourceFile> source;  // the binder's errors point into it
  BoundExpression bound;
  std::vector<int> columns;  // top-level columns the expression reads, for the message
};

class SqlConstraintChecker : public delta::ConstraintChecker {
 public:
  SqlConstraintChecker(std::string table, std::vector<BoundConstraint> constraints)
      : table_(std::move(table)), constraints_(std::move(constraints)) {}

  arrow::Status check(const arrow::RecordBatch& batch) const override {
    for (const auto& c : constraints_) {
      auto result = evaluate(c.bound, batch);
      if (!result.ok()) {
        return with_context(result.status(),
                            fmt::format("writing to {}: CHECK constraint {} ({})", table_,
                                        c.constraint.name, c.constraint.expression));
      }
      const auto& values = static_cast<const arrow::BooleanArray&>(**result);
      int64_t violations = 0, first = -1;
      for (int64_t i = 0; i < values.length(); ++i) {
        if (values.IsValid(i) && values.Value(i)) continue;
        if (first < 0) first = i;
        ++violations;
      }
      if (violations > 0) return violation(c, batch, first, violations);
    }
    return arrow::Status::OK();
  }

 private:
  arrow::Status violation(const BoundConstraint& c, const arrow::RecordBatch& batch, int64_t row,
                          int64_t violations) const {
    std::string values;
    for (int column : c.columns) {
      auto scalar = batch.column(column)->GetScalar(row);
      values += fmt::format("\n - {} : {}", batch.schema()->field(column)->name(),
                            scalar.ok() && (*scalar)->is_valid ? (*scalar)->ToString() : "null");
    }
    return invalid(
        "writing to {}: CHECK constraint {} ({}) violated by row with values:{}\n{} of {} row(s) "
        "in this write violate it (a NULL result violates it too); nothing was written. Fix or "
        "filter the data (e.g. an expectation with ON VIOLATION DROP ROW), or drop the "
        "constraint (ALTER TABLE ... DROP CONSTRAINT {})",
        table_, c.constraint.name, c.constraint.expression, values, violations, batch.num_rows(),
        c.constraint.name);
  }

  std::string table_;
  std::vector<BoundConstraint> constraints_;
};

}  // namespace

arrow::Result<std::unique_ptr<delta::ConstraintChecker>> SqlConstraintCompiler::compile(
    const std::vector<delta::CheckConstraint>& constraints,
    const std::shared_ptr<arrow::Schema>& table_schema, const std::string& table) const {
  std::vector<BoundConstraint> bound;
  for (const auto& c : constraints) {
    BoundConstraint b;
    b.constraint = c;
    b.source = std::make_unique<sql::SourceFile>(
        sql::SourceFile{"delta.constraints." + c.name, c.expression});
    auto fail = [&](const arrow::Status& st) {
      return invalid(
          "table {} has CHECK constraint {} ({}) that sluice cannot evaluate, so it writes "
          "nothing to the table: {}",
          table, c.name, c.expression, st.message());
    };
    auto ast = sql::parse_expression(*b.source);
    if (!ast.ok()) return fail(ast.status());
    ExpressionBinder binder(*b.source, table_schema);
    auto expr = binder.bind(**ast);
    if (!expr.ok()) return fail(expr.status());
    if (expr->type->id() != arrow::Type::BOOL) {
      return fail(invalid("the expression is of type {}, not boolean", expr->type->ToString()));
    }
    b.bound = std::move(*expr);
    for (const auto& ref : arrow::compute::FieldsInExpression(b.bound.expr)) {
      auto path = ref.FindOne(*table_schema);
      if (!path.ok() || path->indices().empty()) continue;
      int top = path->indices()[0];
      if (std::find(b.columns.begin(), b.columns.end(), top) == b.columns.end()) {
        b.columns.push_back(top);
      }
    }
    bound.push_back(std::move(b));
  }
  return std::make_unique<SqlConstraintChecker>(table, std::move(bound));
}

std::shared_ptr<const delta::ConstraintCompiler> sql_constraint_compiler() {
  static const auto kCompiler = std::make_shared<const SqlConstraintCompiler>();
  return kCompiler;
}

}  // namespace sluice::exec
