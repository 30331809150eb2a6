// SQL AST -> bound Arrow compute expressions.
#include "sluice/exec/expression_binder.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <regex>
#include <utility>
#include <vector>

#include "sluice/common/bounded_regex.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/json_functions.h"
#include "sluice/exec/string_functions.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;
using sql::Expr;
using sql::ExprKind;


namespace {

// Spark 4 with ANSI on compares a STRING with a number by casting the string to BIGINT (against
// an integral type) or DOUBLE (against a fractional one, decimals included), after trimming
// whitespace; a string that is not such a number fails the batch, as Spark's CAST_INVALID_INPUT.
void promote_string_against_number(BoundExpression& a, BoundExpression& b) {
  for (auto [s, n] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
    if (!is_string_type(*s->type) || !is_numeric_type(*n->type)) continue;
    auto target = arrow::is_integer(n->type->id()) ? arrow::int64() : arrow::float64();
    s->expr = cast_to(cp::call("utf8_trim_whitespace", {s->expr}), target);
    s->type = target;
    if (n->type->id() == arrow::Type::DECIMAL128) {
      n->expr = cast_to(n->expr, target);
      n->type = target;
    }
    return;
  }
}

}  // namespace

arrow::Result<int64_t> interval_micros(const std::string& text) {
  static const std::regex kPart(R"(\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*)");
  // std::regex recurses per character matched (common/bounded_regex.h): no longer text reaches it.
  if (text.size() > kMaxRegexText) return invalid("'{}' is not an interval sluice can hold", quote_for_error(text));
  int64_t total = 0;
  auto begin = std::sregex_iterator(text.begin(), text.end(), kPart);
  size_t consumed = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    auto parsed = parse_double((*it)[1].str(), "interval");
    if (!parsed.ok() || std::abs(*parsed) > 1e12) return invalid("'{}' is not an interval sluice can hold", text);
    double n = *parsed;
    std::string unit = to_lower((*it)[2]);
    if (unit.back() == 's' && unit != "s" && unit != "ms" && unit != "us") unit.pop_back();
    double micros;
    if (unit == "microsecond" || unit == "us") micros = 1;
    else if (unit == "millisecond" || unit == "ms") micros = 1e3;
    else if (unit == "second" || unit == "sec" || unit == "s") micros = 1e6;
    else if (unit == "minute" || unit == "min") micros = 60e6;
    else if (unit == "hour" || unit == "h") micros = 3600e6;
    else if (unit == "day" || unit == "d") micros = 86400e6;
    else if (unit == "week") micros = 7 * 86400e6;
    else return invalid("interval unit '{}' has no fixed length (use days, hours, minutes, ...)", unit);
    total += static_cast<int64_t>(n * micros);
    consumed += it->length();
  }
  if (consumed != text.size() || consumed == 0) return invalid("'{}' is not an interval", text);
  return total;
}


ExpressionBinder::ExpressionBinder(const sql::SourceFile& file, std::shared_ptr<arrow::Schema> input,
                                   std::set<std::string> qualifiers)
    : file_(file), input_(std::move(input)), qualifiers_(std::move(qualifiers)) {}

arrow::Status ExpressionBinder::error(const Expr& at, const std::string& message) const {
  return arrow::Status::Invalid(sql::format_error(file_, at.loc, message));
}

namespace {

// Levels of the expression tree, counted without recursion (the tree is as deep as the parser
// allows: sql::kMaxNestingDepth).
int expr_depth(const Expr& root) {
  int deepest = 0;
  std::vector<std::pair<const Expr*, int>> todo{{&root, 1}};
  while (!todo.empty()) {
    auto [e, depth] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, depth);
    for (const auto& a : e->args) {
      if (a) todo.emplace_back(a.get(), depth + 1);
    }
  }
  return deepest;
}

// bind_node recurses once or twice per level, and its frames are large in a sanitizer build
// (ASan keeps every local of the big switch in its own slot: over 32 KiB a level, so 256 levels
// overflowed the 8 MiB main stack). Deeper expressions than this are bound on a thread of their
// own with kBindStackBytes of stack, whatever stack the caller has left (docs/decisions.md,
// "Deep expressions are bound on a big stack").
constexpr int kInlineBindDepth = 16;
constexpr size_t kBindStackBytes = size_t{256} << 20;  // address space; only touched pages are memory

// Runs `fn` on a new thread with kBindStackBytes of stack and waits for it; an exception it
// throws is rethrown here, as if it had run on the caller's thread. `fail` makes the error
// when no such thread can start.
arrow::Result<BoundExpression> on_big_stack(const std::function<arrow::Result<BoundExpression>()>& fn,
                                            const std::function<arrow::Status(const std::string&)>& fail) {
  struct Call {
    const std::function<arrow::Result<BoundExpression>()>* fn;
    std::optional<arrow::Result<BoundExpression>> result;
    std::exception_ptr error;
  } call{&fn, std::nullopt, nullptr};
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return fail(fmt::format("cannot set up a thread to bind this expression ({})", std::strerror(rc)));
  rc = pthread_attr_setstacksize(&attr, kBindStackBytes);
  pthread_t thread;
  if (rc == 0) rc = pthread_create(
      &thread, &attr,
      [](void* p) -> void* {
        auto* c = static_cast<Call*>(p);
        try {
          c->result.emplace((*c->fn)());
        } catch (...) {
          c->error = std::current_exception();
        }
        return nullptr;
      },
      &call);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    return fail(fmt::format(
        "cannot start a thread with {} MiB of stack to bind this expression, nested deeper than {} levels ({}); "
        "raise the process's thread or address-space limits, or nest the expression less deeply",
        kBindStackBytes >> 20, kInlineBindDepth, std::strerror(rc)));
  }
  pthread_join(thread, nullptr);
  if (call.error) std::rethrow_exception(call.error);
  return std::move(*call.result);
}

}  // namespace

arrow::Result<BoundExpression> ExpressionBinder::bind(const Expr& expr) const {
  if (expr_depth(expr) <= kInlineBindDepth) return bind_node(expr);
  return on_big_stack([&] { return bind_node(expr); }, [&](const std::string& m) { return error(expr, m); });
}

arrow::Result<BoundExpression> ExpressionBinder::make_call(
    const Expr& at, const std::string& function, std::vector<cp::Expression> args,
    std::shared_ptr<cp::FunctionOptions> options) const {
  auto call = cp::call(function, std::move(args), std::move(options));
  auto bound = call.Bind(*input_);
  if (!bound.ok()) {
    std::string types;
    for (const auto& a : call.call()->arguments) {
      auto b = a.Bind(*input_);
      types += (types.empty() ? "" : ", ") +
               (b.ok() && b->type() ? sql::sql_type_name(*b->type()) : std::string("?"));
    }
    std::string what = at.kind == ExprKind::kBinary || at.kind == ExprKind::kUnary ? "'" + at.op + "'"
                       : at.kind == ExprKind::kFunction                           ? at.name
                                                                                  : function;
    return error(at, fmt::format("cannot apply {} to ({})", what, types));
  }
  return BoundExpression{*bound, bound->type()->GetSharedPtr(), ""};
}

arrow::Result<BoundExpression> ExpressionBinder::bind_node(const Expr& e) const {
  switch (e.kind) {
    case ExprKind::kColumn: {
      // Resolve the longest prefix that names a column; the rest are struct fields. A joined
      // relation names its columns "alias.column", so a dotted prefix is tried first.
      std::vector<std::string> parts = e.parts;
      int index = -1;
      for (size_t k = parts.size(); k >= 2 && index < 0; --k) {
        std::string dotted = parts[0];
        for (size_t i = 1; i < k; ++i) dotted += "." + parts[i];
        if ((index = input_->GetFieldIndex(dotted)) >= 0) {
          parts.erase(parts.begin(), parts.begin() + static_cast<long>(k) - 1);
          parts[0] = dotted;
        }
      }
      if (index < 0 && parts.size() > 1 && qualifiers_.count(parts[0]) && !input_->GetFieldByName(parts[0])) {
        parts.erase(parts.begin());
      }
      if (index < 0) index = input_->GetFieldIndex(parts[0]);
      if (index < 0) {
        index = match_column(parts[0]);
        if (index == -2) {
          return error(e, fmt::format("column name '{}' is ambiguous (qualify it with its table)", parts[0]));
        }
      }
      if (index < 0) {
        std::string names;
        for (const auto& f : input_->fields()) names += (names.empty() ? "" : ", ") + f->name();
        return error(e, fmt::format("unknown column '{}'; the input has: {}", parts[0], names));
      }
      std::vector<arrow::FieldRef> path{arrow::FieldRef(input_->field(index)->name())};
      auto type = input_->field(index)->type();
      for (size_t i = 1; i < parts.size(); ++i) {
        if (type->id() != arrow::Type::STRUCT) {
          return error(e, fmt::format("'{}' is {}, not a struct, so it has no field '{}'", parts[i - 1],
                                      sql::sql_type_name(*type), parts[i]));
        }
        auto field = static_cast<const arrow::StructType&>(*type).GetFieldByName(parts[i]);
        if (!field) return error(e, fmt::format("struct '{}' has no field '{}'", parts[i - 1], parts[i]));
        path.emplace_back(parts[i]);
        type = field->type();
      }
      auto ref = path.size() == 1 ? cp::field_ref(path[0]) : cp::field_ref(arrow::FieldRef(std::move(path)));
      ARROW_ASSIGN_OR_RAISE(auto bound, ref.Bind(*input_));
      std::string name = parts.back();
      if (auto dot = name.rfind('.'); parts.size() == 1 && dot != std::string::npos) name = name.substr(dot + 1);
      return BoundExpression{bound, type, name};
    }
    case ExprKind::kLiteral: {
      std::shared_ptr<arrow::Scalar> value;
      const auto& t = e.literal_type;
      if (t == "null") {
        value = arrow::MakeNullScalar(arrow::null());
      } else if (t == "boolean") {
        value = arrow::MakeScalar(e.value == "true");
      } else if (t == "integer") {
        auto v = parse_int64(e.value, "integer literal");
        if (!v.ok()) return error(e, fmt::format("integer literal {} is out of range for BIGINT", quote_for_error(e.value)));
        value = (*v >= INT32_MIN && *v <= INT32_MAX) ? arrow::MakeScalar(static_cast<int32_t>(*v))
                                                     : arrow::MakeScalar(static_cast<int64_t>(*v));
      } else if (t == "decimal") {
        auto d = parse_double(e.value, "number");
        if (!d.ok()) return error(e, fmt::format("number {} is out of range for DOUBLE", quote_for_error(e.value)));
        value = arrow::MakeScalar(*d);
      } else if (t == "string") {
        value = arrow::MakeScalar(e.value);
      } else if (t == "date" || t == "timestamp" || t == "timestamp_ntz") {
        auto type = t == "date" ? arrow::date32()
                    : t == "timestamp" ? arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")
                                       : arrow::timestamp(arrow::TimeUnit::MICRO);
        std::string text = e.value;
        for (auto& c : text) c = c == ' ' ? 'T' : c;
        if (!text.empty() && text.back() == 'Z') text.pop_back();
        auto parsed = arrow::Scalar::Parse(t == "date" ? type : arrow::timestamp(arrow::TimeUnit::MICRO), text);
        if (!parsed.ok()) return error(e, fmt::format("'{}' is not a valid {} literal", e.value, t));
        value = t == "timestamp"
                    ? std::make_shared<arrow::TimestampScalar>(
                          static_cast<const arrow::TimestampScalar&>(**parsed).value, type)
                    : *parsed;
      } else if (t == "interval") {
        auto micros = interval_micros(e.value);
        if (!micros.ok()) return error(e, micros.status().message());
        value = std::make_shared<arrow::DurationScalar>(*micros, arrow::TimeUnit::MICRO);
      } else {
        return error(e, "unsupported literal");
      }
      return BoundExpression{literal_of(value), value->type, e.value};
    }
    case ExprKind::kUnary: {
      ARROW_ASSIGN_OR_RAISE(auto arg, bind_node(*e.args[0]));
      if (e.op == "NOT") {
        if (arg.type->id() != arrow::Type::BOOL && arg.type->id() != arrow::Type::NA) {
          return error(e, fmt::format("NOT needs a BOOLEAN, not {}", sql::sql_type_name(*arg.type)));
        }
        return make_call(e, "invert", {arg.expr});
      }
      if (e.op == "-") return make_call(e, "negate_checked", {arg.expr});
      if (e.op == "~") return make_call(e, "bit_wise_not", {arg.expr});
      return error(e, "unsupported operator " + e.op);
    }
    case ExprKind::kBinary: {
      if (e.op == "AND" || e.op == "OR") {
        // The whole chain of this operator at once (associative; the parser keeps long chains
        // balanced): each operand bound and checked, the calls bound once at the root, so a
        // 10,000-term OR costs O(n), not O(n log n) re-binding of subtrees.
        using Operand = std::pair<const Expr*, const Expr*>;  // (operand, the node it is under)
        std::vector<Operand> operands;                        // left to right
        std::vector<Operand> pending{{e.args[1].get(), &e}, {e.args[0].get(), &e}};
        while (!pending.empty()) {
          const Operand next = pending.back();
          pending.pop_back();
          if (next.first->kind == ExprKind::kBinary && next.first->op == e.op) {
            pending.emplace_back(next.first->args[1].get(), next.first);
            pending.emplace_back(next.first->args[0].get(), next.first);
          } else {
            operands.push_back(next);
          }
        }
        std::vector<cp::Expression> terms;
        for (auto it = operands.begin(); it != operands.end(); ++it) {
          ARROW_ASSIGN_OR_RAISE(auto b, bind_node(*it->first));
          if (b.type->id() != arrow::Type::BOOL && b.type->id() != arrow::Type::NA) {
            return error(*it->second, fmt::format("{} needs BOOLEAN operands, not {}", e.op, sql::sql_type_name(*b.type)));
          }
          terms.push_back(std::move(b.expr));
        }
        const char* function = e.op == "AND" ? "and_kleene" : "or_kleene";
        while (terms.size() > 2) {
          std::vector<cp::Expression> pairs;
          for (size_t i = 0; i + 1 < terms.size(); i += 2) pairs.push_back(cp::call(function, {terms[i], terms[i + 1]}));
          if (terms.size() % 2 == 1) pairs.push_back(std::move(terms.back()));
          terms = std::move(pairs);
        }
        return make_call(e, function, std::move(terms));
      }
      ARROW_ASSIGN_OR_RAISE(auto l, bind_node(*e.args[0]));
      ARROW_ASSIGN_OR_RAISE(auto r, bind_node(*e.args[1]));
      const std::string& op = e.op;
      if (op == "=" || op == "<>" || op == "<" || op == "<=" || op == ">" || op == ">=" || op == "<=>") {
        promote_string_against_number(l, r);
      }
      if (op == "AND" || op == "OR") {
        for (const auto* side : {&l, &r}) {
          if (side->type->id() != arrow::Type::BOOL && side->type->id() != arrow::Type::NA) {
            return error(e, fmt::format("{} needs BOOLEAN operands, not {}", op, sql::sql_type_name(*side->type)));
          }
        }
        return make_call(e, op == "AND" ? "and_kleene" : "or_kleene", {l.expr, r.expr});
      }
      static const std::map<std::string, std::string> kCompare = {
          {"=", "equal"}, {"<>", "not_equal"}, {"<", "less"}, {"<=", "less_equal"},
          {">", "greater"}, {">=", "greater_equal"}};
      if (auto it = kCompare.find(op); it != kCompare.end()) return make_call(e, it->second, {l.expr, r.expr});
      if (op == "<=>") {
        // Null-safe equality: both null -> true, one null -> false.
        ARROW_ASSIGN_OR_RAISE(auto eq, make_call(e, "equal", {l.expr, r.expr}));
        ARROW_ASSIGN_OR_RAISE(auto both_null, make_call(e, "and", {cp::call("is_null", {l.expr}),
                                                                      cp::call("is_null", {r.expr})}));
        return make_call(e, "coalesce", {eq.expr, both_null.expr});
      }
      if (op == "||") {
        ARROW_ASSIGN_OR_RAISE(auto left, cast_expr(l.expr, *l.type, arrow::utf8()));
        ARROW_ASSIGN_OR_RAISE(auto right, cast_expr(r.expr, *r.type, arrow::utf8()));
        return make_call(e, "binary_join_element_wise", {left, right, literal_of(arrow::MakeScalar(""))});
      }
      if (op == "+" || op == "-") {
        const bool l_time = l.type->id() == arrow::Type::TIMESTAMP || l.type->id() == arrow::Type::DATE32;
        if (l_time && r.type->id() == arrow::Type::DURATION) {
          auto left = l.expr;
          if (l.type->id() == arrow::Type::DATE32) {
            left = cp::call("cast", {l.expr}, std::make_shared<cp::CastOptions>(
                                                  cp::CastOptions::Safe(arrow::timestamp(arrow::TimeUnit::MICRO))));
          }
          return make_call(e, op == "+" ? "add_checked" : "subtract_checked", {left, r.expr});
        }
      }
      if (op == "+" || op == "-" || op == "*") {
        if (!is_numeric_type(*l.type) && l.type->id() != arrow::Type::NA && l.type->id() != arrow::Type::TIMESTAMP) {
          return error(e, fmt::format("'{}' needs numbers, not {} and {}", op, sql::sql_type_name(*l.type),
                                      sql::sql_type_name(*r.type)));
        }
        static const std::map<std::string, std::string> kArith = {
            {"+", "add_checked"}, {"-", "subtract_checked"}, {"*", "multiply_checked"}};
        return make_call(e, kArith.at(op), {l.expr, r.expr});
      }
      if (op == "/" || op == "%" || op == "DIV") {
        if (!is_numeric_type(*l.type) || !is_numeric_type(*r.type)) {
          if (l.type->id() != arrow::Type::NA && r.type->id() != arrow::Type::NA) {
            return error(e, fmt::format("'{}' needs numbers, not {} and {}", op, sql::sql_type_name(*l.type),
                                        sql::sql_type_name(*r.type)));
          }
        }
        // Division by zero is NULL (Spark without ANSI, DuckDB): divide only where r != 0.
        auto zero = cp::call("equal", {r.expr, literal_of(arrow::MakeScalar(int32_t{0}))});
        auto nonzero_r = cp::call("if_else", {zero, literal_of(arrow::MakeNullScalar(r.type->id() == arrow::Type::NA ? arrow::int32() : r.type)), r.expr});
        if (op == "/") {
          auto as_double = [](const cp::Expression& x) {
            return cp::call("cast", {x}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::float64())));
          };
          return make_call(e, "divide", {as_double(l.expr), as_double(nonzero_r)});
        }
        if (!arrow::is_integer(l.type->id()) || !arrow::is_integer(r.type->id())) {
          if (op == "DIV") return error(e, "DIV needs integers");
          // Floating modulo: a - trunc(a / b) * b
          auto q = cp::call("trunc", {cp::call("divide", {l.expr, nonzero_r})});
          return make_call(e, "subtract", {l.expr, cp::call("multiply", {q, nonzero_r})});
        }
        auto quotient = cp::call("divide_checked", {l.expr, nonzero_r});  // truncates toward 0
        if (op == "DIV") {
          return make_call(e, "cast", {quotient}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
        }
        return make_call(e, "subtract_checked", {l.expr, cp::call("multiply_checked", {quotient, nonzero_r})});
      }
      if (op == "&" || op == "|" || op == "^") {
        static const std::map<std::string, std::string> kBit = {
            {"&", "bit_wise_and"}, {"|", "bit_wise_or"}, {"^", "bit_wise_xor"}};
        return make_call(e, kBit.at(op), {l.expr, r.expr});
      }
      return error(e, "unsupported operator " + op);
    }
    case ExprKind::kIsNull: {
      ARROW_ASSIGN_OR_RAISE(auto arg, bind_node(*e.args[0]));
      return make_call(e, e.negated ? "is_valid" : "is_null", {arg.expr});
    }
    case ExprKind::kIsBool: {
      ARROW_ASSIGN_OR_RAISE(auto arg, bind_node(*e.args[0]));
      const bool want = e.name == "TRUE";
      // x IS TRUE: never null; x IS NOT TRUE = NOT (x IS TRUE)
      auto cmp = cp::call("coalesce", {cp::call("equal", {arg.expr, literal_of(arrow::MakeScalar(want))}),
                                      literal_of(arrow::MakeScalar(false))});
      return make_call(e, e.negated ? "invert" : "and", e.negated ? std::vector<cp::Expression>{cmp}
                                                                : std::vector<cp::Expression>{cmp, literal_of(arrow::MakeScalar(true))});
    }
    case ExprKind::kIn: {
      if (e.query) return error(e, "IN (subquery) is not supported yet");
      ARROW_ASSIGN_OR_RAISE(auto x, bind_node(*e.args[0]));
      // OR of equalities: exactly SQL's three-valued IN. OR is associative, so the equalities
      // are combined pairwise into a balanced tree: a 20,000-item list is 15 levels deep (Arrow
      // binds and evaluates expressions recursively) and is bound once, at the root.
      std::vector<cp::Expression> terms;
      for (size_t i = 1; i < e.args.size(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto v, bind_node(*e.args[i]));
        auto item = x;
        promote_string_against_number(item, v);
        ARROW_ASSIGN_OR_RAISE(auto eq, make_call(*e.args[i], "equal", {item.expr, v.expr}));
        terms.push_back(std::move(eq.expr));
      }
      while (terms.size() > 1) {
        std::vector<cp::Expression> pairs;
        for (size_t i = 0; i + 1 < terms.size(); i += 2) pairs.push_back(cp::call("or_kleene", {terms[i], terms[i + 1]}));
        if (terms.size() % 2 == 1) pairs.push_back(std::move(terms.back()));
        terms = std::move(pairs);
      }
      ARROW_ASSIGN_OR_RAISE(auto in, make_call(e, "or_kleene", {terms.at(0), literal_of(arrow::MakeScalar(false))}));
      if (e.negated) return make_call(e, "invert", {in.expr});
      return in;
    }
    case ExprKind::kBetween: {
      ARROW_ASSIGN_OR_RAISE(auto x, bind_node(*e.args[0]));
      ARROW_ASSIGN_OR_RAISE(auto lo, bind_node(*e.args[1]));
      ARROW_ASSIGN_OR_RAISE(auto hi, bind_node(*e.args[2]));
      auto x_lo = x, x_hi = x;
      promote_string_against_number(x_lo, lo);
      promote_string_against_number(x_hi, hi);
      ARROW_ASSIGN_OR_RAISE(auto ge, make_call(e, "greater_equal", {x_lo.expr, lo.expr}));
      ARROW_ASSIGN_OR_RAISE(auto le, make_call(e, "less_equal", {x_hi.expr, hi.expr}));
      ARROW_ASSIGN_OR_RAISE(auto both, make_call(e, "and_kleene", {ge.expr, le.expr}));
      if (e.negated) return make_call(e, "invert", {both.expr});
      return both;
    }
    case ExprKind::kLike: {
      ARROW_ASSIGN_OR_RAISE(auto x, bind_node(*e.args[0]));
      const Expr& pattern = *e.args[1];
      if (pattern.kind != ExprKind::kLiteral || pattern.literal_type != "string") {
        return error(pattern, fmt::format("{} needs a string literal pattern", e.op));
      }
      std::string function = e.op == "RLIKE" ? "match_substring_regex" : "match_like";
      auto options = std::make_shared<cp::MatchSubstringOptions>(pattern.value, e.op == "ILIKE");
      ARROW_ASSIGN_OR_RAISE(auto m, make_call(e, function, {x.expr}, options));
      if (e.negated) return make_call(e, "invert", {m.expr});
      return m;
    }
    case ExprKind::kCase: {
      std::vector<cp::Expression> conds, values;
      size_t i = 0;
      std::optional<BoundExpression> operand;
      if (e.has_operand) {
        ARROW_ASSIGN_OR_RAISE(operand, bind_node(*e.args[i++]));
      }
      const size_t end = e.args.size() - (e.has_else ? 1 : 0);
      for (; i + 1 < end + 1 && i < end; i += 2) {
        ARROW_ASSIGN_OR_RAISE(auto c, bind_node(*e.args[i]));
        if (operand) {
          ARROW_ASSIGN_OR_RAISE(c, make_call(*e.args[i], "equal", {operand->expr, c.expr}));
        } else if (c.type->id() != arrow::Type::BOOL && c.type->id() != arrow::Type::NA) {
          return error(*e.args[i], fmt::format("WHEN needs a BOOLEAN condition, not {}", sql::sql_type_name(*c.type)));
        }
        ARROW_ASSIGN_OR_RAISE(auto v, bind_node(*e.args[i + 1]));
        conds.push_back(c.expr);
        values.push_back(v.expr);
      }
      if (e.has_else) {
        ARROW_ASSIGN_OR_RAISE(auto v, bind_node(*e.args.back()));
        values.push_back(v.expr);
      }
      std::vector<std::string> names;
      for (size_t k = 0; k < conds.size(); ++k) names.push_back("c" + std::to_string(k));
      auto cond_struct = cp::call("make_struct", conds, std::make_shared<cp::MakeStructOptions>(names));
      std::vector<cp::Expression> args{cond_struct};
      args.insert(args.end(), values.begin(), values.end());
      return make_call(e, "case_when", args);
    }
    case ExprKind::kCast: {
      ARROW_ASSIGN_OR_RAISE(auto arg, bind_node(*e.args[0]));
      auto target = sql::parse_type(e.type_name);
      if (!target.ok()) return error(e, target.status().message());
      const bool text_of_bytes = is_binary_type(*arg.type) && is_string_type(**target);
      if (e.name == "TRY_CAST" && !text_of_bytes) {  // bytes -> text never fails
        if (!arrow::compute::CanCast(*arg.type, **target)) {
          return error(e, fmt::format("cannot cast {} to {}", sql::sql_type_name(*arg.type), sql::sql_type_name(**target)));
        }
        ARROW_ASSIGN_OR_RAISE(auto function, try_cast_function(*target));
        return make_call(e, function, {arg.expr});
      }
      // Spark truncates fractions (DOUBLE -> INT) and sub-day time (TIMESTAMP -> DATE); an
      // out-of-range value is still an error.
      auto options = std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(*target));
      options->allow_time_truncate = true;
      auto from = arg.expr;
      if (arrow::is_floating(arg.type->id()) && arrow::is_integer((*target)->id())) {
        // Truncate first, then a safe cast checks the range: Arrow's allow_float_truncate also
        // let 1e10 -> INT wrap to -2147483648 where ANSI Spark errors.
        from = cp::call("trunc", {from});
      } else {
        options->allow_float_truncate = true;
      }
      ARROW_ASSIGN_OR_RAISE(auto cast, cast_expr(from, *arg.type, *target, options));
      const auto* call = cast.call();
      return make_call(e, call->function_name, call->arguments, call->options);
    }
    case ExprKind::kFunction:
      if (e.args.empty() && e.parts.size() == 1) {
        // `current_date` / `current_timestamp` without parentheses: a column of that name, if the
        // input has one, as Spark resolves it (its reserved-keyword mode is off by default).
        if (input_->GetFieldIndex(e.parts[0]) >= 0 || match_column(e.parts[0]) != -1) {
          Expr column;
          column.kind = ExprKind::kColumn;
          column.loc = e.loc;
          column.parts = e.parts;
          return bind_node(column);  // resolved (or refused as ambiguous) as any column is
        }
      }
      return bind_function(e);
    case ExprKind::kSubscript: {
      ARROW_ASSIGN_OR_RAISE(auto x, bind_node(*e.args[0]));
      const Expr& index = *e.args[1];
      if (x.type->id() == arrow::Type::MAP) {
        ARROW_ASSIGN_OR_RAISE(auto key, bind_node(index));
        if (index.kind != ExprKind::kLiteral) return error(index, "a map key must be a literal");
        auto key_scalar = key.expr.literal()->scalar();
        return make_call(e, "map_lookup", {x.expr},
                         std::make_shared<cp::MapLookupOptions>(key_scalar, cp::MapLookupOptions::FIRST));
      }
      if (x.type->id() != arrow::Type::LIST) {
        return error(e, fmt::format("cannot index into {}", sql::sql_type_name(*x.type)));
      }
      ARROW_ASSIGN_OR_RAISE(auto i, bind_node(index));
      return make_call(e, "list_element", {x.expr, i.expr});
    }
    case ExprKind::kField: {
      ARROW_ASSIGN_OR_RAISE(auto x, bind_node(*e.args[0]));
      if (x.type->id() != arrow::Type::STRUCT) {
        return error(e, fmt::format("{} has no field '{}'", sql::sql_type_name(*x.type), e.name));
      }
      int index = static_cast<const arrow::StructType&>(*x.type).GetFieldIndex(e.name);
      if (index < 0) return error(e, fmt::format("struct has no field '{}'", e.name));
      return make_call(e, "struct_field", {x.expr}, std::make_shared<cp::StructFieldOptions>(std::vector<int>{index}));
    }
    case ExprKind::kJsonPath: {
      // value:a.b[0] (Databricks) = get_json_object(value, '$.a.b[0]') as STRING.
      ARROW_ASSIGN_OR_RAISE(auto x, bind_node(*e.args[0]));
      if (!is_string_type(*x.type) && x.type->id() != arrow::Type::BINARY) {
        return error(e, fmt::format("':' extracts from JSON text, not from {}", sql::sql_type_name(*x.type)));
      }
      auto function = json_path_function("$." + e.name);
      if (!function.ok()) return error(e, function.status().message());
      return make_call(e, *function, {x.expr});
    }
    default:
      return error(e, "this kind of expression is not supported here yet");
  }
}

int ExpressionBinder::match_column(const std::string& name) const {
  const std::string want = to_lower(name);
  int index = -1;
  for (int i = 0; i < input_->num_fields(); ++i) {
    const std::string have = to_lower(input_->field(i)->name());
    const bool suffix = have.size() > want.size() && have.compare(have.size() - want.size(), want.size(), want) == 0 &&
                        have[have.size() - want.size() - 1] == '.';
    if (have == want || suffix) {
      if (index >= 0) return -2;
      index = i;
    }
  }
  return index;
}

arrow::Result<BoundExpression> ExpressionBinder::bind_function(const Expr& e) const {
  const std::string name = to_lower(e.name);
  std::vector<BoundExpression> args;
  for (const auto& a : e.args) {
    if (a->kind == ExprKind::kStar) return error(*a, fmt::format("{}(*) is only valid for count", name));
    ARROW_ASSIGN_OR_RAISE(auto b, bind_node(*a));
    args.push_back(std::move(b));
  }
  const auto& registry = FunctionRegistry::instance();
  const FunctionDef* def = registry.find(name);
  if (!def) {
    auto near = registry.nearest(name);
    std::string hint = " (docs/functions.md lists the functions sluice runs)";
    if (!near.empty()) {
      hint = "; did you mean ";
      for (size_t i = 0; i < near.size(); ++i) hint += (i == 0 ? "" : i + 1 == near.size() ? " or " : ", ") + near[i];
      hint += "?";
    }
    return error(e, fmt::format("unknown function {}{}", e.name, hint));
  }
  const auto lo = static_cast<size_t>(def->min_args);
  const auto hi = static_cast<size_t>(def->max_args);
  if (args.size() < lo || args.size() > hi) {
    return error(e, lo == hi                 ? fmt::format("{} takes {} argument(s), got {}", name, lo, args.size())
                    : hi == size_t(kVariadic) ? fmt::format("{} takes at least {} argument(s), got {}", name, lo, args.size())
                                              : fmt::format("{} takes {} to {} arguments, got {}", name, lo, hi, args.size()));
  }
  return def->bind(FunctionCall(*this, e, name, std::move(args)));
}

arrow::Result<std::shared_ptr<arrow::Array>> evaluate(const BoundExpression& expr,
                                                      const arrow::RecordBatch& batch) {
  cp::ExecBatch input(batch);
  ARROW_ASSIGN_OR_RAISE(auto datum, cp::ExecuteScalarExpression(expr.expr, input));
  if (datum.is_scalar()) return arrow::MakeArrayFromScalar(*datum.scalar(), batch.num_rows());
  return datum.make_array();
}

}  // namespace sluice::exec
