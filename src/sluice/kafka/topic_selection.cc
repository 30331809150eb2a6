// Topic lists and patterns.
#include "sluice/kafka/topic_selection.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <regex>
#include <set>

#include "sluice/common/bounded_regex.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::kafka {

std::string TopicSelection::describe() const {
  if (is_pattern()) return fmt::format("pattern '{}'", pattern);
  std::string out;
  for (const auto& t : topics) out += (out.empty() ? "'" : ", '") + t + "'";
  return out;
}

arrow::Result<std::vector<std::string>> parse_topic_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? "" : item.substr(first, last - first + 1);
    if (item.empty()) {
      return invalid("read_kafka topic list '{}' has an empty name; write topic => 'a,b'", text);
    }
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

arrow::Status check_topic_pattern(const std::string& pattern) {
  try {
    std::regex re(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return invalid("read_kafka topic_pattern '{}' is not a valid regular expression: {}", pattern,
                   e.what());
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<std::string>> select_topics(const TopicSelection& selection,
                                                      const std::vector<std::string>& existing,
                                                      const std::string& cluster) {
  std::vector<std::string> out;
  if (selection.is_pattern()) {
    ARROW_RETURN_NOT_OK(check_topic_pattern(selection.pattern));
    const std::regex re(selection.pattern, std::regex::ECMAScript);
    for (const auto& t : existing) {
      if (t.rfind("__", 0) == 0) continue;  // internal topics (__consumer_offsets, ...)
      if (regex_match_bounded(t, re)) out.push_back(t);
    }
  } else {
    const std::set<std::string> known(existing.begin(), existing.end());
    for (const auto& t : selection.topics) {
      if (!known.count(t)) {
        std::vector<std::string> visible;
        for (const auto& e : existing) {
          if (e.rfind("__", 0) != 0) visible.push_back(e);
        }
        return invalid("Kafka topic '{}' does not exist on cluster '{}'; existing topics: {}", t,
                       cluster, visible.empty() ? "none" : fmt::format("{}", fmt::join(visible, ", ")));
      }
      out.push_back(t);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> subscription(const TopicSelection& selection) {
  if (selection.is_pattern()) return {"^(" + selection.pattern + ")$"};
  return selection.topics;
}

}  // namespace sluice::kafka
