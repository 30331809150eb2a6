// read_kafka arguments -> KafkaFlowSpec.
#include "sluice/pipeline/kafka_options.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::pipeline {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

arrow::Result<int64_t> parse_int(const std::string& key, const std::string& text,
                                 const char* what) {
  const auto v = parse_int64(text, key);
  if (!v.ok()) return invalid("read_kafka {} must be {}, not '{}'", key, what, quote_for_error(text));
  return *v;
}

arrow::Result<bool> parse_bool(const std::string& key, const std::string& text) {
  const auto v = lower(text);
  if (v == "true") return true;
  if (v == "false") return false;
  return invalid("read_kafka {} must be true or false, not '{}'", key, text);
}

// {"topic": {"0": 42, "1": -2}} -> values; every topic must be one the flow reads (unless it
// reads a pattern), every partition a number.
arrow::Status parse_per_partition(const std::string& key, const std::string& text,
                                  const kafka::TopicSelection& selection, const char* example,
                                  PartitionValues& out) {
  const std::string first = selection.is_pattern() || selection.topics.empty() ? "topic" : selection.topics[0];
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.empty()) {
    return invalid("read_kafka {} must be {}JSON like {{\"{}\": {{\"0\": {}}}}}, not '{}'", key,
                   key.find("timestamp") == std::string::npos ? "earliest, latest or " : "", first,
                   example, text);
  }
  for (const auto& [topic, partitions] : j.items()) {
    if (!selection.is_pattern() &&
        std::find(selection.topics.begin(), selection.topics.end(), topic) == selection.topics.end()) {
      return invalid("read_kafka {} names topic '{}', which this flow does not read (it reads {})", key,
                     topic, selection.describe());
    }
    if (!partitions.is_object()) {
      return invalid("read_kafka {}: topic '{}' must map partitions to values, like {{\"0\": {}}}", key,
                     topic, example);
    }
    for (const auto& [partition, value] : partitions.items()) {
      ARROW_ASSIGN_OR_RAISE(auto p, parse_int(key, partition, "JSON whose partition keys are numbers"));
      if (!value.is_number_integer()) {
        return invalid("read_kafka {}: value of {}[{}] must be a number", key, topic, partition);
      }
      out[topic][static_cast<int32_t>(p)] = value.get<int64_t>();
    }
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status apply_read_kafka_options(const std::map<std::string, std::string>& options,
                                       KafkaFlowSpec& spec) {
  auto get = [&](const char* key) -> const std::string* {
    auto it = options.find(key);
    return it == options.end() ? nullptr : &it->second;
  };
  const auto* topic = get("topic");
  const auto* pattern = get("topic_pattern");
  if (topic && pattern) {
    return invalid("read_kafka takes topic (a name or list) or topic_pattern, not both");
  }
  if (pattern) {
    ARROW_RETURN_NOT_OK(kafka::check_topic_pattern(*pattern));
    spec.topics = kafka::TopicSelection{{}, *pattern};
    spec.topic = *pattern;
  } else if (topic) {
    ARROW_ASSIGN_OR_RAISE(auto list, kafka::parse_topic_list(*topic));
    spec.topics = kafka::TopicSelection{list, ""};
    spec.topic = list.size() == 1 ? list[0] : *topic;
  }
  const auto selection = spec.selection();

  if (const auto* v = get("starting_offsets")) {
    if (lower(*v) == "latest") {
      spec.starting_offsets = StartingOffsets::kLatest;
    } else if (lower(*v) == "earliest") {
      spec.starting_offsets = StartingOffsets::kEarliest;
    } else {
      ARROW_RETURN_NOT_OK(parse_per_partition("starting_offsets", *v, selection, "42",
                                              spec.starting_partition_offsets));
    }
  }
  if (const auto* v = get("ending_offsets"); v && lower(*v) != "latest") {
    ARROW_RETURN_NOT_OK(
        parse_per_partition("ending_offsets", *v, selection, "42", spec.ending_partition_offsets));
  }
  if (const auto* v = get("starting_timestamp")) {
    ARROW_ASSIGN_OR_RAISE(spec.starting_timestamp,
                          parse_int("starting_timestamp", *v, "milliseconds since the epoch"));
  }
  if (const auto* v = get("ending_timestamp")) {
    ARROW_ASSIGN_OR_RAISE(spec.ending_timestamp,
                          parse_int("ending_timestamp", *v, "milliseconds since the epoch"));
  }
  if (const auto* v = get("starting_offsets_by_timestamp")) {
    ARROW_RETURN_NOT_OK(parse_per_partition("starting_offsets_by_timestamp", *v, selection,
                                            "1700000000000", spec.starting_partition_timestamps));
  }
  if (const auto* v = get("ending_offsets_by_timestamp")) {
    ARROW_RETURN_NOT_OK(parse_per_partition("ending_offsets_by_timestamp", *v, selection,
                                            "1700000000000", spec.ending_partition_timestamps));
  }
  if (const auto* v = get("max_offsets_per_trigger")) {
    ARROW_ASSIGN_OR_RAISE(spec.max_offsets_per_trigger,
                          parse_int("max_offsets_per_trigger", *v, "a number"));
    if (*spec.max_offsets_per_trigger <= 0) {
      return invalid("read_kafka max_offsets_per_trigger must be positive");
    }
  }
  if (const auto* v = get("fail_on_data_loss")) {
    ARROW_ASSIGN_OR_RAISE(spec.fail_on_data_loss, parse_bool("fail_on_data_loss", *v));
  }
  if (const auto* v = get("include_headers")) {
    ARROW_ASSIGN_OR_RAISE(bool include, parse_bool("include_headers", *v));
    spec.headers = include ? kafka::HeadersColumn::kInclude : kafka::HeadersColumn::kDrop;
  }
  if (const auto* v = get("group_mode")) {
    const auto mode = lower(*v);
    if (mode == "subscribe") {
      spec.group_mode = GroupMode::kSubscribe;
    } else if (mode == "assign") {
      spec.group_mode = GroupMode::kAssign;
    } else {
      return invalid("read_kafka group_mode must be 'assign' (this process reads every partition) "
                     "or 'subscribe' (join the consumer group), not '{}'", *v);
    }
  }
  if (const auto* v = get("group_id")) spec.group_id = *v;
  if (const auto* v = get("kafka.group.id")) spec.group_id = *v;
  if (const auto* v = get("group_id_prefix")) {
    if (v->empty()) return invalid("read_kafka group_id_prefix must not be empty");
    spec.group_id_prefix = *v;
  }
  return arrow::Status::OK();
}

bool reads_kafka_as_group_member(const std::map<std::string, std::string>& options) {
  KafkaFlowSpec spec;
  return apply_read_kafka_options(options, spec).ok() && spec.group_mode == GroupMode::kSubscribe;
}

}  // namespace sluice::pipeline
