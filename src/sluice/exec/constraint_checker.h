// Delta CHECK constraints (table properties `delta.constraints.<name>`, Spark SQL boolean
// expressions) compiled with the expression binder, so that every write a TableWriter makes
// enforces them (see delta/constraints.h for why this lives above the delta layer).
#pragma once

#include <memory>

#include "sluice/delta/constraints.h"

namespace sluice::exec {

// Binds each constraint against the table schema (errors name the constraint and point into
// its expression) and checks batches as Delta does: a row passes only when the expression
// is true (false or NULL is a violation, DELTA_VIOLATE_CONSTRAINT_WITH_VALUES).
class SqlConstraintCompiler : public delta::ConstraintCompiler {
 public:
  arrow::Result<std::unique_ptr<delta::ConstraintChecker>> compile(
      const std::vector<delta::CheckConstraint>& constraints,
      const std::shared_ptr<arrow::Schema>& table_schema, const std::string& table) const override;
};

// The compiler every sluice writer passes in delta::WriteOptions::constraints.
std::shared_ptr<const delta::ConstraintCompiler> sql_constraint_compiler();

}  // namespace sluice::exec
