// File skipping for DML: the conjuncts of a WHERE (or of MERGE's ON) that compare a column of
// the target with a literal, as predicates the Delta scan prunes files by (partition values
// exactly, min/max/nullCount stats conservatively) and the conflict check compares a
// concurrent commit's files with.
#pragma once

#include <arrow/type_fwd.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sluice/delta/scan.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::dml {

// The predicates implied by `where` (null: none); conjuncts of other shapes are left out, so
// the result selects a superset of the files holding matching rows. `qualifiers` are the names
// a column of the target may be prefixed with (t.id).
std::vector<delta::ColumnPredicate> skipping_predicates(const sql::Expr* where,
                                                        const sql::SourceFile& file,
                                                        const arrow::Schema& schema,
                                                        const std::set<std::string>& qualifiers);

}  // namespace sluice::dml
