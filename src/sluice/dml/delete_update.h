// DELETE FROM t WHERE ... and UPDATE t SET ... WHERE ... on a Delta table, copy-on-write:
// the files that may hold matching rows (partition values and stats prune the rest) are read,
// each file with a matching row is replaced by one holding the rest (DELETE) or every row with
// the assignments applied to the matching ones (UPDATE). A DELETE whose condition reads only
// partition columns removes whole files without reading them, as Spark does.
#pragma once

#include <arrow/result.h>

#include "sluice/dml/table_rewrite.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::dml {

arrow::Result<DmlOutcome> run_delete(const sql::DeleteStatement& statement,
                                     const sql::SourceFile& file, const DmlTarget& target);

arrow::Result<DmlOutcome> run_update(const sql::UpdateStatement& statement,
                                     const sql::SourceFile& file, const DmlTarget& target);

// The names a column of the target may be qualified with: its alias, else its name's last part.
std::set<std::string> target_qualifiers(const sql::TableRef& target);

// Spark's operationParameters.predicate: a JSON array of the condition's text (["true"] for none).
std::string predicate_parameter(const sql::Expr* condition);
// A condition as Spark shows it in the history: "(t.id = s.id)".
std::string condition_text(const sql::Expr& condition);

// One row of a file's partition values (the partition columns' fields of the table schema),
// for a condition on partition columns only.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> partition_row(const DmlTarget& target,
                                                                 const delta::Add& add);

}  // namespace sluice::dml
