// The SQL parser's expressions: precedence levels from OR down to primaries, CASE, INTERVAL and
// literals, each entered through the nesting bound (parser_internal.h).
#include "sluice/sql/parser_internal.h"

namespace sluice::sql::parser_detail {

ExprPtr Parser::make(ExprKind kind, Location loc) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->loc = loc;
  return e;
}

ExprPtr Parser::binary(std::string op, ExprPtr l, ExprPtr r, Location loc) {
  auto e = make(ExprKind::kBinary, loc);
  e->op = std::move(op);
  e->args.push_back(std::move(l));
  e->args.push_back(std::move(r));
  return e;
}

arrow::Result<ExprPtr> Parser::expression() {
  Nesting nesting(*this);
  ARROW_RETURN_NOT_OK(check_depth(peek()));
  return or_expr();
}

ExprPtr Parser::associative_chain(const std::string& op, std::vector<ExprPtr> operands,
                                 const std::vector<Location>& op_locs) {
  struct Part {
    ExprPtr expr;
    size_t first;  // index of its first operand
  };
  std::vector<Part> parts;
  for (size_t i = 0; i < operands.size(); i += kChainRun) {
    ExprPtr left = std::move(operands[i]);
    for (size_t k = i + 1; k < std::min(i + kChainRun, operands.size()); ++k) {
      left = binary(op, std::move(left), std::move(operands[k]), op_locs[k - 1]);
    }
    parts.push_back({std::move(left), i});
  }
  while (parts.size() > 1) {
    std::vector<Part> combined;
    for (size_t i = 0; i < parts.size(); i += 2) {
      if (i + 1 == parts.size()) {
        combined.push_back(std::move(parts[i]));
        break;
      }
      combined.push_back({binary(op, std::move(parts[i].expr), std::move(parts[i + 1].expr),
                                 op_locs[parts[i + 1].first - 1]),
                          parts[i].first});
    }
    parts = std::move(combined);
  }
  return std::move(parts[0].expr);
}

arrow::Result<ExprPtr> Parser::chain_of(const char* keyword, OperandParser operand) {
  ARROW_ASSIGN_OR_RAISE(auto first, (this->*operand)());
  if (!peek().is_keyword(keyword)) return first;
  std::vector<ExprPtr> operands;
  std::vector<Location> op_locs;
  operands.push_back(std::move(first));
  Nesting chain(*this, 0);
  while (peek().is_keyword(keyword)) {
    op_locs.push_back(next().loc);
    if (operands.size() < kChainRun) {
      chain.add();
      ARROW_RETURN_NOT_OK(check_depth(peek()));
    }
    ARROW_ASSIGN_OR_RAISE(auto right, (this->*operand)());
    operands.push_back(std::move(right));
  }
  return associative_chain(upper(keyword), std::move(operands), op_locs);
}

arrow::Result<ExprPtr> Parser::not_expr() {
  if (peek().is_keyword("NOT") || peek().is_op("!")) {
    Location loc = next().loc;
    Nesting nesting(*this);
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    ARROW_ASSIGN_OR_RAISE(auto inner, not_expr());
    auto e = make(ExprKind::kUnary, loc);
    e->op = "NOT";
    e->args.push_back(std::move(inner));
    return e;
  }
  return predicate();
}

arrow::Result<ExprPtr> Parser::predicate() {
  ARROW_ASSIGN_OR_RAISE(auto left, bitwise_or());
  Nesting chain(*this, 0);  // a = b = c, x IS NULL IS NULL, ...: each nests the left side
  while (true) {
    const Token& t = peek();
    Location loc = t.loc;
    static const char* kCompare[] = {"=", "==", "<>", "!=", "<", "<=", ">", ">=", "<=>"};
    bool is_cmp = false;
    for (const char* op : kCompare) is_cmp |= t.is_op(op);
    if (is_cmp || t.is_keyword("IS") || t.is_keyword("IN") || t.is_keyword("BETWEEN") || t.is_keyword("LIKE") ||
        t.is_keyword("ILIKE") || t.is_keyword("RLIKE") || t.is_keyword("REGEXP") || t.is_keyword("NOT")) {
      chain.add();
      ARROW_RETURN_NOT_OK(check_depth(t));
    }
    if (is_cmp) {
      std::string op = next().text;
      if (op == "==") op = "=";
      if (op == "!=") op = "<>";
      ARROW_ASSIGN_OR_RAISE(auto right, bitwise_or());
      left = binary(op, std::move(left), std::move(right), loc);
      continue;
    }
    if (t.is_keyword("IS")) {
      next();
      bool negated = accept_keyword("NOT");
      if (accept_keyword("NULL")) {
        auto e = make(ExprKind::kIsNull, loc);
        e->negated = negated;
        e->args.push_back(std::move(left));
        left = std::move(e);
      } else if (peek().is_keyword("TRUE") || peek().is_keyword("FALSE")) {
        auto e = make(ExprKind::kIsBool, loc);
        e->name = upper(next().text);
        e->negated = negated;
        e->args.push_back(std::move(left));
        left = std::move(e);
      } else if (accept_keyword("DISTINCT")) {
        ARROW_RETURN_NOT_OK(expect_keyword("FROM"));
        ARROW_ASSIGN_OR_RAISE(auto right, bitwise_or());
        // a IS DISTINCT FROM b  ==  NOT (a <=> b)
        auto eq = binary("<=>", std::move(left), std::move(right), loc);
        if (negated) {
          left = std::move(eq);
        } else {
          auto e = make(ExprKind::kUnary, loc);
          e->op = "NOT";
          e->args.push_back(std::move(eq));
          left = std::move(e);
        }
      } else {
        return error(peek(), "expected NULL, TRUE, FALSE or DISTINCT FROM after IS");
      }
      continue;
    }
    bool negated = false;
    if (t.is_keyword("NOT") && (peek(1).is_keyword("IN") || peek(1).is_keyword("BETWEEN") ||
                                peek(1).is_keyword("LIKE") || peek(1).is_keyword("ILIKE") ||
                                peek(1).is_keyword("RLIKE") || peek(1).is_keyword("REGEXP"))) {
      next();
      negated = true;
    }
    const Token& k = peek();
    if (k.is_keyword("IN")) {
      next();
      auto e = make(ExprKind::kIn, loc);
      e->negated = negated;
      e->args.push_back(std::move(left));
      ARROW_RETURN_NOT_OK(expect_op("("));
      if (peek().is_keyword("SELECT") || peek().is_keyword("WITH")) {
        ARROW_ASSIGN_OR_RAISE(e->query, query());
      } else {
        do {
          ARROW_ASSIGN_OR_RAISE(auto v, expression());
          e->args.push_back(std::move(v));
        } while (accept_op(","));
      }
      ARROW_RETURN_NOT_OK(expect_op(")"));
      left = std::move(e);
    } else if (k.is_keyword("BETWEEN")) {
      next();
      auto e = make(ExprKind::kBetween, loc);
      e->negated = negated;
      e->args.push_back(std::move(left));
      ARROW_ASSIGN_OR_RAISE(auto low, bitwise_or());
      ARROW_RETURN_NOT_OK(expect_keyword("AND"));
      ARROW_ASSIGN_OR_RAISE(auto high, bitwise_or());
      e->args.push_back(std::move(low));
      e->args.push_back(std::move(high));
      left = std::move(e);
    } else if (k.is_keyword("LIKE") || k.is_keyword("ILIKE") || k.is_keyword("RLIKE") ||
               k.is_keyword("REGEXP")) {
      auto e = make(ExprKind::kLike, loc);
      e->op = upper(next().text);
      if (e->op == "REGEXP") e->op = "RLIKE";
      e->negated = negated;
      e->args.push_back(std::move(left));
      ARROW_ASSIGN_OR_RAISE(auto pattern, bitwise_or());
      e->args.push_back(std::move(pattern));
      left = std::move(e);
    } else {
      if (negated) return error(k, "expected IN, BETWEEN or LIKE after NOT");
      return left;
    }
  }
}

arrow::Result<ExprPtr> Parser::bitwise_or() {
  ARROW_ASSIGN_OR_RAISE(auto left, bitwise_and());
  Nesting chain(*this, 0);
  while (peek().is_op("|") || peek().is_op("^")) {
    chain.add();
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    Location loc = peek().loc;
    std::string op = next().text;
    ARROW_ASSIGN_OR_RAISE(auto right, bitwise_and());
    left = binary(op, std::move(left), std::move(right), loc);
  }
  return left;
}

arrow::Result<ExprPtr> Parser::bitwise_and() {
  ARROW_ASSIGN_OR_RAISE(auto left, additive());
  Nesting chain(*this, 0);
  while (peek().is_op("&")) {
    chain.add();
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    Location loc = next().loc;
    ARROW_ASSIGN_OR_RAISE(auto right, additive());
    left = binary("&", std::move(left), std::move(right), loc);
  }
  return left;
}

arrow::Result<ExprPtr> Parser::additive() {
  ARROW_ASSIGN_OR_RAISE(auto left, multiplicative());
  std::vector<ExprPtr> operands;
  std::vector<std::string> ops;
  std::vector<Location> op_locs;
  operands.push_back(std::move(left));
  Nesting chain(*this, 0);
  size_t concat_run = 0;
  while (peek().is_op("+") || peek().is_op("-") || peek().is_op("||")) {
    op_locs.push_back(peek().loc);
    ops.push_back(next().text);
    concat_run = ops.back() == "||" ? concat_run + 1 : 0;
    if (concat_run == 0 || concat_run <= kChainRun) {
      chain.add();
      ARROW_RETURN_NOT_OK(check_depth(peek()));
    }
    ARROW_ASSIGN_OR_RAISE(auto right, multiplicative());
    operands.push_back(std::move(right));
  }
  left = std::move(operands[0]);
  for (size_t i = 0; i < ops.size();) {
    if (ops[i] != "||") {
      left = binary(ops[i], std::move(left), std::move(operands[i + 1]), op_locs[i]);
      ++i;
      continue;
    }
    size_t end = i;
    while (end < ops.size() && ops[end] == "||") ++end;
    std::vector<ExprPtr> run;
    run.push_back(std::move(left));
    for (size_t k = i; k < end; ++k) run.push_back(std::move(operands[k + 1]));
    left = associative_chain("||", std::move(run),
                             std::vector<Location>(op_locs.begin() + static_cast<long>(i),
                                                   op_locs.begin() + static_cast<long>(end)));
    i = end;
  }
  return left;
}

arrow::Result<ExprPtr> Parser::multiplicative() {
  ARROW_ASSIGN_OR_RAISE(auto left, unary());
  Nesting chain(*this, 0);
  while (peek().is_op("*") || peek().is_op("/") || peek().is_op("%") || peek().is_keyword("DIV")) {
    chain.add();
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    Location loc = peek().loc;
    std::string op = upper(next().text);
    ARROW_ASSIGN_OR_RAISE(auto right, unary());
    left = binary(op, std::move(left), std::move(right), loc);
  }
  return left;
}

arrow::Result<ExprPtr> Parser::unary() {
  if (peek().is_op("-") || peek().is_op("+") || peek().is_op("~")) {
    Location loc = peek().loc;
    std::string op = next().text;
    Nesting nesting(*this);
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    ARROW_ASSIGN_OR_RAISE(auto inner, unary());
    // Fold -<number> into a literal so that the minimum integers parse.
    if (op == "-" && inner->kind == ExprKind::kLiteral &&
        (inner->literal_type == "integer" || inner->literal_type == "decimal") &&
        inner->value[0] != '-') {
      inner->value = "-" + inner->value;
      inner->loc = loc;
      return inner;
    }
    if (op == "+") return inner;
    auto e = make(ExprKind::kUnary, loc);
    e->op = op;
    e->args.push_back(std::move(inner));
    return e;
  }
  return postfix();
}

arrow::Result<ExprPtr> Parser::postfix() {
  ARROW_ASSIGN_OR_RAISE(auto e, primary());
  Nesting chain(*this, 0);  // a[0][1]..., x::INT::STRING...: each nests the left side
  while (true) {
    Location loc = peek().loc;
    if (peek().is_op("[") || peek().is_op(".") || peek().is_op("::") || peek().is_op(":")) {
      chain.add();
      ARROW_RETURN_NOT_OK(check_depth(peek()));
    }
    if (accept_op("[")) {
      auto s = make(ExprKind::kSubscript, loc);
      s->args.push_back(std::move(e));
      ARROW_ASSIGN_OR_RAISE(auto index, expression());
      s->args.push_back(std::move(index));
      ARROW_RETURN_NOT_OK(expect_op("]"));
      e = std::move(s);
    } else if (peek().is_op(".") && (e->kind != ExprKind::kColumn || e->parenthesized)) {
      next();
      if (accept_op("*")) {
        return error(tokens_[pos_ - 1], "expected a field name after '.'");
      }
      auto f = make(ExprKind::kField, loc);
      ARROW_ASSIGN_OR_RAISE(f->name, any_identifier("a field name"));
      f->args.push_back(std::move(e));
      e = std::move(f);
    } else if (peek().is_op("::")) {
      next();
      auto c = make(ExprKind::kCast, loc);
      c->name = "CAST";
      ARROW_ASSIGN_OR_RAISE(c->type_name, type_name());
      c->args.push_back(std::move(e));
      e = std::move(c);
    } else if (peek().is_op(":") && (peek(1).kind == TokenKind::kIdentifier ||
                                     peek(1).kind == TokenKind::kQuotedIdentifier)) {
      // Databricks JSON path: value:a.b[0].c
      next();
      auto j = make(ExprKind::kJsonPath, loc);
      std::string path = next().text;
      while (true) {
        if (peek().is_op(".") && (peek(1).kind == TokenKind::kIdentifier ||
                                  peek(1).kind == TokenKind::kQuotedIdentifier)) {
          next();
          path += "." + next().text;
        } else if (peek().is_op("[") && (peek(1).kind == TokenKind::kInteger ||
                                         peek(1).kind == TokenKind::kString) &&
                   peek(2).is_op("]")) {
          next();
          const Token& idx = next();
          path += idx.kind == TokenKind::kInteger ? "[" + idx.text + "]" : "['" + idx.text + "']";
          next();
        } else {
          break;
        }
      }
      j->name = path;
      j->args.push_back(std::move(e));
      e = std::move(j);
    } else {
      return e;
    }
  }
}

arrow::Result<ExprPtr> Parser::literal(const char* type, const Token& t) {
  auto e = make(ExprKind::kLiteral, t.loc);
  e->literal_type = type;
  e->value = t.text;
  return e;
}

arrow::Result<ExprPtr> Parser::interval() {
  // INTERVAL 10 MINUTES | INTERVAL '10' MINUTE | INTERVAL '10 minutes' | INTERVAL 1 HOUR 30 MINUTES
  Location loc = next().loc;  // INTERVAL
  static const std::set<std::string> kUnits = {
      "YEAR", "YEARS", "MONTH", "MONTHS", "WEEK", "WEEKS", "DAY", "DAYS", "HOUR", "HOURS",
      "MINUTE", "MINUTES", "SECOND", "SECONDS", "MILLISECOND", "MILLISECONDS", "MICROSECOND",
      "MICROSECONDS"};
  std::string value;
  if (peek().kind == TokenKind::kString && !kUnits.count(upper(peek(1).text))) {
    value = next().text;
  } else {
    do {
      const Token& n = peek();
      std::string amount;
      if (n.kind == TokenKind::kInteger || n.kind == TokenKind::kDecimal || n.kind == TokenKind::kString) {
        amount = next().text;
      } else if (n.is_op("-") && (peek(1).kind == TokenKind::kInteger)) {
        next();
        amount = "-" + next().text;
      } else {
        return error(n, "expected a number after INTERVAL");
      }
      const Token& u = peek();
      if (u.kind != TokenKind::kIdentifier || !kUnits.count(upper(u.text))) {
        return error(u, "expected an interval unit (SECOND, MINUTE, HOUR, DAY, ...)");
      }
      std::string unit = upper(next().text);
      for (auto& c : unit) c = static_cast<char>(std::tolower(c));
      if (unit.back() != 's') unit += "s";
      value += (value.empty() ? "" : " ") + amount + " " + unit;
    } while (peek().kind == TokenKind::kInteger || peek().kind == TokenKind::kDecimal ||
             (peek().kind == TokenKind::kString && kUnits.count(upper(peek(1).text))));
  }
  auto e = make(ExprKind::kLiteral, loc);
  e->literal_type = "interval";
  e->value = value;
  return e;
}

arrow::Result<ExprPtr> Parser::primary() {
  const Token& t = peek();
  switch (t.kind) {
    case TokenKind::kInteger: next(); return literal("integer", t);
    case TokenKind::kDecimal: next(); return literal("decimal", t);
    case TokenKind::kString: next(); return literal("string", t);
    case TokenKind::kParameter: return error(t, "");
    case TokenKind::kEnd: return error(t, "expected an expression");
    case TokenKind::kOperator: {
      if (t.is_op("*")) {
        auto e = make(ExprKind::kStar, next().loc);
        ARROW_RETURN_NOT_OK(star_except(*e));
        return e;
      }
      if (t.is_op("(")) {
        next();
        if (peek().is_keyword("SELECT") || peek().is_keyword("WITH")) {
          auto e = make(ExprKind::kSubquery, t.loc);
          ARROW_ASSIGN_OR_RAISE(e->query, query());
          ARROW_RETURN_NOT_OK(expect_op(")"));
          return e;
        }
        ARROW_ASSIGN_OR_RAISE(auto inner, expression());
        ARROW_RETURN_NOT_OK(expect_op(")"));
        inner->parenthesized = true;
        return inner;
      }
      return error(t, "expected an expression");
    }
    case TokenKind::kQuotedIdentifier:
    case TokenKind::kIdentifier:
      break;
  }
  if (t.kind == TokenKind::kIdentifier) {
    const std::string k = upper(t.text);
    if (k == "NULL") { next(); return literal("null", t); }
    if (k == "TRUE" || k == "FALSE") {
      next();
      auto e = make(ExprKind::kLiteral, t.loc);
      e->literal_type = "boolean";
      e->value = k == "TRUE" ? "true" : "false";
      return e;
    }
    if ((k == "DATE" || k == "TIMESTAMP" || k == "TIMESTAMP_NTZ") && peek(1).kind == TokenKind::kString) {
      next();
      auto e = make(ExprKind::kLiteral, t.loc);
      e->literal_type = k == "DATE" ? "date" : k == "TIMESTAMP" ? "timestamp" : "timestamp_ntz";
      e->value = next().text;
      return e;
    }
    if (k == "INTERVAL") return interval();
    if (k == "CASE") return case_expr();
    if ((k == "CAST" || k == "TRY_CAST") && peek(1).is_op("(")) {
      auto e = make(ExprKind::kCast, next().loc);
      e->name = k;
      next();
      ARROW_ASSIGN_OR_RAISE(auto inner, expression());
      ARROW_RETURN_NOT_OK(expect_keyword("AS"));
      ARROW_ASSIGN_OR_RAISE(e->type_name, type_name());
      ARROW_RETURN_NOT_OK(expect_op(")"));
      e->args.push_back(std::move(inner));
      return e;
    }
    if (k == "EXTRACT" && peek(1).is_op("(")) {
      // EXTRACT(field FROM source) is extract('field', source), as date_part binds it.
      auto e = make(ExprKind::kFunction, next().loc);
      e->name = "extract";
      next();
      const Token& field = peek();
      if (field.kind != TokenKind::kIdentifier && field.kind != TokenKind::kString) {
        return error(field, "expected a field name such as YEAR or HOUR after EXTRACT(");
      }
      auto name = make(ExprKind::kLiteral, field.loc);
      name->literal_type = "string";
      name->value = next().text;
      ARROW_RETURN_NOT_OK(expect_keyword("FROM"));
      ARROW_ASSIGN_OR_RAISE(auto source, expression());
      ARROW_RETURN_NOT_OK(expect_op(")"));
      e->args.push_back(std::move(name));
      e->args.push_back(std::move(source));
      return e;
    }
    if ((k == "CURRENT_DATE" || k == "CURRENT_TIMESTAMP") && !peek(1).is_op("(") && !peek(1).is_op(".")) {
      // Spark's niladic spellings: current_date and current_timestamp without parentheses.
      auto e = make(ExprKind::kFunction, next().loc);
      e->name = k == "CURRENT_DATE" ? "current_date" : "current_timestamp";
      // Written without parentheses: as in Spark, a column of that name wins (the binder looks).
      e->parts = {e->name};
      return e;
    }
    if (k == "EXISTS" && peek(1).is_op("(")) {
      auto e = make(ExprKind::kExists, next().loc);
      next();
      ARROW_ASSIGN_OR_RAISE(e->query, query());
      ARROW_RETURN_NOT_OK(expect_op(")"));
      return e;
    }
    if (kReserved.count(k) && !peek(1).is_op("(")) return error(t, "expected an expression");
  }
  // Column reference, qualified star, or function call.
  Location loc = t.loc;
  std::vector<std::string> parts{next().text};
  while (peek().is_op(".")) {
    if (peek(1).is_op("*")) {
      next();
      next();
      auto e = make(ExprKind::kStar, loc);
      e->parts = parts;
      ARROW_RETURN_NOT_OK(star_except(*e));
      return e;
    }
    if (peek(1).kind != TokenKind::kIdentifier && peek(1).kind != TokenKind::kQuotedIdentifier) {
      next();
      return error(peek(), "expected a name after '.'");
    }
    next();
    parts.push_back(next().text);
  }
  if (peek().is_op("(")) {
    next();
    auto e = make(ExprKind::kFunction, loc);
    for (const auto& p : parts) e->name += (e->name.empty() ? "" : ".") + p;
    if (accept_keyword("DISTINCT")) {
      e->distinct = true;
    } else {
      accept_keyword("ALL");
    }
    if (!peek().is_op(")")) {
      do {
        if (peek().is_op("*") && peek(1).is_op(")")) {
          e->args.push_back(make(ExprKind::kStar, next().loc));
          break;
        }
        ARROW_ASSIGN_OR_RAISE(auto arg, function_argument());
        e->args.push_back(std::move(arg));
      } while (accept_op(","));
    }
    ARROW_RETURN_NOT_OK(expect_op(")"));
    return e;
  }
  auto e = make(ExprKind::kColumn, loc);
  e->parts = std::move(parts);
  return e;
}

arrow::Status Parser::star_except(Expr& star) {
  if (!accept_keyword("EXCEPT")) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(star.except, identifier_list("a column name"));
  return arrow::Status::OK();
}

arrow::Result<ExprPtr> Parser::case_expr() {
  auto e = make(ExprKind::kCase, next().loc);
  if (!peek().is_keyword("WHEN")) {
    ARROW_ASSIGN_OR_RAISE(auto operand, expression());
    e->args.push_back(std::move(operand));
    e->has_operand = true;
  }
  if (!peek().is_keyword("WHEN")) return error(peek(), "expected WHEN");
  while (accept_keyword("WHEN")) {
    ARROW_ASSIGN_OR_RAISE(auto cond, expression());
    ARROW_RETURN_NOT_OK(expect_keyword("THEN"));
    ARROW_ASSIGN_OR_RAISE(auto value, expression());
    e->args.push_back(std::move(cond));
    e->args.push_back(std::move(value));
  }
  if (accept_keyword("ELSE")) {
    ARROW_ASSIGN_OR_RAISE(auto value, expression());
    e->args.push_back(std::move(value));
    e->has_else = true;
  }
  ARROW_RETURN_NOT_OK(expect_keyword("END"));
  return e;
}

}  // namespace sluice::sql::parser_detail
