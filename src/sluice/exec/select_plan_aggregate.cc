// Planning a SELECT that aggregates (GROUP BY, HAVING, aggregate calls, event-time window keys):
// SelectPlan::plan_aggregation, called by make_select (select_plan.cc) for such a SELECT.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/exec/list_aggregates.h"
#include "sluice/exec/select_plan.h"
#include "sluice/exec/select_plan_internal.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;
using plan_detail::clone;
using plan_detail::column;
using plan_detail::contains_aggregate;
using plan_detail::is_aggregate_call;
using sql::Expr;
using sql::ExprKind;

namespace {

// A list aggregate call (list_aggregates.h) bound, or refused where sluice cannot run it yet:
// over a stream without an event-time window (only a window's state keeps the rows) and
// without GROUP BY. Kept out of make_select's frame, as plan_lateral_views is.
[[gnu::noinline]] arrow::Result<BoundListAggregate> bind_list_call(const Expr& e, const ExpressionBinder& binder,
                                                                   const arrow::Schema& schema,
                                                                   const sql::SourceFile& file,
                                                                   const std::vector<PlanSource>& sources,
                                                                   bool no_group_by, bool windowed) {
  const std::string name = to_lower(e.name);
  for (const auto& source : sources) {
    if (source.streaming && !windowed) {
      return arrow::Status::Invalid(sql::format_error(
          file, e.loc,
          fmt::format("{} over a stream is supported only in a windowed aggregation (GROUP BY window(ts, ...) "
                      "with a WATERMARK), whose state keeps the window's rows; or compute it in a materialized "
                      "view that reads the table",
                      name)));
    }
  }
  if (no_group_by) {
    return arrow::Status::Invalid(sql::format_error(
        file, e.loc, fmt::format("{} without GROUP BY is not supported yet: add GROUP BY keys", name)));
  }
  return bind_list_aggregate(e, binder, schema, file);
}

}  // namespace

// A function of its own, out of make_select's frame: make_select recurses through views, CTEs and
// subqueries, so its frame bounds how deep a query plans within the stack (another translation
// unit: not inlined back into it).
arrow::Status SelectPlan::plan_aggregation(const sql::Select& s, const sql::SourceFile& file,
                                           const ExpressionBinder& binder,
                                           const std::shared_ptr<arrow::Schema>& schema, SelectPlan& plan) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  AggregateSpec agg;
  std::vector<std::string> key_texts;
  arrow::FieldVector grouped;
  for (size_t k = 0; k < s.group_by.size(); ++k) {
    const Expr* key = s.group_by[k].get();
    if (key->kind == ExprKind::kLiteral && key->literal_type == "integer") {
      const auto ordinal = parse_int64(key->value, "position").ValueOr(0);
      if (ordinal < 1 || static_cast<size_t>(ordinal) > s.items.size()) {
        return fail(key->loc, "GROUP BY position is out of range");
      }
      key = s.items[ordinal - 1].expr.get();
    }
    if (contains_aggregate(*key)) return fail(key->loc, "GROUP BY cannot use an aggregate");
    ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*key));
    key_texts.push_back(sql::to_string(*key));
    if (key->kind == ExprKind::kFunction && to_lower(key->name) == "window" && !agg.window &&
        (key->args.size() == 2 || key->args.size() == 3)) {
      // Event-time window key: streaming tables assign rows to windows themselves.
      WindowKeySpec w;
      w.key_index = k;
      w.loc = key->loc;
      ARROW_ASSIGN_OR_RAISE(w.time, binder.bind(*key->args[0]));
      ARROW_ASSIGN_OR_RAISE(w.size_micros, interval_micros(key->args[1]->value));
      w.slide_micros = w.size_micros;
      if (key->args.size() == 3) {
        ARROW_ASSIGN_OR_RAISE(w.slide_micros, interval_micros(key->args[2]->value));
        if (w.slide_micros > w.size_micros) {
          return fail(key->args[2]->loc, "a window's slide may not be longer than its duration");
        }
      }
      agg.window = std::move(w);
    } else if (key->kind == ExprKind::kFunction && to_lower(key->name) == "session_window" && !agg.window &&
               key->args.size() == 2) {
      // Session windows: events of a key less than `gap` apart, merged as they arrive.
      WindowKeySpec w;
      w.key_index = k;
      w.loc = key->loc;
      ARROW_ASSIGN_OR_RAISE(w.time, binder.bind(*key->args[0]));
      ARROW_ASSIGN_OR_RAISE(w.gap_micros, interval_micros(key->args[1]->value));
      agg.window = std::move(w);
    }
    grouped.push_back(arrow::field(fmt::format("__k{}", k), b.type));
    agg.key_inputs.push_back(std::move(b));
  }
  // Replace aggregate calls and group keys by columns of the grouped relation.
  std::vector<std::pair<std::string, std::shared_ptr<arrow::Field>>> agg_fields;
  std::function<arrow::Result<sql::ExprPtr>(const Expr&)> rewrite = [&](const Expr& e) -> arrow::Result<sql::ExprPtr> {
    std::string text = sql::to_string(e);
    for (size_t k = 0; k < key_texts.size(); ++k) {
      if (key_texts[k] == text) return column(fmt::format("__k{}", k), e.loc);
    }
    if (is_aggregate_call(e)) {
      const std::string fname = to_lower(e.name);
      std::string function;
      std::shared_ptr<arrow::DataType> type;
      BoundExpression input;
      bool star = e.args.size() == 1 && e.args[0]->kind == ExprKind::kStar;
      std::optional<ListAggregate> list;
      if (is_list_aggregate(fname)) {
        for (const auto& a : e.args) {
          if (contains_aggregate(*a)) return fail(a->loc, "aggregates cannot be nested");
        }
        ARROW_ASSIGN_OR_RAISE(auto bound, bind_list_call(e, binder, *schema, file, plan.sources(), s.group_by.empty(),
                                                              agg.window.has_value()));
        function = "hash_list";
        type = bound.type;
        input = std::move(bound.input);
        list = std::move(bound.aggregate);
      } else if (fname == "count" && (star || e.args.empty())) {
        function = "hash_count_all";
        type = arrow::int64();
      } else {
        if (e.args.size() != 1) return fail(e.loc, fmt::format("{} takes one argument", e.name));
        if (contains_aggregate(*e.args[0])) return fail(e.args[0]->loc, "aggregates cannot be nested");
        ARROW_ASSIGN_OR_RAISE(input, binder.bind(*e.args[0]));
        const auto& t = input.type;
        if (fname == "count") {
          function = e.distinct ? "hash_count_distinct" : "hash_count";
          type = arrow::int64();
        } else if (fname == "approx_count_distinct") {
          function = "hash_count_distinct";  // exact: within any approximation's error bound
          type = arrow::int64();
        } else if (fname == "sum") {
          if (!arrow::is_integer(t->id()) && !arrow::is_floating(t->id()) && t->id() != arrow::Type::DECIMAL128) {
            return fail(e.loc, fmt::format("sum needs numbers, not {}", sql::sql_type_name(*t)));
          }
          function = "hash_sum";
          type = arrow::is_integer(t->id()) ? arrow::int64() : arrow::is_floating(t->id()) ? arrow::float64() : t;
        } else if (fname == "avg" || fname == "mean") {
          function = "hash_mean";
          type = t->id() == arrow::Type::DECIMAL128 ? t : arrow::float64();
        } else if (fname == "count_if" || fname == "bool_and" || fname == "every" || fname == "bool_or" ||
                   fname == "some" || fname == "any") {
          if (t->id() != arrow::Type::BOOL) {
            return fail(e.args[0]->loc, fmt::format("{} needs a BOOLEAN, not {}", fname, sql::sql_type_name(*t)));
          }
          if (fname == "count_if") {
            // The rows where it is true: a count of the non-NULL values of if_else(x, true, NULL),
            // so it merges (streaming windows, incremental views) as count does.
            function = "hash_count";
            type = arrow::int64();
            ARROW_ASSIGN_OR_RAISE(input.expr, cp::call("if_else", {input.expr, cp::literal(true),
                                                                   cp::literal(arrow::MakeNullScalar(arrow::boolean()))})
                                                  .Bind(*schema));
          } else {
            // NULLs skipped; a group of only NULLs gives NULL (Spark's bool_and / bool_or).
            function = fname == "bool_and" || fname == "every" ? "hash_all" : "hash_any";
            type = arrow::boolean();
          }
        } else if (fname == "any_value") {
          function = "hash_first";  // some value of the group (Spark's is nondeterministic too)
          type = t;
        } else if (fname == "stddev" || fname == "stddev_samp") {
          function = "hash_stddev";
          type = arrow::float64();
        } else {
          function = "hash_" + (fname == "first" || fname == "last" ? fname : fname);
          type = t;
        }
        if (function == "hash_first" || function == "hash_last") {
          // Arrow's hash_first / hash_last have no kernel for these: refused now, not after a
          // streaming window has buffered its rows.
          switch (t->id()) {
            case arrow::Type::DECIMAL128:
            case arrow::Type::DECIMAL256:
            case arrow::Type::LIST:
            case arrow::Type::LARGE_LIST:
            case arrow::Type::FIXED_SIZE_LIST:
            case arrow::Type::MAP:
            case arrow::Type::STRUCT:
              return fail(e.args[0]->loc, fmt::format("{} over {} is not supported yet (numbers, strings, "
                                                      "booleans, dates and timestamps are)",
                                                      fname, sql::sql_type_name(*t)));
            default:
              break;
          }
        }
        if (e.distinct && fname != "count") return fail(e.loc, fmt::format("{}(DISTINCT ...) is not supported yet", e.name));
      }
      const std::string name = fmt::format("__a{}", agg.functions.size());
      agg.functions.push_back(function);
      agg.list_aggregates.push_back(std::move(list));
      if (function == "hash_count_all") {
        ARROW_ASSIGN_OR_RAISE(input, binder.bind(*column(schema->field(0)->name(), e.loc)));
      }
      agg.aggregate_inputs.push_back(input);
      agg_fields.emplace_back(name, arrow::field(name, type));
      return column(name, e.loc);
    }
    if (agg.window && e.kind == ExprKind::kColumn && e.parts.size() == 2 &&
        to_lower(e.parts[0]) == (agg.window->gap_micros > 0 ? "session_window" : "window")) {
      // window.start / window.end of the GROUP BY window (session_window.start / .end).
      auto field = std::make_unique<Expr>();
      field->kind = ExprKind::kField;
      field->loc = e.loc;
      field->name = to_lower(e.parts[1]);
      field->args.push_back(column(fmt::format("__k{}", agg.window->key_index), e.loc));
      return field;
    }
    if (e.kind == ExprKind::kColumn) {
      return fail(e.loc, fmt::format("'{}' must be in GROUP BY or inside an aggregate", text));
    }
    auto copy = clone(e);
    copy->args.clear();
    for (const auto& a : e.args) {
      ARROW_ASSIGN_OR_RAISE(auto r, rewrite(*a));
      copy->args.push_back(std::move(r));
    }
    return copy;
  };
  std::vector<std::pair<sql::ExprPtr, std::string>> outputs;
  for (const auto& item : s.items) {
    if (item.expr->kind == ExprKind::kStar) return fail(item.expr->loc, "SELECT * cannot be used with GROUP BY");
    ARROW_ASSIGN_OR_RAISE(auto r, rewrite(*item.expr));
    outputs.emplace_back(std::move(r), item.alias.empty() ? (item.expr->kind == ExprKind::kColumn ? item.expr->parts.back() : sql::to_string(*item.expr)) : item.alias);
  }
  sql::ExprPtr having;
  if (s.having) {
    ARROW_ASSIGN_OR_RAISE(having, rewrite(*s.having));
  }
  for (const auto& [n, f] : agg_fields) grouped.push_back(f);
  agg.grouped_schema = arrow::schema(grouped);
  ExpressionBinder post(file, agg.grouped_schema);
  arrow::FieldVector out_fields;
  for (const auto& item : s.items) plan.output_locations_.push_back(item.expr->loc);
  for (const auto& [expr, name] : outputs) {
    ARROW_ASSIGN_OR_RAISE(auto b, post.bind(*expr));
    out_fields.push_back(arrow::field(name, b.type));
    agg.outputs.push_back(std::move(b));
  }
  if (having) {
    ARROW_ASSIGN_OR_RAISE(agg.having, post.bind(*having));
  }
  Stage out;
  out.output = arrow::schema(out_fields);
  plan.aggregate_ = std::move(agg);
  plan.stages_.push_back(std::move(out));  // placeholder holding the output schema
  return arrow::Status::OK();
}

}  // namespace sluice::exec
