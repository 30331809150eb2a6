// Parser of the DLT SQL dialect: pipeline statements (CREATE STREAMING TABLE, MATERIALIZED
// VIEW, VIEW, FLOW, APPLY CHANGES) and the queries and expressions inside them.
#pragma once

#include <arrow/result.h>

#include <vector>

#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::sql {

// Parses every statement of a file. Errors are "file:line:col: error: expected ... but found
// ..." with the line and a caret.
arrow::Result<std::vector<Statement>> parse_statements(const SourceFile& file);

// Parses a single expression (for tests and for expectations given outside SQL files).
arrow::Result<ExprPtr> parse_expression(const SourceFile& file);

}  // namespace sluice::sql
