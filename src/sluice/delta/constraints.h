// The interface through which a TableWriter enforces a table's CHECK constraints. The
// constraints are Spark SQL expressions; the delta layer knows nothing of SQL, so the layer
// that does (exec/constraint_checker.h) implements it and writers are handed an instance.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>
#include <vector>

#include "sluice/delta/table_features.h"

namespace sluice::delta {

// Checks batches of one table schema against a set of constraints.
class ConstraintChecker {
 public:
  virtual ~ConstraintChecker() = default;
  // OK when every row satisfies every constraint (a NULL result passes, as in SQL CHECK);
  // otherwise an error naming the constraint, its expression and the values of a violating
  // row.
  virtual arrow::Status check(const arrow::RecordBatch& batch) const = 0;
};

// Compiles constraints against a table schema (binding errors name the constraint).
class ConstraintCompiler {
 public:
  virtual ~ConstraintCompiler() = default;
  virtual arrow::Result<std::unique_ptr<ConstraintChecker>> compile(
      const std::vector<CheckConstraint>& constraints,
      const std::shared_ptr<arrow::Schema>& table_schema, const std::string& table) const = 0;
};

}  // namespace sluice::delta
