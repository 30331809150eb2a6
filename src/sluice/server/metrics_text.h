// Prometheus text exposition (format 0.0.4): metric families with HELP and TYPE, samples with
// escaped label values, each family's samples together, as `promtool check metrics` expects.
#pragma once

#include <arrow/status.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::server {

enum class MetricType { kCounter, kGauge };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;  // name, value; in order

// Not thread-safe: one writer per scrape.
class MetricsText {
 public:
  // Declares a family. A name that is not a Prometheus metric name, a counter not ending in
  // `_total` or a family declared twice is an error (a programming error: the names are ours).
  arrow::Status family(std::string_view name, MetricType type, std::string_view help);
  // One sample of a declared family; label names must be Prometheus label names, each once.
  arrow::Status sample(std::string_view name, const MetricLabels& labels, double value);

  // The exposition: every declared family with at least one sample, in declaration order.
  std::string text() const;

 private:
  struct Family {
    std::string name;
    MetricType type;
    std::string help;
    std::vector<std::string> samples;  // rendered lines
    std::set<std::string> label_sets;  // rendered labels of each sample: a series appears once
  };
  std::vector<Family> families_;
};

// A label value as the exposition writes it between quotes: \ " and newline escaped.
std::string escape_label_value(std::string_view value);

// A sample value: whole numbers without exponent or fraction, NaN, +Inf, -Inf, else shortest
// round-trip decimal.
std::string metric_value_text(double value);

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool is_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved)
bool is_label_name(std::string_view name);

}  // namespace sluice::server
