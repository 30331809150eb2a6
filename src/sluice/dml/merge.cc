// Copy-on-write MERGE.
#include "sluice/dml/merge.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/type_traits.h>

#include <algorithm>
#include <map>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/scan.h"
#include "sluice/dml/assignments.h"
#include "sluice/dml/delete_update.h"
#include "sluice/dml/skipping.h"

namespace sluice::dml {

namespace cp = arrow::compute;
using sql::MergeAction;
using sql::MergeMatch;

namespace {

constexpr const char* kTargetRow = "__sluice_target_row";
constexpr const char* kSourceRow = "__sluice_source_row";

// A schema whose fields are named "<qualifier>.<column>", as the binder resolves t.c.
std::shared_ptr<arrow::Schema> qualified(const arrow::Schema& schema, const std::string& q) {
  arrow::FieldVector fields;
  for (const auto& f : schema.fields()) fields.push_back(f->WithName(q + "." + f->name())->WithNullable(true));
  return arrow::schema(fields);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> as_batch(const arrow::Table& table,
                                                            std::shared_ptr<arrow::Schema> schema) {
  ARROW_ASSIGN_OR_RAISE(auto combined, table.CombineChunksToBatch());
  return arrow::RecordBatch::Make(std::move(schema), combined->num_rows(), combined->columns());
}

// Two batches of equal length side by side (the target's then the source's columns).
std::shared_ptr<arrow::RecordBatch> side_by_side(const arrow::RecordBatch& a, const arrow::RecordBatch& b) {
  arrow::FieldVector fields = a.schema()->fields();
  arrow::ArrayVector columns = a.columns();
  for (int i = 0; i < b.num_columns(); ++i) {
    fields.push_back(b.schema()->field(i));
    columns.push_back(b.column(i));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), a.num_rows(), columns);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> take(const arrow::RecordBatch& batch, const arrow::Array& rows) {
  ARROW_ASSIGN_OR_RAISE(auto out, cp::Take(batch.Slice(0), rows));
  return out.record_batch();
}

arrow::Result<std::shared_ptr<arrow::BooleanArray>> truth(const exec::BoundExpression& e,
                                                          const arrow::RecordBatch& batch) {
  ARROW_ASSIGN_OR_RAISE(auto mask, exec::evaluate(e, batch));
  if (mask->type_id() == arrow::Type::NA) {
    ARROW_ASSIGN_OR_RAISE(mask, arrow::MakeArrayFromScalar(arrow::BooleanScalar(false), batch.num_rows()));
  }
  ARROW_ASSIGN_OR_RAISE(auto filled, cp::CallFunction("coalesce", {arrow::Datum(mask), arrow::Datum(false)}));
  return std::static_pointer_cast<arrow::BooleanArray>(filled.make_array());
}

// One WHEN clause bound over the rows it applies to.
struct BoundClause {
  const sql::MergeClause* clause;
  std::optional<exec::BoundExpression> condition;
  ColumnValues values;  // UPDATE / INSERT
};

const char* action_name(MergeAction a) {
  return a == MergeAction::kDelete ? "delete" : a == MergeAction::kInsert ? "insert" : "update";
}

// The first clause whose condition holds, per row: which rows each clause takes.
arrow::Result<std::vector<std::shared_ptr<arrow::BooleanArray>>> assign_clauses(
    const std::vector<BoundClause>& clauses, const arrow::RecordBatch& rows) {
  std::vector<std::shared_ptr<arrow::BooleanArray>> taken;
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::MakeArrayFromScalar(arrow::BooleanScalar(true), rows.num_rows()));
  arrow::Datum remaining(all);
  for (const auto& c : clauses) {
    arrow::Datum mine = remaining;
    if (c.condition) {
      ARROW_ASSIGN_OR_RAISE(auto holds, truth(*c.condition, rows));
      ARROW_ASSIGN_OR_RAISE(mine, cp::And(remaining, holds));
    }
    ARROW_ASSIGN_OR_RAISE(auto rest, cp::AndNot(remaining, mine));
    remaining = rest;
    taken.push_back(std::static_pointer_cast<arrow::BooleanArray>(mine.make_array()));
  }
  return taken;
}

class MergeRun {
 public:
  MergeRun(const sql::MergeStatement& statement, const sql::SourceFile& file, const DmlTarget& target,
           std::shared_ptr<arrow::Table> source)
      : st_(statement), file_(file), target_(target), source_(std::move(source)) {}

  arrow::Result<DmlOutcome> run();

 private:
  arrow::Status bind();
  arrow::Status bind_keys(const sql::Expr& on);
  arrow::Result<BoundClause> bind_clause(const sql::MergeClause& c);
  arrow::Status error_at(sql::Location at, const std::string& message) const {
    return arrow::Status::Invalid(sql::format_error(file_, at, message));
  }
  arrow::Result<std::shared_ptr<arrow::Array>> join(const arrow::RecordBatch& t, const arrow::RecordBatch& s,
                                                    std::shared_ptr<arrow::Array>* source_rows) const;
  // The candidate files' rows as one batch of the qualified target schema; `file_end` gets
  // the row index past each file's rows.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> read_target(const std::vector<delta::Add>& files,
                                                                 std::vector<int64_t>* file_end) const;
  struct Matches {
    std::shared_ptr<arrow::RecordBatch> pairs;  // target then source columns, one row per match
    std::shared_ptr<arrow::Int64Array> target_rows, source_rows;
  };
  arrow::Result<Matches> match(const arrow::RecordBatch& t, const arrow::RecordBatch& s) const;
  nlohmann::json history_parameters() const;

  const sql::MergeStatement& st_;
  const sql::SourceFile& file_;
  const DmlTarget& target_;
  std::shared_ptr<arrow::Table> source_;
  std::string tq_, sq_;
  std::shared_ptr<arrow::Schema> table_schema_, t_schema_, s_schema_, ts_schema_;
  exec::BoundExpression on_;
  std::vector<exec::BoundExpression> t_keys_, s_keys_;
  std::vector<BoundClause> matched_, not_matched_, by_source_;
};

arrow::Status MergeRun::bind_keys(const sql::Expr& on) {
  if (on.kind == sql::ExprKind::kBinary && on.op == "AND") {
    for (const auto& a : on.args) ARROW_RETURN_NOT_OK(bind_keys(*a));
    return arrow::Status::OK();
  }
  if (on.kind != sql::ExprKind::kBinary || on.op != "=") return arrow::Status::OK();
  for (int side = 0; side < 2; ++side) {
    exec::ExpressionBinder tb(file_, t_schema_), sb(file_, s_schema_);
    auto t = tb.bind(*on.args[side]);
    auto s = sb.bind(*on.args[1 - side]);
    if (t.ok() && s.ok()) {
      t_keys_.push_back(*t);
      s_keys_.push_back(*s);
      return arrow::Status::OK();
    }
  }
  return arrow::Status::OK();
}

arrow::Result<BoundClause> MergeRun::bind_clause(const sql::MergeClause& c) {
  BoundClause b{&c, std::nullopt, {}};
  // What the clause sees: both sides when matched, one side otherwise.
  const auto& input = c.match == MergeMatch::kMatched       ? ts_schema_
                      : c.match == MergeMatch::kNotMatched ? s_schema_
                                                            : t_schema_;
  exec::ExpressionBinder binder(file_, input);
  if (c.condition) {
    ARROW_ASSIGN_OR_RAISE(auto cond, binder.bind(*c.condition));
    if (cond.type->id() != arrow::Type::BOOL && cond.type->id() != arrow::Type::NA) {
      return error_at(c.condition->loc, fmt::format("a WHEN condition must be BOOLEAN, but it is {}",
                                                     cond.type->ToString()));
    }
    b.condition = cond;
  }
  const int n = table_schema_->num_fields();
  b.values.values.resize(n);
  b.values.unchanged.assign(n, -1);
  if (c.action == MergeAction::kDelete) return b;
  if (c.action == MergeAction::kUpdate) {
    for (int i = 0; i < n; ++i) b.values.unchanged[i] = i;  // t.c is column i of both inputs
  }
  auto source_column = [&](const std::string& name) -> arrow::Result<exec::BoundExpression> {
    auto ref = std::make_unique<sql::Expr>();
    ref->kind = sql::ExprKind::kColumn;
    ref->loc = c.loc;
    ref->parts = {sq_, name};
    for (const auto& f : source_->schema()->fields()) {
      if (to_lower(f->name()) == to_lower(name)) {
        ref->parts = {sq_, f->name()};
        return binder.bind(*ref);
      }
    }
    return error_at(c.loc, fmt::format("{} * needs a source column for every target column, but the "
                                       "source has no column '{}'",
                                       c.action == MergeAction::kInsert ? "INSERT" : "UPDATE SET", name));
  };
  if (c.star) {
    for (int i = 0; i < n; ++i) {
      ARROW_ASSIGN_OR_RAISE(b.values.values[i], source_column(table_schema_->field(i)->name()));
      ARROW_RETURN_NOT_OK(check_assignable(*b.values.values[i]->type, *table_schema_->field(i), c.loc, file_));
    }
    return b;
  }
  if (c.action == MergeAction::kUpdate) {
    for (const auto& a : c.set) {
      ARROW_ASSIGN_OR_RAISE(int i, resolve_assigned_column(a, file_, *table_schema_, {tq_}));
      if (b.values.values[i]) {
        return error_at(a.loc, fmt::format("column '{}' is assigned twice", table_schema_->field(i)->name()));
      }
      ARROW_ASSIGN_OR_RAISE(b.values.values[i], binder.bind(*a.value));
      ARROW_RETURN_NOT_OK(check_assignable(*b.values.values[i]->type, *table_schema_->field(i), a.value->loc, file_));
    }
    return b;
  }
  // INSERT (cols) VALUES (...): without a column list, the values are the table's columns in order.
  if (c.insert_columns.empty() && static_cast<int>(c.insert_values.size()) != n) {
    return error_at(c.loc, fmt::format("INSERT VALUES gives {} value(s) for the target's {} column(s): "
                                       "give one per column or name the columns",
                                       c.insert_values.size(), n));
  }
  for (size_t k = 0; k < c.insert_values.size(); ++k) {
    int i = static_cast<int>(k);
    if (!c.insert_columns.empty()) {
      ARROW_ASSIGN_OR_RAISE(i, resolve_target_column(c.insert_columns[k], c.loc, file_, *table_schema_));
    }
    if (b.values.values[i]) {
      return error_at(c.loc, fmt::format("column '{}' is inserted twice", table_schema_->field(i)->name()));
    }
    ARROW_ASSIGN_OR_RAISE(b.values.values[i], binder.bind(*c.insert_values[k]));
    ARROW_RETURN_NOT_OK(
        check_assignable(*b.values.values[i]->type, *table_schema_->field(i), c.insert_values[k]->loc, file_));
  }
  return b;
}

arrow::Status MergeRun::bind() {
  table_schema_ = target_.snapshot->schema();
  tq_ = *target_qualifiers(*st_.target).begin();
  if (st_.source->alias.empty() && st_.source->name.empty()) {
    return error_at(st_.source->loc, "the MERGE source needs an alias: USING (SELECT ...) AS s");
  }
  sq_ = st_.source->alias.empty() ? st_.source->name.back() : st_.source->alias;
  if (to_lower(tq_) == to_lower(sq_)) {
    return error_at(st_.source->loc, fmt::format("the target and the source are both called '{}': give "
                                                 "one an alias (MERGE INTO t USING s AS src ...)",
                                                 sq_));
  }
  t_schema_ = qualified(*table_schema_, tq_);
  s_schema_ = qualified(*source_->schema(), sq_);
  arrow::FieldVector both = t_schema_->fields();
  for (const auto& f : s_schema_->fields()) both.push_back(f);
  ts_schema_ = arrow::schema(both);
  exec::ExpressionBinder binder(file_, ts_schema_);
  ARROW_ASSIGN_OR_RAISE(on_, binder.bind(*st_.on));
  if (on_.type->id() != arrow::Type::BOOL) {
    return error_at(st_.on->loc, fmt::format("the ON condition must be BOOLEAN, but it is {}", on_.type->ToString()));
  }
  ARROW_RETURN_NOT_OK(bind_keys(*st_.on));
  if (t_keys_.empty()) {
    return arrow::Status::NotImplemented(sql::format_error(
        file_, st_.on->loc,
        "MERGE needs an equality between the target and the source in its ON condition (t.id = s.id): "
        "a condition without one is not supported yet"));
  }
  // As Spark: only the last clause of each kind may omit its condition.
  std::map<MergeMatch, const sql::MergeClause*> unconditional;
  for (const auto& c : st_.clauses) {
    if (auto it = unconditional.find(c.match); it != unconditional.end()) {
      return error_at(it->second->loc, "only the last WHEN clause of a kind (MATCHED, NOT MATCHED, NOT "
                                       "MATCHED BY SOURCE) may omit its AND condition");
    }
    if (!c.condition) unconditional[c.match] = &c;
    ARROW_ASSIGN_OR_RAISE(auto bound, bind_clause(c));
    auto& list = c.match == MergeMatch::kMatched ? matched_ : c.match == MergeMatch::kNotMatched ? not_matched_ : by_source_;
    list.push_back(std::move(bound));
  }
  return arrow::Status::OK();
}

// The target rows each (target, source) key match pairs, and the source rows beside them.
arrow::Result<std::shared_ptr<arrow::Array>> MergeRun::join(const arrow::RecordBatch& t, const arrow::RecordBatch& s,
                                                            std::shared_ptr<arrow::Array>* source_rows) const {
  auto side = [](const arrow::RecordBatch& rows, const std::vector<exec::BoundExpression>& keys,
                 const std::vector<std::shared_ptr<arrow::DataType>>& types,
                 const char* row_name) -> arrow::Result<std::shared_ptr<arrow::Table>> {
    arrow::FieldVector fields;
    arrow::ArrayVector columns;
    for (size_t k = 0; k < keys.size(); ++k) {
      ARROW_ASSIGN_OR_RAISE(auto key, exec::evaluate(keys[k], rows));
      if (!key->type()->Equals(*types[k])) {
        ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(key, types[k]));
        key = cast.make_array();
      }
      fields.push_back(arrow::field(fmt::format("{}{}", row_name, k), types[k]));
      columns.push_back(key);
    }
    arrow::Int64Builder ids;
    ARROW_RETURN_NOT_OK(ids.Reserve(rows.num_rows()));
    for (int64_t i = 0; i < rows.num_rows(); ++i) ids.UnsafeAppend(i);
    ARROW_ASSIGN_OR_RAISE(auto id_array, ids.Finish());
    fields.push_back(arrow::field(row_name, arrow::int64()));
    columns.push_back(id_array);
    return arrow::Table::Make(arrow::schema(fields), columns, rows.num_rows());
  };
  // Keys compare in a common type: the target's, or a numeric type wide enough for both.
  std::vector<std::shared_ptr<arrow::DataType>> types;
  for (size_t k = 0; k < t_keys_.size(); ++k) {
    auto a = t_keys_[k].type, b = s_keys_[k].type;
    if (a->Equals(*b)) {
      types.push_back(a);
    } else if (arrow::is_integer(a->id()) && arrow::is_integer(b->id())) {
      types.push_back(arrow::int64());
    } else if ((arrow::is_integer(a->id()) || arrow::is_floating(a->id())) &&
               (arrow::is_integer(b->id()) || arrow::is_floating(b->id()))) {
      types.push_back(arrow::float64());
    } else {
      types.push_back(a);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto left, side(t, t_keys_, types, kTargetRow));
  ARROW_ASSIGN_OR_RAISE(auto right, side(s, s_keys_, types, kSourceRow));
  std::vector<arrow::FieldRef> lk, rk;
  for (size_t k = 0; k < types.size(); ++k) {
    lk.emplace_back(fmt::format("{}{}", kTargetRow, k));
    rk.emplace_back(fmt::format("{}{}", kSourceRow, k));
  }
  arrow::acero::HashJoinNodeOptions options(arrow::acero::JoinType::INNER, lk, rk, {arrow::FieldRef(kTargetRow)},
                                            {arrow::FieldRef(kSourceRow)});
  arrow::acero::Declaration plan{"hashjoin",
                                 {arrow::acero::Declaration{"table_source", arrow::acero::TableSourceNodeOptions(left)},
                                  arrow::acero::Declaration{"table_source", arrow::acero::TableSourceNodeOptions(right)}},
                                 std::move(options)};
  ARROW_ASSIGN_OR_RAISE(auto joined, arrow::acero::DeclarationToTable(std::move(plan), /*use_threads=*/false));
  ARROW_ASSIGN_OR_RAISE(auto combined, joined->CombineChunksToBatch());
  *source_rows = combined->GetColumnByName(kSourceRow);
  return combined->GetColumnByName(kTargetRow);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MergeRun::read_target(const std::vector<delta::Add>& files,
                                                                       std::vector<int64_t>* file_end) const {
  std::vector<std::shared_ptr<arrow::Table>> parts;
  int64_t rows = 0;
  for (const auto& add : files) {
    ARROW_ASSIGN_OR_RAISE(auto part, delta::read_data_file(*target_.store, *target_.snapshot, add));
    rows += part->num_rows();
    file_end->push_back(rows);
    parts.push_back(std::move(part));
  }
  std::shared_ptr<arrow::Table> target_rows;
  if (parts.empty()) {
    ARROW_ASSIGN_OR_RAISE(target_rows, arrow::Table::MakeEmpty(table_schema_));
  } else {
    ARROW_ASSIGN_OR_RAISE(target_rows, arrow::ConcatenateTables(parts));
  }
  return as_batch(*target_rows, t_schema_);
}

// Matches: key equality (the hash join), then the whole ON condition over each pair.
arrow::Result<MergeRun::Matches> MergeRun::match(const arrow::RecordBatch& t, const arrow::RecordBatch& s) const {
  std::shared_ptr<arrow::Array> pair_s;
  ARROW_ASSIGN_OR_RAISE(auto pair_t, join(t, s, &pair_s));
  ARROW_ASSIGN_OR_RAISE(auto mt, take(t, *pair_t));
  ARROW_ASSIGN_OR_RAISE(auto ms, take(s, *pair_s));
  auto pairs = side_by_side(*mt, *ms);
  ARROW_ASSIGN_OR_RAISE(auto on_mask, truth(on_, *pairs));
  Matches m;
  ARROW_ASSIGN_OR_RAISE(m.pairs, filter_rows(*pairs, *on_mask));
  ARROW_ASSIGN_OR_RAISE(auto matched_t, cp::Filter(pair_t, on_mask));
  ARROW_ASSIGN_OR_RAISE(auto matched_s, cp::Filter(pair_s, on_mask));
  m.target_rows = std::static_pointer_cast<arrow::Int64Array>(matched_t.make_array());
  m.source_rows = std::static_pointer_cast<arrow::Int64Array>(matched_s.make_array());
  return m;
}

// operationParameters as delta-spark writes them for MERGE.
nlohmann::json MergeRun::history_parameters() const {
  auto clause_list = [](const std::vector<BoundClause>& clauses) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& c : clauses) {
      nlohmann::json entry = nlohmann::json::object();
      if (c.clause->condition) entry["predicate"] = condition_text(*c.clause->condition);
      entry["actionType"] = action_name(c.clause->action);
      list.push_back(entry);
    }
    return list.dump();
  };
  return {{"predicate", predicate_parameter(st_.on.get())},
          {"matchedPredicates", clause_list(matched_)},
          {"notMatchedPredicates", clause_list(not_matched_)},
          {"notMatchedBySourcePredicates", clause_list(by_source_)}};
}

arrow::Result<DmlOutcome> MergeRun::run() {
  ARROW_RETURN_NOT_OK(check_dml_supported(target_, "MERGE"));
  ARROW_RETURN_NOT_OK(bind());
  // Target files: all of them when a NOT MATCHED BY SOURCE clause may change any row, else those
  // the ON condition's target-only conjuncts do not rule out.
  std::vector<delta::ColumnPredicate> predicates;
  if (by_source_.empty()) predicates = skipping_predicates(st_.on.get(), file_, *table_schema_, {tq_});
  ARROW_ASSIGN_OR_RAISE(auto candidates, delta::select_files(*target_.snapshot, predicates));
  ARROW_ASSIGN_OR_RAISE(auto rewrite, TableRewrite::make(target_));
  std::vector<int64_t> file_end;  // row index past each candidate file's rows
  ARROW_ASSIGN_OR_RAISE(auto t, read_target(candidates, &file_end));
  ARROW_ASSIGN_OR_RAISE(auto s, as_batch(*source_, s_schema_));
  ARROW_ASSIGN_OR_RAISE(auto matches, match(*t, *s));
  auto& pairs = matches.pairs;
  const auto& matched_t = matches.target_rows;
  const auto& matched_s = matches.source_rows;

  // Per target row: 0 untouched, 1 matched, 2 matched twice or more.
  std::vector<uint8_t> t_matches(t->num_rows(), 0);
  std::vector<uint8_t> s_matched(s->num_rows(), 0);
  bool multiple = false;
  for (int64_t i = 0; i < matched_t->length(); ++i) {
    auto& m = t_matches[matched_t->Value(i)];
    multiple |= m > 0;
    m = static_cast<uint8_t>(std::min(m + 1, 2));
    s_matched[matched_s->Value(i)] = 1;
  }
  const bool only_unconditional_delete = matched_.size() == 1 && !matched_[0].condition &&
                                         matched_[0].clause->action == MergeAction::kDelete;
  if (multiple && !matched_.empty() && !only_unconditional_delete) {
    return arrow::Status::Invalid(fmt::format(
        "{} (MERGE INTO {} at {}:{}:{}) By SQL semantics of Merge, when multiple source rows match on the "
        "same target row, the result may be ambiguous as it is unclear which source row should be used to "
        "update or delete the matching target row. Preprocess the source so that each target row matches "
        "at most one source row; nothing was changed.",
        kMultipleSourceRowsMatched, target_.name, file_.name, st_.loc.line, st_.loc.col));
  }
  rewrite->mark_scan_done();

  // What happens to each target row: kept, or changed (updated or deleted) by a clause.
  enum : uint8_t { kKept = 0, kChanged = 1 };
  std::vector<uint8_t> t_state(t->num_rows(), kKept);
  std::vector<uint8_t> file_touched(candidates.size(), 0);
  auto file_of = [&](int64_t row) {
    return static_cast<size_t>(std::upper_bound(file_end.begin(), file_end.end(), row) - file_end.begin());
  };
  int64_t matched_updated = 0, matched_deleted = 0, source_updated = 0, source_deleted = 0, inserted = 0;
  // The files of every matched row are rewritten (Spark's touched files), when rows may change.
  if (!matched_.empty()) {
    for (int64_t i = 0; i < matched_t->length(); ++i) file_touched[file_of(matched_t->Value(i))] = 1;
  }
  std::vector<uint8_t> change_recorded(rewrite->records_changes() ? t->num_rows() : 0, 0);
  // Applies `clauses` to `input` rows (target rows `t_rows`, or none for inserts).
  auto apply = [&](const std::vector<BoundClause>& clauses, const arrow::RecordBatch& input,
                   const arrow::Int64Array* t_rows, int64_t* updated, int64_t* deleted) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto taken, assign_clauses(clauses, input));
    for (size_t k = 0; k < clauses.size(); ++k) {
      const int64_t n = taken[k]->true_count();
      if (n == 0) continue;
      if (t_rows) {
        for (int64_t i = 0; i < input.num_rows(); ++i) {
          if (!taken[k]->Value(i)) continue;
          const int64_t row = t_rows->Value(i);
          t_state[row] = kChanged;
          file_touched[file_of(row)] = 1;
        }
      }
      if (clauses[k].clause->action == MergeAction::kDelete) {
        *deleted += n;
        if (!rewrite->records_changes()) continue;
        // Each deleted target row once, though several source rows matched it (an
        // unconditional DELETE allows that), as Spark deduplicates its CDF deletes.
        arrow::Int64Builder rows;
        for (int64_t i = 0; i < input.num_rows(); ++i) {
          if (!taken[k]->Value(i)) continue;
          const int64_t row = t_rows->Value(i);
          if (change_recorded[row]) continue;
          change_recorded[row] = 1;
          ARROW_RETURN_NOT_OK(rows.Append(row));
        }
        ARROW_ASSIGN_OR_RAISE(auto unique_rows, rows.Finish());
        ARROW_ASSIGN_OR_RAISE(auto gone, take(*t, *unique_rows));
        ARROW_RETURN_NOT_OK(rewrite->write_change(
            *arrow::RecordBatch::Make(table_schema_, gone->num_rows(), gone->columns()), delta::ChangeType::kDelete));
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto chosen, filter_rows(input, *taken[k]));
      // The target row before the change: the input's first (target) columns.
      std::shared_ptr<arrow::RecordBatch> before;
      if (t_rows && rewrite->records_changes()) {
        arrow::ArrayVector columns = chosen->columns();
        columns.resize(table_schema_->num_fields());
        before = arrow::RecordBatch::Make(table_schema_, chosen->num_rows(), std::move(columns));
      }
      *updated += n;
      ARROW_ASSIGN_OR_RAISE(auto out, assign_columns(*chosen, clauses[k].values, *table_schema_));
      ARROW_RETURN_NOT_OK(rewrite->write(*out));
      if (before) {
        ARROW_RETURN_NOT_OK(rewrite->write_change(*before, delta::ChangeType::kUpdatePreimage));
        ARROW_RETURN_NOT_OK(rewrite->write_change(*out, delta::ChangeType::kUpdatePostimage));
      } else {
        ARROW_RETURN_NOT_OK(rewrite->write_change(*out, delta::ChangeType::kInsert));
      }
    }
    return arrow::Status::OK();
  };
  if (!matched_.empty()) {
    ARROW_RETURN_NOT_OK(apply(matched_, *pairs, matched_t.get(), &matched_updated, &matched_deleted));
  }
  if (!by_source_.empty()) {
    arrow::Int64Builder unmatched;
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      if (t_matches[i] == 0) ARROW_RETURN_NOT_OK(unmatched.Append(i));
    }
    ARROW_ASSIGN_OR_RAISE(auto unmatched_rows, unmatched.Finish());
    ARROW_ASSIGN_OR_RAISE(auto input, take(*t, *unmatched_rows));
    ARROW_RETURN_NOT_OK(apply(by_source_, *input, static_cast<const arrow::Int64Array*>(unmatched_rows.get()),
                              &source_updated, &source_deleted));
  }
  if (!not_matched_.empty()) {
    arrow::BooleanBuilder unmatched;
    for (int64_t i = 0; i < s->num_rows(); ++i) ARROW_RETURN_NOT_OK(unmatched.Append(s_matched[i] == 0));
    ARROW_ASSIGN_OR_RAISE(auto mask, unmatched.Finish());
    ARROW_ASSIGN_OR_RAISE(auto input, filter_rows(*s, *mask));
    int64_t none = 0;
    ARROW_RETURN_NOT_OK(apply(not_matched_, *input, nullptr, &inserted, &none));
  }
  // The kept rows of every rewritten file are copied into the new files; with deletion
  // vectors, the changed rows are marked deleted instead and nothing is copied.
  const bool vectors = rewrite->uses_deletion_vectors();
  if (vectors) {
    std::vector<std::vector<int64_t>> changed(candidates.size());
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      const size_t f = file_of(i);
      if (t_state[i] == kChanged) changed[f].push_back(i - (f == 0 ? 0 : file_end[f - 1]));
    }
    for (size_t f = 0; f < candidates.size(); ++f) {
      ARROW_RETURN_NOT_OK(rewrite->mark_deleted(candidates[f], changed[f]));
      file_touched[f] = 0;
    }
  }
  int64_t copied = 0;
  arrow::Int64Builder keep;
  for (int64_t i = 0; i < t->num_rows(); ++i) {
    if (t_state[i] == kKept && file_touched[file_of(i)]) ARROW_RETURN_NOT_OK(keep.Append(i));
  }
  ARROW_ASSIGN_OR_RAISE(auto keep_rows, keep.Finish());
  copied = keep_rows->length();
  if (copied > 0) {
    ARROW_ASSIGN_OR_RAISE(auto kept, take(*t, *keep_rows));
    ARROW_RETURN_NOT_OK(rewrite->write(*arrow::RecordBatch::Make(table_schema_, kept->num_rows(), kept->columns())));
  }
  delta::ReadSet read;
  read.predicates = predicates;
  read.isolation = delta::isolation_level(target_.snapshot->metadata());
  for (size_t f = 0; f < candidates.size(); ++f) {
    read.files.insert(candidates[f].path);
    if (file_touched[f]) rewrite->remove(candidates[f]);
  }
  const int64_t updated = matched_updated + source_updated, deleted = matched_deleted + source_deleted;
  nlohmann::json metrics = {
      {"numSourceRows", std::to_string(s->num_rows())},
      {"numTargetRowsInserted", std::to_string(inserted)},
      {"numTargetRowsUpdated", std::to_string(updated)},
      {"numTargetRowsMatchedUpdated", std::to_string(matched_updated)},
      {"numTargetRowsNotMatchedBySourceUpdated", std::to_string(source_updated)},
      {"numTargetRowsDeleted", std::to_string(deleted)},
      {"numTargetRowsMatchedDeleted", std::to_string(matched_deleted)},
      {"numTargetRowsNotMatchedBySourceDeleted", std::to_string(source_deleted)},
      {"numTargetRowsCopied", std::to_string(copied)},
      {"numOutputRows", std::to_string(inserted + updated + copied)},
      {"numTargetChangeFilesAdded", "0"},
      {"numTargetDeletionVectorsAdded", "0"},
      {"numTargetDeletionVectorsRemoved", "0"},
      {"numTargetDeletionVectorsUpdated", "0"}};
  TableRewrite::Names names;
  names.files_added = "numTargetFilesAdded";
  names.files_removed = "numTargetFilesRemoved";
  names.bytes_added = "numTargetBytesAdded";
  names.bytes_removed = "numTargetBytesRemoved";
  names.change_files = "numTargetChangeFilesAdded";
  names.change_bytes = "numTargetChangeFileBytes";
  names.vectors_added = "numTargetDeletionVectorsAdded";
  names.vectors_removed = "numTargetDeletionVectorsRemoved";
  names.vectors_updated = "numTargetDeletionVectorsUpdated";  // files with vectors: not removed
  return rewrite->commit("MERGE", history_parameters(), std::move(metrics), std::move(read), names);
}

}  // namespace

arrow::Result<DmlOutcome> run_merge(const sql::MergeStatement& statement, const sql::SourceFile& file,
                                    const DmlTarget& target, const std::shared_ptr<arrow::Table>& source) {
  return MergeRun(statement, file, target, source).run();
}

}  // namespace sluice::dml
