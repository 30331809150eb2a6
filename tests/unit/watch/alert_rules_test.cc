// Alert rules: pipeline.yaml's `alerts:` section, evaluation of each rule, de-duplication while
// a condition holds, the state restored from the event log, and delivery to a command.
#include "sluice/watch/alert_rules.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "../temp_dir.h"
#include "sluice/common/utf8.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/run_alerts.h"
#include "sluice/watch/alert_dispatcher.h"

namespace sluice::watch {
namespace {

AlertRule rule(const std::string& name, RuleKind kind, double threshold = 0) {
  AlertRule r;
  r.name = name;
  r.kind = kind;
  r.threshold = threshold;
  return r;
}

DatasetObservation update(const std::string& status, int64_t at_ms = 1'000'000) {
  DatasetObservation o;
  o.dataset = "orders";
  o.flow = "orders";
  o.status = status;
  o.at_ms = at_ms;
  return o;
}

TEST(AlertRules, FlowFailedHoldsOnFailedUpdatesAndIgnoresSkippedOnes) {
  const auto r = rule("failed", RuleKind::kFlowFailed);
  auto failed = update("FAILED");
  failed.error = "expectation 'x' failed\nmore";
  auto v = evaluate(r, failed);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->holds);
  EXPECT_EQ(v->detail, "expectation 'x' failed");
  EXPECT_FALSE(evaluate(r, update("COMPLETED"))->holds);
  EXPECT_FALSE(evaluate(r, update("SKIPPED")));
  DatasetObservation tick;
  tick.dataset = "orders";
  EXPECT_FALSE(evaluate(r, tick));
}

TEST(AlertRules, ALongNonAsciiErrorIsCutAtACharacterAndItsPayloadDumps) {
  // 35 ASCII bytes then two-byte characters: byte 500 falls inside one (the cut used to split it
  // and json::dump threw type_error.316 on the flow's thread).
  AlertsConfig config;
  auto r = rule("failed", RuleKind::kFlowFailed);
  r.notify = {"hook"};
  config.rules = {r};
  AlertTracker tracker(config, "shop");
  auto failed = update("FAILED");
  failed.error = "Invalid: Failed to parse string: 'a";
  while (failed.error.size() < 600) failed.error += "\xc3\xa9";  // é
  failed.error += "' as a scalar of type double";
  auto v = evaluate(r, failed);
  ASSERT_TRUE(v);
  EXPECT_TRUE(is_valid_utf8(v->detail));
  EXPECT_EQ(v->detail.size(), 499u + 3u);  // 35 + 232 characters of 2 bytes, then "..."
  auto fired = tracker.observe(failed);
  ASSERT_EQ(fired.size(), 1u);
  std::string payload;
  ASSERT_NO_THROW(payload = alert_payload(fired[0]));
  EXPECT_EQ(nlohmann::json::parse(payload)["detail"], v->detail);
  // Whatever a caller puts in a transition, the payload replaces invalid bytes instead of throwing.
  fired[0].message = "bad \xc3";
  ASSERT_NO_THROW(payload = alert_payload(fired[0]));
  EXPECT_EQ(nlohmann::json::parse(payload)["text"], "bad \xEF\xBF\xBD");
}

TEST(AlertRules, EachThresholdRuleComparesItsFigure) {
  struct Case {
    AlertRule rule;
    DatasetObservation observation;
    std::optional<bool> holds;  // nullopt: not evaluated
    std::optional<double> value;
  };
  auto lag = [](int64_t backlog) {
    auto o = update("COMPLETED");
    o.backlog_records = backlog;
    return o;
  };
  auto rate = [](int64_t rows, double per_second, std::optional<int64_t> backlog = std::nullopt) {
    auto o = update("COMPLETED");
    o.rows_read = rows;
    o.rows_per_second = per_second;
    o.backlog_records = backlog;
    return o;
  };
  auto quality = [](std::vector<ExpectationCount> e) {
    auto o = update("COMPLETED");
    o.expectations = std::move(e);
    return o;
  };
  auto fresh = [](std::optional<int64_t> last_commit_ms, int64_t at_ms) {
    DatasetObservation o;  // a tick: no status
    o.dataset = "orders";
    o.at_ms = at_ms;
    o.last_commit_ms = last_commit_ms;
    return o;
  };
  auto named = [](AlertRule r, std::string expectation) {
    r.expectation = expectation;
    return r;
  };
  const std::vector<Case> cases = {
      {rule("lag", RuleKind::kKafkaLagAbove, 100), lag(101), true, 101},
      {rule("lag", RuleKind::kKafkaLagAbove, 100), lag(100), false, 100},
      {rule("lag", RuleKind::kKafkaLagAbove, 100), update("COMPLETED"), std::nullopt, std::nullopt},
      {rule("lag", RuleKind::kKafkaLagAbove, 100), [&] { auto o = lag(500); o.status = "FAILED"; return o; }(),
       std::nullopt, std::nullopt},
      {rule("slow", RuleKind::kThroughputBelow, 50), rate(10, 20.0), true, 20.0},
      {rule("slow", RuleKind::kThroughputBelow, 50), rate(1000, 50.0), false, 50.0},
      {rule("slow", RuleKind::kThroughputBelow, 50), rate(0, 0.0), std::nullopt, std::nullopt},  // idle
      {rule("slow", RuleKind::kThroughputBelow, 50), rate(0, 0.0, 7), true, 0.0},  // backlog, nothing read
      {rule("rate", RuleKind::kExpectationPassRateBelow, 0.9), quality({{"a", 95, 5}, {"b", 80, 20}}), true, 0.8},
      {named(rule("rate", RuleKind::kExpectationPassRateBelow, 0.9), "a"), quality({{"a", 95, 5}, {"b", 80, 20}}),
       false, 0.95},
      {rule("rate", RuleKind::kExpectationPassRateBelow, 0.9), quality({{"a", 0, 0}}), std::nullopt, std::nullopt},
      {rule("stale", RuleKind::kFreshnessAbove, 60), fresh(1'000'000, 1'061'000), true, 61.0},
      {rule("stale", RuleKind::kFreshnessAbove, 60), fresh(1'000'000, 1'060'000), false, 60.0},
      {rule("stale", RuleKind::kFreshnessAbove, 60), fresh(std::nullopt, 1'060'000), std::nullopt, std::nullopt},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto v = evaluate(c.rule, c.observation);
    ASSERT_EQ(v.has_value(), c.holds.has_value()) << "case " << i;
    if (!v) continue;
    EXPECT_EQ(v->holds, *c.holds) << "case " << i;
    ASSERT_TRUE(v->value) << "case " << i;
    EXPECT_DOUBLE_EQ(*v->value, *c.value) << "case " << i;
  }
}

TEST(AlertRules, SchemaDriftHoldsWhenColumnsChanged) {
  const auto r = rule("drift", RuleKind::kSchemaDrift);
  auto o = update("COMPLETED");
  EXPECT_FALSE(evaluate(r, o));  // not looked at
  o.schema_change = SchemaChange{};
  EXPECT_FALSE(evaluate(r, o)->holds);
  o.schema_change->added = {"amount double"};
  o.schema_change->retyped = {"id: int32 -> int64"};
  auto v = evaluate(r, o);
  EXPECT_TRUE(v->holds);
  EXPECT_EQ(v->detail, "added amount double; type changed id: int32 -> int64");
}

TEST(AlertRules, RescuedRateHoldsAboveItsThresholdNotAtIt) {
  const auto r = rule("rescued", RuleKind::kRescuedRateAbove, 0.25);
  auto o = update("COMPLETED");
  EXPECT_FALSE(evaluate(r, o));  // a table without _rescued_data: not evaluated
  o.rescue_rows_written = 0;
  EXPECT_FALSE(evaluate(r, o));  // nothing written: says nothing
  o.rescue_rows_written = 20;
  o.rescued_rows = 5;
  auto at = evaluate(r, o);
  ASSERT_TRUE(at);
  EXPECT_FALSE(at->holds);  // 0.25 is not above 0.25
  EXPECT_DOUBLE_EQ(*at->value, 0.25);
  o.rescued_rows = 6;
  auto above = evaluate(r, o);
  EXPECT_TRUE(above->holds);
  EXPECT_EQ(above->detail, "6 of 20 rows written rescued data");
  o.status = "FAILED";
  EXPECT_FALSE(evaluate(r, o));
}

TEST(AlertTracker, FiresOnceWhileAConditionHoldsThenResolves) {
  AlertsConfig config;
  auto r = rule("lag", RuleKind::kKafkaLagAbove, 10);
  r.notify = {"ops"};
  config.rules = {r};
  AlertTracker tracker(config, "shop");
  auto lagging = [](int64_t backlog, int64_t at) {
    auto o = update("COMPLETED", at);
    o.backlog_records = backlog;
    return o;
  };
  EXPECT_TRUE(tracker.observe(lagging(5, 1000)).empty());
  auto fired = tracker.observe(lagging(50, 2000));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].state, AlertState::kFiring);
  EXPECT_EQ(fired[0].since_ms, 2000);
  EXPECT_EQ(fired[0].message, "[sluice shop] alert 'lag' FIRING on 'orders': Kafka lag 50 records > 10");
  EXPECT_TRUE(tracker.observe(lagging(80, 3000)).empty());  // still holds: no second FIRING
  EXPECT_TRUE(tracker.observe(update("COMPLETED", 3500)).empty());  // no figure: unchanged
  EXPECT_TRUE(tracker.firing("lag", "orders"));
  auto resolved = tracker.observe(lagging(3, 4000));
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_EQ(resolved[0].since_ms, 2000);
  const auto j = resolved[0].to_json();
  EXPECT_EQ(j["state"], "RESOLVED");
  EXPECT_EQ(j["condition"], "kafka_lag_above");
  EXPECT_EQ(j["value"], 3.0);
  EXPECT_EQ(j["threshold"], 10.0);
  EXPECT_EQ(j["unit"], "records");
  EXPECT_EQ(j["destinations"], nlohmann::json::array({"ops"}));
  EXPECT_FALSE(tracker.firing("lag", "orders"));
}

TEST(AlertTracker, RulesCoverOnlyTheirDatasetsAndKeepStatePerDataset) {
  AlertsConfig config;
  auto r = rule("failed", RuleKind::kFlowFailed);
  r.datasets = {"orders", "totals"};
  config.rules = {r};
  AlertTracker tracker(config, "shop");
  auto other = update("FAILED");
  other.dataset = "customers";
  EXPECT_TRUE(tracker.observe(other).empty());
  EXPECT_EQ(tracker.observe(update("FAILED")).size(), 1u);
  auto totals = update("FAILED");
  totals.dataset = "totals";
  EXPECT_EQ(tracker.observe(totals).size(), 1u);  // its own state
  EXPECT_TRUE(tracker.observe(update("FAILED")).empty());
}

TEST(AlertTracker, RestoredFiringAlertsAreNotAnnouncedAgainAndRemovedRulesResolve) {
  AlertsConfig config;
  config.rules = {rule("failed", RuleKind::kFlowFailed)};
  AlertTracker tracker(config, "shop");
  auto resolved = tracker.restore({{"failed", "orders", "orders", "flow_failed", 500},
                                   {"gone", "orders", "orders", "kafka_lag_above", 400},
                                   {"failed", "x", "x", "schema_drift", 300}},  // same name, other condition
                                  9000);
  ASSERT_EQ(resolved.size(), 2u);
  EXPECT_EQ(resolved[0].rule, "gone");
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_EQ(resolved[0].since_ms, 400);
  EXPECT_TRUE(resolved[0].destinations.empty());  // nobody to tell: the rule is gone
  EXPECT_TRUE(tracker.observe(update("FAILED")).empty());  // still failing after a restart: de-duplicated
  auto ok = tracker.observe(update("COMPLETED"));
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].since_ms, 500);
}

TEST(AlertTracker, ARestoredAlertTheRuleCanNoLongerEvaluateResolves) {
  AlertsConfig config;
  config.rules = {rule("rescued", RuleKind::kRescuedRateAbove, 0.1)};  // every dataset
  AlertTracker tracker(config, "shop");
  auto not_evaluable = [](const AlertRule& r, const std::string& dataset) -> std::optional<std::string> {
    if (r.kind == RuleKind::kRescuedRateAbove && dataset != "bronze") return std::string("no _rescued_data here");
    return std::nullopt;
  };
  auto resolved = tracker.restore({{"rescued", "bronze", "bronze", "rescued_rate_above", 500},
                                   {"rescued", "orders", "orders", "rescued_rate_above", 400}},
                                  9000, not_evaluable);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].dataset, "orders");
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_EQ(resolved[0].since_ms, 400);
  EXPECT_EQ(resolved[0].detail, "no _rescued_data here");
  EXPECT_NE(resolved[0].message.find("RESOLVED on 'orders': no _rescued_data here (the pipeline's SQL changed)"),
            std::string::npos) << resolved[0].message;
  EXPECT_TRUE(tracker.firing("rescued", "bronze"));
  EXPECT_FALSE(tracker.firing("rescued", "orders"));
}

TEST(AlertRules, RescuedRateNeedsAKafkaFlowWritingTheColumn) {
  pipeline::AlertTargets targets;
  targets.tables = {"bronze", "copy", "silver", "later"};
  targets.rescued = {"bronze"};
  targets.unplanned = {"later"};  // an inferred schema not sampled yet: checked at run start
  auto problem = [&](std::vector<std::string> datasets, const pipeline::AlertTargets& t) {
    AlertsConfig config;
    auto r = rule("x", RuleKind::kRescuedRateAbove, 0.1);
    r.datasets = std::move(datasets);
    r.where = "pipeline.yaml:7:5";
    config.rules = {r};
    return pipeline::alert_rule_problem(config, t);
  };
  // `copy` reads bronze (SELECT * FROM STREAM(bronze)): it has the column but no Kafka flow counts it.
  EXPECT_EQ(problem({"bronze", "copy"}, targets),
            "pipeline.yaml:7:5: alert rule 'x': no Kafka flow writes a `_rescued_data` column to 'copy', so "
            "rescued_rate_above cannot fire on it; it counts the rows of read_kafka flows (value_format json or "
            "avro) that select `_rescued_data`");
  EXPECT_TRUE(problem({"silver"}, targets));
  EXPECT_FALSE(problem({"bronze"}, targets));
  EXPECT_FALSE(problem({"later"}, targets));
  EXPECT_FALSE(problem({}, targets));
  auto none = targets;
  none.rescued.clear();
  EXPECT_FALSE(problem({}, none));  // `later` may have it
  none.unplanned.clear();
  EXPECT_EQ(problem({}, none),
            "pipeline.yaml:7:5: alert rule 'x': no Kafka flow of the pipeline writes a `_rescued_data` column, so "
            "rescued_rate_above cannot fire; it counts the rows of read_kafka flows (value_format json or avro) "
            "that select `_rescued_data`");
}

TEST(AlertRules, WebhookUrlsAreShownWithoutTheirToken) {
  EXPECT_EQ(webhook_display("https://hooks.slack.com/services/T0/B0/secret"), "https://hooks.slack.com/<redacted>");
  EXPECT_EQ(webhook_display("http://user:pw@127.0.0.1:8080/x?token=1"), "http://<redacted>@127.0.0.1:8080/<redacted>");
  EXPECT_EQ(webhook_display("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(webhook_display("nonsense"), "<redacted>");
}

class AlertConfigTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  arrow::Result<pipeline::PipelineConfig> load(const std::string& alerts) {
    std::ofstream(dir_.path() / "pipeline.yaml")
        << "name: p\nkafka:\n  default: {bootstrap.servers: 127.0.0.1:9092}\nalerts:\n" << alerts;
    return pipeline::load_pipeline_config(dir_.path());
  }
  std::string error(const std::string& alerts) {
    auto cfg = load(alerts);
    return cfg.ok() ? "(accepted)" : cfg.status().message();
  }
  std::string file() const { return (dir_.path() / "pipeline.yaml").string(); }
};

TEST_F(AlertConfigTest, ReadsEveryRuleAndDestination) {
  auto cfg = load(R"(  destinations:
    slack: {webhook: {url: "https://hooks.example.com/services/T/B/X", timeout: 2s}}
    pager: {command: {argv: [./page.sh, --team, data], timeout: 500ms}}
    bus: {kafka: {topic: sluice-alerts}}
  rules:
    - {name: failed, flow_failed: true, notify: [slack, pager]}
    - {name: stale, freshness_above: 10 minutes, datasets: [orders]}
    - {name: quality, expectation_pass_rate_below: 0.95, expectation: has_id, notify: bus}
    - {name: lag, kafka_lag_above: 1000}
    - {name: slow, throughput_below: 50.5}
    - {name: drift, schema_drift: true}
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  const auto& a = cfg->alerts;
  ASSERT_EQ(a.rules.size(), 6u);
  EXPECT_EQ(a.rules[0].kind, RuleKind::kFlowFailed);
  EXPECT_EQ(a.rules[0].notify, (std::vector<std::string>{"slack", "pager"}));
  EXPECT_EQ(a.rules[1].threshold, 600.0);
  EXPECT_EQ(a.rules[1].datasets, std::vector<std::string>{"orders"});
  EXPECT_EQ(a.rules[2].threshold, 0.95);
  EXPECT_EQ(a.rules[2].expectation, "has_id");
  EXPECT_EQ(a.rules[2].notify, std::vector<std::string>{"bus"});
  EXPECT_EQ(a.rules[3].kind, RuleKind::kKafkaLagAbove);
  EXPECT_EQ(a.rules[4].threshold, 50.5);
  EXPECT_EQ(a.rules[5].kind, RuleKind::kSchemaDrift);
  EXPECT_EQ(a.rules[1].where, file() + ":11:7");
  const auto& hook = std::get<WebhookDestination>(a.destinations.at("slack").target);
  EXPECT_EQ(hook.timeout, std::chrono::milliseconds(2000));
  const auto& page = std::get<CommandDestination>(a.destinations.at("pager").target);
  EXPECT_EQ(page.argv[0], (dir_.path() / "page.sh").string());  // relative to the pipeline folder
  EXPECT_EQ(page.timeout, std::chrono::milliseconds(500));
  const auto& bus = std::get<KafkaDestination>(a.destinations.at("bus").target);
  EXPECT_EQ(bus.cluster, "default");
  EXPECT_EQ(bus.topic, "sluice-alerts");
}

TEST_F(AlertConfigTest, RefusesWhatItCannotHonourAtItsLine) {
  struct Case {
    std::string alerts;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"  rule: []\n", ":5:3: unknown key 'alerts.rule' (did you mean 'rules'?); allowed here: destinations, rules"},
      {"  rules: [{name: x, lag_above: 5}]\n",
       ":5:21: unknown key 'alerts.rules[].lag_above'; allowed here: name, datasets, expectation, notify, flow_failed"},
      {"  rules: [{name: x}]\n", ":5:11: alert rule 'x' needs a condition: one of flow_failed, freshness_above"},
      {"  rules: [{name: x, flow_failed: true, schema_drift: true}]\n",
       ":5:54: alert rule 'x' has two conditions ('flow_failed' and 'schema_drift'); write one rule per condition"},
      {"  rules: [{name: x, flow_failed: yes}]\n", ":5:34: alert rule 'x': 'flow_failed' takes 'true' (leave the rule out to turn it off), not 'yes'"},
      {"  rules: [{name: x, expectation_pass_rate_below: 95}]\n",
       ":5:50: alert rule 'x': expectation_pass_rate_below is a fraction above 0 and at most 1"},
      {"  rules: [{name: x, freshness_above: soon}]\n", ":5:38: alert rule 'x': freshness_above: 'soon' is not a duration"},
      {"  rules: [{name: x, kafka_lag_above: -1}]\n", ":5:38: alert rule 'x': kafka_lag_above takes a non-negative number"},
      {"  rules: [{name: x, flow_failed: true, expectation: e}]\n",
       ":5:53: alert rule 'x': 'expectation' only applies to expectation_pass_rate_below"},
      {"  rules: [{name: x, flow_failed: true, notify: [nobody]}]\n",
       ":5:48: alert rule 'x' notifies 'nobody', which is not under alerts.destinations (none is defined)"},
      {"  rules: [{name: x, flow_failed: true}, {name: x, schema_drift: true}]\n",
       ":5:48: alert rule 'x' is defined twice (first at "},
      {"  destinations: {d: {email: {to: a@b}}}\n", ":5:22: unknown key 'alerts.destinations.d.email'; allowed here: webhook, command, kafka"},
      {"  destinations: {d: {webhook: {url: ftp://h/x}}}\n",
       ":5:37: alerts.destinations.d.webhook.url must be an http:// or https:// URL with a host (the URL is not shown"},
      {"  destinations: {d: {webhook: {url: \"http://h/x\", retries: 3}}}\n",
       ":5:51: unknown key 'alerts.destinations.d.webhook.retries'; allowed here: url, timeout"},
      {"  destinations: {d: {webhook: {url: \"http://h/x\", timeout: 1 hour}}}\n",
       ":5:60: alerts.destinations.d.webhook.timeout must be between 1ms and 10 minutes"},
      {"  destinations: {d: {command: {argv: []}}}\n", ":5:38: alerts.destinations.d.command needs 'argv'"},
      {"  destinations: {d: {command: {argv: [x]}}}\n  rules: [{name: r, flow_failed: true}]\n",
       ":5:18: alert destination 'd' is not in any rule's 'notify'; add it to one or remove it"},
      {"  destinations: {d: {kafka: {topic: t, cluster: other}}}\n",
       ":5:49: alerts.destinations.d.kafka names Kafka cluster 'other', which is not under 'kafka:'"},
  };
  for (const auto& c : cases) {
    const auto message = error(c.alerts);
    EXPECT_EQ(message.rfind(file() + c.message, 0), 0u) << c.alerts << "\n  got: " << message;
  }
}

TEST_F(AlertConfigTest, AnInvalidWebhookUrlIsNeverEchoed) {
  const auto message = error("  destinations: {d: {webhook: {url: \"gopher://h/T0/B0/very-secret-token\"}}}\n");
  EXPECT_EQ(message.find("very-secret-token"), std::string::npos) << message;
  EXPECT_NE(message.find("must be an http:// or https:// URL"), std::string::npos) << message;
}

TEST_F(AlertConfigTest, ABronzeListCannotHaveAlerts) {
  std::ofstream(dir_.path() / "pipeline.yaml")
      << "name: p\nkafka:\n  default: {bootstrap.servers: x:1}\nbronze: [{topic: t}]\nalerts:\n  rules: "
         "[{name: f, flow_failed: true}]\n";
  auto cfg = pipeline::load_pipeline_config(dir_.path());
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find(":6:3: alerts are evaluated for SQL datasets only"), std::string::npos)
      << cfg.status().message();
}

TEST(AlertRules, RulesThatCouldNeverFireAreFound) {
  pipeline::AlertTargets targets;
  targets.tables = {"orders", "totals"};
  targets.views = {"recent"};
  targets.sinks = {"out"};
  targets.expectations["orders"] = {"positive", "has_id"};
  auto problem = [&](RuleKind kind, std::vector<std::string> datasets, std::optional<std::string> expectation = {}) {
    AlertsConfig config;
    auto r = rule("x", kind, 1);
    r.datasets = std::move(datasets);
    r.expectation = std::move(expectation);
    r.where = "pipeline.yaml:7:5";
    config.rules = {r};
    return pipeline::alert_rule_problem(config, targets);
  };
  EXPECT_EQ(problem(RuleKind::kFlowFailed, {"orders", "ordres"}),
            "pipeline.yaml:7:5: alert rule 'x' names dataset 'ordres', which the pipeline does not define; its "
            "datasets and sinks: orders, recent, totals, out");
  // Views are never updated: no rule of any kind can fire on one.
  EXPECT_EQ(problem(RuleKind::kFlowFailed, {"recent"}),
            "pipeline.yaml:7:5: alert rule 'x' names view 'recent': a view is never updated (it is computed where it "
            "is read), so no rule can fire on it; name the tables that read it");
  EXPECT_EQ(problem(RuleKind::kFreshnessAbove, {"out"}),
            "pipeline.yaml:7:5: alert rule 'x': freshness_above cannot be evaluated on sink 'out' (a sink has no Delta "
            "table); sinks take flow_failed, kafka_lag_above and throughput_below");
  EXPECT_TRUE(problem(RuleKind::kSchemaDrift, {"out"}));
  EXPECT_TRUE(problem(RuleKind::kExpectationPassRateBelow, {"out"}));
  EXPECT_EQ(problem(RuleKind::kExpectationPassRateBelow, {"totals"}),
            "pipeline.yaml:7:5: alert rule 'x': dataset 'totals' defines no expectation (CONSTRAINT ... EXPECT), so "
            "expectation_pass_rate_below cannot fire on it");
  EXPECT_EQ(problem(RuleKind::kExpectationPassRateBelow, {"orders"}, "postive"),
            "pipeline.yaml:7:5: alert rule 'x': expectation 'postive' is not defined on orders; defined there: "
            "positive, has_id");
  EXPECT_EQ(problem(RuleKind::kExpectationPassRateBelow, {}, "nope"),
            "pipeline.yaml:7:5: alert rule 'x': expectation 'nope' is not defined on any dataset; defined there: "
            "positive, has_id");
  // What can fire is accepted.
  EXPECT_FALSE(problem(RuleKind::kFlowFailed, {"orders", "out"}));
  EXPECT_FALSE(problem(RuleKind::kKafkaLagAbove, {"out"}));
  EXPECT_FALSE(problem(RuleKind::kFreshnessAbove, {"totals"}));
  EXPECT_FALSE(problem(RuleKind::kExpectationPassRateBelow, {"orders"}, "positive"));
  EXPECT_FALSE(problem(RuleKind::kExpectationPassRateBelow, {}, "has_id"));
  EXPECT_FALSE(problem(RuleKind::kSchemaDrift, {}));
}

TEST(AlertDelivery, ACommandGetsThePayloadOnStdinWithoutAShell) {
  sluice::testing::TempDir dir;
  const auto out = dir.path() / "got.json";
  AlertDestination d;
  d.name = "cmd";
  // argv as given: the '>' reaches sh as an argument of -c, not as a redirection of sluice's.
  d.target = CommandDestination{{"/bin/sh", "-c", "cat > \"$0\"", out.string()}, std::chrono::milliseconds(10000)};
  AlertTransition t;
  t.pipeline = "shop";
  t.rule = "lag";
  t.dataset = "orders";
  t.message = "[sluice shop] alert 'lag' FIRING on 'orders': Kafka lag 50 records > 10";
  ASSERT_TRUE(deliver(d, alert_payload(t), "lag/orders", {}).ok());
  std::stringstream got;
  got << std::ifstream(out).rdbuf();
  const auto j = nlohmann::json::parse(got.str());
  EXPECT_EQ(j["text"], t.message);
  EXPECT_EQ(j["rule"], "lag");
  EXPECT_EQ(j["dataset"], "orders");
  EXPECT_EQ(j["state"], "FIRING");
}

TEST(AlertDelivery, ACommandThatFailsOrHangsIsAnErrorNamingIt) {
  AlertDestination fails{"cmd", CommandDestination{{"/bin/sh", "-c", "echo refused >&2; exit 3"}, std::chrono::milliseconds(10000)}};
  auto st = deliver(fails, "{}", "k", {});
  EXPECT_EQ(st.message(), "command '/bin/sh' exited with status 3: refused");
  AlertDestination hangs{"cmd", CommandDestination{{"/bin/sleep", "60"}, std::chrono::milliseconds(200)}};
  st = deliver(hangs, "{}", "k", {});
  EXPECT_EQ(st.message(), "command '/bin/sleep' did not finish within 200 ms and was killed");
  AlertDestination missing{"cmd", CommandDestination{{"/nonexistent/page"}, std::chrono::milliseconds(1000)}};
  st = deliver(missing, "{}", "k", {});
  EXPECT_EQ(st.message(), "command '/nonexistent/page' could not be started: No such file or directory");
}

// A local HTTP server, one connection at a time, that answers as told: "trickle" sends a status
// line then one header line every 100 ms without end; "endless" a 200 with an endless chunked
// body; "ok" a plain 200 (keeping the request's head for the test).
class SlowServer {
 public:
  explicit SlowServer(std::string mode) : mode_(std::move(mode)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~SlowServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& user_info = "") const {
    return "http://" + user_info + "127.0.0.1:" + std::to_string(port_) + "/hook/T0K3N";
  }
  std::string head() {
    std::lock_guard lock(mutex_);
    return head_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string got;
      char buf[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mutex_);
        head_ = got.substr(0, got.find("\r\n\r\n"));
      }
      auto say = [&](const std::string& text) { return ::send(c, text.data(), text.size(), MSG_NOSIGNAL) > 0; };
      if (mode_ == "ok") {
        say("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
      } else if (mode_ == "trickle") {
        bool open = say("HTTP/1.1 200 OK\r\n");
        while (open && !stop_) {
          pollfd w{c, POLLIN, 0};
          if (::poll(&w, 1, 100) > 0 && ::recv(c, buf, sizeof buf, MSG_DONTWAIT) == 0) break;  // closed
          open = say("X-Slow: 1\r\n");
        }
      } else {
        bool open = say("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
        while (open && !stop_) open = say(chunk);
      }
      ::close(c);
    }
  }

  std::string mode_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // guards head_
  std::string head_;
  std::thread thread_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// cpp-httplib's timeouts are per read: a server trickling header lines every 100 ms held a call
// with a 1 s timeout for as long as it went on. The timeout is now the whole call's.
TEST(AlertDelivery, AWebhookThatTricklesIsCutOffAtItsTimeout) {
  SlowServer server("trickle");
  AlertDestination d{"hook", WebhookDestination{server.url(), std::chrono::milliseconds(400)}};
  const auto start = std::chrono::steady_clock::now();
  const auto st = deliver(d, "{}", "k", {});
  const double took = seconds_since(start);
  EXPECT_EQ(st.message(), "webhook " + webhook_display(server.url()) + ": no answer within 400 ms");
  EXPECT_LT(took, 0.4 + 5.0);  // the timeout, plus slack for a loaded machine (it never ended before)
  EXPECT_EQ(st.message().find("T0K3N"), std::string::npos);
}

// An endless body is not read (it grew to 1.2 GB in 6 s): the status line answers.
TEST(AlertDelivery, AWebhookWithAnEndlessBodyIsAnsweredByItsStatus) {
  SlowServer server("endless");
  AlertDestination d{"hook", WebhookDestination{server.url(), std::chrono::milliseconds(2000)}};
  const auto start = std::chrono::steady_clock::now();
  const auto st = deliver(d, "{}", "k", {});
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_LT(seconds_since(start), 2.0 + 5.0);
}

TEST(AlertDelivery, AWebhookUrlsUserInfoIsSentAsBasicAuth) {
  SlowServer server("ok");
  AlertDestination d{"hook", WebhookDestination{server.url("alice:s3cret@"), std::chrono::milliseconds(5000)}};
  const auto st = deliver(d, "{}", "k", {});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(server.head().find("Authorization: Basic YWxpY2U6czNjcmV0"), std::string::npos) << server.head();
  EXPECT_EQ(server.head().rfind("POST /hook/T0K3N HTTP/1.1", 0), 0u) << server.head();
}

// stop() ends within its limit however much is queued: the delivery in flight is cut off and the
// rest recorded as not delivered (a triggered run's finish() waited on them for ever).
TEST(AlertDelivery, StopEndsWithinItsLimitAndRecordsWhatWasNotDelivered) {
  SlowServer server("trickle");
  AlertsConfig config;
  config.destinations["hook"] = AlertDestination{"hook", WebhookDestination{server.url(), std::chrono::milliseconds(60'000)}};
  auto dispatcher = AlertDispatcher::make(config, {});
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.status().ToString();
  AlertTransition t;
  t.rule = "lag";
  t.dataset = "orders";
  t.destinations = {"hook"};
  for (int i = 0; i < 5; ++i) (*dispatcher)->send(t);
  const auto start = std::chrono::steady_clock::now();
  (*dispatcher)->stop(std::chrono::milliseconds(300));
  EXPECT_LT(seconds_since(start), 0.3 + 5.0);  // not 5 x 60 s
  const auto failures = (*dispatcher)->take_failures();
  ASSERT_EQ(failures.size(), 5u);
  const std::string cut = "webhook " + webhook_display(server.url()) + ": no answer before the run ended";
  for (size_t i = 0; i < failures.size(); ++i) {
    EXPECT_TRUE(failures[i].error == cut || failures[i].error == "not delivered: the run ended before its turn came")
        << failures[i].error;
  }
  EXPECT_EQ(failures[4].error, "not delivered: the run ended before its turn came");
}

}  // namespace
}  // namespace sluice::watch
