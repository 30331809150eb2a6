// MERGE INTO target USING source ON cond WHEN MATCHED [AND c] THEN UPDATE SET ... | DELETE,
// WHEN NOT MATCHED [AND c] THEN INSERT ..., WHEN NOT MATCHED BY SOURCE [AND c] THEN UPDATE |
// DELETE, with Spark's semantics: clauses of a kind apply in order (the first whose condition
// holds), several source rows matching one target row is an error unless the only MATCHED
// clause is an unconditional DELETE. Copy-on-write: the target files holding a matched row
// (or a row a NOT MATCHED BY SOURCE clause changes) are replaced.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>

#include "sluice/dml/table_rewrite.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::dml {

// `source` holds the source rows with their own column names (the statement's USING, already
// read: a table, a query's result or the VALUES rows).
arrow::Result<DmlOutcome> run_merge(const sql::MergeStatement& statement,
                                    const sql::SourceFile& file, const DmlTarget& target,
                                    const std::shared_ptr<arrow::Table>& source);

// Spark's error when several source rows match one target row.
inline constexpr const char* kMultipleSourceRowsMatched =
    "[DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE] Cannot perform Merge as multiple "
    "source rows matched and attempted to modify the same target row in the Delta table in "
    "possibly conflicting ways.";

}  // namespace sluice::dml
