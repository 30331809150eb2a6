// The syntax tree of the DLT SQL dialect: expressions, queries and pipeline statements.
// Nodes own their children (unique_ptr) and carry the location they start at.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/sql/source.h"

namespace sluice::sql {

struct Query;

enum class ExprKind {
  kColumn,     // parts: a, t.a, s.field
  kStar,       // *, t.*, with optional EXCEPT (parts = qualifier, except = columns)
  kLiteral,    // literal_type: null|true|false|integer|decimal|string|date|timestamp|interval
  kUnary,      // op: - + NOT ~
  kBinary,     // op: OR AND = <> < <= > >= <=> + - * / % || & | ^
  kFunction,   // name(args...), distinct, named args as kNamedArg
  kNamedArg,   // name => arg (read_kafka(topic => 'x'))
  kCast,       // CAST(x AS type), TRY_CAST, x::type  (name = CAST or TRY_CAST)
  kCase,       // args: [operand?] when, then, ..., [else]; has_operand, has_else
  kIn,         // args[0] IN (args[1..]); negated
  kBetween,    // args: x, low, high; negated
  kIsNull,     // negated: IS NOT NULL
  kIsBool,     // x IS [NOT] TRUE/FALSE: name = TRUE|FALSE
  kLike,       // op: LIKE ILIKE RLIKE; args: x, pattern; negated
  kSubscript,  // args: x, index   (a[0], m['k'])
  kField,      // args: x; name  ((expr).field)
  kJsonPath,   // args: x; name = path  (value:a.b[0])
  kSubquery,   // (SELECT ...) as a value or in IN/EXISTS: query
  kExists,     // EXISTS (SELECT ...): query; negated
};

struct Expr {
  ExprKind kind;
  Location loc;
  std::vector<std::string> parts;  // kColumn, kStar qualifier
  std::vector<std::string> except; // kStar EXCEPT (...)
  std::string name;                // function/cast/field/json path/named arg/op name
  std::string op;                  // operator for unary/binary/like
  std::string literal_type;        // kLiteral
  std::string value;               // literal text; interval: "10 minutes" normalised
  std::string type_name;           // kCast target type, as written (normalised spacing)
  std::vector<std::unique_ptr<Expr>> args;
  std::shared_ptr<Query> query;    // kSubquery, kExists, kIn with subquery
  bool distinct = false;
  bool negated = false;
  bool has_operand = false;  // kCase
  bool has_else = false;     // kCase
  bool parenthesized = false;  // written in parentheses: (st).field is a field access
};

using ExprPtr = std::unique_ptr<Expr>;

struct Watermark {
  ExprPtr column;
  ExprPtr delay;  // an interval literal
  Location loc;
};

enum class TableRefKind { kTable, kFunction, kSubquery, kJoin };

struct TableRef {
  TableRefKind kind = TableRefKind::kTable;
  Location loc;
  std::vector<std::string> name;  // kTable / kFunction: qualified name (LIVE.x -> {LIVE, x})
  bool stream = false;            // STREAM(t), STREAM t, STREAM read_kafka(...)
  std::vector<ExprPtr> args;      // kFunction
  std::shared_ptr<Query> query;   // kSubquery
  std::string alias;
  std::optional<Watermark> watermark;
  // kJoin
  std::string join_type;  // INNER LEFT RIGHT FULL CROSS LEFT_SEMI LEFT_ANTI
  std::unique_ptr<TableRef> left, right;
  ExprPtr on;
  std::vector<std::string> using_columns;
};

struct SelectItem {
  ExprPtr expr;
  std::string alias;
  // SELECT posexplode(a) AS (p, x): the names of a generator's columns (alias stays empty).
  std::vector<std::string> aliases;
};

// FROM t LATERAL VIEW [OUTER] explode(a) v AS x[, y]: a generator's rows joined to the row they
// came from (Hive's syntax, kept by Spark and DLT).
struct LateralView {
  Location loc;
  bool outer = false;
  ExprPtr generator;               // a kFunction: explode, posexplode, inline, ...
  std::string table_alias;         // v (may be empty)
  std::vector<std::string> columns;  // x, y (empty: the generator's default names)
};

struct OrderItem {
  ExprPtr expr;
  bool ascending = true;
  std::optional<bool> nulls_first;
};

struct Select {
  Location loc;
  bool distinct = false;
  std::vector<ExprPtr> distinct_on;  // SELECT DISTINCT ON (a, b) ...
  std::vector<SelectItem> items;
  std::unique_ptr<TableRef> from;  // null: SELECT without FROM
  std::vector<LateralView> lateral_views;  // applied in order, after FROM, before WHERE
  ExprPtr where;
  std::vector<ExprPtr> group_by;
  ExprPtr having;
};

struct Cte {
  std::string name;
  Location loc;
  std::shared_ptr<Query> query;
};

// WITH ctes  select [UNION ALL select ...] [ORDER BY ...] [LIMIT n]
struct Query {
  Location loc;
  std::vector<Cte> ctes;
  std::vector<Select> selects;       // more than one: UNION [ALL]
  std::vector<bool> union_all;       // selects.size() - 1 flags (false: UNION DISTINCT)
  std::vector<OrderItem> order_by;
  ExprPtr limit;
};

enum class ViolationAction { kWarn, kDropRow, kFailUpdate };

struct Constraint {
  std::string name;
  ExprPtr expr;
  ViolationAction action = ViolationAction::kWarn;
  Location loc;
};

struct ColumnDef {
  std::string name;
  std::string type_name;
  bool not_null = false;
  std::optional<std::string> comment;
  // TAGS ('pii' = 'email', 'gold'): Databricks' column tag spelling (ALTER COLUMN ... SET
  // TAGS); a tag without a value has "".
  std::vector<std::pair<std::string, std::string>> tags;
  Location tags_loc;
  Location loc;
};

enum class DatasetKind { kStreamingTable, kMaterializedView, kView, kTemporaryView };

// A CLUSTER BY column: its path (["s", "x"] for s.x) and where it is written.
struct ClusterColumn {
  std::vector<std::string> path;
  Location loc;
};

struct CreateDataset {
  DatasetKind kind;
  bool or_refresh = false;
  std::string name;
  Location loc;
  Location name_loc;
  std::vector<ColumnDef> columns;
  std::vector<Constraint> constraints;
  std::optional<std::string> comment;
  std::vector<std::string> partitioned_by;
  std::vector<ClusterColumn> cluster_by;  // CLUSTER BY (liquid clustering), at most 4
  std::map<std::string, std::string> properties;
  std::shared_ptr<Query> query;  // absent: a streaming table fed only by flows
};

struct ApplyChanges;

struct CreateFlow {
  std::string name;
  Location loc;
  Location name_loc;
  std::string target;
  Location target_loc;
  bool by_name = false;
  std::optional<std::string> comment;  // CREATE FLOW f COMMENT '...': in the flow_definition event
  std::shared_ptr<Query> query;
  std::unique_ptr<ApplyChanges> auto_cdc;  // CREATE FLOW f AS AUTO CDC INTO ...: no query
};

// CREATE SINK name OPTIONS (key => 'value', ...): where a flow's rows go outside the pipeline's
// tables (DLT's create_sink). The options are checked by the planner (pipeline/sink_options.h).
struct SinkOption {
  std::string key;
  std::string value;
  Location loc;  // of the key
};

struct CreateSink {
  std::string name;
  Location loc;
  Location name_loc;
  std::vector<SinkOption> options;  // as written, in order
};

struct ApplyChanges {
  Location loc;
  std::string target;
  Location target_loc;
  std::unique_ptr<TableRef> source;  // STREAM(x)
  std::vector<std::string> keys;
  ExprPtr delete_when;
  ExprPtr truncate_when;
  ExprPtr sequence_by;
  std::vector<std::string> columns;         // COLUMNS a, b   (empty: all)
  std::vector<std::string> except_columns;  // COLUMNS * EXCEPT (a, b)
  int scd_type = 1;
  bool ignore_null_updates = false;
  bool track_history = false;                     // TRACK HISTORY ON ... was written
  std::vector<std::string> track_columns;         // TRACK HISTORY ON a, b   (empty: all)
  std::vector<std::string> track_except_columns;  // TRACK HISTORY ON * EXCEPT (a, b)
  std::string flow_name;  // CREATE FLOW f AS AUTO CDC INTO ...; empty for APPLY CHANGES
};

struct Statement {
  std::unique_ptr<CreateDataset> dataset;
  std::unique_ptr<CreateFlow> flow;
  std::unique_ptr<ApplyChanges> apply_changes;
  std::unique_ptr<CreateSink> sink;
};

// ---- `sluice sql` commands: DML on one Delta table, and queries ----------------------------

// `SET column = value` of UPDATE and MERGE (column may be qualified: t.c).
struct Assignment {
  std::vector<std::string> column;
  ExprPtr value;
  Location loc;
};

// DELETE FROM t [AS a] [WHERE cond]
struct DeleteStatement {
  Location loc;
  std::unique_ptr<TableRef> target;  // kTable with optional alias
  ExprPtr where;                     // null: every row
};

// UPDATE t [AS a] SET c = e, ... [WHERE cond]
struct UpdateStatement {
  Location loc;
  std::unique_ptr<TableRef> target;
  std::vector<Assignment> set;
  ExprPtr where;
};

enum class MergeMatch { kMatched, kNotMatched, kNotMatchedBySource };
enum class MergeAction { kUpdate, kDelete, kInsert };

// WHEN [NOT] MATCHED [BY SOURCE | BY TARGET] [AND cond] THEN UPDATE SET ... | UPDATE SET * |
// DELETE | INSERT (cols) VALUES (exprs) | INSERT *
struct MergeClause {
  Location loc;
  MergeMatch match = MergeMatch::kMatched;
  MergeAction action = MergeAction::kUpdate;
  ExprPtr condition;  // null: unconditional
  bool star = false;  // UPDATE SET * / INSERT *
  std::vector<Assignment> set;              // UPDATE SET
  std::vector<std::string> insert_columns;  // INSERT (c, ...)
  std::vector<ExprPtr> insert_values;       // VALUES (e, ...)
};

// MERGE INTO t [AS a] USING source [AS s] ON cond WHEN ...
// The source is a table (TableRefKind::kTable), a subquery (kSubquery), or inline VALUES rows
// (`values` with `values_columns` from the alias's column list).
struct MergeStatement {
  Location loc;
  std::unique_ptr<TableRef> target;
  std::unique_ptr<TableRef> source;
  std::vector<std::vector<ExprPtr>> values;
  std::vector<std::string> values_columns;
  ExprPtr on;
  std::vector<MergeClause> clauses;
};

// One statement given to `sluice sql`: exactly one member is set.
struct Command {
  std::unique_ptr<DeleteStatement> delete_;
  std::unique_ptr<UpdateStatement> update;
  std::unique_ptr<MergeStatement> merge;
  std::shared_ptr<Query> query;  // SELECT ...
};

// A canonical, parenthesised rendering for golden tests and debugging.
std::string to_string(const Expr& expr);
std::string to_string(const Query& query);
std::string to_string(const Statement& statement);

}  // namespace sluice::sql
