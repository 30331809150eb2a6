// Prometheus text exposition writer (metrics_text.h).
#include "sluice/server/metrics_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace sluice::server {

namespace {

bool name_char(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon)) return false;
  }
  return true;
}

// HELP text escapes only backslash and newline.
std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

bool is_metric_name(std::string_view name) { return valid_name(name, true); }

bool is_label_name(std::string_view name) { return valid_name(name, false) && name.substr(0, 2) != "__"; }

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string metric_value_text(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);  // shortest text that reads back as the same double
}

arrow::Status MetricsText::family(std::string_view name, MetricType type, std::string_view help) {
  if (!is_metric_name(name)) return arrow::Status::Invalid("'", name, "' is not a Prometheus metric name");
  if (type == MetricType::kCounter && (name.size() < 6 || name.substr(name.size() - 6) != "_total")) {
    return arrow::Status::Invalid("counter '", name, "' must end in _total (Prometheus naming)");
  }
  if (type == MetricType::kGauge && name.size() >= 6 && name.substr(name.size() - 6) == "_total") {
    return arrow::Status::Invalid("gauge '", name, "' must not end in _total (Prometheus keeps it for counters)");
  }
  for (const auto& f : families_) {
    if (f.name == name) return arrow::Status::Invalid("metric family '", name, "' is declared twice");
  }
  families_.push_back({std::string(name), type, std::string(help), {}, {}});
  return arrow::Status::OK();
}

arrow::Status MetricsText::sample(std::string_view name, const MetricLabels& labels, double value) {
  auto it = std::find_if(families_.begin(), families_.end(), [&](const Family& f) { return f.name == name; });
  if (it == families_.end()) return arrow::Status::Invalid("metric '", name, "' has no family declared");
  std::string line(name);
  std::set<std::string_view> seen;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& [label, v] = labels[i];
    if (!is_label_name(label)) return arrow::Status::Invalid("'", label, "' is not a Prometheus label name");
    if (!seen.insert(label).second) return arrow::Status::Invalid("label '", label, "' given twice for ", name);
    line += fmt::format("{}{}=\"{}\"", i == 0 ? "{" : ",", label, escape_label_value(v));
  }
  if (!labels.empty()) line += "}";
  if (!it->label_sets.insert(line).second) {
    return arrow::Status::Invalid("metric '", name, "' has two samples with the labels ", line.substr(name.size()));
  }
  line += " " + metric_value_text(value);
  it->samples.push_back(std::move(line));
  return arrow::Status::OK();
}

std::string MetricsText::text() const {
  std::string out;
  for (const auto& f : families_) {
    if (f.samples.empty()) continue;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, escape_help(f.help), f.name,
                       f.type == MetricType::kCounter ? "counter" : "gauge");
    for (const auto& s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace sluice::server
