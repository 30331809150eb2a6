// Planning and running SELECT queries over Arrow data.
#include "sluice/exec/select_plan.h"
#include "sluice/exec/table_changes_binding.h"
#include "sluice/exec/json_functions.h"
#include "sluice/exec/select_plan_internal.h"
#include "sluice/exec/select_plan_join_spec.h"
#include "sluice/exec/functions/batch_clock.h"
#include "sluice/exec/generators.h"
#include "sluice/exec/row_operators.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <optional>
#include <set>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;
using sql::Expr;
using sql::ExprKind;
using plan_detail::clone;
using plan_detail::column;
using plan_detail::contains_aggregate;
using plan_detail::is_aggregate_call;

namespace {

// How many SelectPlan::make calls are under way on this thread: views, CTEs, FROM-subqueries
// and join sides are planned by recursion, and kMaxInlineDepth bounds it.
thread_local int t_plan_depth = 0;

struct PlanDepth {
  PlanDepth() { ++t_plan_depth; }
  ~PlanDepth() { --t_plan_depth; }
  PlanDepth(const PlanDepth&) = delete;
  PlanDepth& operator=(const PlanDepth&) = delete;
};

// The limit error at `at`; `what` says what was being inlined there ("reading 'v'").
arrow::Status too_deep(const sql::SourceFile& file, sql::Location at, const std::string& what) {
  return arrow::Status::Invalid(sql::format_error(
      file, at,
      fmt::format("{} nests more than {} views, CTEs and subqueries inside each other, which sluice does not "
                  "plan (the limit keeps planning within a bounded stack): store an intermediate result as a "
                  "streaming table or materialized view, or flatten the query",
                  what, SelectPlan::kMaxInlineDepth)));
}

// The CTEs of one WITH, each seeing only the ones before it (and the outer names): the first
// `visible` of `ctes`. Flat, so that thousands of CTEs need no deeper call chain than one.
SelectPlan::InlineLookup cte_lookup(std::shared_ptr<const std::vector<const sql::Cte*>> ctes, size_t visible,
                                    const sql::SourceFile* file, SelectPlan::InlineLookup outer) {
  if (visible == 0) return outer;
  return [ctes, visible, file, outer](const std::string& n) -> std::optional<SelectPlan::InlineQuery> {
    for (size_t i = visible; i-- > 0;) {
      const sql::Cte& cte = *(*ctes)[i];
      if (cte.name == n) return SelectPlan::InlineQuery{cte.query.get(), file, cte_lookup(ctes, i, file, outer)};
    }
    return outer ? outer(n) : std::nullopt;
  };
}

// The Spark-like name of an unaliased select item.
std::string item_name(const sql::SelectItem& item, const BoundExpression& bound) {
  if (!item.alias.empty()) return item.alias;
  if (item.expr->kind == ExprKind::kColumn || item.expr->kind == ExprKind::kField) return bound.name;
  return sql::to_string(*item.expr);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> run_stage(const Stage& stage, std::shared_ptr<arrow::RecordBatch> batch,
                                                             std::shared_ptr<arrow::Array>* row_ids = nullptr) {
  const ScopedBatchTime batch_time;  // current_timestamp() is one instant for the whole batch
  if (stage.where) {
    ARROW_ASSIGN_OR_RAISE(auto mask, evaluate(*stage.where, *batch));
    ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(batch, mask));
    batch = filtered.record_batch();
    if (row_ids) {
      ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(*row_ids, mask));
      *row_ids = kept.make_array();
    }
  }
  arrow::ArrayVector columns;
  for (const auto& p : stage.projections) {
    ARROW_ASSIGN_OR_RAISE(auto column, evaluate(p, *batch));
    columns.push_back(std::move(column));
  }
  if (stage.generator) return expand_generator(*stage.generator, stage.output, columns, batch->num_rows(), row_ids);
  return arrow::RecordBatch::Make(stage.output, batch->num_rows(), std::move(columns));
}

}  // namespace

namespace plan_detail {

bool is_aggregate_call(const Expr& e) {
  if (e.kind != ExprKind::kFunction) return false;
  static const std::set<std::string> kAggs = {"count", "sum", "avg", "mean", "min", "max", "first",
                                              "last", "stddev", "stddev_samp", "approx_count_distinct",
                                              "count_if", "bool_and", "every", "bool_or", "some", "any",
                                              "any_value", "collect_list", "collect_set", "max_by", "min_by",
                                              "percentile_approx", "approx_percentile"};
  return kAggs.count(to_lower(e.name)) > 0;
}

bool contains_aggregate(const Expr& e) {
  if (is_aggregate_call(e)) return true;
  for (const auto& a : e.args) {
    if (contains_aggregate(*a)) return true;
  }
  return false;
}

sql::ExprPtr clone(const Expr& e) {
  auto c = std::make_unique<Expr>();
  c->kind = e.kind;
  c->loc = e.loc;
  c->parts = e.parts;
  c->except = e.except;
  c->name = e.name;
  c->op = e.op;
  c->literal_type = e.literal_type;
  c->value = e.value;
  c->type_name = e.type_name;
  c->query = e.query;
  c->distinct = e.distinct;
  c->negated = e.negated;
  c->has_operand = e.has_operand;
  c->has_else = e.has_else;
  c->parenthesized = e.parenthesized;
  for (const auto& a : e.args) c->args.push_back(clone(*a));
  return c;
}

sql::ExprPtr column(const std::string& name, sql::Location loc) {
  auto c = std::make_unique<Expr>();
  c->kind = ExprKind::kColumn;
  c->loc = loc;
  c->parts = {name};
  return c;
}

}  // namespace plan_detail

std::vector<cp::Aggregate> acero_aggregates(const AggregateSpec& agg, bool grouped) {
  std::vector<cp::Aggregate> aggregates;
  for (size_t a = 0; a < agg.functions.size(); ++a) {
    std::string function = grouped ? agg.functions[a] : agg.functions[a].substr(5);  // "count", ...
    std::shared_ptr<cp::FunctionOptions> options;
    if (function.find("count") != std::string::npos && function.find("all") == std::string::npos) {
      options = std::make_shared<cp::CountOptions>(cp::CountOptions::ONLY_VALID);
    }
    if (function.find("stddev") != std::string::npos) options = std::make_shared<cp::VarianceOptions>(1);
    if (function.find("sum") != std::string::npos || function.find("mean") != std::string::npos ||
        function.find("min") != std::string::npos || function.find("max") != std::string::npos) {
      options = std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/1);
    }
    if (list_aggregate(agg, a)) {  // each group's row numbers, finished by finish_list_aggregate
      aggregates.emplace_back("hash_list", nullptr, arrow::FieldRef("__row"), fmt::format("__a{}", a));
    } else if (function == "count_all" || function == "hash_count_all") {
      aggregates.emplace_back(function, std::move(options), std::vector<arrow::FieldRef>{}, fmt::format("__a{}", a));
    } else {
      aggregates.emplace_back(function, std::move(options), arrow::FieldRef(fmt::format("__in{}", a)), fmt::format("__a{}", a));
    }
  }
  return aggregates;
}

std::string SelectPlan::join_type() const { return join_ ? join_->sql_type : std::string(); }

bool SelectPlan::streams_on_left_only() const {
  if (!join_) return true;
  for (const auto& s : join_->right->sources()) {
    if (s.streaming) return false;
  }
  return join_->left->streams_on_left_only();
}

std::vector<PlanSource> SelectPlan::sources() const {
  if (!union_.empty()) {
    std::vector<PlanSource> out;
    for (const auto& b : union_) {
      auto more = b.sources();
      out.insert(out.end(), more.begin(), more.end());
    }
    return out;
  }
  if (!join_) return {source_};
  auto out = join_->left->sources();
  auto right = join_->right->sources();
  out.insert(out.end(), right.begin(), right.end());
  return out;
}

namespace {

// The qualified name ("a.ts") of a side's WATERMARK column in the side's output.
std::string qualified_time_column(const arrow::Schema& side, const std::string& column) {
  for (const auto& f : side.fields()) {
    const auto& n = f->name();
    if (n.size() > column.size() + 1 && n.compare(n.size() - column.size(), column.size(), column) == 0 &&
        n[n.size() - column.size() - 1] == '.') {
      return n;
    }
  }
  return {};
}

// From ON's non-equality conjuncts, the bound on right_time - left_time: each of
// `x BETWEEN y AND z`, `x >= y`, `x > y`, `x <= y`, `x < y` over terms `time [+|- INTERVAL]`
// narrows it (strict comparisons count as non-strict: the bound only decides when state can
// go, so a looser bound stays correct). None unless both ends are bounded.
arrow::Result<std::optional<JoinTimeBound>> join_time_bound_from(const std::vector<const Expr*>& conjuncts,
                                                                 const std::string& left_time,
                                                                 const std::string& right_time,
                                                                 const ExpressionBinder& binder) {
  struct Term {
    std::string column;
    int64_t offset = 0;
  };
  std::function<std::optional<Term>(const Expr&)> term = [&](const Expr& e) -> std::optional<Term> {
    if (e.kind == ExprKind::kColumn) {
      auto b = binder.bind(e);
      if (!b.ok() || !b->expr.field_ref() || !b->expr.field_ref()->name()) return std::nullopt;
      return Term{*b->expr.field_ref()->name(), 0};
    }
    if (e.kind == ExprKind::kBinary && (e.op == "+" || e.op == "-")) {
      auto t = term(*e.args[0]);
      auto d = binder.bind(*e.args[1]);
      if (!t || !d.ok() || d->type->id() != arrow::Type::DURATION || !d->expr.literal()) return std::nullopt;
      const int64_t v = static_cast<const arrow::DurationScalar&>(*d->expr.literal()->scalar()).value;
      t->offset += e.op == "+" ? v : -v;
      return t;
    }
    return std::nullopt;
  };
  std::optional<int64_t> lower, upper;
  auto at_least = [&](const Expr& x, const Expr& y) {  // x >= y
    auto a = term(x), b = term(y);
    if (!a || !b) return;
    if (a->column == right_time && b->column == left_time) {  // R - L >= b.offset - a.offset
      lower = std::max(lower.value_or(INT64_MIN), b->offset - a->offset);
    } else if (a->column == left_time && b->column == right_time) {  // R - L <= a.offset - b.offset
      upper = std::min(upper.value_or(INT64_MAX), a->offset - b->offset);
    }
  };
  for (const Expr* c : conjuncts) {
    if (c->kind == ExprKind::kBetween && !c->negated) {
      at_least(*c->args[0], *c->args[1]);
      at_least(*c->args[2], *c->args[0]);
    } else if (c->kind == ExprKind::kBinary && (c->op == ">=" || c->op == ">")) {
      at_least(*c->args[0], *c->args[1]);
    } else if (c->kind == ExprKind::kBinary && (c->op == "<=" || c->op == "<")) {
      at_least(*c->args[1], *c->args[0]);
    }
  }
  if (!lower || !upper) return std::nullopt;
  return JoinTimeBound{left_time, right_time, *lower, *upper};
}

}  // namespace

arrow::Result<SelectPlan> SelectPlan::make_relation(const sql::TableRef& ref, const sql::SourceFile& file,
                                                   const SchemaLookup& schema_of, const InlineLookup& inline_of,
                                           const TableFunctionBinder& bind_function) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  if (ref.kind == sql::TableRefKind::kJoin) {
    static const std::map<std::string, arrow::acero::JoinType> kTypes = {
        {"INNER", arrow::acero::JoinType::INNER}, {"LEFT", arrow::acero::JoinType::LEFT_OUTER},
        {"RIGHT", arrow::acero::JoinType::RIGHT_OUTER}, {"FULL", arrow::acero::JoinType::FULL_OUTER},
        {"LEFT_SEMI", arrow::acero::JoinType::LEFT_SEMI}, {"LEFT_ANTI", arrow::acero::JoinType::LEFT_ANTI}};
    auto type = kTypes.find(ref.join_type);
    if (type == kTypes.end()) return fail(ref.loc, fmt::format("{} JOIN is not supported yet", ref.join_type));
    auto spec = std::make_shared<JoinSpec>();
    spec->type = type->second;
    spec->sql_type = ref.join_type;
    ARROW_ASSIGN_OR_RAISE(auto left, make_relation(*ref.left, file, schema_of, inline_of, bind_function));
    ARROW_ASSIGN_OR_RAISE(auto right, make_relation(*ref.right, file, schema_of, inline_of, bind_function));
    const auto& ls = left.output_schema();
    const auto& rs = right.output_schema();
    const bool semi = ref.join_type == "LEFT_SEMI" || ref.join_type == "LEFT_ANTI";
    arrow::FieldVector fields = ls->fields();
    const bool nullable_right = ref.join_type == "LEFT" || ref.join_type == "FULL";
    const bool nullable_left = ref.join_type == "RIGHT" || ref.join_type == "FULL";
    if (nullable_left) {
      for (auto& f : fields) f = f->WithNullable(true);
    }
    if (!semi) {
      for (const auto& f : rs->fields()) fields.push_back(nullable_right ? f->WithNullable(true) : f);
    }
    auto both = arrow::schema([&] {
      auto all = ls->fields();
      for (const auto& f : rs->fields()) all.push_back(f);
      return all;
    }());
    // ON: equalities between a left and a right column become hash keys; the rest filters.
    std::vector<const Expr*> conjuncts;
    std::vector<std::string> using_keys = ref.using_columns;
    std::function<void(const Expr&)> split = [&](const Expr& e) {
      if (e.kind == ExprKind::kBinary && e.op == "AND") {
        split(*e.args[0]);
        split(*e.args[1]);
      } else {
        conjuncts.push_back(&e);
      }
    };
    if (ref.on) split(*ref.on);
    ExpressionBinder left_binder(file, ls), right_binder(file, rs), both_binder(file, both);
    std::vector<const Expr*> residual;
    for (const Expr* c : conjuncts) {
      bool keyed = false;
      if (c->kind == ExprKind::kBinary && c->op == "=" && c->args[0]->kind == ExprKind::kColumn &&
          c->args[1]->kind == ExprKind::kColumn) {
        for (int flip = 0; flip < 2 && !keyed; ++flip) {
          auto l = left_binder.bind(*c->args[flip]);
          auto r = right_binder.bind(*c->args[1 - flip]);
          if (l.ok() && r.ok() && l->expr.field_ref() && r->expr.field_ref()) {
            auto nested = [](const arrow::FieldRef& ref) { return ref.IsNested(); };
            if (nested(*l->expr.field_ref()) || nested(*r->expr.field_ref())) {
              // Acero joins on top-level columns only.
              return fail(c->loc, "a join key must be a column of its side, not a struct field: select it "
                                  "as a column in a subquery first (SELECT o.customer_id AS customer_id ...)");
            }
            spec->left_keys.push_back(*l->expr.field_ref());
            spec->right_keys.push_back(*r->expr.field_ref());
            keyed = true;
          }
        }
      }
      if (!keyed) residual.push_back(c);
    }
    for (const auto& column : using_keys) {
      auto find = [&](const arrow::Schema& schema) -> std::optional<arrow::FieldRef> {
        for (const auto& f : schema.fields()) {
          const auto& n = f->name();
          if (n == column || (n.size() > column.size() && n.compare(n.size() - column.size(), column.size(), column) == 0 &&
                              n[n.size() - column.size() - 1] == '.')) {
            return arrow::FieldRef(n);
          }
        }
        return std::nullopt;
      };
      auto l = find(*ls);
      auto r = find(*rs);
      if (!l || !r) return fail(ref.loc, fmt::format("USING column '{}' is not on both sides of the join", column));
      spec->left_keys.push_back(*l);
      spec->right_keys.push_back(*r);
    }
    if (spec->left_keys.empty()) {
      return fail(ref.loc, "a join needs at least one equality between the two sides (ON a.x = b.y)");
    }
    if (!residual.empty()) {
      cp::Expression filter = cp::literal(true);
      for (const Expr* c : residual) {
        ARROW_ASSIGN_OR_RAISE(auto b, both_binder.bind(*c));
        filter = cp::and_(filter, b.expr);
      }
      spec->filter = filter;
    }
    if (left.watermark_ && right.watermark_) {
      const auto lt = qualified_time_column(*ls, left.watermark_->column);
      const auto rt = qualified_time_column(*rs, right.watermark_->column);
      if (!lt.empty() && !rt.empty()) {
        ARROW_ASSIGN_OR_RAISE(spec->time_bound, join_time_bound_from(residual, lt, rt, both_binder));
      }
    }
    spec->left = std::make_shared<SelectPlan>(std::move(left));
    spec->right = std::make_shared<SelectPlan>(std::move(right));
    SelectPlan plan;
    plan.join_ = std::move(spec);
    plan.source_ = plan.join_->left->source_;
    Stage identity;
    auto joined = arrow::schema(fields);
    ExpressionBinder binder(file, joined);
    for (const auto& f : fields) {
      auto c = std::make_unique<Expr>();
      c->kind = ExprKind::kColumn;
      c->loc = ref.loc;
      c->parts = {f->name()};
      ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*c));
      identity.projections.push_back(std::move(b));
    }
    identity.output = joined;
    plan.stages_.push_back(std::move(identity));
    return plan;
  }
  // A single relation: plan "SELECT * FROM ref", then name its columns qualifier.column.
  std::string qualifier = ref.alias;
  if (qualifier.empty() && !ref.name.empty()) qualifier = ref.name.back();
  if (qualifier.empty()) return fail(ref.loc, "a subquery in a join needs an alias");
  sql::Query q;
  q.loc = ref.loc;
  sql::Select sel;
  sel.loc = ref.loc;
  auto star = std::make_unique<Expr>();
  star->kind = ExprKind::kStar;
  star->loc = ref.loc;
  sel.items.push_back({std::move(star), "", {}});
  auto copy = std::make_unique<sql::TableRef>();
  copy->kind = ref.kind;
  copy->loc = ref.loc;
  copy->name = ref.name;
  copy->stream = ref.stream;
  for (const auto& a : ref.args) copy->args.push_back(clone(*a));
  copy->query = ref.query;
  copy->alias = ref.alias;
  if (ref.watermark) {  // a side's own WATERMARK (stream-stream joins)
    copy->watermark = sql::Watermark{clone(*ref.watermark->column), clone(*ref.watermark->delay), ref.watermark->loc};
  }
  sel.from = std::move(copy);
  q.selects.push_back(std::move(sel));
  ARROW_ASSIGN_OR_RAISE(auto plan, make(q, file, schema_of, inline_of, bind_function));
  auto& last = plan.stages_.back();
  arrow::FieldVector renamed;
  for (const auto& f : last.output->fields()) renamed.push_back(f->WithName(qualifier + "." + f->name()));
  last.output = arrow::schema(renamed);
  return plan;
}

namespace {
// SELECT DISTINCT (every output column) and DISTINCT ON (its columns) over snapshots group rows
// by Acero's hash aggregate, whose keys cannot be ARRAY, MAP or STRUCT values: refused here, at
// the column, rather than at run time with no position. A stream's dedup (StreamDedup) checks
// its own key types. Kept out of make_select's frame.
[[gnu::noinline]] arrow::Status check_distinct_keys(const sql::Select& s, const SelectPlan& plan,
                                                    const sql::SourceFile& file) {
  if (!s.distinct && s.distinct_on.empty()) return arrow::Status::OK();
  for (const auto& source : plan.sources()) {
    if (source.streaming) return arrow::Status::OK();
  }
  const auto& out = plan.output_schema();
  auto nested = [](const arrow::DataType& t) {
    return t.id() == arrow::Type::LIST || t.id() == arrow::Type::LARGE_LIST || t.id() == arrow::Type::FIXED_SIZE_LIST ||
           t.id() == arrow::Type::MAP || t.id() == arrow::Type::STRUCT;
  };
  auto refuse = [&](sql::Location at, const arrow::Field& f, const char* what) {
    return arrow::Status::NotImplemented(sql::format_error(
        file, at,
        fmt::format("{} cannot compare column '{}' of type {} yet (ARRAY, MAP and STRUCT values are not "
                    "supported as its keys): leave it out, or compare a scalar made from it (to_json({}))",
                    what, f.name(), sql::sql_type_name(*f.type()), f.name())));
  };
  if (!s.distinct_on.empty()) {
    for (size_t k = 0; k < s.distinct_on.size() && k < plan.distinct_on().size(); ++k) {
      const auto& f = out->GetFieldByName(plan.distinct_on()[k]);
      if (f && nested(*f->type())) return refuse(s.distinct_on[k]->loc, *f, "SELECT DISTINCT ON");
    }
    return arrow::Status::OK();
  }
  const auto& locations = plan.output_locations();
  for (int c = 0; c < out->num_fields(); ++c) {
    const auto& f = out->field(c);
    if (!nested(*f->type())) continue;
    const bool located = locations.size() == static_cast<size_t>(out->num_fields());
    return refuse(located ? locations[static_cast<size_t>(c)] : s.loc, *f, "SELECT DISTINCT");
  }
  return arrow::Status::OK();
}

// Spark's numeric precedence (byte < short < int < long < float < double); 0: not such a type.
int numeric_rank(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::INT8: return 1;
    case arrow::Type::INT16: return 2;
    case arrow::Type::INT32: return 3;
    case arrow::Type::INT64: return 4;
    case arrow::Type::FLOAT: return 5;
    case arrow::Type::DOUBLE: return 6;
    default: return 0;
  }
}

}  // namespace

arrow::Result<SelectPlan> SelectPlan::make_select(const sql::Select& s, const sql::SourceFile& file,
                                                  const SchemaLookup& schema_of, const InlineLookup& lookup,
                                                  const TableFunctionBinder& bind_function) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  if (!s.from) return fail(s.loc, "a dataset's query needs FROM");

  SelectPlan plan;
  plan.distinct_ = s.distinct;
  std::shared_ptr<arrow::Schema> schema;
  std::set<std::string> qualifiers;
  const sql::TableRef& from = *s.from;
  if (!from.alias.empty()) qualifiers.insert(from.alias);
  bool reads_dataset = false;  // this select's WHERE is the first filter of the dataset's rows
  switch (from.kind) {
    case sql::TableRefKind::kTable: {
      std::string name;
      for (const auto& p : from.name) name += (name.empty() ? "" : ".") + p;
      if (auto inlined = lookup ? lookup(name) : std::nullopt) {
        if (t_plan_depth >= kMaxInlineDepth) return too_deep(file, from.loc, fmt::format("reading '{}'", name));
        ARROW_ASSIGN_OR_RAISE(auto inner, make(*inlined->query, *inlined->file, schema_of, inlined->scope, bind_function));
        if (!inner.union_.empty()) {  // as for a FROM subquery, below
          return fail(from.loc, fmt::format("'{}' holds UNION ALL; reading it inline is not supported "
                                            "yet: store it as a materialized view or table and read that",
                                            name));
        }
        // As for a FROM subquery, below: inlining keeps only the source and the row stages, so a
        // DISTINCT / DISTINCT ON of the read query would be dropped; refused instead.
        if (inner.aggregates() || inner.distinct_ || !inner.distinct_on_.empty() || !inner.order_by_.empty() ||
            inner.limit_) {
          return fail(from.loc, fmt::format("'{}' aggregates, deduplicates (DISTINCT / DISTINCT ON), orders or "
                                            "limits; reading it inline is not supported yet: store it as a "
                                            "materialized view or table and read that",
                                            name));
        }
        plan.source_ = inner.source_;
        plan.join_ = inner.join_;
        plan.stages_ = inner.stages_;
        schema = inner.output_schema();
        qualifiers.insert(name);
        break;
      }
      auto found = schema_of(name);
      if (!found.ok()) return fail(from.loc, found.status().message());
      schema = *found;
      plan.source_ = {PlanSource::Kind::kDataset, name, from.stream, {}, schema, from.loc};
      qualifiers.insert(name);
      reads_dataset = true;
      break;
    }
    case sql::TableRefKind::kFunction: {
      if (is_table_changes(from)) {  // a dataset's change feed: bound here, as a dataset is
        ARROW_ASSIGN_OR_RAISE(plan.source_, bind_table_changes(from, file, schema_of));
        schema = plan.source_.schema;
        qualifiers.insert(plan.source_.name);
        break;
      }
      // Bound by the caller (read_kafka: pipeline/read_kafka_binding), so that planning knows
      // no source system and contacts none.
      if (!bind_function) {
        std::string name;
        for (const auto& p : from.name) name += (name.empty() ? "" : ".") + p;
        return fail(from.loc, fmt::format("table function {} is not supported here: read a dataset of the "
                                          "pipeline by its name", name));
      }
      ARROW_ASSIGN_OR_RAISE(auto src, bind_function(from, file));
      schema = src.schema;
      plan.source_ = std::move(src);
      break;
    }
    case sql::TableRefKind::kSubquery: {
      if (t_plan_depth >= kMaxInlineDepth) return too_deep(file, from.loc, "this subquery");
      ARROW_ASSIGN_OR_RAISE(auto inner, make(*from.query, file, schema_of, lookup, bind_function));
      // Inlining keeps one source and its stages: the other branches of a UNION ALL would be lost
      // (and its output stage, which has no projections, crashed the run).
      if (!inner.union_.empty()) {
        return fail(from.loc, "a subquery in FROM may not hold UNION ALL yet: define the union as its own "
                              "dataset (a view or table) and read that");
      }
      if (inner.aggregates() || inner.distinct_ || !inner.distinct_on_.empty() || !inner.order_by_.empty() || inner.limit_) {
        return fail(from.loc, "a subquery in FROM may not aggregate, deduplicate (DISTINCT), order or limit yet");
      }
      plan.source_ = inner.source_;
      plan.join_ = inner.join_;
      plan.stages_ = inner.stages_;
      plan.watermark_ = inner.watermark_;
      schema = inner.output_schema();
      break;
    }
    case sql::TableRefKind::kJoin: {
      ARROW_ASSIGN_OR_RAISE(auto joined, make_relation(from, file, schema_of, lookup, bind_function));
      plan.join_ = joined.join_;
      plan.source_ = joined.source_;
      plan.stages_ = joined.stages_;
      schema = joined.output_schema();
      break;
    }
  }
  ARROW_RETURN_NOT_OK(plan_lateral_views(s, file, schema, qualifiers, plan.stages_));
  ExpressionBinder binder(file, schema, qualifiers);
  if (from.watermark) {
    // Type-checked now; the event-time runtime executes it.
    const auto& w = *from.watermark;
    ARROW_ASSIGN_OR_RAISE(auto column, binder.bind(*w.column));
    if (column.type->id() != arrow::Type::TIMESTAMP) {
      return fail(w.column->loc, fmt::format("WATERMARK needs a TIMESTAMP column, not {}", sql::sql_type_name(*column.type)));
    }
    ARROW_ASSIGN_OR_RAISE(auto delay, binder.bind(*w.delay));
    if (delay.type->id() != arrow::Type::DURATION) return fail(w.delay->loc, "WATERMARK DELAY OF needs an INTERVAL");
    plan.watermark_ = WatermarkSpec{column.name,
                                    static_cast<const arrow::DurationScalar&>(*delay.expr.literal()->scalar()).value,
                                    w.loc};
  }
  Stage stage;
  if (s.where) {
    ARROW_ASSIGN_OR_RAISE(auto where, binder.bind(*s.where));
    if (where.type->id() != arrow::Type::BOOL) {
      return fail(s.where->loc, fmt::format("WHERE needs a BOOLEAN, not {}", sql::sql_type_name(*where.type)));
    }
    stage.where = where;
    if (reads_dataset && plan.stages_.empty()) plan.source_.filter = where.expr;
  }
  bool aggregate = !s.group_by.empty() || (s.having != nullptr);
  for (const auto& item : s.items) aggregate = aggregate || contains_aggregate(*item.expr);
  for (const auto& item : s.items) {
    if (aggregate && is_generator_call(*item.expr)) {
      return fail(item.expr->loc, fmt::format("{} in a SELECT that aggregates is not supported yet: generate the rows "
                                              "in a subquery or a LATERAL VIEW, then aggregate them",
                                              to_lower(item.expr->name)));
    }
    if (!item.aliases.empty() && !is_generator_call(*item.expr)) {
      return fail(item.expr->loc, "AS (a, b, ...) names the columns of a generator (explode, posexplode, inline); "
                                  "this item is not one: give it one name");
    }
  }

  auto identity = [&](Stage& st) -> arrow::Status {
    for (const auto& f : schema->fields()) {
      ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*column(f->name(), s.loc)));
      st.projections.push_back(b);
    }
    st.output = schema;
    return arrow::Status::OK();
  };

  if (!aggregate) {
    arrow::FieldVector fields;
    for (const auto& item : s.items) {
      if (item.expr->kind == ExprKind::kStar) {
        const auto& ex = item.expr->except;
        std::string qualifier;
        for (const auto& p : item.expr->parts) qualifier += (qualifier.empty() ? "" : ".") + p;
        auto struct_column = qualifier.empty() ? nullptr : schema->GetFieldByName(qualifier);
        if (struct_column && struct_column->type()->id() == arrow::Type::STRUCT) {
          // s.* expands a struct column into its fields.
          for (const auto& child : struct_column->type()->fields()) {
            if (std::find(ex.begin(), ex.end(), child->name()) != ex.end()) continue;
            auto ref = column(qualifier, item.expr->loc);
            auto field = std::make_unique<Expr>();
            field->kind = ExprKind::kField;
            field->loc = item.expr->loc;
            field->name = child->name();
            field->args.push_back(std::move(ref));
            ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*field));
            stage.projections.push_back(b);
            fields.push_back(arrow::field(child->name(), b.type));
            plan.output_locations_.push_back(item.expr->loc);
          }
          continue;
        }
        for (const auto& f : schema->fields()) {
          // t.* of a join keeps t's columns; columns lose their "t." prefix in the output.
          std::string name = f->name();
          if (auto dot = name.find('.'); dot != std::string::npos) {
            if (!qualifier.empty() && name.substr(0, dot) != qualifier) continue;
            name = name.substr(dot + 1);
          }
          if (std::find(ex.begin(), ex.end(), name) != ex.end()) continue;
          ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*column(f->name(), item.expr->loc)));
          stage.projections.push_back(b);
          fields.push_back(arrow::field(name, b.type));
          plan.output_locations_.push_back(item.expr->loc);
        }
        for (const auto& name : item.expr->except) {
          // Over a join, t.* EXCEPT (k) names t's column k, held as "t.k" (Databricks SQL's
          // spelling of Spark's join on column names: docs/decisions.md, "(df)").
          if (!schema->GetFieldByName(name) &&
              (qualifier.empty() || !schema->GetFieldByName(qualifier + "." + name))) {
            return fail(item.expr->loc, fmt::format("EXCEPT names '{}', which is not a column", name));
          }
        }
        continue;
      }
      if (is_generator_call(*item.expr)) {
        if (stage.generator) {
          return fail(item.expr->loc, "only one generator is allowed per SELECT, as in Spark: put the other in a "
                                      "LATERAL VIEW (FROM t LATERAL VIEW explode(a) v AS x)");
        }
        std::vector<std::string> names = item.aliases;
        if (!item.alias.empty()) names = {item.alias};
        ARROW_ASSIGN_OR_RAISE(auto g, bind_generator(*item.expr, false, names, binder, file));
        g.spec.argument = stage.projections.size();
        stage.projections.push_back(std::move(g.argument));
        for (const auto& f : g.fields) {
          fields.push_back(f);
          plan.output_locations_.push_back(item.expr->loc);
        }
        stage.generator = g.spec;
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*item.expr));
      fields.push_back(arrow::field(item_name(item, b), b.type));
      stage.projections.push_back(std::move(b));
      plan.output_locations_.push_back(item.expr->loc);
    }
    stage.output = arrow::schema(fields);
    if (!plan.stages_.empty() && !from.watermark && !plan.stages_.back().generator) {
      // This stage (and a WATERMARK on it, hence none) is the only reader of the one before:
      // a from_json there decodes only the struct fields read here (docs/decisions.md).
      std::vector<const cp::Expression*> readers;
      if (stage.where) readers.push_back(&stage.where->expr);
      for (const auto& p : stage.projections) readers.push_back(&p.expr);
      auto& before = plan.stages_.back().projections;
      for (size_t c = 0; c < before.size(); ++c) {
        ARROW_ASSIGN_OR_RAISE(before[c].expr, from_json_reading_only_used_fields(before[c].expr, static_cast<int>(c), readers));
      }
    }
    plan.stages_.push_back(std::move(stage));
  } else {
    ARROW_RETURN_NOT_OK(identity(stage));
    plan.stages_.push_back(std::move(stage));
    ARROW_RETURN_NOT_OK(plan_aggregation(s, file, binder, schema, plan));
  }
  for (const auto& on : s.distinct_on) {
    // DISTINCT ON (c, ...): selected columns, by their output names.
    const auto& out = plan.output_schema();
    int found = -1;
    if (on->kind == ExprKind::kColumn) {
      for (int f = 0; f < out->num_fields(); ++f) {
        if (to_lower(out->field(f)->name()) == to_lower(on->parts.back())) found = f;
      }
    }
    if (found < 0) {
      return fail(on->loc, fmt::format("DISTINCT ON takes columns of the select list; '{}' is not one of them",
                                       sql::to_string(*on)));
    }
    plan.distinct_on_.push_back(out->field(found)->name());
  }
  ARROW_RETURN_NOT_OK(check_distinct_keys(s, plan, file));
  return plan;
}

arrow::Result<SelectPlan> SelectPlan::make(const sql::Query& query, const sql::SourceFile& file,
                                           const SchemaLookup& schema_of, const InlineLookup& inline_of,
                                           const TableFunctionBinder& bind_function) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  PlanDepth depth;
  if (t_plan_depth > kMaxInlineDepth) return too_deep(file, query.loc, "this query");
  // CTEs are inlined where they are read; each may read the ones before it.
  InlineLookup lookup = inline_of;
  if (!query.ctes.empty()) {
    auto ctes = std::make_shared<std::vector<const sql::Cte*>>();
    for (const auto& cte : query.ctes) ctes->push_back(&cte);
    lookup = cte_lookup(std::move(ctes), query.ctes.size(), &file, inline_of);
  }
  SelectPlan plan;
  if (query.selects.size() == 1) {
    ARROW_ASSIGN_OR_RAISE(plan, make_select(query.selects[0], file, schema_of, lookup, bind_function));
  } else {
    // UNION ALL: branches by position, named and typed by the first one (as Spark does).
    for (size_t i = 0; i < query.selects.size(); ++i) {
      if (i > 0 && !query.union_all[i - 1]) {
        return fail(query.selects[i].loc, "UNION (DISTINCT) is not supported yet; use UNION ALL");
      }
      ARROW_ASSIGN_OR_RAISE(auto branch, make_select(query.selects[i], file, schema_of, lookup, bind_function));
      if (i > 0) {
        const auto& first = plan.union_.front().output_schema();
        const auto& mine = branch.output_schema();
        if (mine->num_fields() != first->num_fields()) {
          return fail(query.selects[i].loc, fmt::format("UNION ALL branches differ: {} columns here, {} in the first",
                                                        mine->num_fields(), first->num_fields()));
        }
        for (int c = 0; c < first->num_fields(); ++c) {
          if (!cp::CanCast(*mine->field(c)->type(), *first->field(c)->type())) {
            return fail(query.selects[i].loc, fmt::format("UNION ALL column {} is {} here but {} in the first branch",
                                                          c + 1, sql::sql_type_name(*mine->field(c)->type()),
                                                          sql::sql_type_name(*first->field(c)->type())));
          }
        }
      }
      plan.union_.push_back(std::move(branch));
    }
    plan.source_ = plan.union_.front().source_;
    plan.output_locations_ = plan.union_.front().output_locations_;
    Stage output;
    // Named by the first branch; a numeric column typed by Spark's wider type of the branches'
    // (int and double: double), so no branch's values are truncated into the first's type.
    arrow::FieldVector fields = plan.union_.front().output_schema()->fields();
    for (size_t b = 1; b < plan.union_.size(); ++b) {
      const auto& mine = plan.union_[b].output_schema();
      for (size_t c = 0; c < fields.size(); ++c) {
        const int have = numeric_rank(*fields[c]->type());
        const int other = numeric_rank(*mine->field(static_cast<int>(c))->type());
        if (have > 0 && other > have) fields[c] = fields[c]->WithType(mine->field(static_cast<int>(c))->type());
      }
    }
    output.output = arrow::schema(fields);
    plan.stages_.push_back(std::move(output));
  }
  // ORDER BY over the output columns (names or positions), LIMIT.
  const auto& out_schema = plan.output_schema();
  ExpressionBinder out_binder(file, out_schema);
  for (const auto& o : query.order_by) {
    const Expr* e = o.expr.get();
    sql::ExprPtr ref;
    if (e->kind == ExprKind::kLiteral && e->literal_type == "integer") {
      const auto ordinal = parse_int64(e->value, "position").ValueOr(0);
      if (ordinal < 1 || ordinal > out_schema->num_fields()) {
        return fail(e->loc, "ORDER BY position is out of range");
      }
      ref = column(out_schema->field(static_cast<int>(ordinal - 1))->name(), e->loc);
      e = ref.get();
    }
    ARROW_ASSIGN_OR_RAISE(auto b, out_binder.bind(*e));
    plan.order_by_.emplace_back(std::move(b), o.ascending);
    // Spark's default: ascending puts nulls first, descending puts them last.
    plan.nulls_first_.push_back(o.nulls_first.value_or(o.ascending));
  }
  if (query.limit) {
    if (query.limit->kind != ExprKind::kLiteral || query.limit->literal_type != "integer") {
      return fail(query.limit->loc, "LIMIT needs an integer");
    }
    const auto limit = parse_int64(query.limit->value, "LIMIT");
    if (!limit.ok() || *limit < 0) {
      return fail(query.limit->loc,
                  fmt::format("LIMIT {} is not a number of rows", quote_for_error(query.limit->value)));
    }
    plan.limit_ = *limit;
  }
  return plan;
}

const std::shared_ptr<arrow::Schema>& SelectPlan::output_schema() const { return stages_.back().output; }

arrow::Result<std::shared_ptr<arrow::RecordBatch>> SelectPlan::apply_row_stages(
    const arrow::RecordBatch& input, std::shared_ptr<arrow::Array>* input_rows) const {
  size_t n = stages_.size() - (aggregate_ ? 1 : 0);
  std::shared_ptr<arrow::RecordBatch> current = arrow::RecordBatch::Make(input.schema(), input.num_rows(), input.columns());
  if (input_rows) {
    arrow::Int64Builder ids;
    ARROW_RETURN_NOT_OK(ids.Reserve(input.num_rows()));
    for (int64_t i = 0; i < input.num_rows(); ++i) ids.UnsafeAppend(i);
    ARROW_ASSIGN_OR_RAISE(*input_rows, ids.Finish());
  }
  for (size_t i = 0; i < n; ++i) {
    ARROW_ASSIGN_OR_RAISE(current, run_stage(stages_[i], current, input_rows));
  }
  return current;
}

arrow::Result<std::shared_ptr<arrow::Table>> SelectPlan::run(const Reader& read) const {
  if (!union_.empty()) {
    const auto& schema = output_schema();
    arrow::RecordBatchVector batches;
    for (const auto& branch : union_) {
      ARROW_ASSIGN_OR_RAISE(auto part, branch.run(read));
      ARROW_ASSIGN_OR_RAISE(auto batch, part->CombineChunksToBatch());
      arrow::ArrayVector columns;
      for (int c = 0; c < schema->num_fields(); ++c) {
        auto column = batch->column(c);
        if (!column->type()->Equals(*schema->field(c)->type())) {
          ARROW_ASSIGN_OR_RAISE(column, cp::Cast(*column, schema->field(c)->type()));
        }
        columns.push_back(column);
      }
      batches.push_back(arrow::RecordBatch::Make(schema, batch->num_rows(), columns));
    }
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::Table::FromRecordBatches(schema, batches));
    return order_and_limit(all);
  }
  std::shared_ptr<arrow::Table> input;
  if (join_) {
    ARROW_ASSIGN_OR_RAISE(input, join_inputs(read));
  } else {
    ARROW_ASSIGN_OR_RAISE(input, read(source_));
  }
  return run_on(input);
}

}  // namespace sluice::exec
