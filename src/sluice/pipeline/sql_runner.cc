// Triggered execution of SQL pipelines.
#include "sluice/pipeline/sql_runner.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <librdkafka/rdkafkacpp.h>
#include <condition_variable>
#include <optional>
#include <thread>
#include <cstdio>
#include <mutex>
#include <set>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/common/ids.h"
#include "sluice/exec/select_plan.h"
#include "sluice/format/json_schema_inference.h"
#include "sluice/format/kafka_values.h"
#include "sluice/kafka/consumer.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/expectations.h"
#include "sluice/pipeline/incremental_view.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/exec/stream_dedup.h"
#include "sluice/exec/stream_join.h"
#include "sluice/exec/window_aggregate.h"
#include "sluice/pipeline/stream_join_flow.h"
#include "sluice/pipeline/windowed_flow.h"
#include "sluice/kafka/source_schema.h"
#include "sluice/pipeline/kafka_options.h"
#include "sluice/sql/types.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

namespace {


const char* kind_text(sql::DatasetKind k) {
  return k == sql::DatasetKind::kStreamingTable ? "streaming table"
         : k == sql::DatasetKind::kMaterializedView ? "materialized view"
                                                    : "view";
}

class SqlRun {
 public:
  SqlRun(const PipelineConfig& config, const Graph& graph, const IngestOptions& options,
         SchemaInference inference = SchemaInference::kSampleAndFreeze)
      : config_(config), graph_(graph), options_(options), inference_(inference) {}

  const std::map<std::string, std::string>& not_checked() const { return not_checked_; }
  const std::map<std::string, std::string>& schema_notes() const { return schema_notes_; }

  // Plans every dataset: every query is bound and type-checked before any data moves. All
  // errors are collected; a dataset whose input failed is skipped without a second error.
  arrow::Status plan_all() {
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

  const std::map<std::string, std::shared_ptr<arrow::Schema>>& schemas() const { return schemas_; }
  const std::map<std::string, exec::SelectPlan>& views() const { return views_; }
  const std::map<std::string, exec::SelectPlan>& flow_plans() const { return flow_plans_; }

  // Schemas of the stored datasets planned so far (upstream of the one being planned).
  exec::SelectPlan::SchemaLookup schema_lookup() const {
    return [this](const std::string& n) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
      auto it = schemas_.find(n);
      if (it == schemas_.end()) return arrow::Status::Invalid("unknown table '", n, "'");
      return it->second;
    };
  }

  // The pipeline's views, inlined where they are read (each may read the others in turn).
  exec::SelectPlan::InlineLookup view_lookup() const {
    return [this](const std::string& n) -> std::optional<exec::SelectPlan::InlineQuery> {
      auto it = graph_.datasets.find(n);
      if (it == graph_.datasets.end()) return std::nullopt;
      const auto& v = it->second;
      if (v.kind != sql::DatasetKind::kView && v.kind != sql::DatasetKind::kTemporaryView) return std::nullopt;
      return exec::SelectPlan::InlineQuery{v.definition->query.get(), &graph_.files[v.file], view_lookup()};
    };
  }

  arrow::Status plan_dataset(const Dataset& d) {
    const std::string& name = d.name;
    auto inline_views = view_lookup();
    if (d.kind == sql::DatasetKind::kView || d.kind == sql::DatasetKind::kTemporaryView) {
      // Not stored: checked here, inlined into the queries that read it.
      const auto& flow = graph_.flows.at(d.flows[0]);
      ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(*flow.query, graph_.files[flow.file],
                                                              schema_lookup(), inline_views));
      ARROW_RETURN_NOT_OK(check_unique_columns(d, flow, plan));
      views_.emplace(d.name, std::move(plan));
      return arrow::Status::OK();
    }
    // Every flow into the dataset; the first one (its own query) defines the schema unless
    // the dataset declares its columns.
    std::shared_ptr<arrow::Schema> schema;
    for (const auto& fname : d.flows) {
      const auto& flow = graph_.flows.at(fname);
      if (!flow.query) {
        ARROW_ASSIGN_OR_RAISE(auto target, check_apply_changes(flow, inline_views));
        // Type-checked above; refused here (not when it would run), so that validate says so.
        std::vector<std::string> columns;
        for (const auto& f : target->fields()) columns.push_back(f->name() + " " + sql::sql_type_name(*f->type()));
        return arrow::Status::NotImplemented(sql::format_error(graph_.files[flow.file], flow.loc, fmt::format(
            "APPLY CHANGES INTO {} is parsed and type-checked (its target would have the columns {}) but not "
            "executed yet: remove it from the pipeline to run the pipeline",
            flow.target, fmt::join(columns, ", "))));
      }
      auto infer = [this, &fname](const exec::PlanSource& src) { return infer_value_schema(fname, src); };
      ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(*flow.query, graph_.files[flow.file],
                                                              schema_lookup(), inline_views, infer));
      if (d.kind == sql::DatasetKind::kStreamingTable) {
        if (!streaming_source(plan).streaming) {
          return arrow::Status::Invalid(sql::format_error(graph_.files[flow.file], plan.source().loc,
              "a streaming table reads a stream: write STREAM(...) or STREAM read_kafka(...)"));
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
    ARROW_ASSIGN_OR_RAISE(auto ex, Expectations::make(graph_, d, schema));
    schemas_.emplace(name, schema);
    expectations_.emplace(name, std::move(ex));
    return arrow::Status::OK();
  }

  // Whether the pipeline defines a dataset of this name, ignoring case (a side table of that
  // name would be the same folder, and the same table for Delta and Spark).
  bool defines(const std::string& name) const {
    const auto folded = to_lower(name);
    for (const auto& [n, ds] : graph_.datasets) {
      if (to_lower(n) == folded) return true;
    }
    return false;
  }

  // Delta refuses a table with two columns of the same name, ignoring case (deltalake and
  // Spark will not read it): refused where the second one is written.
  arrow::Status check_unique_columns(const Dataset& d, const Flow& flow, const exec::SelectPlan& plan) const {
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
  arrow::Status check_runnable(const Dataset& d, const Flow& flow, const exec::SelectPlan& plan) const {
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
      if (!plan.distinct_on().empty()) {
        return arrow::Status::NotImplemented(sql::format_error(file, flow.loc,
            "SELECT DISTINCT ON runs in streaming tables (dedup within the watermark); in a materialized view use "
            "GROUP BY with first()"));
      }
      return arrow::Status::OK();
    }
    if (d.kind != sql::DatasetKind::kStreamingTable) return arrow::Status::OK();
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
        auto n = parse_int64(it->second);
        if (!n || *n <= 0) {
          return at(src.loc, invalid("read_kafka schema_sample_records must be a positive number, not '{}'", it->second));
        }
      }
    }
    return arrow::Status::OK();
  }

  // Triggered (`continuous` unset): every dataset once. Continuous: see run_continuous().
  arrow::Result<std::vector<DatasetReport>> run(const ContinuousOptions* continuous = nullptr) {
    EventLog events(config_.storage, config_.name, random_uuid());
    events.add({"create_update", "INFO", fmt::format("Update {} started", events.update_id()), "", "",
                {{"mode", continuous ? "continuous" : "triggered"}}, 0});
    continuous_ = continuous;
    auto result = run_logged(events);
    if (result.ok()) {
      events.add({"update_progress", "INFO", fmt::format("Update {} is COMPLETED.", events.update_id()), "", "",
                  {{"update_progress", {{"state", "COMPLETED"}}}}, 0});
    } else {
      events.add({"update_progress", "ERROR", fmt::format("Update {} is FAILED.", events.update_id()), "", "",
                  {{"update_progress", {{"state", "FAILED"}}}, {"error", result.status().message()}}, 0});
    }
    // The event log is written even for a failed update; its own failure never hides the
    // update's result, only adds to it.
    auto logged = events.flush();
    if (!logged.ok()) {
      std::fprintf(stderr, "sluice: warning: could not write the event log: %s\n", logged.message().c_str());
    }
    return result;
  }

  arrow::Result<std::vector<DatasetReport>> run_logged(EventLog& events) {
    ARROW_RETURN_NOT_OK(forget_inferred_schemas());
    ARROW_RETURN_NOT_OK(plan_all());
    ARROW_RETURN_NOT_OK(full_refresh(events));
    for (const auto& [fname, flow] : graph_.flows) {
      nlohmann::json inputs = nlohmann::json::array();
      for (const auto& in : flow.inputs) {
        inputs.push_back(in.kind == FlowInput::Kind::kKafka ? "kafka:" + in.name : in.name);
      }
      const auto& d = graph_.datasets.at(flow.target);
      events.add({"flow_definition", "INFO", fmt::format("Flow '{}' is defined as {}.", fname, kind_text(d.kind)),
                  fname, flow.target,
                  {{"flow_definition", {{"output_dataset", flow.target},
                                        {"input_datasets", inputs},
                                        {"flow_type", flow.apply_changes ? "apply_changes"
                                                      : d.kind == sql::DatasetKind::kMaterializedView ? "materialized_view"
                                                                                                       : "append"}}}},
                  0});
    }
    if (continuous_) return run_continuous(events);
    return run_graph(events);
  }

  // Continuous mode: every stored dataset runs in its own loop until the stop flag. A dataset
  // that reads Kafka runs again at once while records keep coming, else after the trigger
  // interval; a dataset that reads other datasets wakes as soon as one of them commits in this
  // process (in-process notification) or, for writers in other processes, when polling their
  // logs every trigger interval finds a new version. Retryable errors (broker away, commit
  // race) are logged and retried after the trigger interval; any other error stops the
  // pipeline. The event log is appended every few seconds.
  arrow::Result<std::vector<DatasetReport>> run_continuous(EventLog& events) {
    events.add({"update_progress", "INFO", fmt::format("Update {} is RUNNING.", events.update_id()), "", "",
                {{"update_progress", {{"state", "RUNNING"}}}}, 0});
    std::vector<std::string> stored;
    for (const auto& name : graph_.order) {
      if (!views_.count(name)) stored.push_back(name);
    }
    std::mutex mutex;  // guards generation, fatal
    std::condition_variable changed;
    std::map<std::string, int64_t> generation;  // commits made in this process, per dataset
    arrow::Status fatal;
    auto stopping = [&] {
      std::lock_guard lock(mutex);
      return options_.stopping() || !fatal.ok();
    };
    const auto interval = continuous_->trigger_interval;

    auto loop = [&](const std::string& name) {
      const auto& d = graph_.datasets.at(name);
      const auto needs = stored_upstream(name);
      bool reads_kafka = false;
      for (const auto& f : d.flows) {
        if (flow_plans_.count(f) && flow_plans_.at(f).source().kind == exec::PlanSource::Kind::kKafka) reads_kafka = true;
      }
      std::map<std::string, int64_t> seen_generation;
      std::map<std::string, int64_t> seen_version;  // upstream table versions at the last run
      bool first = true;
      const bool everywhere = runs_in_every_process(d);
      while (!stopping()) {
        if (!everywhere && continuous_->leads) {
          auto leads = continuous_->leads();
          if (!leads.ok()) {
            std::lock_guard lock(mutex);
            if (fatal.ok()) {
              fatal = with_context(leads.status(), fmt::format("pipeline '{}', table '{}'", config_.name, name));
            }
            changed.notify_all();
            return;
          }
          if (!*leads) {
            // A scale-out run: another process leads and runs this dataset; this one takes over
            // when that one ends.
            wait_or_stop(mutex, changed, interval);
            continue;
          }
        }
        if (!first && !needs.empty()) {
          // Wait for an upstream commit here, or poll the upstream logs (other processes).
          wait_or_stop(mutex, changed, interval, [&] {
            if (!fatal.ok()) return true;
            for (const auto& up : needs) {
              if (generation[up] != seen_generation[up]) return true;
            }
            return false;
          });
          if (stopping()) break;
        }
        bool upstream_moved = first || needs.empty();
        {
          std::lock_guard lock(mutex);
          for (const auto& up : needs) {
            if (generation[up] != seen_generation[up]) upstream_moved = true;
            seen_generation[up] = generation[up];
          }
        }
        bool upstream_missing = false;  // not created yet: its own first run is under way
        for (const auto& up : needs) {
          delta::LogStore store(config_.table_path(up));
          auto v = store.latest_version();
          int64_t version = v.ok() && *v ? (*v)->value() : -1;
          if (seen_version[up] != version || first) upstream_moved = true;
          upstream_missing |= version < 0;
          seen_version[up] = version;
        }
        first = false;
        if (!upstream_moved || upstream_missing) continue;
        DatasetReport report;
        auto st = run_dataset(d, report, events);
        if (st.ok()) {
          if (report.rows_written > 0 || report.rows_read > 0) {
            if (continuous_->on_report) continuous_->on_report(report);
            std::lock_guard lock(mutex);
            ++generation[name];
          }
          changed.notify_all();
          // Kafka: keep going while records flow; otherwise wait for the trigger interval.
          if (reads_kafka && report.rows_read == 0) wait_or_stop(mutex, changed, interval);
          continue;
        }
        if (is_retryable(st)) {
          const auto message =
              in_context(fmt::format("pipeline '{}', table '{}'", config_.name, name), st.message());
          std::fprintf(stderr, "sluice: warning: %s (retrying)\n", message.c_str());
          wait_or_stop(mutex, changed, interval);
          continue;
        }
        std::lock_guard lock(mutex);
        if (fatal.ok()) fatal = with_context(st, fmt::format("pipeline '{}', table '{}'", config_.name, name));
        changed.notify_all();
        return;
      }
    };
    std::vector<std::thread> threads;
    for (const auto& name : stored) threads.emplace_back(loop, name);
    // The event log is appended every few seconds while the flows run.
    while (!stopping()) {
      wait_or_stop(mutex, changed, std::max(interval, std::chrono::milliseconds(2000)));
      auto logged = events.flush();
      if (!logged.ok()) std::fprintf(stderr, "sluice: warning: could not write the event log: %s\n", logged.message().c_str());
    }
    {
      std::lock_guard lock(mutex);
      changed.notify_all();
    }
    for (auto& t : threads) t.join();
    if (!fatal.ok()) return fatal;
    return std::vector<DatasetReport>{};
  }

  // Whether several processes may run the dataset at once (scale-out): a streaming table whose
  // every flow reads Kafka as a consumer-group member and keeps no event-time state, so the
  // group splits the partitions and the txns keep each record once. Anything else reads the
  // same input in every process, or keeps state per process.
  bool runs_in_every_process(const Dataset& d) const {
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

  // Sleeps up to `how_long`, less if the stop flag is set or `done` (checked under `mutex`)
  // becomes true meanwhile.
  void wait_or_stop(std::mutex& mutex, std::condition_variable& changed, std::chrono::milliseconds how_long,
                    const std::function<bool()>& done = {}) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    std::unique_lock lock(mutex);
    while (!options_.stopping() && !(done && done()) && std::chrono::steady_clock::now() < until) {
      // The stop flag is set by a signal handler, which cannot notify: wake up now and then.
      changed.wait_for(lock, std::chrono::milliseconds(50));
    }
  }

  // Runs the stored datasets on a pool of threads: a dataset starts once every stored dataset
  // it reads has finished, so independent branches of the graph run side by side. A failed
  // dataset fails (skips) its downstream, never its siblings; the event log says why.
  arrow::Result<std::vector<DatasetReport>> run_graph(EventLog& events) {
    enum class State { kPending, kRunning, kDone, kFailed, kSkipped };
    std::vector<std::string> stored;
    for (const auto& name : graph_.order) {
      if (!views_.count(name)) stored.push_back(name);
    }
    std::map<std::string, std::set<std::string>> needs;
    for (const auto& name : stored) needs[name] = stored_upstream(name);

    std::mutex mutex;  // guards state, reports, failures, running
    std::condition_variable changed;
    std::map<std::string, State> state;
    for (const auto& name : stored) state[name] = State::kPending;
    std::map<std::string, DatasetReport> reports;
    std::vector<std::pair<std::string, arrow::Status>> failures;  // in the order they happened
    int running = 0;

    // Under the lock: the next dataset whose inputs are all done; skips (transitively) those
    // whose inputs failed.
    auto next_ready = [&]() -> std::optional<std::string> {
      for (bool skipped_one = true; skipped_one;) {  // a skip may make its downstream skippable
        skipped_one = false;
        for (const auto& name : stored) {
          if (state[name] != State::kPending) continue;
          std::string failed_input;
          bool waiting = false;
          for (const auto& up : needs[name]) {
            if (state[up] == State::kFailed || state[up] == State::kSkipped) failed_input = up;
            if (state[up] == State::kPending || state[up] == State::kRunning) waiting = true;
          }
          if (!failed_input.empty()) {
            state[name] = State::kSkipped;
            skipped_one = true;
            const auto& d = graph_.datasets.at(name);
            auto why = fmt::format("skipped because its input '{}' failed", failed_input);
            events.add({"flow_progress", "ERROR", fmt::format("Flow '{}' has been SKIPPED: {}.", name, why),
                        d.flows.empty() ? name : d.flows[0], name,
                        {{"flow_progress", {{"status", "SKIPPED"}, {"reason", why}, {"upstream", failed_input}}}}, 0});
            failures.emplace_back(name, arrow::Status::Invalid(why));
            continue;
          }
          if (!waiting) return name;
        }
      }
      return std::nullopt;
    };
    auto worker = [&] {
      std::unique_lock lock(mutex);
      while (true) {
        std::optional<std::string> name;
        if (!options_.stopping()) name = next_ready();  // stopping: the rest waits for the next update
        if (!name) {
          bool pending = false;
          for (const auto& [n, st] : state) pending |= st == State::kPending;
          if (running == 0 || !pending) {  // nothing left, or nothing can become ready
            changed.notify_all();
            return;
          }
          changed.wait(lock);
          continue;
        }
        state[*name] = State::kRunning;
        ++running;
        lock.unlock();
        DatasetReport report;
        auto st = run_dataset(graph_.datasets.at(*name), report, events);
        lock.lock();
        --running;
        state[*name] = st.ok() ? State::kDone : State::kFailed;
        if (st.ok()) {
          reports[*name] = std::move(report);
        } else {
          failures.emplace_back(*name, with_context(st, fmt::format("pipeline '{}', table '{}'", config_.name, *name)));
        }
        changed.notify_all();
      }
    };
    const size_t threads = std::max<size_t>(1, std::min<size_t>(std::thread::hardware_concurrency(), stored.size()));
    std::vector<std::thread> pool;
    for (size_t i = 1; i < threads; ++i) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();

    if (!failures.empty()) {
      // The first real failure decides the code (and whether a retry may help); every
      // failure and skip is listed.
      arrow::Status first = failures.front().second;
      for (const auto& [n, st] : failures) {
        if (st.message().find("skipped because") == std::string::npos) {
          first = st;
          break;
        }
      }
      if (failures.size() == 1) return first;
      std::string all;
      for (const auto& [n, st] : failures) all += fmt::format("\n  {}: {}", n, st.message());
      return with_context(first, fmt::format("{} dataset(s) failed or were skipped:{}\nfirst failure",
                                             failures.size(), all));
    }
    std::vector<DatasetReport> out;
    for (const auto& name : stored) {
      if (reports.count(name)) out.push_back(std::move(reports[name]));
    }
    return out;
  }

  // The stored datasets a dataset reads, through views (which are inlined, never stored).
  std::set<std::string> stored_upstream(const std::string& name) const {
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

  // One dataset of the update, with its flow_progress event.
  arrow::Status run_dataset(const Dataset& d, DatasetReport& report, EventLog& events) {
    const auto& name = d.name;
    report.dataset = name;
    report.kind = kind_text(d.kind);
    const auto started = std::chrono::steady_clock::now();
    const int64_t started_ms = now_millis();
    auto st = d.kind == sql::DatasetKind::kStreamingTable ? run_streaming(d, report) : run_materialized(d, report);
    report.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started).count();
    nlohmann::json expectations = nlohmann::json::array();
    for (const auto& [constraint, failed] : report.expectation_failures) {
      expectations.push_back({{"name", constraint}, {"dataset", name},
                              {"passed_records", report.expectation_rows[constraint] - failed},
                              {"failed_records", failed}});
    }
    nlohmann::json progress = {{"status", st.ok() ? "COMPLETED" : "FAILED"},
                               {"metrics", {{"num_input_rows", report.rows_read},
                                            {"num_output_rows", report.rows_written},
                                            {"num_dropped_rows", report.rows_dropped}}},
                               {"data_quality", {{"expectations", expectations}}},
                               {"table_version", report.version},
                               {"duration_ms", report.duration_ms},
                               {"start_time_ms", started_ms},
                               {"end_time_ms", now_millis()}};
    if (report.backlog) progress["metrics"]["backlog_records"] = *report.backlog;
    if (report.rows_quarantined) progress["metrics"]["num_quarantined_rows"] = report.rows_quarantined;
    if (report.rows_dead_lettered) progress["metrics"]["num_dead_letter_rows"] = report.rows_dead_lettered;
    if (report.refresh_mode) {  // materialized views
      progress["refresh"] = {{"mode", *report.refresh_mode}, {"reason", report.refresh_reason}};
      if (report.state_rows) progress["metrics"]["state_rows"] = *report.state_rows;
    } else if (report.state_rows) {  // windowed flows
      progress["metrics"]["num_late_rows"] = report.rows_late;
      if (report.rows_duplicate) progress["metrics"]["num_duplicate_rows"] = report.rows_duplicate;
      progress["metrics"]["state_rows"] = *report.state_rows;
      progress["metrics"]["state_bytes"] = report.state_bytes.value_or(0);
      if (report.watermark && *report.watermark != exec::WindowState::kNoWatermark) {
        progress["metrics"]["watermark_micros"] = *report.watermark;
      }
    }
    if (!st.ok()) {
      // DLT's shape: the error and where it happened, outermost first (pipeline, dataset, flows,
      // then each context the error gathered on its way up, e.g. table, topic/partition/offset).
      nlohmann::json stack = nlohmann::json::array({fmt::format("pipeline '{}'", config_.name),
                                                    fmt::format("dataset '{}' ({})", name, kind_text(d.kind))});
      for (const auto& f : d.flows) stack.push_back(fmt::format("flow '{}'", f));
      progress["error"] = {{"message", st.message()}, {"code", st.CodeAsString()}, {"retryable", is_retryable(st)},
                           {"exceptions", {{{"class_name", "sluice::" + st.CodeAsString()},
                                            {"message", st.message()},
                                            {"stack", stack}}}}};
    }
    for (const auto& loss : report.data_loss) {
      // Own event type: `sluice events --type data_loss` lists every range ever skipped.
      events.add({"data_loss", "WARN",
                  fmt::format("Kafka {}[{}]: offsets from {}{} were lost ({}); the flow went on at offset {} "
                              "(fail_on_data_loss => false).",
                              loss.topic, loss.partition, loss.from,
                              loss.until ? fmt::format(" to {}", *loss.until - 1) : std::string(" on"), loss.reason,
                              loss.resumed_at),
                  loss.flow, name,
                  {{"data_loss", {{"topic", loss.topic},
                                  {"partition", loss.partition},
                                  {"from_offset", loss.from},
                                  {"until_offset", loss.until ? nlohmann::json(*loss.until) : nlohmann::json()},
                                  {"resumed_at_offset", loss.resumed_at},
                                  {"reason", loss.reason}}}},
                  0});
    }
    events.add({"flow_progress", st.ok() ? "INFO" : "ERROR",
                st.ok() ? fmt::format("Flow '{}' has COMPLETED.", name)
                        : fmt::format("Flow '{}' has FAILED: {}", name, st.message()),
                d.flows.empty() ? name : d.flows[0], name, {{"flow_progress", progress}}, 0});
    return st;
  }

 private:
  arrow::Status run_streaming(const Dataset& d, DatasetReport& report) {
    for (const auto& fname : d.flows) {
      ARROW_RETURN_NOT_OK(run_flow(d, fname, report));
    }
    return arrow::Status::OK();
  }

  // APPLY CHANGES: the source is read as a stream; keys, SEQUENCE BY, APPLY AS DELETE/TRUNCATE
  // and COLUMNS are bound against it. Returns the target's schema (SCD type 2 adds __START_AT
  // and __END_AT of the SEQUENCE BY type, as DLT does).
  arrow::Result<std::shared_ptr<arrow::Schema>> check_apply_changes(
      const Flow& flow, const exec::SelectPlan::InlineLookup& inline_views) {
    const auto& ac = *flow.apply_changes;
    const auto& file = graph_.files[flow.file];
    sql::Query q;
    q.loc = ac.loc;
    sql::Select sel;
    sel.loc = ac.loc;
    auto star = std::make_unique<sql::Expr>();
    star->kind = sql::ExprKind::kStar;
    star->loc = ac.loc;
    sel.items.push_back({std::move(star), ""});
    auto source = std::make_unique<sql::TableRef>();
    source->kind = ac.source->kind;
    source->loc = ac.source->loc;
    source->name = ac.source->name;
    source->stream = ac.source->stream;
    source->query = ac.source->query;
    sel.from = std::move(source);
    q.selects.push_back(std::move(sel));
    ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(q, file, schema_lookup(), inline_views));
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
    return arrow::schema(fields);
  }

  // --full-refresh: the named streaming tables (all, for "*") lose their rows and their
  // progress in one commit (every txn of the table set to -1, "nothing read"), so this update
  // reprocesses them from their sources. A table read straight from Kafka keeps its history
  // unless its `pipelines.reset.allowed` property is true: Kafka retention may have dropped
  // what it holds.
  arrow::Status full_refresh(EventLog& events) {
    if (options_.full_refresh.empty()) return arrow::Status::OK();
    std::vector<std::string> names = options_.full_refresh;
    if (names.size() == 1 && names[0] == "*") {
      names.clear();
      for (const auto& [n, d] : graph_.datasets) {
        if (d.kind == sql::DatasetKind::kStreamingTable) names.push_back(n);
      }
    }
    const size_t requested = names.size();
    // A reset table removes rows its downstream streaming tables already read, so they are
    // reset too (transitively); otherwise their streaming reads would have to fail.
    for (size_t i = 0; i < names.size(); ++i) {
      for (const auto& [n, d] : graph_.datasets) {
        // Views are followed through (they are inlined); materialized views recompute anyway.
        if (d.kind == sql::DatasetKind::kMaterializedView || std::find(names.begin(), names.end(), n) != names.end()) continue;
        auto upstream = graph_.upstream_of(n);
        if (std::find(upstream.begin(), upstream.end(), names[i]) != upstream.end()) names.push_back(n);
      }
    }
    for (size_t index = 0; index < names.size(); ++index) {
      const auto& name = names[index];
      auto it = graph_.datasets.find(name);
      if (it == graph_.datasets.end()) {
        std::vector<std::string> all;
        for (const auto& [n, d] : graph_.datasets) all.push_back(n);
        std::string best = closest_match(name, all);
        return invalid("--full-refresh names '{}', which is not a table of the pipeline{}", name,
                       best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best));
      }
      const auto& d = it->second;
      if (d.kind != sql::DatasetKind::kStreamingTable) continue;  // recomputed every update anyway
      bool reads_kafka = false;
      for (const auto& f : d.flows) {
        if (flow_plans_.count(f) && flow_plans_.at(f).source().kind == exec::PlanSource::Kind::kKafka) reads_kafka = true;
      }
      auto props = properties(d);
      if (reads_kafka && (props.count("pipelines.reset.allowed") ? to_lower(props["pipelines.reset.allowed"]) != "true" : true)) {
        if (index < requested && options_.full_refresh[0] != "*") {
          return invalid("table '{}' reads Kafka directly and keeps its history across full refreshes; set "
                         "TBLPROPERTIES ('pipelines.reset.allowed' = 'true') to allow resetting it", name);
        }
        continue;  // "*": silently keep bronze, as DLT does
      }
      // Its quarantine and dead letters go with it: they hold rows of the same progress.
      for (const auto& table : {name + "_quarantine", name + "_dead_letter", name}) {
        ARROW_ASSIGN_OR_RAISE(auto version, reset_table(table));
        if (!version) continue;
        events.add({"flow_progress", "INFO", fmt::format("Table '{}' was reset for a full refresh.", table),
                    d.flows.empty() ? name : d.flows[0], table,
                    {{"full_refresh", {{"table_version", *version}}}}, 0});
      }
    }
    return arrow::Status::OK();
  }

  // A full refresh re-infers the value schemas of the tables it resets: their frozen schema
  // files are deleted before planning, which samples the topics again and freezes what it finds.
  // A table reading Kafka that keeps its history (no 'pipelines.reset.allowed') keeps its schema.
  arrow::Status forget_inferred_schemas() const {
    if (options_.full_refresh.empty()) return arrow::Status::OK();
    const auto& names = options_.full_refresh;
    const bool all = names.size() == 1 && names[0] == "*";
    for (const auto& [name, d] : graph_.datasets) {
      if (d.kind != sql::DatasetKind::kStreamingTable) continue;
      if (!all && std::find(names.begin(), names.end(), name) == names.end()) continue;
      bool reads_kafka = false;
      for (const auto& f : d.flows) {
        for (const auto& in : graph_.flows.at(f).inputs) reads_kafka |= in.kind == FlowInput::Kind::kKafka;
      }
      auto props = properties(d);
      const bool reset_allowed =
          props.count("pipelines.reset.allowed") && to_lower(props["pipelines.reset.allowed"]) == "true";
      if (reads_kafka && !reset_allowed) continue;
      for (const auto& f : d.flows) {
        std::error_code ec;
        std::filesystem::remove(inferred_schema_path(f), ec);
        if (ec) return io_error("cannot delete {} for the full refresh of '{}': {}", inferred_schema_path(f).string(), name, ec.message());
      }
    }
    return arrow::Status::OK();
  }

  // Empties a table and its progress (every txn set to -1, "nothing read") in one commit; the
  // new version, or none when the table does not exist.
  arrow::Result<std::optional<int64_t>> reset_table(const std::string& table) const {
    auto store = std::make_shared<delta::LogStore>(config_.table_path(table));
    ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
    if (!snapshot) return std::nullopt;
    delta::WriteOptions wo;
    wo.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
    wo.mode = delta::WriteMode::kOverwrite;
    wo.schema_mode = delta::SchemaMode::kMerge;
    auto schema = schemas_.count(table) ? schemas_.at(table) : snapshot->schema();
    ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *schema, wo));
    ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
    for (const auto& [app, t] : snapshot->txns()) txn.set_txn(app, -1);
    delta::CommitOptions co;
    co.operation = "FULL REFRESH";
    ARROW_ASSIGN_OR_RAISE(auto result, txn.commit(co));
    return result.version.value();
  }

  // read_kafka's topic, offset, timestamp, header and consumer-group options (kafka_options.h).
  static arrow::Status apply_kafka_options(const std::map<std::string, std::string>& options, KafkaFlowSpec& spec) {
    return apply_read_kafka_options(options, spec);
  }

  // TBLPROPERTIES with pipeline.yaml `tables.<name>.properties` over them; they become the Delta
  // table's configuration when it is created.
  std::map<std::string, std::string> properties(const Dataset& d) const {
    auto out = d.definition->properties;
    if (auto it = config_.table_properties.find(d.name); it != config_.table_properties.end()) {
      for (const auto& [k, v] : it->second) out[k] = v;
    }
    return out;
  }

  // WATERMARK is type-checked by validate; running it needs the event-time runtime.
  // Aggregations in streaming tables are event-time windows: GROUP BY window(ts, ...) over a
  // stream with a WATERMARK, emitted once when the watermark passes the window.
  static arrow::Status check_windowed(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc) {
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
  static arrow::Status check_dedup(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc) {
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
  arrow::Result<WindowedFlowOptions> windowed_options(const Dataset& d, const std::string& flow_name,
                                                      const exec::SelectPlan& plan) const {
    WindowedFlowOptions o;
    o.table_path = config_.table_path(d.name);
    o.late_table_path = config_.table_path(d.name + "_late");
    o.table = d.name;
    o.flow = flow_name;
    o.pipeline = config_.id;
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

  static arrow::Status refuse_event_time(const exec::SelectPlan& plan) {
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
  bool quarantines(const Dataset& d) const {
    auto props = properties(d);
    auto it = props.find("sluice.quarantine");
    return it != props.end() && to_lower(it->second) == "true";
  }

  arrow::Result<std::unique_ptr<SideTable>> open_quarantine(const Dataset& d) const {
    const auto qname = d.name + "_quarantine";
    return SideTable::make(config_.table_path(qname), qname, quarantine_schema(*schemas_.at(d.name)),
                           fmt::format("rows of '{}' that its DROP ROW expectations removed", d.name));
  }

  // The Kafka cluster a read_kafka reads: `cluster` of pipeline.yaml (default "default"),
  // extended by bootstrapServers / kafka.* arguments into a cluster of the flow's own.
  arrow::Result<std::pair<std::string, kafka::KafkaProperties>> kafka_cluster_of(const exec::PlanSource& src,
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

  // read_kafka(value_format => 'json') without value_schema: a schema inferred from the first
  // records of the topic, stored at <storage>/system/inferred_schemas/<flow>.ddl the first time
  // and read from there afterwards, so the table's schema stays fixed (delete the file, or
  // declare value_schema, to change it).
  arrow::Result<std::string> infer_value_schema(const std::string& flow_name, const exec::PlanSource& src) {
    const auto path = inferred_schema_path(flow_name);
    const auto& target = graph_.flows.at(flow_name).target;
    if (std::filesystem::exists(path)) {
      std::ifstream in(path);
      std::string ddl((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!ddl.empty()) {
        schema_notes_[target] = fmt::format("value columns inferred from topic '{}', frozen in {}", src.name,
                                            path.string());
        return ddl;
      }
    }
    if (inference_ == SchemaInference::kFrozenOnly) {
      // Planning stops here for this dataset (plan_all reads unknown_inferred_): not an error.
      unknown_inferred_ = fmt::format(
          "its value columns are inferred from topic '{}' at the first run and not known yet (sluice validate "
          "--infer-schemas samples the topic now)", src.name);
      return invalid("the value schema of topic '{}' is not known yet", src.name);
    }
    if (src.options.count("topic_pattern") || src.name.find(',') != std::string::npos) {
      return invalid("value_format => 'json' reading several topics needs value_schema => 'a INT, ...' "
                     "(a schema is inferred only for one topic)");
    }
    ARROW_ASSIGN_OR_RAISE(auto cluster, kafka_cluster_of(src, flow_name));
    ARROW_ASSIGN_OR_RAISE(auto consumer, kafka::Consumer::make(cluster.first, cluster.second, "sluice-" + config_.name));
    ARROW_ASSIGN_OR_RAISE(auto partitions, consumer->partitions(src.name, options_.metadata_timeout));
    std::vector<kafka::PartitionStart> starts;
    int64_t available = 0;
    for (auto p : partitions) {
      ARROW_ASSIGN_OR_RAISE(auto marks, consumer->watermarks(src.name, p, options_.metadata_timeout));
      if (marks.high > marks.low) starts.push_back({src.name, p, marks.low});
      available += marks.high.value() - marks.low.value();
    }
    int64_t wanted = 1000;
    if (auto it = src.options.find("schema_sample_records"); it != src.options.end()) {
      auto n = parse_int64(it->second);
      if (!n || *n <= 0) return invalid("read_kafka schema_sample_records must be a positive number, not '{}'", it->second);
      wanted = *n;
    }
    wanted = std::min(wanted, available);
    std::vector<std::string> samples;
    if (!starts.empty()) {
      ARROW_RETURN_NOT_OK(consumer->assign(starts));
      size_t at_end = 0;
      const auto deadline = std::chrono::steady_clock::now() + options_.metadata_timeout;
      while (static_cast<int64_t>(samples.size()) < wanted && at_end < starts.size() &&
             std::chrono::steady_clock::now() < deadline) {
        auto msg = consumer->poll(std::chrono::milliseconds(200));
        if (!msg) continue;
        if (msg->err() == RdKafka::ERR__PARTITION_EOF) {
          ++at_end;
        } else if (msg->err() == RdKafka::ERR_NO_ERROR && msg->payload() != nullptr) {
          samples.emplace_back(static_cast<const char*>(msg->payload()), msg->len());
        }
      }
    }
    std::vector<std::string_view> views(samples.begin(), samples.end());
    auto schema = format::infer_json_schema(views);
    if (!schema.ok()) return with_context(schema.status(), fmt::format("topic '{}'", src.name));
    std::string ddl;
    for (const auto& f : (*schema)->fields()) {
      ddl += fmt::format("{}`{}` {}", ddl.empty() ? "" : ", ", f->name(), sql::sql_type_name(*f->type()));
    }
    if (inference_ == SchemaInference::kSampleNoFreeze) {
      schema_notes_[target] = fmt::format("value columns sampled from topic '{}' now (not frozen: the first run "
                                          "samples again and freezes them in {})", src.name, path.string());
      return ddl;
    }
    std::filesystem::create_directories(path.parent_path());
    const auto tmp = path.string() + ".tmp";
    std::error_code ec;
    std::filesystem::remove(tmp, ec);  // left by a crash
    // Durably and whole, or not at all: a full disk must not leave a truncated schema.
    ARROW_RETURN_NOT_OK(delta::write_file_durably(tmp, ddl));
    std::filesystem::rename(tmp, path, ec);
    if (ec) return io_failure(ec.value(), "cannot write inferred schema", path.string());
    return ddl;
  }

  std::filesystem::path inferred_schema_path(const std::string& flow_name) const {
    return config_.storage / "system" / "inferred_schemas" / (flow_name + ".ddl");
  }

  // The stream a streaming table's flow reads (with a stream-static join, its streaming side).
  static exec::PlanSource streaming_source(const exec::SelectPlan& plan) {
    for (const auto& s : plan.sources()) {
      if (s.streaming) return s;
    }
    return plan.source();
  }

  // The current snapshot of a dataset read statically (the static side of a stream-static
  // join), read again only when the table has a new version.
  arrow::Result<std::shared_ptr<arrow::Table>> static_table(const std::string& name) {
    delta::LogStore store(config_.table_path(name));
    ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::Snapshot::load(store));
    const int64_t version = snapshot->version().value();
    {
      std::lock_guard lock(static_mutex_);
      auto it = static_tables_.find(name);
      if (it != static_tables_.end() && it->second.first == version) return it->second.second;
    }
    ARROW_ASSIGN_OR_RAISE(auto table, delta::scan_table(store, *snapshot));
    std::lock_guard lock(static_mutex_);
    static_tables_[name] = {version, table};
    return table;
  }

  // Stream-stream joins (exec/stream_join.h): two Delta streams, each with a WATERMARK.
  static arrow::Status check_stream_join(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc) {
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

  arrow::Status run_stream_join(const Dataset& d, const std::string& flow_name, DatasetReport& report) {
    const auto& plan = flow_plans_.at(flow_name);
    const auto& ex = expectations_.at(d.name);
    const auto& schema = schemas_.at(d.name);
    StreamJoinFlowSpec spec;
    spec.pipeline = config_.id;
    spec.table = d.name;
    spec.flow = flow_name;
    spec.table_path = config_.table_path(d.name);
    spec.left_path = config_.table_path(plan.join_left()->source().name);
    spec.right_path = config_.table_path(plan.join_right()->source().name);
    spec.configuration = properties(d);
    spec.description = d.definition->comment;
    spec.partition_columns = d.definition->partitioned_by;
    spec.schema = schema;
    spec.to_table_rows = [&](const arrow::RecordBatch& rows) -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
      ARROW_ASSIGN_OR_RAISE(auto conformed, delta::conform_batch(rows, schema));
      return ex.apply(conformed, report);
    };
    ARROW_ASSIGN_OR_RAISE(auto r, run_stream_join_flow(plan, spec));
    report.rows_read += r.rows_read;
    report.rows_written += r.rows_written;
    report.rows_late += r.rows_late;
    report.state_rows = r.state_rows;
    report.state_bytes = r.state_bytes;
    report.watermark = r.watermark;
    report.version = r.version;
    return arrow::Status::OK();
  }

  // One flow into a streaming table; its progress is its own txn appId.
  arrow::Status run_flow(const Dataset& d, const std::string& flow_name, DatasetReport& report) {
    const auto& plan = flow_plans_.at(flow_name);
    if (plan.joins() && !plan.streams_on_left_only()) return run_stream_join(d, flow_name, report);
    ARROW_RETURN_NOT_OK(refuse_event_time(plan));
    const auto& ex = expectations_.at(d.name);
    const auto& schema = schemas_.at(d.name);
    std::unique_ptr<SideTable> quarantine;
    if (quarantines(d)) {
      ARROW_ASSIGN_OR_RAISE(quarantine, open_quarantine(d));
    }
    // GROUP BY window(...): the windows the watermark closed are the table's rows.
    std::unique_ptr<WindowedFlow> windowed;
    if (plan.aggregates() || plan.distinct()) {  // windows, or SELECT DISTINCT (dedup)
      ARROW_ASSIGN_OR_RAISE(auto wo, windowed_options(d, flow_name, plan));
      ARROW_ASSIGN_OR_RAISE(windowed, WindowedFlow::make(plan, std::move(wo)));
      auto target = std::make_shared<delta::LogStore>(config_.table_path(d.name));
      ARROW_ASSIGN_OR_RAISE(auto committed, delta::load_latest_if_exists(*target));
      ARROW_RETURN_NOT_OK(windowed->load(committed.get()));
    }
    struct WindowReport {  // event log: late rows and state size of the windowed flow
      WindowedFlow* flow;
      DatasetReport& report;
      ~WindowReport() {
        if (!flow) return;
        report.rows_late += flow->late_rows();
        report.state_rows = flow->state_rows();
        report.state_bytes = flow->state_bytes();
        report.watermark = flow->watermark();
        report.rows_duplicate += flow->duplicates_dropped();
      }
    } window_report{windowed.get(), report};
    // Where the rows of the current input batch came from (windowed flows only).
    std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(const arrow::RecordBatch& input,
                                                                     const arrow::RecordBatch& rows,
                                                                     const arrow::Array& input_rows)> window_consume;
    // Rows of the table; with a quarantine, `positions` (given the indices of dropped rows in
    // `input`) says where each dropped row came from and whether it is already quarantined.
    using Positions = std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(
        const Expectations::Dropped&, const std::shared_ptr<arrow::Array>& input_rows)>;
    // `source_of(i)` names the source position of row i of `input`.
    using SourceOf = std::function<std::string(int64_t)>;
    auto to_table_rows = [&](const arrow::RecordBatch& input, const Positions& quarantine_rows,
                             const SourceOf& source_of) -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
      std::shared_ptr<arrow::Array> input_rows;
      std::shared_ptr<arrow::RecordBatch> rows;
      if (plan.joins()) {
        // Stream-static join: this batch of the stream against the static tables' snapshots.
        ARROW_ASSIGN_OR_RAISE(auto joined, plan.run([&](const exec::PlanSource& s) -> arrow::Result<std::shared_ptr<arrow::Table>> {
          if (s.streaming) return arrow::Table::FromRecordBatches(input.schema(), {arrow::RecordBatch::Make(input.schema(), input.num_rows(), input.columns())});
          return static_table(s.name);
        }));
        ARROW_ASSIGN_OR_RAISE(rows, joined->CombineChunksToBatch());
      } else {
        ARROW_ASSIGN_OR_RAISE(rows, plan.apply_row_stages(input, &input_rows));
      }
      if (windowed) {
        ARROW_ASSIGN_OR_RAISE(rows, window_consume(input, *rows, *input_rows));
        input_rows.reset();  // window rows have no single source row
        ARROW_ASSIGN_OR_RAISE(rows, delta::conform_batch(*rows, schema));
        return ex.apply(rows, report);
      }
      ARROW_ASSIGN_OR_RAISE(rows, delta::conform_batch(*rows, schema));
      SourceOf row_source;
      if (input_rows) {
        row_source = [&](int64_t r) {
          return source_of(static_cast<const arrow::Int64Array&>(*input_rows).Value(r));
        };
      }
      if (!quarantine) return ex.apply(rows, report, nullptr, row_source);
      Expectations::Dropped dropped;
      ARROW_ASSIGN_OR_RAISE(auto kept, ex.apply(rows, report, &dropped, row_source));
      if (dropped.rows) {
        ARROW_ASSIGN_OR_RAISE(auto source_rows, cp::Take(input_rows, dropped.indices));
        ARROW_ASSIGN_OR_RAISE(auto qrows, quarantine_rows(dropped, source_rows.make_array()));
        report.rows_quarantined += qrows->num_rows();
        ARROW_RETURN_NOT_OK(quarantine->write(*qrows));
      }
      return kept;
    };
    const auto src = streaming_source(plan);
    if (src.kind == exec::PlanSource::Kind::kKafka) {
      PipelineConfig flow_config = config_;  // read_kafka arguments may add a cluster of their own
      KafkaFlowSpec spec;
      spec.table = d.name;
      spec.flow = flow_name;
      spec.topic = src.name;
      ARROW_ASSIGN_OR_RAISE(auto cluster, kafka_cluster_of(src, flow_name));
      spec.cluster = cluster.first;
      flow_config.kafka[spec.cluster] = std::move(cluster.second);
      ARROW_RETURN_NOT_OK(apply_kafka_options(src.options, spec));
      if (windowed) {
        window_consume = [&](const arrow::RecordBatch& input, const arrow::RecordBatch& rows, const arrow::Array& input_rows) {
          return windowed->consume_kafka(input, rows, input_rows);
        };
      }
      spec.partition_columns = d.definition->partitioned_by;
      spec.properties = properties(d);
      spec.comment = d.definition->comment.value_or("");
      spec.output_schema = schema;
      // Kafka rows carry their position: topic, partition, offset.
      const PipelineId pipeline = config_.id;
      auto kafka_positions = [&](const arrow::RecordBatch& input) -> Positions {
        return [&, input_ptr = &input](const Expectations::Dropped& dropped, const std::shared_ptr<arrow::Array>& rows)
                   -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
          ARROW_ASSIGN_OR_RAISE(auto topic, cp::Take(input_ptr->GetColumnByName("topic"), rows));
          ARROW_ASSIGN_OR_RAISE(auto partition, cp::Take(input_ptr->GetColumnByName("partition"), rows));
          ARROW_ASSIGN_OR_RAISE(auto offset, cp::Take(input_ptr->GetColumnByName("offset"), rows));
          auto t = std::static_pointer_cast<arrow::StringArray>(topic.make_array());
          auto p = std::static_pointer_cast<arrow::Int32Array>(partition.make_array());
          auto o = std::static_pointer_cast<arrow::Int64Array>(offset.make_array());
          return quarantine_batch(*quarantine->schema(), dropped, t, p, o, [&](int64_t i) {
            auto app = kafka_progress_id(pipeline, flow_name, t->GetString(i), KafkaPartition(p->Value(i)));
            return o->Value(i) < quarantine->committed(app);
          });
        };
      };
      // value_format: records are decoded at the source; those that cannot be go to
      // `<table>_dead_letter` with their position, the error and the raw bytes.
      std::unique_ptr<format::PayloadDecoder> decoder;
      std::unique_ptr<SideTable> dead_letters;
      if (src.options.count("value_format")) {
        ARROW_ASSIGN_OR_RAISE(auto value_format, exec::value_format_of(src.options));
        ARROW_ASSIGN_OR_RAISE(decoder, format::make_value_decoder(&value_format));
        const auto dname = d.name + "_dead_letter";
        ARROW_ASSIGN_OR_RAISE(dead_letters, SideTable::make(config_.table_path(dname), dname, format::dead_letter_schema(),
                                                            fmt::format("Kafka records '{}' could not decode", d.name)));
      }
      auto kafka_source_of = [](const arrow::RecordBatch& input) -> SourceOf {
        return [&input](int64_t i) {
          const auto& topic = static_cast<const arrow::StringArray&>(*input.GetColumnByName("topic"));
          const auto& partition = static_cast<const arrow::Int32Array&>(*input.GetColumnByName("partition"));
          const auto& offset = static_cast<const arrow::Int64Array&>(*input.GetColumnByName("offset"));
          return fmt::format("Kafka topic '{}' partition {} offset {}", topic.GetString(i), partition.Value(i),
                             offset.Value(i));
        };
      };
      spec.transform = [&](const arrow::RecordBatch& input) -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
        if (!decoder) return to_table_rows(input, kafka_positions(input), kafka_source_of(input));
        ARROW_ASSIGN_OR_RAISE(auto decoded, format::decode_values(input, *decoder, src.schema));
        if (decoded.dead_letters) {
          const auto& dl = *decoded.dead_letters;
          const auto& topic = static_cast<const arrow::StringArray&>(*dl.GetColumnByName("topic"));
          const auto& partition = static_cast<const arrow::Int32Array&>(*dl.GetColumnByName("partition"));
          const auto& offset = static_cast<const arrow::Int64Array&>(*dl.GetColumnByName("offset"));
          arrow::BooleanBuilder fresh;  // not already in the table from before a crash
          for (int64_t i = 0; i < dl.num_rows(); ++i) {
            auto app = kafka_progress_id(pipeline, flow_name, topic.GetString(i), KafkaPartition(partition.Value(i)));
            ARROW_RETURN_NOT_OK(fresh.Append(offset.Value(i) >= dead_letters->committed(app)));
          }
          ARROW_ASSIGN_OR_RAISE(auto mask, fresh.Finish());
          ARROW_ASSIGN_OR_RAISE(auto rows, cp::Filter(decoded.dead_letters, mask));
          report.rows_dead_lettered += rows.record_batch()->num_rows();
          ARROW_RETURN_NOT_OK(dead_letters->write(*rows.record_batch()));
        }
        return to_table_rows(*decoded.rows, kafka_positions(*decoded.rows), kafka_source_of(*decoded.rows));
      };
      if (quarantine || dead_letters || windowed) {
        spec.pre_commit = [&](const std::map<std::string, int64_t>& progress) -> arrow::Status {
          if (quarantine) ARROW_RETURN_NOT_OK(quarantine->commit(progress));
          if (dead_letters) ARROW_RETURN_NOT_OK(dead_letters->commit(progress));
          if (windowed) ARROW_RETURN_NOT_OK(windowed->pre_commit(progress));  // last: the state
          return arrow::Status::OK();
        };
        spec.on_rebase = [&]() -> arrow::Status {
          if (quarantine) ARROW_RETURN_NOT_OK(quarantine->reload());
          if (dead_letters) ARROW_RETURN_NOT_OK(dead_letters->reload());
          if (windowed) ARROW_RETURN_NOT_OK(windowed->reload());
          return arrow::Status::OK();
        };
        spec.on_reset = [&](const std::string& app_id) {
          if (quarantine) quarantine->reset(app_id);
          if (dead_letters) dead_letters->reset(app_id);
          if (windowed) windowed->reset(app_id);
        };
      }
      spec.on_data_loss = [&report, &flow_name](const KafkaDataLoss& loss) {
        report.data_loss.push_back(loss);
        report.data_loss.back().flow = flow_name;
      };
      ARROW_ASSIGN_OR_RAISE(auto r, run_kafka_flow_once(flow_config, spec, options_));
      report.rows_read += r.rows_read;
      report.rows_written += r.rows_written;
      report.version = r.table_version;
      report.backlog = report.backlog.value_or(0) + r.backlog;
      return arrow::Status::OK();
    }
    // Delta source: the files the upstream table added since the version recorded in our txn.
    delta::LogStore upstream(config_.table_path(src.name));
    ARROW_ASSIGN_OR_RAISE(auto up_snapshot, delta::Snapshot::load(upstream));
    auto store = std::make_shared<delta::LogStore>(config_.table_path(d.name));
    ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
    const std::string app_id = delta_progress_id(config_.id, flow_name, up_snapshot->metadata().id);
    std::optional<int64_t> done = snapshot ? snapshot->txn_version(app_id) : std::nullopt;
    if (done && *done < 0) done.reset();  // reset by a full refresh
    const int64_t latest = up_snapshot->version().value();
    if (done && *done >= latest) {
      report.version = snapshot->version().value();
      return arrow::Status::OK();
    }
    std::vector<delta::AddedFile> files;
    if (!done && windowed) {
      // Event time reads the upstream commit by commit from its first version (the watermark
      // moves once per commit, so the batches must be the same on replay); a log whose history
      // was cleaned up or rewritten falls back to the snapshot, as one batch.
      auto history = delta::added_files_between(upstream, DeltaVersion(-1), DeltaVersion(latest),
                                                delta::ChangePolicy::kFail);
      if (history.ok()) files = std::move(*history);
    }
    if (!done && files.empty()) {
      // The whole snapshot: its files are taken as of the latest version.
      for (const auto& f : up_snapshot->files()) files.push_back({DeltaVersion(latest), f});
    } else if (done) {
      ARROW_ASSIGN_OR_RAISE(files, delta::added_files_between(upstream, DeltaVersion(*done), DeltaVersion(latest),
                                                              delta::ChangePolicy::kFail));
    }
    delta::WriteOptions wo;
    wo.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
    wo.table_name = d.name;
    wo.configuration = properties(d);
    wo.description = d.definition->comment;
    wo.partition_columns = d.definition->partitioned_by;
    ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *schema, wo));
    for (size_t first = 0; first < files.size();) {
      const auto& f = files[first];
      // With event time, one batch per upstream commit: its watermark moves once per batch, as
      // Spark's moves once per trigger, and a commit's rows interleave the Kafka partitions.
      size_t end = first + 1;
      while (windowed && end < files.size() && files[end].version == f.version) ++end;
      std::shared_ptr<arrow::Table> table;
      // Without event time a file is read batch by batch, so memory holds a batch, not the file.
      std::unique_ptr<arrow::RecordBatchReader> reader;
      if (!windowed) {
        ARROW_ASSIGN_OR_RAISE(reader, delta::open_data_file(upstream, *up_snapshot, f.add));
      } else {
        std::vector<std::shared_ptr<arrow::Table>> parts;
        for (size_t k = first; k < end; ++k) {
          ARROW_ASSIGN_OR_RAISE(auto part, delta::read_data_file(upstream, *up_snapshot, files[k].add));
          parts.push_back(std::move(part));
        }
        if (parts.size() == 1) {
          table = parts[0];
        } else {
          ARROW_ASSIGN_OR_RAISE(table, arrow::ConcatenateTables(parts, arrow::ConcatenateTablesOptions::Defaults()));
        }
        if (windowed) {
          ARROW_ASSIGN_OR_RAISE(auto whole, table->CombineChunksToBatch());
          ARROW_ASSIGN_OR_RAISE(table, arrow::Table::FromRecordBatches(whole->schema(), {whole}));
        }
      }
      first = end;
      // A Delta row's position is its upstream table and the version that added it.
      const int64_t version = f.version.value();
      Positions delta_positions = [&](const Expectations::Dropped& dropped, const std::shared_ptr<arrow::Array>&)
          -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
        const int64_t n = dropped.rows->num_rows();
        ARROW_ASSIGN_OR_RAISE(auto name, arrow::MakeArrayFromScalar(arrow::StringScalar(src.name), n));
        ARROW_ASSIGN_OR_RAISE(auto partition, arrow::MakeArrayOfNull(arrow::int32(), n));
        ARROW_ASSIGN_OR_RAISE(auto offset, arrow::MakeArrayFromScalar(arrow::Int64Scalar(version), n));
        const bool there = version <= quarantine->committed(app_id);
        return quarantine_batch(*quarantine->schema(), dropped, name, partition, offset, [&](int64_t) { return there; });
      };
      if (windowed) {
        window_consume = [&, version](const arrow::RecordBatch&, const arrow::RecordBatch& rows, const arrow::Array&) {
          return windowed->consume_delta(rows, src.name, app_id, version);
        };
      }
      if (!reader) reader = std::make_unique<arrow::TableBatchReader>(table);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
        if (!batch) break;
        report.rows_read += batch->num_rows();
        ARROW_ASSIGN_OR_RAISE(auto rows, to_table_rows(*batch, delta_positions, [&](int64_t) {
          return fmt::format("table '{}' (the commit of version {})", src.name, version);
        }));
        ARROW_RETURN_NOT_OK(writer->write(*rows));
      }
    }
    const int64_t rows = writer->rows_written();
    report.rows_written += rows;
    if (quarantine) {
      auto st = quarantine->commit({{app_id, latest}});
      if (!st.ok()) {
        writer->abort();
        return st;
      }
    }
    if (windowed) {
      auto st = windowed->pre_commit({{app_id, latest}});
      if (!st.ok()) {
        writer->abort();
        return st;
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
    txn.set_txn(app_id, latest);
    ARROW_ASSIGN_OR_RAISE(auto result, txn.commit(txn.streaming_update(rows)));
    report.version = result.version.value();
    return arrow::Status::OK();
  }

  arrow::Status run_materialized(const Dataset& d, DatasetReport& report) {
    const auto& plan = flow_plans_.at(d.flows[0]);
    ARROW_RETURN_NOT_OK(refuse_event_time(plan));
    if (plan.watermark() && plan.distinct() && !plan.aggregates()) {  // dedup within a watermark: streams only
      return arrow::Status::NotImplemented(
          "WATERMARK with SELECT DISTINCT deduplicates a stream in a streaming table; a materialized view recomputes "
          "from its inputs' snapshots: remove the WATERMARK for a plain DISTINCT");
    }
    auto read = [&](const exec::PlanSource& src) -> arrow::Result<std::shared_ptr<arrow::Table>> {
      if (src.kind == exec::PlanSource::Kind::kKafka) {
        return invalid("a materialized view cannot read Kafka directly; read a streaming table");
      }
      delta::LogStore upstream(config_.table_path(src.name));
      ARROW_ASSIGN_OR_RAISE(auto up_snapshot, delta::Snapshot::load(upstream));
      ARROW_ASSIGN_OR_RAISE(auto input, delta::scan_table(upstream, *up_snapshot));
      report.rows_read += input->num_rows();
      return input;
    };
    auto store = std::make_shared<delta::LogStore>(config_.table_path(d.name));
    ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
    std::shared_ptr<arrow::Table> output;
    TxnVersions progress;
    auto blocker = incremental_blocker(plan);
    if (!blocker && plan.source().kind == exec::PlanSource::Kind::kDataset) {
      ViewRefreshOptions ro{config_.id, d.flows[0], config_.table_path(d.name), config_.table_path(plan.source().name),
                            fingerprint(d.name + "\n" + graph_.files.at(d.file).text)};
      ARROW_ASSIGN_OR_RAISE(auto refresh, refresh_view(plan, snapshot.get(), ro));
      output = refresh.rows;
      progress = refresh.progress;
      report.rows_read += refresh.rows_read;
      report.refresh_mode = refresh_mode_name(refresh.mode);
      report.refresh_reason = refresh.reason;
      report.state_rows = refresh.state_rows;
    } else {
      ARROW_ASSIGN_OR_RAISE(output, plan.run(read));
      report.refresh_mode = refresh_mode_name(RefreshMode::kFull);
      report.refresh_reason = blocker.value_or("the query reads Kafka");
    }
    ARROW_ASSIGN_OR_RAISE(auto combined, output->CombineChunksToBatch());
    if (!combined) {
      ARROW_ASSIGN_OR_RAISE(combined, arrow::RecordBatch::MakeEmpty(output->schema()));
    }
    ARROW_ASSIGN_OR_RAISE(combined, delta::conform_batch(*combined, schemas_.at(d.name)));
    ARROW_ASSIGN_OR_RAISE(combined, expectations_.at(d.name).apply(combined, report));
    delta::WriteOptions wo;
    wo.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
    wo.table_name = d.name;
    wo.configuration = properties(d);
    wo.description = d.definition->comment;
    wo.mode = delta::WriteMode::kOverwrite;
    wo.schema_mode = delta::SchemaMode::kMerge;  // a changed query replaces the schema
    wo.partition_columns = d.definition->partitioned_by;
    ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *schemas_.at(d.name), wo));
    ARROW_RETURN_NOT_OK(writer->write(*combined));
    report.rows_written = writer->rows_written();
    ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
    for (const auto& [app, version] : progress) txn.set_txn(app, version);
    delta::CommitOptions co;
    co.operation = "CREATE OR REPLACE TABLE AS SELECT";
    ARROW_ASSIGN_OR_RAISE(auto result, txn.commit(co));
    report.version = result.version.value();
    return arrow::Status::OK();
  }

  const PipelineConfig config_;  // read-only while flows run on several threads
  const Graph& graph_;
  IngestOptions options_;
  SchemaInference inference_;
  std::optional<std::string> unknown_inferred_;      // set by infer_value_schema with kFrozenOnly
  std::map<std::string, std::string> not_checked_;   // dataset -> why it was not planned
  std::map<std::string, std::string> schema_notes_;  // dataset -> where its inferred schema came from
  const ContinuousOptions* continuous_ = nullptr;  // set while running continuously
  std::mutex static_mutex_;  // guards static_tables_ (flows run on several threads)
  std::map<std::string, std::pair<int64_t, std::shared_ptr<arrow::Table>>> static_tables_;  // name -> (version, rows)
  std::map<std::string, exec::SelectPlan> flow_plans_;                 // by flow name
  std::map<std::string, std::shared_ptr<arrow::Schema>> schemas_;      // stored datasets
  std::map<std::string, Expectations> expectations_;
  std::map<std::string, exec::SelectPlan> views_;  // checked, never run on their own
};

}  // namespace

arrow::Result<std::vector<DatasetReport>> run_sql_pipeline_once(const PipelineConfig& config,
                                                                const Graph& graph,
                                                                const IngestOptions& options) {
  ARROW_RETURN_NOT_OK(check_storage_opened(config));
  SqlRun run(config, graph, options);
  return run.run();
}

arrow::Status run_sql_pipeline_continuous(const PipelineConfig& config, const Graph& graph,
                                          const IngestOptions& options, const ContinuousOptions& continuous) {
  ARROW_RETURN_NOT_OK(check_storage_opened(config));
  SqlRun run(config, graph, options);
  return run.run(&continuous).status();
}

arrow::Result<ValidateReport> validate_sql_pipeline(const PipelineConfig& config, const Graph& graph,
                                                    SchemaInference inference) {
  SqlRun run(config, graph, {}, inference);
  ARROW_RETURN_NOT_OK(run.plan_all());
  ValidateReport out;
  for (const auto& [name, schema] : run.schemas()) out.schemas[name] = schema;
  for (const auto& [name, plan] : run.views()) out.schemas[name] = plan.output_schema();
  out.not_checked = run.not_checked();
  out.notes = run.schema_notes();
  return out;
}

bool every_kafka_read_joins_a_group(const Graph& graph) {
  bool reads_kafka = false;
  for (const auto& [name, flow] : graph.flows) {
    for (const auto& in : flow.inputs) {
      if (in.kind != FlowInput::Kind::kKafka) continue;
      reads_kafka = true;
      if (!in.ref) return false;
      auto options = exec::read_kafka_options(*in.ref, graph.files.at(flow.file));
      if (!options.ok() || !reads_kafka_as_group_member(*options)) return false;
    }
  }
  return reads_kafka;
}

arrow::Result<std::map<std::string, std::shared_ptr<arrow::Schema>>> check_sql_pipeline(
    const PipelineConfig& config, const Graph& graph) {
  ARROW_ASSIGN_OR_RAISE(auto report, validate_sql_pipeline(config, graph, SchemaInference::kFrozenOnly));
  return report.schemas;
}

}  // namespace sluice::pipeline

namespace sluice::pipeline {

arrow::Result<std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>>>
sql_pipeline_lineage(const PipelineConfig& config, const Graph& graph) {
  SqlRun run(config, graph, {}, SchemaInference::kFrozenOnly);  // never contacts a broker
  ARROW_RETURN_NOT_OK(run.plan_all());
  std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>> out;
  auto add = [&](const std::string& dataset, const exec::SelectPlan& plan) {
    auto lineage = plan.lineage();
    auto& columns = out[dataset];
    const auto& schema = plan.output_schema();
    for (int i = 0; i < schema->num_fields(); ++i) {
      auto it = std::find_if(columns.begin(), columns.end(), [&](const auto& c) { return c.first == schema->field(i)->name(); });
      if (it == columns.end()) {
        columns.emplace_back(schema->field(i)->name(), lineage[i]);
      } else {
        it->second.insert(lineage[i].begin(), lineage[i].end());  // several flows into one table
      }
    }
  };
  for (const auto& [name, d] : graph.datasets) {
    if (run.views().count(name)) {
      add(name, run.views().at(name));
      continue;
    }
    for (const auto& f : d.flows) {
      if (run.flow_plans().count(f)) add(name, run.flow_plans().at(f));
    }
  }
  return out;
}

}  // namespace sluice::pipeline
