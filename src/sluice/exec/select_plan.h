// A SELECT bound against its input schema: a chain of stages (FROM-subqueries innermost
// first), each an optional WHERE filter and a projection, then optionally a GROUP BY
// aggregation with HAVING, ORDER BY and LIMIT. Every expression is bound (and so type-checked)
// when the plan is made, before any data moves. Streaming flows run the stages batch by batch;
// materialized views run the whole plan over their inputs' snapshots.
#pragma once

#include <arrow/result.h>
#include <arrow/compute/api_aggregate.h>
#include <arrow/compute/expression.h>
#include <arrow/type_fwd.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/exec/expression_binder.h"
#include "sluice/exec/generators.h"
#include "sluice/exec/list_aggregates.h"
#include "sluice/format/field_selection.h"
#include "sluice/sql/ast.h"

namespace sluice::exec {

// table_changes('t', from[, to]): a dataset's change data feed over versions or timestamps as
// written (a whole number is a version; `ending` empty: the latest), read by
// delta/change_feed.h instead of the dataset's rows (exec/table_changes_binding.h).
struct ChangeFeedSource {
  std::string starting;
  std::string ending;
};

// The relation a plan reads: a Kafka topic (read_kafka) or a dataset (STREAM(x) or x).
struct PlanSource {
  enum class Kind { kKafka, kDataset };
  Kind kind = Kind::kDataset;
  std::string name;  // topic or dataset name
  bool streaming = false;
  std::map<std::string, std::string> options;  // read_kafka named arguments, normalised
  std::shared_ptr<arrow::Schema> schema;
  sql::Location loc;
  std::optional<ChangeFeedSource> change_feed = std::nullopt;  // kDataset read as table_changes(...)
  // The WHERE the plan applies first to this source's rows, bound over `schema`: a reader may
  // skip files and rows it proves false (delta/file_skipping.h); the plan filters them anyway.
  std::optional<arrow::compute::Expression> filter = std::nullopt;
};

// WATERMARK col DELAY OF INTERVAL ... on a source, checked; executed with event time.
struct WatermarkSpec {
  std::string column;
  int64_t delay_micros = 0;
  sql::Location loc;
};

struct Stage {
  std::optional<BoundExpression> where;
  std::vector<BoundExpression> projections;
  std::shared_ptr<arrow::Schema> output;
  std::optional<GeneratorSpec> generator;

  // Which projection output column `c` comes from (a generated column: the generator's
  // argument), and whether it is one of the generator's columns.
  size_t projection_of(size_t c) const {
    if (!generator || c < generator->argument) return c;
    return c < generator->argument + generator->width ? generator->argument : c - generator->width + 1;
  }
  bool generated(size_t c) const {
    return generator && c >= generator->argument && c < generator->argument + generator->width;
  }
  // One value per output column from one per projection.
  template <typename T>
  std::vector<T> per_output_column(std::vector<T> per_projection) const {
    if (!generator) return per_projection;
    std::vector<T> out;
    for (size_t c = 0; c < output->fields().size(); ++c) out.push_back(per_projection[projection_of(c)]);
    return out;
  }
};

// GROUP BY window(ts, size[, slide]) or session_window(ts, gap): the group key that is an
// event-time window (window.start/.end, session_window.start/.end). Streaming
// tables assign each row to its windows in WindowAggregate instead of evaluating the key.
struct WindowKeySpec {
  size_t key_index = 0;   // which of AggregateSpec::key_inputs
  BoundExpression time;   // ts, over the last row stage's output
  int64_t size_micros = 0;
  int64_t slide_micros = 0;  // == size_micros for tumbling windows
  int64_t gap_micros = 0;    // session_window(ts, gap): > 0, and size/slide unused
  sql::Location loc;
};

struct AggregateSpec {
  std::vector<BoundExpression> key_inputs;      // evaluated on the last stage's output
  std::vector<std::string> functions;           // Arrow hash_* function per aggregate
  // Per aggregate: collect_list, max_by, percentile_approx, ... (list_aggregates.h), whose
  // function is hash_list over the row numbers (__row), finished by finish_list_aggregate.
  std::vector<std::optional<ListAggregate>> list_aggregates;
  std::vector<BoundExpression> aggregate_inputs;
  std::vector<BoundExpression> outputs;         // SELECT items over (keys..., aggregates...)
  std::optional<BoundExpression> having;
  std::shared_ptr<arrow::Schema> grouped_schema;  // keys..., aggregates...
  std::optional<WindowKeySpec> window;
};

// The Acero aggregates (named __a<i>, reading columns __in<i>) computing `spec`'s functions;
// `grouped` is false for an aggregation without keys.
std::vector<arrow::compute::Aggregate> acero_aggregates(const AggregateSpec& spec, bool grouped);

// Whether aggregate `a` of `spec` is a list aggregate (list_aggregates.h).
inline const ListAggregate* list_aggregate(const AggregateSpec& spec, size_t a) {
  return a < spec.list_aggregates.size() && spec.list_aggregates[a] ? &*spec.list_aggregates[a] : nullptr;
}

struct JoinSpec;

// The event-time bound of a stream-stream join, from its ON clause: a right row can match a
// left row only when right_time - left_time lies in [lower_micros, upper_micros]. The time
// columns are the sides' WATERMARK columns, qualified ("a.ts").
struct JoinTimeBound {
  std::string left_time, right_time;
  int64_t lower_micros = 0, upper_micros = 0;
};

class SelectPlan {
 public:
  // `schema_of` gives the schema of a dataset the query reads (already planned upstream).
  using SchemaLookup = std::function<arrow::Result<std::shared_ptr<arrow::Schema>>(const std::string&)>;
  // A query to inline where its name is read (views; CTEs are found in the query itself),
  // with the names it may read in turn (a CTE: the CTEs before it; a view: the other views),
  // not those of the query that reads it.
  struct InlineQuery;
  using InlineLookup = std::function<std::optional<InlineQuery>(const std::string&)>;
  struct InlineQuery {
    const sql::Query* query;
    const sql::SourceFile* file;
    InlineLookup scope;
  };
  // Views, CTEs and FROM-subqueries are planned by recursion into what they read; more than
  // this many nested in each other is refused (a chain of 5,000 views would overflow the
  // stack), naming the view or CTE where the limit was reached.
  static constexpr int kMaxInlineDepth = 128;
  // A table function in FROM (read_kafka) bound to the source it reads: name, options and
  // schema. The caller knows the source systems (pipeline/read_kafka_binding); without a
  // binder a table function is refused.
  using TableFunctionBinder =
      std::function<arrow::Result<PlanSource>(const sql::TableRef& from, const sql::SourceFile& file)>;
  static arrow::Result<SelectPlan> make(const sql::Query& query, const sql::SourceFile& file,
                                        const SchemaLookup& schema_of,
                                        const InlineLookup& inline_of = {},
                                        const TableFunctionBinder& bind_function = {});

  const PlanSource& source() const { return source_; }
  // FROM a JOIN b: the plan reads several sources (materialized views only, for now).
  bool joins() const { return join_ != nullptr; }
  // The join of the FROM clause as written (INNER, LEFT, RIGHT, FULL, LEFT_SEMI, LEFT_ANTI);
  // empty without a join.
  std::string join_type() const;
  // Whether every streaming source of a join is on its left side (a stream-static join).
  bool streams_on_left_only() const;
  bool unions() const { return !union_.empty(); }
  // The two sides of a join (null without one), its event-time bound when both sides have a
  // WATERMARK and ON bounds one time by the other, and the Acero hash join of two side tables
  // (each side's row-stage output; INNER even for an outer join when `inner` is set), with
  // the columns of the joined schema followed by `extra` columns of the inputs by name.
  const SelectPlan* join_left() const;
  const SelectPlan* join_right() const;
  const std::optional<JoinTimeBound>& join_time_bound() const;
  enum class JoinAs { kWritten, kInner };
  arrow::Result<std::shared_ptr<arrow::Table>> join_tables(std::shared_ptr<arrow::Table> left,
                                                           std::shared_ptr<arrow::Table> right, JoinAs as,
                                                           const std::vector<std::string>& extra = {}) const;
  // The join's equality keys (pairwise: a left side's column equals a right side's) and the
  // rest of ON as a filter over the left then the right side's columns (literal true if none).
  const std::vector<arrow::FieldRef>& join_left_keys() const;
  const std::vector<arrow::FieldRef>& join_right_keys() const;
  const arrow::compute::Expression& join_filter() const;
  // The schema of the join's output before the query's own stages (left, then right columns).
  const std::shared_ptr<arrow::Schema>& joined_schema() const { return stages_.front().output; }
  const std::optional<WatermarkSpec>& watermark() const { return watermark_; }
  // Column lineage: for each output column, the source columns it is computed from, as
  // "<dataset or kafka:topic>.<column>".
  std::vector<std::set<std::string>> lineage() const;
  // The same, with how each source column reaches the output column: kDirect (a chain of bare
  // references: the same values, maybe renamed), kDerived (an expression or aggregate of it)
  // or kRemoved (read only inside a digest, md5/sha2/xxhash64, or only counted: the values
  // cannot be recovered from the output). Several paths from one source keep the one that
  // carries most.
  enum class Derivation { kRemoved = 0, kDerived = 1, kDirect = 2 };
  std::vector<std::map<std::string, Derivation>> column_derivations() const;
  std::vector<PlanSource> sources() const;
  // The columns of source() (and nested struct fields, value.bid.price) the plan reads: its row
  // stages' filters and the expressions of every column used downstream, all of the last row
  // stage's output counted as read. Whole for a join or union. A decoder may leave the rest
  // null (select_plan_fields_read.cc).
  format::FieldSelection source_fields_read() const;
  const std::shared_ptr<arrow::Schema>& output_schema() const;
  // Where each output column is written in the SQL (the select item; `*` for all it expands to).
  const std::vector<sql::Location>& output_locations() const { return output_locations_; }
  // What apply_row_stages returns (before any aggregation).
  const std::shared_ptr<arrow::Schema>& row_stage_schema() const {
    return stages_[stages_.size() - (aggregate_ ? 2 : 1)].output;
  }
  bool aggregates() const { return aggregate_.has_value(); }
  // SELECT DISTINCT: in streaming tables, dedup within the watermark (StreamDedup).
  bool distinct() const { return distinct_; }
  // SELECT DISTINCT ON (c, ...): the output columns that are the dedup key (empty: all).
  const std::vector<std::string>& distinct_on() const { return distinct_on_; }
  const std::optional<AggregateSpec>& aggregate_spec() const { return aggregate_; }

  // Filters and projects one batch of source rows (no aggregation, ordering or limit).
  // With `input_rows`, also the index into `input` of every output row (WHERE drops rows), so
  // callers can tell each output row's source position.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> apply_row_stages(
      const arrow::RecordBatch& input, std::shared_ptr<arrow::Array>* input_rows = nullptr) const;
  // The whole query (materialized views); `read` supplies each source's rows.
  using Reader = std::function<arrow::Result<std::shared_ptr<arrow::Table>>(const PlanSource&)>;
  arrow::Result<std::shared_ptr<arrow::Table>> run(const Reader& read) const;
  // run() from its input on: `input` is the source's rows, or for a join the joined rows
  // (joined_schema()), which a caller may join itself (a stream-static join's kept hash table).
  arrow::Result<std::shared_ptr<arrow::Table>> run_on(const std::shared_ptr<arrow::Table>& input) const;
  // ORDER BY and LIMIT over rows of the output schema (the last step of run(); incremental
  // views apply it after merging partial aggregates).
  arrow::Result<std::shared_ptr<arrow::Table>> order_and_limit(std::shared_ptr<arrow::Table> table) const;

 private:
  static arrow::Result<SelectPlan> make_select(const sql::Select& select, const sql::SourceFile& file,
                                               const SchemaLookup& schema_of, const InlineLookup& inline_of,
                                               const TableFunctionBinder& bind_function);
  // The grouped half of a SELECT that aggregates (select_plan_aggregate.cc): its GROUP BY keys
  // (event-time window keys among them), aggregate calls, HAVING and outputs over the grouped
  // relation, appended to `plan` after the stage that reads `schema`.
  static arrow::Status plan_aggregation(const sql::Select& select, const sql::SourceFile& file,
                                        const ExpressionBinder& binder, const std::shared_ptr<arrow::Schema>& schema,
                                        SelectPlan& plan);
  // One FROM item whose columns are named "qualifier.column" (a side of a join).
  static arrow::Result<SelectPlan> make_relation(const sql::TableRef& ref, const sql::SourceFile& file,
                                                 const SchemaLookup& schema_of, const InlineLookup& inline_of,
                                               const TableFunctionBinder& bind_function);
  arrow::Result<std::shared_ptr<arrow::Table>> join_inputs(const Reader& read) const;

  PlanSource source_;
  std::shared_ptr<JoinSpec> join_;
  std::vector<SelectPlan> union_;  // UNION ALL branches (this plan then only orders and limits)
  std::optional<WatermarkSpec> watermark_;
  bool distinct_ = false;
  std::vector<std::string> distinct_on_;
  std::vector<Stage> stages_;
  std::optional<AggregateSpec> aggregate_;
  std::vector<std::pair<BoundExpression, bool>> order_by_;  // expression over the output, ascending
  std::vector<bool> nulls_first_;                           // per ORDER BY item
  std::optional<int64_t> limit_;
  std::vector<sql::Location> output_locations_;
};

}  // namespace sluice::exec
