// Recursive-descent parser for the DLT SQL dialect.
#include "sluice/sql/parser.h"

#include <fmt/format.h>

#include <cctype>
#include <set>

#include "sluice/common/status.h"
#include "sluice/sql/lexer.h"

namespace sluice::sql {

namespace {

// Words that end an expression or clause, so they are never taken as an implicit alias.
const std::set<std::string> kReserved = {
    "ALL",    "AND",     "ANTI",  "APPLY",    "AS",      "ASC",       "BETWEEN", "BY",
    "CASE",   "CLUSTER", "COLUMNS", "COMMENT", "CONSTRAINT", "CROSS", "DELAY",   "DESC",
    "DISTINCT", "ELSE",  "END",   "EXCEPT",   "EXISTS",  "FROM",      "FULL",    "GROUP",
    "HAVING", "IGNORE",  "ILIKE", "IN",       "INNER",   "INTERSECT", "IS",      "JOIN",
    "KEYS",   "LEFT",    "LIKE",  "LIMIT",    "NATURAL", "NOT",       "NULLS",   "ON",
    "OR",     "ORDER",   "OUTER", "PARTITIONED", "REGEXP", "RIGHT",   "RLIKE",   "SELECT",
    "SEMI",   "SEQUENCE", "STORED", "TBLPROPERTIES", "THEN", "UNION", "USING",   "WATERMARK",
    "WHEN",   "WHERE",   "WITH",  "LOCATION", "TRACK"};

std::string upper(std::string s) {
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
  arrow::Result<Statement> statement() {
    const Token& start = peek();
    Statement st;
    if (accept_keyword("CREATE")) {
      bool or_refresh = false;
      if (accept_keyword("OR")) {
        if (accept_keyword("REFRESH")) {
          or_refresh = true;
        } else if (peek().is_keyword("REPLACE")) {
          // Databricks SQL's CREATE OR REPLACE drops what the table holds; a pipeline applies its
          // definitions on every run and keeps the data, so the words would mean nothing here:
          // refused rather than accepted and ignored.
          return arrow::Status::NotImplemented(format_error(
              file_, peek().loc,
              "CREATE OR REPLACE is not supported in a pipeline (its definitions are applied on every "
              "run and keep their data): write CREATE OR REFRESH; to rewrite a table's data run "
              "`sluice run --full-refresh <table>`"));
        } else {
          return error(peek(), "expected REFRESH or REPLACE after CREATE OR");
        }
      }
      if (accept_keyword("FLOW")) {
        ARROW_ASSIGN_OR_RAISE(st.flow, create_flow(start.loc));
        return st;
      }
      DatasetKind kind;
      if (accept_keyword("STREAMING")) {
        accept_keyword("LIVE");
        ARROW_RETURN_NOT_OK(expect_keyword("TABLE"));
        kind = DatasetKind::kStreamingTable;
      } else if (accept_keyword("MATERIALIZED")) {
        ARROW_RETURN_NOT_OK(expect_keyword("VIEW"));
        kind = DatasetKind::kMaterializedView;
      } else if (accept_keyword("TEMPORARY")) {
        accept_keyword("LIVE");
        ARROW_RETURN_NOT_OK(expect_keyword("VIEW"));
        kind = DatasetKind::kTemporaryView;
      } else if (accept_keyword("LIVE")) {
        if (accept_keyword("TABLE")) {
          kind = DatasetKind::kMaterializedView;  // legacy DLT: CREATE LIVE TABLE
        } else {
          ARROW_RETURN_NOT_OK(expect_keyword("VIEW"));
          kind = DatasetKind::kView;
        }
      } else if (accept_keyword("VIEW")) {
        kind = DatasetKind::kView;
      } else if (peek().is_keyword("TABLE")) {
        return error(peek(), "expected STREAMING TABLE, MATERIALIZED VIEW, VIEW or FLOW after CREATE "
                             "(a plain TABLE is not a pipeline dataset)");
      } else {
        return error(peek(), "expected STREAMING TABLE, MATERIALIZED VIEW, VIEW or FLOW after CREATE");
      }
      ARROW_ASSIGN_OR_RAISE(st.dataset, create_dataset(kind, or_refresh, start.loc));
      return st;
    }
    if (accept_keyword("APPLY")) {
      ARROW_ASSIGN_OR_RAISE(st.apply_changes, apply_changes(start.loc));
      return st;
    }
    return error(start, "expected CREATE or APPLY CHANGES at the start of a statement");
  }

  arrow::Result<std::unique_ptr<CreateDataset>> create_dataset(DatasetKind kind, bool or_refresh,
                                                               Location loc) {
    auto d = std::make_unique<CreateDataset>();
    d->kind = kind;
    d->or_refresh = or_refresh;
    d->loc = loc;
    if (peek().is_keyword("IF") && peek(1).is_keyword("NOT")) {
      // A pipeline owns its datasets' definitions: "only if it does not exist" has no meaning
      // here, and was once accepted and ignored.
      return arrow::Status::NotImplemented(format_error(
          file_, peek().loc,
          "IF NOT EXISTS is not supported in a pipeline (a dataset's definition is applied on every "
          "run): remove it"));
    }
    d->name_loc = peek().loc;
    ARROW_ASSIGN_OR_RAISE(auto name, qualified_name("a dataset name"));
    d->name = strip_live(name);
    if (accept_op("(")) {
      do {
        if (peek().is_op(")")) break;  // trailing comma
        if (accept_keyword("CONSTRAINT")) {
          Constraint c;
          c.loc = peek().loc;
          ARROW_ASSIGN_OR_RAISE(c.name, identifier("a constraint name"));
          ARROW_RETURN_NOT_OK(expect_keyword("EXPECT"));
          ARROW_RETURN_NOT_OK(expect_op("("));
          ARROW_ASSIGN_OR_RAISE(c.expr, expression());
          ARROW_RETURN_NOT_OK(expect_op(")"));
          if (accept_keyword("ON")) {
            ARROW_RETURN_NOT_OK(expect_keyword("VIOLATION"));
            if (accept_keyword("DROP")) {
              ARROW_RETURN_NOT_OK(expect_keyword("ROW"));
              c.action = ViolationAction::kDropRow;
            } else if (accept_keyword("FAIL")) {
              ARROW_RETURN_NOT_OK(expect_keyword("UPDATE"));
              c.action = ViolationAction::kFailUpdate;
            } else {
              return error(peek(), "expected DROP ROW or FAIL UPDATE after ON VIOLATION");
            }
          }
          d->constraints.push_back(std::move(c));
        } else {
          ColumnDef col;
          col.loc = peek().loc;
          ARROW_ASSIGN_OR_RAISE(col.name, identifier("a column name or CONSTRAINT"));
          ARROW_ASSIGN_OR_RAISE(col.type_name, type_name());
          while (true) {
            if (accept_keyword("NOT")) {
              ARROW_RETURN_NOT_OK(expect_keyword("NULL"));
              col.not_null = true;
            } else if (accept_keyword("COMMENT")) {
              ARROW_ASSIGN_OR_RAISE(col.comment, string_literal("a comment string"));
            } else {
              break;
            }
          }
          d->columns.push_back(std::move(col));
        }
      } while (accept_op(","));
      ARROW_RETURN_NOT_OK(expect_op(")"));
    }
    while (true) {
      if (accept_keyword("COMMENT")) {
        ARROW_ASSIGN_OR_RAISE(d->comment, string_literal("a comment string"));
      } else if (accept_keyword("PARTITIONED")) {
        ARROW_RETURN_NOT_OK(expect_keyword("BY"));
        ARROW_ASSIGN_OR_RAISE(d->partitioned_by, identifier_list("a column name"));
      } else if (peek().is_keyword("CLUSTER")) {
        // Liquid clustering needs the clustering table feature and OPTIMIZE: refused, not
        // accepted and dropped.
        return arrow::Status::NotImplemented(format_error(
            file_, peek().loc,
            "CLUSTER BY (liquid clustering) is not supported yet: remove it, or use PARTITIONED BY (...)"));
      } else if (accept_keyword("TBLPROPERTIES")) {
        ARROW_RETURN_NOT_OK(expect_op("("));
        do {
          std::string key;
          if (peek().kind == TokenKind::kString) {
            key = next().text;
          } else {
            ARROW_ASSIGN_OR_RAISE(auto parts, qualified_name("a property name"));
            for (const auto& p : parts) key += (key.empty() ? "" : ".") + p;
          }
          accept_op("=");
          const Token& v = peek();
          if (v.kind != TokenKind::kString && v.kind != TokenKind::kInteger &&
              v.kind != TokenKind::kDecimal && !v.is_keyword("TRUE") && !v.is_keyword("FALSE")) {
            return error(v, fmt::format("expected a value for property '{}'", key));
          }
          d->properties[key] = next().text;
        } while (accept_op(","));
        ARROW_RETURN_NOT_OK(expect_op(")"));
      } else {
        break;
      }
    }
    if (accept_keyword("AS")) {
      ARROW_ASSIGN_OR_RAISE(d->query, query());
    } else if (kind != DatasetKind::kStreamingTable) {
      return error(peek(), "expected AS followed by a query");
    } else if (!peek().is_op(";") && peek().kind != TokenKind::kEnd) {
      return error(peek(), "expected COMMENT, PARTITIONED BY, CLUSTER BY, TBLPROPERTIES or AS");
    }
    return d;
  }

  static std::string strip_live(const std::vector<std::string>& parts) {
    std::vector<std::string> p = parts;
    if (p.size() > 1 && upper(p[0]) == "LIVE") p.erase(p.begin());
    std::string out;
    for (const auto& s : p) out += (out.empty() ? "" : ".") + s;
    return out;
  }

  arrow::Result<std::unique_ptr<CreateFlow>> create_flow(Location loc) {
    auto f = std::make_unique<CreateFlow>();
    f->loc = loc;
    f->name_loc = peek().loc;
    ARROW_ASSIGN_OR_RAISE(f->name, identifier("a flow name"));
    if (accept_keyword("COMMENT")) {
      ARROW_ASSIGN_OR_RAISE(f->comment, string_literal("a comment string"));
    }
    ARROW_RETURN_NOT_OK(expect_keyword("AS"));
    ARROW_RETURN_NOT_OK(expect_keyword("INSERT"));
    ARROW_RETURN_NOT_OK(expect_keyword("INTO"));
    f->target_loc = peek().loc;
    ARROW_ASSIGN_OR_RAISE(auto target, qualified_name("a target table"));
    f->target = strip_live(target);
    if (accept_keyword("BY")) {
      ARROW_RETURN_NOT_OK(expect_keyword("NAME"));
      f->by_name = true;
    }
    ARROW_ASSIGN_OR_RAISE(f->query, query());
    return f;
  }

  arrow::Result<std::unique_ptr<ApplyChanges>> apply_changes(Location loc) {
    auto a = std::make_unique<ApplyChanges>();
    a->loc = loc;
    ARROW_RETURN_NOT_OK(expect_keyword("CHANGES"));
    ARROW_RETURN_NOT_OK(expect_keyword("INTO"));
    a->target_loc = peek().loc;
    ARROW_ASSIGN_OR_RAISE(auto target, qualified_name("a target table"));
    a->target = strip_live(target);
    ARROW_RETURN_NOT_OK(expect_keyword("FROM"));
    ARROW_ASSIGN_OR_RAISE(a->source, table_primary());
    ARROW_RETURN_NOT_OK(expect_keyword("KEYS"));
    ARROW_ASSIGN_OR_RAISE(a->keys, identifier_list("a key column"));
    bool have_sequence = false;
    while (true) {
      if (accept_keyword("IGNORE")) {
        ARROW_RETURN_NOT_OK(expect_keyword("NULL"));
        ARROW_RETURN_NOT_OK(expect_keyword("UPDATES"));
      } else if (accept_keyword("APPLY")) {
        ARROW_RETURN_NOT_OK(expect_keyword("AS"));
        if (accept_keyword("DELETE")) {
          ARROW_RETURN_NOT_OK(expect_keyword("WHEN"));
          ARROW_ASSIGN_OR_RAISE(a->delete_when, expression());
        } else if (accept_keyword("TRUNCATE")) {
          ARROW_RETURN_NOT_OK(expect_keyword("WHEN"));
          ARROW_ASSIGN_OR_RAISE(a->truncate_when, expression());
        } else {
          return error(peek(), "expected DELETE or TRUNCATE after APPLY AS");
        }
      } else if (accept_keyword("SEQUENCE")) {
        ARROW_RETURN_NOT_OK(expect_keyword("BY"));
        ARROW_ASSIGN_OR_RAISE(a->sequence_by, expression());
        have_sequence = true;
      } else if (accept_keyword("COLUMNS")) {
        if (accept_op("*")) {
          ARROW_RETURN_NOT_OK(expect_keyword("EXCEPT"));
          ARROW_ASSIGN_OR_RAISE(a->except_columns, identifier_list("a column name"));
        } else {
          do {
            ARROW_ASSIGN_OR_RAISE(auto c, identifier("a column name"));
            a->columns.push_back(c);
          } while (accept_op(","));
        }
      } else if (accept_keyword("STORED")) {
        ARROW_RETURN_NOT_OK(expect_keyword("AS"));
        ARROW_RETURN_NOT_OK(expect_keyword("SCD"));
        ARROW_RETURN_NOT_OK(expect_keyword("TYPE"));
        const Token& t = peek();
        if (t.kind != TokenKind::kInteger || (t.text != "1" && t.text != "2")) {
          return error(t, "expected SCD TYPE 1 or 2");
        }
        a->scd_type = std::stoi(next().text);
      } else if (accept_keyword("TRACK")) {
        ARROW_RETURN_NOT_OK(expect_keyword("HISTORY"));
        ARROW_RETURN_NOT_OK(expect_keyword("ON"));
        if (!accept_op("*")) {
          do {
            ARROW_RETURN_NOT_OK(identifier("a column name").status());
          } while (accept_op(","));
        }
      } else {
        break;
      }
    }
    if (!have_sequence) return error(peek(), "expected SEQUENCE BY (APPLY CHANGES needs an ordering column)");
    return a;
  }

  // ---- types -----------------------------------------------------------------------------
  // A type as written, normalised: DECIMAL(10,2), ARRAY<STRING>, STRUCT<a: INT, b: STRING>.
  arrow::Result<std::string> type_name() {
    Nesting nesting(*this);
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    const Token& t = peek();
    if (t.kind != TokenKind::kIdentifier) return error(t, "expected a type name");
    std::string name = upper(next().text);
    if (name == "ARRAY") {
      ARROW_RETURN_NOT_OK(expect_op("<"));
      ARROW_ASSIGN_OR_RAISE(auto inner, type_name());
      ARROW_RETURN_NOT_OK(expect_close_angle());
      return "ARRAY<" + inner + ">";
    }
    if (name == "MAP") {
      ARROW_RETURN_NOT_OK(expect_op("<"));
      ARROW_ASSIGN_OR_RAISE(auto k, type_name());
      ARROW_RETURN_NOT_OK(expect_op(","));
      ARROW_ASSIGN_OR_RAISE(auto v, type_name());
      ARROW_RETURN_NOT_OK(expect_close_angle());
      return "MAP<" + k + ", " + v + ">";
    }
    if (name == "STRUCT") {
      ARROW_RETURN_NOT_OK(expect_op("<"));
      std::string out = "STRUCT<";
      bool first = true;
      if (!peek().is_op(">")) {
        do {
          ARROW_ASSIGN_OR_RAISE(auto field, any_identifier("a field name"));
          accept_op(":");
          ARROW_ASSIGN_OR_RAISE(auto ft, type_name());
          bool not_null = false;
          if (accept_keyword("NOT")) {
            ARROW_RETURN_NOT_OK(expect_keyword("NULL"));
            not_null = true;
          }
          out += (first ? "" : ", ") + field + ": " + ft + (not_null ? " NOT NULL" : "");
          first = false;
        } while (accept_op(","));
      }
      ARROW_RETURN_NOT_OK(expect_close_angle());
      return out + ">";
    }
    if (accept_op("(")) {
      std::string out = name + "(";
      bool first = true;
      do {
        const Token& p = peek();
        if (p.kind != TokenKind::kInteger) return error(p, "expected a number in the type");
        out += (first ? "" : ",") + next().text;
        first = false;
      } while (accept_op(","));
      ARROW_RETURN_NOT_OK(expect_op(")"));
      return out + ")";
    }
    if (name == "TIMESTAMP" && (peek().is_keyword("WITHOUT") || peek().is_keyword("WITH"))) {
      bool without = accept_keyword("WITHOUT");
      if (!without) next();
      ARROW_RETURN_NOT_OK(expect_keyword("TIME"));
      ARROW_RETURN_NOT_OK(expect_keyword("ZONE"));
      return without ? "TIMESTAMP_NTZ" : "TIMESTAMP";
    }
    return name;
  }
  // '>>' is lexed as two '>' tokens already; accept one.
  arrow::Status expect_close_angle() { return expect_op(">"); }
  arrow::Result<std::string> any_identifier(const char* what) {
    const Token& t = peek();
    if (t.kind == TokenKind::kIdentifier || t.kind == TokenKind::kQuotedIdentifier) return next().text;
    return error(t, fmt::format("expected {}", what));
  }

  // ---- queries ---------------------------------------------------------------------------
  arrow::Result<std::shared_ptr<Query>> query() {
    Nesting nesting(*this);
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    auto q = std::make_shared<Query>();
    q->loc = peek().loc;
    if (accept_keyword("WITH")) {
      do {
        Cte cte;
        cte.loc = peek().loc;
        ARROW_ASSIGN_OR_RAISE(cte.name, identifier("a CTE name"));
        ARROW_RETURN_NOT_OK(expect_keyword("AS"));
        ARROW_RETURN_NOT_OK(expect_op("("));
        ARROW_ASSIGN_OR_RAISE(cte.query, query());
        ARROW_RETURN_NOT_OK(expect_op(")"));
        q->ctes.push_back(std::move(cte));
      } while (accept_op(","));
    }
    ARROW_ASSIGN_OR_RAISE(auto first, select_or_parenthesised());
    q->selects.push_back(std::move(first));
    while (accept_keyword("UNION")) {
      bool all = accept_keyword("ALL");
      if (!all) accept_keyword("DISTINCT");
      q->union_all.push_back(all);
      ARROW_ASSIGN_OR_RAISE(auto s, select_or_parenthesised());
      q->selects.push_back(std::move(s));
    }
    if (accept_keyword("ORDER")) {
      ARROW_RETURN_NOT_OK(expect_keyword("BY"));
      do {
        OrderItem item;
        ARROW_ASSIGN_OR_RAISE(item.expr, expression());
        if (accept_keyword("DESC")) {
          item.ascending = false;
        } else {
          accept_keyword("ASC");
        }
        if (accept_keyword("NULLS")) {
          if (accept_keyword("FIRST")) {
            item.nulls_first = true;
          } else {
            ARROW_RETURN_NOT_OK(expect_keyword("LAST"));
            item.nulls_first = false;
          }
        }
        q->order_by.push_back(std::move(item));
      } while (accept_op(","));
    }
    if (accept_keyword("LIMIT")) {
      ARROW_ASSIGN_OR_RAISE(q->limit, expression());
    }
    return q;
  }

  arrow::Result<Select> select_or_parenthesised() {
    if (peek().is_op("(") && (peek(1).is_keyword("SELECT") || peek(1).is_op("("))) {
      Nesting nesting(*this);
      ARROW_RETURN_NOT_OK(check_depth(peek()));
      next();
      ARROW_ASSIGN_OR_RAISE(auto s, select_or_parenthesised());
      ARROW_RETURN_NOT_OK(expect_op(")"));
      return s;
    }
    return select();
  }

  arrow::Result<Select> select() {
    Select s;
    s.loc = peek().loc;
    ARROW_RETURN_NOT_OK(expect_keyword("SELECT"));
    if (accept_keyword("DISTINCT")) {
      s.distinct = true;
      if (accept_keyword("ON")) {
        ARROW_RETURN_NOT_OK(expect_op("("));
        do {
          ARROW_ASSIGN_OR_RAISE(auto on, expression());
          s.distinct_on.push_back(std::move(on));
        } while (accept_op(","));
        ARROW_RETURN_NOT_OK(expect_op(")"));
      }
    } else {
      accept_keyword("ALL");
    }
    do {
      SelectItem item;
      ARROW_ASSIGN_OR_RAISE(item.expr, expression());
      if (accept_keyword("AS")) {
        ARROW_ASSIGN_OR_RAISE(item.alias, any_identifier("an alias"));
      } else if (is_identifier(peek())) {
        item.alias = next().text;
      }
      s.items.push_back(std::move(item));
    } while (accept_op(","));
    if (accept_keyword("FROM")) {
      ARROW_ASSIGN_OR_RAISE(s.from, table_expression());
    }
    if (accept_keyword("WHERE")) {
      ARROW_ASSIGN_OR_RAISE(s.where, expression());
    }
    if (accept_keyword("GROUP")) {
      ARROW_RETURN_NOT_OK(expect_keyword("BY"));
      do {
        ARROW_ASSIGN_OR_RAISE(auto e, expression());
        s.group_by.push_back(std::move(e));
      } while (accept_op(","));
    }
    if (accept_keyword("HAVING")) {
      ARROW_ASSIGN_OR_RAISE(s.having, expression());
    }
    return s;
  }

  arrow::Result<std::unique_ptr<TableRef>> table_expression() {
    ARROW_ASSIGN_OR_RAISE(auto left, table_primary());
    Nesting chain(*this, 0);
    while (true) {
      Location loc = peek().loc;
      std::string type;
      if (accept_op(",")) {
        type = "CROSS";
      } else if (accept_keyword("JOIN")) {
        type = "INNER";
      } else if (accept_keyword("INNER")) {
        type = "INNER";
      } else if (accept_keyword("CROSS")) {
        type = "CROSS";
      } else if (accept_keyword("LEFT")) {
        type = accept_keyword("SEMI") ? "LEFT_SEMI" : accept_keyword("ANTI") ? "LEFT_ANTI" : "LEFT";
      } else if (accept_keyword("RIGHT")) {
        type = "RIGHT";
      } else if (accept_keyword("FULL")) {
        type = "FULL";
      } else {
        return left;
      }
      if (type != "CROSS" || !tokens_[pos_ - 1].is_op(",")) {
        if (type == "LEFT" || type == "RIGHT" || type == "FULL") accept_keyword("OUTER");
        if (!tokens_[pos_ - 1].is_keyword("JOIN")) ARROW_RETURN_NOT_OK(expect_keyword("JOIN"));
      }
      chain.add();
      ARROW_RETURN_NOT_OK(check_depth(peek()));
      auto join = std::make_unique<TableRef>();
      join->kind = TableRefKind::kJoin;
      join->loc = loc;
      join->join_type = type;
      join->left = std::move(left);
      ARROW_ASSIGN_OR_RAISE(join->right, table_primary());
      if (type != "CROSS") {
        if (accept_keyword("ON")) {
          ARROW_ASSIGN_OR_RAISE(join->on, expression());
        } else if (accept_keyword("USING")) {
          ARROW_ASSIGN_OR_RAISE(join->using_columns, identifier_list("a column name"));
        } else {
          return error(peek(), fmt::format("expected ON or USING after {} JOIN", type));
        }
      }
      left = std::move(join);
    }
  }

  arrow::Result<std::unique_ptr<TableRef>> table_primary() {
    auto ref = std::make_unique<TableRef>();
    ref->loc = peek().loc;
    if (accept_keyword("STREAM")) {
      ref->stream = true;
      bool paren = accept_op("(");
      ARROW_RETURN_NOT_OK(named_table_or_function(*ref));
      if (paren) ARROW_RETURN_NOT_OK(expect_op(")"));
    } else if (peek().is_op("(")) {
      next();
      ref->kind = TableRefKind::kSubquery;
      ARROW_ASSIGN_OR_RAISE(ref->query, query());
      ARROW_RETURN_NOT_OK(expect_op(")"));
    } else {
      ARROW_RETURN_NOT_OK(named_table_or_function(*ref));
    }
    // Alias and WATERMARK, in either order.
    for (int i = 0; i < 2; ++i) {
      if (peek().is_keyword("WATERMARK") && !ref->watermark) {
        Watermark w;
        w.loc = next().loc;
        ARROW_ASSIGN_OR_RAISE(w.column, expression());
        ARROW_RETURN_NOT_OK(expect_keyword("DELAY"));
        ARROW_RETURN_NOT_OK(expect_keyword("OF"));
        if (!peek().is_keyword("INTERVAL")) return error(peek(), "expected INTERVAL after DELAY OF");
        ARROW_ASSIGN_OR_RAISE(w.delay, primary());
        ref->watermark = std::move(w);
      } else if (ref->alias.empty() && accept_keyword("AS")) {
        ARROW_ASSIGN_OR_RAISE(ref->alias, any_identifier("an alias"));
      } else if (ref->alias.empty() && is_identifier(peek())) {
        ref->alias = next().text;
      }
    }
    return ref;
  }

  arrow::Status named_table_or_function(TableRef& ref) {
    ARROW_ASSIGN_OR_RAISE(ref.name, qualified_name("a table name"));
    if (ref.name.size() > 1 && upper(ref.name[0]) == "LIVE") ref.name.erase(ref.name.begin());
    if (accept_op("(")) {
      ref.kind = TableRefKind::kFunction;
      if (!peek().is_op(")")) {
        do {
          ARROW_ASSIGN_OR_RAISE(auto arg, function_argument());
          ref.args.push_back(std::move(arg));
        } while (accept_op(","));
      }
      ARROW_RETURN_NOT_OK(expect_op(")"));
    }
    return arrow::Status::OK();
  }

  arrow::Result<ExprPtr> function_argument() {
    if ((peek().kind == TokenKind::kIdentifier || peek().kind == TokenKind::kQuotedIdentifier) &&
        peek(1).is_op("=>")) {
      auto e = make(ExprKind::kNamedArg, peek().loc);
      e->name = next().text;
      next();
      ARROW_ASSIGN_OR_RAISE(auto value, expression());
      e->args.push_back(std::move(value));
      return e;
    }
    return expression();
  }

  // ---- expressions -----------------------------------------------------------------------
  static ExprPtr make(ExprKind kind, Location loc) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
  }
  static ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, Location loc) {
    auto e = make(ExprKind::kBinary, loc);
    e->op = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  arrow::Result<ExprPtr> expression() {
    Nesting nesting(*this);
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    return or_expr();
  }

  // Operands joined by an associative operator (AND, OR, ||): left-deep runs of up to
  // kChainRun operands, as written (short chains keep their usual shape, and so the names of
  // unaliased columns), combined pairwise into a balanced tree, so a 10,000-term OR is about
  // 20 levels deep, not 10,000. `op_locs[i]` is where the operator before operands[i + 1] is.
  static constexpr size_t kChainRun = 8;
  static ExprPtr associative_chain(const std::string& op, std::vector<ExprPtr> operands,
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

  // a OR b OR ... / a AND b AND ...: the first kChainRun operands nest left-deep (and count
  // toward the depth), the rest go into the balanced part.
  using OperandParser = arrow::Result<ExprPtr> (Parser::*)();
  arrow::Result<ExprPtr> chain_of(const char* keyword, OperandParser operand) {
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

  arrow::Result<ExprPtr> or_expr() { return chain_of("OR", &Parser::and_expr); }

  arrow::Result<ExprPtr> and_expr() { return chain_of("AND", &Parser::not_expr); }

  arrow::Result<ExprPtr> not_expr() {
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

  arrow::Result<ExprPtr> predicate() {
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

  arrow::Result<ExprPtr> bitwise_or() {
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

  arrow::Result<ExprPtr> bitwise_and() {
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

  // a + b - c || d: left-deep, except that runs of || (associative) are balanced like AND/OR.
  arrow::Result<ExprPtr> additive() {
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

  arrow::Result<ExprPtr> multiplicative() {
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

  arrow::Result<ExprPtr> unary() {
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

  arrow::Result<ExprPtr> postfix() {
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

  arrow::Result<ExprPtr> literal(const char* type, const Token& t) {
    auto e = make(ExprKind::kLiteral, t.loc);
    e->literal_type = type;
    e->value = t.text;
    return e;
  }

  arrow::Result<ExprPtr> interval() {
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

  arrow::Result<ExprPtr> primary() {
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

  arrow::Status star_except(Expr& star) {
    if (!accept_keyword("EXCEPT")) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(star.except, identifier_list("a column name"));
    return arrow::Status::OK();
  }

  arrow::Result<ExprPtr> case_expr() {
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

  const SourceFile& file_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

arrow::Result<std::vector<Statement>> parse_statements(const SourceFile& file) {
  ARROW_ASSIGN_OR_RAISE(auto tokens, tokenize(file));
  return Parser(file, std::move(tokens)).statements();
}

arrow::Result<ExprPtr> parse_expression(const SourceFile& file) {
  ARROW_ASSIGN_OR_RAISE(auto tokens, tokenize(file));
  return Parser(file, std::move(tokens)).single_expression();
}

}  // namespace sluice::sql
