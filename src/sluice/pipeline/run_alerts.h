// The alerts of one update (pipeline.yaml `alerts:`, README "Alerts"): after each dataset's
// flow_progress it evaluates the rules covering the dataset (watch/alert_rules.h), records each
// FIRING and RESOLVED as an `alert` event and hands it to the dispatcher; a continuous run's
// tick re-evaluates freshness. What is firing is restored from the event log at start, so a
// condition that still holds after a restart is not announced again.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/delta/snapshot_cache.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/watch/alert_dispatcher.h"
#include "sluice/watch/alert_rules.h"

namespace sluice::pipeline {

// What rules can be evaluated on: tables (streaming tables and materialized views: updated and
// stored), sinks (updated, no table) and views (never updated: computed where they are read), and
// the expectations (CONSTRAINT names) each dataset defines.
struct AlertTargets {
  std::vector<std::string> tables, sinks, views;
  std::map<std::string, std::vector<std::string>> expectations;  // by dataset
  // Streaming tables a Kafka flow writes `_rescued_data` to (its planned output has the column):
  // where rescued_rate_above can fire.
  std::set<std::string> rescued;
  // Datasets whose schema is not known yet (an inferred Kafka value schema not sampled: validate
  // without --infer-schemas; or a dataset reading one): rescued_rate_above on them is checked at
  // run start, once planning sampled it.
  std::set<std::string> unplanned;
};

// The first rule that could never fire, as an error naming its place in pipeline.yaml: a dataset
// the pipeline does not define, a view, freshness, drift or pass rate of a sink, a pass rate of a
// dataset without expectations, an `expectation:` that no dataset the rule covers defines, a
// rescued rate of a dataset no Kafka flow writes `_rescued_data` to (or, for a rule covering
// every dataset, of a pipeline where none has one).
std::optional<std::string> alert_rule_problem(const watch::AlertsConfig& config, const AlertTargets& targets);

// Thread-safe: datasets report from the scheduler's threads.
class RunAlerts {
 public:
  // Null when pipeline.yaml has no alert rule. `datasets` are the pipeline's datasets and sinks
  // (rules naming others are refused); `stored` the ones with a Delta table (freshness, schema).
  static arrow::Result<std::unique_ptr<RunAlerts>> make(const PipelineConfig& config,
                                                        const AlertTargets& targets,
                                                        std::shared_ptr<delta::SnapshotCache> snapshots,
                                                        EventLog& events);
  ~RunAlerts();

  // After a dataset's update: `progress` is its flow_progress details.
  void after_update(const std::string& dataset, const std::string& flow, const nlohmann::json& progress);
  // Freshness of every stored dataset against the clock, and delivery failures into the log.
  void tick();
  // Delivers what is queued (each within its destination's timeout) and records failures.
  void finish();

 private:
  RunAlerts(const PipelineConfig& config, EventLog& events) : config_(config), events_(events) {}
  void record(const std::vector<watch::AlertTransition>& transitions);
  void record_failures();
  std::optional<int64_t> last_commit_ms(const std::string& dataset);
  // The table's columns "name type", in order; nullopt when it has no commit yet.
  std::optional<std::vector<std::pair<std::string, std::string>>> columns(const std::string& dataset);
  bool wants(watch::RuleKind kind, const std::string& dataset) const;

  const PipelineConfig& config_;
  EventLog& events_;
  std::shared_ptr<delta::SnapshotCache> snapshots_;  // may be null
  std::unique_ptr<watch::AlertDispatcher> dispatcher_;
  std::vector<std::string> stored_;
  std::mutex mutex_;  // guards tracker_, flows_, schemas_, refreshed_ms_
  std::unique_ptr<watch::AlertTracker> tracker_;
  std::map<std::string, std::string> flows_;  // dataset -> its flow, as last reported
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> schemas_;  // as last seen
  std::map<std::string, int64_t> refreshed_ms_;  // a materialized view's last COMPLETED refresh
};

}  // namespace sluice::pipeline
