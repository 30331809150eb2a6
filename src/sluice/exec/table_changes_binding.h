// table_changes('t', from[, to]) in FROM (Databricks SQL) bound to a plan source: the dataset
// `t` read as its change data feed. Its schema is the dataset's with `_change_type`,
// `_commit_version` and `_commit_timestamp`; the bounds are checked here and resolved to
// versions when the feed is read (delta/change_feed.h), since only the table's log knows them.
#pragma once

#include <arrow/result.h>

#include "sluice/exec/select_plan.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::exec {

// Whether `from` calls table_changes (any case).
bool is_table_changes(const sql::TableRef& from);

// The dataset a table_changes call reads, from its first argument ('t', 'live.t'); empty when
// that is not a string literal (bind_table_changes says what is wrong).
std::string table_changes_table(const sql::TableRef& from);

// The source of a table_changes call; errors point into `file` at the argument at fault.
arrow::Result<PlanSource> bind_table_changes(const sql::TableRef& from, const sql::SourceFile& file,
                                             const SelectPlan::SchemaLookup& schema_of);

}  // namespace sluice::exec
