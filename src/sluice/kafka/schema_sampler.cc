// Samples of a topic's record values (schema inference); see schema_sampler.h.
#include "sluice/kafka/schema_sampler.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>

namespace sluice::kafka {

arrow::Result<std::vector<std::string>> sample_values(const std::string& cluster_name,
                                                      const KafkaProperties& properties,
                                                      const std::string& group_id, const std::string& topic,
                                                      int64_t max_records, std::chrono::milliseconds timeout) {
  ARROW_ASSIGN_OR_RAISE(auto consumer, Consumer::make(cluster_name, properties, group_id));
  return sample_values(*consumer, topic, max_records, timeout);
}

arrow::Result<std::vector<std::string>> sample_values(RecordSource& source, const std::string& topic,
                                                      int64_t max_records, std::chrono::milliseconds timeout) {
  ARROW_ASSIGN_OR_RAISE(auto partitions, source.partitions(topic, timeout));
  std::vector<PartitionStart> starts;
  int64_t available = 0;
  for (auto p : partitions) {
    ARROW_ASSIGN_OR_RAISE(auto marks, source.watermarks(topic, p, timeout));
    if (marks.high > marks.low) starts.push_back({topic, p, marks.low});
    available += marks.high.value() - marks.low.value();
  }
  const int64_t wanted = std::min(max_records, available);
  std::vector<std::string> samples;
  if (starts.empty()) return samples;
  ARROW_RETURN_NOT_OK(source.assign(starts));
  size_t at_end = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PolledMessages polled;
  while (static_cast<int64_t>(samples.size()) < wanted && at_end < starts.size() &&
         std::chrono::steady_clock::now() < deadline) {
    source.poll_batch(std::chrono::milliseconds(200), 1000, polled);
    for (const auto& r : polled.records()) {
      if (r.kind == RecordKind::kPartitionEnd) {
        ++at_end;
      } else if (r.kind == RecordKind::kRecord && r.value && static_cast<int64_t>(samples.size()) < wanted) {
        samples.emplace_back(*r.value);
      }
    }
  }
  return samples;
}

}  // namespace sluice::kafka
