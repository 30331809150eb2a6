// What a Kafka flow reads: its topics, its consumer group, and where each partition starts and
// ends (the options of read_kafka / bronze:, per partition). The flow itself, which reads and
// commits, is kafka_ingest_flow.cc.
#include "sluice/pipeline/kafka_ingest_flow.h"

#include <optional>
#include <string>

namespace sluice::pipeline {

kafka::TopicSelection KafkaFlowSpec::selection() const {
  if (!topics.topics.empty() || topics.is_pattern()) return topics;
  return kafka::TopicSelection{{topic}, ""};
}

std::string KafkaFlowSpec::consumer_group(const std::string& pipeline) const {
  if (!group_id.empty()) return group_id;
  // Assign mode keeps the group id it always had (lag monitoring only).
  if (group_mode == GroupMode::kAssign) return group_id_prefix + "-" + pipeline;
  return group_id_prefix + "-" + pipeline + "-" + flow;
}

namespace {

std::optional<int64_t> find_value(const PartitionValues& values, const std::string& topic,
                                  KafkaPartition p) {
  auto t = values.find(topic);
  if (t == values.end()) return std::nullopt;
  auto it = t->second.find(p.value());
  if (it == t->second.end()) return std::nullopt;
  return it->second;
}

}  // namespace

StartRule start_rule(const KafkaFlowSpec& spec, const std::string& topic, KafkaPartition p) {
  using K = StartRule::Kind;
  if (auto ts = find_value(spec.starting_partition_timestamps, topic, p)) {
    return {K::kTimestamp, *ts};
  }
  if (spec.starting_timestamp) return {K::kTimestamp, *spec.starting_timestamp};
  if (auto off = find_value(spec.starting_partition_offsets, topic, p)) {
    if (*off == -2) return {K::kEarliest, 0};
    if (*off == -1) return {K::kLatest, 0};
    return {K::kOffset, *off};
  }
  return spec.starting_offsets == StartingOffsets::kEarliest ? StartRule{K::kEarliest, 0}
                                                             : StartRule{K::kLatest, 0};
}

EndRule end_rule(const KafkaFlowSpec& spec, const std::string& topic, KafkaPartition p) {
  using K = EndRule::Kind;
  if (auto ts = find_value(spec.ending_partition_timestamps, topic, p)) {
    return {K::kTimestamp, *ts};
  }
  if (spec.ending_timestamp) return {K::kTimestamp, *spec.ending_timestamp};
  if (auto off = find_value(spec.ending_partition_offsets, topic, p); off && *off >= 0) {
    return {K::kOffset, *off};
  }
  return {K::kHighWaterMark, 0};
}

}  // namespace sluice::pipeline
