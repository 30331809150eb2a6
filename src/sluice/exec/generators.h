// Generators (explode, posexplode, inline and their _outer forms): binding a call in a select
// list or a LATERAL VIEW, planning a SELECT's LATERAL VIEWs as row stages, and running a stage's
// generator over a batch. SelectPlan (select_plan.h) places them among its stages.
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sluice/exec/expression_binder.h"
#include "sluice/sql/ast.h"

namespace sluice::exec {

// A generator of a stage (explode, posexplode, inline and their _outer forms, in the select
// list or a LATERAL VIEW): after the projections, each row is repeated once per element of the
// array or map projection `argument` gives, whose place in the output the generator's `width`
// columns take (pos, col / key, value / a struct's fields). Stateless: it runs inside the row
// stages, so streaming tables (ProjectFilterOperator) and materialized views both run it.
struct GeneratorSpec {
  enum class Kind { kExplode, kPosExplode, kInline };
  Kind kind = Kind::kExplode;
  bool outer = false;    // a row whose array is NULL or empty gives one row of NULLs
  size_t argument = 0;   // the projection holding the array or map
  size_t width = 1;      // the columns it gives
  bool map = false;      // the argument is a MAP (key, value) rather than an ARRAY
};

struct Stage;

// Whether `e` calls a generator (explode, explode_outer, posexplode, posexplode_outer, inline,
// inline_outer).
bool is_generator_call(const sql::Expr& e);

// A generator call bound over a stage's input: the spec (its `argument` is set by the caller,
// which places the argument among the projections), the bound argument, the columns it gives.
struct BoundGenerator {
  GeneratorSpec spec;
  BoundExpression argument;
  arrow::FieldVector fields;
};

// `call` (a generator call) bound over `binder`'s schema: its columns named `names` (empty:
// Spark's names, pos / col / key, value / the struct's fields); `outer` from LATERAL VIEW OUTER.
arrow::Result<BoundGenerator> bind_generator(const sql::Expr& call, bool outer, const std::vector<std::string>& names,
                                             const ExpressionBinder& binder, const sql::SourceFile& file);

// The LATERAL VIEWs of `s`, each a stage after FROM (its columns, then the generator's). Kept
// out of make_select, whose frame every nested subquery, CTE or view read inline repeats: ASan
// gives each local its own stack slot, and with these in that frame the planner's 128 levels no
// longer fit the 4 MiB thread of SqlLimitsTest.NestedSubqueriesAtAndBeyondTheLimit.
// `schema` and `qualifiers` become those after the last view; each view appends its stage to
// `stages`.
arrow::Status plan_lateral_views(const sql::Select& s, const sql::SourceFile& file,
                                 std::shared_ptr<arrow::Schema>& schema, std::set<std::string>& qualifiers,
                                 std::vector<Stage>& stages);

// A stage's generator run over its projected `columns` (one per projection, `rows` rows): each
// row repeated once per element of the generator's argument (none for a NULL or empty one, or
// one row of NULLs for an _outer generator), the generated columns in the argument's place, as
// `output` (the stage's schema) says. `row_ids`, when given, is taken along (each output row's
// input row).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> expand_generator(const GeneratorSpec& generator,
                                                                    const std::shared_ptr<arrow::Schema>& output,
                                                                    const arrow::ArrayVector& columns, int64_t rows,
                                                                    std::shared_ptr<arrow::Array>* row_ids);

}  // namespace sluice::exec
