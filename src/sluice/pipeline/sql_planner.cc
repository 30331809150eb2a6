// Planning and type checks of a SQL pipeline (sql_planner.h).
#include "sluice/pipeline/sql_planner.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/clustering.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/stats.h"
#include "sluice/delta/table_features.h"
#include "sluice/dml/zorder.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/exec/stream_dedup.h"
#include "sluice/exec/stream_join.h"
#include "sluice/exec/window_aggregate.h"
#include "sluice/pipeline/auto_compaction.h"
#include "sluice/pipeline/kafka_options.h"
#include "sluice/pipeline/read_kafka_binding.h"
#include "sluice/pipeline/table_retention.h"
#include "sluice/sql/temporary_table.h"
#include "sluice/sql/types.h"

namespace sluice::pipeline {

const char* kind_text(sql::DatasetKind k) {
  return k == sql::DatasetKind::kStreamingTable ? "streaming table"
         : k == sql::DatasetKind::kMaterializedView ? "materialized view"
                                                    : "view";
}

namespace {

// A refused table property, pointed at pipeline.yaml when `from_yaml` (the key is set there),
// else at the dataset's statement.
arrow::Status property_error(const arrow::Status& st, const Dataset& d, const Graph& graph,
                             const PipelineConfig& config, bool from_yaml) {
  if (from_yaml) {
    return st.WithMessage(fmt::format("{}: tables.{}.properties: {}", (config.dir / "pipeline.yaml").string(),
                                      d.name, st.message()));
  }
  return st.WithMessage(sql::format_error(graph.files[d.file], d.loc, st.message()));
}

// pipelines.retention / pipelines.retention.column of a dataset, checked where it is planned so
// that validate refuses what run would: only a streaming table that appends (a materialized
// view is recomputed from its inputs, a view is not stored, an APPLY CHANGES target's per-key
// state would not know the rows are gone) and may delete (not delta.appendOnly). Errors point
// at the statement, or at pipeline.yaml when the properties are set there.
// sluice.temporary (sql/temporary_table.h): 'true' or 'false' on a stored table; a view is never
// published, so the property would mean nothing there.
arrow::Status check_temporary(const Dataset& d, const Graph& graph, const PipelineConfig& config,
                              const std::map<std::string, std::string>& properties) {
  auto it = properties.find(sql::kTemporaryProperty);
  if (it == properties.end()) return arrow::Status::OK();
  auto yaml = config.table_properties.find(d.name);
  const bool from_yaml = yaml != config.table_properties.end() && yaml->second.count(sql::kTemporaryProperty);
  if (d.kind == sql::DatasetKind::kView || d.kind == sql::DatasetKind::kTemporaryView) {
    return property_error(arrow::Status::Invalid(fmt::format(
                              "table property '{}' on view '{}': a view is not stored nor published; remove it",
                              sql::kTemporaryProperty, d.name)),
                          d, graph, config, from_yaml);
  }
  const auto v = to_lower(it->second);
  // A statement declared TEMPORARY (or PRIVATE) carries 'true'; pipeline.yaml's properties win
  // over the statement's, so a 'false' there would silently publish it: refused, as 'false'
  // beside TEMPORARY in TBLPROPERTIES is.
  if (from_yaml && d.definition && sql::is_temporary_table(d.definition->properties) && v != "true") {
    return property_error(arrow::Status::Invalid(fmt::format(
                              "table '{}' is declared TEMPORARY, and pipeline.yaml sets '{}' to '{}': drop TEMPORARY "
                              "from its statement to publish it, or the property from pipeline.yaml",
                              d.name, sql::kTemporaryProperty, it->second)),
                          d, graph, config, from_yaml);
  }
  if (v != "true" && v != "false") {
    return property_error(arrow::Status::Invalid(fmt::format(
                              "table '{}': '{}' is 'true' (a temporary table: stored, not listed by sluice catalog "
                              "and status without --all) or 'false', not '{}'",
                              d.name, sql::kTemporaryProperty, it->second)),
                          d, graph, config, from_yaml);
  }
  return arrow::Status::OK();
}

arrow::Status check_retention(const Dataset& d, const Graph& graph, const PipelineConfig& config,
                              const std::map<std::string, std::string>& properties, const arrow::Schema* schema) {
  if (!has_retention_properties(properties)) return arrow::Status::OK();
  auto refuse = [&](const std::string& message) {
    auto yaml = config.table_properties.find(d.name);
    return property_error(arrow::Status::Invalid(fmt::format("table '{}': {}", d.name, message)), d, graph, config,
                          yaml != config.table_properties.end() && has_retention_properties(yaml->second));
  };
  if (d.kind != sql::DatasetKind::kStreamingTable) {
    return refuse(fmt::format(
        "{} applies to streaming tables; '{}' is a {}{}", kRetentionProperty, d.name, kind_text(d.kind),
        d.kind == sql::DatasetKind::kMaterializedView
            ? " (recomputed from its inputs at each refresh, so deleted rows would come back): keep only the recent "
              "rows in its query instead (WHERE ts >= current_timestamp() - INTERVAL 30 DAYS)"
            : " (not stored): set the retention on the table it reads"));
  }
  for (const auto& f : d.flows) {
    if (graph.flows.at(f).apply_changes) {
      return refuse(fmt::format("{} on an APPLY CHANGES target is not supported: its per-key state and history "
                                "would not know the expired rows are gone; set it on the table the changes come "
                                "from",
                                kRetentionProperty));
    }
  }
  if (auto it = properties.find("delta.appendOnly"); it != properties.end() && to_lower(it->second) == "true") {
    return refuse(fmt::format("{} deletes rows, but the table only allows appends (delta.appendOnly = true): "
                              "remove one of the two properties",
                              kRetentionProperty));
  }
  auto policy = retention_policy(properties, *schema);
  if (!policy.ok()) return refuse(policy.status().message());
  return arrow::Status::OK();
}

}  // namespace

// Plans every dataset: every query is bound and type-checked before any data moves. All
// errors are collected; a dataset whose input failed is skipped without a second error.
arrow::Status SqlPlanner::plan_all() {
  std::vector<std::string> errors;
  std::set<std::string> failed;
  for (const auto& name : graph_.order) {
    const auto& d = graph_.datasets.at(name);
    bool upstream_failed = false;
    std::string waits_for;
    for (const auto& up : graph_.upstream_of(name)) {
      upstream_failed |= failed.count(up) > 0;
      if (not_checked_.count(up)) waits_for = up;
    }
    if (upstream_failed) {
      failed.insert(name);
      continue;
    }
    if (!waits_for.empty()) {
      not_checked_[name] = fmt::format("it reads '{}', whose columns are not known yet", waits_for);
      continue;
    }
    auto st = plan_dataset(d);
    if (!st.ok() && unknown_inferred_) {
      not_checked_[name] = *unknown_inferred_;
      unknown_inferred_.reset();
      continue;
    }
    if (!st.ok()) {
      errors.push_back(st.message());
      failed.insert(name);
    }
  }
  for (const auto& [name, sink] : graph_.sinks) {
    std::set<std::string> unplanned = failed;
    for (const auto& [n, why] : not_checked_) unplanned.insert(n);
    auto st = plan_sink(sink, unplanned);
    if (!st.ok()) errors.push_back(st.message());
  }
  for (const auto& [table, props] : config_.table_properties) {
    if (!graph_.datasets.count(table)) {
      std::vector<std::string> names;
      for (const auto& [n, ds] : graph_.datasets) names.push_back(n);
      std::string best = closest_match(table, names);
      errors.push_back(fmt::format("pipeline.yaml: tables.{} names no dataset of the pipeline{}", table,
                                   best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best)));
    }
  }
  if (errors.empty()) return arrow::Status::OK();
  std::string all;
  for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
  return arrow::Status::Invalid(fmt::format("{} error(s) in the pipeline:\n{}", errors.size(), all));
}

// Schemas of the stored datasets planned so far (upstream of the one being planned).
exec::SelectPlan::SchemaLookup SqlPlanner::schema_lookup() const {
  return [this](const std::string& n) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
    auto it = schemas_.find(n);
    if (it == schemas_.end()) return arrow::Status::Invalid("unknown table '", n, "'");
    return it->second;
  };
}

// The pipeline's views, inlined where they are read (each may read the others in turn).
exec::SelectPlan::InlineLookup SqlPlanner::view_lookup() const {
  return [this](const std::string& n) -> std::optional<exec::SelectPlan::InlineQuery> {
    auto it = graph_.datasets.find(n);
    if (it == graph_.datasets.end()) return std::nullopt;
    const auto& v = it->second;
    if (v.kind != sql::DatasetKind::kView && v.kind != sql::DatasetKind::kTemporaryView) return std::nullopt;
    return exec::SelectPlan::InlineQuery{v.definition->query.get(), &graph_.files[v.file], view_lookup()};
  };
}

arrow::Status SqlPlanner::plan_dataset(const Dataset& d) {
  const std::string& name = d.name;
  auto inline_views = view_lookup();
  if (d.kind == sql::DatasetKind::kView || d.kind == sql::DatasetKind::kTemporaryView) {
    for (const auto& c : d.definition->columns) {
      if (!c.tags.empty()) {
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[d.file], c.tags_loc, fmt::format(
            "TAGS on column '{}' of view '{}': a view is not stored, so its columns keep no tags; tag the "
            "column of the table it reads (tags follow column lineage) or of the table that stores it",
            c.name, d.name)));
      }
    }
    // Not stored: checked here, inlined into the queries that read it.
    const auto& flow = graph_.flows.at(d.flows[0]);
    ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(*flow.query, graph_.files[flow.file],
                                                            schema_lookup(), inline_views, read_kafka_binder()));
    ARROW_RETURN_NOT_OK(check_unique_columns(d, flow, plan));
    ARROW_RETURN_NOT_OK(check_retention(d, graph_, config_, properties(d), plan.output_schema().get()));
    ARROW_RETURN_NOT_OK(check_temporary(d, graph_, config_, properties(d)));
    views_.emplace(d.name, std::move(plan));
    return arrow::Status::OK();
  }
  // A delta.* property sluice does not honour is refused before the table is created or
  // changed (stored without its feature, other engines would misread the table).
  if (auto st = delta::check_delta_properties(properties(d), name); !st.ok()) {
    auto yaml = config_.table_properties.find(name);
    return property_error(st, d, graph_, config_,
                          yaml != config_.table_properties.end() &&
                              !delta::check_delta_properties(yaml->second, name).ok());
  }
  ARROW_RETURN_NOT_OK(check_temporary(d, graph_, config_, properties(d)));
  // Every flow into the dataset; the first one (its own query) defines the schema unless
  // the dataset declares its columns.
  std::shared_ptr<arrow::Schema> schema;
  for (const auto& fname : d.flows) {
    const auto& flow = graph_.flows.at(fname);
    if (!flow.query) {
      std::optional<exec::SelectPlan> changes;
      ARROW_ASSIGN_OR_RAISE(auto target, check_apply_changes(flow, inline_views, &changes));
      ARROW_RETURN_NOT_OK(check_apply_changes_runnable(d, flow, *changes));
      schema = target;
      flow_plans_.emplace(fname, std::move(*changes));
      continue;
    }
    auto infer = [this, &fname](const exec::PlanSource& src) { return infer_value_schema(fname, src); };
    ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(*flow.query, graph_.files[flow.file],
                                                            schema_lookup(), inline_views, read_kafka_binder(infer)));
    if (d.kind == sql::DatasetKind::kStreamingTable) {
      if (!streaming_source(plan).streaming) {
        return arrow::Status::Invalid(sql::format_error(graph_.files[flow.file], plan.source().loc,
            "a streaming table reads a stream: write STREAM(...) or STREAM read_kafka(...)"));
      }
      // No streaming runner (rows, windows, dedup, joins) orders or limits what it appends: refused
      // rather than ignored (Spark refuses sorting a stream too).
      if (!flow.query->order_by.empty()) {
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file],
            flow.query->order_by.front().expr->loc,
            "ORDER BY in a streaming table's query: a stream's rows are appended as they arrive, never sorted; "
            "remove it, or sort where the table is read (a materialized view or a query over it)"));
      }
      if (flow.query->limit) {
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.query->limit->loc,
            "LIMIT in a streaming table's query: a stream has no end to count rows to; remove it, or limit where "
            "the table is read (a materialized view or a query over it)"));
      }
      if (plan.aggregates()) {
        ARROW_RETURN_NOT_OK(check_windowed(plan, graph_.files[flow.file], flow.loc));
      }
      if (plan.distinct()) ARROW_RETURN_NOT_OK(check_dedup(plan, graph_.files[flow.file], flow.loc));
      if ((plan.aggregates() || plan.distinct()) && quarantines(d)) {
        // Refused rather than ignored: the rows would otherwise just be dropped.
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc,
            "'sluice.quarantine' on a windowed or deduplicating streaming table is not supported yet: its rows "
            "stand for many input rows, with no one source position. Set it on the table it reads instead (the "
            "rows this table's DROP ROW expectations remove are counted per expectation in the event log)"));
      }
      if (plan.unions()) {
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc,
            "UNION ALL in a streaming table: write one CREATE FLOW ... INSERT INTO per source instead"));
      }
      if (plan.joins() && (plan.aggregates() || plan.watermark())) {
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc,
            "windowed aggregation over a join in one streaming table is not supported yet: join into a "
            "streaming table first, then aggregate that one"));
      }
      if (plan.joins()) {
        // Stream-static joins: one stream, on the left, joined batch by batch with the
        // current snapshot of the other tables. Stream-stream joins need event time.
        int streams = 0;
        for (const auto& src : plan.sources()) streams += src.streaming;
        const auto type = plan.join_type();
        if (streams == 2) {
          ARROW_RETURN_NOT_OK(check_stream_join(plan, graph_.files[flow.file], flow.loc));
          if (quarantines(d)) {
            return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc,
                "'sluice.quarantine' on a table fed by a join is not supported yet"));
          }
          if (!schema) schema = plan.output_schema();
          flow_plans_.emplace(fname, std::move(plan));
          continue;
        }
        if (streams != 1) {
          return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc,
              "a streaming table joins one stream with static tables (read them without STREAM), or two "
              "streams with watermarks and a time bound (stream-stream join)"));
        }
        if (!plan.streams_on_left_only() || (type != "INNER" && type != "LEFT" && type != "LEFT_SEMI" &&
                                             type != "LEFT_ANTI")) {
          return arrow::Status::Invalid(sql::format_error(graph_.files[flow.file], flow.loc,
              fmt::format("a stream-static join keeps the stream on the left and is INNER, LEFT, SEMI or ANTI "
                          "(a {} join would have to re-emit rows when the static side changes)", type)));
        }
        if (quarantines(d)) {
          return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc,
              "'sluice.quarantine' on a table fed by a join is not supported yet"));
        }
      }
    }
    ARROW_RETURN_NOT_OK(check_unique_columns(d, flow, plan));
    ARROW_RETURN_NOT_OK(check_runnable(d, flow, plan));
    if (!schema) schema = plan.output_schema();
    flow_plans_.emplace(fname, std::move(plan));
  }
  if (!d.definition->columns.empty()) {
    arrow::FieldVector fields;
    std::map<std::string, const sql::ColumnDef*> seen;  // lower-case name -> first declaration
    for (const auto& c : d.definition->columns) {
      if (auto [it, fresh] = seen.emplace(to_lower(c.name), &c); !fresh) {
        return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], c.loc, fmt::format(
            "column '{}' is declared twice (first as '{}' at line {}; Delta column names are case-insensitive): "
            "remove or rename one", c.name, it->second->name, it->second->loc.line)));
      }
      auto type = sql::parse_type(c.type_name);
      if (!type.ok()) {
        return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], c.loc, type.status().message()));
      }
      auto field = arrow::field(c.name, *type, !c.not_null);
      if (c.comment) field = field->WithMetadata(arrow::key_value_metadata({"comment"}, {*c.comment}));
      fields.push_back(std::move(field));
    }
    schema = arrow::schema(fields);
  }
  if (!schema) {
    return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc,
        fmt::format("streaming table '{}' has no flow: add AS SELECT ... or CREATE FLOW ... INSERT INTO {}",
                    d.name, d.name)));
  }
  // Each flow's rows must fit the dataset's schema (BY NAME; missing nullable columns are null).
  for (const auto& fname : d.flows) {
    const auto& flow = graph_.flows.at(fname);
    if (flow.apply_changes) {
      ARROW_RETURN_NOT_OK(check_apply_changes_columns(d, flow, *schema));
      continue;
    }
    auto fits = delta::reconcile_schema(*schema, *flow_plans_.at(fname).output_schema(), delta::SchemaMode::kStrict);
    if (!fits.ok()) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[flow.file], flow.loc,
          fmt::format("flow '{}' does not fit table '{}': {}", fname, d.name, fits.status().message())));
    }
  }
  for (const auto& column : d.definition->partitioned_by) {
    if (!schema->GetFieldByName(column)) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc,
          fmt::format("PARTITIONED BY names '{}', which the query does not produce", column)));
    }
  }
  // CLUSTER BY: the rules delta-spark applies (delta/clustering.h), at the column as written.
  clustering_.erase(name);
  for (const auto& column : d.definition->cluster_by) {
    auto checked = delta::check_clustering_column(*schema, column.path);
    if (!checked.ok()) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], column.loc,
          fmt::format("table '{}': {}", d.name, checked.status().message())));
    }
    clustering_[name].push_back(std::move(*checked));
  }
  if (quarantines(d)) {
    const auto qname = d.name + "_quarantine";
    if (d.kind != sql::DatasetKind::kStreamingTable) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc,
          fmt::format("'sluice.quarantine' applies to streaming tables; '{}' is a {}", d.name, kind_text(d.kind))));
    }
    if (defines(qname)) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc,
          fmt::format("'sluice.quarantine' writes the rows '{}' drops to table '{}', but the pipeline defines a "
                      "dataset of that name; rename one of them", d.name, qname)));
    }
  }
  for (const auto& fname : d.flows) {
    auto plan = flow_plans_.find(fname);
    if (plan == flow_plans_.end() || !plan->second.source().options.count("value_format")) continue;
    if (defines(d.name + "_dead_letter")) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc,
          fmt::format("records '{}' cannot decode go to table '{}_dead_letter', but the pipeline defines a "
                      "dataset of that name; rename one of them", d.name, d.name)));
    }
  }
  ARROW_RETURN_NOT_OK(check_auto_compaction(d, *schema));
  ARROW_ASSIGN_OR_RAISE(schema, tag_columns(d, std::move(schema)));
  ARROW_RETURN_NOT_OK(check_retention(d, graph_, config_, properties(d), schema.get()));
  ARROW_ASSIGN_OR_RAISE(auto ex, Expectations::make(graph_, d, schema));
  schemas_.emplace(name, schema);
  expectations_.emplace(name, std::move(ex));
  return arrow::Status::OK();
}

// The table's auto compaction settings (auto_compaction.h), refused where the dataset is
// defined when unreadable, when they would be ignored (a materialized view is rewritten whole at
// every refresh; Z-order columns with compaction off), or when a Z-order column is unknown, a
// partition column, or of a type Delta keeps no min/max statistics for.
arrow::Status SqlPlanner::check_auto_compaction(const Dataset& d, const arrow::Schema& schema) const {
  const auto& file = graph_.files[d.file];
  auto props = properties(d);
  auto settings = auto_compaction_settings(props, d.name);
  if (!settings.ok()) return arrow::Status::Invalid(sql::format_error(file, d.loc, settings.status().message()));
  auto refuse = [&](const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, d.loc, fmt::format("table '{}': {}", d.name, message)));
  };
  bool tuned = false;
  for (const auto& [key, value] : props) tuned |= is_auto_compact_key(key);
  if (d.kind != sql::DatasetKind::kStreamingTable && (tuned || !settings->zorder_by.empty())) {
    return refuse("pipelines.autoOptimize.zOrderCols and sluice.autoCompact.* apply to streaming tables: a "
                  "materialized view is rewritten whole at every refresh, so auto compaction never has small "
                  "files of it to merge; remove them");
  }
  if (!settings->enabled && (tuned || !settings->zorder_by.empty())) {
    return refuse("pipelines.autoOptimize.zOrderCols and sluice.autoCompact.* set how auto compaction works, but "
                  "it is off for this table (pipelines.autoOptimize.managed or delta.autoOptimize.autoCompact is "
                  "false), so they would be ignored; remove them or turn auto compaction on");
  }
  if (!d.definition->cluster_by.empty() && !settings->zorder_by.empty()) {
    // OPTIMIZE refuses Z-order on a clustered table (delta-spark's DELTA_CLUSTERING_WITH_ZORDER_BY):
    // accepted here, every compaction would fail at run time.
    return refuse("pipelines.autoOptimize.zOrderCols does not apply to a table with CLUSTER BY: auto compaction "
                  "clusters its files by the clustering columns (Z-order and clustering exclude each other); "
                  "remove pipelines.autoOptimize.zOrderCols or CLUSTER BY");
  }
  if (settings->zorder_by.size() > dml::kMaxZOrderColumns) {
    return refuse(fmt::format("pipelines.autoOptimize.zOrderCols names {} columns; at most {}",
                              settings->zorder_by.size(), dml::kMaxZOrderColumns));
  }
  std::set<std::string> seen;
  for (const auto& name : settings->zorder_by) {
    std::shared_ptr<arrow::Field> field;
    for (const auto& f : schema.fields()) {
      if (to_lower(f->name()) == to_lower(name)) field = f;
    }
    if (!field) {
      std::vector<std::string> names;
      for (const auto& f : schema.fields()) names.push_back(f->name());
      return refuse(fmt::format("pipelines.autoOptimize.zOrderCols names column '{}', which the table does not "
                                "have; its columns are [{}]",
                                name, fmt::join(names, ", ")));
    }
    for (const auto& p : d.definition->partitioned_by) {
      if (to_lower(p) == to_lower(name)) {
        return refuse(fmt::format("pipelines.autoOptimize.zOrderCols names partition column '{}': Z-ordering "
                                  "orders the rows within a partition; name data columns",
                                  field->name()));
      }
    }
    if (!delta::has_min_max(*field->type())) {
      return refuse(fmt::format("pipelines.autoOptimize.zOrderCols names column '{}' of type {}, for which Delta "
                                "keeps no min/max statistics, so Z-ordering by it would skip no file; name "
                                "columns of number, string, date or timestamp types",
                                field->name(), delta::delta_type_name(*field->type())));
    }
    if (!seen.insert(to_lower(field->name())).second) {
      return refuse(fmt::format("pipelines.autoOptimize.zOrderCols names column '{}' twice", field->name()));
    }
  }
  return arrow::Status::OK();
}

// Whether the pipeline defines a dataset of this name, ignoring case (a side table of that
// name would be the same folder, and the same table for Delta and Spark).
bool SqlPlanner::defines(const std::string& name) const {
  const auto folded = to_lower(name);
  for (const auto& [n, ds] : graph_.datasets) {
    if (to_lower(n) == folded) return true;
  }
  return false;
}

// Delta refuses a table with two columns of the same name, ignoring case (deltalake and
// Spark will not read it): refused where the second one is written.
arrow::Status SqlPlanner::check_unique_columns(const Dataset& d, const Flow& flow, const exec::SelectPlan& plan) const {
  const auto& schema = *plan.output_schema();
  const auto& locations = plan.output_locations();
  std::map<std::string, int> seen;  // lower-case name -> first column
  for (int i = 0; i < schema.num_fields(); ++i) {
    auto [it, fresh] = seen.emplace(to_lower(schema.field(i)->name()), i);
    if (fresh) continue;
    const auto at = static_cast<size_t>(i) < locations.size() ? locations[i] : flow.loc;
    return arrow::Status::Invalid(sql::format_error(graph_.files[flow.file], at, fmt::format(
        "{} '{}' would have two columns named '{}' (columns {} '{}' and {} '{}'; Delta column names are "
        "case-insensitive): name one of them differently with AS, or list the columns instead of *",
        kind_text(d.kind), d.name, schema.field(i)->name(), it->second + 1, schema.field(it->second)->name(), i + 1,
        schema.field(i)->name())));
  }
  return arrow::Status::OK();
}

// What running a flow needs beyond a valid plan. Everything `run` would refuse once data
// moves is refused here, while planning, which `validate` does too: so validate refuses
// exactly what run refuses (stream-stream joins are checked by check_stream_join).
arrow::Status SqlPlanner::check_runnable(const Dataset& d, const Flow& flow, const exec::SelectPlan& plan) const {
  const auto& file = graph_.files[flow.file];
  auto at = [&](sql::Location loc, const arrow::Status& st) {
    return st.WithMessage(sql::format_error(file, loc, st.message()));
  };
  if (d.kind == sql::DatasetKind::kMaterializedView) {
    for (const auto& src : plan.sources()) {
      if (src.kind == exec::PlanSource::Kind::kKafka) {
        return arrow::Status::Invalid(sql::format_error(file, src.loc,
            "a materialized view cannot read Kafka directly (it is recomputed from its inputs' snapshots, and a "
            "topic has none): ingest the topic into a streaming table (CREATE STREAMING TABLE bronze AS SELECT * "
            "FROM STREAM read_kafka(...)) and read that"));
      }
    }
    if (plan.watermark() && plan.distinct() && !plan.aggregates()) {  // dedup within a watermark: streams only
      return arrow::Status::NotImplemented(sql::format_error(file, plan.watermark()->loc,
          "WATERMARK with SELECT DISTINCT deduplicates a stream in a streaming table; a materialized view "
          "recomputes from its inputs' snapshots: remove the WATERMARK for a plain DISTINCT"));
    }
    if (auto st = refuse_event_time(plan); !st.ok()) return at(plan.watermark()->loc, st);
    // SELECT DISTINCT ON in a materialized view keeps the first row read of each key
    // (SelectPlan::run_on): Spark's batch dropDuplicates(subset).
    return arrow::Status::OK();
  }
  if (d.kind != sql::DatasetKind::kStreamingTable) return arrow::Status::OK();
  ARROW_RETURN_NOT_OK(check_change_feed_stream(plan, file));
  if (plan.joins() && !plan.streams_on_left_only()) return arrow::Status::OK();
  if (auto st = refuse_event_time(plan); !st.ok()) return at(plan.watermark()->loc, st);
  if (plan.aggregates() || plan.distinct()) {  // what run_flow builds: the window or dedup operator
    auto options = windowed_options(d, flow.name, plan);
    if (!options.ok()) return at(d.loc, options.status());
    if (options->write_late_rows && defines(d.name + "_late")) {
      return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc, fmt::format(
          "'sluice.late_rows' = 'table' writes the late rows of '{}' to table '{}_late', but the pipeline defines a "
          "dataset of that name; rename one of them", d.name, d.name)));
    }
    auto op = plan.distinct() && !plan.aggregates()
                  ? exec::StreamDedup::make(plan, options->policy).status()
                  : exec::WindowAggregate::make(plan, options->policy).status();
    if (!op.ok()) return at(flow.loc, op);
  }
  const auto src = streaming_source(plan);
  if (src.kind == exec::PlanSource::Kind::kKafka) {  // read_kafka's options, as run_flow applies them
    KafkaFlowSpec spec;
    spec.table = d.name;
    spec.flow = flow.name;
    spec.topic = src.name;
    auto cluster = kafka_cluster_of(src, flow.name);
    if (!cluster.ok()) return at(src.loc, cluster.status());
    if (auto st = apply_kafka_options(src.options, spec); !st.ok()) return at(src.loc, st);
    if (auto it = src.options.find("schema_sample_records"); it != src.options.end()) {
      auto n = parse_int64(it->second, "schema_sample_records");
      if (!n.ok() || *n <= 0) {
        return at(src.loc, invalid("read_kafka schema_sample_records must be a positive number, not '{}'", it->second));
      }
    }
  }
  return arrow::Status::OK();
}

// A streaming table reading a change feed (FROM STREAM table_changes('t', v)) reads it alone,
// row by row: what its runner (change_feed_flow.cc) does.
arrow::Status SqlPlanner::check_change_feed_stream(const exec::SelectPlan& plan, const sql::SourceFile& file) {
  for (const auto& src : plan.sources()) {
    if (!src.change_feed) continue;
    if (!src.streaming || plan.joins() || plan.unions()) {
      return arrow::Status::NotImplemented(sql::format_error(file, src.loc,
          "a streaming table reads a change feed as its one source, FROM STREAM table_changes('t', version) (not "
          "joined, unioned or without STREAM yet): read the feed into a streaming table of its own and join that"));
    }
    if (!src.change_feed->ending.empty()) {
      return arrow::Status::Invalid(sql::format_error(file, src.loc, fmt::format(
          "STREAM table_changes('{}', ...) has an end ('{}'), but a stream reads every change as it comes: remove "
          "the end, or read the closed range in a materialized view", src.name, src.change_feed->ending)));
    }
    if (plan.aggregates() || plan.distinct() || plan.watermark()) {
      return arrow::Status::NotImplemented(sql::format_error(file, src.loc,
          "a stream of table_changes is not aggregated, deduplicated or given a WATERMARK yet: select and filter "
          "its rows here, and aggregate them in a materialized view"));
    }
  }
  return arrow::Status::OK();
}

// APPLY CHANGES: the source is read as a stream; keys, SEQUENCE BY, APPLY AS DELETE/TRUNCATE
// and COLUMNS are bound against it. Returns the target's schema (SCD type 2 adds __START_AT
// and __END_AT of the SEQUENCE BY type, as DLT does).
arrow::Result<std::shared_ptr<arrow::Schema>> SqlPlanner::check_apply_changes(
    const Flow& flow, const exec::SelectPlan::InlineLookup& inline_views, std::optional<exec::SelectPlan>* changes) {
  const auto& ac = *flow.apply_changes;
  const auto& file = graph_.files[flow.file];
  sql::Query q;
  q.loc = ac.loc;
  sql::Select sel;
  sel.loc = ac.loc;
  auto star = std::make_unique<sql::Expr>();
  star->kind = sql::ExprKind::kStar;
  star->loc = ac.loc;
  sel.items.push_back({std::move(star), "", {}});
  auto source = std::make_unique<sql::TableRef>();
  source->kind = ac.source->kind;
  source->loc = ac.source->loc;
  source->name = ac.source->name;
  source->stream = ac.source->stream;
  source->query = ac.source->query;
  sel.from = std::move(source);
  q.selects.push_back(std::move(sel));
  ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(q, file, schema_lookup(), inline_views, read_kafka_binder()));
  const auto& in = plan.output_schema();
  exec::ExpressionBinder binder(file, in);
  auto require_column = [&](const std::string& name, sql::Location at) -> arrow::Status {
    if (!in->GetFieldByName(name)) {
      std::vector<std::string> names;
      for (const auto& f : in->fields()) names.push_back(f->name());
      std::string best = closest_match(name, names);
      return arrow::Status::Invalid(sql::format_error(file, at, fmt::format(
          "APPLY CHANGES: '{}' is not a column of the source{}", name,
          best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best))));
    }
    return arrow::Status::OK();
  };
  for (const auto& k : ac.keys) ARROW_RETURN_NOT_OK(require_column(k, ac.loc));
  ARROW_ASSIGN_OR_RAISE(auto sequence, binder.bind(*ac.sequence_by));
  for (const auto* cond : {ac.delete_when.get(), ac.truncate_when.get()}) {
    if (!cond) continue;
    ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*cond));
    if (b.type->id() != arrow::Type::BOOL) {
      return arrow::Status::Invalid(sql::format_error(file, cond->loc, "APPLY AS ... WHEN needs a BOOLEAN condition"));
    }
  }
  for (const auto& c : ac.columns) ARROW_RETURN_NOT_OK(require_column(c, ac.loc));
  for (const auto& c : ac.except_columns) ARROW_RETURN_NOT_OK(require_column(c, ac.loc));
  arrow::FieldVector fields;
  for (const auto& f : in->fields()) {
    const auto& n = f->name();
    if (!ac.columns.empty() && std::find(ac.columns.begin(), ac.columns.end(), n) == ac.columns.end() &&
        std::find(ac.keys.begin(), ac.keys.end(), n) == ac.keys.end()) {
      continue;
    }
    if (std::find(ac.except_columns.begin(), ac.except_columns.end(), n) != ac.except_columns.end()) continue;
    fields.push_back(f);
  }
  if (ac.scd_type == 2) {
    fields.push_back(arrow::field("__START_AT", sequence.type));
    fields.push_back(arrow::field("__END_AT", sequence.type));
  }
  if (changes) changes->emplace(std::move(plan));
  return arrow::schema(fields);
}

// The stored datasets a dataset reads, through views (which are inlined, never stored).
std::set<std::string> SqlPlanner::stored_upstream(const std::string& name) const {
  std::set<std::string> out;
  for (const auto& up : graph_.upstream_of(name)) {
    if (views_.count(up)) {
      auto through = stored_upstream(up);
      out.insert(through.begin(), through.end());
    } else {
      out.insert(up);
    }
  }
  return out;
}

// Whether several processes may run the dataset at once (scale-out): a streaming table whose
// every flow reads Kafka as a consumer-group member and keeps no event-time state, so the
// group splits the partitions and the txns keep each record once. Anything else reads the
// same input in every process, or keeps state per process.
bool SqlPlanner::runs_in_every_process(const Dataset& d) const {
  if (d.kind != sql::DatasetKind::kStreamingTable || d.flows.empty()) return false;
  for (const auto& f : d.flows) {
    auto it = flow_plans_.find(f);
    if (it == flow_plans_.end()) return false;
    const auto& plan = it->second;
    if (plan.source().kind != exec::PlanSource::Kind::kKafka || plan.joins() || plan.aggregates() ||
        plan.distinct()) {
      return false;
    }
    if (!reads_kafka_as_group_member(plan.source().options)) return false;
  }
  return true;
}

// read_kafka's topic, offset, timestamp, header and consumer-group options (kafka_options.h).
arrow::Status SqlPlanner::apply_kafka_options(const std::map<std::string, std::string>& options, KafkaFlowSpec& spec) {
  return apply_read_kafka_options(options, spec);
}

// TBLPROPERTIES with pipeline.yaml `tables.<name>.properties` over them; they become the Delta
// table's configuration when it is created.
std::map<std::string, std::string> SqlPlanner::properties(const Dataset& d) const {
  auto out = d.definition->properties;
  if (auto it = config_.table_properties.find(d.name); it != config_.table_properties.end()) {
    for (const auto& [k, v] : it->second) out[k] = v;
  }
  return out;
}

// WATERMARK is type-checked by validate; running it needs the event-time runtime.
// Aggregations in streaming tables are event-time windows: GROUP BY window(ts, ...) over a
// stream with a WATERMARK, emitted once when the watermark passes the window.
arrow::Status SqlPlanner::check_windowed(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc) {
  const auto& agg = *plan.aggregate_spec();
  if (!agg.window) {
    return arrow::Status::Invalid(sql::format_error(file, loc,
        "aggregations in streaming tables need an event-time window: GROUP BY ..., window(ts, '5 minutes') "
        "(tumbling), window(ts, '10 minutes', '5 minutes') (sliding) or session_window(ts, '10 minutes'), with "
        "WATERMARK ts DELAY OF INTERVAL ... "
        "on the stream; or use a materialized view"));
  }
  if (!plan.watermark()) {
    return arrow::Status::Invalid(sql::format_error(file, agg.window->loc,
        "a window in a streaming table needs a watermark to know when it is complete: add WATERMARK <ts> DELAY "
        "OF INTERVAL <n> MINUTES after the STREAM(...) source"));
  }
  return arrow::Status::OK();
}

// SELECT DISTINCT in a streaming table: dedup within the watermark horizon (StreamDedup).
arrow::Status SqlPlanner::check_dedup(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc) {
  if (plan.aggregates()) {
    return arrow::Status::NotImplemented(sql::format_error(file, loc,
        "SELECT DISTINCT with GROUP BY in a streaming table: the windows are distinct already; drop DISTINCT"));
  }
  if (!plan.watermark()) {
    return arrow::Status::Invalid(sql::format_error(file, loc,
        "SELECT DISTINCT in a streaming table needs a watermark to bound what it remembers: add WATERMARK <ts> "
        "DELAY OF INTERVAL <n> MINUTES after the STREAM(...) source and select <ts>"));
  }
  if (plan.output_schema()->GetFieldIndex(plan.watermark()->column) < 0) {
    return arrow::Status::Invalid(sql::format_error(file, plan.watermark()->loc, fmt::format(
        "SELECT DISTINCT in a streaming table drops a duplicate only while its event time is not behind the "
        "watermark: select the WATERMARK column '{}'", plan.watermark()->column)));
  }
  return arrow::Status::OK();
}

// Options of a windowed flow from the table's properties.
arrow::Result<WindowedFlowOptions> SqlPlanner::windowed_options(const Dataset& d, const std::string& flow_name,
                                                    const exec::SelectPlan& plan) const {
  WindowedFlowOptions o;
  o.late_table_path = config_.table_path(d.name + "_late");
  o.table = d.name;
  o.policy.delay_micros = plan.watermark()->delay_micros;
  o.policy.step = streaming_source(plan).kind == exec::PlanSource::Kind::kKafka ? exec::WatermarkStep::kPerRow
                                                                               : exec::WatermarkStep::kPerBatch;
  auto props = properties(d);
  if (auto it = props.find("sluice.late_rows"); it != props.end()) {
    const auto v = to_lower(it->second);
    if (v != "table" && v != "count") {
      return invalid("table '{}': 'sluice.late_rows' is 'table' (write late rows to '{}_late') or 'count' (the "
                     "default: count them in the event log), not '{}'", d.name, d.name, it->second);
    }
    o.write_late_rows = v == "table";
  }
  if (auto it = props.find("sluice.watermark.idle_timeout"); it != props.end()) {
    auto micros = exec::interval_micros(it->second);
    if (!micros.ok() || *micros < 0) {
      return invalid("table '{}': 'sluice.watermark.idle_timeout' needs a duration such as '30 seconds', not '{}'",
                     d.name, it->second);
    }
    o.policy.idle_timeout = std::chrono::milliseconds(*micros / 1000);
  }
  return o;
}

arrow::Status SqlPlanner::refuse_event_time(const exec::SelectPlan& plan) {
  if (plan.watermark() && !plan.aggregates() && !plan.distinct()) {
    return arrow::Status::NotImplemented(
        "WATERMARK runs with windowed aggregations (GROUP BY window(ts, ...)) in streaming tables; elsewhere "
        "(plain streaming tables, materialized views) it is not executed yet: remove it to run this query");
  }
  return arrow::Status::OK();
}

// TBLPROPERTIES ('sluice.quarantine' = 'true'): the rows DROP ROW expectations remove go to
// `<table>_quarantine` instead of away, with the expectations they broke and their source
// position.
bool SqlPlanner::quarantines(const Dataset& d) const {
  auto props = properties(d);
  auto it = props.find("sluice.quarantine");
  return it != props.end() && to_lower(it->second) == "true";
}

// The Kafka cluster a read_kafka reads: `cluster` of pipeline.yaml (default "default"),
// extended by bootstrapServers / kafka.* arguments into a cluster of the flow's own.
arrow::Result<std::pair<std::string, kafka::KafkaProperties>> SqlPlanner::kafka_cluster_of(const exec::PlanSource& src,
                                                                                const std::string& flow_name) const {
  std::string name = "default";
  if (auto it = src.options.find("cluster"); it != src.options.end()) name = it->second;
  bool custom = src.options.count("bootstrap_servers") > 0;
  for (const auto& [k, v] : src.options) custom = custom || k.rfind("kafka.", 0) == 0;
  if (!custom && !config_.kafka.count(name)) {
    return invalid("read_kafka uses Kafka cluster '{}', which pipeline.yaml does not define under 'kafka:'", name);
  }
  auto props = config_.kafka.count(name) ? config_.kafka.at(name) : kafka::KafkaProperties{};
  if (!custom) return std::make_pair(name, props);
  if (auto it = src.options.find("bootstrap_servers"); it != src.options.end()) props["bootstrap.servers"] = it->second;
  for (const auto& [k, v] : src.options) {
    if (k.rfind("kafka.", 0) == 0) props[k.substr(6)] = v;
  }
  return std::make_pair("read_kafka:" + flow_name, props);
}

// The stream a streaming table's flow reads (with a stream-static join, its streaming side).
exec::PlanSource SqlPlanner::streaming_source(const exec::SelectPlan& plan) {
  for (const auto& s : plan.sources()) {
    if (s.streaming) return s;
  }
  return plan.source();
}

// Stream-stream joins (exec/stream_join.h): two Delta streams, each with a WATERMARK.
arrow::Status SqlPlanner::check_stream_join(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc) {
  for (const auto& src : plan.sources()) {
    if (src.kind == exec::PlanSource::Kind::kKafka) {
      return arrow::Status::NotImplemented(sql::format_error(file, src.loc,
          "a stream-stream join reads streaming tables, not read_kafka directly: ingest each topic into a "
          "streaming table first (a bronze table), then join those"));
    }
  }
  auto made = exec::StreamJoin::make(plan);
  if (!made.ok()) return made.status().WithMessage(sql::format_error(file, loc, made.status().message()));
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
