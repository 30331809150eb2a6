// Alerts evaluated by a running pipeline (run_alerts.h).
#include "sluice/pipeline/run_alerts.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/table.h"

namespace sluice::pipeline {

namespace {

using json = nlohmann::json;

// What the event log says is firing: the latest `alert` event of each (rule, dataset), if FIRING.
arrow::Result<std::vector<watch::RestoredAlert>> firing_in_event_log(const PipelineConfig& config) {
  ARROW_ASSIGN_OR_RAISE(auto events, read_event_log(config.objects, config.storage));
  std::vector<watch::RestoredAlert> out;
  if (!events) return out;
  std::map<std::pair<std::string, std::string>, std::optional<watch::RestoredAlert>> latest;
  for (const auto& e : *events) {
    if (e.event_type != "alert" || !e.details.is_object() || !e.details.contains("alert")) continue;
    const auto& a = e.details["alert"];
    if (!a.is_object()) continue;
    const auto rule = a.value("rule", std::string()), dataset = a.value("dataset", std::string());
    if (a.value("state", std::string()) != "FIRING") {
      latest[{rule, dataset}] = std::nullopt;
      continue;
    }
    watch::RestoredAlert r;
    r.rule = rule;
    r.dataset = dataset;
    r.flow = a.value("flow", std::string());
    r.condition = a.value("condition", std::string());
    r.since_ms = a.value("since_ms", int64_t{0});
    latest[{rule, dataset}] = r;
  }
  for (auto& [key, r] : latest) {
    if (r) out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace

std::optional<std::string> alert_rule_problem(const watch::AlertsConfig& config, const AlertTargets& targets) {
  using watch::RuleKind;
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  std::vector<std::string> defined = targets.tables;
  defined.insert(defined.end(), targets.views.begin(), targets.views.end());
  std::sort(defined.begin(), defined.end());
  defined.insert(defined.end(), targets.sinks.begin(), targets.sinks.end());
  if (auto unknown = watch::unknown_alert_dataset(config, defined)) return unknown;
  auto expectations_of = [&](const std::string& d) {
    auto it = targets.expectations.find(d);
    return it == targets.expectations.end() ? std::vector<std::string>{} : it->second;
  };
  for (const auto& rule : config.rules) {
    const char* kind = watch::rule_kind_name(rule.kind);
    for (const auto& d : rule.datasets) {
      if (has(targets.views, d)) {
        return fmt::format("{}: alert rule '{}' names view '{}': a view is never updated (it is computed where it is "
                           "read), so no rule can fire on it; name the tables that read it",
                           rule.where, rule.name, d);
      }
      if (has(targets.sinks, d) &&
          (rule.kind == RuleKind::kFreshnessAbove || rule.kind == RuleKind::kSchemaDrift ||
           rule.kind == RuleKind::kExpectationPassRateBelow || rule.kind == RuleKind::kRescuedRateAbove)) {
        return fmt::format("{}: alert rule '{}': {} cannot be evaluated on sink '{}' (a sink has no {}); sinks take "
                           "flow_failed, kafka_lag_above and throughput_below",
                           rule.where, rule.name, kind, d,
                           rule.kind == RuleKind::kExpectationPassRateBelow ? "expectations" : "Delta table");
      }
      if (rule.kind == RuleKind::kRescuedRateAbove && !targets.rescued.count(d) && !targets.unplanned.count(d)) {
        return fmt::format("{}: alert rule '{}': no Kafka flow writes a `_rescued_data` column to '{}', so "
                           "rescued_rate_above cannot fire on it; it counts the rows of read_kafka flows "
                           "(value_format json or avro) that select `_rescued_data`",
                           rule.where, rule.name, d);
      }
      if (rule.kind == RuleKind::kExpectationPassRateBelow && !rule.expectation && expectations_of(d).empty()) {
        return fmt::format("{}: alert rule '{}': dataset '{}' defines no expectation (CONSTRAINT ... EXPECT), so "
                           "expectation_pass_rate_below cannot fire on it",
                           rule.where, rule.name, d);
      }
    }
    if (rule.kind == RuleKind::kRescuedRateAbove && rule.datasets.empty() && targets.rescued.empty() &&
        targets.unplanned.empty()) {
      return fmt::format("{}: alert rule '{}': no Kafka flow of the pipeline writes a `_rescued_data` column, so "
                         "rescued_rate_above cannot fire; it counts the rows of read_kafka flows (value_format json "
                         "or avro) that select `_rescued_data`",
                         rule.where, rule.name);
    }
    if (rule.expectation) {
      // The expectation must be one that a dataset the rule covers defines.
      const auto& covered = rule.datasets.empty() ? targets.tables : rule.datasets;
      std::vector<std::string> known;
      for (const auto& d : covered) {
        for (const auto& e : expectations_of(d)) {
          if (!has(known, e)) known.push_back(e);
        }
      }
      if (!has(known, *rule.expectation)) {
        return fmt::format("{}: alert rule '{}': expectation '{}' is not defined on {}; {}", rule.where, rule.name,
                           *rule.expectation,
                           rule.datasets.empty() ? std::string("any dataset")
                                                 : fmt::format("{}", fmt::join(rule.datasets, ", ")),
                           known.empty() ? std::string("none is defined there")
                                         : fmt::format("defined there: {}", fmt::join(known, ", ")));
      }
    }
  }
  return std::nullopt;
}

arrow::Result<std::unique_ptr<RunAlerts>> RunAlerts::make(const PipelineConfig& config,
                                                          const AlertTargets& targets,
                                                          std::shared_ptr<delta::SnapshotCache> snapshots,
                                                          EventLog& events) {
  if (config.alerts.rules.empty()) return nullptr;
  if (auto problem = alert_rule_problem(config.alerts, targets)) return invalid("{}", *problem);
  const auto& stored = targets.tables;
  std::unique_ptr<RunAlerts> out(new RunAlerts(config, events));
  out->snapshots_ = std::move(snapshots);
  out->stored_ = stored;
  out->tracker_ = std::make_unique<watch::AlertTracker>(config.alerts, config.name);
  ARROW_ASSIGN_OR_RAISE(out->dispatcher_, watch::AlertDispatcher::make(config.alerts, config.kafka));
  auto firing = firing_in_event_log(config);
  if (!firing.ok()) {
    // Alerts must not stop the pipeline: without the log's state a firing alert may be sent again.
    std::fprintf(stderr, "sluice: warning: alerts: could not read which alerts are firing from the event log (%s); "
                         "a condition that still holds is announced again\n", firing.status().message().c_str());
  } else {
    // A firing rescued-rate alert of a dataset no Kafka flow writes `_rescued_data` to any more
    // (its query changed) could never resolve: resolved now, as one of a removed rule.
    auto evaluable = [&targets](const watch::AlertRule& rule, const std::string& dataset) -> std::optional<std::string> {
      if (rule.kind != watch::RuleKind::kRescuedRateAbove || targets.rescued.count(dataset) ||
          targets.unplanned.count(dataset)) {
        return std::nullopt;
      }
      return std::string("no Kafka flow writes a `_rescued_data` column to this dataset any more");
    };
    out->record(out->tracker_->restore(*firing, now_millis(), evaluable));
  }
  // The schema before this update (before table definitions are applied): a change by the update
  // is drift.
  for (const auto& d : stored) {
    if (!out->wants(watch::RuleKind::kSchemaDrift, d)) continue;
    if (auto cols = out->columns(d)) out->schemas_[d] = std::move(*cols);
  }
  return out;
}

RunAlerts::~RunAlerts() = default;

bool RunAlerts::wants(watch::RuleKind kind, const std::string& dataset) const {
  for (const auto& r : config_.alerts.rules) {
    if (r.kind == kind && r.applies_to(dataset)) return true;
  }
  return false;
}

std::optional<int64_t> RunAlerts::last_commit_ms(const std::string& dataset) {
  delta::LogStore store(config_.objects, config_.table_path(dataset).string());
  auto latest = store.latest_version();
  if (!latest.ok() || !*latest) return std::nullopt;
  auto at = store.commit_timestamp(**latest);
  if (!at.ok()) return std::nullopt;
  return *at;
}

std::optional<std::vector<std::pair<std::string, std::string>>> RunAlerts::columns(const std::string& dataset) {
  delta::LogStore store(config_.objects, config_.table_path(dataset).string());
  auto snapshot = snapshots_ ? snapshots_->latest_if_exists(store) : delta::load_latest_if_exists(store);
  if (!snapshot.ok() || !*snapshot) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : (*snapshot)->schema()->fields()) out.emplace_back(f->name(), f->type()->ToString());
  return out;
}

void RunAlerts::after_update(const std::string& dataset, const std::string& flow, const json& progress) {
  watch::DatasetObservation o;
  o.dataset = dataset;
  o.flow = flow;
  o.status = progress.value("status", std::string());
  if (progress.contains("error") && progress["error"].is_object()) o.error = progress["error"].value("message", "");
  const auto metrics = progress.value("metrics", json::object());
  o.rows_read = metrics.value("num_input_rows", int64_t{0});
  o.rows_per_second = metrics.value("processed_rows_per_second", 0.0);
  if (metrics.contains("backlog_records") && metrics["backlog_records"].is_number()) {
    o.backlog_records = metrics["backlog_records"].get<int64_t>();
  }
  // Additive (rs): Kafka flows whose table has `_rescued_data`.
  if (progress.contains("rescued_data") && progress["rescued_data"].is_object()) {
    const auto& r = progress["rescued_data"];
    o.rescue_rows_written = r.value("num_rows", int64_t{0});
    o.rescued_rows = r.value("num_rescued_rows", int64_t{0});
  }
  const auto quality = progress.value("data_quality", json::object());
  for (const auto& e : quality.value("expectations", json::array())) {
    o.expectations.push_back({e.value("name", std::string()), e.value("passed_records", int64_t{0}),
                              e.value("failed_records", int64_t{0})});
  }
  const bool stored = std::find(stored_.begin(), stored_.end(), dataset) != stored_.end();
  const bool completed = *o.status == "COMPLETED";
  std::optional<std::vector<std::pair<std::string, std::string>>> now_columns;
  if (stored && completed && wants(watch::RuleKind::kSchemaDrift, dataset)) now_columns = columns(dataset);
  std::optional<int64_t> committed;
  if (stored && wants(watch::RuleKind::kFreshnessAbove, dataset)) committed = last_commit_ms(dataset);
  o.at_ms = now_millis();
  std::vector<watch::AlertTransition> changed;
  {
    std::lock_guard lock(mutex_);
    flows_[dataset] = flow;
    if (completed && progress.contains("refresh")) refreshed_ms_[dataset] = o.at_ms;  // a view refreshed
    if (auto r = refreshed_ms_.find(dataset); r != refreshed_ms_.end()) {
      committed = std::max(committed.value_or(0), r->second);
    }
    o.last_commit_ms = committed;
    if (now_columns) {
      auto& before = schemas_[dataset];
      watch::SchemaChange change;
      // (Named copies: clang 14 cannot capture a structured binding in a lambda.)
      for (const auto& column : *now_columns) {
        const auto& name = column.first;
        const auto& type = column.second;
        auto it = std::find_if(before.begin(), before.end(), [&](const auto& c) { return c.first == name; });
        if (it == before.end()) {
          if (!before.empty()) change.added.push_back(name + " " + type);
        } else if (it->second != type) {
          change.retyped.push_back(fmt::format("{}: {} -> {}", name, it->second, type));
        }
      }
      for (const auto& column : before) {
        const auto& name = column.first;
        auto it = std::find_if(now_columns->begin(), now_columns->end(), [&](const auto& c) { return c.first == name; });
        if (it == now_columns->end()) change.removed.push_back(name);
      }
      o.schema_change = std::move(change);
      before = std::move(*now_columns);
    }
    changed = tracker_->observe(o);
  }
  record(changed);
}

void RunAlerts::tick() {
  for (const auto& d : stored_) {
    if (!wants(watch::RuleKind::kFreshnessAbove, d)) continue;
    watch::DatasetObservation o;
    o.dataset = d;
    auto committed = last_commit_ms(d);
    std::vector<watch::AlertTransition> changed;
    {
      std::lock_guard lock(mutex_);
      if (auto r = refreshed_ms_.find(d); r != refreshed_ms_.end()) committed = std::max(committed.value_or(0), r->second);
      o.last_commit_ms = committed;
      o.flow = flows_.count(d) ? flows_[d] : d;
      o.at_ms = now_millis();
      changed = tracker_->observe(o);  // no status: only the clock-based rules are evaluated
    }
    record(changed);
  }
  record_failures();
}

void RunAlerts::finish() {
  dispatcher_->stop();
  record_failures();
}

void RunAlerts::record(const std::vector<watch::AlertTransition>& transitions) {
  for (const auto& t : transitions) {
    const bool firing = t.state == watch::AlertState::kFiring;
    events_.add({"alert", firing ? "WARN" : "INFO", t.message, t.flow, t.dataset, {{"alert", t.to_json()}}, 0});
    std::fprintf(stderr, "sluice: %s\n", t.message.c_str());
    dispatcher_->send(t);
  }
}

void RunAlerts::record_failures() {
  for (const auto& f : dispatcher_->take_failures()) {
    auto message = fmt::format("Alert '{}' ({} on '{}') could not be delivered to {} '{}': {}", f.rule, f.state,
                               f.dataset, f.kind, f.destination, f.error);
    std::fprintf(stderr, "sluice: warning: %s\n", message.c_str());
    events_.add({"alert_delivery", "WARN", message, "", f.dataset,
                 {{"alert_delivery", {{"destination", f.destination}, {"kind", f.kind}, {"rule", f.rule},
                                      {"dataset", f.dataset}, {"state", f.state}, {"error", f.error},
                                      {"at_ms", f.at_ms}, {"delivered", false}}}},
                 0});
  }
}

}  // namespace sluice::pipeline
