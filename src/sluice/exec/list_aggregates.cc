// Aggregates finished from each group's list of input rows (list_aggregates.h).
#include "sluice/exec/list_aggregates.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "sluice/common/text.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace {

using ListKind = ListAggregate::Kind;

std::optional<ListKind> list_aggregate_kind(const std::string& name) {
  if (name == "collect_list") return ListKind::kCollectList;
  if (name == "collect_set") return ListKind::kCollectSet;
  if (name == "max_by") return ListKind::kMaxBy;
  if (name == "min_by") return ListKind::kMinBy;
  if (name == "percentile_approx" || name == "approx_percentile") return ListKind::kPercentile;
  return std::nullopt;
}

// Types whose values sort (Arrow's rank): what collect_set compares, max_by/min_by order by and
// percentile_approx ranks.
bool orderable(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::LIST: case arrow::Type::LARGE_LIST: case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::MAP: case arrow::Type::STRUCT: case arrow::Type::NA:
      return false;
    default:
      return true;
  }
}

// A percentage: a number literal (Spark requires a constant).
std::optional<double> literal_number(const sql::Expr& e) {
  if (e.kind != sql::ExprKind::kLiteral || (e.literal_type != "integer" && e.literal_type != "decimal")) {
    return std::nullopt;
  }
  auto v = parse_double(e.value, "percentage");
  if (!v.ok()) return std::nullopt;
  return *v;
}

// Dense ranks (1-based, ties equal) of `values`' elements: one sort for all groups.
arrow::Result<std::shared_ptr<arrow::UInt64Array>> dense_ranks(const std::shared_ptr<arrow::Array>& values) {
  arrow::compute::RankOptions options(arrow::compute::SortOrder::Ascending, arrow::compute::NullPlacement::AtEnd,
                                      arrow::compute::RankOptions::Dense);
  ARROW_ASSIGN_OR_RAISE(auto ranks, arrow::compute::CallFunction("rank", {values}, &options));
  return std::static_pointer_cast<arrow::UInt64Array>(ranks.make_array());
}

// `values` regrouped as lists: group g holds values [offsets[g], offsets[g+1]); `valid[g]`
// false: a NULL list.
arrow::Result<std::shared_ptr<arrow::Array>> as_lists(const std::vector<int32_t>& offsets, const std::vector<bool>& valid,
                                                      const std::shared_ptr<arrow::Array>& values,
                                                      const std::shared_ptr<arrow::DataType>& type) {
  arrow::Int32Builder offset_builder;
  ARROW_RETURN_NOT_OK(offset_builder.AppendValues(offsets));
  ARROW_ASSIGN_OR_RAISE(auto offset_array, offset_builder.Finish());
  std::shared_ptr<arrow::Buffer> nulls;
  int64_t null_count = 0;
  for (bool v : valid) null_count += v ? 0 : 1;
  if (null_count > 0) {
    arrow::TypedBufferBuilder<bool> bits;
    for (bool v : valid) ARROW_RETURN_NOT_OK(bits.Append(v));
    ARROW_ASSIGN_OR_RAISE(nulls, bits.Finish());
  }
  ARROW_ASSIGN_OR_RAISE(auto lists, arrow::ListArray::FromArrays(type, *offset_array, *values,
                                                                 arrow::default_memory_pool(), nulls, null_count));
  return lists;
}

}  // namespace

bool is_list_aggregate(const std::string& name) { return list_aggregate_kind(name).has_value(); }

arrow::Result<BoundListAggregate> bind_list_aggregate(const sql::Expr& call, const ExpressionBinder& binder,
                                                      const arrow::Schema& schema, const sql::SourceFile& file) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  BoundListAggregate out;
  out.aggregate.name = to_lower(call.name);
  out.aggregate.kind = *list_aggregate_kind(out.aggregate.name);
  const auto& name = out.aggregate.name;
  const ListKind kind = out.aggregate.kind;
  if (call.distinct) return fail(call.loc, fmt::format("{}(DISTINCT ...) is not supported", name));
  for (const auto& a : call.args) {
    if (a->kind == sql::ExprKind::kStar || a->kind == sql::ExprKind::kNamedArg) {
      return fail(a->loc, fmt::format("{} takes values, not {}", name, a->kind == sql::ExprKind::kStar ? "*" : "a named argument"));
    }
  }
  const size_t arity = call.args.size();
  if ((kind == ListKind::kCollectList || kind == ListKind::kCollectSet) && arity != 1) {
    return fail(call.loc, fmt::format("{} takes one argument", name));
  }
  if ((kind == ListKind::kMaxBy || kind == ListKind::kMinBy) && arity != 2) {
    return fail(call.loc, fmt::format("{} takes two arguments (the value, the ordering)", name));
  }
  if (kind == ListKind::kPercentile && arity != 2 && arity != 3) {
    return fail(call.loc, fmt::format("{} takes two or three arguments (column, percentage[, accuracy])", name));
  }
  ARROW_ASSIGN_OR_RAISE(auto value, binder.bind(*call.args[0]));
  const std::shared_ptr<arrow::DataType> t = value.type;  // a copy: value is moved below
  switch (kind) {
    case ListKind::kCollectList:
      out.input = std::move(value);
      out.type = arrow::list(t);
      break;
    case ListKind::kCollectSet:
      if (!orderable(*t)) {
        return fail(call.args[0]->loc, fmt::format("collect_set over {} is not supported yet (numbers, strings, "
                                                   "binary, booleans, decimals, dates and timestamps are)",
                                                   sql::sql_type_name(*t)));
      }
      out.input = std::move(value);
      out.type = arrow::list(t);
      break;
    case ListKind::kMaxBy:
    case ListKind::kMinBy: {
      ARROW_ASSIGN_OR_RAISE(auto ord, binder.bind(*call.args[1]));
      if (!orderable(*ord.type)) {
        return fail(call.args[1]->loc, fmt::format("{} orders by a value that sorts (a number, string, boolean, "
                                                   "date or timestamp), not {}",
                                                   name, sql::sql_type_name(*ord.type)));
      }
      out.type = t;
      out.input.type = arrow::struct_({arrow::field("value", t), arrow::field("ord", ord.type)});
      out.input.name = name;
      ARROW_ASSIGN_OR_RAISE(out.input.expr,
                            arrow::compute::call("make_struct", {value.expr, ord.expr},
                                                 std::make_shared<arrow::compute::MakeStructOptions>(
                                                     std::vector<std::string>{"value", "ord"}))
                                .Bind(schema));
      break;
    }
    case ListKind::kPercentile: {
      if (!arrow::is_integer(t->id()) && !arrow::is_floating(t->id()) && t->id() != arrow::Type::DECIMAL128 &&
          t->id() != arrow::Type::DATE32 && t->id() != arrow::Type::TIMESTAMP) {
        return fail(call.args[0]->loc, fmt::format("{} needs numbers, dates or timestamps, not {}", name,
                                                   sql::sql_type_name(*t)));
      }
      const sql::Expr& p = *call.args[1];
      const bool array = p.kind == sql::ExprKind::kFunction && to_lower(p.name) == "array";
      std::vector<const sql::Expr*> items;
      if (array) {
        for (const auto& a : p.args) items.push_back(a.get());
      } else {
        items.push_back(&p);
      }
      if (array && items.empty()) return fail(p.loc, fmt::format("{} needs at least one percentage", name));
      for (const auto* item : items) {
        auto v = literal_number(*item);
        if (!v || *v < 0.0 || *v > 1.0) {
          return fail(item->loc, fmt::format("{}'s percentage must be a constant number between 0.0 and 1.0 (or "
                                             "an array(...) of them), not {}",
                                             name, sql::to_string(*item)));
        }
        out.aggregate.percentages.push_back(*v);
      }
      out.aggregate.array_result = array;
      if (arity == 3) {
        const sql::Expr& a = *call.args[2];
        auto accuracy = a.kind == sql::ExprKind::kLiteral && a.literal_type == "integer"
                            ? parse_int64(a.value, "accuracy")
                            : arrow::Result<int64_t>(arrow::Status::Invalid("not an integer"));
        if (!accuracy.ok() || *accuracy <= 0 || *accuracy > 2147483647) {
          return fail(a.loc, fmt::format("{}'s accuracy must be a constant whole number from 1 to 2147483647, "
                                         "not {}",
                                         name, sql::to_string(a)));
        }
        out.aggregate.accuracy = *accuracy;
      }
      out.input = std::move(value);
      out.type = array ? arrow::list(t) : t;
      break;
    }
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::Array>> finish_list_aggregate(const ListAggregate& aggregate,
                                                                   const arrow::Array& rows_array,
                                                                   const std::shared_ptr<arrow::Array>& input,
                                                                   const std::shared_ptr<arrow::DataType>& type) {
  if (rows_array.type_id() != arrow::Type::LIST) {
    return arrow::Status::TypeError(aggregate.name, ": row lists expected, not ", rows_array.type()->ToString());
  }
  const auto& rows = static_cast<const arrow::ListArray&>(rows_array);
  if (rows.value_type()->id() != arrow::Type::INT64) {
    return arrow::Status::TypeError(aggregate.name, ": row numbers expected, not ", rows.value_type()->ToString());
  }
  const auto& row_numbers = static_cast<const arrow::Int64Array&>(*rows.values());
  const int64_t groups = rows.length();
  auto group_rows = [&](int64_t g, auto&& each) {
    if (rows.IsNull(g)) return;
    for (int64_t i = rows.value_offset(g); i < rows.value_offset(g + 1); ++i) each(row_numbers.Value(i));
  };
  arrow::Int64Builder take;  // rows of `input` to take, in the result's order
  std::vector<int32_t> offsets = {0};
  std::vector<bool> valid;
  switch (aggregate.kind) {
    case ListKind::kCollectList: {
      // NULLs skipped (Spark's collect_list); a group of NULLs gives an empty array.
      for (int64_t g = 0; g < groups; ++g) {
        ARROW_RETURN_NOT_OK(take.Reserve(rows.IsNull(g) ? 0 : rows.value_length(g)));
        group_rows(g, [&](int64_t r) {
          if (input->IsValid(r)) take.UnsafeAppend(r);
        });
        offsets.push_back(static_cast<int32_t>(take.length()));
        valid.push_back(true);
      }
      break;
    }
    case ListKind::kCollectSet: {
      // The first row of each distinct non-NULL value, in arrival order (Spark's order is
      // unspecified). One dense rank for all groups, then `last_group[rank]`: the last group
      // that took that value. Groups come one after another, so a value is new to group g iff
      // its entry is not g: O(rows), no per-group reset, no node per value.
      ARROW_ASSIGN_OR_RAISE(auto ranks, dense_ranks(input));
      uint64_t top = 0;
      for (int64_t r = 0; r < ranks->length(); ++r) top = std::max(top, ranks->Value(r));
      std::vector<int64_t> last_group(static_cast<size_t>(top) + 1, -1);
      for (int64_t g = 0; g < groups; ++g) {
        ARROW_RETURN_NOT_OK(take.Reserve(rows.IsNull(g) ? 0 : rows.value_length(g)));
        group_rows(g, [&](int64_t r) {
          if (!input->IsValid(r)) return;
          int64_t& last = last_group[static_cast<size_t>(ranks->Value(r))];
          if (last == g) return;
          last = g;
          take.UnsafeAppend(r);
        });
        offsets.push_back(static_cast<int32_t>(take.length()));
        valid.push_back(true);
      }
      ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
      ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(input, indices));
      auto values = taken.make_array();
      if (values->type_id() == arrow::Type::FLOAT || values->type_id() == arrow::Type::DOUBLE) {
        // -0.0 and 0.0 rank equal; Spark 4 normalises the one kept to 0.0 (NaN stays NaN):
        // x + 0.0 is 0.0 for both zeros and x for every other value.
        ARROW_ASSIGN_OR_RAISE(auto zero, arrow::MakeScalar(values->type(), 0));
        ARROW_ASSIGN_OR_RAISE(auto sum, arrow::compute::CallFunction("add", {values, zero}));
        values = sum.make_array();
      }
      return as_lists(offsets, valid, values, type);
    }
    case ListKind::kMaxBy:
    case ListKind::kMinBy: {
      // The value of the last row (arrival order) with the greatest (least) non-NULL ordering,
      // as Spark's MaxMinBy, which replaces its buffer unless the old ordering is strictly
      // greater (less); NULL when every ordering is NULL.
      const auto& pair = static_cast<const arrow::StructArray&>(*input);
      ARROW_ASSIGN_OR_RAISE(auto ord, pair.GetFlattenedField(1));
      ARROW_ASSIGN_OR_RAISE(auto ranks, dense_ranks(ord));
      const bool max = aggregate.kind == ListKind::kMaxBy;
      ARROW_RETURN_NOT_OK(take.Reserve(groups));
      for (int64_t g = 0; g < groups; ++g) {
        int64_t best = -1;
        group_rows(g, [&](int64_t r) {
          if (!ord->IsValid(r)) return;
          if (best < 0 || (max ? ranks->Value(r) >= ranks->Value(best) : ranks->Value(r) <= ranks->Value(best))) best = r;
        });
        if (best < 0) {
          take.UnsafeAppendNull();
        } else {
          take.UnsafeAppend(best);
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
      ARROW_ASSIGN_OR_RAISE(auto values, pair.GetFlattenedField(0));
      ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(values, indices));
      return taken.make_array();
    }
    case ListKind::kPercentile: {
      // Exact: the value at rank ceil(p * n) of the group's n non-NULL values (1-based; p = 0:
      // the least), within any accuracy's error bound (Spark's is n / accuracy ranks).
      ARROW_ASSIGN_OR_RAISE(auto ranks, dense_ranks(input));
      std::vector<std::pair<uint64_t, int64_t>> sorted;  // (rank, row)
      const size_t width = aggregate.percentages.size();
      for (int64_t g = 0; g < groups; ++g) {
        sorted.clear();
        group_rows(g, [&](int64_t r) {
          if (input->IsValid(r)) sorted.emplace_back(ranks->Value(r), r);
        });
        ARROW_RETURN_NOT_OK(take.Reserve(static_cast<int64_t>(width)));
        if (sorted.empty()) {
          if (aggregate.array_result) {
            valid.push_back(false);
          } else {
            take.UnsafeAppendNull();
          }
          offsets.push_back(static_cast<int32_t>(take.length()));
          continue;
        }
        std::sort(sorted.begin(), sorted.end());
        const auto n = static_cast<double>(sorted.size());
        for (double p : aggregate.percentages) {
          auto k = static_cast<int64_t>(std::ceil(p * n)) - 1;
          k = std::clamp<int64_t>(k, 0, static_cast<int64_t>(sorted.size()) - 1);
          take.UnsafeAppend(sorted[static_cast<size_t>(k)].second);
        }
        offsets.push_back(static_cast<int32_t>(take.length()));
        valid.push_back(true);
      }
      ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
      ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(input, indices));
      if (!aggregate.array_result) return taken.make_array();
      return as_lists(offsets, valid, taken.make_array(), type);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
  ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(input, indices));
  return as_lists(offsets, valid, taken.make_array(), type);
}

}  // namespace sluice::exec
