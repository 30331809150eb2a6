// Alert rules evaluated against a dataset's update, and the de-duplicating state per (rule, dataset).
#include "sluice/watch/alert_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "sluice/common/time_text.h"

namespace sluice::watch {

namespace {

std::string iso(int64_t ms) { return format_timestamp_micros(ms * 1000, true, false); }

const char* unit_of(RuleKind kind) {
  switch (kind) {
    case RuleKind::kFreshnessAbove: return "seconds";
    case RuleKind::kExpectationPassRateBelow: return "fraction";
    case RuleKind::kKafkaLagAbove: return "records";
    case RuleKind::kThroughputBelow: return "rows/s";
    case RuleKind::kRescuedRateAbove: return "fraction";
    case RuleKind::kFlowFailed:
    case RuleKind::kSchemaDrift: return "";
  }
  return "";
}

bool has_threshold(RuleKind kind) { return kind != RuleKind::kFlowFailed && kind != RuleKind::kSchemaDrift; }

// The condition in words, as it is now ("freshness 620 s > 600 s").
std::string condition_text(RuleKind kind, AlertState state, const std::optional<double>& value, double threshold,
                           const std::string& detail) {
  const bool firing = state == AlertState::kFiring;
  const double v = value.value_or(0);
  switch (kind) {
    case RuleKind::kFlowFailed:
      return firing ? fmt::format("the update FAILED: {}", detail) : "an update COMPLETED";
    case RuleKind::kFreshnessAbove:
      return fmt::format("freshness {:.0f} s {} {:.0f} s", v, firing ? ">" : "<=", threshold);
    case RuleKind::kExpectationPassRateBelow:
      return fmt::format("{} pass rate {:.4g} {} {:.4g}", detail, v, firing ? "<" : ">=", threshold);
    case RuleKind::kKafkaLagAbove:
      return fmt::format("Kafka lag {:.0f} records {} {:.0f}", v, firing ? ">" : "<=", threshold);
    case RuleKind::kThroughputBelow:
      return fmt::format("throughput {:.1f} rows/s {} {:.4g}", v, firing ? "<" : ">=", threshold);
    case RuleKind::kSchemaDrift:
      return firing ? fmt::format("the schema changed: {}", detail) : "the schema is unchanged since the last update";
    case RuleKind::kRescuedRateAbove:
      return fmt::format("rescued-data rate {:.4g} {} {:.4g} ({})", v, firing ? ">" : "<=", threshold, detail);
  }
  return "";
}

std::string first_line(const std::string& text, size_t limit) {
  auto line = text.substr(0, text.find('\n'));
  if (line.size() > limit) {
    // Cut at a character boundary: never inside a UTF-8 sequence (continuation bytes 10xxxxxx).
    size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    line = line.substr(0, cut) + "...";
  }
  return line;
}

}  // namespace

const char* rule_kind_name(RuleKind kind) {
  switch (kind) {
    case RuleKind::kFlowFailed: return "flow_failed";
    case RuleKind::kFreshnessAbove: return "freshness_above";
    case RuleKind::kExpectationPassRateBelow: return "expectation_pass_rate_below";
    case RuleKind::kKafkaLagAbove: return "kafka_lag_above";
    case RuleKind::kThroughputBelow: return "throughput_below";
    case RuleKind::kSchemaDrift: return "schema_drift";
    case RuleKind::kRescuedRateAbove: return "rescued_rate_above";
  }
  return "";
}

bool AlertRule::applies_to(const std::string& dataset) const {
  return datasets.empty() || std::find(datasets.begin(), datasets.end(), dataset) != datasets.end();
}

std::optional<std::string> unknown_alert_dataset(const AlertsConfig& config, const std::vector<std::string>& defined) {
  for (const auto& rule : config.rules) {
    for (const auto& d : rule.datasets) {
      if (std::find(defined.begin(), defined.end(), d) != defined.end()) continue;
      return fmt::format("{}: alert rule '{}' names dataset '{}', which the pipeline does not define; its datasets "
                         "and sinks: {}",
                         rule.where, rule.name, d, fmt::join(defined, ", "));
    }
  }
  return std::nullopt;
}

std::string webhook_display(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "<redacted>";
  const auto host_start = scheme_end + 3;
  auto host_end = url.find_first_of("/?#", host_start);
  std::string authority = url.substr(host_start, host_end == std::string::npos ? std::string::npos : host_end - host_start);
  if (const auto at = authority.rfind('@'); at != std::string::npos) authority = "<redacted>@" + authority.substr(at + 1);
  std::string out = url.substr(0, host_start) + authority;
  if (host_end != std::string::npos && host_end + 1 < url.size()) out += "/<redacted>";
  return out;
}

std::string SchemaChange::describe() const {
  std::vector<std::string> parts;
  if (!added.empty()) parts.push_back("added " + fmt::format("{}", fmt::join(added, ", ")));
  if (!removed.empty()) parts.push_back("removed " + fmt::format("{}", fmt::join(removed, ", ")));
  if (!retyped.empty()) parts.push_back("type changed " + fmt::format("{}", fmt::join(retyped, ", ")));
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::optional<Verdict> evaluate(const AlertRule& rule, const DatasetObservation& o) {
  const bool update = o.status.has_value();
  const bool completed = update && *o.status == "COMPLETED";
  switch (rule.kind) {
    case RuleKind::kFlowFailed:
      if (!update || *o.status == "SKIPPED") return std::nullopt;  // skipped: its failed input alerts
      return Verdict{*o.status == "FAILED", std::nullopt, first_line(o.error, 500)};
    case RuleKind::kFreshnessAbove: {
      if (!o.last_commit_ms) return std::nullopt;  // never written: nothing to be stale yet
      const double age = static_cast<double>(std::max<int64_t>(0, o.at_ms - *o.last_commit_ms)) / 1000.0;
      return Verdict{age > rule.threshold, age, fmt::format("newest commit at {}", iso(*o.last_commit_ms))};
    }
    case RuleKind::kExpectationPassRateBelow: {
      if (!completed) return std::nullopt;
      std::optional<Verdict> worst;
      for (const auto& e : o.expectations) {
        if (rule.expectation && e.name != *rule.expectation) continue;
        const int64_t checked = e.passed + e.failed;
        if (checked <= 0) continue;
        const double rate = static_cast<double>(e.passed) / static_cast<double>(checked);
        if (!worst || rate < *worst->value) {
          worst = Verdict{rate < rule.threshold, rate,
                          fmt::format("expectation '{}' ({} of {} records passed)", e.name, e.passed, checked)};
        }
      }
      return worst;
    }
    case RuleKind::kKafkaLagAbove:
      if (!completed || !o.backlog_records) return std::nullopt;
      return Verdict{static_cast<double>(*o.backlog_records) > rule.threshold, static_cast<double>(*o.backlog_records), ""};
    case RuleKind::kThroughputBelow:
      // An update with nothing to read is idle, not slow (freshness_above tells "no data").
      if (!completed || (o.rows_read == 0 && o.backlog_records.value_or(0) == 0)) return std::nullopt;
      return Verdict{o.rows_per_second < rule.threshold, o.rows_per_second, fmt::format("{} rows read", o.rows_read)};
    case RuleKind::kSchemaDrift:
      if (!completed || !o.schema_change) return std::nullopt;
      return Verdict{!o.schema_change->empty(), std::nullopt, o.schema_change->describe()};
    case RuleKind::kRescuedRateAbove: {
      // Only updates that wrote rows to a table with `_rescued_data`: an idle one tells nothing.
      if (!completed || !o.rescue_rows_written || *o.rescue_rows_written <= 0) return std::nullopt;
      const double rate = static_cast<double>(o.rescued_rows) / static_cast<double>(*o.rescue_rows_written);
      return Verdict{rate > rule.threshold, rate,
                     fmt::format("{} of {} rows written rescued data", o.rescued_rows, *o.rescue_rows_written)};
    }
  }
  return std::nullopt;
}

nlohmann::json AlertTransition::to_json() const {
  using json = nlohmann::json;
  return {{"pipeline", pipeline},
          {"rule", rule},
          {"condition", condition},
          {"dataset", dataset},
          {"flow", flow},
          {"state", state == AlertState::kFiring ? "FIRING" : "RESOLVED"},
          {"value", value ? json(*value) : json(nullptr)},
          {"threshold", threshold ? json(*threshold) : json(nullptr)},
          {"unit", unit},
          {"detail", detail},
          {"expectation", expectation ? json(*expectation) : json(nullptr)},
          {"at", iso(at_ms)},
          {"at_ms", at_ms},
          {"since", iso(since_ms)},
          {"since_ms", since_ms},
          {"destinations", destinations},
          {"message", message}};
}

AlertTransition AlertTracker::transition(const AlertRule& rule, const DatasetObservation& o, AlertState state,
                                         const Verdict& verdict, int64_t since_ms) const {
  AlertTransition t;
  t.pipeline = pipeline_;
  t.rule = rule.name;
  t.condition = rule_kind_name(rule.kind);
  t.dataset = o.dataset;
  t.flow = o.flow;
  t.state = state;
  if (verdict.value && std::isfinite(*verdict.value)) t.value = verdict.value;
  if (has_threshold(rule.kind)) t.threshold = rule.threshold;
  t.unit = unit_of(rule.kind);
  t.detail = verdict.detail;
  t.expectation = rule.expectation;
  t.at_ms = o.at_ms;
  t.since_ms = since_ms;
  t.destinations = rule.notify;
  t.message = fmt::format("[sluice {}] alert '{}' {} on '{}': {}", pipeline_, rule.name,
                          state == AlertState::kFiring ? "FIRING" : "RESOLVED", o.dataset,
                          condition_text(rule.kind, state, verdict.value, rule.threshold, verdict.detail));
  if (rule.kind == RuleKind::kFreshnessAbove || rule.kind == RuleKind::kThroughputBelow) {
    t.message += fmt::format(" ({})", verdict.detail);
  }
  return t;
}

std::vector<AlertTransition> AlertTracker::restore(const std::vector<RestoredAlert>& firing, int64_t now_ms,
                                                   const NotEvaluable& not_evaluable) {
  std::vector<AlertTransition> out;
  for (const auto& f : firing) {
    auto rule = std::find_if(config_.rules.begin(), config_.rules.end(), [&](const AlertRule& r) {
      return r.name == f.rule && rule_kind_name(r.kind) == f.condition;
    });
    std::optional<std::string> why_not;
    if (rule != config_.rules.end() && rule->applies_to(f.dataset)) {
      if (not_evaluable) why_not = not_evaluable(*rule, f.dataset);
      if (!why_not) {
        active_[{f.rule, f.dataset}] = Active{f.since_ms};
        continue;
      }
    }
    AlertTransition t;
    t.pipeline = pipeline_;
    t.rule = f.rule;
    t.condition = f.condition;
    t.dataset = f.dataset;
    t.flow = f.flow;
    t.state = AlertState::kResolved;
    t.detail = why_not.value_or("the rule is no longer configured for this dataset");
    t.at_ms = now_ms;
    t.since_ms = f.since_ms;
    t.message = fmt::format("[sluice {}] alert '{}' RESOLVED on '{}': {} ({} changed)", pipeline_, f.rule,
                            f.dataset, t.detail, why_not ? "the pipeline's SQL" : "pipeline.yaml");
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<AlertTransition> AlertTracker::observe(const DatasetObservation& o) {
  std::vector<AlertTransition> out;
  for (const auto& rule : config_.rules) {
    if (!rule.applies_to(o.dataset)) continue;
    const auto verdict = evaluate(rule, o);
    if (!verdict) continue;
    const auto key = std::make_pair(rule.name, o.dataset);
    auto it = active_.find(key);
    if (verdict->holds && it == active_.end()) {
      active_[key] = Active{o.at_ms};
      out.push_back(transition(rule, o, AlertState::kFiring, *verdict, o.at_ms));
    } else if (!verdict->holds && it != active_.end()) {
      out.push_back(transition(rule, o, AlertState::kResolved, *verdict, it->second.since_ms));
      active_.erase(it);
    }
  }
  return out;
}

bool AlertTracker::firing(const std::string& rule, const std::string& dataset) const {
  return active_.count({rule, dataset}) != 0;
}

}  // namespace sluice::watch
