// pipeline.yaml parsing and validation.
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/pipeline_config_checked.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <tuple>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/common/bounded_regex.h"
#include "sluice/common/text.h"
#include "sluice/kafka/client_properties.h"
#include "sluice/storage/location.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

namespace {

// A ${file:...} reference reads at most this much: a secret, not a data file.
constexpr std::uintmax_t kMaxReferencedFileBytes = 1 << 20;

// Reports errors as "<file>:<line>:<col>: <message>" from a node's position.
class YamlContext {
 public:
  YamlContext(std::string file, fs::path dir) : file_(std::move(file)), dir_(std::move(dir)) {}

  std::string where(const YAML::Mark& mark) const {
    return mark.is_null() ? file_ : fmt::format("{}:{}:{}", file_, mark.line + 1, mark.column + 1);
  }

  template <typename... Args>
  arrow::Status error(const YAML::Node& at, fmt::format_string<Args...> f, Args&&... args) const {
    return arrow::Status::Invalid(where(at.Mark()) + ": " +
                                  fmt::format(f, std::forward<Args>(args)...));
  }

  // Every key of `map` must be one of `allowed`; else an error with a suggestion.
  arrow::Status check_keys(const YAML::Node& map, const std::string& path,
                           const std::vector<std::string>& allowed) const {
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string best;
      size_t best_d = 3;
      for (const auto& a : allowed) {
        size_t d = edit_distance(key, a);
        if (d < best_d) best_d = d, best = a;
      }
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      return error(kv.first, "unknown key '{}{}'{}; allowed here: {}", path.empty() ? "" : path + ".",
                   key, best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best), known);
    }
    return arrow::Status::OK();
  }

  // A scalar value with its ${env:NAME} and ${file:path} references replaced, so secrets need
  // not be written into pipeline.yaml. Errors name the variable or path, never a value.
  arrow::Result<std::string> scalar(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) return error(node, "'{}' must be a single value", what);
    const auto text = node.as<std::string>();
    // `${kind:ref}` is a reference, `$${` a literal `${`; a reference without its `}` is an
    // error rather than text that silently keeps the unresolved reference.
    static const std::regex kStart(R"(^\$\{([A-Za-z_][A-Za-z0-9_]*):)");
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      if (text.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 3;
        continue;
      }
      std::smatch m;
      const std::string rest = text.substr(i, std::min<size_t>(text.size() - i, 80));
      if (text.compare(i, 2, "${") == 0 && regex_search_bounded(rest, m, kStart)) {
        const size_t ref_at = i + static_cast<size_t>(m.length(0));
        const size_t close = text.find('}', ref_at);
        if (close == std::string::npos) {
          return error(node, "{}: reference '${{{}:...' has no closing '}}'; write ${{{}:...}} (or "
                             "$${{ for a literal ${{)",
                       what, m[1].str(), m[1].str());
        }
        ARROW_ASSIGN_OR_RAISE(auto value,
                              resolve(node, what, m[1].str(), text.substr(ref_at, close - ref_at)));
        remember_secret(value);  // secret whatever key holds it
        out += value;
        i = close + 1;
        continue;
      }
      out += text[i];
      ++i;
    }
    return out;
  }

 private:
  arrow::Result<std::string> resolve(const YAML::Node& at, const std::string& what,
                                     const std::string& kind, const std::string& ref) const {
    if (kind == "env") {
      const char* value = std::getenv(ref.c_str());
      if (value == nullptr) {
        return error(at, "{}: environment variable '{}' (${{env:{}}}) is not set; set it in the "
                         "environment of sluice",
                     what, ref, ref);
      }
      return std::string(value);
    }
    if (kind == "file") {
      fs::path path(ref);
      if (path.is_relative()) path = dir_ / path;
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      if (ec) {
        return error(at, "{}: cannot read '{}' (${{file:{}}}): {}; the path is relative to the "
                         "pipeline folder unless absolute",
                     what, path.string(), ref, ec.message());
      }
      if (size > kMaxReferencedFileBytes) {
        return error(at, "{}: '{}' (${{file:{}}}) holds {} bytes, more than the {} a referenced "
                         "secret may have",
                     what, path.string(), ref, size, kMaxReferencedFileBytes);
      }
      // At most one byte past the limit: a file may report a size it does not have (/proc).
      std::ifstream in(path, std::ios::binary);
      std::string value(kMaxReferencedFileBytes + 1, '\0');
      in.read(value.data(), static_cast<std::streamsize>(value.size()));
      if (in.bad() || (!in && !in.eof())) {
        return error(at, "{}: cannot read '{}' (${{file:{}}}): {}", what, path.string(), ref,
                     std::strerror(errno));
      }
      value.resize(static_cast<size_t>(in.gcount()));
      if (value.size() > kMaxReferencedFileBytes) {
        return error(at, "{}: '{}' (${{file:{}}}) holds more than the {} bytes a referenced "
                         "secret may have",
                     what, path.string(), ref, kMaxReferencedFileBytes);
      }
      // A file written by `echo` or an editor ends in a newline that is not part of the secret.
      if (!value.empty() && value.back() == '\n') value.pop_back();
      if (!value.empty() && value.back() == '\r') value.pop_back();
      return value;
    }
    return error(at, "{}: unknown reference '${{{}:...}}'; use ${{env:NAME}} or ${{file:path}}",
                 what, kind);
  }

  std::string file_;
  fs::path dir_;  // the pipeline folder: ${file:} paths are relative to it
};

// yaml-cpp keeps both entries of a key written twice and `node[key]` returns the first, so the
// second would be ignored silently: refuse it, at any depth, naming both places. An alias
// (`*a`) is the very node its anchor names, so a node may be reached many times (`[*a, *a]`
// nested ten deep is 10^9 paths) or inside itself (`&a [*a]`): each mapping and sequence is
// checked once, recognised by where it is written. Keys must be plain values (no pipeline.yaml
// key is a list or mapping, and printing one that contains itself would never end).
using NodePlace = std::tuple<int, int, int, int>;  // position, line, column, node type

arrow::Status check_duplicate_keys(const YAML::Node& node, const YamlContext& ctx,
                                   std::set<NodePlace>& checked) {
  if (!node.IsSequence() && !node.IsMap()) return arrow::Status::OK();
  const auto mark = node.Mark();
  if (!checked.emplace(mark.pos, mark.line, mark.column, static_cast<int>(node.Type())).second) {
    return arrow::Status::OK();
  }
  if (node.IsSequence()) {
    for (const auto& item : node) ARROW_RETURN_NOT_OK(check_duplicate_keys(item, ctx, checked));
    return arrow::Status::OK();
  }
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node) {
    if (kv.first.IsSequence() || kv.first.IsMap()) {
      return ctx.error(kv.first, "a key must be a name, not a {}; write `name: value`",
                       kv.first.IsMap() ? "mapping" : "list");
    }
    const auto key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    auto [first, inserted] = seen.emplace(key, kv.first.Mark());
    if (!inserted) {
      return ctx.error(kv.first, "key '{}' is written twice (first at {}); remove one of them",
                       key, ctx.where(first->second));
    }
    ARROW_RETURN_NOT_OK(check_duplicate_keys(kv.second, ctx, checked));
  }
  return arrow::Status::OK();
}

const std::regex kIdentifier("[A-Za-z_][A-Za-z0-9_]*");
const std::regex kTopicName("[A-Za-z0-9._-]{1,249}");

// `storage:` and `storage_options:`: a local folder (relative to the pipeline folder) or an
// object-store URI (s3://, gs://, az:// and its spellings) reached with delta-rs's option keys
// over the environment (AWS_*; STORAGE_EMULATOR_HOST, GOOGLE_*; AZURE_STORAGE_*). Each option is
// checked at its own line: a key sluice does not use, or one of another store, is refused there.
arrow::Status parse_storage(const YAML::Node& root, const std::string& text, const YamlContext& ctx,
                            PipelineConfig& cfg, StorageOpening opening) {
  const auto opts = root["storage_options"];
  if (opts && !opts.IsMap()) {
    return ctx.error(opts, "'storage_options' must be a mapping (aws_region: us-east-1, ...)");
  }
  if (!storage::is_object_store_uri(text)) {
    if (opts) {
      return ctx.error(opts, "'storage_options' are for a storage on an object store (s3://, gs://, az://), "
                             "but storage '{}' is a local path; remove them or give an object-store storage",
                       text);
    }
    cfg.storage = fs::weakly_canonical(fs::path(text).is_absolute() ? fs::path(text) : cfg.dir / text);
    return arrow::Status::OK();
  }
  auto location = storage::parse_location(text, "storage");
  if (!location.ok()) return ctx.error(root["storage"], "{}", location.status().message());
  storage::StorageOptions options;
  if (opts) {
    for (const auto& kv : opts) {
      const auto key = kv.first.as<std::string>();
      ARROW_ASSIGN_OR_RAISE(auto value, ctx.scalar(kv.second, "storage_options." + key));
      auto checked = storage::normalize_storage_options({{key, value}});
      if (!checked.ok()) return ctx.error(kv.first, "{}", checked.status().message());
      auto applies = storage::check_option_applies(location->scheme, text, key, checked->begin()->first);
      if (!applies.ok()) return ctx.error(kv.first, "{}", applies.message());
      options[key] = std::move(value);
    }
  }
  if (opening == StorageOpening::kChecked) {  // checked, never opened: the caller brings its own storage
    cfg.objects = storage::local_store();
    cfg.storage.clear();
    return arrow::Status::OK();
  }
  auto opened = storage::open_location(*location, options);
  if (!opened.ok()) {
    return ctx.error(opts ? opts : root["storage"], "storage '{}': {}", text, opened.status().message());
  }
  cfg.objects = opened->store;
  cfg.storage = opened->root;
  return arrow::Status::OK();
}

arrow::Result<std::chrono::milliseconds> parse_timeout(const YAML::Node& node, const YamlContext& ctx,
                                                      const std::string& what) {
  ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(node, what));
  auto d = parse_duration(text);
  if (!d.ok()) return ctx.error(node, "{}: {}", what, d.status().message());
  if (d->count() <= 0 || d->count() > 600'000) {
    return ctx.error(node, "{} must be between 1ms and 10 minutes, not '{}'", what, quote_for_error(text));
  }
  return *d;
}

// A list of names (`[a, b]`), or one name.
arrow::Result<std::vector<std::string>> parse_names(const YAML::Node& node, const YamlContext& ctx,
                                                    const std::string& what) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    ARROW_ASSIGN_OR_RAISE(auto one, ctx.scalar(node, what));
    out.push_back(std::move(one));
    return out;
  }
  if (!node.IsSequence()) return ctx.error(node, "'{}' must be a list of names", what);
  for (const auto& item : node) {
    ARROW_ASSIGN_OR_RAISE(auto name, ctx.scalar(item, what + "[]"));
    out.push_back(std::move(name));
  }
  return out;
}

// serve.kpis: [{name, dataset, x, y, kind, limit, title}]: the shape is checked here, the
// dataset and its columns against the graph and schemas (sluice validate, the server's start).
arrow::Result<std::vector<KpiConfig>> parse_kpis(const YAML::Node& node, const YamlContext& ctx) {
  if (!node.IsSequence()) {
    return ctx.error(node, "serve.kpis must be a list of charts, e.g. [{{name: revenue, dataset: daily_revenue, "
                           "x: day, y: [revenue, orders]}}]");
  }
  std::vector<KpiConfig> out;
  for (const auto& item : node) {
    if (!item.IsMap()) return ctx.error(item, "each serve.kpis entry must be a mapping (name, dataset, x, y, kind, limit, title)");
    ARROW_RETURN_NOT_OK(ctx.check_keys(item, "serve.kpis[]", {"name", "title", "dataset", "x", "y", "kind", "limit"}));
    KpiConfig k;
    k.where = ctx.where(item.Mark());
    for (const char* required : {"name", "dataset", "x", "y"}) {
      if (!item[required]) return ctx.error(item, "serve.kpis entry needs '{}' (name, dataset, x, y)", required);
    }
    ARROW_ASSIGN_OR_RAISE(k.name, ctx.scalar(item["name"], "serve.kpis[].name"));
    if (!regex_match_bounded(k.name, std::regex("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"))) {
      return ctx.error(item["name"], "KPI name '{}' may only use letters, digits, '_', '-', '.', and must start with a letter, digit or '_' (it is part of a URL)",
                       quote_for_error(k.name));
    }
    for (const auto& other : out) {
      if (other.name == k.name) return ctx.error(item["name"], "KPI '{}' is defined twice (first at {})", k.name, other.where);
    }
    k.title = k.name;
    if (item["title"]) {
      ARROW_ASSIGN_OR_RAISE(k.title, ctx.scalar(item["title"], "serve.kpis[].title"));
    }
    ARROW_ASSIGN_OR_RAISE(k.dataset, ctx.scalar(item["dataset"], "serve.kpis[].dataset"));
    ARROW_ASSIGN_OR_RAISE(k.x, ctx.scalar(item["x"], "serve.kpis[].x"));
    ARROW_ASSIGN_OR_RAISE(k.y, parse_names(item["y"], ctx, "serve.kpis[].y"));
    if (k.y.empty()) return ctx.error(item["y"], "KPI '{}': y must name at least one column", k.name);
    for (size_t i = 0; i < k.y.size(); ++i) {
      if (k.y[i] == k.x || std::find(k.y.begin(), k.y.begin() + static_cast<std::ptrdiff_t>(i), k.y[i]) != k.y.begin() + static_cast<std::ptrdiff_t>(i)) {
        return ctx.error(item["y"], "KPI '{}': column '{}' is named twice among x and y", k.name, k.y[i]);
      }
    }
    if (item["kind"]) {
      ARROW_ASSIGN_OR_RAISE(auto kind, ctx.scalar(item["kind"], "serve.kpis[].kind"));
      if (kind == "line") {
        k.kind = KpiConfig::Kind::kLine;
      } else if (kind == "bar") {
        k.kind = KpiConfig::Kind::kBar;
      } else {
        return ctx.error(item["kind"], "KPI '{}': kind must be line or bar, not '{}'", k.name, quote_for_error(kind));
      }
    }
    if (item["limit"]) {
      ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(item["limit"], "serve.kpis[].limit"));
      auto n = parse_int64(text, "limit");
      if (!n.ok() || *n < 1 || *n > 10000) {
        return ctx.error(item["limit"], "KPI '{}': limit must be a whole number from 1 to 10000 (rows charted), not '{}'",
                         k.name, quote_for_error(text));
      }
      k.limit = *n;
    }
    out.push_back(std::move(k));
  }
  return out;
}

// alerts: {destinations: {name: {webhook|command|kafka: {...}}}, rules: [{name, <condition>: value,
// datasets, expectation, notify}]} (README "Alerts"). A webhook URL is secret (a Slack webhook's
// token is its path): no error shows it, only its scheme and host.
arrow::Result<watch::AlertDestination> parse_alert_destination(const std::string& name, const YAML::Node& node,
                                                               const YamlContext& ctx, const PipelineConfig& cfg) {
  const std::string path = "alerts.destinations." + name;
  if (!node.IsMap() || node.size() != 1) {
    return ctx.error(node, "{} must be one of {{webhook: {{url: ...}}}}, {{command: {{argv: [...]}}}} or "
                           "{{kafka: {{topic: ...}}}}", path);
  }
  ARROW_RETURN_NOT_OK(ctx.check_keys(node, path, {"webhook", "command", "kafka"}));
  const auto kind = node.begin()->first.as<std::string>();
  const auto spec = node.begin()->second;
  if (!spec.IsMap()) return ctx.error(spec, "{}.{} must be a mapping", path, kind);
  watch::AlertDestination out;
  out.name = name;
  if (kind == "webhook") {
    ARROW_RETURN_NOT_OK(ctx.check_keys(spec, path + ".webhook", {"url", "timeout"}));
    watch::WebhookDestination w;
    if (!spec["url"]) return ctx.error(spec, "{}.webhook needs 'url' (http:// or https://)", path);
    ARROW_ASSIGN_OR_RAISE(w.url, ctx.scalar(spec["url"], path + ".webhook.url"));
    const bool http = w.url.rfind("http://", 0) == 0, https = w.url.rfind("https://", 0) == 0;
    const auto host_at = w.url.find("://") + 3;
    if ((!http && !https) || w.url.size() <= host_at || w.url[host_at] == '/') {
      return ctx.error(spec["url"], "{}.webhook.url must be an http:// or https:// URL with a host (the URL is "
                                    "not shown: it may hold a token)", path);
    }
    if (spec["timeout"]) {
      ARROW_ASSIGN_OR_RAISE(w.timeout, parse_timeout(spec["timeout"], ctx, path + ".webhook.timeout"));
    }
    out.target = std::move(w);
  } else if (kind == "command") {
    ARROW_RETURN_NOT_OK(ctx.check_keys(spec, path + ".command", {"argv", "timeout"}));
    watch::CommandDestination c;
    if (!spec["argv"] || !spec["argv"].IsSequence() || spec["argv"].size() == 0) {
      return ctx.error(spec["argv"] ? spec["argv"] : spec, "{}.command needs 'argv': a non-empty list, the program "
                                                          "first (run without a shell)", path);
    }
    ARROW_ASSIGN_OR_RAISE(c.argv, parse_names(spec["argv"], ctx, path + ".command.argv"));
    if (c.argv[0].empty()) return ctx.error(spec["argv"], "{}.command.argv[0] (the program) is empty", path);
    // A relative program path is the pipeline folder's, as ${file:} paths are.
    if (c.argv[0].find('/') != std::string::npos && fs::path(c.argv[0]).is_relative()) {
      c.argv[0] = (cfg.dir / c.argv[0]).lexically_normal().string();
    }
    if (spec["timeout"]) {
      ARROW_ASSIGN_OR_RAISE(c.timeout, parse_timeout(spec["timeout"], ctx, path + ".command.timeout"));
    }
    out.target = std::move(c);
  } else {
    ARROW_RETURN_NOT_OK(ctx.check_keys(spec, path + ".kafka", {"topic", "cluster", "timeout"}));
    watch::KafkaDestination k;
    if (!spec["topic"]) return ctx.error(spec, "{}.kafka needs 'topic'", path);
    ARROW_ASSIGN_OR_RAISE(k.topic, ctx.scalar(spec["topic"], path + ".kafka.topic"));
    if (!regex_match_bounded(k.topic, kTopicName)) {
      return ctx.error(spec["topic"], "'{}' is not a valid Kafka topic name", quote_for_error(k.topic));
    }
    if (spec["cluster"]) {
      ARROW_ASSIGN_OR_RAISE(k.cluster, ctx.scalar(spec["cluster"], path + ".kafka.cluster"));
    }
    if (!cfg.kafka.count(k.cluster)) {
      return ctx.error(spec["cluster"] ? spec["cluster"] : spec,
                       "{}.kafka names Kafka cluster '{}', which is not under 'kafka:'", path, k.cluster);
    }
    if (spec["timeout"]) {
      ARROW_ASSIGN_OR_RAISE(k.timeout, parse_timeout(spec["timeout"], ctx, path + ".kafka.timeout"));
    }
    out.target = std::move(k);
  }
  return out;
}

arrow::Result<watch::AlertRule> parse_alert_rule(const YAML::Node& node, const YamlContext& ctx,
                                                 const watch::AlertsConfig& alerts) {
  using watch::RuleKind;
  static const std::vector<std::pair<std::string, RuleKind>> kConditions = {
      {"flow_failed", RuleKind::kFlowFailed},
      {"freshness_above", RuleKind::kFreshnessAbove},
      {"expectation_pass_rate_below", RuleKind::kExpectationPassRateBelow},
      {"kafka_lag_above", RuleKind::kKafkaLagAbove},
      {"throughput_below", RuleKind::kThroughputBelow},
      {"schema_drift", RuleKind::kSchemaDrift},
      {"rescued_rate_above", RuleKind::kRescuedRateAbove}};
  if (!node.IsMap()) return ctx.error(node, "each alert rule must be a mapping (name, a condition, notify)");
  std::vector<std::string> allowed = {"name", "datasets", "expectation", "notify"};
  for (const auto& [key, kind] : kConditions) allowed.push_back(key);
  ARROW_RETURN_NOT_OK(ctx.check_keys(node, "alerts.rules[]", allowed));
  watch::AlertRule rule;
  rule.where = ctx.where(node.Mark());
  if (!node["name"]) return ctx.error(node, "alert rule needs 'name'");
  ARROW_ASSIGN_OR_RAISE(rule.name, ctx.scalar(node["name"], "alerts.rules[].name"));
  if (!regex_match_bounded(rule.name, std::regex("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"))) {
    return ctx.error(node["name"], "alert rule name '{}' may only use letters, digits, '_', '-', '.'",
                     quote_for_error(rule.name));
  }
  for (const auto& other : alerts.rules) {
    if (other.name == rule.name) {
      return ctx.error(node["name"], "alert rule '{}' is defined twice (first at {})", rule.name, other.where);
    }
  }
  const std::string path = "alert rule '" + rule.name + "'";
  std::string condition;
  for (const auto& [key, kind] : kConditions) {
    if (!node[key]) continue;
    if (!condition.empty()) {
      return ctx.error(node[key], "{} has two conditions ('{}' and '{}'); write one rule per condition", path,
                       condition, key);
    }
    condition = key;
    rule.kind = kind;
    ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(node[key], path + "." + key));
    const auto& at = node[key];
    switch (kind) {
      case RuleKind::kFlowFailed:
      case RuleKind::kSchemaDrift:
        if (text != "true") {
          return ctx.error(at, "{}: '{}' takes 'true' (leave the rule out to turn it off), not '{}'", path, key,
                           quote_for_error(text));
        }
        break;
      case RuleKind::kFreshnessAbove: {
        auto d = parse_duration(text);
        if (!d.ok()) return ctx.error(at, "{}: freshness_above: {}", path, d.status().message());
        rule.threshold = static_cast<double>(d->count()) / 1000.0;
        break;
      }
      case RuleKind::kExpectationPassRateBelow: {
        auto v = parse_double(text, key);
        if (!v.ok() || !(*v > 0) || *v > 1) {
          return ctx.error(at, "{}: expectation_pass_rate_below is a fraction above 0 and at most 1 (0.99 = 99 %), "
                               "not '{}'", path, quote_for_error(text));
        }
        rule.threshold = *v;
        break;
      }
      case RuleKind::kRescuedRateAbove: {
        // Fires when the rate is above the fraction: 1 could never be passed, so it is refused.
        auto v = parse_double(text, key);
        if (!v.ok() || !(*v >= 0) || !(*v < 1)) {
          return ctx.error(at, "{}: rescued_rate_above is a fraction from 0 to below 1 (0.01 = 1 % of the rows "
                               "written), not '{}'", path, quote_for_error(text));
        }
        rule.threshold = *v;
        break;
      }
      case RuleKind::kKafkaLagAbove:
      case RuleKind::kThroughputBelow: {
        auto v = parse_double(text, key);
        if (!v.ok() || !(*v >= 0) || *v > 1e15) {
          return ctx.error(at, "{}: {} takes a non-negative number ({}), not '{}'", path, key,
                           kind == RuleKind::kKafkaLagAbove ? "records" : "rows per second", quote_for_error(text));
        }
        rule.threshold = *v;
        break;
      }
    }
  }
  if (condition.empty()) {
    return ctx.error(node, "{} needs a condition: one of flow_failed, freshness_above, expectation_pass_rate_below, "
                           "kafka_lag_above, throughput_below, schema_drift, rescued_rate_above", path);
  }
  if (node["expectation"]) {
    if (rule.kind != RuleKind::kExpectationPassRateBelow) {
      return ctx.error(node["expectation"], "{}: 'expectation' only applies to expectation_pass_rate_below", path);
    }
    ARROW_ASSIGN_OR_RAISE(rule.expectation, ctx.scalar(node["expectation"], path + ".expectation"));
  }
  if (node["datasets"]) {
    ARROW_ASSIGN_OR_RAISE(rule.datasets, parse_names(node["datasets"], ctx, path + ".datasets"));
  }
  if (node["notify"]) {
    ARROW_ASSIGN_OR_RAISE(rule.notify, parse_names(node["notify"], ctx, path + ".notify"));
    for (const auto& d : rule.notify) {
      if (alerts.destinations.count(d)) continue;
      std::string known;
      for (const auto& [n, dest] : alerts.destinations) known += (known.empty() ? "" : ", ") + n;
      return ctx.error(node["notify"], "{} notifies '{}', which is not under alerts.destinations{}", path,
                       quote_for_error(d), known.empty() ? std::string(" (none is defined)") : "; defined: " + known);
    }
  }
  return rule;
}

arrow::Result<watch::AlertsConfig> parse_alerts(const YAML::Node& node, const YamlContext& ctx,
                                                const PipelineConfig& cfg) {
  if (!node.IsMap()) return ctx.error(node, "'alerts' must be a mapping (destinations, rules)");
  ARROW_RETURN_NOT_OK(ctx.check_keys(node, "alerts", {"destinations", "rules"}));
  watch::AlertsConfig out;
  if (const auto dests = node["destinations"]) {
    if (!dests.IsMap()) return ctx.error(dests, "alerts.destinations must map names to destinations");
    for (const auto& kv : dests) {
      const auto name = kv.first.as<std::string>();
      if (!regex_match_bounded(name, std::regex("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"))) {
        return ctx.error(kv.first, "alert destination name '{}' may only use letters, digits, '_', '-', '.'",
                         quote_for_error(name));
      }
      ARROW_ASSIGN_OR_RAISE(auto dest, parse_alert_destination(name, kv.second, ctx, cfg));
      out.destinations.emplace(name, std::move(dest));
    }
  }
  if (const auto rules = node["rules"]) {
    if (!rules.IsSequence()) return ctx.error(rules, "alerts.rules must be a list of rules");
    for (const auto& r : rules) {
      ARROW_ASSIGN_OR_RAISE(auto rule, parse_alert_rule(r, ctx, out));
      out.rules.push_back(std::move(rule));
    }
  }
  // A destination no rule notifies would never be used: say so rather than ignore it.
  for (const auto& kv : node["destinations"] ? node["destinations"] : YAML::Node()) {
    const auto name = kv.first.as<std::string>();
    const bool used = std::any_of(out.rules.begin(), out.rules.end(), [&](const watch::AlertRule& r) {
      return std::find(r.notify.begin(), r.notify.end(), name) != r.notify.end();
    });
    if (!used) {
      return ctx.error(kv.first, "alert destination '{}' is not in any rule's 'notify'; add it to one or remove it",
                       name);
    }
  }
  return out;
}

arrow::Result<PipelineConfig> parse(const YAML::Node& root, const fs::path& dir,
                                    const YamlContext& ctx, StorageOpening opening) {
  if (!root.IsMap()) return ctx.error(root, "pipeline.yaml must be a mapping of settings");
  ARROW_RETURN_NOT_OK(ctx.check_keys(root, "",
                                     {"name", "storage", "mode", "trigger_interval", "commit", "kafka",
                                      "configuration", "libraries", "bronze", "tables", "storage_options", "serve", "alerts"}));
  PipelineConfig cfg;
  cfg.dir = fs::absolute(dir);
  if (!root["name"]) return ctx.error(root, "missing required key 'name'");
  ARROW_ASSIGN_OR_RAISE(cfg.name, ctx.scalar(root["name"], "name"));
  if (!regex_match_bounded(cfg.name, std::regex("[A-Za-z0-9_.-]+"))) {
    return ctx.error(root["name"], "pipeline name '{}' may only use letters, digits, '_', '-', '.'",
                     quote_for_error(cfg.name));
  }
  std::string storage = "./data";
  if (root["storage"]) {
    ARROW_ASSIGN_OR_RAISE(storage, ctx.scalar(root["storage"], "storage"));
  }
  ARROW_RETURN_NOT_OK(parse_storage(root, storage, ctx, cfg, opening));
  if (root["mode"]) {
    ARROW_ASSIGN_OR_RAISE(auto mode, ctx.scalar(root["mode"], "mode"));
    if (mode == "triggered") {
      cfg.mode = Mode::kTriggered;
    } else if (mode == "continuous") {
      cfg.mode = Mode::kContinuous;
    } else {
      return ctx.error(root["mode"], "mode must be 'triggered' or 'continuous', not '{}'", mode);
    }
  }
  if (root["trigger_interval"]) {
    ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(root["trigger_interval"], "trigger_interval"));
    auto d = parse_duration(text);
    if (!d.ok()) return ctx.error(root["trigger_interval"], "{}", d.status().message());
    cfg.trigger_interval = *d;
  }
  // commit: {max_rows: N, max_bytes: N, interval: 5s}: how often a long-running flow commits
  // within an update (bounds memory, the work a crash can lose, and end-to-end latency).
  if (const auto commit = root["commit"]) {
    if (!commit.IsMap()) {
      return ctx.error(commit, "'commit' must be a mapping (max_rows, max_bytes, interval, handoff_bytes)");
    }
    ARROW_RETURN_NOT_OK(ctx.check_keys(commit, "commit", {"max_rows", "max_bytes", "interval", "handoff_bytes"}));
    for (const char* key : {"max_rows", "max_bytes", "handoff_bytes"}) {
      if (!commit[key]) continue;
      ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(commit[key], std::string("commit.") + key));
      const int64_t n = parse_int64(text, key).ValueOr(0);  // not a number: refused below, naming it
      const std::string name = key;
      if (name == "handoff_bytes" && (n > 0 || text == "0")) {  // 0: every reader reads files
        cfg.commit_handoff_bytes = n;
        continue;
      }
      if (n <= 0) {
        return ctx.error(commit[key], "commit.{} must be a {} whole number, not '{}'", key,
                         name == "handoff_bytes" ? "non-negative" : "positive", text);
      }
      (name == "max_rows" ? cfg.commit_max_rows : cfg.commit_max_bytes) = n;
    }
    if (commit["interval"]) {
      ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(commit["interval"], "commit.interval"));
      auto d = parse_duration(text);
      if (!d.ok()) return ctx.error(commit["interval"], "{}", d.status().message());
      cfg.commit_interval = *d;
    }
  }
  // serve: {cpu_price_per_hour: P}: what the server's cost metric prices a CPU hour at.
  if (const auto serve = root["serve"]) {
    if (!serve.IsMap()) return ctx.error(serve, "'serve' must be a mapping (cpu_price_per_hour, freshness_targets, kpis)");
    ARROW_RETURN_NOT_OK(ctx.check_keys(serve, "serve", {"cpu_price_per_hour", "freshness_targets", "kpis"}));
    if (const auto kpis = serve["kpis"]) {
      ARROW_ASSIGN_OR_RAISE(cfg.serve_kpis, parse_kpis(kpis, ctx));
    }
    if (const auto targets = serve["freshness_targets"]) {
      if (!targets.IsMap()) {
        return ctx.error(targets, "serve.freshness_targets must map dataset names to durations, e.g. {{orders: 5 minutes}}");
      }
      for (const auto& t : targets) {
        ARROW_ASSIGN_OR_RAISE(auto name, ctx.scalar(t.first, "serve.freshness_targets"));
        ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(t.second, "serve.freshness_targets." + name));
        auto d = parse_duration(text);
        if (!d.ok() || d->count() <= 0) {
          return ctx.error(t.second, "serve.freshness_targets.{}: {}", name,
                           d.ok() ? "the target must be longer than 0" : d.status().message());
        }
        cfg.serve_freshness_targets[name] = *d;
      }
    }
    if (serve["cpu_price_per_hour"]) {
      ARROW_ASSIGN_OR_RAISE(auto text, ctx.scalar(serve["cpu_price_per_hour"], "serve.cpu_price_per_hour"));
      auto price = parse_double(text, "serve.cpu_price_per_hour");
      if (!price.ok() || !(*price >= 0) || *price > 1e12) {
        return ctx.error(serve["cpu_price_per_hour"],
                         "serve.cpu_price_per_hour must be a non-negative number (the price of one CPU hour), not '{}'",
                         quote_for_error(text));
      }
      cfg.serve_cpu_price_per_hour = *price;
    }
  }
  if (const auto kafka = root["kafka"]) {
    if (!kafka.IsMap()) return ctx.error(kafka, "'kafka' must map cluster names to properties");
    for (const auto& cluster : kafka) {
      const auto name = cluster.first.as<std::string>();
      if (!cluster.second.IsMap()) {
        return ctx.error(cluster.second, "kafka.{} must be a mapping of librdkafka properties",
                         name);
      }
      kafka::KafkaProperties props;
      for (const auto& kv : cluster.second) {
        const auto key = kv.first.as<std::string>();
        ARROW_ASSIGN_OR_RAISE(props[key], ctx.scalar(kv.second, "kafka." + name + "." + key));
        // Checked here, offline, so `validate` refuses what `run` would.
        auto checked = kafka::check_property(key, props[key]);
        if (!checked.ok()) return ctx.error(kv.first, "kafka.{}: {}", name, checked.message());
      }
      if (!props.count("bootstrap.servers")) {
        return ctx.error(cluster.second, "kafka.{} needs 'bootstrap.servers'", name);
      }
      cfg.kafka[name] = std::move(props);
    }
  }
  if (const auto conf = root["configuration"]) {
    if (!conf.IsMap()) return ctx.error(conf, "'configuration' must be a mapping");
    for (const auto& kv : conf) {
      const auto key = kv.first.as<std::string>();
      ARROW_ASSIGN_OR_RAISE(cfg.configuration[key], ctx.scalar(kv.second, "configuration." + key));
    }
  }
  if (const auto bronze = root["bronze"]) {
    if (!bronze.IsSequence()) {
      return ctx.error(bronze, "'bronze' must be a list of {{table, topic}} entries");
    }
    std::set<std::string> seen;
    for (const auto& entry : bronze) {
      if (!entry.IsMap()) return ctx.error(entry, "each bronze entry must be a mapping");
      ARROW_RETURN_NOT_OK(ctx.check_keys(entry, "bronze[]",
                                         {"table", "topic", "cluster", "starting_offsets",
                                          "comment"}));
      BronzeTableConfig t;
      if (!entry["topic"]) return ctx.error(entry, "bronze entry needs 'topic'");
      ARROW_ASSIGN_OR_RAISE(t.topic, ctx.scalar(entry["topic"], "topic"));
      if (!regex_match_bounded(t.topic, kTopicName)) {
        return ctx.error(entry["topic"], "'{}' is not a valid Kafka topic name", quote_for_error(t.topic));
      }
      if (entry["table"]) {
        ARROW_ASSIGN_OR_RAISE(t.table, ctx.scalar(entry["table"], "table"));
      } else {
        t.table = std::regex_replace(t.topic, std::regex("[^A-Za-z0-9_]"), "_") + "_bronze";
      }
      if (!regex_match_bounded(t.table, kIdentifier)) {
        return ctx.error(entry["table"], "table name '{}' must be an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                         quote_for_error(t.table));
      }
      if (!seen.insert(t.table).second) {
        return ctx.error(entry, "table '{}' is defined twice", t.table);
      }
      if (entry["cluster"]) {
        ARROW_ASSIGN_OR_RAISE(t.cluster, ctx.scalar(entry["cluster"], "cluster"));
      }
      if (!cfg.kafka.count(t.cluster)) {
        return ctx.error(entry["cluster"] ? entry["cluster"] : entry,
                         "table '{}' reads Kafka cluster '{}', which is not under 'kafka:'", t.table,
                         t.cluster);
      }
      if (entry["starting_offsets"]) {
        ARROW_ASSIGN_OR_RAISE(auto so, ctx.scalar(entry["starting_offsets"], "starting_offsets"));
        if (so == "earliest") {
          t.starting_offsets = StartingOffsets::kEarliest;
        } else if (so == "latest") {
          t.starting_offsets = StartingOffsets::kLatest;
        } else {
          return ctx.error(entry["starting_offsets"],
                           "starting_offsets must be 'earliest' or 'latest', not '{}'", so);
        }
      }
      if (entry["comment"]) {
        ARROW_ASSIGN_OR_RAISE(t.comment, ctx.scalar(entry["comment"], "comment"));
      }
      cfg.bronze.push_back(std::move(t));
    }
  }
  if (const auto tables = root["tables"]) {
    if (!tables.IsMap()) return ctx.error(tables, "'tables' must map table names to settings");
    for (const auto& t : tables) {
      const auto name = t.first.as<std::string>();
      if (!t.second.IsMap()) return ctx.error(t.second, "tables.{} must be a mapping", name);
      ARROW_RETURN_NOT_OK(ctx.check_keys(t.second, "tables." + name, {"properties"}));
      auto& props = cfg.table_properties[name];
      if (const auto p = t.second["properties"]) {
        if (!p.IsMap()) return ctx.error(p, "tables.{}.properties must be a mapping", name);
        for (const auto& kv : p) {
          const auto key = kv.first.as<std::string>();
          ARROW_ASSIGN_OR_RAISE(props[key], ctx.scalar(kv.second, "tables." + name + ".properties." + key));
        }
      }
    }
  }
  if (const auto alerts = root["alerts"]) {
    ARROW_ASSIGN_OR_RAISE(cfg.alerts, parse_alerts(alerts, ctx, cfg));
    if (!cfg.bronze.empty() && !cfg.alerts.rules.empty()) {
      return ctx.error(alerts, "alerts are evaluated for SQL datasets only, and this pipeline has a 'bronze:' list; "
                               "define the bronze tables in SQL (read_kafka) to alert on them");
    }
  }
  if (const auto libraries = root["libraries"]) {
    if (!libraries.IsSequence()) {
      return ctx.error(libraries, "'libraries' must be a list of {{glob: {{include: \"*.sql\"}}}} entries");
    }
    for (const auto& lib : libraries) {
      const auto glob = lib.IsMap() ? lib["glob"] : YAML::Node();
      const auto include = glob && glob.IsMap() ? glob["include"] : YAML::Node();
      if (!include || !include.IsScalar()) {
        return ctx.error(lib, "each library must be {{glob: {{include: \"pattern\"}}}}");
      }
      ARROW_ASSIGN_OR_RAISE(auto pattern, ctx.scalar(include, "libraries[].glob.include"));
      cfg.library_globs.push_back(std::move(pattern));
    }
  }
  return cfg;
}

}  // namespace

arrow::Result<std::chrono::milliseconds> parse_duration(const std::string& text) {
  static const std::regex kDuration(
      R"(\s*(\d+)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\s*)");
  std::smatch m;
  if (!regex_match_bounded(text, m, kDuration)) {
    return invalid("'{}' is not a duration (e.g. 500ms, 1s, 10 minutes, 1 hour)", quote_for_error(text));
  }
  const std::string unit = m[2];
  const int64_t per = unit == "ms" || unit.rfind("milli", 0) == 0 ? 1
                      : unit[0] == 's'                            ? 1000
                      : unit[0] == 'm'                            ? 60'000
                                                                  : 3'600'000;
  // No std::stoll: a long run of digits threw std::out_of_range past every handler (found by
  // the pipeline_config fuzzer); the checked parser reports it, and the product must fit too.
  const auto n = parse_int64(m[1].str(), "duration");
  if (!n.ok() || *n > INT64_MAX / per) {
    return invalid("'{}' is too long a duration (at most {} {})", quote_for_error(text), INT64_MAX / per, unit);
  }
  return std::chrono::milliseconds(*n * per);
}

arrow::Status check_storage_opened(const PipelineConfig& config) {
  if (!config.id.empty()) return arrow::Status::OK();
  return arrow::Status::Invalid(fmt::format(
      "internal error: pipeline '{}' was run before its storage '{}' was opened (no pipeline id to key its "
      "progress by); nothing was written. Please report this as a sluice bug",
      config.name, config.storage_display()));
}

arrow::Result<PipelineConfig> load_pipeline_config(const fs::path& dir) {
  return load_pipeline_config(dir, StorageOpening::kOpened);
}

arrow::Result<PipelineConfig> load_pipeline_config(const fs::path& dir, StorageOpening opening) {
  const fs::path file = dir / "pipeline.yaml";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return invalid("{} is not a pipeline folder", dir.string());
  if (!fs::exists(file, ec)) {
    return invalid("{}: no pipeline.yaml in the pipeline folder", dir.string());
  }
  YamlContext ctx(file.string(), fs::absolute(dir));
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    return invalid("{}:{}:{}: malformed YAML: {}", file.string(), e.mark.line + 1,
                   e.mark.column + 1, e.msg);
  }
  try {
    std::set<NodePlace> checked;
    ARROW_RETURN_NOT_OK(check_duplicate_keys(root, ctx, checked));
    return parse(root, dir, ctx, opening);
  } catch (const YAML::Exception& e) {
    return invalid("{}:{}:{}: {}", file.string(), e.mark.line + 1, e.mark.column + 1, e.msg);
  }
}

}  // namespace sluice::pipeline
