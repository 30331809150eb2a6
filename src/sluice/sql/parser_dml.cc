// The `sluice sql` commands: DELETE, UPDATE and MERGE INTO on one Delta table (Spark SQL's
// spelling), and a plain query. Part of the parser class in parser_internal.h.
#include "sluice/sql/parser_internal.h"

namespace sluice::sql {

namespace parser_detail {

arrow::Result<Command> Parser::command() {
  while (peek().is_op(";")) next();
  const Token& start = peek();
  Command c;
  if (accept_keyword("DELETE")) {
    ARROW_ASSIGN_OR_RAISE(c.delete_, delete_statement(start.loc));
  } else if (accept_keyword("UPDATE")) {
    ARROW_ASSIGN_OR_RAISE(c.update, update_statement(start.loc));
  } else if (accept_keyword("MERGE")) {
    ARROW_ASSIGN_OR_RAISE(c.merge, merge_statement(start.loc));
  } else if (start.is_keyword("SELECT") || start.is_keyword("WITH") || start.is_op("(")) {
    ARROW_ASSIGN_OR_RAISE(c.query, query());
  } else if (start.is_keyword("CREATE") || start.is_keyword("APPLY")) {
    return arrow::Status::NotImplemented(format_error(
        file_, start.loc,
        "pipeline statements (CREATE ..., APPLY CHANGES) belong in a pipeline's .sql files, not in "
        "`sluice sql`: run them with `sluice run <pipeline-dir>`"));
  } else if (start.is_keyword("INSERT")) {
    return arrow::Status::NotImplemented(format_error(
        file_, start.loc,
        "INSERT is not supported by `sluice sql` yet: append with `sluice table append <path> <file>` "
        "or MERGE INTO ... WHEN NOT MATCHED THEN INSERT"));
  } else {
    return error(start, "expected DELETE, UPDATE, MERGE INTO or SELECT");
  }
  while (accept_op(";")) {
  }
  if (peek().kind != TokenKind::kEnd) {
    return error(peek(), "expected the end of the statement (`sluice sql` runs one statement)");
  }
  return c;
}

// The table a DML statement changes: a name (delta.`/path` or a dataset name) and an optional
// alias, which must not swallow the next clause's keyword.
arrow::Result<std::unique_ptr<TableRef>> Parser::dml_target(
    std::initializer_list<const char*> stop_words) {
  auto ref = std::make_unique<TableRef>();
  ref->loc = peek().loc;
  ARROW_ASSIGN_OR_RAISE(ref->name, qualified_name("a table name"));
  if (ref->name.size() > 1 && upper(ref->name[0]) == "LIVE") ref->name.erase(ref->name.begin());
  if (peek().is_op("(")) {
    return error(peek(), "expected a table (a table function cannot be changed)");
  }
  auto stops = [&](const Token& t) {
    for (const char* w : stop_words) {
      if (t.is_keyword(w)) return true;
    }
    return false;
  };
  if (accept_keyword("AS")) {
    ARROW_ASSIGN_OR_RAISE(ref->alias, any_identifier("an alias"));
  } else if (is_identifier(peek()) && !stops(peek())) {
    ref->alias = next().text;
  }
  return ref;
}

arrow::Result<std::vector<Assignment>> Parser::assignments() {
  std::vector<Assignment> out;
  do {
    Assignment a;
    a.loc = peek().loc;
    ARROW_ASSIGN_OR_RAISE(a.column, qualified_name("a column name"));
    ARROW_RETURN_NOT_OK(expect_op("="));
    ARROW_ASSIGN_OR_RAISE(a.value, expression());
    out.push_back(std::move(a));
  } while (accept_op(","));
  return out;
}

arrow::Result<std::unique_ptr<DeleteStatement>> Parser::delete_statement(Location loc) {
  auto d = std::make_unique<DeleteStatement>();
  d->loc = loc;
  ARROW_RETURN_NOT_OK(expect_keyword("FROM"));
  ARROW_ASSIGN_OR_RAISE(d->target, dml_target({"WHERE"}));
  if (accept_keyword("WHERE")) {
    ARROW_ASSIGN_OR_RAISE(d->where, expression());
  }
  return d;
}

arrow::Result<std::unique_ptr<UpdateStatement>> Parser::update_statement(Location loc) {
  auto u = std::make_unique<UpdateStatement>();
  u->loc = loc;
  ARROW_ASSIGN_OR_RAISE(u->target, dml_target({"SET"}));
  ARROW_RETURN_NOT_OK(expect_keyword("SET"));
  ARROW_ASSIGN_OR_RAISE(u->set, assignments());
  if (accept_keyword("WHERE")) {
    ARROW_ASSIGN_OR_RAISE(u->where, expression());
  }
  return u;
}

arrow::Status Parser::merge_source(MergeStatement& merge) {
  if (peek().is_op("(") && peek(1).is_keyword("VALUES")) {
    auto ref = std::make_unique<TableRef>();
    ref->loc = peek().loc;
    ref->kind = TableRefKind::kSubquery;
    next();
    next();
    Nesting nesting(*this);
    ARROW_RETURN_NOT_OK(check_depth(peek()));
    do {
      std::vector<ExprPtr> row;
      if (accept_op("(")) {
        do {
          ARROW_ASSIGN_OR_RAISE(auto e, expression());
          row.push_back(std::move(e));
        } while (accept_op(","));
        ARROW_RETURN_NOT_OK(expect_op(")"));
      } else {
        ARROW_ASSIGN_OR_RAISE(auto e, expression());
        row.push_back(std::move(e));
      }
      if (!merge.values.empty() && row.size() != merge.values.front().size()) {
        return arrow::Status::Invalid(format_error(
            file_, ref->loc,
            fmt::format("every VALUES row needs the same number of values (the first has {}, row {} "
                        "has {})",
                        merge.values.front().size(), merge.values.size() + 1, row.size())));
      }
      merge.values.push_back(std::move(row));
    } while (accept_op(","));
    ARROW_RETURN_NOT_OK(expect_op(")"));
    accept_keyword("AS");
    ARROW_ASSIGN_OR_RAISE(ref->alias, identifier("an alias for the VALUES rows"));
    if (!peek().is_op("(")) {
      return error(peek(), "expected the column names of the VALUES rows, e.g. AS s(id, name)");
    }
    ARROW_ASSIGN_OR_RAISE(merge.values_columns, identifier_list("a column name"));
    if (merge.values_columns.size() != merge.values.front().size()) {
      return arrow::Status::Invalid(format_error(
          file_, ref->loc,
          fmt::format("the VALUES rows have {} values but {} column names", merge.values.front().size(),
                      merge.values_columns.size())));
    }
    merge.source = std::move(ref);
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(merge.source, table_primary());
  if (merge.source->kind == TableRefKind::kFunction || merge.source->stream) {
    return arrow::Status::NotImplemented(format_error(
        file_, merge.source->loc,
        "MERGE reads a table, a subquery or VALUES rows: a table function or STREAM source is not "
        "supported"));
  }
  return arrow::Status::OK();
}

arrow::Result<MergeClause> Parser::merge_clause() {
  MergeClause c;
  c.loc = peek().loc;
  ARROW_RETURN_NOT_OK(expect_keyword("WHEN"));
  if (accept_keyword("NOT")) {
    ARROW_RETURN_NOT_OK(expect_keyword("MATCHED"));
    c.match = MergeMatch::kNotMatched;
    if (accept_keyword("BY")) {
      if (accept_keyword("SOURCE")) {
        c.match = MergeMatch::kNotMatchedBySource;
      } else if (!accept_keyword("TARGET")) {
        return error(peek(), "expected SOURCE or TARGET after WHEN NOT MATCHED BY");
      }
    }
  } else {
    ARROW_RETURN_NOT_OK(expect_keyword("MATCHED"));
  }
  if (accept_keyword("AND")) {
    ARROW_ASSIGN_OR_RAISE(c.condition, expression());
  }
  ARROW_RETURN_NOT_OK(expect_keyword("THEN"));
  const Token& action = peek();
  if (c.match != MergeMatch::kNotMatched) {
    if (accept_keyword("DELETE")) {
      c.action = MergeAction::kDelete;
    } else if (accept_keyword("UPDATE")) {
      c.action = MergeAction::kUpdate;
      ARROW_RETURN_NOT_OK(expect_keyword("SET"));
      if (c.match == MergeMatch::kMatched && accept_op("*")) {
        c.star = true;
      } else {
        ARROW_ASSIGN_OR_RAISE(c.set, assignments());
      }
    } else {
      return error(action, c.match == MergeMatch::kMatched
                               ? "expected UPDATE or DELETE after WHEN MATCHED ... THEN"
                               : "expected UPDATE or DELETE after WHEN NOT MATCHED BY SOURCE ... THEN");
    }
    return c;
  }
  if (!accept_keyword("INSERT")) {
    return error(action, "expected INSERT after WHEN NOT MATCHED ... THEN");
  }
  c.action = MergeAction::kInsert;
  if (accept_op("*")) {
    c.star = true;
    return c;
  }
  if (peek().is_op("(")) {
    ARROW_ASSIGN_OR_RAISE(c.insert_columns, identifier_list("a column name"));
  }
  ARROW_RETURN_NOT_OK(expect_keyword("VALUES"));
  ARROW_RETURN_NOT_OK(expect_op("("));
  do {
    ARROW_ASSIGN_OR_RAISE(auto e, expression());
    c.insert_values.push_back(std::move(e));
  } while (accept_op(","));
  ARROW_RETURN_NOT_OK(expect_op(")"));
  if (!c.insert_columns.empty() && c.insert_columns.size() != c.insert_values.size()) {
    return arrow::Status::Invalid(format_error(
        file_, c.loc,
        fmt::format("INSERT names {} column(s) but gives {} value(s)", c.insert_columns.size(),
                    c.insert_values.size())));
  }
  return c;
}

arrow::Result<std::unique_ptr<MergeStatement>> Parser::merge_statement(Location loc) {
  auto m = std::make_unique<MergeStatement>();
  m->loc = loc;
  ARROW_RETURN_NOT_OK(expect_keyword("INTO"));
  ARROW_ASSIGN_OR_RAISE(m->target, dml_target({"USING"}));
  ARROW_RETURN_NOT_OK(expect_keyword("USING"));
  ARROW_RETURN_NOT_OK(merge_source(*m));
  ARROW_RETURN_NOT_OK(expect_keyword("ON"));
  ARROW_ASSIGN_OR_RAISE(m->on, expression());
  if (!peek().is_keyword("WHEN")) return error(peek(), "expected WHEN MATCHED or WHEN NOT MATCHED");
  while (peek().is_keyword("WHEN")) {
    ARROW_ASSIGN_OR_RAISE(auto clause, merge_clause());
    m->clauses.push_back(std::move(clause));
  }
  return m;
}

}  // namespace parser_detail

arrow::Result<Command> parse_command(const SourceFile& file) {
  ARROW_ASSIGN_OR_RAISE(auto tokens, tokenize(file));
  return parser_detail::Parser(file, std::move(tokens)).command();
}

}  // namespace sluice::sql
