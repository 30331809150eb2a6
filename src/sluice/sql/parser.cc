// Recursive-descent parser for the DLT SQL dialect: statements, column types and queries here,
// expressions in parser_expressions.cc, the class in parser_internal.h.
#include "sluice/sql/parser.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "sluice/sql/parser_internal.h"
#include "sluice/sql/temporary_table.h"

namespace sluice::sql {

namespace parser_detail {

// ---- statements ------------------------------------------------------------------------

arrow::Result<Statement> Parser::statement() {
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
      if (st.flow->auto_cdc) {  // CREATE FLOW f AS AUTO CDC INTO ...: APPLY CHANGES, named
        st.apply_changes = std::move(st.flow->auto_cdc);
        st.flow.reset();
      }
      return st;
    }
    if (peek().is_keyword("SINK")) {
      if (or_refresh) {
        return arrow::Status::Invalid(format_error(
            file_, peek().loc, "a sink holds no data to refresh: write CREATE SINK, without OR REFRESH"));
      }
      next();
      ARROW_ASSIGN_OR_RAISE(st.sink, create_sink(start.loc));
      return st;
    }
    // TEMPORARY / PRIVATE before a table (DLT's CREATE TEMPORARY LIVE TABLE, CREATE OR REFRESH
    // PRIVATE MATERIALIZED VIEW): stored, not published (sql/temporary_table.h).
    std::optional<Location> temporary_table;
    if ((peek().is_keyword("TEMPORARY") || peek().is_keyword("PRIVATE")) &&
        (peek(1).is_keyword("STREAMING") || peek(1).is_keyword("MATERIALIZED") ||
         (peek(1).is_keyword("LIVE") && peek(2).is_keyword("TABLE")))) {
      temporary_table = next().loc;
    } else if (peek().is_keyword("PRIVATE")) {
      return error(peek(1), "expected STREAMING TABLE, MATERIALIZED VIEW or LIVE TABLE after PRIVATE (a view is "
                            "never published: write CREATE TEMPORARY VIEW)");
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
      return error(peek(), "expected STREAMING TABLE, MATERIALIZED VIEW, VIEW, FLOW or SINK after CREATE");
    }
    ARROW_ASSIGN_OR_RAISE(st.dataset, create_dataset(kind, or_refresh, start.loc));
    if (temporary_table) {
      auto& props = st.dataset->properties;
      if (auto it = props.find(kTemporaryProperty); it != props.end() && !is_temporary_table(props)) {
        return arrow::Status::Invalid(format_error(
            file_, *temporary_table,
            fmt::format("'{}' is a temporary table, but its TBLPROPERTIES set '{}' = '{}': remove the property",
                        st.dataset->name, kTemporaryProperty, it->second)));
      }
      props[kTemporaryProperty] = "true";
    }
    return st;
  }
  if (accept_keyword("APPLY")) {
    ARROW_ASSIGN_OR_RAISE(st.apply_changes, apply_changes(start.loc));
    return st;
  }
  return error(start, "expected CREATE or APPLY CHANGES at the start of a statement");
}

arrow::Result<std::unique_ptr<CreateDataset>> Parser::create_dataset(DatasetKind kind, bool or_refresh,
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
        if (kind == DatasetKind::kView || kind == DatasetKind::kTemporaryView) {
          // A view is inlined into the queries that read it, without its constraints: accepted,
          // they would never be checked (docs/decisions.md "(py)").
          return arrow::Status::NotImplemented(format_error(
              file_, c.loc,
              fmt::format("expectation '{}' on view '{}' is not supported: a view is inlined where it is "
                          "read and its expectations would never be checked; put the CONSTRAINT on the table "
                          "that reads the view",
                          c.name, d->name)));
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
          } else if (peek().is_keyword("TAGS")) {
            col.tags_loc = next().loc;
            ARROW_RETURN_NOT_OK(expect_op("("));
            do {
              ARROW_ASSIGN_OR_RAISE(auto key, string_literal("a tag name string"));
              std::string value;
              if (accept_op("=")) {
                ARROW_ASSIGN_OR_RAISE(value, string_literal("a tag value string"));
              }
              col.tags.emplace_back(std::move(key), std::move(value));
            } while (accept_op(","));
            ARROW_RETURN_NOT_OK(expect_op(")"));
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
      ARROW_RETURN_NOT_OK(cluster_by(kind, d.get()));
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
  if (!d->cluster_by.empty() && !d->partitioned_by.empty()) {
    // delta-spark refuses the pair too (a table is clustered or partitioned, not both).
    return arrow::Status::Invalid(format_error(
        file_, d->cluster_by.front().loc,
        "CLUSTER BY and PARTITIONED BY cannot be used together: a Delta table is either "
        "clustered or partitioned; remove one of them"));
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

arrow::Status Parser::cluster_by(DatasetKind kind, CreateDataset* d) {
  const Token& at = next();  // CLUSTER
  ARROW_RETURN_NOT_OK(expect_keyword("BY"));
  if (kind == DatasetKind::kView || kind == DatasetKind::kTemporaryView) {
    return arrow::Status::Invalid(format_error(
        file_, at.loc, "CLUSTER BY applies to streaming tables; a view stores no data"));
  }
  if (kind == DatasetKind::kMaterializedView) {
    // A refresh rewrites the whole view unclustered, and auto compaction (which clusters a
    // streaming table's new files) does not look after views: its files would never be clustered.
    return arrow::Status::NotImplemented(format_error(
        file_, at.loc,
        "CLUSTER BY on a materialized view is not supported yet: its refresh rewrites the view "
        "without clustering its files, so the clustering would be ignored; remove CLUSTER BY or "
        "define a streaming table"));
  }
  if (!d->cluster_by.empty()) return error(at, "CLUSTER BY given once");
  if (peek().is_keyword("NONE")) {
    // Refused rather than taken as "no clustering": a table clustered by no columns still
    // carries the clustering feature, which sluice does not create.
    return arrow::Status::NotImplemented(format_error(
        file_, peek().loc,
        "CLUSTER BY NONE is not supported: leave CLUSTER BY out for a table without clustering"));
  }
  ARROW_RETURN_NOT_OK(expect_op("("));
  do {
    ClusterColumn column;
    column.loc = peek().loc;
    ARROW_ASSIGN_OR_RAISE(column.path, qualified_name("a clustering column"));
    for (const auto& other : d->cluster_by) {
      if (upper(join_path(other.path)) == upper(join_path(column.path))) {
        return arrow::Status::Invalid(format_error(
            file_, column.loc,
            fmt::format("CLUSTER BY names column '{}' twice", join_path(column.path))));
      }
    }
    d->cluster_by.push_back(std::move(column));
  } while (accept_op(","));
  ARROW_RETURN_NOT_OK(expect_op(")"));
  if (d->cluster_by.size() > kMaxClusterByColumns) {
    return arrow::Status::Invalid(format_error(
        file_, d->cluster_by[kMaxClusterByColumns].loc,
        fmt::format("CLUSTER BY takes up to {} columns (Delta's limit), but {} are given; remove "
                    "the extra ones",
                    kMaxClusterByColumns, d->cluster_by.size())));
  }
  return arrow::Status::OK();
}

std::string Parser::join_path(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : ".") + p;
  return out;
}

std::string Parser::strip_live(const std::vector<std::string>& parts) {
  std::vector<std::string> p = parts;
  if (p.size() > 1 && upper(p[0]) == "LIVE") p.erase(p.begin());
  std::string out;
  for (const auto& s : p) out += (out.empty() ? "" : ".") + s;
  return out;
}

arrow::Result<std::unique_ptr<CreateFlow>> Parser::create_flow(Location loc) {
  auto f = std::make_unique<CreateFlow>();
  f->loc = loc;
  f->name_loc = peek().loc;
  ARROW_ASSIGN_OR_RAISE(f->name, identifier("a flow name"));
  if (accept_keyword("COMMENT")) {
    ARROW_ASSIGN_OR_RAISE(f->comment, string_literal("a comment string"));
  }
  ARROW_RETURN_NOT_OK(expect_keyword("AS"));
  if (peek().is_keyword("AUTO")) {
    const Location at = next().loc;
    ARROW_RETURN_NOT_OK(expect_keyword("CDC"));
    ARROW_ASSIGN_OR_RAISE(f->auto_cdc, apply_changes_body(at));
    f->auto_cdc->flow_name = f->name;
    return f;
  }
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

// CREATE SINK name OPTIONS (key => 'value', ...); a key may be dotted (kafka.security.protocol)
// or a string; `=` is accepted for `=>` as in TBLPROPERTIES.
arrow::Result<std::unique_ptr<CreateSink>> Parser::create_sink(Location loc) {
  auto s = std::make_unique<CreateSink>();
  s->loc = loc;
  s->name_loc = peek().loc;
  ARROW_ASSIGN_OR_RAISE(auto name, qualified_name("a sink name"));
  s->name = strip_live(name);
  ARROW_RETURN_NOT_OK(expect_keyword("OPTIONS"));
  ARROW_RETURN_NOT_OK(expect_op("("));
  do {
    if (peek().is_op(")")) break;  // trailing comma
    SinkOption o;
    o.loc = peek().loc;
    if (peek().kind == TokenKind::kString) {
      o.key = next().text;
    } else {
      // Any word, reserved ones too (cluster, key, format are option names, as in read_kafka).
      ARROW_ASSIGN_OR_RAISE(o.key, any_identifier("an option name"));
      while (accept_op(".")) {
        ARROW_ASSIGN_OR_RAISE(auto part, any_identifier("an option name"));
        o.key += "." + part;
      }
    }
    if (!accept_op("=>") && !accept_op("=")) return error(peek(), fmt::format("expected => after option '{}'", o.key));
    const Token& v = peek();
    if (v.kind != TokenKind::kString && v.kind != TokenKind::kInteger && !v.is_keyword("TRUE") &&
        !v.is_keyword("FALSE")) {
      return error(v, fmt::format("expected a string value for option '{}'", o.key));
    }
    o.value = next().text;
    s->options.push_back(std::move(o));
  } while (accept_op(","));
  ARROW_RETURN_NOT_OK(expect_op(")"));
  return s;
}

arrow::Result<std::unique_ptr<ApplyChanges>> Parser::apply_changes(Location loc) {
  ARROW_RETURN_NOT_OK(expect_keyword("CHANGES"));
  return apply_changes_body(loc);
}

// INTO target FROM STREAM(source) KEYS (...) ...: APPLY CHANGES and AUTO CDC alike.
arrow::Result<std::unique_ptr<ApplyChanges>> Parser::apply_changes_body(Location loc) {
  auto a = std::make_unique<ApplyChanges>();
  a->loc = loc;
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
      a->ignore_null_updates = true;
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
      } else if (peek().is_op("(")) {  // COLUMNS (a, b), as DLT's docs write it
        ARROW_ASSIGN_OR_RAISE(a->columns, identifier_list("a column name"));
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
      a->scd_type = next().text == "1" ? 1 : 2;  // the text, not a parse: '99999999999999999999' is refused above
    } else if (accept_keyword("TRACK")) {
      ARROW_RETURN_NOT_OK(expect_keyword("HISTORY"));
      ARROW_RETURN_NOT_OK(expect_keyword("ON"));
      a->track_history = true;
      if (accept_op("*")) {
        if (accept_keyword("EXCEPT")) {
          ARROW_ASSIGN_OR_RAISE(a->track_except_columns, identifier_list("a column name"));
        }
      } else if (peek().is_op("(")) {
        ARROW_ASSIGN_OR_RAISE(a->track_columns, identifier_list("a column name"));
      } else {
        do {
          ARROW_ASSIGN_OR_RAISE(auto c, identifier("a column name"));
          a->track_columns.push_back(c);
        } while (accept_op(","));
      }
    } else {
      break;
    }
  }
  if (!have_sequence) return error(peek(), "expected SEQUENCE BY (APPLY CHANGES needs an ordering column)");
  return a;
}

arrow::Result<std::string> Parser::type_name() {
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
        // A field name that is not one plain word keeps its backquotes (`a b`, `x-y`).
        const bool plain = !field.empty() && !std::isdigit(static_cast<unsigned char>(field[0])) &&
                           std::all_of(field.begin(), field.end(), [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                           });
        std::string shown = field;
        if (!plain) {
          shown = "`";
          for (char c : field) shown += c == '`' ? std::string("``") : std::string(1, c);
          shown += "`";
        }
        out += (first ? "" : ", ") + shown + ": " + ft + (not_null ? " NOT NULL" : "");
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

arrow::Result<std::string> Parser::any_identifier(const char* what) {
  const Token& t = peek();
  if (t.kind == TokenKind::kIdentifier || t.kind == TokenKind::kQuotedIdentifier) return next().text;
  return error(t, fmt::format("expected {}", what));
}

arrow::Result<std::shared_ptr<Query>> Parser::query() {
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

arrow::Result<Select> Parser::select_or_parenthesised() {
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

arrow::Result<Select> Parser::select() {
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
      if (accept_op("(")) {  // a generator's columns: posexplode(a) AS (p, x)
        do {
          ARROW_ASSIGN_OR_RAISE(auto name, any_identifier("a column name"));
          item.aliases.push_back(std::move(name));
        } while (accept_op(","));
        ARROW_RETURN_NOT_OK(expect_op(")"));
      } else {
        ARROW_ASSIGN_OR_RAISE(item.alias, any_identifier("an alias"));
      }
    } else if (is_identifier(peek())) {
      item.alias = next().text;
    }
    s.items.push_back(std::move(item));
  } while (accept_op(","));
  if (accept_keyword("FROM")) {
    ARROW_ASSIGN_OR_RAISE(s.from, table_expression());
    while (lateral_view_ahead()) {
      LateralView view;
      view.loc = next().loc;
      ARROW_RETURN_NOT_OK(expect_keyword("VIEW"));
      view.outer = accept_keyword("OUTER");
      if (!is_identifier(peek()) || !peek(1).is_op("(")) {
        return error(peek(), "expected a generator call after LATERAL VIEW (explode(...), posexplode(...), inline(...))");
      }
      ARROW_ASSIGN_OR_RAISE(view.generator, primary());
      if (is_identifier(peek()) && !peek().is_keyword("AS") && !lateral_view_ahead()) view.table_alias = next().text;
      if (accept_keyword("AS")) {
        do {
          ARROW_ASSIGN_OR_RAISE(auto name, any_identifier("a column name"));
          view.columns.push_back(std::move(name));
        } while (accept_op(","));
      }
      s.lateral_views.push_back(std::move(view));
    }
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

arrow::Result<std::unique_ptr<TableRef>> Parser::table_expression() {
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

arrow::Result<std::unique_ptr<TableRef>> Parser::table_primary() {
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
    } else if (ref->alias.empty() && is_identifier(peek()) && !lateral_view_ahead()) {
      ref->alias = next().text;
    }
  }
  return ref;
}

arrow::Status Parser::named_table_or_function(TableRef& ref) {
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

arrow::Result<ExprPtr> Parser::function_argument() {
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

}  // namespace parser_detail

using parser_detail::Parser;

arrow::Result<std::vector<Statement>> parse_statements(const SourceFile& file) {
  ARROW_ASSIGN_OR_RAISE(auto tokens, tokenize(file));
  return Parser(file, std::move(tokens)).statements();
}

arrow::Result<ExprPtr> parse_expression(const SourceFile& file) {
  ARROW_ASSIGN_OR_RAISE(auto tokens, tokenize(file));
  return Parser(file, std::move(tokens)).single_expression();
}

}  // namespace sluice::sql
