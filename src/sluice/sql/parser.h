// Parser of the DLT SQL dialect: pipeline statements (CREATE STREAMING TABLE, MATERIALIZED
// VIEW, VIEW, FLOW, APPLY CHANGES) and the queries and expressions inside them.
#pragma once

#include <arrow/result.h>

#include <vector>

#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::sql {

// How deeply SQL may nest: parentheses, subqueries, CASE, function calls, nested types, NOT
// and unary prefixes and each further term of a left-deep chain (a + b + c, a = b = c, a[0][1],
// joins) count one level; AND/OR and || chains and IN lists are kept shallow (balanced) and
// count only their first few terms. Every pass over the tree (printing, binding, planning,
// Arrow's expression evaluation) recurses at most about this deep, so a bounded stack is
// enough for any input (README: "Limits").
inline constexpr int kMaxNestingDepth = 256;

// Parses every statement of a file. Errors are "file:line:col: error: expected ... but found
// ..." with the line and a caret.
arrow::Result<std::vector<Statement>> parse_statements(const SourceFile& file);

// Parses one `sluice sql` command: DELETE, UPDATE, MERGE INTO or a query (SELECT/WITH), with
// an optional trailing ';'. Pipeline statements are refused here (they belong in .sql files).
arrow::Result<Command> parse_command(const SourceFile& file);

// Parses a single expression (for tests and for expectations given outside SQL files).
arrow::Result<ExprPtr> parse_expression(const SourceFile& file);

}  // namespace sluice::sql
