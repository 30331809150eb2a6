// Alerts of pipeline.yaml's `alerts:` section: the rules and destinations as configured, the
// evaluation of a rule against what one update of a dataset showed, and the state of every
// (rule, dataset) pair that turns conditions into FIRING / RESOLVED transitions once each,
// however long a condition holds. Pure logic: no I/O (the runner observes, the dispatcher
// delivers, the event log keeps the transitions).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sluice::watch {

enum class RuleKind {
  kFlowFailed,                // the dataset's latest update FAILED
  kFreshnessAbove,            // now - newest commit (or refresh) above a duration
  kExpectationPassRateBelow,  // passed / checked records of an update below a fraction
  kKafkaLagAbove,             // backlog_records an update left above a count
  kThroughputBelow,           // rows read per second of an update below a rate
  kSchemaDrift,               // the table's columns or their types changed
  kRescuedRateAbove,          // rows of an update with `_rescued_data` over rows written, above a fraction
};

// The rule's key in pipeline.yaml and in the `alert` event ("freshness_above", ...).
const char* rule_kind_name(RuleKind kind);

struct AlertRule {
  std::string name;
  RuleKind kind = RuleKind::kFlowFailed;
  double threshold = 0;                    // seconds, a fraction, records or rows/s (by kind)
  std::optional<std::string> expectation;  // pass rate of this expectation only
  std::vector<std::string> datasets;       // empty: every dataset and sink of the pipeline
  std::vector<std::string> notify;         // destination names; empty: the event log only
  std::string where;                       // pipeline.yaml:line:col of the rule, for errors

  bool applies_to(const std::string& dataset) const;
};

struct WebhookDestination {
  std::string url;  // secret: errors and logs show only its scheme, host and port
  std::chrono::milliseconds timeout{5000};
};
struct CommandDestination {
  std::vector<std::string> argv;  // run without a shell; the alert's JSON on its stdin
  std::chrono::milliseconds timeout{10000};
};
struct KafkaDestination {
  std::string cluster = "default";  // a cluster of pipeline.yaml's `kafka:`
  std::string topic;
  std::chrono::milliseconds timeout{5000};
};

struct AlertDestination {
  std::string name;
  std::variant<WebhookDestination, CommandDestination, KafkaDestination> target;
};

struct AlertsConfig {
  std::vector<AlertRule> rules;
  std::map<std::string, AlertDestination> destinations;
};

// Every dataset a rule names must be one of `defined` (the pipeline's datasets and sinks); the
// error names the rule's place in pipeline.yaml and the datasets there are.
std::optional<std::string> unknown_alert_dataset(const AlertsConfig& config, const std::vector<std::string>& defined);

// `url` as errors may show it: scheme://host[:port] and "/<redacted>" when it has a path or query
// (a Slack webhook's token is its path).
std::string webhook_display(const std::string& url);

// What one update of a dataset showed (or, with `status` unset, only the clock moved: a
// continuous run's periodic check of time-based rules).
struct ExpectationCount {
  std::string name;
  int64_t passed = 0;
  int64_t failed = 0;
};
struct SchemaChange {
  std::vector<std::string> added, removed, retyped;  // "name type", "name", "name: from -> to"
  bool empty() const { return added.empty() && removed.empty() && retyped.empty(); }
  std::string describe() const;
};
struct DatasetObservation {
  std::string dataset;
  std::string flow;
  int64_t at_ms = 0;
  std::optional<std::string> status;  // COMPLETED, FAILED, SKIPPED
  std::string error;                  // a FAILED update's message
  int64_t rows_read = 0;
  double rows_per_second = 0;
  std::optional<int64_t> backlog_records;
  std::vector<ExpectationCount> expectations;
  std::optional<int64_t> last_commit_ms;  // newest commit or refresh; unset: never written
  std::optional<SchemaChange> schema_change;  // unset: not looked at in this observation
  // Kafka flows whose table has `_rescued_data`: rows written this update and how many of them
  // rescued something (non-NULL); unset for other datasets (flow_progress `rescued_data`).
  std::optional<int64_t> rescue_rows_written;
  int64_t rescued_rows = 0;
};

// A condition evaluated: holds or not, with the figure it compared.
struct Verdict {
  bool holds = false;
  std::optional<double> value;
  std::string detail;  // e.g. the expectation, the error, the columns changed
};

// nullopt when the observation says nothing about the rule (an update that checked no records
// for a pass rate, a tick for a rule about updates, a FAILED update for a rule about its figures):
// the rule's state stays as it is.
std::optional<Verdict> evaluate(const AlertRule& rule, const DatasetObservation& observation);

enum class AlertState { kFiring, kResolved };

// One FIRING or RESOLVED of a (rule, dataset): the `alert` event's details and what destinations get.
struct AlertTransition {
  std::string pipeline;
  std::string rule;
  std::string condition;  // rule_kind_name
  std::string dataset;
  std::string flow;
  AlertState state = AlertState::kFiring;
  std::optional<double> value;
  std::optional<double> threshold;
  std::string unit;
  std::string detail;
  std::optional<std::string> expectation;
  int64_t at_ms = 0;
  int64_t since_ms = 0;  // when it began firing
  std::vector<std::string> destinations;
  std::string message;  // one line for people (the Slack text)

  // {"pipeline", "rule", "condition", "dataset", "flow", "state", "value", "threshold", "unit", "detail",
  //  "expectation", "at", "at_ms", "since", "since_ms", "destinations", "message"}
  nlohmann::json to_json() const;
};

// A (rule, dataset) that was FIRING when the event log was last written, restored at start.
struct RestoredAlert {
  std::string rule;
  std::string dataset;
  std::string flow;
  std::string condition;
  int64_t since_ms = 0;
};

// The state of every (rule, dataset). Not thread-safe: the runner serialises calls.
class AlertTracker {
 public:
  AlertTracker(AlertsConfig config, std::string pipeline) : config_(std::move(config)), pipeline_(std::move(pipeline)) {}

  // Restores what the event log says is firing. Returns a RESOLVED transition for each firing
  // alert whose rule is no longer configured (or no longer covers the dataset), so it does not
  // stay active forever.
  // `not_evaluable`, when given, says why a configured rule can no longer be evaluated on a
  // dataset (nullopt: it can); such an alert is resolved too, with that reason.
  using NotEvaluable = std::function<std::optional<std::string>(const AlertRule&, const std::string& dataset)>;
  std::vector<AlertTransition> restore(const std::vector<RestoredAlert>& firing, int64_t now_ms,
                                       const NotEvaluable& not_evaluable = {});

  // Evaluates every rule covering the observed dataset; returns what changed: a FIRING when a
  // condition begins to hold, a RESOLVED when it stops. A condition that keeps holding returns
  // nothing (de-duplicated).
  std::vector<AlertTransition> observe(const DatasetObservation& observation);

  bool firing(const std::string& rule, const std::string& dataset) const;
  const AlertsConfig& config() const { return config_; }

 private:
  struct Active {
    int64_t since_ms = 0;
  };
  AlertTransition transition(const AlertRule& rule, const DatasetObservation& observation, AlertState state,
                             const Verdict& verdict, int64_t since_ms) const;

  AlertsConfig config_;
  std::string pipeline_;
  std::map<std::pair<std::string, std::string>, Active> active_;  // (rule, dataset)
};

}  // namespace sluice::watch
