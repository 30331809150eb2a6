// Predicates for file skipping from a DML statement's conditions.
#include "sluice/dml/skipping.h"

#include <arrow/api.h>

#include "sluice/common/text.h"
#include "sluice/exec/expression_binder.h"

namespace sluice::dml {

namespace {

using sql::Expr;
using sql::ExprKind;

// The target column `e` names (top-level, case-insensitive), or "".
std::string target_column(const Expr& e, const arrow::Schema& schema,
                          const std::set<std::string>& qualifiers) {
  if (e.kind != ExprKind::kColumn) return "";
  std::string name;
  if (e.parts.size() == 1) {
    name = e.parts[0];
  } else if (e.parts.size() == 2 && qualifiers.count(to_lower(e.parts[0]))) {
    name = e.parts[1];
  } else {
    return "";
  }
  for (const auto& f : schema.fields()) {
    if (to_lower(f->name()) == to_lower(name)) return f->name();
  }
  return "";
}

std::shared_ptr<arrow::Scalar> literal_value(const Expr& e, const sql::SourceFile& file) {
  if (e.kind != ExprKind::kLiteral || e.literal_type == "null" || e.literal_type == "interval") {
    return nullptr;
  }
  exec::ExpressionBinder binder(file, arrow::schema({}));
  auto bound = binder.bind(e);
  if (!bound.ok() || !bound->expr.literal() || !bound->expr.literal()->is_scalar()) return nullptr;
  return bound->expr.literal()->scalar();
}

// The literal as a value of the column's type, when that is exact (1.5 for a BIGINT column is
// not: it would prune by 1).
std::shared_ptr<arrow::Scalar> exact_value(const std::shared_ptr<arrow::Scalar>& value,
                                           const arrow::Schema& schema, const std::string& column) {
  if (!value) return nullptr;
  auto type = schema.GetFieldByName(column)->type();
  if (value->type->Equals(*type)) return value;
  auto cast = value->CastTo(type);
  if (!cast.ok()) return nullptr;
  auto back = (*cast)->CastTo(value->type);
  if (!back.ok() || !(*back)->Equals(*value)) return nullptr;
  return *cast;
}

std::optional<delta::CompareOp> compare_op(const std::string& op, bool flipped) {
  if (op == "=") return delta::CompareOp::kEq;
  if (op == "<") return flipped ? delta::CompareOp::kGt : delta::CompareOp::kLt;
  if (op == "<=") return flipped ? delta::CompareOp::kGe : delta::CompareOp::kLe;
  if (op == ">") return flipped ? delta::CompareOp::kLt : delta::CompareOp::kGt;
  if (op == ">=") return flipped ? delta::CompareOp::kLe : delta::CompareOp::kGe;
  return std::nullopt;
}

void collect(const Expr& e, const sql::SourceFile& file, const arrow::Schema& schema,
             const std::set<std::string>& qualifiers, std::vector<delta::ColumnPredicate>* out) {
  if (e.kind == ExprKind::kBinary && e.op == "AND") {
    for (const auto& a : e.args) collect(*a, file, schema, qualifiers, out);
    return;
  }
  if (e.kind == ExprKind::kBinary && e.args.size() == 2) {
    for (int side = 0; side < 2; ++side) {
      auto column = target_column(*e.args[side], schema, qualifiers);
      if (column.empty()) continue;
      auto value = exact_value(literal_value(*e.args[1 - side], file), schema, column);
      auto op = compare_op(e.op, side == 1);
      if (value && op) out->push_back({column, *op, value});
      return;
    }
    return;
  }
  if (e.kind == ExprKind::kIsNull && e.args.size() == 1) {
    auto column = target_column(*e.args[0], schema, qualifiers);
    if (!column.empty()) {
      out->push_back(
          {column, e.negated ? delta::CompareOp::kIsNotNull : delta::CompareOp::kIsNull, nullptr});
    }
    return;
  }
  if (e.kind == ExprKind::kBetween && !e.negated && e.args.size() == 3) {
    auto column = target_column(*e.args[0], schema, qualifiers);
    if (column.empty()) return;
    auto low = exact_value(literal_value(*e.args[1], file), schema, column);
    auto high = exact_value(literal_value(*e.args[2], file), schema, column);
    if (!column.empty() && low && high) {
      out->push_back({column, delta::CompareOp::kGe, low});
      out->push_back({column, delta::CompareOp::kLe, high});
    }
  }
}

}  // namespace

std::vector<delta::ColumnPredicate> skipping_predicates(const sql::Expr* where,
                                                        const sql::SourceFile& file,
                                                        const arrow::Schema& schema,
                                                        const std::set<std::string>& qualifiers) {
  std::vector<delta::ColumnPredicate> out;
  std::set<std::string> lowered;
  for (const auto& q : qualifiers) lowered.insert(to_lower(q));
  if (where) collect(*where, file, schema, lowered, &out);
  return out;
}

}  // namespace sluice::dml
