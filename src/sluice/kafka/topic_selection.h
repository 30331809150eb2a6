// Which topics a Kafka source reads: one topic, a list, or a regular expression matched
// against the cluster's topics (Spark's subscribe / subscribePattern).
#pragma once

#include <arrow/result.h>

#include <string>
#include <vector>

namespace sluice::kafka {

struct TopicSelection {
  std::vector<std::string> topics;  // explicit names
  std::string pattern;              // ECMAScript regex over the whole name; empty: none

  bool is_pattern() const { return !pattern.empty(); }
  // For messages: "'a', 'b'" or "pattern 'orders-.*'".
  std::string describe() const;
};

// "a, b ,c" -> {a, b, c}; empty entries are an error.
arrow::Result<std::vector<std::string>> parse_topic_list(const std::string& text);

// Checks that `pattern` compiles (for early, precise errors).
arrow::Status check_topic_pattern(const std::string& pattern);

// The topics of `existing` the selection reads, sorted: the explicit names (each must exist,
// else an error that lists the existing topics) or every non-internal topic the pattern
// fully matches (possibly none: the next update looks again).
arrow::Result<std::vector<std::string>> select_topics(const TopicSelection& selection,
                                                      const std::vector<std::string>& existing,
                                                      const std::string& cluster);

// The same selection in librdkafka's subscribe() form: regexes start with '^'.
std::vector<std::string> subscription(const TopicSelection& selection);

}  // namespace sluice::kafka
