// The recursive-descent parser's class, shared by the files that define its parts: statements,
// types and queries (parser.cc) and expressions (parser_expressions.cc). Internal to sluice/sql:
// everything else calls parse_statements / parse_expression (parser.h).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/lexer.h"
#include "sluice/sql/parser.h"

namespace sluice::sql::parser_detail {

// Words that end an expression or clause, so they are never taken as an implicit alias.
inline const std::set<std::string> kReserved = {
    "ALL",    "AND",     "ANTI",  "APPLY",    "AS",      "ASC",       "BETWEEN", "BY",
    "CASE",   "CLUSTER", "COLUMNS", "COMMENT", "CONSTRAINT", "CROSS", "DELAY",   "DESC",
    "DISTINCT", "ELSE",  "END",   "EXCEPT",   "EXISTS",  "FROM",      "FULL",    "GROUP",
    "HAVING", "IGNORE",  "ILIKE", "IN",       "INNER",   "INTERSECT", "IS",      "JOIN",
    "KEYS",   "LEFT",    "LIKE",  "LIMIT",    "NATURAL", "NOT",       "NULLS",   "ON",
    "OR",     "ORDER",   "OUTER", "PARTITIONED", "REGEXP", "RIGHT",   "RLIKE",   "SELECT",
    "SEMI",   "SEQUENCE", "STORED", "TBLPROPERTIES", "THEN", "UNION", "USING",   "WATERMARK",
    "WHEN",   "WHERE",   "WITH",  "LOCATION", "TRACK"};

inline std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class Parser {
 public:
  Parser(const SourceFile& file, std::vector<Token> tokens)
      : file_(file), tokens_(std::move(tokens)) {}

  arrow::Result<std::vector<Statement>> statements() {
    std::vector<Statement> out;
    while (true) {
      while (peek().is_op(";")) next();
      if (peek().kind == TokenKind::kEnd) break;
      ARROW_ASSIGN_OR_RAISE(auto st, statement());
      out.push_back(std::move(st));
      if (!peek().is_op(";") && peek().kind != TokenKind::kEnd) {
        return error(peek(), "expected ';' or the end of the statement");
      }
    }
    return out;
  }

  // `sluice sql` commands (parser_dml.cc).
  arrow::Result<Command> command();

  arrow::Result<ExprPtr> single_expression() {
    ARROW_ASSIGN_OR_RAISE(auto e, expression());
    if (peek().kind != TokenKind::kEnd) return error(peek(), "expected end of expression");
    return e;
  }

 private:
  // ---- token helpers -------------------------------------------------------------------
  const Token& peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[i];
  }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool accept_keyword(const char* k) {
    if (!peek().is_keyword(k)) return false;
    next();
    return true;
  }
  bool accept_op(const char* op) {
    if (!peek().is_op(op)) return false;
    next();
    return true;
  }
  arrow::Status error(const Token& at, const std::string& expected) const {
    std::string found = at.kind == TokenKind::kEnd ? "end of input" : at.describe();
    if (at.kind == TokenKind::kParameter) {
      return arrow::Status::Invalid(format_error(
          file_, at.loc, fmt::format("unknown configuration variable '${{{}}}'", at.text)));
    }
    return arrow::Status::Invalid(
        format_error(file_, at.loc, fmt::format("{} but found {}", expected, found)));
  }
  // One bound on every recursive path (parentheses, subqueries, CASE, function calls, types,
  // NOT and unary prefixes, and each further term of a left-deep chain such as a + b + c), so
  // the parser, and every later pass that recurses over the tree it builds, has a bounded
  // depth. Entered by a Nesting guard; checked with check_depth().
  class Nesting {
   public:
    explicit Nesting(Parser& p, int levels = 1) : p_(p), levels_(levels) { p_.depth_ += levels_; }
    ~Nesting() { p_.depth_ -= levels_; }
    void add() {
      ++levels_;
      ++p_.depth_;
    }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Parser& p_;
    int levels_;
  };
  arrow::Status check_depth(const Token& at) const {
    if (depth_ <= kMaxNestingDepth) return arrow::Status::OK();
    return arrow::Status::Invalid(format_error(
        file_, at.loc,
        fmt::format("the SQL nests deeper than {} levels here (parentheses, subqueries, CASE, function "
                    "calls, NOT and each term of a chain of +, -, *, =, ... count; AND/OR, || chains and "
                    "IN lists do not): split it up, e.g. into views or CTEs",
                    kMaxNestingDepth)));
  }

  arrow::Status expect_keyword(const char* k) {
    if (accept_keyword(k)) return arrow::Status::OK();
    return error(peek(), fmt::format("expected {}", k));
  }
  arrow::Status expect_op(const char* op) {
    if (accept_op(op)) return arrow::Status::OK();
    return error(peek(), fmt::format("expected '{}'", op));
  }
  // LATERAL is not reserved (SELECT lateral FROM t is valid, as in Spark): LATERAL VIEW is told
  // apart by the next token.
  bool lateral_view_ahead() const { return peek().is_keyword("LATERAL") && peek(1).is_keyword("VIEW"); }
  bool is_identifier(const Token& t) const {
    return t.kind == TokenKind::kQuotedIdentifier ||
           (t.kind == TokenKind::kIdentifier && !kReserved.count(upper(t.text)));
  }
  arrow::Result<std::string> identifier(const char* what = "a name") {
    const Token& t = peek();
    if (t.kind == TokenKind::kQuotedIdentifier || t.kind == TokenKind::kIdentifier) {
      if (t.kind == TokenKind::kIdentifier && kReserved.count(upper(t.text))) {
        return error(t, fmt::format("expected {} (use `{}` to name something {})", what, t.text,
                                    t.text));
      }
      return next().text;
    }
    return error(t, fmt::format("expected {}", what));
  }
  // a.b.c (LIVE.x allowed)
  arrow::Result<std::vector<std::string>> qualified_name(const char* what) {
    std::vector<std::string> parts;
    ARROW_ASSIGN_OR_RAISE(auto first, identifier(what));
    parts.push_back(first);
    while (peek().is_op(".") && (peek(1).kind == TokenKind::kIdentifier ||
                                 peek(1).kind == TokenKind::kQuotedIdentifier)) {
      next();
      parts.push_back(next().text);
    }
    return parts;
  }
  arrow::Result<std::string> string_literal(const char* what) {
    if (peek().kind != TokenKind::kString) return error(peek(), fmt::format("expected {}", what));
    return next().text;
  }
  arrow::Result<std::vector<std::string>> identifier_list(const char* what) {
    ARROW_RETURN_NOT_OK(expect_op("("));
    std::vector<std::string> out;
    do {
      ARROW_ASSIGN_OR_RAISE(auto parts, qualified_name(what));
      std::string joined;
      for (const auto& p : parts) joined += (joined.empty() ? "" : ".") + p;
      out.push_back(joined);
    } while (accept_op(","));
    ARROW_RETURN_NOT_OK(expect_op(")"));
    return out;
  }

  // ---- statements ------------------------------------------------------------------------
  arrow::Result<Statement> statement();

  arrow::Result<std::unique_ptr<CreateDataset>> create_dataset(DatasetKind kind, bool or_refresh,
                                                               Location loc);

  static std::string strip_live(const std::vector<std::string>& parts);
  // CLUSTER BY (c1, ...) of `d` (after CLUSTER), at most kMaxClusterByColumns.
  arrow::Status cluster_by(DatasetKind kind, CreateDataset* d);
  static std::string join_path(const std::vector<std::string>& path);
  static constexpr size_t kMaxClusterByColumns = 4;  // delta-spark's limit

  arrow::Result<std::unique_ptr<CreateFlow>> create_flow(Location loc);

  arrow::Result<std::unique_ptr<ApplyChanges>> apply_changes(Location loc);
  arrow::Result<std::unique_ptr<ApplyChanges>> apply_changes_body(Location loc);

  arrow::Result<std::unique_ptr<CreateSink>> create_sink(Location loc);
  // ---- DML (parser_dml.cc) ---------------------------------------------------------------
  arrow::Result<std::unique_ptr<TableRef>> dml_target(std::initializer_list<const char*> stop_words);
  arrow::Result<std::vector<Assignment>> assignments();
  arrow::Result<std::unique_ptr<DeleteStatement>> delete_statement(Location loc);
  arrow::Result<std::unique_ptr<UpdateStatement>> update_statement(Location loc);
  arrow::Result<std::unique_ptr<MergeStatement>> merge_statement(Location loc);
  arrow::Status merge_source(MergeStatement& merge);
  arrow::Result<MergeClause> merge_clause();

  // ---- types -----------------------------------------------------------------------------
  // A type as written, normalised: DECIMAL(10,2), ARRAY<STRING>, STRUCT<a: INT, b: STRING>.
  arrow::Result<std::string> type_name();
  // '>>' is lexed as two '>' tokens already; accept one.
  arrow::Status expect_close_angle() { return expect_op(">"); }
  arrow::Result<std::string> any_identifier(const char* what);

  // ---- queries ---------------------------------------------------------------------------
  arrow::Result<std::shared_ptr<Query>> query();

  arrow::Result<Select> select_or_parenthesised();

  arrow::Result<Select> select();

  arrow::Result<std::unique_ptr<TableRef>> table_expression();

  arrow::Result<std::unique_ptr<TableRef>> table_primary();

  arrow::Status named_table_or_function(TableRef& ref);

  arrow::Result<ExprPtr> function_argument();

  // ---- expressions -----------------------------------------------------------------------
  static ExprPtr make(ExprKind kind, Location loc);
  static ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, Location loc);

  arrow::Result<ExprPtr> expression();

  // Operands joined by an associative operator (AND, OR, ||): left-deep runs of up to
  // kChainRun operands, as written (short chains keep their usual shape, and so the names of
  // unaliased columns), combined pairwise into a balanced tree, so a 10,000-term OR is about
  // 20 levels deep, not 10,000. `op_locs[i]` is where the operator before operands[i + 1] is.
  static constexpr size_t kChainRun = 8;
  static ExprPtr associative_chain(const std::string& op, std::vector<ExprPtr> operands,
                                   const std::vector<Location>& op_locs);

  // a OR b OR ... / a AND b AND ...: the first kChainRun operands nest left-deep (and count
  // toward the depth), the rest go into the balanced part.
  using OperandParser = arrow::Result<ExprPtr> (Parser::*)();
  arrow::Result<ExprPtr> chain_of(const char* keyword, OperandParser operand);

  arrow::Result<ExprPtr> or_expr() { return chain_of("OR", &Parser::and_expr); }

  arrow::Result<ExprPtr> and_expr() { return chain_of("AND", &Parser::not_expr); }

  arrow::Result<ExprPtr> not_expr();

  arrow::Result<ExprPtr> predicate();

  arrow::Result<ExprPtr> bitwise_or();

  arrow::Result<ExprPtr> bitwise_and();

  // a + b - c || d: left-deep, except that runs of || (associative) are balanced like AND/OR.
  arrow::Result<ExprPtr> additive();

  arrow::Result<ExprPtr> multiplicative();

  arrow::Result<ExprPtr> unary();

  arrow::Result<ExprPtr> postfix();

  arrow::Result<ExprPtr> literal(const char* type, const Token& t);

  arrow::Result<ExprPtr> interval();

  arrow::Result<ExprPtr> primary();

  arrow::Status star_except(Expr& star);

  arrow::Result<ExprPtr> case_expr();

  const SourceFile& file_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace sluice::sql::parser_detail
