// Runs SQL pipelines: plans them (sql_planner.h), resets what --full-refresh names
// (full_refresh.h), then runs the stored datasets in dependency order (scheduler.h) with
// FlowRunner (flow_runner.h), and writes the update's event log.
#include "sluice/pipeline/sql_runner.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/table_definition.h"
#include "sluice/exec/select_plan.h"
#include "sluice/format/payload_decoder.h"
#include "sluice/pipeline/auto_compaction.h"
#include "sluice/pipeline/commit_channel.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/full_refresh.h"
#include "sluice/pipeline/delta_sink_flow.h"
#include "sluice/pipeline/kafka_sink_flow.h"
#include "sluice/pipeline/kafka_options.h"
#include "sluice/pipeline/read_kafka_binding.h"
#include "sluice/pipeline/commit_timings.h"
#include "sluice/pipeline/run_alerts.h"
#include "sluice/pipeline/run_progress.h"
#include "sluice/pipeline/scheduler.h"
#include "sluice/pipeline/sql_planner.h"
#include "sluice/pipeline/streaming_commit.h"
#include "sluice/pipeline/table_definitions.h"
#include "sluice/pipeline/table_retention.h"
#include "sluice/sql/temporary_table.h"

namespace sluice::pipeline {

namespace {

// What alert rules can be evaluated on (run_alerts.h), once `planner` planned the pipeline.
AlertTargets alert_targets(const Graph& graph, const SqlPlanner& planner) {
  AlertTargets out;
  for (const auto& [name, d] : graph.datasets) {
    const bool stored = d.kind == sql::DatasetKind::kStreamingTable || d.kind == sql::DatasetKind::kMaterializedView;
    (stored ? out.tables : out.views).push_back(name);
    if (planner.not_checked().count(name)) out.unplanned.insert(name);
    // rescued_rate_above: a flow that runs as a Kafka flow (run_kafka_source: not APPLY CHANGES,
    // not a stream-stream join) whose planned output has `_rescued_data` counts the rescued rows.
    for (const auto& f : d.flows) {
      auto plan = planner.flow_plans().find(f);
      if (d.kind != sql::DatasetKind::kStreamingTable || graph.flows.at(f).apply_changes ||
          plan == planner.flow_plans().end() || (plan->second.joins() && !plan->second.streams_on_left_only()) ||
          SqlPlanner::streaming_source(plan->second).kind != exec::PlanSource::Kind::kKafka) {
        continue;
      }
      if (plan->second.output_schema()->GetFieldIndex(format::kRescuedDataColumn) >= 0) out.rescued.insert(name);
    }
    if (d.definition == nullptr) continue;
    for (const auto& c : d.definition->constraints) out.expectations[name].push_back(c.name);
  }
  for (const auto& [name, sink] : graph.sinks) out.sinks.push_back(name);
  return out;
}

// One update of a planned pipeline: the scheduler's DatasetRunner.
class SqlRun : public DatasetRunner {
 public:
  SqlRun(const PipelineConfig& config, const Graph& graph, const IngestOptions& options)
      : planner_(config, graph, options), flows_(planner_), sinks_(planner_), delta_sinks_(planner_), config_(planner_.config()),
        graph_(graph), options_(planner_.options()) {}

  nlohmann::json request_delta(const storage::RequestCounts& before) const {
    const auto now = config_.objects->requests();
    return {{"list", now.list - before.list}, {"get", now.get - before.get}, {"head", now.head - before.head},
            {"put", now.put - before.put},    {"delete", now.remove - before.remove},
            {"total", now.total() - before.total()}};
  }

  // Triggered (`continuous` unset): every dataset once. Continuous: every dataset in its own
  // loop until the stop flag (scheduler.h).
  arrow::Result<std::vector<DatasetReport>> update(const ContinuousOptions* continuous = nullptr) {
    EventLog events(config_.objects, config_.storage, config_.name, random_uuid());
    events.add({"create_update", "INFO", fmt::format("Update {} started", events.update_id()), "", "",
                {{"mode", continuous ? "continuous" : "triggered"}}, 0});
    continuous_ = continuous;
    const auto requests_before = config_.objects->requests();
    auto result = run_logged(events);
    if (result.ok()) {
      nlohmann::json progress = {{"state", "COMPLETED"}};
      // An object store's requests in this update (the event log's own commit not included),
      // by kind: a bench divides them by the commits made.
      if (!config_.storage_is_local()) progress["storage_requests"] = request_delta(requests_before);
      events.add({"update_progress", "INFO", fmt::format("Update {} is COMPLETED.", events.update_id()), "", "",
                  {{"update_progress", progress}}, 0});
    } else {
      events.add({"update_progress", "ERROR", fmt::format("Update {} is FAILED.", events.update_id()), "", "",
                  {{"update_progress", {{"state", "FAILED"}}}, {"error", result.status().message()}}, 0});
    }
    // Deliveries still queued are made (each within its destination's timeout) before the log
    // is written, so their failures are in it.
    if (alerts_) alerts_->finish();
    // The event log is written even for a failed update; its own failure never hides the
    // update's result, only adds to it.
    auto logged = events.flush();
    if (!logged.ok()) {
      std::fprintf(stderr, "sluice: warning: could not write the event log: %s\n", logged.message().c_str());
    }
    return result;
  }

  arrow::Result<std::vector<DatasetReport>> run_logged(EventLog& events) {
    ARROW_RETURN_NOT_OK(forget_inferred_schemas(planner_));
    ARROW_RETURN_NOT_OK(planner_.plan_all());
    // After planning: whether a dataset has `_rescued_data` from a Kafka flow (rescued_rate_above)
    // is known only once its schema is (an inferred one is sampled by plan_all).
    ARROW_ASSIGN_OR_RAISE(alerts_, make_alerts(events));
    ARROW_RETURN_NOT_OK(full_refresh(planner_, events, &refresh_changes_));
    ARROW_RETURN_NOT_OK(apply_table_definitions(planner_, events));
    for (const auto& [fname, flow] : graph_.flows) {
      nlohmann::json inputs = nlohmann::json::array();
      for (const auto& in : flow.inputs) {
        inputs.push_back(in.kind == FlowInput::Kind::kKafka ? "kafka:" + in.name : in.name);
      }
      if (graph_.sinks.count(flow.target)) {
        events.add({"flow_definition", "INFO", fmt::format("Flow '{}' is defined as sink.", fname), fname, flow.target,
                    {{"flow_definition", {{"output_dataset", flow.target}, {"input_datasets", inputs},
                                          {"flow_type", "sink"}}}},
                    0});
        continue;
      }
      const auto& d = graph_.datasets.at(flow.target);
      nlohmann::json definition = {{"output_dataset", flow.target},
                                   {"input_datasets", inputs},
                                   {"flow_type", flow.apply_changes ? "apply_changes"
                                                 : d.kind == sql::DatasetKind::kMaterializedView ? "materialized_view"
                                                                                                  : "append"}};
      if (flow.comment) definition["comment"] = *flow.comment;
      // A temporary table is marked, so readers of the log can leave it out as catalog does.
      if (sql::is_temporary_table(planner_.properties(d))) definition["temporary"] = true;
      events.add({"flow_definition", "INFO", fmt::format("Flow '{}' is defined as {}.", fname, kind_text(d.kind)),
                  fname, flow.target,
                  {{"flow_definition", std::move(definition)}},
                  0});
    }
    events_ = &events;
    ARROW_RETURN_NOT_OK(set_up_maintenance(events));
    if (continuous_) {
      events.add({"update_progress", "INFO", fmt::format("Update {} is RUNNING.", events.update_id()), "", "",
                  {{"update_progress", {{"state", "RUNNING"}}}}, 0});
      // Compactions run beside the flows, on their own thread, until the run stops.
      maintenance_->start();
      auto st = run_continuous(scheduled(), *this, scheduler_options(), *continuous_);
      maintenance_->stop();
      ARROW_RETURN_NOT_OK(st);
      return std::vector<DatasetReport>{};
    }
    auto datasets = scheduled();
    hand_over_in_process(datasets);
    if (options_.progress) {
      for (const auto& s : datasets) options_.progress->waiting(s.name);
    }
    auto reports = run_triggered(datasets, *this, scheduler_options());
    channels_.close_all();
    // Triggered: the tables this update left with many small files are compacted now, once
    // every flow is done (an update that is stopping leaves it to the next one).
    if (!options_.stopping()) maintenance_->compact_changed([this] { return options_.stopping(); });
    return reports;
  }

  arrow::Status run(const std::string& name, DatasetReport& report) override {
    if (options_.progress && !continuous_) options_.progress->started(name);
    auto st = run_stored(name, report);
    if (options_.progress && !continuous_) options_.progress->finished(name, st.ok(), report.rows_read);
    return st;
  }

  arrow::Status run_stored(const std::string& name, DatasetReport& report) {
    if (auto sink = graph_.sinks.find(name); sink != graph_.sinks.end()) {
      if (!options_.run_sinks) {  // sluice test: nothing to write to (it says so)
        report.dataset = name;
        report.kind = "sink";
        return arrow::Status::OK();
      }
      return run_sink(sink->second, report);
    }
    if (options_.given_datasets.count(name)) {  // sluice test gives its rows: its flows do not run
      report.dataset = name;
      report.kind = "given";
      auto written = write_given(name);
      if (!written.ok()) {
        if (auto* channel = channels_.find(name)) channel->close();
        return written;
      }
      report.version = latest_version(name);
      if (auto* channel = channels_.find(name)) channel->close();
      return arrow::Status::OK();
    }
    auto st = run_dataset(graph_.datasets.at(name), report, *events_);
    if (auto* channel = channels_.find(name)) channel->close();  // its reader ends with it
    if (st.ok() && report.rows_written > 0 && maintenance_) maintenance_->changed(name);
    return st;
  }

  // `sluice test`: the rows a test gives dataset `name` this update, committed through the
  // streaming commit its flow uses, with the table spec its flow would create it with, so a
  // reader (STREAM, table_changes, a join) sees the table the pipeline makes.
  arrow::Status write_given(const std::string& name) {
    const auto& d = graph_.datasets.at(name);
    auto rows = options_.given_rows.find(name);
    const bool has_rows = rows != options_.given_rows.end() && rows->second && rows->second->num_rows() > 0;
    auto schema = planner_.schemas().find(name);
    if (schema == planner_.schemas().end()) {
      return arrow::Status::Invalid(fmt::format("the schema of given table '{}' is not known (it is inferred from "
                                                "Kafka): give the records of its source instead", name));
    }
    StreamingCommitOptions co{config_.id, d.flows.empty() ? name : d.flows[0], name, config_.table_path(name),
                              schema->second, {}, {}};
    co.objects = config_.objects;
    co.write.configuration = delta::with_defined_properties(planner_.properties(d));
    co.write.clustering_columns = planner_.clustering_columns(name);
    if (d.definition) {
      co.write.partition_columns = d.definition->partitioned_by;
      co.write.description = d.definition->comment;
    }
    co.operation = "WRITE";
    ARROW_ASSIGN_OR_RAISE(auto commit, StreamingCommit::make(std::move(co)));
    if (!has_rows && commit->snapshot()) return arrow::Status::OK();  // nothing new this update
    if (has_rows) {
      ARROW_ASSIGN_OR_RAISE(auto* writer, commit->writer());
      ARROW_RETURN_NOT_OK(writer->write(*rows->second));
    }
    return commit->commit(commit->progress()).status();
  }

  void skipped(const std::string& name, const std::string& failed_input) override {
    if (options_.progress) options_.progress->skipped(name);
    if (auto* channel = channels_.find(name)) channel->close();
    if (auto sink = graph_.sinks.find(name); sink != graph_.sinks.end()) {
      auto why = fmt::format("skipped because its input '{}' failed", failed_input);
      events_->add({"flow_progress", "ERROR", fmt::format("Flow '{}' has been SKIPPED: {}.", sink->second.flows[0], why),
                    sink->second.flows[0], name,
                    {{"flow_progress", {{"status", "SKIPPED"}, {"reason", why}, {"upstream", failed_input}}}}, 0});
      return;
    }
    const auto& d = graph_.datasets.at(name);
    auto why = fmt::format("skipped because its input '{}' failed", failed_input);
    events_->add({"flow_progress", "ERROR", fmt::format("Flow '{}' has been SKIPPED: {}.", name, why),
                  d.flows.empty() ? name : d.flows[0], name,
                  {{"flow_progress", {{"status", "SKIPPED"}, {"reason", why}, {"upstream", failed_input}}}}, 0});
  }

  int64_t latest_version(const std::string& name) override {
    delta::LogStore store(config_.objects, config_.table_path(name).string());
    auto v = store.latest_version();
    return v.ok() && *v ? (*v)->value() : -1;
  }

  // The event log is appended every few seconds while the flows run (after freshness is
  // checked against the clock).
  void tick() override {
    if (alerts_) alerts_->tick();
    auto logged = events_->flush();
    if (!logged.ok()) std::fprintf(stderr, "sluice: warning: could not write the event log: %s\n", logged.message().c_str());
  }

 private:
  // The update's alerts (run_alerts.h); null without rules in pipeline.yaml.
  arrow::Result<std::unique_ptr<RunAlerts>> make_alerts(EventLog& events) {
    if (config_.alerts.rules.empty()) return nullptr;
    return RunAlerts::make(config_, alert_targets(graph_, planner_), options_.snapshots, events);
  }

  // The stored datasets (views are inlined, never stored), upstream first.
  std::vector<ScheduledDataset> scheduled() const {
    std::vector<ScheduledDataset> out;
    for (const auto& name : graph_.order) {
      if (planner_.views().count(name)) continue;
      const auto& d = graph_.datasets.at(name);
      ScheduledDataset s;
      s.name = name;
      s.upstream = planner_.stored_upstream(name);
      for (const auto& f : d.flows) {
        const auto& plans = planner_.flow_plans();
        if (plans.count(f) && plans.at(f).source().kind == exec::PlanSource::Kind::kKafka) s.reads_kafka = true;
      }
      s.runs_in_every_process = planner_.runs_in_every_process(d);
      out.push_back(std::move(s));
    }
    for (const auto& [name, sink] : graph_.sinks) {  // after the tables they read
      ScheduledDataset s;
      s.name = name;
      for (const auto& up : graph_.sink_upstream(name)) {
        auto stored = planner_.views().count(up) ? planner_.stored_upstream(up) : std::set<std::string>{up};
        s.upstream.insert(stored.begin(), stored.end());
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  // Triggered runs: a streaming table read by exactly one flow that can take its rows in
  // process (the only flow of a streaming table whose one stored input it is; not event time,
  // not a join, not APPLY CHANGES) hands them over through a channel, and that table starts
  // with its input (commit_channel.h, docs/decisions.md).
  void hand_over_in_process(std::vector<ScheduledDataset>& datasets) {
    if (options_.handoff_bytes <= 0) return;
    std::map<std::string, std::vector<std::string>> readers;  // table -> flows that could take it
    for (auto& s : datasets) {
      if (graph_.sinks.count(s.name)) continue;
      const auto& d = graph_.datasets.at(s.name);
      if (d.kind != sql::DatasetKind::kStreamingTable || d.flows.size() != 1 || s.upstream.size() != 1) continue;
      const auto& input = *s.upstream.begin();
      if (!graph_.datasets.count(input) || graph_.datasets.at(input).kind != sql::DatasetKind::kStreamingTable) continue;
      // A partitioned input reads its partition columns back from the log's partition values,
      // not from the rows written ("" comes back null, a timestamp in the log's text form):
      // its rows in process could differ from its files, so it is read from its files.
      const auto* input_definition = graph_.datasets.at(input).definition;
      if (input_definition == nullptr || !input_definition->partitioned_by.empty()) continue;
      const auto& plans = planner_.flow_plans();
      const auto& flow = d.flows[0];
      if (!plans.count(flow) || graph_.flows.at(flow).apply_changes) continue;
      const auto& plan = plans.at(flow);
      if (plan.joins() || plan.aggregates() || plan.distinct()) continue;
      const auto src = SqlPlanner::streaming_source(plan);
      if (src.kind != exec::PlanSource::Kind::kDataset || src.name != input || src.change_feed) continue;
      readers[input].push_back(flow);
    }
    for (auto& s : datasets) {
      if (graph_.sinks.count(s.name)) continue;
      const auto& d = graph_.datasets.at(s.name);
      if (d.flows.size() != 1 || s.upstream.size() != 1) continue;
      auto it = readers.find(*s.upstream.begin());
      if (it == readers.end() || it->second != std::vector<std::string>{d.flows[0]}) continue;
      channels_.open(it->first, d.flows[0]);
      s.starts_with_upstream = true;
    }
    flows_.set_channels(&channels_);
  }

  // Auto compaction (auto_compaction.h) of the streaming tables whose properties leave it on
  // (the default). Materialized views are rewritten whole at every refresh: nothing to compact.
  arrow::Status set_up_maintenance(EventLog& events) {
    maintenance_ = std::make_unique<TableMaintenance>(config_.objects, options_.snapshots, &events);
    for (const auto& name : graph_.order) {
      const auto& d = graph_.datasets.at(name);
      if (d.kind != sql::DatasetKind::kStreamingTable) continue;
      ARROW_ASSIGN_OR_RAISE(auto settings, auto_compaction_settings(planner_.properties(d), name));
      if (settings.enabled) maintenance_->add_table(name, config_.table_path(name), std::move(settings));
    }
    flows_.set_maintenance(maintenance_.get());
    return arrow::Status::OK();
  }

  SchedulerOptions scheduler_options() const {
    SchedulerOptions o;
    o.pipeline = config_.name;
    o.stopping = [this] { return options_.stopping(); };
    return o;
  }

  // One dataset of the update, with its flow_progress event.
  arrow::Status run_dataset(const Dataset& d, DatasetReport& report, EventLog& events) {
    const auto& name = d.name;
    report.dataset = name;
    report.kind = kind_text(d.kind);
    const auto started = std::chrono::steady_clock::now();
    const int64_t started_ms = now_millis();
    const std::string table_key = config_.table_path(name).string();
    commit_timings().take(table_key);  // what an earlier, unfinished update left is not this one's
    {  // the columns --full-refresh's reset commit changed are this update's (its first run of the dataset)
      std::lock_guard lock(refresh_changes_mutex_);
      if (auto it = refresh_changes_.find(name); it != refresh_changes_.end()) {
        commit_timings().note_schema_change(table_key, std::move(it->second.added), std::move(it->second.removed),
                                            std::move(it->second.retyped));
        refresh_changes_.erase(it);
      }
    }
    auto st = d.kind == sql::DatasetKind::kStreamingTable ? flows_.run_streaming(d, report)
                                                                : flows_.run_materialized(d, report);
    // The table's retention policy, after its flows committed this update's rows.
    std::optional<RetentionOutcome> retention;
    if (st.ok()) {
      auto expired = apply_table_retention(d);
      if (expired.ok()) {
        retention = *expired;
        if (retention && retention->committed) report.version = retention->version;
      } else {
        st = expired.status();
      }
    }
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
    // Additive (kp): every commit of the table this update, and for Kafka flows how long the
    // records waited between Kafka and the commit that made them visible.
    const auto timings = commit_timings().take(table_key);
    if (timings.commits > 0) {
      progress["commits"] = {{"num_commits", timings.commits},
                             {"total_duration_ms", static_cast<double>(timings.total_micros) / 1000.0},
                             {"max_duration_ms", static_cast<double>(timings.max_micros) / 1000.0}};
    }
    if (timings.end_to_end_max_ms) {
      progress["metrics"]["end_to_end_latency_max_ms"] = *timings.end_to_end_max_ms;
      progress["metrics"]["end_to_end_latency_min_ms"] = *timings.end_to_end_min_ms;
      progress["metrics"]["newest_kafka_timestamp_ms"] = *timings.newest_kafka_timestamp_ms;
    }
    // Additive (rs): Kafka flows whose table has `_rescued_data`: the rows written and how many of
    // them rescued something; and the columns this update's commits changed (schema drift).
    if (timings.rescue_rows_written) {
      const int64_t rows = *timings.rescue_rows_written;
      progress["rescued_data"] = {{"num_rows", rows},
                                  {"num_rescued_rows", timings.rescued_rows},
                                  {"rescued_rate", rows > 0 ? nlohmann::json(static_cast<double>(timings.rescued_rows) /
                                                                             static_cast<double>(rows))
                                                            : nlohmann::json(nullptr)}};
    }
    if (!timings.columns_added.empty() || !timings.columns_removed.empty() || !timings.types_changed.empty()) {
      progress["schema_change"] = {{"columns_added", timings.columns_added},
                                   {"columns_removed", timings.columns_removed},
                                   {"types_changed", timings.types_changed}};
    }
    if (retention) {
      progress["retention"] = {{"cutoff", retention->cutoff},
                               {"committed", retention->committed},
                               {"table_version", retention->version},
                               {"num_deleted_rows", retention->rows_deleted},
                               {"num_removed_files", retention->files_removed},
                               {"num_added_files", retention->files_added}};
    }
    // Per partition (for autoscalers and the busiest partition's lag): where the table is, the
    // high-water mark the update saw, and the difference.
    if (!report.kafka_lag.empty()) {
      auto& lags = progress["metrics"]["kafka_lag"] = nlohmann::json::array();
      for (const auto& l : report.kafka_lag) {
        lags.push_back({{"topic", l.topic}, {"partition", l.partition}, {"next_offset", l.next_offset},
                        {"high_water_mark", l.high_water_mark}, {"lag", l.lag}});
      }
    }
    // Spark's processedRowsPerSecond: with backlog_records, what an autoscaler sizes workers by.
    progress["metrics"]["processed_rows_per_second"] =
        report.duration_ms > 0 ? static_cast<double>(report.rows_read) * 1000.0 / static_cast<double>(report.duration_ms) : 0.0;
    if (report.kafka_consumers_created) progress["metrics"]["num_kafka_consumers_created"] = *report.kafka_consumers_created;

    if (report.rows_in_process || report.rows_from_files) {  // rows of a stored table: handed over or read
      progress["source_rows"] = {{"num_rows_in_process", report.rows_in_process},
                                 {"num_rows_from_files", report.rows_from_files}};
    }
    if (report.rows_quarantined) progress["metrics"]["num_quarantined_rows"] = report.rows_quarantined;
    if (report.rows_dead_lettered) progress["metrics"]["num_dead_letter_rows"] = report.rows_dead_lettered;
    if (report.refresh_mode) {  // materialized views
      progress["refresh"] = {{"mode", *report.refresh_mode}, {"reason", report.refresh_reason}};
      if (report.state_rows) progress["metrics"]["state_rows"] = *report.state_rows;
      if (report.state_bytes) progress["metrics"]["state_bytes"] = *report.state_bytes;
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
    if (alerts_) alerts_->after_update(name, d.flows.empty() ? name : d.flows[0], progress);
    return st;
  }

  // Deletes the rows the streaming table's pipelines.retention expired (table_retention.h);
  // nullopt when it has no policy.
  arrow::Result<std::optional<RetentionOutcome>> apply_table_retention(const Dataset& d) {
    if (d.kind != sql::DatasetKind::kStreamingTable) return std::optional<RetentionOutcome>();
    const auto properties = planner_.properties(d);
    if (!has_retention_properties(properties)) return std::optional<RetentionOutcome>();
    ARROW_ASSIGN_OR_RAISE(auto policy, retention_policy(properties, *planner_.schemas().at(d.name)));
    ARROW_ASSIGN_OR_RAISE(const int64_t now, retention_now_millis());
    auto store = std::make_shared<delta::LogStore>(config_.objects, config_.table_path(d.name).string());
    ARROW_ASSIGN_OR_RAISE(auto outcome, apply_retention(store, d.name, *policy, now));
    return std::optional<RetentionOutcome>(std::move(outcome));
  }

  // One sink (its flows, one after the other), with its flow_progress event.
  arrow::Status run_sink(const Sink& sink, DatasetReport& report) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t started_ms = now_millis();
    auto st = planner_.delta_sink_specs().count(sink.name) ? delta_sinks_.run(sink, report) : sinks_.run(sink, report);
    report.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json progress = {{"status", st.ok() ? "COMPLETED" : "FAILED"},
                               {"metrics", {{"num_input_rows", report.rows_read},
                                            {"num_output_rows", report.rows_written}}},
                               {"upstream_version", report.version},
                               {"duration_ms", report.duration_ms},
                               {"start_time_ms", started_ms},
                               {"end_time_ms", now_millis()}};
    if (!st.ok()) {
      progress["error"] = {{"message", st.message()}, {"code", st.CodeAsString()}, {"retryable", is_retryable(st)}};
    }
    events_->add({"flow_progress", st.ok() ? "INFO" : "ERROR",
                  st.ok() ? fmt::format("Flow '{}' has COMPLETED.", sink.name)
                          : fmt::format("Flow '{}' has FAILED: {}", sink.name, st.message()),
                  sink.flows.empty() ? sink.name : sink.flows[0], sink.name, {{"flow_progress", progress}}, 0});
    if (alerts_) alerts_->after_update(sink.name, sink.flows.empty() ? sink.name : sink.flows[0], progress);
    return st;
  }

  SqlPlanner planner_;
  FlowRunner flows_;
  KafkaSinks sinks_;
  DeltaSinks delta_sinks_;
  const PipelineConfig& config_;
  const Graph& graph_;
  const IngestOptions& options_;
  CommitChannels channels_{options_.handoff_bytes};  // triggered runs: rows handed over in process
  const ContinuousOptions* continuous_ = nullptr;  // set while running continuously
  std::unique_ptr<TableMaintenance> maintenance_;   // set once the update is planned
  EventLog* events_ = nullptr;                     // the update's, set while it runs
  std::unique_ptr<RunAlerts> alerts_;              // the update's, when pipeline.yaml has rules
  // The columns --full-refresh's reset commits changed, by dataset, until its flow_progress
  // takes them; datasets run on the scheduler's threads.
  std::mutex refresh_changes_mutex_;
  std::map<std::string, ColumnChanges> refresh_changes_;
};

}  // namespace


arrow::Result<std::vector<DatasetReport>> run_sql_pipeline_once(const PipelineConfig& config,
                                                                const Graph& graph,
                                                                const IngestOptions& options) {
  ARROW_RETURN_NOT_OK(check_storage_opened(config));
  SqlRun run(config, graph, options);
  return run.update();
}

arrow::Status run_sql_pipeline_continuous(const PipelineConfig& config, const Graph& graph,
                                          const IngestOptions& options, const ContinuousOptions& continuous) {
  ARROW_RETURN_NOT_OK(check_storage_opened(config));
  SqlRun run(config, graph, options);
  return run.update(&continuous).status();
}

arrow::Result<ValidateReport> validate_sql_pipeline(const PipelineConfig& config, const Graph& graph,
                                                    SchemaInference inference) {
  SqlPlanner run(config, graph, {}, inference);
  ARROW_RETURN_NOT_OK(run.plan_all());
  if (auto problem = alert_rule_problem(config.alerts, alert_targets(graph, run))) return invalid("{}", *problem);
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
      auto options = read_kafka_options(*in.ref, graph.files.at(flow.file));
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
  SqlPlanner run(config, graph, {}, SchemaInference::kFrozenOnly);  // never contacts a broker
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
  for (const auto& [name, sink] : graph.sinks) {
    for (const auto& f : sink.flows) {
      if (run.flow_plans().count(f)) add(name, run.flow_plans().at(f));
    }
  }
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

